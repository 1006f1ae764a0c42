"""`python -m scagents` end to end, as a user runs it."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "scagents", *args], capture_output=True, text=True,
                          cwd=cwd, check=False, env=env)


def test_help_lists_run():
    proc = _cli("--help")
    assert proc.returncode == 0 and "run" in proc.stdout
    proc = _cli("run", "--help")
    assert proc.returncode == 0 and "--goal" in proc.stdout and "--data" in proc.stdout


def test_run_default(tmp_path):
    proc = _cli("run", "--goal", "predict IFNG knockout", "--n-cells", "300", "--quiet",
                "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert "report:" in proc.stdout
    assert (tmp_path / "out" / "report.md").exists()


def test_run_default_out_dir_and_runs_listing(tmp_path):
    proc = _cli("run", "--goal", "predict GATA3 overexpression", "--n-cells", "100", "--quick", "--quiet",
                cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "FutureWarning" not in proc.stderr  # dependency warnings are filtered
    runs = list(Path(tmp_path, "scagents_runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "report.json").exists()
    listing = _cli("runs", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    header, row = listing.stdout.splitlines()
    assert header.split() == ["run_id", "started", "goal", "state", "answer"]
    assert row.startswith(runs[0].name) and "predict GATA3 overexpression" in row
    assert "finished" in row and "GATA3 overexpression:" in row
    missing = _cli("runs", "--out", "nowhere", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.startswith("error: No runs folder 'nowhere'")


def test_usage_errors_answer_fast(tmp_path):
    """--help and usage errors come back before the scientific stack is imported (target < 2 s;
    the timing figure is in benchmarks/cli_startup.py, this bound only catches a regression)."""
    for args, rc, text in ((["--help"], 0, "runs"),
                           (["run"], 2, "give --goal"),
                           (["run", "--goal", "predict IFNG knockout", "--data", "nope.h5ad"], 2,
                            "'nope.h5ad' does not exist")):
        t0 = time.perf_counter()
        proc = _cli(*args, cwd=tmp_path)
        seconds = time.perf_counter() - t0
        assert proc.returncode == rc and text in proc.stdout + proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
        assert seconds < 10, f"{args}: {seconds:.1f} s"
    assert not (tmp_path / "scagents_runs").exists()  # a missing data file creates no run folder


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--goal", "predict IFNGQ knockout"], "Closest gene names"),
        (["--goal", "predict something"], "No gene of the data"),
        (["--goal", "predict IFNG knockout", "--data", "does_not_exist.h5ad"], "does_not_exist.h5ad"),
    ],
)
def test_run_bad_input_clear_error(tmp_path, args, message):
    proc = _cli("run", *args, "--quiet", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("inputs", "message"), [
    (["TCR"], "write GENE=VALUE"),
    (["TCR=high"], "write GENE=VALUE"),
    (["IFNG=1"], "IFNG is not an input of model"),
    (["FOO=1"], "--inputs FOO=1: model 'th_mendoza2006' has no gene 'FOO'; its inputs: TCR"),
    (["TCR=3"], "must lie in [0, 1]"),
])
def test_run_inputs_bad_values_one_clear_line(tmp_path, capsys, inputs, message):
    from scagents.cli import main

    rc = main(["run", "--goal", "predict IFNG knockout", "--quiet", "--n-cells", "20",
               "--out", str(tmp_path / "o"), "--inputs", *inputs])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_run_inputs_reach_the_twin(tmp_path):
    import mudata as md

    from scagents.agents.data import data_agent
    from scagents.agents.state import RunOptions, initial_state

    opts = RunOptions(goal="predict STAT4 knockout", n_cells=30, n_train_cells=10,
                      inputs={"IL12A": 1.0})
    st = initial_state(opts, tmp_path)
    st.update(data_agent(st))
    mdata = md.read_h5mu(tmp_path / st["data"]["path"])
    assert mdata.uns["twin"]["params"]["inputs"] == {"IL12A": 1.0}
    truth = pd.read_csv(tmp_path / st["data"]["truth_path"], index_col=0)
    assert "replicate_clears" in truth and not st["data"]["silent_model"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--goal", "predict knockout and overexpression of STAT1"], "one kind per run"),
        (["--goal", "predict something"], 'e.g. "predict NFATC1 knockout"'),
        # a time the twin's prediction cannot honour was dropped silently (answered as no time)
        (["--goal", "predict GATA3 knockout at t=0.5"],
         "drop 'at t=0.5' from the goal, or ask a steering goal"),
        (["--goal", "predict GATA3 knockout after 3 hours"], "cannot honour"),
    ],
)
def test_bad_goal_on_the_default_twin_is_one_line(tmp_path, capsys, args, message):
    from scagents.cli import main

    assert main(["run", *args, "--quiet", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert "TCR" not in err  # a model input is never suggested as a target


def test_all_zero_matrix_is_refused_in_one_line(tmp_path, capsys):
    import anndata as ad
    import numpy as np
    import pandas as pd

    from scagents.cli import main

    path = tmp_path / "zeros.h5ad"
    obs = pd.DataFrame({"perturbation": ["non-targeting", "STAT1"] * 5},
                       index=[f"c{i}" for i in range(10)])
    ad.AnnData(np.zeros((10, 3), np.float32), obs=obs,
               var=pd.DataFrame(index=["STAT1", "IRF1", "GAPDH"])).write_h5ad(path)
    code = main(["run", "--goal", "predict STAT1 knockout", "--data", str(path), "--quiet",
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "X holds only zeros" in err


def test_kind_word_mismatch_is_answered_and_named(tmp_path, monkeypatch, capsys):
    """CRISPRi data (labelled knockdown) asked about with "knockout": answered, held out and
    checked, and the mismatch printed in one line."""
    from scagents.agents import state as state_module
    from scagents.cli import main
    from tests.agents.test_policy import _screen

    class Tiny(state_module.RunOptions):
        policy_steps: int = 512
        max_policy_attempts: int = 1

    monkeypatch.setattr(state_module, "RunOptions", Tiny)
    path = tmp_path / "crispri.h5ad"
    _screen(path, "knockdown")
    code = main(["run", "--goal", "predict G0 knockout", "--data", str(path), "--quiet",
                 "--out", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert code == 0
    notes = [line for line in out.splitlines() if line.startswith("  note: ")]
    assert len(notes) == 1 and "You asked for a knockout; the data label the cells of 'G0' a " \
                               "knockdown" in notes[0]
    assert "How far to trust it: the prediction agrees with the 20 observed cells of G0 " \
           "knockdown" in out


def test_every_option_of_every_command_has_help():
    """``--help`` explains every argument of every command (none is listed bare)."""
    import argparse

    from scagents.cli import build_parser

    bare = [(name, x.option_strings or [x.dest])
            for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
            for name, sp in a.choices.items() for x in sp._actions
            if x.dest != "help" and not x.help]
    assert not bare, f"arguments without help: {bare}"


def test_run_states_how_the_goal_was_read(monkeypatch, capsys, tmp_path):
    """The first lines say how the goal was read (here: no kind named, the default knockout)."""
    from types import SimpleNamespace

    import scagents.api
    from scagents.cli import main
    from scagents.goal import parse_goal

    goal = parse_goal("effect of IFNG", ["IFNG", "STAT1"])
    res = SimpleNamespace(goal=goal.text, method="m", status="validated", run_id="r", out=tmp_path,
                          report={"goal": goal.to_dict(), "headline": []}, top_up=[], top_down=[],
                          proposals=[], wall_time_s=0.0)
    monkeypatch.setattr(scagents.api, "run", lambda *a, **k: res)
    assert main(["run", "--goal", "effect of IFNG", "--quiet", "--out", str(tmp_path / "o")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "  Goal read as: IFNG knockout (the goal names no kind: knockout by default)."


def test_warnings_filters_stay_as_the_caller_set_them(tmp_path, capsys):
    """main() in-process (a notebook, a test) silences dependency noise only while it runs: the
    caller's warning filters are the same afterwards (two were added on every call)."""
    import warnings

    from scagents.cli import main

    before = list(warnings.filters)
    assert main(["runs", "--out", str(tmp_path / "nowhere")]) == 2
    assert main(["runs", "--out", str(tmp_path / "nowhere")]) == 2
    assert warnings.filters == before
    capsys.readouterr()


def test_own_warning_is_one_line_and_dependency_noise_is_not_shown(tmp_path, capsys):
    """After a successful run the user sees scagents' own warning (a .bnet gene without a rule) as
    one ``warning:`` line, without Python's file:line and source line; mudata's "var_names are
    intersecting" note (proteins named as genes in the .h5mu) is not shown."""
    import warnings

    import anndata as ad
    import mudata as md
    import numpy as np

    from scagents.cli import main
    from scagents.perturbation import Perturbation
    from scagents.twin import load_model, simulate

    rules = ("targets, factors\nIFNG, TBX21 & !GATA3\nTBX21, STAT1 | IFNG\n"
             "GATA3, !TBX21 & IL4\nSTAT1, IFNG | IFNGR\nSOCS1, STAT1\n")
    model, screen_model = tmp_path / "m.bnet", tmp_path / "screen.bnet"
    model.write_text(rules)
    screen_model.write_text(rules)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rna = simulate(load_model(str(screen_model)), n_cells=60, seed=0, modalities=["rna"],
                       perturbations=[None, *(Perturbation((g,)) for g in ("STAT1", "GATA3", "SOCS1"))])["rna"]
    rna = ad.AnnData(rna.X.copy(), obs=rna.obs[["perturbation"]].astype(str), var=rna.var[[]])
    prot = ad.AnnData(np.random.default_rng(0).poisson(5, (rna.n_obs, 2)).astype(np.float32),
                      obs=rna.obs[[]], var=pd.DataFrame(index=["STAT1", "CD4"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        md.MuData({"rna": rna, "prot": prot}).write(tmp_path / "screen.h5mu")
    capsys.readouterr()

    assert main(["run", "--goal", "predict STAT1 knockout", "--model", str(model), "--quick",
                 "--n-cells", "60", "--quiet", "--out", str(tmp_path / "twin")]) == 0
    err = capsys.readouterr().err
    assert err == (f"warning: {model}: 2 genes have no rule and are treated as inputs: IL4, IFNGR. "
                   "Declare an external signal with a line 'GENE, GENE' or '# @input GENE = VALUE' "
                   "(this note then goes); otherwise check the spelling in the rules.\n")

    assert main(["run", "--goal", "predict STAT1 knockout", "--data", str(tmp_path / "screen.h5mu"),
                 "--quick", "--quiet", "--out", str(tmp_path / "data")]) == 0
    err = capsys.readouterr().err
    assert "intersecting" not in err and "Warning" not in err
