"""Integration of one or several modalities: preprocessing, joint graph, clusters, pseudotime."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest

from scagents.errors import DataError, ModalityError
from scagents.integration import adt_from_obsm, integrate
from tests.conftest import shared_file


def _synthetic_mudata(n_cells: int = 240, seed: int = 0) -> md.MuData:
    """Two cell states along a trajectory, seen as RNA counts, peak counts and ADT counts."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, n_cells)
    genes = 60
    prog = rng.gamma(2.0, 1.0, size=genes)
    rna_mu = np.outer(1 - t, prog) + np.outer(t, prog[::-1]) + 0.2
    rna = ad.AnnData(rng.poisson(rna_mu * 3).astype(np.float32))
    rna.var_names = [f"g{i}" for i in range(genes)]
    peaks = 120
    acc = np.outer(1 - t, rng.random(peaks)) + np.outer(t, rng.random(peaks))
    atac = ad.AnnData(rng.poisson(acc * 2).astype(np.float32))
    atac.var_names = [f"chr1:{i * 100}-{i * 100 + 50}" for i in range(peaks)]
    prot = ad.AnnData(rng.poisson(np.outer(1 - t, [50, 5, 20]) + np.outer(t, [5, 50, 20]) + 3).astype(np.float32))
    prot.var_names = ["CD3", "CD19", "CD45"]
    for a in (rna, atac, prot):
        a.obs_names = [f"cell{i}" for i in range(n_cells)]
    mdata = md.MuData({"rna": rna, "atac": atac, "prot": prot})
    mdata.obs["is_control"] = t < 0.1
    return mdata


def _check(data, n_modalities: int, umap_key: str) -> None:
    rec = data.uns["scagents"]["integration"]
    assert len(rec["modalities"]) == n_modalities
    pt = data.obs["dpt_pseudotime"].to_numpy()
    assert np.isfinite(pt).all() and pt.min() >= 0 and pt.max() <= 1
    assert pt[rec["root"]["index"]] == 0
    assert rec["root"]["explanation"]
    assert data.obs["cluster"].nunique() >= 2
    assert data.obsm[umap_key].shape == (data.n_obs, 2)


@pytest.mark.slow  # muon's WNN compiles numba kernels on first use (minutes on a busy 2-core machine)
def test_synthetic_three_modalities_wnn():
    mdata = _synthetic_mudata()
    integrate(mdata, n_pcs=10, joint="wnn")
    _check(mdata, 3, "X_wnn_umap")
    assert mdata["rna"].obsm["X_pca"].shape == (240, 10)
    assert mdata["atac"].obsm["X_lsi"].shape[0] == 240
    assert "wnn_connectivities" in mdata.obsp
    assert mdata.uns["scagents"]["integration"]["root"]["rule"] == "control medoid"
    root = mdata.uns["scagents"]["integration"]["root"]["index"]
    assert mdata.obs["is_control"].iloc[root]
    # pseudotime follows the simulated trajectory
    t = np.linspace(0, 1, 240)
    assert np.corrcoef(t, mdata.obs["dpt_pseudotime"])[0, 1] > 0.7
    assert "counts" in mdata["rna"].layers and "counts" in mdata["prot"].layers


def test_synthetic_three_modalities_concat():
    mdata = _synthetic_mudata()
    integrate(mdata, n_pcs=10, joint="concat")
    _check(mdata, 3, "X_joint_umap")
    assert mdata.uns["scagents"]["integration"]["root"]["rule"] == "control medoid"
    t = np.linspace(0, 1, 240)
    assert np.corrcoef(t, mdata.obs["dpt_pseudotime"])[0, 1] > 0.7
    assert mdata["rna"].obs["cluster"].equals(mdata.obs["cluster"].astype(str)) or \
        (mdata["rna"].obs["cluster"].astype(str).to_numpy() == mdata.obs["cluster"].astype(str).to_numpy()).all()


def test_single_anndata_and_copy():
    rna = _synthetic_mudata()["rna"].copy()
    out = integrate(rna, copy=True, root=3)
    assert "X_pca" not in rna.obsm and out is not None
    _check(out, 1, "X_umap")
    assert out.uns["scagents"]["integration"]["root"]["rule"] == "user"


def test_twin_mudata():
    twin = pytest.importorskip("scagents.twin")
    mdata = twin.simulate(twin.load_model("krumsiek11"), n_cells=200, seed=0)
    integrate(mdata, n_pcs=10, joint="concat")
    _check(mdata, len(mdata.mod), "X_joint_umap")


def test_pbmc_multiome():
    mdata = md.read_h5mu(shared_file("multiome/pbmc_multiome_small.h5mu"))
    integrate(mdata, joint="concat")
    _check(mdata, 2, "X_joint_umap")
    assert mdata["atac"].obsm["X_lsi"].shape[0] == mdata.n_obs


@pytest.mark.parametrize("fname,key", [("mimitou2019_citeseq_pbmc.h5ad", "adt"),
                                       ("pbmc5k_citeseq_small.h5ad", "protein_expression")])
def test_citeseq_files(fname, key):
    adata = ad.read_h5ad(shared_file(f"multiome/{fname}"))
    mdata = adt_from_obsm(adata)
    assert mdata["prot"].n_vars == adata.obsm[key].shape[1]
    assert key not in mdata["rna"].obsm
    integrate(mdata, joint="concat")
    _check(mdata, 2, "X_joint_umap")
    assert mdata["prot"].obsm["X_pca"].shape[0] == adata.n_obs


def test_scicar_rna_atac_time_root():
    rna = ad.read_h5ad(shared_file("multiome/cao2018_scicar_a549_dex_rna.h5ad"))
    atac = ad.read_h5ad(shared_file("multiome/cao2018_scicar_a549_dex_atac.h5ad"))
    keep = np.random.default_rng(0).choice(rna.n_obs, 600, replace=False)
    mdata = md.MuData({"rna": rna[keep].copy(), "atac": atac[keep].copy()})
    integrate(mdata, joint="concat")
    _check(mdata, 2, "X_joint_umap")
    rec = mdata.uns["scagents"]["integration"]["root"]
    assert "Time" in rec["rule"]
    time = pd.to_numeric(mdata.obs["rna:Time"].astype(str))
    assert time.iloc[rec["index"]] == time.min()


def test_errors():
    mdata = _synthetic_mudata()
    bad = md.MuData({"rna": mdata["rna"].copy(), "spatial": mdata["prot"].copy()})
    with pytest.raises(ModalityError, match="Unknown modality"):
        integrate(bad)
    with pytest.raises(ModalityError, match="No ADT"):
        adt_from_obsm(mdata["rna"].copy())
    with pytest.raises(DataError, match="not a cell name"):
        integrate(mdata["rna"].copy(), root="nope")
    with pytest.raises(ValueError, match="joint"):
        integrate(mdata, joint="cca")
    no_peaks = md.MuData({"rna": mdata["rna"].copy(), "atac": mdata["atac"][:, :0].copy()})
    with pytest.raises(DataError, match=r"Modality 'atac' holds 240 cells × 0 features"):
        integrate(no_peaks)  # was: ValueError: `A` must not be empty
    assert isinstance(pd.Index(mdata.obs_names), pd.Index)


def _dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)


def test_second_call_starts_from_kept_values(tmp_path):
    """A saved, integrated MuData integrated again gives the same result: the ATAC / protein values
    before TF-IDF / CLR are kept in layers and transformed once, never TF-IDF or CLR values again."""
    mdata = _synthetic_mudata()
    counts = {m: _dense(mdata[m].X) for m in ("atac", "prot")}
    integrate(mdata, n_pcs=10, joint="concat")
    first = {m: _dense(mdata[m].X) for m in ("atac", "prot")}
    mdata.write(tmp_path / "once.h5mu")
    again = md.read_h5mu(tmp_path / "once.h5mu")
    integrate(again, n_pcs=10, joint="concat")
    seen = counts["atac"].sum(0) > 0  # peaks seen in no cell are dropped
    assert np.array_equal(_dense(again["atac"].layers["counts"]), counts["atac"][:, seen])
    assert np.array_equal(_dense(again["prot"].layers["counts"]), counts["prot"])
    for m in ("atac", "prot"):
        assert np.allclose(_dense(again[m].X), first[m], atol=1e-5)
        assert again.uns["scagents"]["integration"]["modalities"][m]["steps"][0] == \
            "values from layers['counts']"


def test_values_that_are_not_counts_are_not_called_counts():
    """Normalised ATAC values (sci-CAR) are kept in layers["input"], not layers["counts"]."""
    mdata = _synthetic_mudata()
    mdata.mod["atac"].X = mdata["atac"].X * 0.37
    integrate(mdata, n_pcs=10, joint="concat")
    assert "counts" not in mdata["atac"].layers and "input" in mdata["atac"].layers


def test_atac_lsi_is_the_same_every_call():
    """The LSI's SVD starts from a seeded vector: the same cells give the same components, whatever
    numpy's global random state (muon's lsi drew from it: clusters changed from run to run)."""
    reps = []
    for state in (1, 2):
        np.random.seed(state)
        mdata = _synthetic_mudata()
        integrate(mdata, n_pcs=10, joint="concat", umap=False)
        reps.append(mdata["atac"].obsm["X_lsi"])
    np.testing.assert_allclose(reps[0], reps[1], atol=1e-8)


def test_integrate_shows_no_dependency_noise():
    """mudata's future warnings on every .update() were shown to a notebook user calling integrate
    (6 per call); they are silenced while it runs."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata = _synthetic_mudata(n_cells=120)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        integrate(mdata, joint="concat")
    assert not [str(w.message) for w in caught if issubclass(w.category, FutureWarning | DeprecationWarning)]
