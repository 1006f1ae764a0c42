"""Speed-up of a seed batch from 1 to 2 Ray workers (and the in-process loop for reference).

Four seeds of a TRPO→PPO training on the toy target-matching task run (a) in-process one after the
other, (b) on a local Ray instance with 2 CPUs but 2 CPUs reserved per task (1 worker at a time) and
(c) with 1 CPU per task (2 workers). Median wall time over ``--repeats`` repeats; the per-seed
results are checked to be identical across the three.

Second part, rollouts on Ray actors (:class:`scagents.envs.ray_vec.RayVectorEnv`): 200 steps of 256
copies split into 2 shards, in-process (:class:`~scagents.envs.ray_vec.ShardedVectorEnv`) vs 2 actors,
for (a) the twin response env (``PerturbationResponseVecEnv``, a cheap NumPy step) and (b) an
"expensive" env whose step does 2 small matrix products per copy (CPU-bound, a stand-in for a simulator). The
1-minute load average at the start and the end, the niceness and the CPU count are recorded (other jobs may share
the machine). Results: ``benchmarks/results/ray_scaling.{json,md}``.

Usage::

    python benchmarks/ray_scaling.py [--steps 12288] [--repeats 3]
    python benchmarks/ray_scaling.py --render   # rewrite the .md from the saved .json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

RAY_CPUS = 2  # the local Ray instance's CPUs (1 worker at 2 CPUs per task, 2 at 1)


def train_seed(seed: int, total_steps: int) -> list[float]:
    """One seeded training run; returns the per-update mean episodic return."""
    from scagents.envs.toy import TargetMatchVecEnv
    from scagents.policies import TrainConfig, train

    env = TargetMatchVecEnv(num_envs=16, obs_dim=8, act_dim=4, ep_length=16)
    cfg = TrainConfig(algo="trpo_ppo", total_steps=total_steps, n_steps=64, hidden_sizes=(64, 64), seed=seed)
    _, log = train(env, cfg, progress=False)
    return [float(x) for x in log.column("episodic_return_mean")]


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:  # pragma: no cover - not Linux
        return "n/a"


def make_expensive_env(num_envs: int, work: int = 2):
    """A TargetMatchVecEnv whose step also does ``work`` 48×48 matrix products per copy (CPU-bound)."""
    from scagents.envs.toy import TargetMatchVecEnv

    class ExpensiveEnv(TargetMatchVecEnv):
        def step(self, actions):
            m = np.full((48, 48), 0.01)
            for _ in range(work * self.num_envs):
                m = np.tanh(m @ m)
            return super().step(actions)

    return ExpensiveEnv(num_envs=num_envs, obs_dim=8, act_dim=4, ep_length=16)


def make_response_env(num_envs: int):
    from scagents.envs.response import PerturbationResponseVecEnv, ResponseTask

    task = ResponseTask.from_twin("th", ["STAT1", "TBET", "GATA3", "IL4"], n_cells=64, n_steps=150, seed=0)
    return PerturbationResponseVecEnv(task, num_envs=num_envs)


def time_rollout(env, n_steps: int) -> tuple[float, np.ndarray]:
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    low, high = np.maximum(env.action_space.low, -1), np.minimum(env.action_space.high, 1)
    total = np.zeros(env.num_envs)
    t = time.perf_counter()
    for _ in range(n_steps):
        _, r, *_ = env.step(rng.uniform(low, high).astype(np.float32))
        total += r
    return time.perf_counter() - t, total


def actor_rollouts(n_steps: int, n_envs: int = 256) -> dict[str, dict[str, float]]:
    """Seconds per ``n_steps`` steps, in-process shards vs Ray actors, for a cheap and an expensive env."""
    from functools import partial

    from scagents.envs.ray_vec import RayVectorEnv, ShardedVectorEnv

    out = {}
    for name, make, steps in (("response_env (cheap)", make_response_env, n_steps),
                              ("expensive_env (CPU-bound step)", make_expensive_env, max(n_steps // 5, 5))):
        fn = partial(make, n_envs // 2)
        local = ShardedVectorEnv(fn, 2)
        remote = RayVectorEnv(fn, 2)
        time_rollout(remote, 2)  # warm the actors
        t_local, r_local = time_rollout(local, steps)
        t_remote, r_remote = time_rollout(remote, steps)
        remote.close()
        out[name] = {"steps": steps, "in_process_s": t_local, "ray_actors_s": t_remote,
                     "ms_per_step_in_process": 1e3 * t_local / steps, "ms_per_step_ray": 1e3 * t_remote / steps,
                     "speedup": t_local / t_remote, "identical": bool(np.array_equal(r_local, r_remote))}
        print(name, out[name], flush=True)
    return out


def actors_text(rollouts: dict) -> str:
    """What the actor rollouts showed, from their measured speed-ups."""
    faster = [k for k, v in rollouts.items() if v["speedup"] > 1]
    slower = [k for k, v in rollouts.items() if v["speedup"] <= 1]
    if [k.split()[0] for k in faster] == ["expensive_env"] and [k.split()[0] for k in slower] == ["response_env"]:
        return ("Actors paid off only for the CPU-bound step (it costs much more than the actor round trip); "
                "the twin response env was faster in-process.")
    return (f"Faster on 2 Ray actors: {', '.join(faster) or 'none'}; faster in-process: {', '.join(slower) or 'none'}.")


def render_markdown(payload: dict) -> str:
    """The report, from the results payload only."""
    from _util import run_conditions

    med, rollouts = payload["median_s"], payload["actor_rollouts"]
    return "\n".join([
        "# Ray scaling: a batch of seeds on 1 vs 2 workers",
        "",
        f"{len(payload['seeds'])} seeds × TRPO→PPO on `TargetMatchVecEnv` ({payload['total_steps']} steps each), "
        f"torch 1 thread per task, median of {payload['repeats']} repeats, local Ray instance with "
        f"{payload.get('ray_cpus', 2)} CPUs."
        + (" Each configuration's repeats run back to back after a warm-up run of its own workers (a user runs one "
           "configuration; switching between 2-CPU and 1-CPU tasks costs Ray seconds that belong to neither)."
           if payload.get("order") == "blocked" else ""),
        "",
        "| run | median wall time (s) |",
        "|---|---:|",
        *[f"| {k} | {v:.1f} |" for k, v in med.items()],
        "",
        f"Speed-up from 1 to 2 Ray workers: **{payload['speedup_1_to_2_workers']:.2f}×**. Per-seed results "
        f"identical in-process and on Ray: **{payload['identical_results']}**.",
        "",
        run_conditions(payload),
        "",
        "## Rollouts on Ray actors (`RayVectorEnv`, 256 copies in 2 shards)",
        "",
        "| env | steps | in-process shards (ms/step) | 2 Ray actors (ms/step) | speed-up | same rewards |",
        "|---|---:|---:|---:|---:|---|",
        *[f"| {k} | {v['steps']} | {v['ms_per_step_in_process']:.2f} | {v['ms_per_step_ray']:.2f} | "
          f"{v['speedup']:.2f}× | {v['identical']} |" for k, v in rollouts.items()],
        "",
        actors_text(rollouts),
        "",
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=12288)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--rollout-steps", type=int, default=200)
    ap.add_argument("--render", action="store_true", help="rewrite the .md from the saved .json and exit")
    args = ap.parse_args()
    from _util import RESULTS, load_record, median, write_results

    if args.render:
        import json

        from scagents._atomic import write_text

        md = render_markdown(json.loads((RESULTS / "ray_scaling.json").read_text()))
        write_text(RESULTS / "ray_scaling.md", md)
        print(md)
        return
    import os

    import ray
    import torch

    from scagents.parallel import run_seeds

    torch.set_num_threads(1)
    seeds = list(range(args.seeds))
    load_before = _load()
    load0 = os.getloadavg()[0]
    ray.init(num_cpus=RAY_CPUS, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    times: dict[str, list[float]] = {"in_process": [], "ray_1_worker": [], "ray_2_workers": []}
    results = {}
    # each configuration's repeats run back to back, as a user runs one configuration: interleaved, a run of
    # 1-CPU tasks right after a run of 2-CPU tasks took 5–6 s instead of 1.5 s in 2 of 4 tries (Ray's worker
    # pool changing shape), a cost of switching between the two, not of either
    for name, kw in (("in_process", {"backend": "local"}),
                     ("ray_1_worker", {"backend": "ray", "cpus_per_task": 2}),
                     ("ray_2_workers", {"backend": "ray", "cpus_per_task": 1})):
        if kw["backend"] == "ray":
            # warm the worker processes of this configuration (process start + imports are not part of the
            # comparison)
            run_seeds(train_seed, seeds, backend="ray", total_steps=256, cpus_per_task=kw["cpus_per_task"])
        for _ in range(args.repeats):
            t = time.perf_counter()
            results[name] = run_seeds(train_seed, seeds, total_steps=args.steps, **kw)
            times[name].append(time.perf_counter() - t)
            print(name, f"{times[name][-1]:.1f} s", flush=True)
    rollouts = actor_rollouts(args.rollout_steps)
    ray.shutdown()
    load_after = _load()
    identical = all(np.array_equal(results["in_process"][i], results[k][i])
                    for k in ("ray_1_worker", "ray_2_workers") for i in range(len(seeds)))
    med = {k: median(v) for k, v in times.items()}
    speedup = med["ray_1_worker"] / med["ray_2_workers"]
    payload = {"seeds": seeds, "total_steps": args.steps, "repeats": args.repeats, "ray_cpus": RAY_CPUS, "order": "blocked",
               "times_s": times, "median_s": med, "speedup_1_to_2_workers": speedup, "identical_results": identical,
               "actor_rollouts": rollouts, "load_average_before": load_before, "load_average_after": load_after,
               "load_average_1min": load_record(load0)}
    md = render_markdown(payload)
    js, mdp = write_results("ray_scaling", payload, md)
    print(md)
    print(f"wrote {js} and {mdp}")


if __name__ == "__main__":
    main()
