"""Tests of the perturbation-response environments (Gymnasium single and vector envs)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from scagents.envs import (
    PerturbationResponseEnv,
    PerturbationResponseVecEnv,
    ResponseTask,
    evaluate_policy,
    predict_delta,
)
from scagents.errors import PerturbationError
from tests.conftest import shared_file

PERTS = ["IFNG", "TBX21", "GATA3", "STAT1", "STAT6", "IL4", "TBX21 overexpression",
         "GATA3 overexpression", "STAT4", "SOCS1"]


@pytest.fixture(scope="module")
def task() -> ResponseTask:
    return ResponseTask.from_twin("th", PERTS, n_cells=64, n_steps=200, seed=0)


@pytest.fixture(scope="module")
def traj_task() -> ResponseTask:
    return ResponseTask.from_twin("th", PERTS[:4], n_cells=32, n_points=4, n_steps=200, seed=1)


@pytest.fixture(scope="module")
def papalexi_task() -> ResponseTask:
    import anndata as ad

    adata = ad.read_h5ad(shared_file("perturbseq/papalexi2021_thp1_ifng_crispr.h5ad"))
    return ResponseTask.from_anndata(adata, n_top_features=64, max_control_cells=300)


def test_twin_task_layout(task):
    assert task.modalities == ("rna", "atac", "prot")
    assert task.n_perturbations == len(PERTS) and task.n_points == 1
    sl = task.modality_slices
    assert list(sl) == ["rna", "atac", "prot", "context"]
    assert sl["context"].stop == sum(task.dims.values()) + task.encoding_dim + 1
    # a knockout of a gene that is on in control lowers its own activity
    i = task.index("TBX21 overexpression")
    j = task.features["rna"].index("TBX21")
    assert task.deltas["rna"][i, -1, j] > 0.2
    # different perturbations get different encodings
    enc = task.encoding
    assert np.linalg.matrix_rank(enc) > 3


def test_check_env_twin_and_trajectory(task, traj_task):
    check_env(PerturbationResponseEnv(task), skip_render_check=True)
    check_env(PerturbationResponseEnv(traj_task), skip_render_check=True)


def test_check_env_real_data(papalexi_task):
    assert papalexi_task.dims == {"rna": 64}
    assert papalexi_task.n_perturbations == 25
    check_env(PerturbationResponseEnv(papalexi_task), skip_render_check=True)


def test_reward_is_negative_mse(task):
    env = PerturbationResponseEnv(task)
    obs, info = env.reset(seed=3, options={"perturbation": "GATA3"})
    true = task.observed_delta("GATA3").astype(np.float32)
    _, r_best, term, _, info = env.step(true)
    assert r_best == pytest.approx(0.0, abs=1e-7) and term
    env.reset(seed=3, options={"perturbation": "GATA3"})
    rng = np.random.default_rng(0)
    action = (true + rng.normal(0, 0.2, true.shape)).astype(np.float32)
    _, r, _, _, info = env.step(action)
    sl = task.action_slices
    expected = -np.mean([np.mean((action[s] - true[s]) ** 2) for s in sl.values()])
    assert r == pytest.approx(expected, rel=1e-5)
    assert r < r_best
    assert info["mse"]["rna"] == pytest.approx(np.mean((action[sl["rna"]] - true[sl["rna"]]) ** 2),
                                               rel=1e-5)
    # the reward split over action dimensions: each term depends on its own action only
    comps = info["reward_components"]
    assert comps.shape == action.shape and (comps <= 0).all()
    assert comps.sum() == pytest.approx(r, rel=1e-5)
    w = np.concatenate([np.full(s.stop - s.start, 1 / (len(sl) * (s.stop - s.start))) for s in sl.values()])
    np.testing.assert_allclose(comps, -w * (action - true) ** 2, rtol=1e-5)


def test_trajectory_teacher_forcing(traj_task):
    env = PerturbationResponseEnv(traj_task)
    obs, _ = env.reset(seed=0, options={"perturbation": 0, "cell": 5})
    pts = [obs[-1]]
    for t in range(traj_task.n_points):
        target = traj_task.observed_delta(0, point=t).astype(np.float32)
        nxt, r, term, trunc, _ = env.step(target)
        assert r == pytest.approx(0.0, abs=1e-7)
        assert term == (t == traj_task.n_points - 1)
        if not term:
            rna = traj_task.modality_slices["rna"]
            np.testing.assert_allclose(nxt[rna], traj_task.states["rna"][5, t + 1])
            pts.append(nxt[-1])
    np.testing.assert_allclose(pts, (np.arange(traj_task.n_points) + 1) / traj_task.n_points)


def test_split_never_leaks(task):
    for fold in range(3):
        train, test = task.split(n_folds=3, fold=fold, seed=0)
        assert not set(train.labels) & set(test.labels)
        assert set(train.labels) | set(test.labels) == set(task.labels)
        assert test.embedding is train.embedding
        for lab in test.labels:
            with pytest.raises(PerturbationError):
                train.index(lab)
    train, test = task.split(["IFNG", "STAT6"])
    assert set(test.labels) == {"IFNG", "STAT6"}
    # the held-out data never shape the embedding: changing them leaves the encoding unchanged
    doctored = task.subset(range(task.n_perturbations), refit_embedding=False)
    doctored.deltas = {m: d.copy() for m, d in task.deltas.items()}
    for m in doctored.modalities:
        doctored.deltas[m][task.index("IFNG")] += 5.0
    train2, test2 = doctored.split(["IFNG", "STAT6"])
    np.testing.assert_allclose(test2.encoding, test.encoding)
    np.testing.assert_allclose(train2.encoding, train.encoding)
    # ...but the training data do
    assert not np.allclose(task.split(["GATA3", "STAT6"])[1].encoding[1], test.encoding[1])


def test_vector_env_shapes_autoreset_seeding(task, traj_task):
    venv = PerturbationResponseVecEnv(traj_task, num_envs=16)
    assert venv.modality_slices == traj_task.modality_slices
    obs, _ = venv.reset(seed=1)
    assert obs.shape == (16, venv.single_observation_space.shape[0]) and obs.dtype == np.float32
    assert venv.observation_space.contains(obs)
    obs2, _ = PerturbationResponseVecEnv(traj_task, num_envs=16).reset(seed=1)
    np.testing.assert_array_equal(obs, obs2)
    venv.action_space.seed(0)
    for t in range(traj_task.n_points):
        obs, rew, term, trunc, info = venv.step(venv.action_space.sample())
        assert rew.shape == (16,) and rew.dtype == np.float64 and (rew <= 0).all()
        assert term.dtype == bool and not trunc.any()
        assert term.all() == (t == traj_task.n_points - 1)
    assert info["final_obs"].shape == obs.shape and info["_final_obs"].all()
    assert np.allclose(obs[:, -1], 1 / traj_task.n_points)  # autoreset: a new episode begins
    # the vector env's reward equals the single env's for the same cell/perturbation/action
    venv = PerturbationResponseVecEnv(task, num_envs=8)
    venv.reset(seed=5)
    single = PerturbationResponseEnv(task)
    acts = np.random.default_rng(0).normal(0, 0.3, (8, venv.single_action_space.shape[0]))
    acts = acts.astype(np.float32)
    ci, pi = venv._ci.copy(), venv._pi.copy()
    _, rew, _, _, info = venv.step(acts)
    assert info["reward_components"].shape == acts.shape
    np.testing.assert_allclose(info["reward_components"].sum(axis=1), rew, rtol=1e-5)
    for i in range(8):
        single.reset(options={"perturbation": int(pi[i]), "cell": int(ci[i])})
        _, r, _, _, one = single.step(acts[i])
        assert r == pytest.approx(rew[i], rel=1e-5)
        np.testing.assert_allclose(one["reward_components"], info["reward_components"][i], rtol=1e-5)


def test_vector_env_throughput(task):
    venv = PerturbationResponseVecEnv(task, num_envs=1024)
    venv.reset(seed=0)
    acts = np.zeros((1024, venv.single_action_space.shape[0]), np.float32)
    venv.step(acts)
    n, start = 50, time.perf_counter()
    for _ in range(n):
        venv.step(acts)
    sps = n * 1024 / (time.perf_counter() - start)
    assert sps > 100_000, f"{sps:.0f} env-steps/s"


def test_predict_delta_and_evaluate(task):
    train, test = task.split(["IFNG", "GATA3"])

    def oracle(obs):  # "policy" returning the true delta of the encoded perturbation
        enc = obs[:, test.modality_slices["context"]][:, :-1]
        out = np.zeros((len(obs), sum(test.dims.values())), np.float32)
        for i, e in enumerate(test.encoding):
            hit = np.all(np.isclose(enc, e), axis=1)
            out[hit] = test.observed_delta(i)
        return out

    pred = predict_delta(oracle, test, "GATA3", modality="rna")
    np.testing.assert_allclose(pred, test.observed_delta("GATA3", modality="rna"), atol=1e-6)
    df = evaluate_policy(oracle, test)
    assert list(df["perturbation"]) == test.labels
    assert np.allclose(df["mse"], 0.0, atol=1e-10)
    zero = evaluate_policy(lambda o: np.zeros((len(o), 48), np.float32), test)
    assert (zero["mse"] > 0).all()


@pytest.mark.slow
def test_training_improves_reward(task):
    from scagents.policies import TrainConfig, train

    venv = PerturbationResponseVecEnv(task, num_envs=64, reward_scale=10.0)
    cfg = TrainConfig(algo="trpo_ppo", total_steps=64 * 16 * 12, n_steps=16, gamma=0.0,
                      hidden_sizes=(64, 64), branch_sizes=(32,), init_log_std=-1.0, seed=0, lr=1e-3)
    policy, log = train(venv, cfg, progress=False)
    returns = log.column("episodic_return_mean")
    assert np.mean(returns[-3:]) > np.mean(returns[:2])
    assert set(policy.slices) == {"rna", "atac", "prot", "context"}


def test_from_simulated_mudata_multimodal():
    from scagents.perturbation import Perturbation
    from scagents.twin import simulate

    mdata = simulate("th", perturbations=[None, Perturbation("GATA3"), Perturbation("IFNG")],
                     n_cells=60, n_steps=100, seed=2)
    t = ResponseTask.from_anndata(mdata, n_top_features={"atac": 16})
    assert t.modalities == ("rna", "atac", "prot") and t.dims["atac"] == 16
    assert t.labels == ["GATA3", "IFNG"] and t.n_cells == 60
    assert t.pseudotime.max() > 0  # the twin's pseudotime is carried into the observation
    check_env(PerturbationResponseEnv(t), skip_render_check=True)


def test_per_gene_rewards_train_through_gymnasium_sync_vector_envs(traj_task):
    """A plain env is wrapped in SyncVectorEnv; its step info of finished episodes sits under
    ``final_info`` — the per-gene rewards are found there too, in both autoreset modes."""
    from gymnasium.vector import AutoresetMode, SyncVectorEnv

    from scagents.policies import TrainConfig, train

    cfg = TrainConfig(algo="trpo_ppo", total_steps=4 * 8 * 4, n_envs=4, n_steps=8, hidden_sizes=(16,),
                      reward_components=True, critic_init_gain=0.01, gamma=0.0, gae_lambda=0.0, seed=0)
    policy, log = train(PerturbationResponseEnv(traj_task), cfg, progress=False)
    assert policy.value_dim == 48 and len(log.rows) == 4
    assert all(np.isfinite(r["value_loss"]) for r in log.rows)
    nxt = SyncVectorEnv([lambda: PerturbationResponseEnv(traj_task)] * 4, autoreset_mode=AutoresetMode.NEXT_STEP)
    policy, log = train(nxt, cfg, progress=False)
    assert len(log.rows) == 4 and log.rows[-1]["episodes"] > 0


# ------------------------------------------------------ folds move a target's labels together
def _two_labels_each(task: ResponseTask) -> ResponseTask:
    """``task`` with every perturbation measured twice, as ``X_P1`` and ``X_P2`` (per promoter)."""
    from dataclasses import replace

    idx = np.repeat(np.arange(task.n_perturbations), 2)
    return replace(task, perturbations=[task.perturbations[i] for i in idx],
                   labels=[f"{lab}_P{k}" for lab in task.labels for k in (1, 2)],
                   deltas={m: d[idx] for m, d in task.deltas.items()}, cell_states=None)


def test_folds_keep_every_label_of_a_target_set_together(task):
    dup = _two_labels_each(task)
    groups = dup.target_groups()
    # one group per perturbation (TBX21 knockout and over-expression are two experiments)
    assert dup.n_groups == task.n_perturbations == 10
    for seed in range(4):
        for fold in range(3):
            train, test = dup.split(n_folds=3, fold=fold, seed=seed)
            held = set(test.labels)
            assert all(len({dup.labels[i] in held for i in g}) == 1 for g in groups)
        train, test = dup.split(test_fraction=0.3, seed=seed)
        held = set(test.labels)
        assert all(len({dup.labels[i] in held for i in g}) == 1 for g in groups)
    with pytest.raises(Exception, match="target gene sets"):
        dup.split(n_folds=11, fold=0)


def test_folds_with_one_label_per_target_set_are_the_earlier_folds(task):
    from sklearn.model_selection import KFold

    single = task  # one label per target set and kind
    n = single.n_perturbations
    assert single.n_groups == n
    for seed in range(3):
        for k in (2, 3, 5):
            folds = list(KFold(n_splits=k, shuffle=True, random_state=seed).split(np.arange(n)))
            for fold in range(k):
                _, test = single.split(n_folds=k, fold=fold, seed=seed)
                assert test.labels == [single.labels[i] for i in sorted(folds[fold][1])]
        idx = sorted(np.random.default_rng(seed).choice(n, round(0.2 * n), replace=False))
        assert single.split(test_fraction=0.2, seed=seed)[1].labels == [single.labels[i]
                                                                         for i in idx]


def test_inner_crossfit_folds_keep_a_targets_labels_together(task):
    from scagents.combination import crossfit_predictions

    dup = _two_labels_each(task)

    def zero(t):
        return lambda p: np.zeros(t.dims[t.embedding_modality])

    _, _, folds, _ = crossfit_predictions(dup, {"zero": zero}, n_folds=5, seed=0)
    assert (folds >= 0).all()
    for g in dup.target_groups():
        assert len(set(folds[g])) == 1
