"""The learned acquisition (TRPO→PPO design policy): environment, training, LOSO gate, `next` path."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from scagents.campaign import create_campaign, propose_round
from scagents.campaign.acquisition import DesignerError, build_designer, designer_config
from scagents.campaign.design_policy import (
    STATE_NAMES,
    CampaignTask,
    DesignCampaignEnv,
    LearnedPolicyDesigner,
    loso_gate,
    network_fate_prior,
    policy_state_bytes,
    train_design_policy,
)
from scagents.campaign.screens import retrospective_picks


def _task(seed: int, n: int = 240, prior_noise: float = 0.3, name: str = "syn") -> CampaignTask:
    """Synthetic screen: hits = top 10 % of a latent score; the prior is the latent score plus noise
    (informative), the features carry a weak part of it."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    latent = rng.normal(size=n)
    X[:, 0] += 0.3 * latent
    scores = latent + 0.2 * rng.normal(size=n)
    hits = scores >= np.quantile(scores, 0.9)
    prior = latent + prior_noise * rng.normal(size=n)
    return CampaignTask(f"{name}{seed}", X, scores, hits, prior=prior, batch=12, n_rounds=4, objective="increase")


def test_env_passes_gymnasium_check_env():
    from gymnasium.utils.env_checker import check_env

    env = DesignCampaignEnv([_task(0), _task(1)])
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs) and info["task"] in ("syn0", "syn1")
    total, done = 0, False
    while not done:
        obs, r, done, trunc, info = env.step(env.action_space.sample())
        total += info["hits"]
    assert 0 <= total <= 24


def test_env_rejects_a_task_without_hits():
    t = _task(0)
    with pytest.raises(DesignerError, match="no hit"):
        CampaignTask("empty", t.X, t.scores, np.zeros(len(t.X), bool))


def _final_ratio(des, task: CampaignTask) -> float:
    picks = retrospective_picks(des, task.X, task.scores, n_rounds=task.n_rounds, batch=task.batch,
                                objective=task.objective)
    return task.hits[np.concatenate(picks)].sum() / task.hits.sum()


def test_policy_trains_on_a_tiny_campaign_and_beats_random():
    """Trained on synthetic campaigns whose prior is more informative than the Bayesian designer's fixed
    anchor assumes, the policy learns to lean on the prior and beats random on unseen campaigns of the
    same kind."""
    import torch

    train_tasks = [_task(s, prior_noise=0.1) for s in range(4)]
    policy, log = train_design_policy(train_tasks, algo="trpo_ppo", total_steps=1024, seed=0)
    assert len(log) > 0 and set(log.column("phase")) == {"trpo", "ppo"}
    env = DesignCampaignEnv(train_tasks)
    obs = np.stack([env.reset(seed=s)[0] for s in range(8)])
    with torch.no_grad():
        a = policy.dist_params(torch.as_tensor(obs))[0].numpy()
    assert a[:, STATE_NAMES.index("prior")].mean() > 0  # it learnt the direction that pays here
    blob = policy_state_bytes(policy, gate={"passed": True, "reason": "test"})
    learned, rand = [], []
    for s in range(10, 16):
        t = _task(s, prior_noise=0.1)
        learned.append(_final_ratio(_designer(blob, s, t.prior, require_validation=False), t))
        rand.append(_final_ratio(build_designer(designer_config("random", seed=s, groups="none"),
                                                [str(i) for i in range(len(t.X))]), t))
    assert np.mean(learned) > np.mean(rand) + 0.2


def _designer(blob: bytes, seed: int, prior: np.ndarray, **opts) -> LearnedPolicyDesigner:
    cfg = designer_config("learned_policy", seed=seed, groups="none", n_rounds=4, **opts)
    return build_designer(cfg, [str(i) for i in range(len(prior))], prior=prior, state=blob)


def test_loso_gate_picks_the_bayesian_designer_unless_the_policy_is_better():
    rng = np.random.default_rng(0)
    bayes = {s: (0.10 + 0.01 * rng.normal(size=5)).tolist() for s in ("A", "B", "C")}
    same = {s: (np.asarray(v) + 0.005 * rng.normal(size=5)).tolist() for s, v in bayes.items()}
    worse = {s: (np.asarray(v) - 0.02).tolist() for s, v in bayes.items()}
    better = {s: (np.asarray(v) + 0.02 + 0.002 * rng.normal(size=5)).tolist() for s, v in bayes.items()}
    for policy in (same, worse):
        g = loso_gate(policy, bayes)
        assert not g["passed"] and g["reason"].startswith("the learned TRPO→PPO acquisition did not beat")
    g = loso_gate(better, bayes)
    assert g["passed"] and g["ci_low"] > 0 and "beat the Bayesian designer" in g["reason"]
    # better on average but only thanks to one screen: not most screens → no
    one = {**bayes, "A": (np.asarray(bayes["A"]) + 0.2).tolist()}
    assert not loso_gate(one, bayes)["passed"]
    assert not loso_gate({}, bayes)["passed"]


def test_gated_policy_defers_to_the_bayesian_designer_and_says_why():
    t = _task(5)
    pol, _ = train_design_policy([_task(0)], total_steps=64, seed=0)
    gate = loso_gate({"A": [0.1] * 5}, {"A": [0.12] * 5})
    blob = policy_state_bytes(pol, gate=gate)
    des = _designer(blob, 2, t.prior)
    bayes = build_designer(designer_config("bayes_prior", seed=2, groups="none", n_rounds=4),
                           [str(i) for i in range(len(t.X))], prior=t.prior)
    m = np.arange(30)
    got = des.propose(t.X, m, t.scores[m], 12, round_index=1, n_rounds=4)
    ref = bayes.propose(t.X, m, t.scores[m], 12, round_index=1, n_rounds=4)
    assert got["index"].tolist() == ref["index"].tolist()
    # the fallback is the default Bayesian designer with the same gene–gene graph build_designer attached
    assert des.graph is not None and des._delegate.graph is des.graph
    why = got["rationale"].iloc[0]
    assert why.startswith("learned design policy not used: the learned TRPO→PPO acquisition did not beat")
    # validation not required: the policy itself answers
    own = _designer(blob, 2, t.prior, require_validation=False).propose(t.X, m, t.scores[m], 12, round_index=1,
                                                                         n_rounds=4)
    assert "unvalidated learned TRPO→PPO acquisition" in own["rationale"].iloc[0]


def test_next_stores_the_policy_and_reads_it_back_weights_only(tmp_path):
    t = _task(7)
    genes = [f"G{i}" for i in range(len(t.X))]
    F = pd.DataFrame(t.X, index=genes, columns=[f"f{j}" for j in range(t.X.shape[1])])
    pol, _ = train_design_policy([_task(0)], total_steps=64, seed=0)
    pfile = tmp_path / "policy.pt"
    pfile.write_bytes(policy_state_bytes(pol, gate={"passed": True, "reason": "test verdict"}))
    db = tmp_path / "ledger.sqlite"
    create_campaign(db, "lp", goal="find regulators of X", candidates=genes, features=F,
                    prior=pd.Series(t.prior, index=genes))
    out = propose_round(db, "lp", batch=12, designer="learned_policy", seed=1, policy_file=str(pfile))
    assert len(out) == 12
    con = sqlite3.connect(db)
    state = con.execute("SELECT state FROM designers").fetchone()[0]
    con.close()
    assert state == pfile.read_bytes()  # the ledger keeps the policy: later rounds use this copy
    fresh = LearnedPolicyDesigner()
    fresh.set_state(state)
    with pytest.raises(DesignerError, match="cannot be read"):
        fresh.set_state(b"not a torch file")
    # no policy file at all: the Bayesian designer answers and the rationale names the missing file
    des = LearnedPolicyDesigner(seed=0, prior=t.prior, policy_file=str(tmp_path / "absent.pt"))
    m = np.arange(30)
    why = des.propose(t.X, m, t.scores[m], 5, round_index=1)["rationale"].iloc[0]
    assert "no trained design policy at" in why and "Bayesian designer" in why


def test_network_fate_prior_ranks_the_direct_th1_drivers_first():
    from scagents.twin import load_model

    net = load_model("th")
    labels = [g for g in net.genes] + [f"{g} overexpression" for g in net.genes]
    p = network_fate_prior(net, labels, "Th1")
    assert p[labels.index("TBX21 overexpression")] > 0 > p[labels.index("TBX21")]
    assert p[labels.index("GATA3")] > 0 > p[labels.index("GATA3 overexpression")]
    with pytest.raises(DesignerError, match="Unknown fate"):
        network_fate_prior(net, labels, "Th17")


def test_cli_next_says_in_one_line_why_the_bayesian_designer_answers(tmp_path, capsys):
    from scagents.cli import main

    t = _task(9, n=120)
    genes = [f"G{i}" for i in range(len(t.X))]
    feats = tmp_path / "feats.csv"
    pd.DataFrame(t.X, index=pd.Index(genes, name="gene"), columns=[f"f{j}" for j in range(6)]).assign(
        mean=t.prior).to_csv(feats)
    cands = tmp_path / "cands.txt"
    cands.write_text("\n".join(genes) + "\n")
    pol, _ = train_design_policy([_task(0)], total_steps=64, seed=0)
    pfile = tmp_path / "policy.pt"
    pfile.write_bytes(policy_state_bytes(pol, gate=loso_gate({"A": [0.1] * 5}, {"A": [0.12] * 5})))
    db = str(tmp_path / "ledger.sqlite")
    argv = ["next", "--campaign", "c", "--db", db, "--batch", "10", "--goal", "find regulators of X",
            "--candidates", str(cands), "--features", str(feats), "--designer", "learned_policy",
            "--designer-option", f"policy_file={pfile}"]
    assert main(argv) == 0
    con = sqlite3.connect(db)
    got = [g for (g,) in con.execute("SELECT gene FROM proposals ORDER BY rank")]
    con.close()
    res = tmp_path / "res.csv"
    pd.DataFrame({"gene": got, "score": t.scores[[genes.index(g) for g in got]]}).to_csv(res, index=False)
    assert main(["ingest", "--campaign", "c", "--db", db, str(res)]) == 0
    capsys.readouterr()
    assert main(["next", "--campaign", "c", "--db", db, "--batch", "10"]) == 0
    out = capsys.readouterr().out
    why = [line for line in out.splitlines() if "learned design policy not used" in line]
    assert len(why) == 1 and "did not beat the Bayesian designer in leave-one-screen-out validation" in why[0]
    assert "designer: learned_policy" in out


def test_gated_fallback_keeps_the_knowledge_sources_apart_as_the_default_designer(tmp_path, monkeypatch):
    """With several knowledge graphs the fallback gets one matrix per source (not their sum), as the
    default Bayesian designer does, and so picks the genes it picks."""
    import scipy.sparse as sp

    import scagents.campaign.features as features

    def fake_graphs(genes, sources, *args, **kwargs):
        n = len(genes)
        out = {}
        for k, s in enumerate(sources):  # the same sparse, symmetric graphs on every call
            A = sp.random(n, n, density=0.04, random_state=np.random.default_rng(10 + k), format="csr")
            A = (A + A.T).tolil()
            A.setdiag(0)
            A = A.tocsr()
            out[s] = A / A.max()
        return out, {s: 1.0 for s in sources}

    monkeypatch.setattr(features, "knowledge_graphs", fake_graphs)
    t = _task(11)
    genes = [f"G{i}" for i in range(len(t.X))]
    ref = build_designer(designer_config("bayes_prior", seed=2, groups="none", n_rounds=4), genes, prior=t.prior)
    cfg = designer_config("learned_policy", seed=2, groups="none", n_rounds=4,
                          policy_file=str(tmp_path / "absent.pt"))
    des = build_designer(cfg, genes, prior=t.prior)
    assert isinstance(ref.graph, list) and len(ref.graph) > 1
    assert isinstance(des.graph, list) and len(des.graph) == len(ref.graph)
    assert all((a != b).nnz == 0 for a, b in zip(des.graph, ref.graph, strict=True))
    got = retrospective_picks(des, t.X, t.scores, n_rounds=4, batch=12, objective="increase")
    want = retrospective_picks(ref, t.X, t.scores, n_rounds=4, batch=12, objective="increase")
    assert [p.tolist() for p in got] == [p.tolist() for p in want]
