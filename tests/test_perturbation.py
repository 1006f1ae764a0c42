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
