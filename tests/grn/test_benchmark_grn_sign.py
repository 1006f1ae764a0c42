"""The sign benchmark's truth, summary and pre-registered decision (benchmarks/grn_sign.py)."""

from __future__ import annotations

import inspect
import json

from tests.conftest import ROOT, load_benchmark


def _bench():
    return load_benchmark("grn_sign")


def _entry(scores: dict) -> dict:
    """A fake data set: candidate -> (obs top-k acc, screen top-k acc)."""
    def rec(acc):
        return {"anywhere": {"n": 10, "correct": round(10 * acc), "acc": acc},
                "topk": {"n": 10, "correct": round(10 * acc), "acc": acc}, "same_ranking_as_first": True}

    return {"passed": True, "obs": {c: rec(o) for c, (o, _) in scores.items()},
            "screen": {c: rec(s) for c, (_, s) in scores.items()}}


def _results(bench, rows: list[dict]) -> dict:
    keys = bench._keys("train")
    return {"datasets": {f"train|{spec}|{seed}": _entry(r) for (spec, seed), r in zip(keys, rows, strict=False)}}


def test_signed_truth_drops_self_loops_and_counts_k():
    bench = _bench()
    truth, k = bench.signed_truth("shipped:th_mendoza2006")
    assert (truth["source"] != truth["target"]).all()
    assert set(truth["true_sign"]) <= {-1, 1}
    assert k == len(truth)  # no pair of this model has both signs
    row = truth[(truth["source"] == "TBX21") & (truth["target"] == "IFNG")]
    assert row["true_sign"].tolist() == [1]


def test_decision_needs_a_significant_sign_test():
    bench = _bench()
    # 'correlation' higher on 6 data sets, lower on none: p = 1/64 < 0.05 -> replaces ridge
    rows = [{"ridge": (0.5, 0.5), "correlation": (0.7, 0.6)} for _ in range(6)]
    s = bench.summarise(_results(bench, rows), "train", ("ridge", "correlation"))
    d = bench.decide(s)
    assert d["best"] == "correlation" and d["up"] == 6 and d["down"] == 0 and d["replaces"]
    assert d["winner"] == "correlation"
    # higher mean but only 3 up / 2 down: not significant -> ridge stays
    rows = [{"ridge": (0.5, 0.5), "correlation": (0.9, 0.9)}] * 3 + [{"ridge": (0.6, 0.6), "correlation": (0.5, 0.5)}] * 2
    d = bench.decide(bench.summarise(_results(bench, rows), "train", ("ridge", "correlation")))
    assert d["best"] == "correlation" and (d["up"], d["down"]) == (3, 2) and not d["replaces"]
    assert d["winner"] == "ridge"


def test_infer_network_sign_default_is_the_benchmark_decision():
    from scagents.grn import infer_network

    default = inspect.signature(infer_network).parameters["sign_from"].default
    assert default in _bench().CANDIDATES
    result = ROOT / "benchmarks" / "results" / "grn_sign.json"
    if result.exists():
        summary = json.loads(result.read_text()).get("summary", {})
        if summary.get("decision"):
            assert summary.get("winner", summary["decision"]["winner"]) == default


def test_second_challenge_only_when_the_first_kept_ridge():
    bench = _bench()

    def rows(n_up, n_down):
        up = {"ridge": (0.5, 0.5), "spearman": (0.5, 0.5)}
        return [up] * 4 + [{"ridge": (0.6, 0.6), "spearman": (0.7, 0.7)}] * n_up \
            + [{"ridge": (0.7, 0.7), "spearman": (0.6, 0.6)}] * n_down

    def with_anywhere(res, shift):
        # measure (a) differs from (b): spearman better on all ranked edges of every data set
        for e in res["datasets"].values():
            for r in ("obs", "screen"):
                e[r]["spearman"]["anywhere"]["acc"] = e[r]["ridge"]["anywhere"]["acc"] + shift
        return res

    cands = ("ridge", "spearman")
    res = with_anywhere(_results(bench, rows(3, 2)), 0.05)  # (b): 3 up / 2 down, not significant
    s = bench.summarise(res, "train", cands)
    first = bench.decide(s)
    assert not first["replaces"]
    second = bench.decide_anywhere(s, first)
    assert (second["best"], second["up"], second["down"], second["replaces"]) == ("spearman", 9, 0, True)
    assert second["winner"] == "spearman"
    # when the first rule already replaced ridge, the second does not act
    assert not bench.decide_anywhere(s, {**first, "replaces": True, "winner": "x"})["replaces"]
    # no significant (a) advantage: ridge stays
    res = with_anywhere(_results(bench, rows(3, 2)), 0.0)
    s = bench.summarise(res, "train", cands)
    assert bench.decide_anywhere(s, bench.decide(s))["winner"] == "ridge"
