"""The integration agent: what it integrates (modalities, cells) and what its line says."""

from __future__ import annotations

import warnings

import mudata as md
import numpy as np

from scagents.agents.integration import integrable, integration_agent
from scagents.agents.state import DataSummary, RunOptions
from tests.test_integration import _synthetic_mudata


def _state(tmp_path, mdata: md.MuData) -> dict:
    mdata.write(tmp_path / "data.h5mu")
    data = DataSummary(source="x", description="x", path="data.h5mu", n_cells=mdata.n_obs,
                       n_genes=mdata["rna"].n_vars, modalities=list(mdata.mod), goal={},
                       perturbation={"targets": ["g1"], "kind": "knockout"}, goal_measured=False,
                       measured=[], candidates=[])
    opts = RunOptions(goal="predict g1 knockout", progress=False)
    return {"data": data.model_dump(), "out_dir": str(tmp_path), "options": opts.model_dump()}


def _mismatched() -> md.MuData:
    """RNA of 240 cells, ATAC of 150 of them (in reverse order), protein of all."""
    full = _synthetic_mudata()
    atac = full["atac"][::-1][:150].copy()
    mdata = md.MuData({"rna": full["rna"].copy(), "atac": atac, "prot": full["prot"].copy()})
    mdata.obs["is_control"] = full.obs["is_control"].reindex(mdata.obs_names).to_numpy()
    return mdata


def test_integrable_keeps_the_cells_of_every_modality():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sub, notes = integrable(_mismatched())
    assert sub.n_obs == 150 and all(sub[m].n_obs == 150 for m in sub.mod)
    assert all(sub[m].obs_names.equals(sub.obs_names) for m in sub.mod)
    assert "is_control" in sub.obs
    assert notes == ["150 cells are in every modality (rna 240, atac 150, prot 240 cells): only "
                     "they are integrated"]


def test_integrable_leaves_empty_modalities_and_disjoint_cells_out():
    full = _synthetic_mudata()
    no_peaks = md.MuData({"rna": full["rna"].copy(), "atac": full["atac"][:, :0].copy()})
    sub, notes = integrable(no_peaks)
    assert sub is None and notes == ["modality 'atac' left out: it holds 240 cells × 0 features"]
    other = full["atac"].copy()
    other.obs_names = [f"x{i}" for i in range(other.n_obs)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sub, notes = integrable(md.MuData({"rna": full["rna"].copy(), "atac": other}))
    assert sub is None and notes[0].startswith("only 0 cells are in every modality")


def test_agent_integrates_shared_cells_and_says_what(tmp_path):
    """ATAC filtered apart from RNA: the agent integrates the 150 shared cells (it failed with
    'do not hold the same cells') and its line names the modalities, the cells and that the
    prediction is made from RNA."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        up = integration_agent(_state(tmp_path, _mismatched()), umap=False)
    s = up["integration"]
    assert s["status"] == "done" and s["n_cells"] == 150 and s["modalities"] == ["rna", "atac", "prot"]
    line = up["log"][0]["summary"]
    assert "rna + atac + prot on 150 cells" in line and "made from RNA" in line
    assert "150 cells are in every modality" in line
    written = md.read_h5mu(tmp_path / s["path"])
    assert written.n_obs == 150 and "cluster" in written.obs


def test_agent_skips_an_empty_modality_in_one_line(tmp_path):
    full = _synthetic_mudata()
    mdata = md.MuData({"rna": full["rna"].copy(), "atac": full["atac"][:, :0].copy()})
    up = integration_agent(_state(tmp_path, mdata), umap=False)
    assert up["integration"]["status"] == "skipped"
    assert up["log"][0]["summary"] == ("modality 'atac' left out: it holds 240 cells × 0 features: "
                                       "fewer than two modalities to integrate")


def test_standardised_counts_are_not_logged_twice_after_integration():
    """integrate() log-normalises X: the record of standardize() must then say X holds no counts,
    else lognormalize() (the report's cell plot) logs the log values again."""
    from scagents.data import lognormalize, standardize

    rna = _synthetic_mudata()["rna"].copy()
    rna.obs["perturbation"] = ["control"] * 120 + ["g1"] * 120
    standardize(rna)
    assert rna.uns["scagents"]["data"]["is_counts"]
    mdata = md.MuData({"rna": rna, "prot": _synthetic_mudata()["prot"].copy()})
    from scagents.integration import integrate

    integrate(mdata, n_pcs=5, joint="concat", umap=False)
    lognormalize(mdata["rna"])
    x = mdata["rna"].X
    assert np.allclose(mdata["rna"].layers["lognorm"], x.toarray() if hasattr(x, "toarray") else x,
                       atol=1e-5)


