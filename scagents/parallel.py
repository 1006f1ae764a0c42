"""Independent runs in parallel: seeds, ensembles and hyper-parameter sweeps, locally or on Ray.

The same call runs in-process (``backend="local"``, no extra dependency) or as Ray tasks / Ray Tune
trials (``backend="ray"``, ``pip install "scagents[ray]"``), with the same results in the same order:

>>> from scagents.parallel import run_seeds, sweep
>>> finals = run_seeds(train_one, [0, 1, 2, 3], backend="ray", algo="trpo_ppo")  # doctest: +SKIP
>>> table = sweep(train_one, {"delta": [0.005, 0.01], "lr": [1e-4, 3e-4]}, backend="ray",
...               metric="final_return")                                          # doctest: +SKIP

Users
    :class:`scagents.campaign.acquisition.RidgeEnsemble` (``backend="ray"``: ensemble members as Ray
    tasks) and :class:`scagents.envs.ray_vec.RayVectorEnv` (rollouts on Ray actors, via
    :func:`ensure_ray`).

Reproducibility
    A task must derive all its randomness from its arguments (e.g. ``TrainConfig(seed=...)``, or call
    :func:`seed_everything` first). Every task runs with one torch thread, in-process as on a Ray worker,
    so floating-point reductions happen in the same order and results are bitwise identical across
    backends.

Where things run
    ``backend="ray"`` connects to ``address`` (``"auto"`` or ``"ray://head:10001"`` for an existing
    cluster; ``None`` starts a local instance with ``num_cpus`` CPUs and no dashboard) unless Ray is
    already initialised. The driver only submits tasks and gathers results; every call of ``fn`` runs
    on a worker with ``cpus_per_task`` CPUs. Workers must be able to import ``fn`` and ``scagents``:
    install scagents on the cluster's nodes or pass ``runtime_env={"py_modules": [scagents]}``.
"""

from __future__ import annotations

import itertools
import math
import random
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from scagents.errors import ScagentsError

__all__ = [
    "ParallelError",
    "RayNotInstalledError",
    "ensure_ray",
    "grid_points",
    "run_seeds",
    "run_tasks",
    "seed_everything",
    "sweep",
]

Backend = Literal["local", "ray"]


class ParallelError(ScagentsError, ValueError):
    """Invalid arguments to the parallel runners (unknown backend, empty grid, bad results)."""


class RayNotInstalledError(ScagentsError, ImportError):
    """``backend="ray"`` was requested but Ray is not installed."""


# ============================================================================ helpers
def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU) with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        return
    torch.manual_seed(seed)


def _call(fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
    """Run one task with one torch thread (the same on every backend), restoring the thread count."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return fn(**kwargs)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(**kwargs)
    finally:
        torch.set_num_threads(before)


def _check_backend(backend: str) -> None:
    if backend not in ("local", "ray"):
        raise ParallelError(f"backend must be 'local' or 'ray', got {backend!r}.")


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise RayNotInstalledError(
            'backend="ray" needs Ray, which is not installed. Install the optional extra with '
            '`pip install "scagents[ray]"` (or `pip install "ray[tune]"`), or use backend="local".'
        ) from exc
    return ray


def ensure_ray(*, num_cpus: int | None = None, address: str | None = None,
               runtime_env: Mapping[str, Any] | None = None):
    """Import Ray and connect to (or start) an instance unless one is already initialised.

    Parameters
    ----------
    num_cpus
        CPUs of a locally started instance (ignored when connecting to ``address``).
    address
        ``None`` starts a local instance; ``"auto"`` joins the cluster this machine belongs to;
        ``"ray://<head>:10001"`` connects through Ray Client.
    runtime_env
        Ray runtime environment (e.g. ``{"py_modules": [scagents]}`` to ship the package).

    Returns
    -------
    The ``ray`` module.

    Raises
    ------
    RayNotInstalledError
        Ray is not installed.
    """
    ray = _import_ray()
    if not ray.is_initialized():
        opts: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address is not None:
            opts["address"] = address
        elif num_cpus is not None:
            opts["num_cpus"] = int(num_cpus)
        if runtime_env is not None:
            opts["runtime_env"] = dict(runtime_env)
        ray.init(**opts)
    return ray


# ============================================================================ tasks
def run_tasks(
    fn: Callable[..., Any],
    kwargs_list: Sequence[Mapping[str, Any]],
    *,
    backend: Backend = "local",
    num_cpus: int | None = None,
    address: str | None = None,
    cpus_per_task: float = 1,
    runtime_env: Mapping[str, Any] | None = None,
) -> list[Any]:
    """Call ``fn(**kwargs)`` for every entry of ``kwargs_list``; results in the same order.

    Parameters
    ----------
    fn
        A picklable, module-level function (Ray ships it to the workers).
    kwargs_list
        Keyword arguments of each call.
    backend
        ``"local"``: one after the other in this process. ``"ray"``: one Ray task per call.
    num_cpus, address, runtime_env
        Ray connection (see :func:`ensure_ray`); ignored locally.
    cpus_per_task
        CPUs Ray reserves for each task (how many run at once per node).

    Returns
    -------
    list
        ``[fn(**kw) for kw in kwargs_list]``.

    Raises
    ------
    ParallelError
        Unknown backend.
    RayNotInstalledError
        ``backend="ray"`` without Ray installed.
    """
    _check_backend(backend)
    kwargs_list = [dict(kw) for kw in kwargs_list]
    if backend == "local":
        return [_call(fn, kw) for kw in kwargs_list]
    ray = ensure_ray(num_cpus=num_cpus, address=address, runtime_env=runtime_env)
    remote = ray.remote(num_cpus=cpus_per_task, max_retries=0)(_call)
    fn_ref = ray.put(fn)
    return ray.get([remote.remote(fn_ref, kw) for kw in kwargs_list])


def run_seeds(
    fn: Callable[..., Any],
    seeds: Sequence[int],
    *,
    backend: Backend = "local",
    seed_arg: str = "seed",
    num_cpus: int | None = None,
    address: str | None = None,
    cpus_per_task: float = 1,
    **fn_kwargs: Any,
) -> list[Any]:
    """Run ``fn(**fn_kwargs, seed=s)`` for each seed (independent repeats of an experiment).

    Parameters
    ----------
    fn
        Module-level function taking the seed as ``seed_arg``.
    seeds
        One call per seed, results in this order.
    backend, num_cpus, address, cpus_per_task
        As in :func:`run_tasks`.
    seed_arg
        Name of ``fn``'s seed parameter.
    **fn_kwargs
        Passed to every call.

    Returns
    -------
    list
        One result per seed.
    """
    if seed_arg in fn_kwargs:
        raise ParallelError(f"{seed_arg!r} is set by run_seeds; do not pass it in the keyword arguments.")
    return run_tasks(fn, [{**fn_kwargs, seed_arg: int(s)} for s in seeds], backend=backend,
                     num_cpus=num_cpus, address=address, cpus_per_task=cpus_per_task)


# ============================================================================ sweeps
def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Cartesian product of a parameter grid, the first key varying slowest.

    >>> grid_points({"delta": [0.01, 0.02], "lr": [1e-3]})
    [{'delta': 0.01, 'lr': 0.001}, {'delta': 0.02, 'lr': 0.001}]
    """
    if not grid:
        raise ParallelError("The grid is empty; give at least one parameter with a list of values.")
    for k, v in grid.items():
        if isinstance(v, str) or not isinstance(v, Sequence) or len(v) == 0:
            raise ParallelError(f"grid[{k!r}] must be a non-empty list of values, got {v!r}.")
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]


def _as_metrics(result: Any, metric: str) -> dict[str, Any]:
    if isinstance(result, Mapping):
        return dict(result)
    if isinstance(result, int | float | np.floating | np.integer):
        return {metric: float(result)}
    raise ParallelError(f"A sweep function must return a dict of metrics or a number, got {type(result).__name__}.")


def _trial(config: dict[str, Any], fn: Callable[..., Any], fixed: dict[str, Any], metric: str) -> dict[str, Any]:
    return _as_metrics(_call(fn, {**fixed, **config}), metric)


def sweep(
    fn: Callable[..., Any],
    grid: Mapping[str, Sequence[Any]],
    *,
    backend: Backend = "local",
    metric: str = "score",
    mode: Literal["max", "min"] = "max",
    fixed: Mapping[str, Any] | None = None,
    num_cpus: int | None = None,
    address: str | None = None,
    cpus_per_trial: float = 1,
    storage_path: str | None = None,
) -> pd.DataFrame:
    """Evaluate ``fn`` at every point of a hyper-parameter grid (Ray Tune trials on ``backend="ray"``).

    Parameters
    ----------
    fn
        Module-level function called as ``fn(**fixed, **point)``; returns a dict of numbers (or one
        number, stored under ``metric``).
    grid
        Parameter → list of values, e.g. ``{"delta": [0.005, 0.01], "damping": [0.01, 0.1],
        "clip_coef": [0.1, 0.2], "lr": [1e-4, 3e-4]}``.
    backend
        ``"local"``: a plain loop. ``"ray"``: a :class:`ray.tune.Tuner` with one grid-search trial per
        point.
    metric, mode
        The metric that ranks the points and whether larger (``"max"``) or smaller is better.
    fixed
        Arguments passed unchanged to every call (e.g. the seed, the step budget).
    num_cpus, address
        Ray connection (see :func:`ensure_ray`).
    cpus_per_trial
        CPUs Ray Tune reserves per trial.
    storage_path
        Where Ray Tune writes its trial folders (default a temporary directory removed afterwards).

    Returns
    -------
    DataFrame
        One row per grid point in :func:`grid_points` order: the parameters, then the returned
        metrics. ``df.attrs["best"]`` is the best point (by ``metric`` and ``mode``).
    """
    _check_backend(backend)
    if mode not in ("max", "min"):
        raise ParallelError(f"mode must be 'max' or 'min', got {mode!r}.")
    points = grid_points(grid)
    fixed = dict(fixed or {})
    clash = set(fixed) & set(grid)
    if clash:
        raise ParallelError(f"Parameters {sorted(clash)} are both fixed and in the grid; keep them in one place.")
    if backend == "local":
        metrics = [_trial(p, fn, fixed, metric) for p in points]
    else:
        metrics = _tune(fn, grid, points, fixed, metric, mode, num_cpus=num_cpus, address=address,
                        cpus_per_trial=cpus_per_trial, storage_path=storage_path)
    rows = [{**p, **m} for p, m in zip(points, metrics, strict=True)]
    df = pd.DataFrame(rows)
    if metric not in df:
        raise ParallelError(f"The sweep function did not return the metric {metric!r} (returned: "
                            f"{sorted(set(df.columns) - set(grid))}). Pass metric= one of them.")
    scores = df[metric].astype(float)
    best = int(scores.idxmax() if mode == "max" else scores.idxmin())
    df.attrs["best"] = dict(points[best])
    return df


def _tune(fn, grid, points, fixed, metric, mode, *, num_cpus, address, cpus_per_trial, storage_path):
    ray = ensure_ray(num_cpus=num_cpus, address=address)
    from functools import partial

    from ray import tune

    trainable = tune.with_resources(partial(_trial, fn=fn, fixed=fixed, metric=metric), {"cpu": cpus_per_trial})
    tmp = None if storage_path is not None else tempfile.TemporaryDirectory(prefix="scagents_tune_")
    try:
        tuner = tune.Tuner(
            trainable,
            param_space={k: tune.grid_search(list(v)) for k, v in grid.items()},
            tune_config=tune.TuneConfig(metric=metric, mode=mode, num_samples=1),
            run_config=tune.RunConfig(storage_path=storage_path or tmp.name, name="scagents_sweep", verbose=0),
        )
        results = tuner.fit()
        by_point: dict[tuple, dict[str, Any]] = {}
        for r in results:
            if r.error is not None:
                raise ParallelError(f"A Ray Tune trial failed with config {r.config}: {r.error}")
            key = tuple(_key(r.config[k]) for k in grid)
            by_point[key] = {k: v for k, v in r.metrics.items() if k in _user_keys(r.metrics, metric)}
    finally:
        if tmp is not None:
            tmp.cleanup()
    del ray
    return [by_point[tuple(_key(p[k]) for k in grid)] for p in points]


_TUNE_KEYS = {"timestamp", "checkpoint_dir_name", "done", "training_iteration", "trial_id", "date",
              "time_this_iter_s", "time_total_s", "pid", "hostname", "node_ip", "config", "time_since_restore",
              "iterations_since_restore", "experiment_tag", "should_checkpoint"}


def _user_keys(metrics: Mapping[str, Any], metric: str) -> set[str]:
    return {k for k in metrics if k not in _TUNE_KEYS} | {metric}


def _key(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value if isinstance(value, int | float | str | bool | type(None)) else repr(value)
