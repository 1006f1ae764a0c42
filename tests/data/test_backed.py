"""Streaming (backed) statistics equal the in-memory ones, in bounded memory."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from scagents import data
from scagents.data import backed
from scagents.errors import DataError, DataFileError, GeneNotFoundError

STANDARD = ["perturbation", "target_genes", "perturbation_type", "is_control"]


@pytest.fixture(scope="module")
def atlas(tmp_path_factory):
    path = tmp_path_factory.mktemp("atlas") / "small.h5ad"
    backed.write_synthetic_atlas(path, n_cells=5000, n_genes=300, n_perturbations=80, chunk_size=1700, seed=3)
    return path


@pytest.fixture(scope="module")
def in_memory(atlas):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata = data.load(atlas)
    data.lognormalize(adata)
    return adata


@pytest.fixture
def opened(atlas):
    a = backed.open_backed(atlas)
    backed.standardize_backed(a)
    return a


def test_synthetic_file_is_sparse_csr_counts(atlas):
    a = backed.open_backed(atlas)
    assert a.isbacked and a.shape == (5000, 300)
    nnz = a.X.group["data"].shape[0]
    assert 0.03 < nnz / (5000 * 300) < 0.12
    first = a.X[:10]
    assert sp.issparse(first) and np.all(first.data >= 1) and np.all(first.data == np.round(first.data))


def test_open_backed_errors(tmp_path):
    with pytest.raises(DataFileError, match=r"\.h5ad"):
        backed.open_backed(tmp_path / "x.csv")
    with pytest.raises(FileNotFoundError):
        backed.open_backed(tmp_path / "missing.h5ad")


def test_iter_chunks_covers_all_rows(opened):
    seen, total = 0, 0.0
    for rows, chunk in backed.iter_chunks(opened, chunk_size=1234):
        assert sp.isspmatrix_csr(chunk) and chunk.shape == (rows.stop - rows.start, 300)
        assert rows.start == seen
        seen = rows.stop
        total += chunk.sum()
    assert seen == 5000
    assert total == pytest.approx(float(opened.X[:].sum()))


def test_standardize_backed_matches_standardize(opened, in_memory):
    for col in STANDARD:
        assert (opened.obs[col].astype(str) == in_memory.obs[col].astype(str)).all(), col
    assert opened.uns["scagents"]["data"] == {k: v for k, v in in_memory.uns["scagents"]["data"].items()
                                              if k != "lognorm"}
    assert opened.isbacked  # X never loaded


def test_pseudobulk_backed_equals_in_memory(opened, in_memory):
    ref = data.pseudobulk(in_memory)
    for chunk_size in (999, 50_000):
        got = backed.pseudobulk_backed(opened, chunk_size=chunk_size)
        assert got.index.equals(ref.index) and got.columns.equals(ref.columns)
        np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-6, atol=1e-7)
        assert got.attrs["n_cells"] == ref.attrs["n_cells"]


def test_perturbation_summary(opened, in_memory):
    s = backed.perturbation_summary(opened, chunk_size=700)
    lab = "G00005"
    cells = (in_memory.obs["perturbation"] == lab).to_numpy()
    X = in_memory.X[cells]
    assert s.loc[lab, "n_cells"] == cells.sum()
    assert s.loc[lab, "mean_umis"] == pytest.approx(X.sum() / cells.sum())
    assert s.loc[lab, "mean_genes"] == pytest.approx(X.nnz / cells.sum())
    assert s["n_cells"].sum() == 5000


def test_highly_variable_matches_scanpy(opened, in_memory):
    sc = pytest.importorskip("scanpy")
    ref = in_memory.copy()
    ref.X = ref.layers["lognorm"]
    sc.pp.highly_variable_genes(ref, n_top_genes=40, flavor="seurat")
    got = backed.highly_variable_backed(opened, n_top_genes=40, chunk_size=1111)
    for col in ("means", "dispersions", "dispersions_norm"):
        np.testing.assert_allclose(got[col], ref.var[col], rtol=1e-5, atol=1e-6, equal_nan=True)
    assert (got["highly_variable"] == ref.var["highly_variable"]).all()
    var = backed.highly_variable_backed(opened, n_top_genes=10, flavor="variance")
    dense = in_memory.layers["lognorm"].toarray().astype(np.float64)
    np.testing.assert_allclose(var["variances"], dense.var(axis=0), rtol=1e-6, atol=1e-9)
    assert var["highly_variable"].sum() == 10


def test_sampler_reads_the_right_rows(opened, in_memory):
    genes = ["G00010", "G00002", "G00250"]
    smp = backed.CellMinibatchSampler(opened, batch_size=100, genes=genes, seed=0)
    rows, batch = smp.sample()
    assert np.all(np.diff(rows) > 0) and batch.shape == (100, 3) and batch.dtype == np.float32
    ref = in_memory[rows, genes].layers["lognorm"].toarray()
    np.testing.assert_allclose(batch, ref, rtol=1e-6)
    seen = np.concatenate([r for r, _ in smp])
    assert len(smp) == 50 and np.array_equal(np.sort(seen), np.arange(5000))
    unsorted = np.array([7, 3, 3, 4000])
    np.testing.assert_allclose(smp.read(unsorted), in_memory[unsorted, genes].layers["lognorm"].toarray(),
                               rtol=1e-6)
    with pytest.raises(GeneNotFoundError, match="not in var_names"):
        backed.CellMinibatchSampler(opened, genes=["NOPE"])
    with pytest.raises(DataError, match="no cells"):
        backed.CellMinibatchSampler(opened, cells=np.zeros(5000, dtype=bool))


def test_response_task_from_backed_equals_from_anndata(atlas, in_memory):
    from scagents.envs.response import PerturbationResponseVecEnv, ResponseTask

    got = ResponseTask.from_backed(atlas, n_top_genes=60, max_control_cells=150, chunk_size=1500, seed=2)
    ref = ResponseTask.from_anndata(in_memory, n_top_features=60, max_control_cells=150, seed=2)
    assert got.features == ref.features and got.labels == ref.labels
    assert [p.targets for p in got.perturbations] == [p.targets for p in ref.perturbations]
    np.testing.assert_allclose(got.deltas["rna"], ref.deltas["rna"], atol=1e-5)
    np.testing.assert_allclose(got.control_mean["rna"], ref.control_mean["rna"], atol=1e-5)
    np.testing.assert_array_equal(got.states["rna"], ref.states["rna"])
    assert got.action_bounds["rna"] == pytest.approx(ref.action_bounds["rna"])
    env = PerturbationResponseVecEnv(got, num_envs=4)
    obs, _ = env.reset(seed=0)
    _, reward, *_ = env.step(np.zeros(env.action_space.shape, np.float32))
    assert obs.shape[0] == 4 and np.all(reward <= 0)


def test_csc_on_disk_is_rejected_with_advice(tmp_path):
    import anndata as ad

    ad.AnnData(sp.csc_matrix(np.ones((4, 3), np.float32))).write_h5ad(tmp_path / "csc.h5ad")
    a = backed.open_backed(tmp_path / "csc.h5ad")
    with pytest.raises(DataError, match="CSC"):
        next(backed.iter_chunks(a))


def test_csc_in_memory_is_read_as_csr():
    """An in-memory CSC X (e.g. a loaded file's) is converted once, not refused."""
    import anndata as ad

    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    a = ad.AnnData(sp.csc_matrix(X))
    got = np.vstack([c.toarray() for _, c in backed.iter_chunks(a, chunk_size=3)])
    np.testing.assert_array_equal(got, X)


def test_chunked_pass_memory_is_bounded(tmp_path):
    """A chunked pass never holds the whole matrix: traced peak << the size of X in memory."""
    path = tmp_path / "mid.h5ad"
    backed.write_synthetic_atlas(path, n_cells=40_000, n_genes=500, n_perturbations=100, chunk_size=5000)
    a = backed.open_backed(path)
    nnz = a.X.group["data"].shape[0]
    full_bytes = nnz * (4 + 4)  # float32 data + int32 indices, the CSR matrix held in memory
    backed.standardize_backed(a, check_values=False)
    tracemalloc.start()
    try:
        backed.pseudobulk_backed(a, chunk_size=500)
        backed.highly_variable_backed(a, chunk_size=500)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.25 * full_bytes, (peak, full_bytes)


def _labelled(key: str, labels, kinds=None, categorical: bool = True):
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(0)
    n = len(labels)
    obs = pd.DataFrame({key: pd.Categorical(labels) if categorical else np.asarray(labels, dtype=object)},
                       index=[f"c{i}" for i in range(n)])
    if kinds is not None:
        obs["perturbation_type"] = pd.Categorical(kinds)
    X = sp.csr_matrix(rng.poisson(1.0, (n, 4)).astype(np.float32))
    return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=["A", "B", "C", "D"]))


@pytest.mark.parametrize("case", ["plain", "object_column_with_spaces", "given_types", "standard_named_key"])
def test_standardize_backed_equals_standardize_on_label_variants(case):
    rng = np.random.default_rng(1)
    pool = ["B", "non-targeting", "A+C", "D", "C"]
    labels = list(rng.choice(pool, 60))
    key, kinds, categorical = "perturbation", None, True
    if case == "object_column_with_spaces":
        labels = [lab + " " if i % 3 == 0 else lab for i, lab in enumerate(labels)]
        key, categorical = "gene", False
    elif case == "given_types":
        kinds = ["knockdown" if lab in ("B", "C") else "overexpression" for lab in labels]
    elif case == "standard_named_key":
        key = "target_genes"
    ref = _labelled(key, labels, kinds, categorical)
    got = ref.copy()
    data.standardize(ref)
    backed.standardize_backed(got)
    assert set(got.obs.columns) == set(ref.obs.columns)
    for col in ref.obs.columns:
        a, b = got.obs[col], ref.obs[col]
        assert a.dtype == b.dtype, col
        if hasattr(b, "cat"):  # same categories in the same order
            assert list(a.cat.categories) == list(b.cat.categories), col
        assert (a.astype(str).to_numpy() == b.astype(str).to_numpy()).all(), col
    assert got.uns["scagents"]["data"] == ref.uns["scagents"]["data"]
    assert got.uns["scagents"]["data"]["n_control"] == labels.count("non-targeting") + (
        labels.count("non-targeting ") if case == "object_column_with_spaces" else 0)


def test_standardize_backed_reports_missing_labels_and_duplicate_names():
    a = _labelled("perturbation", ["A", "non-targeting", None, "B"])
    with pytest.raises(DataError, match="1 of 4 cells have no label"):
        backed.standardize_backed(a)
    b = _labelled("perturbation", ["A", "non-targeting", "B"])
    b.obs_names = ["c0", "c1", "c0"]
    with pytest.raises(DataError, match="cell name"):
        backed.standardize_backed(b)


@pytest.mark.parametrize("categorical", [True, False])
def test_group_codes_from_category_codes_match_per_cell_strings(categorical):
    import pandas as pd

    labels = ["B", "non-targeting", None, "A+C", "B", "ctrl-like", "A+C", None, "non-targeting"]
    a = _labelled("perturbation", [lab if lab is not None else np.nan for lab in labels], categorical=categorical)
    a.obs["is_control"] = np.array([lab in ("non-targeting", "ctrl-like") for lab in labels])
    codes, order = backed._group_codes(a, "perturbation", "control")
    # reference: the per-cell string computation
    ref = pd.Series([lab if lab is not None else np.nan for lab in labels], dtype=object)
    keep = ref.notna().to_numpy()
    names = ref.astype(str).where(~a.obs["is_control"].to_numpy(), "control")
    assert order == ["control", "A+C", "B"]
    expected = np.asarray(pd.Categorical(names, categories=order).codes, dtype=np.int64)
    expected[~keep] = -1
    np.testing.assert_array_equal(codes, expected)
    assert codes.tolist() == [2, 0, -1, 1, 2, 0, 1, -1, 0]


def test_all_zero_backed_matrix_is_refused(tmp_path):
    import anndata as ad
    import pandas as pd

    path = tmp_path / "zeros.h5ad"
    obs = pd.DataFrame({"perturbation": ["non-targeting", "STAT1"] * 5},
                       index=[f"c{i}" for i in range(10)])
    ad.AnnData(sp.csr_matrix((10, 4), dtype=np.float32), obs=obs).write_h5ad(path)
    a = backed.open_backed(path)
    with pytest.raises(DataError, match="X holds only zeros"):
        backed.standardize_backed(a)
    backed.standardize_backed(a, check_values=False)  # the value pass skipped: labels only
    assert a.obs["is_control"].sum() == 5


def _ensembl_guide_file(path):
    """A small screen as other tools write it: Ensembl IDs as var_names with a symbol column,
    guide-level labels (``STAT1g1``, ``STAT1_g2``, ``IRF1_1``) and a lower-case control."""
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(4)
    symbols = ["STAT1", "IRF1", "GAPDH", "CD274", "ACTB", "JAK2"]
    ids = [f"ENSG{i:011d}" for i in range(1, len(symbols) + 1)]
    pool = ["STAT1g1", "STAT1_g2", "IRF1_1", "IRF1_2", "non-targeting", "jak2"]
    labels = [pool[i % len(pool)] for i in range(60)]
    obs = pd.DataFrame({"guide_identity": pd.Categorical(labels)}, index=[f"c{i}" for i in range(60)])
    var = pd.DataFrame({"gene_symbols": symbols}, index=ids)
    X = sp.csr_matrix(rng.poisson(3.0, (60, len(symbols))).astype(np.float32))
    ad.AnnData(X=X, obs=obs, var=var).write_h5ad(path)
    return ids, symbols


def test_backed_path_reads_ensembl_ids_and_guide_labels_as_load(tmp_path):
    path = tmp_path / "ensembl.h5ad"
    ids, symbols = _ensembl_guide_file(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = data.load(path)
    got = backed.open_backed(path)
    backed.standardize_backed(got)
    assert got.isbacked
    assert list(ref.var_names) == symbols
    assert list(got.var_names) == list(ref.var_names)
    assert list(got.var["gene_ids"]) == ids == list(ref.var["gene_ids"])
    for col in STANDARD:
        assert (got.obs[col].astype(str).to_numpy() == ref.obs[col].astype(str).to_numpy()).all(), col
    assert set(got.obs["target_genes"].astype(str)) == {"STAT1", "IRF1", "JAK2", ""}
    assert got.uns["scagents"]["data"] == ref.uns["scagents"]["data"]
    assert got.uns["scagents"]["data"]["gene_names_from"] == "var['gene_symbols']"
    # the file itself is unchanged: its var_names are still the user's IDs
    assert list(backed.open_backed(path).var_names) == ids


def test_response_task_from_backed_names_symbols_for_ensembl_ids(tmp_path):
    from scagents.envs import ResponseTask

    path = tmp_path / "ensembl.h5ad"
    _, symbols = _ensembl_guide_file(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = data.load(path)
    data.lognormalize(ref)
    want = ResponseTask.from_anndata(ref, max_control_cells=50, seed=0)
    got = ResponseTask.from_backed(path, max_control_cells=50, seed=0, chunk_size=17)
    assert got.features["rna"] == want.features["rna"] == symbols
    assert got.labels == want.labels
    assert [p.targets for p in got.perturbations] == [p.targets for p in want.perturbations]
    assert {t for p in got.perturbations for t in p.targets} == {"STAT1", "IRF1", "JAK2"}
    np.testing.assert_allclose(got.deltas["rna"], want.deltas["rna"], rtol=1e-5, atol=1e-6)


def test_response_arrays_backed_names_symbols_when_obs_is_standardised_already(tmp_path):
    path = tmp_path / "ensembl.h5ad"
    ids, symbols = _ensembl_guide_file(path)
    a = backed.open_backed(path)
    backed.standardize_backed(a)
    a.var_names = a.var["gene_ids"].astype(str).to_numpy()  # obs standardised, var_names still IDs
    r = backed.response_arrays_backed(a, max_control_cells=20)
    assert r.genes == symbols
