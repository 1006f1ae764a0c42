"""Reading every kind of input, and the clear errors for unreadable ones."""

from __future__ import annotations

import gzip
import hashlib
import json
import warnings
from pathlib import Path

import anndata as ad
import h5py
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

from scagents import data as D
from scagents.errors import DataFileError, ModalityError
from tests.conftest import SHARED_DATA, shared_file


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# every real file in shared/data goes through the data layer
# ---------------------------------------------------------------------------------------------

# Files that are not expression/screen data and belong to other layers (each named with its owner).
NOT_DATA_LAYER = {
    "README.md": "documentation",
    "screens/SOURCE.md": "documentation",
    "grn/boolean_models/": "Boolean models: scagents.twin reads them",
    "grn/sergio_DS4/Interaction_cID_9.txt": "SERGIO simulator input (regulator interactions)",
    "grn/sergio_DS4/Regs_cID_9.txt": "SERGIO simulator input (master-regulator rates)",
    "grn/sergio_DS4/bMat_cID9.tab": "SERGIO simulator input (cell-type transition matrix)",
}


def _data_files() -> list[str]:
    if not SHARED_DATA.is_dir():
        return ["<shared data absent>"]
    return sorted(str(p.relative_to(SHARED_DATA)) for p in SHARED_DATA.rglob("*") if p.is_file())


def _load_shared(rel: str, path: Path) -> None:
    """Load one shared file through the data layer and check what it holds; fail if unknown."""
    name = path.name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name.endswith(".h5ad"):
            adata = D.read(path)
            assert isinstance(adata, ad.AnnData)
            assert adata.n_obs > 0 and adata.n_vars > 0
            assert adata.obs_names.is_unique
            backed = D.read(path, backed=True)
            assert backed.isbacked and backed.shape == adata.shape
            backed.file.close()
        elif name.endswith(".h5mu"):
            mdata = D.read(path)
            assert isinstance(mdata, md.MuData) and len(mdata.mod) >= 2
            rna = D.read(path, modality="rna")
            assert isinstance(rna, ad.AnnData) and rna.shape == mdata.mod["rna"].shape
        elif rel.startswith("grn/beeline_") and name in ("ExpressionData.csv", "PseudoTime.csv"):
            adata = D.read_beeline(path.parent)
            assert adata.n_obs > 0 and "pseudotime" in adata.obs
            assert np.isfinite(adata.obs["pseudotime"]).all()
        elif name in ("GroundTruthNetwork.csv", "gt_GRN.csv"):
            net = D.read_network(path)
            assert len(net) > 0 and set(net.columns) == {"source", "target", "sign"}
        elif rel.startswith("grn/sergio_") and name.startswith("simulated_"):
            adata = D.read_csv_expression(path, genes_in_rows=True)
            assert adata.shape == (900, 100)  # SERGIO DS4: 100 genes, 3 cell types x 300 cells
        elif rel.startswith("screens/") and name.startswith("ground_truth_"):
            screen = D.read_screen(path)
            assert len(screen) > 1000 and screen["score"].notna().all()
        elif rel.startswith("screens/") and name.startswith("topmovers_"):
            hits = D.read_hits(path)
            screen = D.read_screen(path.with_name(name.replace("topmovers_", "ground_truth_")
                                                  .replace(".npy", ".csv")))
            assert set(hits) <= set(screen["gene"])
        elif rel.startswith("screens/") and name.startswith("task_"):
            task = json.loads(path.read_text())
            assert "Task" in task
        elif any(rel == k or (k.endswith("/") and rel.startswith(k)) for k in NOT_DATA_LAYER):
            assert path.stat().st_size > 0
        else:
            pytest.fail(f"shared data file {rel} is not handled by the data layer tests; add it")


@pytest.mark.parametrize("rel", _data_files())
def test_every_shared_file_loads(rel):
    path = shared_file(rel) if not rel.startswith("<") else shared_file("README.md")
    _load_shared(rel, path)


def test_beeline_pseudotime_and_network():
    folder = shared_file("grn/beeline_GSD/ExpressionData.csv").parent
    adata = D.read_beeline(folder)
    assert adata.shape == (2000, 19)
    assert len(adata.uns["ground_truth"]["source"]) == 86
    assert {"SOX9", "AMH", "GATA4"} <= set(adata.var_names)


def test_sergio_duplicate_column_names_become_labels():
    adata = D.read_csv_expression(shared_file("grn/sergio_DS4/simulated_noNoise_T_0.csv"))
    assert adata.obs_names.is_unique
    assert adata.obs["label"].value_counts().to_dict() == {"0": 300, "1": 300, "2": 300}


def test_screen_with_duplicates_is_averaged():
    path = shared_file("screens/ground_truth_Scharenberg22.csv")
    raw = pd.read_csv(path)
    screen = D.read_screen(path)
    assert screen["gene"].is_unique
    assert screen.attrs["n_duplicates_merged"] == raw["Gene"].duplicated().sum() > 0
    assert screen.set_index("gene").loc["PSMA1", "score"] == pytest.approx(
        raw.loc[raw["Gene"] == "PSMA1", "Score"].mean())
    with pytest.raises(DataFileError, match="more than once"):
        D.read_screen(path, duplicates="error")


def test_screen_headerless_numeric_columns():
    screen = D.read_screen(shared_file("screens/ground_truth_Steinhart_crispra_GD2_D22.csv"))
    assert list(screen.columns) == ["gene", "score"] and screen["gene"].iloc[0] == "A1BG"


# ---------------------------------------------------------------------------------------------
# formats written here
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def counts() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.poisson(2.0, size=(6, 4)).astype(np.float32)  # 6 cells x 4 genes


GENES = ["GA", "GB", "GC", "GD"]
CELLS = [f"AAAC-{i}" for i in range(6)]


def _write_mtx_dir(folder: Path, X: np.ndarray, *, gz: bool, features_name: str, n_feature_cols: int):
    folder.mkdir()
    mat_path = folder / "matrix.mtx"
    scipy.io.mmwrite(str(mat_path), sp.coo_matrix(X.T))  # 10x stores genes x cells
    rows = [[f"ENSG{i:05d}", g, "Gene Expression"][:n_feature_cols] for i, g in enumerate(GENES)]
    feat = "\n".join("\t".join(r) for r in rows) + "\n"
    bc = "\n".join(CELLS) + "\n"
    if gz:
        with open(mat_path, "rb") as src, gzip.open(folder / "matrix.mtx.gz", "wb") as dst:
            dst.write(src.read())
        mat_path.unlink()
        (folder / f"{features_name}.gz").write_bytes(gzip.compress(feat.encode()))
        (folder / "barcodes.tsv.gz").write_bytes(gzip.compress(bc.encode()))
    else:
        (folder / features_name).write_text(feat)
        (folder / "barcodes.tsv").write_text(bc)


@pytest.mark.parametrize(
    ("gz", "features_name", "n_cols"),
    [(True, "features.tsv", 3), (False, "genes.tsv", 2), (False, "features.tsv", 1), (True, "genes.tsv", 2)],
    ids=["10x-v3", "10x-v2", "plain-one-column", "gz-genes"],
)
def test_read_mtx_dir(tmp_path, counts, gz, features_name, n_cols):
    folder = tmp_path / "mtx"
    _write_mtx_dir(folder, counts, gz=gz, features_name=features_name, n_feature_cols=n_cols)
    adata = D.read(folder)
    assert adata.shape == (6, 4)
    assert list(adata.obs_names) == CELLS
    expected_genes = GENES if n_cols > 1 else [f"ENSG{i:05d}" for i in range(4)]
    assert list(adata.var_names) == expected_genes
    X = adata.X.toarray() if sp.issparse(adata.X) else adata.X
    np.testing.assert_array_equal(X, counts)
    # a path to the matrix file itself reads the same folder
    matrix = next(folder.glob("matrix.mtx*"))
    assert D.read(matrix).shape == (6, 4)


def test_read_mtx_dir_missing_barcodes(tmp_path, counts):
    folder = tmp_path / "mtx"
    _write_mtx_dir(folder, counts, gz=False, features_name="genes.tsv", n_feature_cols=2)
    (folder / "barcodes.tsv").unlink()
    with pytest.raises(DataFileError, match=r"barcodes\.tsv missing"):
        D.read(folder)


def test_read_mtx_dir_shape_mismatch(tmp_path, counts):
    folder = tmp_path / "mtx"
    _write_mtx_dir(folder, counts, gz=False, features_name="features.tsv", n_feature_cols=1)
    (folder / "barcodes.tsv").write_text("only-one\n")
    with pytest.raises(DataFileError, match="matches neither"):
        D.read(folder)


def _write_10x_h5(path: Path, X: np.ndarray) -> None:
    """CellRanger v3 layout: CSC genes x cells under /matrix."""
    m = sp.csc_matrix(X.T)
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g.create_dataset("data", data=m.data.astype(np.int32))
        g.create_dataset("indices", data=m.indices.astype(np.int64))
        g.create_dataset("indptr", data=m.indptr.astype(np.int64))
        g.create_dataset("shape", data=np.array(m.shape, dtype=np.int32))
        g.create_dataset("barcodes", data=np.array(CELLS, dtype="S"))
        feat = g.create_group("features")
        feat.create_dataset("id", data=np.array([f"ENSG{i:05d}" for i in range(4)], dtype="S"))
        feat.create_dataset("name", data=np.array(GENES, dtype="S"))
        feat.create_dataset("feature_type", data=np.array(["Gene Expression"] * 4, dtype="S"))
        feat.create_dataset("genome", data=np.array(["GRCh38"] * 4, dtype="S"))


def test_read_10x_h5(tmp_path, counts):
    path = tmp_path / "filtered_feature_bc_matrix.h5"
    _write_10x_h5(path, counts)
    before = sha256(path)
    adata = D.read(path)
    assert adata.shape == (6, 4)
    assert list(adata.var_names) == GENES and list(adata.obs_names) == CELLS
    assert list(adata.var["gene_ids"]) == [f"ENSG{i:05d}" for i in range(4)]
    np.testing.assert_array_equal(adata.X.toarray(), counts)
    assert sha256(path) == before


def test_read_h5_that_is_not_10x(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("something", data=np.arange(3))
    with pytest.raises(DataFileError, match="not a 10x CellRanger matrix"):
        D.read(path)


def test_in_memory_objects_are_returned_unchanged(counts):
    adata = ad.AnnData(counts)
    assert D.read(adata) is adata
    mdata = md.MuData({"rna": adata, "prot": ad.AnnData(counts[:, :2])})
    assert D.read(mdata) is mdata
    assert D.read(mdata, modality="prot") is mdata.mod["prot"]
    with pytest.raises(ModalityError, match=r"'atac' is not in this MuData; it has \['prot', 'rna'\]"):
        D.read(mdata, modality="atac")
    with pytest.raises(ModalityError, match="single-modality AnnData"):
        D.read(adata, modality="rna")
    with pytest.raises(TypeError, match="takes a path"):
        D.read(42)


# ---------------------------------------------------------------------------------------------
# bad files: each its own clear error, and the file is never modified
# ---------------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.h5ad"
    with pytest.raises(D.DataFileNotFoundError, match="does not exist") as info:
        D.read(path)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, DataFileError)
    assert not path.exists()


def test_empty_file(tmp_path):
    path = tmp_path / "empty.h5ad"
    path.write_bytes(b"")
    with pytest.raises(DataFileError, match=r"is empty \(0 bytes\)"):
        D.read(path)
    assert path.read_bytes() == b""


def test_garbage_with_h5ad_suffix(tmp_path):
    path = tmp_path / "garbage.h5ad"
    path.write_bytes(b"this is not hdf5 at all\n" * 10)
    before = sha256(path)
    with pytest.raises(DataFileError, match="is not an HDF5 file"):
        D.read(path)
    assert sha256(path) == before


def test_hdf5_but_not_anndata(tmp_path):
    path = tmp_path / "corrupt.h5ad"
    with h5py.File(path, "w") as f:
        f.create_dataset("X", data="not a matrix")
    before = sha256(path)
    with pytest.raises(DataFileError, match="could not be read as .h5ad"):
        D.read(path)
    assert sha256(path) == before


def test_unknown_extension(tmp_path):
    path = tmp_path / "table.xlsx"
    path.write_bytes(b"PK\x03\x04 fake")
    before = sha256(path)
    with pytest.raises(DataFileError, match=r"Unknown file type '\.xlsx'.*read_csv_expression"):
        D.read(path)
    assert sha256(path) == before


def test_unknown_modality_in_h5mu(tmp_path, counts):
    path = tmp_path / "two.h5mu"
    md.MuData({"rna": ad.AnnData(counts), "atac": ad.AnnData(counts[:, :3])}).write(path)
    before = sha256(path)
    with pytest.raises(ModalityError, match=r"'prot' is not in .*two\.h5mu.*\['atac', 'rna'\]"):
        D.read(path, modality="prot")
    atac = D.read(path, modality="atac")
    assert atac.shape == (6, 3)
    assert sha256(path) == before


def test_modality_for_h5ad(tmp_path, counts):
    path = tmp_path / "one.h5ad"
    ad.AnnData(counts).write_h5ad(path)
    with pytest.raises(ModalityError, match="single-modality AnnData"):
        D.read(path, modality="rna")


def test_backed_read_is_read_only(tmp_path, counts):
    path = tmp_path / "one.h5ad"
    ad.AnnData(counts).write_h5ad(path)
    before = sha256(path)
    adata = D.read(path, backed=True)
    assert adata.isbacked and adata.file._filemode == "r"
    np.testing.assert_array_equal(adata.X[:], counts)
    adata.file.close()
    assert sha256(path) == before


# ---------------------------------------------------------------------------------------------
# CSV readers
# ---------------------------------------------------------------------------------------------


def test_read_csv_expression_orientation(tmp_path):
    path = tmp_path / "expr.csv"
    path.write_text(",c1,c2,c3\ng1,1,2,3\ng2,4,5,6\n")
    adata = D.read_csv_expression(path)
    assert adata.shape == (3, 2) and list(adata.var_names) == ["g1", "g2"]
    np.testing.assert_array_equal(adata.X, [[1, 4], [2, 5], [3, 6]])
    cells = D.read_csv_expression(path, genes_in_rows=False)
    assert cells.shape == (2, 3) and list(cells.obs_names) == ["g1", "g2"]


def test_read_csv_expression_non_numeric(tmp_path):
    path = tmp_path / "expr.csv"
    path.write_text(",c1,c2\ng1,1,x\n")
    with pytest.raises(DataFileError, match="non-numeric"):
        D.read_csv_expression(path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("Gene\nA\nB\n", "lacks the Score column"),
        ("Name,Value2\nA,1\n", "lacks the Gene and Score column"),
        ("Gene,Score\nA,1.0\nB,\nC,nan\n", "2 gene.* missing, NaN"),
        ("Gene,Score\nA,1.0\nB,high\n", "non-numeric"),
        ("Gene,Score\nA,inf\n", "infinite"),
        ("Gene,Score\n", "no rows"),
    ],
)
def test_read_screen_errors(tmp_path, text, match):
    path = tmp_path / "screen.csv"
    path.write_text(text)
    before = sha256(path)
    with pytest.raises(DataFileError, match=match):
        D.read_screen(path)
    assert sha256(path) == before


def test_read_network_signs(tmp_path):
    path = tmp_path / "net.csv"
    path.write_text("Gene1,Gene2,Type\nA,B,+\nB,C,-\n")
    net = D.read_network(path)
    assert net.to_dict("list") == {"source": ["A", "B"], "target": ["B", "C"], "sign": [1, -1]}


def test_write_is_atomic_and_round_trips(tmp_path):
    import anndata as ad
    import mudata as md
    import numpy as np

    from scagents.data import read, write

    a = ad.AnnData(np.arange(6, dtype=np.float32).reshape(3, 2))
    path = write(a, tmp_path / "x.h5ad")
    assert np.array_equal(read(path).X, a.X)
    assert not (tmp_path / "x.h5ad.tmp").exists()
    m = write(md.MuData({"rna": a}), tmp_path / "x.h5mu")
    assert read(m).mod["rna"].shape == (3, 2)


def test_h5mu_without_rna_is_refused_in_one_line(tmp_path, counts):
    """An .h5mu of ATAC + protein only: its peaks are not taken as genes (the first modality used to
    be read as RNA); the message names the modalities and the fix."""
    path = tmp_path / "no_rna.h5mu"
    md.MuData({"atac": ad.AnnData(counts), "prot": ad.AnnData(counts[:, :2])}).write(path)
    with pytest.raises(ModalityError, match=r"no RNA modality \(it has 'atac', 'prot'\).*'rna'"):
        D.load(path)
    assert D.rna_modality_name(["peaks", "gex"]) == "gex"
    assert D.rna_modality_name(["adt", "expression"]) == "expression"
    assert D.rna_modality_name(["atac", "my_counts"]) == "my_counts"  # an unknown name: taken as RNA


def test_read_and_load_show_no_mudata_note_on_protein_names_that_are_gene_names(tmp_path):
    """A CITE-seq .h5mu whose proteins are named as genes (STAT1, CD4): mudata's "var_names are
    intersecting" note about its global .var was shown by scagents.pp.read / load; it is not."""
    rng = np.random.default_rng(0)
    obs = pd.DataFrame({"perturbation": ["control"] * 20 + ["STAT1"] * 20},
                       index=[f"c{i}" for i in range(40)])
    rna = ad.AnnData(rng.poisson(3, (40, 4)).astype(np.float32), obs=obs,
                     var=pd.DataFrame(index=["STAT1", "IRF1", "GATA3", "CD4"]))
    prot = ad.AnnData(rng.poisson(5, (40, 2)).astype(np.float32), obs=obs[[]],
                      var=pd.DataFrame(index=["STAT1", "CD4"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        md.MuData({"rna": rna, "prot": prot}).write(tmp_path / "cite.h5mu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert isinstance(D.read(tmp_path / "cite.h5mu"), md.MuData)
        assert isinstance(D.load(tmp_path / "cite.h5mu"), md.MuData)
    assert not [str(w.message) for w in caught if "intersecting" in str(w.message)]
