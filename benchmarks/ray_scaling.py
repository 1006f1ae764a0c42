"""Speed-up of a seed batch from 1 to 2 Ray workers (and the in-process loop for reference).

Four seeds of a TRPO→PPO training on the toy target-matching task run (a) in-process one after the
other, (b) on a local Ray instance with 2 CPUs but 2 CPUs reserved per task (1 worker at a time) and
(c) with 1 CPU per task (2 workers). Median wall time over ``--repeats`` repeats; the per-seed
results are checked to be identical across the three. Results: ``benchmarks/results/ray_scaling.{json,md}``.

Usage::

    python benchmarks/ray_scaling.py [--steps 12288] [--repeats 3]
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


def train_seed(seed: int, total_steps: int) -> list[float]:
    """One seeded training run; returns the per-update mean episodic return."""
    from scagents.envs.toy import TargetMatchVecEnv
    from scagents.policies import TrainConfig, train

    env = TargetMatchVecEnv(num_envs=16, obs_dim=8, act_dim=4, ep_length=16)
    cfg = TrainConfig(algo="trpo_ppo", total_steps=total_steps, n_steps=64, hidden_sizes=(64, 64), seed=seed)
    _, log = train(env, cfg, progress=False)
    return [float(x) for x in log.column("episodic_return_mean")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=12288)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=4)
    args = ap.parse_args()
    import ray
    import torch
    from _util import median, write_results

    from scagents.parallel import run_seeds

    torch.set_num_threads(1)
    seeds = list(range(args.seeds))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    times: dict[str, list[float]] = {"in_process": [], "ray_1_worker": [], "ray_2_workers": []}
    results = {}
    for _ in range(args.repeats):
        for name, kw in (("in_process", {"backend": "local"}),
                         ("ray_1_worker", {"backend": "ray", "cpus_per_task": 2}),
                         ("ray_2_workers", {"backend": "ray", "cpus_per_task": 1})):
            if kw["backend"] == "ray":
                # warm 2 worker processes (Ray kills idle workers; process start + imports are not
                # part of the comparison)
                run_seeds(train_seed, seeds[:2], backend="ray", total_steps=256)
            t = time.perf_counter()
            results[name] = run_seeds(train_seed, seeds, total_steps=args.steps, **kw)
            times[name].append(time.perf_counter() - t)
            print(name, f"{times[name][-1]:.1f} s", flush=True)
    ray.shutdown()
    identical = all(np.array_equal(results["in_process"][i], results[k][i])
                    for k in ("ray_1_worker", "ray_2_workers") for i in range(len(seeds)))
    med = {k: median(v) for k, v in times.items()}
    speedup = med["ray_1_worker"] / med["ray_2_workers"]
    payload = {"seeds": seeds, "total_steps": args.steps, "repeats": args.repeats, "times_s": times,
               "median_s": med, "speedup_1_to_2_workers": speedup, "identical_results": identical}
    md = "\n".join([
        "# Ray scaling: a batch of seeds on 1 vs 2 workers",
        "",
        f"{len(seeds)} seeds × TRPO→PPO on `TargetMatchVecEnv` ({args.steps} steps each), torch 1 thread per "
        f"task, median of {args.repeats} repeats, local Ray instance with 2 CPUs (machine: 2 cores, shared).",
        "",
        "| run | median wall time (s) |",
        "|---|---:|",
        *[f"| {k} | {v:.1f} |" for k, v in med.items()],
        "",
        f"Speed-up from 1 to 2 Ray workers: **{speedup:.2f}×**. Per-seed results identical in-process and "
        f"on Ray: **{identical}**.",
        "",
    ])
    js, mdp = write_results("ray_scaling", payload, md)
    print(md)
    print(f"wrote {js} and {mdp}")


if __name__ == "__main__":
    main()
