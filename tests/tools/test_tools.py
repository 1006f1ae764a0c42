"""The LangChain tools: schemas, sandboxing, clear errors, short results, real outputs on disk."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from langchain_core.tools import StructuredTool

from scagents.tools import TOOL_NAMES, Workspace, WorkspacePathError, make_tools
from scagents.tools import schemas as S
from scagents.tools.tools import Toolkit


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tools")


@pytest.fixture(scope="module")
def tools(workdir) -> dict[str, StructuredTool]:
    return {t.name: t for t in make_tools(workdir, n_cells=60, policy_steps=256, train_steps=512,
                                          task_cells=32, policy_attempts=1)}


@pytest.fixture(scope="module")
def simulated(tools) -> dict:
    return json.loads(tools["simulate_perturbation"].invoke({"targets": ["IFNG"], "seed": 1}))


def test_every_tool_has_its_pydantic_schema(tools):
    assert tuple(tools) == TOOL_NAMES
    expected = {"load_data": S.LoadData, "integrate": S.Integrate, "infer_network": S.InferNetwork,
                "simulate_perturbation": S.SimulatePerturbation, "train_policy": S.TrainPolicy,
                "predict_perturbation": S.PredictPerturbation,
                "recommend_perturbations": S.RecommendPerturbations,
                "ingest_results": S.IngestResults, "steer_cells": S.SteerCells,
                "write_report": S.WriteReport,
                "list_files": S.ListFiles}
    for name, tool in tools.items():
        assert tool.args_schema is expected[name]
        schema = tool.args_schema.model_json_schema()
        assert all(p.get("description") for p in schema["properties"].values()), name
        assert len(tool.description) > 40


@pytest.mark.parametrize("name, args, expect", [
    ("simulate_perturbation", {"targets": ["IFNGX"]}, "Closest gene names: IFNG"),
    ("simulate_perturbation", {"targets": "IFNG"}, "argument 'targets': Input should be a valid list"),
    ("simulate_perturbation", {"targets": ["IFNG"], "n_cells": 3}, "argument 'n_cells'"),
    ("predict_perturbation", {"targets": ["NOTAGENE1"]}, "NOTAGENE1"),
    ("load_data", {"path": "../outside.h5ad"}, "outside the working directory"),
    ("load_data", {"path": "/etc/passwd"}, "outside the working directory"),
    ("load_data", {"path": "missing.h5ad"}, "No data file 'missing.h5ad'"),
    ("infer_network", {"dataset": "missing.h5mu"}, "No data set 'missing.h5mu'"),
    ("recommend_perturbations", {"n": "eight"}, "argument 'n': Input should be a valid integer"),
    ("recommend_perturbations", {"n": -3, "campaign": "c"}, "greater than or equal to 1"),
    ("recommend_perturbations", {"n": 3, "colour": "red"}, "argument 'colour'"),
    ("recommend_perturbations", {"n": 3, "campaign": "new"}, "give goal= and candidates="),
    ("ingest_results", {"campaign": "nope", "results_path": "../r.csv"},
     "outside the working directory"),
    ("write_report", {"run": "../../x"}, "outside the working directory"),
])
def test_bad_calls_return_a_clear_message(tools, name, args, expect):
    out = tools[name].invoke(args)
    assert isinstance(out, str) and out.startswith("error:"), out
    assert expect in out
    assert " fix: " in out and "Traceback" not in out


def test_no_run_yet_says_which_tool_to_call(tmp_path):
    out = {t.name: t for t in make_tools(tmp_path)}["recommend_perturbations"].invoke({"n": 8})
    assert out.startswith("error:") and "call predict_perturbation first" in out


def test_unexpected_failure_is_a_message_and_logged(tmp_path, monkeypatch):
    def boom(self, a):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Toolkit, "list_files", boom)
    out = {t.name: t for t in make_tools(tmp_path)}["list_files"].invoke({})
    assert out.startswith("error: list_files failed unexpectedly (RuntimeError: disk on fire)")
    assert "disk on fire" in (tmp_path / "tool_errors.log").read_text()


def test_workspace_refuses_escapes(tmp_path):
    ws = Workspace(tmp_path / "w")
    assert ws.resolve("a/b.csv") == ws.root / "a" / "b.csv"
    assert ws.resolve(ws.root / "x.h5ad") == ws.root / "x.h5ad"
    for bad in ("../x", "a/../../x", "/tmp", ""):
        with pytest.raises(WorkspacePathError):
            ws.resolve(bad)
    (tmp_path / "secret.txt").write_text("no")
    os.symlink(tmp_path / "secret.txt", ws.root / "link.txt")
    with pytest.raises(WorkspacePathError, match="outside"):
        ws.resolve("link.txt")
    with pytest.raises(FileNotFoundError):
        ws.resolve("none.csv", must_exist=True)


def test_large_results_are_cut_and_kept_on_disk(tmp_path):
    ws = Workspace(tmp_path)
    result = {"name": "big", "genes": [{"gene": f"G{i}", "delta": i / 7} for i in range(500)],
              "small": [1, 2]}
    text = ws.summarise("demo", result)
    assert len(text) <= 2000
    short = json.loads(text)
    assert short["genes_total"] == 500 and 1 <= len(short["genes"]) < 500
    assert short["genes"][0] == {"gene": "G0", "delta": 0.0}
    full = json.loads((tmp_path / short["full_result"]).read_text())
    assert len(full["genes"]) == 500 and full["small"] == [1, 2]
    assert json.loads(ws.summarise("demo", {"a": 1})) == {"a": 1}  # short results are untouched


def test_simulate_keeps_objects_on_disk(simulated, workdir):
    assert simulated["perturbation"] == "IFNG knockout"
    down = [r["gene"] for r in simulated["top_down"]]
    assert "IFNG" in down and all(r["delta"] < 0 for r in simulated["top_down"])
    effects = pd.read_csv(workdir / simulated["effects_csv"], index_col=0)
    assert effects.shape[0] == 23 and effects.loc["IFNG", "delta"] < -0.5
    assert (workdir / simulated["dataset"]).is_file()
    assert set(simulated["fate_shift"]) == {"control", "IFNG knockout"}
    # the twin's Th1 fate needs IFNG: knocking it out removes Th1 cells
    assert simulated["fate_shift"]["IFNG knockout"].get("Th1", 0.0) < \
        simulated["fate_shift"]["control"].get("Th1", 0.0)


def test_load_and_infer_network(tools, simulated, workdir):
    loaded = json.loads(tools["load_data"].invoke({"path": simulated["dataset"], "name": "ifng"}))
    assert loaded["dataset"] == "datasets/ifng.h5mu"
    assert loaded["n_cells"] == 120 and loaded["n_genes"] == 23
    assert loaded["n_control_cells"] == 60 and loaded["cells_per_perturbation"] == {"IFNG": 60}
    net = json.loads(tools["infer_network"].invoke(
        {"dataset": loaded["dataset"], "focus_genes": ["ifng"], "top_k": 3, "use_atac": False}))
    edges = pd.read_csv(workdir / net["edges_csv"])
    assert len(edges) == net["n_edges"] > 0
    assert edges.groupby("target").size().max() <= 3  # top_k regulators per target
    assert net["focus"]["IFNG"] and all("IFNG" in (e["source"], e["target"])
                                        for e in net["focus"]["IFNG"])
    listing = json.loads(tools["list_files"].invoke({}))
    assert net["edges_csv"] in [f["path"] for f in listing["files"]]


def test_campaign_round_trip(tools, workdir):
    rec = json.loads(tools["recommend_perturbations"].invoke(
        {"n": 4, "campaign": "ifng", "goal": "find regulators of IFNG", "designer": "random",
         "candidates": ["STAT1", "IRF1", "JAK2", "TBX21", "GATA3", "STAT4", "IL12RB2"]}))
    genes = [r["gene"] for r in rec["recommendations"]]
    assert rec["round"] == 1 and len(set(genes)) == 4
    assert pd.read_csv(workdir / rec["csv"])["gene"].tolist() == genes
    (workdir / "round0.csv").write_text("gene,score\n" + "".join(
        f"{g},{i - 1.5}\n" for i, g in enumerate(genes)))
    ing = json.loads(tools["ingest_results"].invoke({"campaign": "ifng", "results_path": "round0.csv"}))
    assert ing["n_new"] == 4 and ing["rounds"] == [1] and not ing["duplicate_file"]
    assert ing["score_rule"].startswith("score = column 'score' as written")
    assert ing["n_ignored_not_proposed"] == ing["n_ignored_not_candidates"] == 0
    assert ing["progress_by_round"][0]["measured"] == 4
    again = json.loads(tools["ingest_results"].invoke({"campaign": "ifng",
                                                       "results_path": "round0.csv"}))
    assert again["duplicate_file"] and again["n_new"] == 0
    nxt = json.loads(tools["recommend_perturbations"].invoke(
        {"n": 10, "campaign": "ifng", "designer": "ridge_ucb"}))
    assert nxt["round"] == 2 and len(nxt["recommendations"]) == 3  # only 3 untested left
    assert not set(genes) & {r["gene"] for r in nxt["recommendations"]} and "note" in nxt
    rep = json.loads(tools["write_report"].invoke({"campaign": "ifng"}))
    hist = pd.read_csv(workdir / rep["history_csv"])
    assert len(hist) == 7 and hist["measured"].notna().sum() == 4
    assert (workdir / rep["progress_plot"]).stat().st_size > 1000
    # results of the proposed genes only: no library, so the measured proposals' scale and no random reference
    assert rep["scale"].startswith("scale: measured proposals only") and rep["random_reference"].startswith(
        "no random reference")
    assert rep["progress"][0].startswith("round 1: 4 of 4 measured, ") and "random batch" not in rep["progress"][0]
    assert rep["progress_by_round"][0]["expected_random"] is None


def test_campaign_report_states_hits_per_round_against_random_batches(tools, workdir):
    """A whole-library screen file: the report answer says the library's scale and, per round, the
    hits found and the hits a random batch of the same size is expected to hold."""
    cands = ["STAT1", "IRF1", "JAK2", "TBX21", "GATA3", "STAT4", "IL12RB2", "IFNGR1"]
    rng = np.random.default_rng(1)
    scores = {**dict(zip(cands, (6.0, -6.0, 0.1, 0.2, -0.2, 0.0, 0.3, -0.1), strict=True)),
              **{f"LIB{i}": float(v) for i, v in enumerate(rng.normal(0, 1, 150))}}
    (workdir / "whole_screen.csv").write_text("gene,score\n" + "".join(f"{g},{v}\n" for g, v in scores.items()))
    rec = json.loads(tools["recommend_perturbations"].invoke(
        {"n": 4, "campaign": "whole", "goal": "find regulators of IFNG", "designer": "random", "candidates": cands}))
    ing = json.loads(tools["ingest_results"].invoke({"campaign": "whole", "results_path": "whole_screen.csv"}))
    assert ing["library"].startswith("library: 158 genes with a score in this file")
    rep = json.loads(tools["write_report"].invoke({"campaign": "whole"}))
    v = np.array(list(scores.values()))
    med = np.median(v)
    hit = np.abs(v[:8] - med) / (1.4826 * np.median(np.abs(v - med))) >= 2
    share = hit.sum() / 8
    found = int(sum(hit[cands.index(r["gene"])] for r in rec["recommendations"]))
    assert rep["scale"].startswith("scale: library of 158 genes (whole_screen.csv)")
    assert rep["progress"][0].startswith(f"round 1: 4 of 4 measured, {found} hit")
    assert f"(random batch of 4: {4 * share:.2f} expected)" in rep["progress"][0]
    assert rep["progress_by_round"][0]["expected_random"] == pytest.approx(4 * share)


def test_campaign_from_a_library_file_as_a_biologist_keeps_it(tools, workdir):
    """A candidates file with a 'gene' header and blank lines, one whole-library results file
    ingested after every round, a round proposed before the last one was measured."""
    lib = ["STAT1", "IRF1", "JAK2", "TBX21", "GATA3", "STAT4", "IL12RB2", "NOTAGENE1"]
    (workdir / "library.txt").write_text("gene\n\n" + "\n".join(lib) + "\n")
    (workdir / "screen.csv").write_text("gene,score\n" + "".join(f"{g},{i / 10}\n" for i, g in enumerate(lib)))
    call = {"n": 3, "campaign": "lib", "goal": "find regulators of IFNG", "designer": "random",
            "candidates_file": "library.txt"}
    rec = json.loads(tools["recommend_perturbations"].invoke(call))
    assert rec["candidates"].startswith("candidates: 8 gene(s) read from library.txt (first line 'gene' taken "
                                        "as a header and skipped)")
    assert "unmeasured_earlier" not in rec
    from scagents.campaign.features import default_data_dir

    data = default_data_dir()
    if data is not None and data.exists():  # default features (the shared PBMC data): the gene without a row is named
        assert "NOTAGENE1" in rec["candidates"]
    ing = json.loads(tools["ingest_results"].invoke({"campaign": "lib", "results_path": "screen.csv"}))
    assert ing["n_new"] == 3 and ing["n_ignored_not_proposed"] == 5
    nxt = json.loads(tools["recommend_perturbations"].invoke({"n": 2, "campaign": "lib"}))
    assert "candidates" not in nxt and "unmeasured_earlier" not in nxt
    third = json.loads(tools["recommend_perturbations"].invoke({"n": 2, "campaign": "lib"}))
    assert third["unmeasured_earlier"].startswith("2 gene(s) proposed in round(s) 2 are not measured yet")
    again = json.loads(tools["ingest_results"].invoke({"campaign": "lib", "results_path": "screen.csv"}))
    assert not again["duplicate_file"] and again["n_new"] == 4 and again["rounds"] == [2, 3]


@pytest.mark.slow
def test_predict_then_report_and_integrate_and_train(tools, simulated, workdir):
    pred = json.loads(tools["predict_perturbation"].invoke({"targets": ["IFNG"]}))
    assert pred["perturbation"] == "IFNG knockout" and pred["top_down"]
    # the held-out claim is computed from the run's stored label sets, not a fixed phrase
    assert "The goal's perturbation (IFNG knockout) was held out: its" in pred["note"]
    rows = pd.read_csv(workdir / pred["prediction_csv"], index_col=0)
    first = pred["top_down"][0]
    assert rows["delta"].idxmin() == first["gene"]  # the summary quotes the file on disk
    assert rows.loc[first["gene"], "delta"] == pytest.approx(first["delta"], abs=1e-3)
    rep = json.loads(tools["write_report"].invoke({"run": pred["run_id"]}))
    assert (workdir / rep["files"]["markdown"]).read_text().startswith("# scagents report: IFNG")
    assert "IFNG knockout" in rep["excerpt"]
    integ = json.loads(tools["integrate"].invoke({"dataset": simulated["dataset"], "n_pcs": 5}))
    assert integ["n_clusters"] >= 1 and sum(integ["cluster_sizes"].values()) <= integ["n_cells"]
    assert (workdir / integ["dataset"]).is_file()
    trained = json.loads(tools["train_policy"].invoke({"holdout": ["STAT1", "TBX21"], "seed": 0}))
    assert sorted(trained["heldout"]) == ["STAT1", "TBX21"]
    assert (workdir / trained["policy"]).is_file() and trained["steps"] == 512
    assert set(trained["heldout_mean_metrics"]) == {"mse", "pearson", "pearson_delta_topk"}
    assert trained["heldout_mean_metrics"]["mse"] >= 0
