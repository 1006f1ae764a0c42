"""Hostile calls of every tool, directly and over an MCP client session (issue 15).

Every case is a call that must fail cleanly. Each one asserts:

* the answer is ONE line starting ``error:`` with a ``fix:``, no traceback text, at most
  :data:`~scagents.tools.workspace.MAX_ERROR_CHARS` characters (over MCP: ``isError`` is set);
* nothing of a secret sentinel file outside the working directory appears in the answer, and no
  line of ``/etc/passwd``;
* every file in the working directory and outside it is byte-identical afterwards (sha256), no file
  was added anywhere (no stray output, no ``tool_errors.log``: no failure was unexpected), and a
  pickle payload planted in the data never ran.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from scagents.tools import make_tools
from scagents.tools.tools import RUN_RESULT
from scagents.tools.workspace import MAX_ERROR_CHARS, OUTSIDE_LINK
from tests.tools.mcp_client import with_mcp_session

ROOT = Path(__file__).resolve().parents[2]
SENTINEL = "SENTINEL-7f3c-do-not-echo"
SYSTEM_FILE_HEAD = "root:x:0:0"  # the first line of /etc/passwd, never to be echoed


class Payload:
    """Unpickling this creates ``marker`` (what a crafted file would do, harmlessly)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _tiny_h5ad(path: Path) -> None:
    rng = np.random.default_rng(0)
    genes = [f"G{i}" for i in range(30)]
    labels = ["non-targeting"] * 40 + ["G1"] * 20 + ["G2"] * 20 + ["G3"] * 20
    a = ad.AnnData(rng.poisson(3, (len(labels), len(genes))).astype(np.float32),
                   obs=pd.DataFrame({"perturbation": labels},
                                    index=[f"c{i}" for i in range(len(labels))]),
                   var=pd.DataFrame(index=genes))
    a.write_h5ad(path)


def _build(base: Path) -> tuple[Path, Path]:
    """A working directory full of traps, and a folder outside it holding secrets."""
    ws, out = base / "ws", base / "outside"
    ws.mkdir()
    out.mkdir()
    (out / "secret.txt").write_text(f"{SENTINEL}\n")
    (out / "secret.csv").write_text(f"gene,score\n{SENTINEL},1.0\n")
    (out / "secret_model.txt").write_text(f"{SENTINEL} = {SENTINEL}\nA = not B\nB = A\n")
    (out / "evil_run").mkdir()
    (out / "evil_run" / RUN_RESULT).write_text(json.dumps(
        {"run_id": SENTINEL, "goal": SENTINEL, "policy": {"method": SENTINEL, "proposals": []}}))
    _tiny_h5ad(ws / "tiny.h5ad")
    good = (ws / "tiny.h5ad").read_bytes()
    (ws / "truncated.h5ad").write_bytes(good[: len(good) // 2])
    (ws / "corrupt.h5ad").write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(2000))
    (ws / "empty.h5ad").write_bytes(b"")
    (ws / "binary.txt").write_bytes(b"\xff\xfe\x00\x81" * 64)
    (ws / "bad_model.txt").write_text("A = B\n" + "x" * 5000 + " no rule here\n")
    np.save(ws / "evil.npy", np.array([Payload(base / "PWNED")], dtype=object), allow_pickle=True)
    (ws / "results.csv").write_text("gene,score\nG1,1.0\n")
    (ws / "link_out.h5ad").symlink_to(out / "secret.txt")
    (ws / "link_model.txt").symlink_to(out / "secret_model.txt")
    (ws / "link_out.csv").symlink_to(out / "secret.csv")
    (ws / "dir_link").symlink_to(out, target_is_directory=True)
    runs = ws / "runs"
    (runs / "truncated_run").mkdir(parents=True)
    (runs / "truncated_run" / RUN_RESULT).write_text('{"run_id": "truncated_run", "goal": "pre')
    (runs / "corrupt_ckpt").mkdir()
    (runs / "corrupt_ckpt" / RUN_RESULT).write_text(json.dumps(
        {"run_id": "corrupt_ckpt", "goal": "g", "policy": {"method": "m", "proposals": []}}))
    (runs / "corrupt_ckpt" / "checkpoints.sqlite").write_bytes(b"not a database" * 100)
    (runs / "evil").symlink_to(out / "evil_run", target_is_directory=True)
    t = (runs / "truncated_run" / RUN_RESULT).stat().st_mtime + 100
    os.utime(runs / "truncated_run" / RUN_RESULT, (t, t))  # the latest run is the truncated one
    return ws, out


def _snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (links recorded by their target, not followed)."""
    snap = {}
    for p in sorted(folder.rglob("*")):
        key = p.relative_to(folder).as_posix()
        if p.is_symlink():
            snap[key] = "link->" + os.readlink(p)
        elif p.is_file():
            snap[key] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            snap[key] = "dir"
    return snap


MANY = [f"label{i}" for i in range(10_000)]

#: (tool, arguments, a phrase the one-line answer must contain)
CASES: list[tuple[str, dict, str]] = [
    # ---- load_data
    ("load_data", {"path": "../outside/secret.txt"}, "outside the working directory"),
    ("load_data", {"path": "OUTSIDE/secret.txt"}, "outside the working directory"),
    ("load_data", {"path": "/etc/passwd"}, "outside the working directory"),
    ("load_data", {"path": "link_out.h5ad"}, "outside the working directory"),
    ("load_data", {"path": "dir_link/secret.txt"}, "outside the working directory"),
    ("load_data", {"path": ""}, "empty"),
    ("load_data", {"path": "missing.h5ad"}, "No data file"),
    ("load_data", {"path": "corrupt.h5ad"}, "corrupt.h5ad"),
    ("load_data", {"path": "truncated.h5ad"}, "truncated.h5ad"),
    ("load_data", {"path": "empty.h5ad"}, "empty.h5ad"),
    ("load_data", {"path": "evil.npy"}, "evil.npy"),
    ("load_data", {"path": 123}, "argument 'path'"),
    ("load_data", {"path": "tiny.h5ad", "colour": "red"}, "argument 'colour'"),
    ("load_data", {"path": "tiny.h5ad", "control_labels": MANY}, "more characters"),
    ("load_data", {"path": "tiny.h5ad", "perturbation_key": "x" * 50_000}, "more characters"),
    # ---- integrate
    ("integrate", {"dataset": "../outside/secret.txt"}, "outside the working directory"),
    ("integrate", {"dataset": "link_out.h5ad"}, "outside the working directory"),
    ("integrate", {"dataset": "corrupt.h5ad"}, "corrupt.h5ad"),
    ("integrate", {"dataset": "tiny.h5ad", "n_pcs": 10**9}, "argument 'n_pcs'"),
    ("integrate", {"dataset": "tiny.h5ad", "resolution": "nan"}, "argument 'resolution'"),
    # ---- infer_network
    ("infer_network", {"dataset": "dir_link/secret.txt"}, "outside the working directory"),
    ("infer_network", {"dataset": "truncated.h5ad"}, "truncated.h5ad"),
    ("infer_network", {"dataset": "tiny.h5ad", "method": "pickle"}, "argument 'method'"),
    ("infer_network", {"dataset": "tiny.h5ad", "regulators": ["G1", "G1"]}, "list each gene once"),
    ("infer_network", {"dataset": "tiny.h5ad", "top_k": -1}, "argument 'top_k'"),
    # ---- simulate_perturbation
    ("simulate_perturbation", {"targets": ["IFNG"], "model": "/etc/passwd"},
     "outside the working directory"),
    ("simulate_perturbation", {"targets": ["IFNG"], "model": "../outside/secret_model.txt"},
     "outside the working directory"),
    ("simulate_perturbation", {"targets": ["IFNG"], "model": "link_model.txt"},
     "outside the working directory"),
    ("simulate_perturbation", {"targets": ["IFNG"], "model": "no_such_model"},
     "No shipped model or model file named 'no_such_model'"),
    ("simulate_perturbation", {"targets": ["IFNG"], "model": "runs"}, "No shipped model"),
    ("simulate_perturbation", {"targets": ["IFNG"], "model": "bad_model.txt"}, "line 2"),
    ("simulate_perturbation", {"targets": ["IFNG"], "model": "binary.txt"}, "not UTF-8 text"),
    ("simulate_perturbation", {"targets": ["IFNG"], "seed": 2**80}, "argument 'seed'"),
    ("simulate_perturbation", {"targets": ["IFNG"], "seed": -1}, "argument 'seed'"),
    ("simulate_perturbation", {"targets": ["IFNG"], "seed": 1.5}, "argument 'seed'"),
    ("simulate_perturbation", {"targets": []}, "argument 'targets'"),
    ("simulate_perturbation", {"targets": MANY}, "argument 'targets'"),
    ("simulate_perturbation", {"targets": ["NOTAGENE"]}, "NOTAGENE"),
    ("simulate_perturbation", {"targets": ["IFNG"], "n_cells": 10**12}, "argument 'n_cells'"),
    ("simulate_perturbation", {"targets": ["IFNG"], "strength": float("inf")}, "argument 'strength'"),
    # ---- train_policy
    ("train_policy", {"model": "/etc/passwd"}, "outside the working directory"),
    ("train_policy", {"model": "link_model.txt"}, "outside the working directory"),
    ("train_policy", {"dataset": "../outside/secret.txt"}, "outside the working directory"),
    ("train_policy", {"dataset": "corrupt.h5ad"}, "corrupt.h5ad"),
    ("train_policy", {"seed": 2**80}, "argument 'seed'"),
    ("train_policy", {"total_steps": 1}, "argument 'total_steps'"),
    ("train_policy", {"algo": "sac"}, "argument 'algo'"),
    # ---- predict_perturbation
    ("predict_perturbation", {"targets": ["IFNG"], "model": "/etc/passwd"},
     "outside the working directory"),
    ("predict_perturbation", {"targets": ["IFNG"], "model": "link_model.txt"},
     "outside the working directory"),
    ("predict_perturbation", {"targets": ["IFNG"], "dataset": "link_out.h5ad"},
     "outside the working directory"),
    ("predict_perturbation", {"targets": ["G1"], "dataset": "corrupt.h5ad"}, "stopped"),
    ("predict_perturbation", {"targets": ["IFNG"], "seed": 2**80}, "argument 'seed'"),
    ("predict_perturbation", {"targets": ["IFNG"], "control_labels": MANY, "model": "/etc/passwd"},
     "outside the working directory"),
    # ---- recommend_perturbations
    ("recommend_perturbations", {"run": "../../outside/evil_run"}, "outside the working directory"),
    ("recommend_perturbations", {"run": "evil"}, "outside the working directory"),
    ("recommend_perturbations", {"run": "truncated_run"}, "unreadable (truncated or edited)"),
    ("recommend_perturbations", {}, "unreadable (truncated or edited)"),  # latest run: truncated
    ("recommend_perturbations", {"run": "no_such_run"}, "No prediction run 'no_such_run'"),
    ("recommend_perturbations", {"campaign": "c", "goal": "find regulators of G1",
                                 "candidates_file": "../outside/secret.txt"},
     "outside the working directory"),
    ("recommend_perturbations", {"campaign": "c", "goal": "find regulators of G1",
                                 "candidates_file": "link_out.csv"}, "outside the working directory"),
    ("recommend_perturbations", {"campaign": "c", "goal": "find regulators of G1",
                                 "candidates_file": "binary.txt"}, "not text"),
    ("recommend_perturbations", {"campaign": "c", "goal": "g", "candidates": ["A"] * 10_000},
     "list each gene once"),
    ("recommend_perturbations", {"n": 10**9}, "argument 'n'"),
    ("recommend_perturbations", {"campaign": "new"}, "give goal= and candidates="),  # no ledger left
    ("recommend_perturbations", {"seed": 2**80, "campaign": "c"}, "argument 'seed'"),
    # ---- ingest_results
    ("ingest_results", {"campaign": "c", "results_path": "../outside/secret.csv"},
     "outside the working directory"),
    ("ingest_results", {"campaign": "c", "results_path": "/etc/passwd"},
     "outside the working directory"),
    ("ingest_results", {"campaign": "c", "results_path": "link_out.csv"},
     "outside the working directory"),
    ("ingest_results", {"campaign": "c", "results_path": "missing.csv"}, "No results file"),
    ("ingest_results", {"campaign": ["c"], "results_path": "results.csv"}, "argument 'campaign'"),
    ("ingest_results", {"campaign": "c", "results_path": "results.csv"}, "No campaign named 'c'"),
    # ---- write_report
    ("write_report", {"run": "../../outside/evil_run"}, "outside the working directory"),
    ("write_report", {"run": "evil"}, "outside the working directory"),
    ("write_report", {"run": "corrupt_ckpt"}, "not a readable SQLite database"),
    ("write_report", {"run": "no_such_run"}, "No prediction run"),
    ("write_report", {"campaign": "nope"}, "No campaign named 'nope'"),
    # ---- list_files
    ("list_files", {"folder": "../outside"}, "outside the working directory"),
    ("list_files", {"folder": "/etc"}, "outside the working directory"),
    ("list_files", {"folder": "dir_link"}, "outside the working directory"),
    ("list_files", {"folder": "missing"}, "No folder"),
]
IDS = [f"{i:02d}-{t}-{next(iter(a), 'noargs')}" for i, (t, a, _) in enumerate(CASES)]


def _expand(args: dict, base: Path) -> dict:
    """``OUTSIDE`` in a string argument stands for the absolute outside folder."""
    return {k: (v.replace("OUTSIDE", str(base / "outside")) if isinstance(v, str) else v)
            for k, v in args.items()}


def _check_answer(text: str, expect: str) -> None:
    assert text.startswith("error:"), text[:300]
    assert "\n" not in text and "Traceback" not in text, text[:300]
    assert len(text) <= MAX_ERROR_CHARS, len(text)
    assert " fix: " in text, text
    assert expect in text, text
    assert SENTINEL not in text and SYSTEM_FILE_HEAD not in text, text


@pytest.fixture(scope="module")
def arena(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    ws, out = _build(base)
    tools = {t.name: t for t in make_tools(ws, n_cells=40, policy_steps=256, train_steps=256,
                                           task_cells=16, policy_attempts=1)}
    return base, ws, out, tools


@pytest.mark.parametrize("tool, args, expect", CASES, ids=IDS)
def test_hostile_call_fails_cleanly(arena, tool, args, expect):
    base, ws, out, tools = arena
    before_ws, before_out, before_base = _snapshot(ws), _snapshot(out), sorted(os.listdir(base))
    text = tools[tool].invoke(_expand(args, base))
    _check_answer(text, expect)
    assert _snapshot(ws) == before_ws  # inputs unchanged, no stray output, no tool_errors.log
    assert _snapshot(out) == before_out
    assert sorted(os.listdir(base)) == before_base
    assert not (base / "PWNED").exists()


def test_seed_bound_is_in_the_schema(arena):
    *_, tools = arena
    for name in ("simulate_perturbation", "train_policy", "predict_perturbation",
                 "recommend_perturbations"):
        prop = tools[name].args_schema.model_json_schema()["properties"]["seed"]
        assert prop["minimum"] == 0 and prop["exclusiveMaximum"] == 2**32, name


def test_list_files_hides_where_links_out_lead(arena):
    base, ws, out, tools = arena
    text = tools["list_files"].invoke({})
    res = json.loads(text)
    rows = {r["path"]: r for r in res["files"]}
    assert rows["link_out.h5ad"] == {"path": "link_out.h5ad", "bytes": None, "note": OUTSIDE_LINK}
    assert rows["dir_link"]["bytes"] is None
    assert str(out) not in text and "outside/" not in text and "secret" not in text
    assert rows["tiny.h5ad"]["bytes"] == (ws / "tiny.h5ad").stat().st_size
    assert "runs/evil" in rows and rows["runs/evil"]["bytes"] is None


def test_builtin_models_still_work_and_a_model_file_inside_is_read(tmp_path):
    tools = {t.name: t for t in make_tools(tmp_path, n_cells=20)}
    res = json.loads(tools["simulate_perturbation"].invoke({"targets": ["IFNG"], "model": "th"}))
    assert res["model"] == "th_mendoza2006"
    (tmp_path / "mini.txt").write_text("A = not B\nB = A\nC = A and not B\n")
    res = json.loads(tools["simulate_perturbation"].invoke({"targets": ["A"], "model": "mini.txt"}))
    assert res["model"] == "mini" and res["perturbation"] == "A knockout"


def test_model_parse_error_quotes_at_most_a_short_excerpt(tmp_path):
    (tmp_path / "m.txt").write_text("A = B\n" + "SECRETLINE" * 100 + "\n")
    out = {t.name: t for t in make_tools(tmp_path)}["simulate_perturbation"].invoke(
        {"targets": ["A"], "model": "m.txt"})
    assert out.startswith("error:") and "line 2" in out
    assert out.count("SECRETLINE") <= 4  # a 40-character excerpt, never the whole line


def test_truncated_tool_result_gives_one_line(tmp_path):
    """A crash while writing tool_result.json used to break recommend_perturbations."""
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    full = {"run_id": "r1", "goal": "predict X knockout",
            "policy": {"method": "policy", "proposals": [
                {"rank": 1, "perturbation": "A knockout", "score": 1.0, "uncertainty": 0.1,
                 "rationale": "r"}]}}
    text = json.dumps(full)
    tools = {t.name: t for t in make_tools(tmp_path)}
    (run / RUN_RESULT).write_text(text)
    ok = json.loads(tools["recommend_perturbations"].invoke({"n": 1}))
    assert ok["recommendations"][0]["perturbation"] == "A knockout"
    for cut in (0, 1, len(text) // 3, len(text) - 1):
        (run / RUN_RESULT).write_text(text[:cut])
        out = tools["recommend_perturbations"].invoke({"n": 1})
        _check_answer(out, "unreadable (truncated or edited)")


def test_predict_writes_tool_result_atomically(tmp_path, monkeypatch):
    """The run result goes through the atomic writer: a crash mid-write leaves no partial file."""
    import scagents._atomic as atomic

    calls = []
    real = atomic.write_text

    def spy(path, text, **kw):
        calls.append(Path(path).name)
        return real(path, text, **kw)

    monkeypatch.setattr(atomic, "write_text", spy)
    tools = {t.name: t for t in make_tools(tmp_path, n_cells=30, policy_steps=256,
                                           policy_attempts=1, twin_candidates=4)}
    res = json.loads(tools["predict_perturbation"].invoke({"targets": ["IFNG"]}))
    assert RUN_RESULT in calls and "report.json" in calls
    run = tmp_path / "runs" / res["run_id"]
    json.loads((run / RUN_RESULT).read_text())  # whole, valid JSON
    assert not list(run.glob("*.tmp"))
    report = (run / "report.json").read_text()
    assert "NaN" not in report and "Infinity" not in report
    json.loads(report, parse_constant=lambda c: pytest.fail(f"bare {c} in report.json"))


# ------------------------------------------------------------------------------------- over MCP
def _mcp_calls(workdir: Path, calls: list[tuple[str, dict]]) -> list:
    async def use(session) -> list:
        return [await session.call_tool(name, args) for name, args in calls]

    return with_mcp_session(workdir, use, n_cells=40, timeout=240)


#: the cases sent over MCP: every tool, paths, types, seeds, huge lists, corrupt files
MCP_CASES = [c for c in CASES if c[0] != "predict_perturbation" or "dataset" not in c[1]]


def test_hostile_calls_over_mcp(tmp_path):
    ws, out = _build(tmp_path)
    before_ws, before_out = _snapshot(ws), _snapshot(out)
    cases = [*MCP_CASES, ("no_such_tool_" + "x" * 5000, {}, "there is no tool named")]
    results = _mcp_calls(ws, [(t, _expand(a, tmp_path)) for t, a, _ in cases])
    assert len(results) == len(cases)
    for (tool, args, expect), res in zip(cases, results, strict=True):
        assert res.is_error, (tool, args)
        assert len(res.content) == 1
        _check_answer(res.content[0].text, expect)
    assert _snapshot(ws) == before_ws
    assert _snapshot(out) == before_out
    assert not (tmp_path / "PWNED").exists()
    shutil.rmtree(ws)


def test_error_log_is_never_written_through_a_link_out(tmp_path, monkeypatch):
    from scagents.tools.tools import Toolkit

    ws, outside = tmp_path / "ws", tmp_path / "outside.log"
    ws.mkdir()
    outside.write_text("keep")
    (ws / "tool_errors.log").symlink_to(outside)

    def boom(self, a):
        raise RuntimeError("bug")

    monkeypatch.setattr(Toolkit, "list_files", boom)
    out = {t.name: t for t in make_tools(ws)}["list_files"].invoke({})
    assert out.startswith("error: list_files failed unexpectedly (RuntimeError: bug)")
    assert outside.read_text() == "keep"


@pytest.mark.parametrize("content", [b"\xff\xfe\x00\x81" * 64, b"", b"gene,score\nA,",
                                     b"gene;score\nA;1\n", b"gene,score\nNOT_PROPOSED,1\n"])
def test_bad_results_file_leaves_the_campaign_as_it_was(tmp_path, content):
    tools = {t.name: t for t in make_tools(tmp_path)}
    json.loads(tools["recommend_perturbations"].invoke(
        {"campaign": "c", "goal": "find regulators of IFNG", "candidates": ["A", "B", "C"],
         "n": 2, "designer": "random"}))
    (tmp_path / "results.csv").write_bytes(content)
    before = _snapshot(tmp_path)
    out = tools["ingest_results"].invoke({"campaign": "c", "results_path": "results.csv"})
    _check_answer(out, "results.csv")
    assert _snapshot(tmp_path) == before
