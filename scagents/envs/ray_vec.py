"""Batched environments split into shards that step on Ray actors.

:class:`RayVectorEnv` is a :class:`gymnasium.vector.VectorEnv` whose copies live in ``n_shards``
batched environments, each held by a Ray actor. ``step`` scatters the batched actions to the actors
(consecutive blocks of rows, shard 0 first), the actors step their shards at the same time, and the
observations, rewards, flags and infos are gathered back in order. :class:`ShardedVectorEnv` does the
same in this process, one shard after the other (no Ray needed): it is the reference the Ray version
matches exactly.

Seeding follows :class:`gymnasium.vector.SyncVectorEnv`: ``reset(seed=s)`` seeds shard ``k`` with
``s + (number of copies in the shards before k)``. Hence

* ``RayVectorEnv`` and ``ShardedVectorEnv`` built from the same ``make_env_fn`` give the same
  trajectories for the same seed (and ``scagents.policies.train`` the same log);
* with one shard, both equal the batched environment itself;
* when the shards are :class:`~gymnasium.vector.SyncVectorEnv` of single environments (each copy
  seeded ``seed + i``), the sharded env equals the unsharded ``SyncVectorEnv`` with the same total
  number of copies. A batched env that draws all its copies from *one* generator (e.g.
  :class:`~scagents.envs.response.PerturbationResponseVecEnv`) draws different — equally valid —
  episodes when split, so compare it with :class:`ShardedVectorEnv`.

When it helps
    Only when stepping the environment costs much more than a round trip to an actor (about 0.1–1 ms
    per call on one machine, more across nodes): simulators, mechanistic models, an env that runs a
    network per step, or envs too large for one process. The twin response env
    (:class:`~scagents.envs.response.PerturbationResponseVecEnv`) steps 256 copies in well under a
    millisecond of NumPy, so sharding it only adds overhead; use it in-process.

Example
-------
>>> from functools import partial
>>> from scagents.envs.response import PerturbationResponseVecEnv
>>> env = RayVectorEnv(partial(PerturbationResponseVecEnv, task, num_envs=128), n_shards=4)  # doctest: +SKIP
>>> policy, log = train(env, TrainConfig(seed=0))                                             # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from scagents.errors import ScagentsError

__all__ = ["RayVectorEnv", "ShardedVectorEnv", "ShardError"]

#: Attributes copied from shard 0 onto the sharded env at construction (used by ``policies.train``).
FORWARDED_ATTRIBUTES = ("modality_slices", "action_slices")


class ShardError(ScagentsError, ValueError):
    """The shards cannot form one vector environment (bad count, differing spaces or modes)."""


class _Shard:
    """Holds one batched environment; the body of a Ray actor (or used directly in-process)."""

    def __init__(self, make_env_fn: Callable[[], VectorEnv]):
        env = make_env_fn()
        if not isinstance(env, VectorEnv):
            raise ShardError(f"make_env_fn must return a gymnasium.vector.VectorEnv, got {type(env).__name__}. "
                             "Wrap single environments in gymnasium.vector.SyncVectorEnv.")
        self.env = env

    def describe(self) -> dict[str, Any]:
        env = self.env
        attrs = {a: getattr(env, a) for a in FORWARDED_ATTRIBUTES if getattr(env, a, None) is not None}
        return {"num_envs": int(env.num_envs), "obs": env.single_observation_space,
                "act": env.single_action_space,
                "mode": AutoresetMode(env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)),
                "attrs": attrs}

    def reset(self, seed: int | list[int] | None, options: dict | None):
        return self.env.reset(seed=seed, options=options)

    def step(self, actions: Any):
        return self.env.step(actions)

    def get_attr(self, name: str) -> Any:
        return getattr(self.env, name)

    def close(self) -> None:
        self.env.close()


# ============================================================================ batching helpers
def _split(x: Any, bounds: np.ndarray) -> list[Any]:
    """Rows ``bounds[k]:bounds[k+1]`` of a batched array / dict / tuple, per shard."""
    if isinstance(x, Mapping):
        parts = {key: _split(v, bounds) for key, v in x.items()}
        return [{key: parts[key][k] for key in x} for k in range(len(bounds) - 1)]
    if isinstance(x, tuple):
        parts = [_split(v, bounds) for v in x]
        return [tuple(p[k] for p in parts) for k in range(len(bounds) - 1)]
    arr = np.asarray(x)
    return [arr[bounds[k]:bounds[k + 1]] for k in range(len(bounds) - 1)]


def _concat(parts: Sequence[Any]) -> Any:
    """Inverse of :func:`_split`."""
    first = parts[0]
    if isinstance(first, Mapping):
        return {key: _concat([p[key] for p in parts]) for key in first}
    if isinstance(first, tuple):
        return tuple(_concat([p[i] for p in parts]) for i in range(len(first)))
    return np.concatenate([np.asarray(p) for p in parts], axis=0)


def _filler(like: np.ndarray, n: int) -> np.ndarray:
    if like.dtype == object:
        return np.full((n, *like.shape[1:]), None, dtype=object)
    return np.zeros((n, *like.shape[1:]), dtype=like.dtype)


def _per_copy(value: Any, n: int) -> np.ndarray:
    """``value`` as one row per copy: a per-copy array as is, anything else repeated in an object array."""
    if isinstance(value, np.ndarray) and value.shape[:1] == (n,):
        return value
    out = np.empty(n, dtype=object)
    for i in range(n):
        out[i] = value
    return out


def _merge_infos(infos: Sequence[Mapping[str, Any]], sizes: Sequence[int]) -> dict[str, Any]:
    """Merge per-shard vector infos into one dict over all copies (gymnasium's ``_key`` mask convention).

    Per-copy arrays are concatenated; a shard without a key contributes filler rows whose mask is
    False (a ``_key`` mask is added as soon as one shard lacks the key). Nested dicts are merged the
    same way; any other value becomes an object array with the shard's value on each of its rows.
    """
    all_keys = list(dict.fromkeys(k for info in infos for k in info))
    keys = [k for k in all_keys if not (k.startswith("_") and k[1:] in all_keys)]
    out: dict[str, Any] = {}
    for key in keys:
        present = [key in info for info in infos]
        values = [info.get(key) for info in infos]
        if any(isinstance(v, Mapping) for v in values):
            out[key] = _merge_infos([v if isinstance(v, Mapping) else {} for v in values], sizes)
        else:
            per_copy = [_per_copy(v, n) if p else None for v, n, p in zip(values, sizes, present, strict=True)]
            like = next(a for a in per_copy if a is not None)
            if any(a is not None and a.dtype != like.dtype for a in per_copy):
                per_copy = [None if a is None else a.astype(object) for a in per_copy]
                like = next(a for a in per_copy if a is not None)
            out[key] = np.concatenate([_filler(like, n) if a is None else a
                                       for a, n in zip(per_copy, sizes, strict=True)], axis=0)
        mask_key = f"_{key}"
        if not all(present) or any(mask_key in info for info in infos):
            out[mask_key] = np.concatenate([
                np.asarray(info[mask_key], dtype=bool) if mask_key in info else np.full(n, p, dtype=bool)
                for info, n, p in zip(infos, sizes, present, strict=True)])
    return out


# ============================================================================ vector envs
class ShardedVectorEnv(VectorEnv):
    """``n_shards`` batched environments stepped one after the other in this process, as one env.

    The in-process counterpart of :class:`RayVectorEnv` (same shards, same seeding, same results),
    useful to test a sharded setup without Ray.

    Parameters
    ----------
    make_env_fn
        A zero-argument function returning a :class:`gymnasium.vector.VectorEnv` (called once per
        shard), or a list of ``n_shards`` such functions (e.g. shards of different sizes).
    n_shards
        Number of shards.

    Raises
    ------
    ShardError
        ``n_shards < 1``, a list of the wrong length, or shards with different single-copy spaces or
        autoreset modes.
    """

    def __init__(self, make_env_fn: Callable[[], VectorEnv] | Sequence[Callable[[], VectorEnv]], n_shards: int):
        fns = self._factories(make_env_fn, n_shards)
        self._shards = self._start(fns)
        self._setup(self._gather("describe", [()] * len(fns)))

    # -------------------------------------------------------------- construction
    @staticmethod
    def _factories(make_env_fn, n_shards: int) -> list[Callable[[], VectorEnv]]:
        if int(n_shards) < 1:
            raise ShardError(f"n_shards must be at least 1, got {n_shards}.")
        if callable(make_env_fn):
            return [make_env_fn] * int(n_shards)
        fns = list(make_env_fn)
        if len(fns) != int(n_shards) or not all(callable(f) for f in fns):
            raise ShardError(f"make_env_fn must be one function or a list of {n_shards} functions "
                             f"(one per shard), got {len(fns)} items.")
        return fns

    def _start(self, fns: Sequence[Callable[[], VectorEnv]]) -> list[Any]:
        return [_Shard(f) for f in fns]

    def _gather(self, method: str, args: Sequence[tuple]) -> list[Any]:
        """Call ``method`` on every shard with its arguments; results in shard order."""
        return [getattr(s, method)(*a) for s, a in zip(self._shards, args, strict=True)]

    def _setup(self, described: list[dict[str, Any]]) -> None:
        first = described[0]
        for k, d in enumerate(described[1:], start=1):
            if d["obs"] != first["obs"] or d["act"] != first["act"]:
                raise ShardError(f"Shard {k} has different spaces than shard 0 ({d['obs']} / {d['act']} vs "
                                 f"{first['obs']} / {first['act']}); every shard must hold the same kind of env.")
            if d["mode"] != first["mode"]:
                raise ShardError(f"Shard {k} uses autoreset mode {d['mode']} but shard 0 uses {first['mode']}.")
        self.shard_sizes = [d["num_envs"] for d in described]
        self._bounds = np.concatenate([[0], np.cumsum(self.shard_sizes)]).astype(np.int64)
        self.num_envs = int(self._bounds[-1])
        self.single_observation_space = first["obs"]
        self.single_action_space = first["act"]
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.metadata = {"autoreset_mode": first["mode"]}
        for name, value in first["attrs"].items():
            setattr(self, name, value)

    @property
    def n_shards(self) -> int:
        """Number of shards."""
        return len(self._shards)

    # -------------------------------------------------------------- gym API
    def _shard_seeds(self, seed: int | Sequence[int | None] | None) -> list[Any]:
        if seed is None:
            return [None] * self.n_shards
        if isinstance(seed, int | np.integer):
            return [int(seed) + int(self._bounds[k]) for k in range(self.n_shards)]
        seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ShardError(f"reset got {len(seeds)} seeds for {self.num_envs} environments; give one int "
                             "or one seed per environment.")
        return [seeds[self._bounds[k]:self._bounds[k + 1]] for k in range(self.n_shards)]

    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict | None = None):
        """Reset every shard (shard ``k`` seeded ``seed + first copy index of k``); batched obs and infos."""
        results = self._gather("reset", [(s, options) for s in self._shard_seeds(seed)])
        obs = _concat([r[0] for r in results])
        return obs, _merge_infos([r[1] for r in results], self.shard_sizes)

    def step(self, actions: Any):
        """Scatter the actions to the shards, step them, gather the results in copy order."""
        parts = _split(actions, self._bounds)
        results = self._gather("step", [(p,) for p in parts])
        obs = _concat([r[0] for r in results])
        rewards = np.concatenate([np.asarray(r[1]) for r in results])
        terminated = np.concatenate([np.asarray(r[2], dtype=bool) for r in results])
        truncated = np.concatenate([np.asarray(r[3], dtype=bool) for r in results])
        return obs, rewards, terminated, truncated, _merge_infos([r[4] for r in results], self.shard_sizes)

    def get_shard_attr(self, name: str) -> list[Any]:
        """``getattr(env, name)`` of every shard's environment, in shard order."""
        return self._gather("get_attr", [(name,)] * self.n_shards)

    def close_extras(self, **kwargs: Any) -> None:
        """Close every shard's environment."""
        if getattr(self, "_shards", None):
            self._gather("close", [()] * self.n_shards)
            self._shards = []


class RayVectorEnv(ShardedVectorEnv):
    """A batched environment split into ``n_shards`` shards, each stepped by its own Ray actor.

    Parameters
    ----------
    make_env_fn
        A picklable zero-argument function returning a :class:`gymnasium.vector.VectorEnv` (e.g.
        ``functools.partial(PerturbationResponseVecEnv, task, num_envs=64)``), called on each actor,
        or a list of ``n_shards`` such functions. The total ``num_envs`` is the sum over shards.
    n_shards
        Number of actors.
    address
        Ray cluster to join (``"auto"``, ``"ray://head:10001"``); ``None`` starts a local instance
        unless Ray is already initialised (see :func:`scagents.parallel.ensure_ray`).
    num_cpus
        CPUs of a locally started instance.
    cpus_per_shard
        CPUs Ray reserves for each actor (fractions allowed).
    runtime_env
        Ray runtime environment of the actors (e.g. ``{"py_modules": [scagents]}``).

    Notes
    -----
    Results equal :class:`ShardedVectorEnv` built from the same ``make_env_fn`` (see the module
    docstring for the seeding rule). Actors are killed by :meth:`close`. Shards only pay off when a
    shard's ``step`` costs far more than an actor round trip.

    Raises
    ------
    ShardError
        As :class:`ShardedVectorEnv`; or ``n_shards * cpus_per_shard`` exceeds the CPUs of the Ray
        instance (the extra actors would wait forever; with ``address`` given this is a warning,
        since a cluster's autoscaler may add nodes).
    scagents.parallel.RayNotInstalledError
        Ray is not installed.
    """

    def __init__(self, make_env_fn: Callable[[], VectorEnv] | Sequence[Callable[[], VectorEnv]], n_shards: int,
                 *, address: str | None = None, num_cpus: int | None = None, cpus_per_shard: float = 1,
                 runtime_env: Mapping[str, Any] | None = None):
        from scagents.parallel import ensure_ray

        self._ray = ensure_ray(num_cpus=num_cpus, address=address, runtime_env=runtime_env)
        self._cpus_per_shard = cpus_per_shard
        fns = self._factories(make_env_fn, n_shards)
        self._check_cpus(len(fns), cluster=address is not None)
        self._shards = self._start(fns)
        try:
            self._setup(self._gather("describe", [()] * len(fns)))
        except BaseException:
            self._kill()
            raise

    def _check_cpus(self, n: int, *, cluster: bool) -> None:
        """Refuse shards the Ray instance cannot hold at once (the extra actors would wait forever).

        On a joined cluster (``address`` given) the autoscaler may add nodes, so only warn.
        """
        need = n * float(self._cpus_per_shard)
        have = float(self._ray.cluster_resources().get("CPU", 0.0))
        if need <= have + 1e-9:
            return
        msg = (f"{n} shards x {self._cpus_per_shard:g} CPU (cpus_per_shard) need {need:g} CPUs, but the "
               f"Ray instance has {have:g}: the extra actors would wait for CPUs forever. Use fewer "
               f"shards, cpus_per_shard={max(have, 1.0) / n:g}, or a larger num_cpus / cluster.")
        if cluster:
            warnings.warn(msg, stacklevel=3)
        else:
            raise ShardError(msg)

    def _start(self, fns: Sequence[Callable[[], VectorEnv]]) -> list[Any]:
        actor_cls = self._ray.remote(num_cpus=self._cpus_per_shard, max_restarts=0)(_Shard)
        return [actor_cls.remote(f) for f in fns]

    def _gather(self, method: str, args: Sequence[tuple]) -> list[Any]:
        refs = [getattr(s, method).remote(*a) for s, a in zip(self._shards, args, strict=True)]
        return self._ray.get(refs)

    def _kill(self) -> None:
        for actor in getattr(self, "_shards", []):
            self._ray.kill(actor)
        self._shards = []

    def close_extras(self, **kwargs: Any) -> None:
        """Close every shard's environment and end the actors."""
        if getattr(self, "_shards", None):
            try:
                self._gather("close", [()] * self.n_shards)
            finally:
                self._kill()
