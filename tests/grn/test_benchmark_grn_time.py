"""The time-aware candidates of the network selection (benchmarks/grn_time.py)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

from tests.conftest import load_benchmark


def _mod():
    return load_benchmark("grn_time")


def _driven_in_time(n: int = 600, seed: int = 0) -> ad.AnnData:
    """Cells of ``dB/dt = A - B`` from ``B = 0``, each with its own constant ``A`` and an unrelated constant
    ``C`` (both uniform), observed at a random time, small measurement noise."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.0, 3.0, n)
    A, C = rng.uniform(0.0, 1.0, n), rng.uniform(0.0, 1.0, n)
    X = np.c_[A, A * (1 - np.exp(-t)), C] + 0.01 * rng.standard_normal((n, 3))
    a = ad.AnnData(X.astype(np.float32))
    a.var_names = ["A", "B", "C"]
    a.obs["pseudotime"] = t
    return a


def test_cell_velocity_recovers_a_linear_trend():
    m = _mod()
    t = np.linspace(0, 1, 200)
    X = np.c_[2 * t, -3 * t + 1]
    V = m.cell_velocity(X, t, k=5)
    assert np.allclose(V, [[2.0, -3.0]], atol=1e-6)


def test_mean_derivative_of_a_linear_trend():
    m = _mod()
    t = np.linspace(0, 1, 300)
    M, D = m.mean_derivative(np.c_[5 * t], t, n_bins=6)
    assert M.shape == D.shape == (6, 1)
    assert np.allclose(D, 5.0)


@pytest.mark.parametrize("how", ["velocity_ridge", "velocity_trees"])
def test_velocity_candidates_find_the_driver(how):
    m = _mod()
    e = m.time_edges(_driven_in_time(), how)
    assert len(e) == 6 and (e["source"] != e["target"]).all()
    assert (e["source"].iloc[0], e["target"].iloc[0]) == ("A", "B")
    assert e["weight"].iloc[0] > 0  # an activation


def test_time_feature_drops_the_time_column():
    e = _mod().time_edges(_driven_in_time(200), "time_feature",
                          base={"method": "ensemble", "trees": "extra", "n_trees": 10})
    assert set(e["source"]) | set(e["target"]) == {"A", "B", "C"}


def test_unknown_candidate_raises():
    with pytest.raises(ValueError, match="Unknown time-aware"):
        _mod().time_edges(_driven_in_time(50), "nope")
