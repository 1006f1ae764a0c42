"""The one atomic writer and strict JSON of :mod:`scagents._atomic`, and the writers using them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from scagents._atomic import atomic_path, dumps, write_json, write_text


def _strict(text: str):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))


def test_dumps_writes_null_for_nan_and_infinity():
    obj = {"a": math.nan, "b": [np.inf, -np.inf, np.float32("nan")], "c": np.float64(1.5),
           "d": np.arange(3), "e": Path("x/y"), "f": {np.int64(2): np.bool_(True)}}
    out = _strict(dumps(obj))
    assert out == {"a": None, "b": [None, None, None], "c": 1.5, "d": [0, 1, 2], "e": "x/y",
                   "f": {"2": True}}


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "f.json"
    write_json(path, {"v": 1})
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text('{"v": 2, "trunc')
        raise RuntimeError("killed mid-write")
    assert _strict(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_temporary_never_follows_a_planted_link(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").symlink_to(outside)  # the target name itself is a link
    write_text(tmp_path / "d" / "f.txt", "new")
    assert outside.read_text() == "keep"  # the link was replaced, not written through
    assert (tmp_path / "d" / "f.txt").read_text() == "new"
    assert not (tmp_path / "d" / "f.txt").is_symlink()


def test_report_json_has_no_bare_nan(tmp_path, monkeypatch):
    import scagents.report as report

    # the Markdown rendering needs a whole run's result; this test is about the JSON
    monkeypatch.setattr(report, "render_markdown", lambda result: "# report\n")
    result = {"goal": "g", "metrics": {"pearson": float("nan"), "mse": np.float64("inf")},
              "figures": {}, "genes": [{"gene": "A", "delta": np.nan}]}
    paths = report.write_report(result, tmp_path)
    assert "NaN" not in paths["json"].read_text()
    out = _strict(paths["json"].read_text())
    assert out["metrics"] == {"pearson": None, "mse": None}
    assert out["genes"][0]["delta"] is None
    assert not list(tmp_path.glob("*.tmp"))


def test_training_log_json_is_strict(tmp_path):
    from scagents.policies.trpo_ppo import LOG_COLUMNS, TrainingLog

    log = TrainingLog()
    log.append({"update": 1, "episodic_return_mean": math.nan})
    _strict(log.write(tmp_path / "log.json").read_text())
    log.write(tmp_path / "log.csv")
    assert (tmp_path / "log.csv").read_text().splitlines()[0] == ",".join(LOG_COLUMNS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv", "log.json"]
