"""The GRN benchmark's arboreto adapter and verdict (benchmarks/grn.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import ROOT, load_benchmark
from tests.grn.test_grn import _cascade


def _bench():
    return load_benchmark("grn")


def test_arboreto_adapter_finds_cascade_edges():
    pytest.importorskip("arboreto", reason="arboreto not installed")
    bench = _bench()
    adata = _cascade(n_cells=300)
    net = bench.run_arboreto(adata, "grnboost2", n_jobs=1)
    assert list(net.columns) == ["source", "target", "weight"]
    assert (net["source"] != net["target"]).all()  # the target is never its own regulator
    assert (np.diff(net["weight"].to_numpy()) <= 0).all()
    best = net.loc[net.groupby("target")["weight"].idxmax()].set_index("target")["source"]
    # the strongest regulator of each dependent gene is its parent (or a sibling carrying A)
    assert best["D"] == "R"
    assert best["B"] in {"A", "C", "F"}


def test_verdict_counts_wins_and_time_goal():
    bench = _bench()
    d = bench.DEFAULT
    nets = {f"n{i}": {"methods": {d: {"auprc_ratio": a}, "arboreto_grnboost2": {"auprc_ratio": b}}}
            for i, (a, b) in enumerate([(2.0, 1.5), (1.0, 2.0), (3.0, 2.9), (5.0, 4.0)])}
    nets["n4"] = {"methods": {d: {"auprc_ratio": 9.0}, "arboreto_grnboost2": {"error": "x"}}}
    v = bench._verdict({"networks": nets, "scale": {"median_seconds": 61.0}})
    assert v["beats_grnboost2_on"] == ["n0", "n2", "n3"]
    assert v["networks_compared"] == ["n0", "n1", "n2", "n3"]
    assert v["goal_auprc_met"] and not v["goal_60s_met"]


def test_benchmark_default_is_what_the_network_agent_runs():
    """The agent calls infer_network with its defaults (tests/agents/test_agents.py checks that it
    passes none of the chosen settings); both benchmarks score the same configuration."""
    import inspect
    import json

    from scagents.grn import infer_network

    bench = _bench()
    params = inspect.signature(infer_network).parameters
    kwargs = {"transform": "none", "alpha": "auto", **bench.METHODS[bench.DEFAULT]}
    assert all(params[k].default == v for k, v in kwargs.items())
    sel = load_benchmark("grn_select")
    dflt = sel.default_kwargs()
    assert {k: dflt[k] for k in ("method", "transform")} == {"method": bench.METHODS[bench.DEFAULT]["method"],
                                                             "transform": kwargs["transform"]}
    # the committed selection result chose exactly these defaults on the training networks
    result = ROOT / "benchmarks" / "results" / "grn_select.json"
    if result.exists():
        chosen = json.loads(result.read_text()).get("summary", {}).get("selection")
        if chosen:
            assert chosen["observational_winner"] in sel.OBS_CANDIDATES
            won = sel._explicit(sel.OBS_CANDIDATES[chosen["observational_winner"]])
            assert all(dflt.get(k) == v for k, v in won.items() if not k.startswith("_"))
            # screen candidates were scored with the later settings off unless they set them
            won = {**sel.LATER_OFF, **sel.SCREEN_CANDIDATES[chosen["screen_winner"]]}
            assert all(dflt[k] == v for k, v in won.items() if k in dflt)


def test_selection_summary_picks_winners_and_counts_wins():
    sel = load_benchmark("grn_select")

    def entry(split, net, seed, scores, passed=True):
        return {"split": split, "network": net, "seed": seed, "passed": passed, "dropout": 0.05,
                "scores": {m: {"auprc_ratio": a, "epr": a} for m, a in scores.items()}}

    refs = {"obs/genie3": 9.0, "obs/grnboost2": 9.0, "screen/genie3": 9.0}  # references are never candidates
    ds = {"t0": entry("train", "a", 0, {"obs/ridge": 2.0, "obs/ridge_rank": 1.0,
                                        "screen/x": 3.0, "screen/y": 2.5, **refs}),
          "t1": entry("train", "b", 0, {"obs/ridge": 1.5, "obs/ridge_rank": 1.8,
                                        "screen/x": 1.0, "screen/y": 2.5, **refs}),
          "t2": entry("train", "c", 0, {}, passed=False),
          "e0": entry("eval", "n1", 0, {"screen/default": 4.0, "screen/grnboost2": 2.0}),
          "e1": entry("eval", "n1", 1, {"screen/default": 1.0, "screen/grnboost2": 2.0}),
          "e2": entry("eval", "n2", 0, {"screen/default": 3.0, "screen/grnboost2": 1.0})}
    s = sel.summarise({"datasets": ds})
    assert s["train"]["n_dropped"] == 1 and s["train"]["dropped"] == ["c|0"]
    assert s["selection"]["observational_winner"] == "ridge"  # gmean 1.73 vs 1.34
    assert s["selection"]["screen_winner"] == "y"  # gmean 2.5 vs 1.73
    assert "genie3" not in s["selection"]["observational"] and not s["selection"]["screen_other_bases"]
    assert s["selection"]["references"]["obs/genie3"]["n_datasets"] == 2
    v = s["verdict"]["screen_vs_grnboost2"]["auprc_ratio"]
    # per network: n1 gmean(4, 1) = 2 vs 2 (no win), n2 3 vs 1 (win); over networks sqrt(6) vs sqrt(2)
    assert v["wins"] == 1 and v["networks"] == 2
    assert abs(v["ratio"] - 3**0.5) < 1e-9
    assert s["verdict"]["screen_vs_grnboost2"]["ratio_goal_1.5_met"]


@pytest.mark.parametrize("algo", ["grnboost2", "genie3"])
def test_reference_fallback_finds_cascade_edges(algo, monkeypatch):
    """Without arboreto, GRNBoost2 / GENIE3 run as the same sklearn regressors (run_reference)."""
    import builtins

    real_import = builtins.__import__

    def no_arboreto(name, *args, **kwargs):
        if name.startswith("arboreto"):
            raise ImportError("arboreto hidden by the test")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_arboreto)
    bench = _bench()
    adata = _cascade(n_cells=300)
    net, impl = bench.run_reference(adata, algo, genie3_trees=30)
    assert impl.startswith("sklearn")
    assert (net["source"] != net["target"]).all()
    best = net.loc[net.groupby("target")["weight"].idxmax()].set_index("target")["source"]
    assert best["D"] == "R"


def test_selection_screen_base_when_the_winner_acts_only_without_a_screen():
    sel = load_benchmark("grn_select")

    def entry(net, scores):
        return {"split": "train", "network": net, "seed": 0, "passed": True, "dropout": 0.05,
                "scores": {m: {"auprc_ratio": a, "epr": a} for m, a in scores.items()}}

    ds = {"t0": entry("a", {"obs/pseudotime_feature": 3.0, "obs/ridge": 2.0, "obs/ridge_rank": 2.5,
                            "screen/x": 3.0, "screen/y": 2.5}),
          "t1": entry("b", {"obs/pseudotime_feature": 2.0, "obs/ridge": 1.5, "obs/ridge_rank": 0.5,
                            "screen/x": 1.0, "screen/y": 2.5})}
    s = sel.summarise({"datasets": ds})["selection"]
    assert s["observational_winner"] == "pseudotime_feature"  # no screen candidate on top of it
    assert s["screen_base"] == "ridge" and s["screen_winner"] == "y"  # ridge_rank is not a screen base


def test_a_challenger_needs_a_significant_paired_win(monkeypatch):
    """Candidates added from session 10 on replace the incumbent only with a significant sign test."""
    sel = load_benchmark("grn_select")

    def entry(i, scores):
        return {"split": "train", "network": f"n{i}", "seed": 0, "passed": True, "dropout": 0.05,
                "scores": {m: {"auprc_ratio": a, "epr": a} for m, a in scores.items()}}

    # "tie": higher gmean (one big win) but up 5 / down 5; "clear": higher on 9 of 10
    ds = {f"t{i}": entry(i, {"obs/ridge": 2.0, "obs/tie": (6.0 if i == 0 else 2.1 if i < 5 else 1.9),
                             "obs/clear": 2.2 if i < 9 else 1.0}) for i in range(10)}
    monkeypatch.setattr(sel, "CHALLENGERS", {"tie": 10, "clear": 10})
    s = sel.summarise({"datasets": ds})["selection"]
    assert s["observational_winner"] == "clear"  # gmean 2.03 > 2.0, up 9 / down 1
    assert s["observational"]["tie"] > s["observational"]["clear"]  # the tie has the highest gmean...
    tests = {t["challenger"]: (t["up"], t["down"], t["replaces"]) for t in s["challenges"]}
    assert tests == {"tie": (5, 5, False), "clear": (9, 1, True)}  # ...but no significant paired win
    monkeypatch.setattr(sel, "CHALLENGERS", {})  # the rule before session 10: the highest gmean wins
    assert sel.summarise({"datasets": ds})["selection"]["observational_winner"] == "tie"
