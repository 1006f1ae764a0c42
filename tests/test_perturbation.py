"""Tests of the Perturbation type's constructors."""

from __future__ import annotations

from scagents.perturbation import Perturbation


def test_from_obs_reads_standardised_columns():
    assert Perturbation.from_obs("STAT1+IRF1", "knockdown") == Perturbation(("STAT1", "IRF1"), kind="knockdown")
    assert Perturbation.from_obs("IFNG", "CRISPR-KO").kind == "knockout"      # unknown kind → knockout
    assert Perturbation.from_obs("", "knockout") is None                      # no target named
    assert Perturbation.from_obs("non-targeting", "control") is None          # control cells
