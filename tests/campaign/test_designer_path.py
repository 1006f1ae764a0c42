"""One designer path: `scagents next` → ingest and the benchmark's campaign function pick the same genes."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scagents.campaign.acquisition import (
    DesignerError,
    PolicyDesigner,
    build_designer,
    designer_config,
    designer_options,
    hit_likeness,
)
from scagents.campaign.features import align_features, expression_prior
from scagents.campaign.ledger import read_feature_file
from scagents.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _benchmark():
    spec = importlib.util.spec_from_file_location("closed_loop_bench", ROOT / "benchmarks" / "closed_loop.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _screen(tmp_path: Path, n_fam: int = 12, per_fam: int = 10, seed: int = 0):
    """Synthetic screen: gene families (symbol-named), features with a 'mean' column, planted signal."""
    rng = np.random.default_rng(seed)
    genes = [f"{chr(65 + f)}X{i + 1}" for f in range(n_fam) for i in range(per_fam)]
    F = pd.DataFrame(rng.normal(size=(len(genes), 6)), index=genes, columns=[f"f{j}" for j in range(6)])
    F["mean"] = rng.normal(size=len(genes))
    fam_effect = np.repeat(rng.normal(0, 1.0, n_fam), per_fam)
    scores = 1.2 * F["f0"].to_numpy() - 0.8 * F["f1"].to_numpy() + fam_effect + rng.normal(0, 0.5, len(genes))
    feats = tmp_path / "feats.csv"
    F.rename_axis("gene").to_csv(feats)
    cands = tmp_path / "cands.txt"
    cands.write_text("\n".join(genes) + "\n")
    return genes, feats, cands, pd.Series(scores, index=genes)


def test_cli_campaign_and_benchmark_pick_the_same_genes(tmp_path, capsys):
    genes, feats, cands, scores = _screen(tmp_path)
    db = str(tmp_path / "ledger.sqlite")
    rounds, batch, steps, seed = 3, 8, 512, 3
    cli_picks = []
    for r in range(rounds):
        argv = ["next", "--campaign", "syn", "--db", db, "--batch", str(batch)]
        if r == 0:  # later rounds give nothing: the stored designer configuration continues
            argv += ["--goal", "find regulators of X", "--candidates", str(cands), "--features", str(feats),
                     "--designer", "policy", "--seed", str(seed), "--rounds", str(rounds),
                     "--policy-steps", str(steps), "--designer-option", "ucb_weight=0"]
        capsys.readouterr()
        assert main(argv) == 0
        printed = capsys.readouterr().out
        assert "objective: either" in printed and "designer: policy (seed 3" in printed
        con = sqlite3.connect(db)
        got = [g for (g,) in con.execute("SELECT gene FROM proposals WHERE round = ? ORDER BY rank", (r,))]
        cfg_json, state = con.execute("SELECT config, state FROM designers").fetchone()
        con.close()
        cli_picks.append(got)
        res = tmp_path / f"results_{r}.csv"  # the results oracle: the screen's score of each proposal
        pd.DataFrame({"gene": got, "score": scores[got].to_numpy()}).to_csv(res, index=False)
        assert main(["ingest", "--campaign", "syn", "--db", db, str(res)]) == 0
    cfg = json.loads(cfg_json)
    assert cfg["options"]["total_timesteps"] == steps and cfg["seed"] == seed and cfg["n_rounds"] == rounds
    assert cfg["options"]["ucb_weight"] == 0  # the policy alone: its weights decide the picks
    assert state is not None  # the trained policy weights are stored for the next process

    F = align_features(read_feature_file(feats), genes)
    prior = expression_prior(F, columns=["mean"]).to_numpy()
    bench = _benchmark().screen_campaign(genes, F.to_numpy(), scores.to_numpy(), designer="policy", seed=seed,
                                         prior=prior, objective="either", rounds=rounds, batch=batch,
                                         total_timesteps=steps, ucb_weight=0)
    bench_picks = [[genes[i] for i in p] for p in bench]
    assert bench_picks == cli_picks
    # the check is sensitive to the stored weights: round 2 without the round-1 policy picks otherwise
    idx = {g: i for i, g in enumerate(genes)}
    m = np.array([idx[g] for g in sum(cli_picks[:2], [])])
    fresh = build_designer(designer_config(**{k: cfg[k] for k in ("seed", "groups", "n_rounds")},
                                           name="policy", **cfg["options"]), genes, prior=prior)
    cold = fresh.propose(F.to_numpy(), m, hit_likeness(scores.to_numpy()[m]), batch, round_index=2, n_rounds=rounds)
    assert [genes[i] for i in cold["index"]] != cli_picks[2]
    # the rounds after the first are learned, not the prior's order
    prior_order = [genes[i] for i in np.argsort(-prior, kind="stable")[: rounds * batch]]
    assert sum(cli_picks[1:], []) != prior_order[batch:]


def test_policy_state_round_trip_is_tensors_only(tmp_path):
    des = PolicyDesigner(seed=0)
    assert des.get_state() is None
    import torch

    des._weights = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    blob = des.get_state()
    other = PolicyDesigner(seed=0)
    other.set_state(blob)
    assert torch.equal(other._weights["w"], des._weights["w"])
    with pytest.raises(DesignerError, match="cannot be read"):
        other.set_state(b"not a torch file")


def test_designer_config_defaults_are_the_designer_defaults():
    cfg = designer_config("policy")
    assert cfg["options"] == designer_options("policy")
    assert cfg["options"]["total_timesteps"] == 4000 and cfg["options"]["ucb_weight"] == 1.0
    assert designer_config()["designer"] == "bayes_prior"
    with pytest.raises(DesignerError, match="no option"):
        designer_config("ridge_ucb", total_timesteps=5)
    des = build_designer(designer_config("ridge_ucb", seed=2), ["RPL1", "RPL2", "MED1", "MED2", "ZZZ"])
    assert des.seed == 2 and list(des.groups) == [0, 0, 1, 1, -1]


def test_next_objective_is_stored_and_checked(tmp_path, capsys):
    genes, feats, cands, _ = _screen(tmp_path, n_fam=3, per_fam=4)
    db = str(tmp_path / "l.sqlite")
    assert main(["next", "--campaign", "c", "--db", db, "--goal", "find regulators of X", "--candidates", str(cands),
                 "--features", str(feats), "--designer", "random", "--objective", "decrease", "--batch", "2"]) == 0
    assert "objective: decrease" in capsys.readouterr().out
    con = sqlite3.connect(db)
    assert con.execute("SELECT objective FROM campaigns").fetchone()[0] == "decrease"
    con.close()
    assert main(["next", "--campaign", "c", "--db", db, "--objective", "increase", "--batch", "2"]) == 2
    assert "objective 'decrease'" in capsys.readouterr().err
    # default from the goal's words
    assert main(["next", "--campaign", "d", "--db", db, "--goal", "boost IL2", "--candidates", str(cands),
                 "--features", str(feats), "--designer", "random", "--batch", "2"]) == 0
    assert "objective: increase" in capsys.readouterr().out


def test_older_ledger_without_designer_table_continues(tmp_path):
    genes, feats, cands, scores = _screen(tmp_path, n_fam=3, per_fam=4)
    db = str(tmp_path / "old.sqlite")
    assert main(["next", "--campaign", "c", "--db", db, "--goal", "find regulators of X", "--candidates", str(cands),
                 "--features", str(feats), "--designer", "ridge_ucb", "--batch", "3"]) == 0
    con = sqlite3.connect(db)
    con.execute("DROP TABLE designers")  # a ledger written before the table existed
    con.commit()
    con.close()
    assert main(["next", "--campaign", "c", "--db", db, "--batch", "3"]) == 0  # default designer, table re-added
    con = sqlite3.connect(db)
    assert json.loads(con.execute("SELECT config FROM designers").fetchone()[0])["designer"] == "bayes_prior"
    assert con.execute("SELECT COUNT(*) FROM proposals").fetchone()[0] == 6
    con.close()


def test_next_rejects_bad_designer_options_without_writing(tmp_path, capsys):
    genes, feats, cands, _ = _screen(tmp_path, n_fam=3, per_fam=4)
    db = tmp_path / "l.sqlite"
    assert main(["next", "--campaign", "c", "--db", str(db), "--goal", "g", "--candidates", str(cands),
                 "--features", str(feats), "--designer", "ridge_ucb", "--designer-option", "steps=3"]) == 2
    assert "no option" in capsys.readouterr().err
    assert main(["next", "--campaign", "c", "--db", str(db), "--goal", "g", "--candidates", str(cands),
                 "--features", str(feats), "--designer-option", "oops"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert not db.exists()  # a rejected first `next` creates no ledger at all


def test_benchmark_screen_path_must_exist(tmp_path, capsys):
    assert _benchmark().main(["--screen", str(tmp_path / "ground_truth_NONE.csv"), "--no-twin"]) == 2
    assert "do not exist" in capsys.readouterr().err


def test_tool_continues_the_campaign_designer_like_next(tmp_path, capsys):
    """The recommend tool and `next` continue a campaign through the same stored designer."""
    from scagents.tools import make_tools

    genes, feats, cands, scores = _screen(tmp_path, n_fam=6, per_fam=8)
    first = ["next", "--campaign", "c", "--batch", "6", "--goal", "find regulators of X", "--candidates", str(cands),
             "--features", str(feats), "--designer", "ridge_ucb", "--seed", "4", "--designer-option", "beta=0.5"]
    work = tmp_path / "work"
    work.mkdir()
    picks = {}
    for where, db in (("cli", str(tmp_path / "cli.sqlite")), ("tool", str(work / "campaigns.sqlite"))):
        assert main(first + ["--db", db]) == 0
        con = sqlite3.connect(db)
        got = [g for (g,) in con.execute("SELECT gene FROM proposals ORDER BY rank")]
        con.close()
        res = tmp_path / f"r_{where}.csv"
        pd.DataFrame({"gene": got, "score": scores[got].to_numpy()}).to_csv(res, index=False)
        assert main(["ingest", "--campaign", "c", "--db", db, str(res)]) == 0
    assert main(["next", "--campaign", "c", "--batch", "6", "--db", str(tmp_path / "cli.sqlite")]) == 0
    con = sqlite3.connect(tmp_path / "cli.sqlite")
    picks["cli"] = [g for (g,) in con.execute("SELECT gene FROM proposals WHERE round = 1 ORDER BY rank")]
    con.close()
    out = json.loads({t.name: t for t in make_tools(work)}["recommend_perturbations"].invoke({"n": 6, "campaign": "c"}))
    picks["tool"] = [r["gene"] for r in out["recommendations"]]
    assert out["designer_config"]["options"]["beta"] == 0.5 and out["designer_config"]["seed"] == 4
    assert out["objective"] == "either" and out["round"] == 2  # the second round (stored as 1)
    assert picks["tool"] == picks["cli"]


def test_bayes_prior_campaign_matches_the_benchmark_too(tmp_path):
    genes, feats, cands, scores = _screen(tmp_path)
    db = str(tmp_path / "b.sqlite")
    cli = []
    for r in range(3):
        argv = ["next", "--campaign", "b", "--db", db, "--batch", "10"]
        if r == 0:
            argv += ["--goal", "find regulators of X", "--candidates", str(cands), "--features", str(feats),
                     "--designer", "bayes_prior", "--seed", "1", "--rounds", "3"]
        assert main(argv) == 0
        con = sqlite3.connect(db)
        got = [g for (g,) in con.execute("SELECT gene FROM proposals WHERE round = ? ORDER BY rank", (r,))]
        con.close()
        cli.append(got)
        res = tmp_path / f"b_{r}.csv"
        pd.DataFrame({"gene": got, "score": scores[got].to_numpy()}).to_csv(res, index=False)
        assert main(["ingest", "--campaign", "b", "--db", db, str(res)]) == 0
    F = align_features(read_feature_file(feats), genes)
    bench = _benchmark().screen_campaign(genes, F.to_numpy(), scores.to_numpy(), designer="bayes_prior", seed=1,
                                         prior=expression_prior(F, columns=["mean"]).to_numpy(), rounds=3, batch=10)
    assert [[genes[i] for i in p] for p in bench] == cli


def test_default_designer_is_the_benchmarks_overall_choice():
    """`next`'s default = the setting the leave-one-screen-out benchmark selected over all screens (recorded)."""
    res = json.loads((ROOT / "benchmarks" / "results" / "closed_loop.json").read_text())
    label = res["overall"]["chosen"]
    _, name, groups, graph, opts = {s[0]: s for s in _benchmark().SETTINGS}[label]
    cfg = designer_config()
    assert (cfg["designer"], cfg["groups"], cfg["graph"]) == (name, groups, graph)
    assert {k: cfg["options"][k] for k in opts} == opts


def test_default_cli_campaign_matches_the_benchmark(tmp_path, capsys):
    genes, feats, cands, scores = _screen(tmp_path)
    db = str(tmp_path / "d.sqlite")
    cli = []
    for r in range(3):
        argv = ["next", "--campaign", "d", "--db", db, "--batch", "10"]
        if r == 0:  # no --designer: the default
            argv += ["--goal", "find regulators of X", "--candidates", str(cands), "--features", str(feats),
                     "--seed", "2", "--rounds", "3"]
        capsys.readouterr()
        assert main(argv) == 0
        printed = capsys.readouterr().out
        assert "designer: bayes_prior" in printed and "feature sources" in printed
        con = sqlite3.connect(db)
        got = [g for (g,) in con.execute("SELECT gene FROM proposals WHERE round = ? ORDER BY rank", (r,))]
        cov = json.loads(con.execute("SELECT value FROM settings WHERE key = 'feature_coverage'").fetchone()[0])
        con.close()
        assert cov["symbol_families"] == 1.0  # every synthetic gene has a family
        cli.append(got)
        res = tmp_path / f"d_{r}.csv"
        pd.DataFrame({"gene": got, "score": scores[got].to_numpy()}).to_csv(res, index=False)
        assert main(["ingest", "--campaign", "d", "--db", db, str(res)]) == 0
    F = align_features(read_feature_file(feats), genes)
    bench = _benchmark().screen_campaign(genes, F.to_numpy(), scores.to_numpy(), designer=None, seed=2,
                                         prior=expression_prior(F, columns=["mean"]).to_numpy(), rounds=3, batch=10)
    assert [[genes[i] for i in p] for p in bench] == cli


def test_benchmark_converts_the_wheel_screens_with_one_hit_rule(tmp_path, monkeypatch):
    """The added screens: read from a (here: fake, already cached) genedisco wheel, written in the shared format."""
    import zipfile

    from scagents.campaign.screens import load_screen_file

    monkeypatch.setenv("SCAGENTS_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache" / "wheels").mkdir(parents=True)
    rng = np.random.default_rng(0)
    genes = [f"G{i}" for i in range(200)]
    z1, z2 = rng.normal(size=200), rng.normal(size=200)
    rra = rng.uniform(1e-6, 1, 200)
    bench = _benchmark()
    (nk, nk_member, _), (cov, cov_member, _) = bench.ADDED_SCREENS
    with zipfile.ZipFile(tmp_path / "cache" / "wheels" / "genedisco-0.0-py3-none-any.whl", "w") as z:
        z.writestr(nk_member, "Gene\tsgRNA\tRep1|z\tRep2|z\n" + "".join(
            f"{g}\t4\t{a}\t{b}\n" for g, a, b in zip(genes, z1, z2, strict=True)))
        z.writestr(cov_member, "\ufeffid,num,pos|score\n" + "".join(f"{g},4,{r}\n" for g, r in zip(genes, rra, strict=True)))
    paths, where = bench.added_screens(lambda m: None)
    assert "cached" in where and len(paths) == 2
    s = load_screen_file(paths[0])
    assert s.name == nk and len(s.scores) == 200
    np.testing.assert_allclose(s.scores["G3"], (z1[3] + z2[3]) / 2)
    dev = np.abs(s.scores - s.scores.median())
    assert s.hits == frozenset(dev.index[dev >= dev.quantile(0.95)]) and len(s.hits) == 10  # top 5 %
    c = load_screen_file(paths[1])
    assert c.name == cov and c.scores["G7"] == pytest.approx(-np.log(rra[7]))


def _design_policy_benchmark():
    spec = importlib.util.spec_from_file_location("design_policy_bench", ROOT / "benchmarks" / "design_policy.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_design_policy_benchmark_reference_and_fallback_are_the_default_next_designer(tmp_path, capsys):
    """The gate's `bayes_prior` column and the gated policy's fallback = what a default `next` picks."""
    from scagents.campaign.design_policy import CampaignTask
    from scagents.campaign.screens import retrospective_picks

    genes, feats, cands, scores = _screen(tmp_path, seed=3)
    db = str(tmp_path / "g.sqlite")
    cli = []
    for r in range(3):
        argv = ["next", "--campaign", "g", "--db", db, "--batch", "10"]
        if r == 0:  # no --designer: the default `next` uses
            argv += ["--goal", "find regulators of X", "--candidates", str(cands), "--features", str(feats),
                     "--seed", "4", "--rounds", "3"]
        assert main(argv) == 0
        con = sqlite3.connect(db)
        got = [g for (g,) in con.execute("SELECT gene FROM proposals WHERE round = ? ORDER BY rank", (r,))]
        con.close()
        cli.append(got)
        res = tmp_path / f"g_{r}.csv"
        pd.DataFrame({"gene": got, "score": scores[got].to_numpy()}).to_csv(res, index=False)
        assert main(["ingest", "--campaign", "g", "--db", db, str(res)]) == 0
    capsys.readouterr()
    F = align_features(read_feature_file(feats), genes)
    prior = expression_prior(F, columns=["mean"]).to_numpy()
    s = scores.to_numpy()
    task = CampaignTask("synthetic", F.to_numpy(), s, s > np.quantile(s, 0.9), prior=prior, batch=10, n_rounds=3)
    bench = _design_policy_benchmark().campaign(task, genes, "bayes_prior", 4)
    assert [[genes[i] for i in p] for p in bench] == cli
    # a policy that has not passed the gate defers to that same designer
    cfg = designer_config("learned_policy", seed=4, n_rounds=3, policy_file=str(tmp_path / "no_policy.pt"))
    gated = retrospective_picks(build_designer(cfg, genes, prior=prior), task.X, s, n_rounds=3, batch=10)
    assert [[genes[i] for i in p] for p in gated] == cli


def test_benchmark_fetches_a_source_archive_only_with_the_index_hash(tmp_path, monkeypatch):
    """The pathway archive is fetched by URL and SHA-256 from the index page (its setup.py never
    runs); a wrong hash writes nothing, a non-https index is refused."""
    import hashlib
    import io

    bench = _benchmark()
    import scagents.campaign.features as feats

    monkeypatch.setattr(feats, "cache_dir", lambda: tmp_path)
    blob = b"not really a tar archive"
    good = hashlib.sha256(blob).hexdigest()
    pages = {}

    def fake_open(url, timeout=0):
        return io.BytesIO(pages[url])

    import urllib.request

    monkeypatch.setattr(urllib.request, "urlopen", fake_open)
    file_url = "https://files.example.org/p/pkg-1.0.tar.gz"
    pages["https://index.example.org/simple/pkg/"] = (
        f'<a href="{file_url}#sha256={"0" * 64}">pkg-1.0.tar.gz</a>').encode()
    pages[file_url] = blob
    log = []
    status = bench.fetch_sdist("pkg", "1.0", log.append, index="https://index.example.org/simple")
    assert "SHA-256" in status and not (tmp_path / "wheels" / "pkg-1.0.tar.gz").exists()
    pages["https://index.example.org/simple/pkg/"] = (
        f'<a href="{file_url}#sha256={good}">pkg-1.0.tar.gz</a>').encode()
    assert bench.fetch_sdist("pkg", "1.0", log.append, index="https://index.example.org/simple") == "downloaded"
    assert (tmp_path / "wheels" / "pkg-1.0.tar.gz").read_bytes() == blob
    assert bench.fetch_sdist("pkg", "1.0", log.append, index="https://index.example.org/simple") == "cached"
    assert bench.fetch_sdist("pkg", "2.0", log.append, index="file:///etc").startswith("failed")


def test_benchmark_markdown_lists_every_setting_added_after_development_once():
    """closed_loop.md groups the settings added after development runs in one table, each exactly once."""
    bench = _benchmark()
    res = json.loads((ROOT / "benchmarks" / "results" / "closed_loop.json").read_text())
    md = bench.markdown(res, None)
    table = [ln for ln in md.splitlines() if ln.startswith("| the five shared")]
    assert len(table) == len(set(bench.DEVELOPED_ON.values()))
    listed = [s.strip(" `|") for ln in table for s in ln.split(" | ", 1)[1].split("; ")]
    assert sorted(listed) == sorted(bench.DEVELOPED_ON)
    assert (ROOT / "benchmarks" / "results" / "closed_loop.md").read_text() == md  # the committed md is this one
