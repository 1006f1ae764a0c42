"""Trajectories: roll a trained policy out along pseudotime and compare with the twin.

The Th twin is simulated with ``T`` pseudotime points (:meth:`ResponseTask.from_twin`,
``n_points=T``, RNA only); TRPO→PPO (and PPO / TRPO with ``--algos``) is trained on the training
perturbations of a 5-fold split (T-step episodes, teacher forcing). For each held-out and each
training perturbation, the predicted perturbed cells at point ``t`` are ``s_t + a_t`` (control cell
state plus the policy's predicted delta), with

* ``teacher``: ``a_t = π(s_t, enc, t)`` — the policy sees the control cell's state;
* ``autoregressive``: ``a_t = π(ŷ_{t-1}, enc, t)`` for ``t ≥ 1`` — the policy is fed its own
  previous prediction ``ŷ_{t-1} = s_{t-1} + a_{t-1}`` instead.

These are compared with the twin's perturbed cells (same initial states and noise stream) by DTW
between the mean trajectories (:func:`scagents.metrics.dtw_distance`) and by the Wasserstein
distance between predicted and simulated cell clouds at matched points, averaged over points
(:func:`scagents.metrics.wasserstein_distance`). Baselines: no change (the control trajectory) and
the linear gene-embedding model fitted per point.

Usage::

    python benchmarks/trajectories.py            # default
    python benchmarks/trajectories.py --quick    # smoke
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._util import write_results  # noqa: E402
from scagents.evaluation import METHOD_LABELS, default_train_config, fit_baseline  # noqa: E402
from scagents.metrics import dtw_distance, wasserstein_distance  # noqa: E402


def twin_clouds(task_kwargs: dict, perturbation) -> np.ndarray:
    """Per-cell perturbed RNA states ``(T, cells, genes)`` exactly as ``from_twin`` simulates them."""
    from scagents.twin import initial_states, load_model, run_dynamics

    net = load_model("th")
    T, n_steps, seed = task_kwargs["n_points"], task_kwargs["n_steps"], task_kwargs["seed"]
    every = n_steps // T
    x0 = initial_states(net, task_kwargs["n_cells"], np.random.default_rng([seed, 0]), {})
    rec = run_dynamics(net, x0, n_steps=every * T, dt=0.05, noise=0.1,
                       rng=np.random.default_rng([seed, 1]), perturbation=perturbation,
                       inputs={}, record_every=every)
    return np.asarray(rec[1:], dtype=np.float64)


def policy_clouds(policy, task, enc: np.ndarray, *, autoregressive: bool) -> np.ndarray:
    """Predicted perturbed cells ``(T, cells, genes)``: control state + predicted delta."""
    s = task.states["rna"].astype(np.float32)             # cells × T × genes
    n, T, d = s.shape
    out = np.empty((T, n, d))
    prev = None
    for t in range(T):
        state = s[:, t] if (prev is None or not autoregressive) else prev
        obs = np.concatenate([state, np.repeat(enc[None], n, 0),
                              task.pseudotime[:, t:t + 1]], axis=1).astype(np.float32)
        a = np.asarray(policy.predict(obs, deterministic=True)).reshape(n, d)
        out[t] = s[:, t] + a
        prev = out[t].astype(np.float32)
    return out


def compare(pred: np.ndarray, truth: np.ndarray, seed: int) -> dict:
    return {"dtw": dtw_distance(pred.mean(axis=1), truth.mean(axis=1)),
            "wasserstein": float(np.mean([wasserstein_distance(pred[t], truth[t], seed=seed)
                                          for t in range(len(truth))]))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--points", type=int, default=5, help="pseudotime points T")
    ap.add_argument("--steps", type=int, default=40_000)
    ap.add_argument("--algos", default="trpo_ppo")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    import torch

    from scagents.envs.response import PerturbationResponseVecEnv, ResponseTask
    from scagents.policies import train

    torch.set_num_threads(1)
    if args.quick:
        args.seeds, args.steps = 1, 3_000
    kw = dict(n_points=args.points, n_steps=400, seed=0, n_cells=128)
    task = ResponseTask.from_twin("th", modalities=("rna",), **kw)
    s = task.states["rna"].transpose(1, 0, 2).astype(np.float64)       # T × cells × genes
    rows = []
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        tr, te = task.split(n_folds=5, fold=0, seed=seed)
        linear = [fit_baseline("linear", tr, point=t) for t in range(task.n_points)]
        policies = {}
        for algo in [a.strip() for a in args.algos.split(",")]:
            cfg = default_train_config(algo, total_steps=args.steps, n_steps=2 * task.n_points,
                                       gamma=0.99, gae_lambda=0.95, seed=seed)
            policies[algo], _ = train(PerturbationResponseVecEnv(tr, cfg.n_envs), cfg, progress=False)
        for split, sub in (("held-out", te), ("training", tr)):
            for i, p in enumerate(sub.perturbations):
                truth = twin_clouds(kw, p)
                enc = te.encode([p])[0]                 # training-fold embedding for both sides
                preds = {"no_change": s,
                         "linear": s + np.stack([linear[t](p) for t in range(task.n_points)])[:, None]}
                for algo, pol in policies.items():
                    for mode in ("teacher", "autoregressive"):
                        preds[f"{algo}:{mode}"] = policy_clouds(pol, task, enc,
                                                                autoregressive=mode == "autoregressive")
                for name, pred in preds.items():
                    rows.append({"seed": seed, "split": split, "perturbation": sub.labels[i],
                                 "method": name, **compare(pred, truth, seed)})
        print(f"seed {seed} done ({time.perf_counter() - t0:.0f}s)", flush=True)
    df = pd.DataFrame(rows)
    per_seed = df.groupby(["split", "method", "seed"])[["dtw", "wasserstein"]].mean()
    summ = per_seed.groupby(level=[0, 1]).agg(["mean", "std"])

    def label(m: str) -> str:
        algo, _, mode = m.partition(":")
        return METHOD_LABELS.get(algo, algo) + (f" ({mode})" if mode else "")

    md = ["# Trajectories on the Th twin: policy rollouts vs simulated perturbed cells", "",
          f"Command: `python benchmarks/trajectories.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
          "", f"T = {args.points} pseudotime points, {kw['n_cells']} control cells, fold 0 of a 5-fold "
          f"split per seed ({args.seeds} seeds), {args.steps} env steps per policy. DTW between mean "
          "trajectories (genes × points) and Wasserstein-1 between predicted and simulated cell "
          "clouds averaged over points; mean ± sd over seeds of per-seed averages over perturbations.",
          ""]
    verdicts = {}
    for split in ("held-out", "training"):
        md += [f"## {split} perturbations", "", "| method | DTW | Wasserstein |", "|---|---|---|"]
        sub = summ.loc[split]
        for m in sub.index:
            md.append(f"| {label(m)} | {sub.loc[m, ('dtw', 'mean')]:.3f} ± {sub.loc[m, ('dtw', 'std')]:.3f}"
                      f" | {sub.loc[m, ('wasserstein', 'mean')]:.3f} ± "
                      f"{sub.loc[m, ('wasserstein', 'std')]:.3f} |")
        best = sub[("dtw", "mean")].idxmin()
        rl = [m for m in sub.index if ":" in m]
        best_rl = min(rl, key=lambda m: sub.loc[m, ("dtw", "mean")]) if rl else None
        text = f"Lowest DTW on {split} perturbations: {label(best)} ({sub.loc[best, ('dtw', 'mean')]:.3f})."
        if best_rl:
            nc = sub.loc["no_change", ("dtw", "mean")]
            text += (f" Best RL rollout {label(best_rl)}: {sub.loc[best_rl, ('dtw', 'mean')]:.3f}, "
                     f"{'better' if sub.loc[best_rl, ('dtw', 'mean')] < nc else 'worse'} than no change "
                     f"({nc:.3f}).")
        verdicts[split] = text
        md += ["", f"**Verdict.** {text}", ""]
    md += ["Real-data time axis (sci-CAR A549 dexamethasone 0/1/3 h): not done (time budget).", ""]
    write_results("trajectories", {"config": vars(args), "verdicts": verdicts,
                                   "summary": {f"{a}|{b}": {f"{k[0]}_{k[1]}": float(v) for k, v in r.items()}
                                               for (a, b), r in summ.iterrows()},
                                   "rows": df.to_dict(orient="records"),
                                   "wall_s": time.perf_counter() - t0}, "\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
