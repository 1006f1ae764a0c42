"""Tests of the Perturbation type's constructors."""

from __future__ import annotations

from scagents.perturbation import Perturbation


def test_from_obs_reads_standardised_columns():
    assert Perturbation.from_obs("STAT1+IRF1", "knockdown") == Perturbation(("STAT1", "IRF1"), kind="knockdown")
    assert Perturbation.from_obs("IFNG", "CRISPR-KO").kind == "knockout"      # unknown kind → knockout
    assert Perturbation.from_obs("", "knockout") is None                      # no target named
    assert Perturbation.from_obs("non-targeting", "control") is None          # control cells


def test_target_groups_gather_the_labels_of_one_target_set():
    from scagents.perturbation import target_groups

    targets = [("STAT2",), ("IRF1",), ("STAT2",), ("A", "B"), ("B", "A"), ("C",)]
    assert target_groups(targets) == [[0, 2], [1], [3, 4], [5]]
    assert target_groups([("A",), ("B",)]) == [[0], [1]]
    # kinds stay apart, as for the goal's own labels
    kinds = ["knockout", "knockout", "overexpression", "knockout"]
    assert target_groups([("A",), ("A",), ("A",), ("B",)], kinds) == [[0, 1], [2], [3]]


def test_unit_mean_averages_each_units_labels_first():
    import numpy as np

    from scagents.perturbation import unit_mean, unit_means

    # a gene with three labels weighs as much as a gene with one
    values, units = [1.0, 1.0, 1.0, 4.0], ["A", "A", "A", "B"]
    assert unit_means(values, units).tolist() == [1.0, 4.0]
    assert unit_mean(values, units) == 2.5 and np.mean(values) == 1.75
    # NaN skipped within a unit and across units; NaN when every unit is
    assert unit_mean([np.nan, 2.0, np.nan], ["A", "A", "B"]) == 2.0
    assert np.isnan(unit_mean([np.nan, np.nan], ["A", "B"]))


def test_unit_mean_with_one_label_per_unit_is_the_mean_over_labels():
    """Bit for bit the pandas / NumPy means the validation used before units (NaN skipped)."""
    import numpy as np
    import pandas as pd

    from scagents.perturbation import unit_mean

    rng = np.random.default_rng(3)
    for trial in range(300):
        v = rng.normal(size=rng.integers(1, 30)) * 10.0 ** rng.uniform(-3, 3)
        if trial % 2:
            v[rng.random(len(v)) < 0.3] = np.nan
        if np.isnan(v).all():
            continue
        for units in (None, [f"G{i} knockout" for i in range(len(v))]):
            assert unit_mean(v, units) == float(pd.Series(v).mean()) == float(np.nanmean(v))
