"""scagents.parallel: the same seeds give the same numbers in-process and on Ray."""

from __future__ import annotations

import builtins
import sys

import numpy as np
import pandas as pd
import pytest

from scagents.parallel import (
    ParallelError,
    RayNotInstalledError,
    grid_points,
    run_seeds,
    run_tasks,
    sweep,
)


def ablation_run(algo: str, seed: int, total_steps: int = 512) -> dict:
    """A tiny PPO / TRPO training on the toy target-matching task; everything seeded by ``seed``."""
    from scagents.envs.toy import TargetMatchVecEnv
    from scagents.policies import TrainConfig, train

    env = TargetMatchVecEnv(num_envs=8, obs_dim=4, act_dim=2, ep_length=8)
    cfg = TrainConfig(algo=algo, total_steps=total_steps, n_steps=16, hidden_sizes=(16, 16), seed=seed,
                      n_minibatches=2, ppo_epochs=2, vf_epochs=2, cg_iters=5)
    policy, log = train(env, cfg, progress=False)
    params = np.concatenate([p.detach().numpy().ravel() for p in policy.parameters()])
    return {"returns": np.asarray(log.column("episodic_return_mean")), "params": params}


def quadratic(x: float, y: float, seed: int = 0) -> dict:
    noise = np.random.default_rng(seed).normal(scale=1e-3)
    return {"loss": (x - 1.0) ** 2 + (y + 0.5) ** 2 + noise, "x_plus_y": x + y}


# ----------------------------------------------------------------------------- local (no Ray)
def test_grid_points_order_and_validation():
    pts = grid_points({"a": [1, 2], "b": ["x", "y", "z"]})
    assert len(pts) == 6
    assert pts[0] == {"a": 1, "b": "x"} and pts[1] == {"a": 1, "b": "y"} and pts[-1] == {"a": 2, "b": "z"}
    with pytest.raises(ParallelError, match="non-empty list"):
        grid_points({"a": []})
    with pytest.raises(ParallelError, match="empty"):
        grid_points({})


def test_run_tasks_local_keeps_order_and_values():
    out = run_tasks(quadratic, [{"x": float(i), "y": 0.0} for i in range(4)])
    assert [round(o["x_plus_y"]) for o in out] == [0, 1, 2, 3]


def test_run_seeds_local_is_deterministic_and_seed_dependent():
    a = run_seeds(quadratic, [0, 1], x=0.0, y=0.0)
    b = run_seeds(quadratic, [0, 1], x=0.0, y=0.0)
    assert a == b
    assert a[0]["loss"] != a[1]["loss"]
    with pytest.raises(ParallelError, match="set by run_seeds"):
        run_seeds(quadratic, [0], seed=3, x=0.0, y=0.0)


def test_sweep_local_one_row_per_point_and_best():
    df = sweep(quadratic, {"x": [0.0, 1.0, 2.0], "y": [-0.5, 0.5]}, metric="loss", mode="min")
    assert len(df) == 6
    assert list(df.columns[:2]) == ["x", "y"]
    assert df.attrs["best"] == {"x": 1.0, "y": -0.5}
    with pytest.raises(ParallelError, match="did not return the metric"):
        sweep(quadratic, {"x": [0.0]}, fixed={"y": 0.0}, metric="nope")
    with pytest.raises(ParallelError, match="both fixed and in the grid"):
        sweep(quadratic, {"x": [0.0]}, fixed={"x": 0.0, "y": 0.0})


def test_unknown_backend():
    with pytest.raises(ParallelError, match="backend must be"):
        run_tasks(quadratic, [{"x": 0.0, "y": 0.0}], backend="dask")


def test_ray_missing_gives_install_hint(monkeypatch):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "ray", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(RayNotInstalledError, match=r'pip install "scagents\[ray\]"'):
        run_tasks(quadratic, [{"x": 0.0, "y": 0.0}], backend="ray")


# ----------------------------------------------------------------------------- Ray
@pytest.mark.slow
def test_four_seed_ablation_identical_on_ray_and_in_process(ray_local):
    seeds = [0, 1, 2, 3]
    for algo in ("ppo", "trpo"):
        local = run_seeds(ablation_run, seeds, algo=algo)
        remote = run_seeds(ablation_run, seeds, algo=algo, backend="ray")
        assert len(remote) == 4
        for a, b in zip(local, remote, strict=True):
            np.testing.assert_array_equal(a["returns"], b["returns"])
            np.testing.assert_array_equal(a["params"], b["params"])
        # different seeds really differ (the comparison is not vacuous)
        assert not np.array_equal(local[0]["params"], local[1]["params"])


@pytest.mark.slow
def test_sweep_on_ray_tune_matches_local(ray_local):
    grid = {"x": [0.0, 1.0], "y": [-0.5]}
    remote = sweep(quadratic, grid, backend="ray", metric="loss", mode="min", fixed={"seed": 3})
    local = sweep(quadratic, grid, metric="loss", mode="min", fixed={"seed": 3})
    assert len(remote) == len(grid_points(grid))
    np.testing.assert_array_equal(remote["loss"].to_numpy(), local["loss"].to_numpy())
    assert remote.attrs["best"] == {"x": 1.0, "y": -0.5}


@pytest.mark.slow
def test_ridge_ucb_ensemble_on_ray_proposes_the_same_as_in_process(ray_local):
    from scagents.campaign.acquisition import RidgeEnsemble, make_designer

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8))
    y_all = X @ rng.normal(size=8) + 0.3 * rng.normal(size=300)
    measured = rng.choice(300, 40, replace=False)
    local = make_designer("ridge_ucb", seed=4, n_models=12)
    remote = make_designer("ridge_ucb", seed=4, n_models=12, backend="ray")
    picks_local = local.propose(X, measured, y_all[measured], 10, round_index=2)
    picks_remote = remote.propose(X, measured, y_all[measured], 10, round_index=2)
    pd.testing.assert_frame_equal(picks_local, picks_remote)
    assert not set(picks_local["index"]) & set(measured)
    # the members really were fitted remotely in several tasks, and equal the local ones
    ens_l = RidgeEnsemble(12, seed=1).fit(X[measured], y_all[measured])
    ens_r = RidgeEnsemble(12, seed=1, backend="ray", n_tasks=3).fit(X[measured], y_all[measured])
    np.testing.assert_array_equal(ens_l.coef_, ens_r.coef_)
    assert ens_l.coef_.shape == (12, 8) and np.ptp(ens_l.coef_[:, 0]) > 0  # bootstrap members differ


def test_ridge_ensemble_rejects_an_unknown_backend():
    from scagents.campaign.acquisition import RidgeEnsemble

    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ParallelError, match="backend must be"):
        RidgeEnsemble(4, backend="dask").fit(X, X[:, 0])
