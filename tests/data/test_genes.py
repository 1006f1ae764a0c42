"""Which genes the network and policy agents work on (scagents.data.genes.select_genes)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

from scagents.data.genes import select_genes


def _counts(n_cells: int = 300, n_genes: int = 400, n_variable: int = 10, seed: int = 0) -> ad.AnnData:
    """Poisson counts with gene means spread over 2–20; the first ``n_variable`` genes switch between
    0.1x and 1.9x their mean (same mean, far larger dispersion than the other genes of their bin)."""
    rng = np.random.default_rng(seed)
    lam = np.tile(rng.uniform(2, 20, n_genes), (n_cells, 1))
    on = rng.random((n_cells, n_variable)) < 0.5
    lam[:, :n_variable] *= np.where(on, 1.9, 0.1)
    a = ad.AnnData(sp.csr_matrix(rng.poisson(lam).astype(np.float32)))
    a.var_names = [f"g{i}" for i in range(n_genes)]
    return a


def test_keeps_goal_and_regulators_then_variable_genes_within_the_cap():
    a = _counts()
    table = select_genes(a, goal_genes=["g200", "not_a_gene"], regulators=["g300", "g301"], n_genes=40,
                         n_regulators=10)
    assert len(table) == 40
    assert table.at["g200", "reason"] == "goal"
    assert table.loc[["g300", "g301"], "reason"].eq("perturbation target").all()
    hv = table.index[table["reason"] == "highly variable"]
    # the 10 switching genes are the most variable ones (37 slots are left after the named genes)
    assert {f"g{i}" for i in range(10)} <= set(hv)
    assert list(table.index) == [g for g in a.var_names if g in set(table.index)]  # data order
    # regulators: the named genes first, then the most variable genes
    regs = set(table.index[table["regulator"]])
    assert len(regs) == 10 and {"g200", "g300", "g301"} <= regs
    assert regs - {"g200", "g300", "g301"} <= {f"g{i}" for i in range(10)}


def test_goal_genes_exceed_the_cap_and_regulators_fill_it_by_variability():
    a = _counts()
    table = select_genes(a, goal_genes=["g100", "g101"], regulators=["g5", "g350", "g351"], n_genes=3)
    assert set(table.index) == {"g100", "g101", "g5"}  # g5 (switching) is the most variable target
    table = select_genes(a, goal_genes=["g100", "g101", "g102", "g103"], n_genes=2)
    assert set(table.index) == {"g100", "g101", "g102", "g103"}  # the goal's genes are always kept


def test_small_data_keeps_every_gene_as_regulator():
    a = _counts(n_genes=50)
    table = select_genes(a, goal_genes=["g7"], n_genes=2000, n_regulators=500)
    assert list(table.index) == list(a.var_names)
    assert table["regulator"].all()
    assert table.at["g7", "reason"] == "goal"
    with pytest.raises(ValueError, match="at least 1"):
        select_genes(a, n_genes=0)
