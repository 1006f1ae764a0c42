"""lognormalize, pseudobulk and perturbation_effects on data small enough to compute by hand."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scagents import data as D
from scagents.errors import DataError, PerturbationError
from tests.conftest import shared_file

#   cell  label          X (genes g0 g1 g2)
X = np.array([[1, 0, 2],    # ctrl
              [3, 0, 0],    # ctrl         -> control mean [2, 0, 1]
              [4, 2, 0],    # A
              [0, 2, 2],    # A            -> A mean [2, 2, 1]
              [1, 1, 1]],   # B+C          -> B+C mean [1, 1, 1]
             dtype=np.float32)
LABELS = ["non-targeting", "non-targeting", "A", "A", "B+C"]


def tiny(sparse: bool) -> ad.AnnData:
    adata = ad.AnnData(sp.csr_matrix(X) if sparse else X.copy(),
                       obs=pd.DataFrame({"perturbation": LABELS}, index=[f"c{i}" for i in range(5)]),
                       var=pd.DataFrame(index=["g0", "g1", "g2"]))
    D.standardize(adata)
    return adata


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_pseudobulk_by_hand(sparse):
    pb = D.pseudobulk(tiny(sparse), layer=None)
    assert list(pb.index) == ["control", "A", "B+C"]
    np.testing.assert_allclose(pb.to_numpy(), [[2, 0, 1], [2, 2, 1], [1, 1, 1]])
    assert pb.attrs["n_cells"] == {"control": 2, "A": 2, "B+C": 1}
    assert pb.index.name == "target_genes" and list(pb.columns) == ["g0", "g1", "g2"]


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_effects_by_hand(sparse):
    eff = D.perturbation_effects(tiny(sparse), layer=None)
    assert list(eff.index) == ["A", "B+C"]
    np.testing.assert_allclose(eff.to_numpy(), [[0, 2, 0], [-1, 1, 0]])


def test_pseudobulk_by_other_column_and_no_control_relabel():
    adata = tiny(False)
    pb = D.pseudobulk(adata, by="perturbation", layer=None, control=None)
    assert list(pb.index) == ["A", "B+C", "non-targeting"]
    np.testing.assert_allclose(pb.loc["non-targeting"], [2, 0, 1])
    relabelled = D.pseudobulk(adata, by="perturbation", layer=None)
    assert list(relabelled.index) == ["control", "A", "B+C"]


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_lognormalize_by_hand(sparse):
    adata = tiny(sparse)
    adata.X[4] = 0  # a cell with no counts stays 0 instead of dividing by zero
    assert D.lognormalize(adata, target_sum=100) is None
    out = adata.layers["lognorm"]
    assert sp.issparse(out) == sparse
    out = out.toarray() if sparse else out
    expected = np.log1p(X[0] / X[0].sum() * 100)
    np.testing.assert_allclose(out[0], expected, rtol=1e-6)
    np.testing.assert_array_equal(out[4], 0)
    assert adata.uns["scagents"]["data"]["lognorm"] == {"layer": "lognorm", "target_sum": 100.0,
                                                        "from_counts": True}
    pb = D.pseudobulk(adata)  # layer="lognorm" by default
    np.testing.assert_allclose(pb.loc["control"], out[:2].mean(axis=0), rtol=1e-6)


def test_lognormalize_copy_and_normalised_input():
    adata = tiny(False)
    adata.X = adata.X / 3.0
    adata.uns["scagents"]["data"]["is_counts"] = False
    out = D.lognormalize(adata, copy=True, layer="norm")
    assert "norm" not in adata.layers
    np.testing.assert_array_equal(out.layers["norm"], adata.X)
    assert out.uns["scagents"]["data"]["lognorm"]["from_counts"] is False


def test_mudata_input_uses_rna():
    rna = tiny(True)
    mdata = md.MuData({"rna": rna, "atac": ad.AnnData(np.ones((5, 2), dtype=np.float32),
                                                      obs=pd.DataFrame(index=rna.obs_names))})
    D.lognormalize(mdata)
    assert "lognorm" in mdata.mod["rna"].layers
    eff = D.perturbation_effects(mdata, layer=None)
    np.testing.assert_allclose(eff.loc["A"], [0, 2, 0])


def test_errors():
    adata = tiny(False)
    with pytest.raises(DataError, match=r"no 'lognorm'.*lognormalize\(adata\)"):
        D.pseudobulk(adata)
    with pytest.raises(PerturbationError, match="no column 'cell_type'.*standardize"):
        D.pseudobulk(adata, by="cell_type", layer=None)
    raw = ad.AnnData(X.copy(), obs=pd.DataFrame({"g": LABELS}, index=[f"c{i}" for i in range(5)]))
    with pytest.raises(PerturbationError, match="No control cells"):
        D.perturbation_effects(raw, by="g", layer=None)


def test_papalexi_ifng_pathway_knockouts_lower_stat1():
    adata = D.load(shared_file("perturbseq/papalexi2021_thp1_ifng_crispr.h5ad"))
    assert sp.issparse(adata.X)
    D.lognormalize(adata)
    assert sp.issparse(adata.layers["lognorm"])  # not densified
    eff = D.perturbation_effects(adata)
    assert eff.shape == (25, adata.n_vars)
    # STAT1 knockout removes STAT1 mRNA; knocking out the IFN-gamma receptor / JAK2 lowers it too
    assert eff.loc["STAT1", "STAT1"] < -1.0
    for target in ("IFNGR1", "IFNGR2", "JAK2"):
        assert eff.loc[target, "STAT1"] < -0.5
    assert abs(eff.loc["CD86", "STAT1"]) < 0.2  # an unrelated surface gene


def test_gene_effects_hand_computed():
    ctrl = np.array([[1.0, 0.0], [1.0, 0.0], [1.2, 0.0]])
    pert = np.array([[1.0, 1.0], [1.0, 1.2], [1.2, 0.8]])
    df = D.gene_effects(ctrl, pert, ["b_flat", "a_up"])
    assert list(df.index) == ["a_up", "b_flat"]  # sorted by |delta|
    assert df.loc["a_up", "delta"] == pytest.approx(1.0)
    assert df.loc["b_flat", "delta"] == pytest.approx(0.0)
    assert df.loc["a_up", "control_mean"] == pytest.approx(0.0)
    assert df.loc["a_up", "padj"] < 0.05 < df.loc["b_flat", "padj"]
