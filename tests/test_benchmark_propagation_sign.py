"""The propagation-sign benchmark's paired statistics and pre-registered rule (benchmarks/propagation_sign.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t

from tests.conftest import load_benchmark


def _scores(mse_shift: float, pearson_shift: float, n_splits: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for s in range(n_splits):
        base_mse, base_p = 0.05 + 0.01 * rng.random(), 0.5 + 0.1 * rng.random()
        noise = 1e-4 * rng.normal()
        for v, dm, dp in (("coef", 0.0, 0.0), ("edges", mse_shift + noise, pearson_shift + noise)):
            rows.append({"variant": v, "seed": s, "fold": 0, "mse": base_mse + dm, "pearson_delta_topk": base_p + dp})
    return pd.DataFrame(rows)


def test_t_interval_uses_n_minus_1_degrees_of_freedom():
    bench = load_benchmark("propagation_sign")
    d = np.array([1.0, 2.0, 3.0, np.nan])
    out = bench.t_interval(d)
    half = t.ppf(0.975, 2) * 1.0 / np.sqrt(3)
    assert out["n"] == 3 and out["mean_diff"] == pytest.approx(2.0)
    assert out["ci95"] == pytest.approx([2.0 - half, 2.0 + half])


@pytest.mark.parametrize(("mse_shift", "pearson_shift", "mse_lower", "pearson_ok"), [
    (-0.01, 0.0, True, True),     # lower MSE, same Pearson: passes
    (0.01, 0.0, False, True),     # higher MSE: fails
    (-0.01, -0.1, True, False),   # lower MSE but clearly lower Pearson: fails
])
def test_rule(mse_shift, pearson_shift, mse_lower, pearson_ok):
    cmp = load_benchmark("propagation_sign").compare(_scores(mse_shift, pearson_shift))
    assert cmp["passes"] == {"mse_lower": mse_lower, "pearson_not_lower": pearson_ok}
    assert cmp["n_splits"] == 6 and cmp["paired_mse"]["n"] == 6
