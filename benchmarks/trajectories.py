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

Real-data time axis (``--datasets scicar``): the sci-CAR A549 cells treated with dexamethasone
for 0 / 1 / 3 h (:func:`time_course_task`). The 0 h cells are the controls, 1 h and 3 h the
T = 2 points; with one treatment nothing but *cells* can be held out, so the cells of every time
are split in two halves, the policy is trained on one half's deltas and its rollout from the other
half's 0 h cells is compared with that half's 1 h and 3 h cells (DTW, Wasserstein), next to no
change and the training half's per-point mean shift. This tests fitting a measured time course,
not generalisation to unseen perturbations.

Usage::

    python benchmarks/trajectories.py                                 # twin + sci-CAR
    python benchmarks/trajectories.py --datasets scicar --no-write    # sci-CAR only, no files
    python benchmarks/trajectories.py --quick                         # smoke

The results files (``results/trajectories.{json,md}``) hold the parts that were run.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._util import write_results  # noqa: E402
from scagents.evaluation import METHOD_LABELS, default_train_config, fit_baseline  # noqa: E402
from scagents.metrics import dtw_distance, wasserstein_distance  # noqa: E402
from scagents.perturbation import Perturbation  # noqa: E402


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


def label_of(method: str) -> str:
    """Table label of a method key (``"trpo_ppo:teacher"`` → ``"TRPO→PPO (teacher)"``)."""
    algo, _, mode = method.partition(":")
    return METHOD_LABELS.get(algo, algo) + (f" ({mode})" if mode else "")


def compare(pred: np.ndarray, truth: np.ndarray, seed: int) -> dict:
    return {"dtw": dtw_distance(pred.mean(axis=1), truth.mean(axis=1)),
            "wasserstein": float(np.mean([wasserstein_distance(pred[t], truth[t], seed=seed)
                                          for t in range(len(truth))]))}


def run_twin(args: argparse.Namespace) -> tuple[list[str], dict]:
    """The Th-twin part: Markdown lines and the JSON payload."""
    import torch

    from scagents.envs.response import PerturbationResponseVecEnv, ResponseTask
    from scagents.policies import train

    torch.set_num_threads(1)
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
            # γ = 0 (the preset's): with teacher forcing an action changes only its own step's
            # reward, so later rewards would only add variance to its advantage
            cfg = default_train_config(algo, total_steps=args.steps, n_steps=2 * task.n_points, seed=seed)
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
        print(f"twin seed {seed} done ({time.perf_counter() - t0:.0f}s)", flush=True)
    df = pd.DataFrame(rows)
    per_seed = df.groupby(["split", "method", "seed"])[["dtw", "wasserstein"]].mean()
    summ = per_seed.groupby(level=[0, 1]).agg(["mean", "std"])
    md = ["## Th twin: policy rollouts vs simulated perturbed cells", "",
          f"T = {args.points} pseudotime points, {kw['n_cells']} control cells, fold 0 of a 5-fold "
          f"split per seed ({args.seeds} seeds), {args.steps} env steps per policy. DTW between mean "
          "trajectories (genes × points) and Wasserstein-1 between predicted and simulated cell "
          "clouds averaged over points; mean ± sd over seeds of per-seed averages over perturbations.",
          ""]
    verdicts = {}
    for split in ("held-out", "training"):
        md += [f"### {split} perturbations", "", "| method | DTW | Wasserstein |", "|---|---|---|"]
        sub = summ.loc[split]
        for m in sub.index:
            md.append(f"| {label_of(m)} | {sub.loc[m, ('dtw', 'mean')]:.3f} ± "
                      f"{sub.loc[m, ('dtw', 'std')]:.3f} | {sub.loc[m, ('wasserstein', 'mean')]:.3f}"
                      f" ± {sub.loc[m, ('wasserstein', 'std')]:.3f} |")
        best = sub[("dtw", "mean")].idxmin()
        rl = [m for m in sub.index if ":" in m]
        best_rl = min(rl, key=lambda m: sub.loc[m, ("dtw", "mean")]) if rl else None
        text = (f"Lowest DTW on {split} perturbations: {label_of(best)} "
                f"({sub.loc[best, ('dtw', 'mean')]:.3f}).")
        if best_rl:
            nc = sub.loc["no_change", ("dtw", "mean")]
            text += (f" Best RL rollout {label_of(best_rl)}: {sub.loc[best_rl, ('dtw', 'mean')]:.3f}, "
                     f"{'better' if sub.loc[best_rl, ('dtw', 'mean')] < nc else 'worse'} than no change "
                     f"({nc:.3f}).")
        verdicts[split] = text
        md += ["", f"**Verdict.** {text}", ""]
    payload = {"verdicts": verdicts,
               "summary": {f"{a}|{b}": {f"{k[0]}_{k[1]}": float(v) for k, v in r.items()}
                           for (a, b), r in summ.iterrows()},
               "rows": df.to_dict(orient="records"), "wall_s": time.perf_counter() - t0}
    return md, payload


# ============================================================================ sci-CAR time course
SCICAR_RELPATH = Path("multiome") / "cao2018_scicar_a549_dex_rna.h5ad"
SCICAR_HOURS = (0, 1, 3)
"""Hours of the sci-CAR design: 0 h are the control cells, 1 h and 3 h the trajectory points."""


def scicar_path() -> Path:
    """Where the sci-CAR A549 file lies (``../shared/data`` beside the checkout)."""
    return Path(__file__).resolve().parents[2] / "shared" / "data" / SCICAR_RELPATH


@dataclass
class TimeCourseSplit:
    """A measured time course split into two disjoint halves of cells at every time point.

    Attributes
    ----------
    train, test
        :class:`~scagents.envs.ResponseTask` of each half: one perturbation, ``T`` points; states
        are the half's 0 h cells (the same cell at every point); deltas are the half's mean at
        each point minus its 0 h mean.
    cells
        ``{"train" | "test": [X_0h, X_point1, …, X_pointT]}``: every cell of each half at each
        time (0 h first), ``cells × genes`` float64.
    obs_names
        The cell names of the same layout, to check that the halves are disjoint.
    genes
        The genes kept (most variable on the training half).
    hours
        The times, 0 h first.
    """

    train: Any
    test: Any
    cells: dict[str, list[np.ndarray]]
    obs_names: dict[str, list[np.ndarray]]
    genes: list[str]
    hours: tuple[int, ...]


def time_course_task(adata, *, time_key: str = "Time", hours: tuple[int, ...] = SCICAR_HOURS,
                     n_top_genes: int = 200, seed: int = 0,
                     perturbation: Perturbation | None = None,
                     label: str = "dexamethasone") -> TimeCourseSplit:
    """Build a T-point response task from a time course of one treatment, split by cells.

    The cells of each time are split at random into two halves (``seed``); the genes are the
    ``n_top_genes`` of highest variance over the *training* half (values used as stored). The
    cells are not tracked through time (each is measured once), so the policy's observation at
    every point is the same 0 h cell (teacher forcing on the control state) and the target at
    point ``t`` is the population delta ``mean(X_t) − mean(X_0h)`` of the half.

    Parameters
    ----------
    adata
        Cells × genes with a time label in ``obs[time_key]``.
    time_key
        Column of the time labels (hours; compared as numbers).
    hours
        The control time first, then the trajectory points.
    n_top_genes
        Most variable genes kept.
    seed
        Seed of the cell split.
    perturbation, label
        The treatment (default: a stimulation of the glucocorticoid receptor NR3C1, which
        dexamethasone activates) and its label.

    Returns
    -------
    TimeCourseSplit
    """
    import scipy.sparse as sp

    from scagents.envs.response import ResponseTask
    from scagents.errors import DataError

    if time_key not in adata.obs:
        raise DataError(f"obs[{time_key!r}] is missing; columns: {list(adata.obs.columns)}.")
    t_obs = pd.to_numeric(adata.obs[time_key].astype(str), errors="coerce").to_numpy()
    X = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
    X = X.astype(np.float64)
    names = adata.obs_names.to_numpy()
    rng = np.random.default_rng(seed)
    idx: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    for h in hours:
        cells = np.flatnonzero(t_obs == h)
        if len(cells) < 4:
            raise DataError(f"Only {len(cells)} cells at {time_key} = {h}; need at least 4 to split.")
        cells = rng.permutation(cells)
        half = len(cells) // 2
        idx["train"].append(np.sort(cells[:half]))
        idx["test"].append(np.sort(cells[half:]))
    train_all = np.concatenate(idx["train"])
    top = np.sort(np.argsort(-X[train_all].var(axis=0), kind="stable")[:n_top_genes])
    genes = adata.var_names[top].astype(str).tolist()
    cells = {k: [X[i][:, top] for i in v] for k, v in idx.items()}
    pert = perturbation or Perturbation(("NR3C1",), kind="stimulation")
    T = len(hours) - 1
    pt = np.asarray(hours[1:], dtype=np.float32) / max(hours)
    bound = float(max(np.abs(X[:, top]).max(), 1e-3))

    def task(side: str):
        c = cells[side]
        c0 = c[0].mean(axis=0)
        deltas = np.stack([c[t + 1].mean(axis=0) - c0 for t in range(T)])[None]
        return ResponseTask(
            modalities=("rna",), features={"rna": genes},
            states={"rna": np.ascontiguousarray(np.repeat(c[0][:, None], T, axis=1), np.float32)},
            pseudotime=np.tile(pt, (len(c[0]), 1)), perturbations=[pert], labels=[label],
            deltas={"rna": deltas.astype(np.float32)},
            control_mean={"rna": np.tile(c0, (T, 1)).astype(np.float32)},
            action_bounds={"rna": bound}, source="time course")

    train = task("train")
    test = task("test")
    test.embedding = train.embedding            # one encoding, from the training half
    return TimeCourseSplit(train=train, test=test, cells=cells,
                           obs_names={k: [names[i] for i in v] for k, v in idx.items()},
                           genes=genes, hours=tuple(hours))


def scicar_predictions(split: TimeCourseSplit, policies: dict) -> dict[str, np.ndarray]:
    """Predicted held-out cells ``(T + 1, cells, genes)`` per method, the 0 h cells first."""
    x0 = split.cells["test"][0]
    T = split.train.n_points
    shift = split.train.deltas["rna"][0].astype(np.float64)                  # T × genes
    preds = {"no_change": np.repeat(x0[None], T + 1, axis=0),
             "mean_shift": np.concatenate([x0[None], x0[None] + shift[:, None]])}
    enc = split.train.encoding[0]
    for algo, pol in policies.items():
        for mode in ("teacher", "autoregressive"):
            pred = policy_clouds(pol, split.test, enc, autoregressive=mode == "autoregressive")
            preds[f"{algo}:{mode}"] = np.concatenate([x0[None], pred])
    return preds


def compare_time_course(pred: np.ndarray | list[np.ndarray], truth: list[np.ndarray],
                        seed: int) -> dict:
    """DTW of the mean trajectories over all times; Wasserstein-1 averaged over the points after 0 h.

    ``pred`` is ``(times, cells, genes)`` or a list of per-time cell clouds (any sizes).
    """
    mean_pred = np.stack([c.mean(axis=0) for c in pred])
    mean_truth = np.stack([c.mean(axis=0) for c in truth])
    return {"dtw": dtw_distance(mean_pred, mean_truth),
            "wasserstein": float(np.mean([wasserstein_distance(pred[t], truth[t], seed=seed)
                                          for t in range(1, len(truth))]))}


def run_scicar(args: argparse.Namespace) -> tuple[list[str], dict] | None:
    """The sci-CAR dexamethasone time course; ``None`` (with a printed reason) without the file."""
    import anndata as ad

    from scagents.envs.response import PerturbationResponseVecEnv
    from scagents.policies import train

    path = scicar_path()
    if not path.exists():
        print(f"sci-CAR: skipped, {path} is absent (../shared/data is not beside this checkout).")
        return None
    adata = ad.read_h5ad(path)
    rows, t0 = [], time.perf_counter()
    for seed in range(args.seeds):
        split = time_course_task(adata, n_top_genes=args.scicar_genes, seed=seed)
        cfg = default_train_config("trpo_ppo", total_steps=args.scicar_steps, n_envs=64,
                                   n_steps=2 * split.train.n_points, hidden_sizes=(128, 128),
                                   seed=seed)
        pol, _ = train(PerturbationResponseVecEnv(split.train, cfg.n_envs), cfg, progress=False)
        preds = scicar_predictions(split, {"trpo_ppo": pol})
        # sampling-noise floor: the training half's observed cells as the "prediction"
        preds["train_half"] = split.cells["train"]
        for name, pred in preds.items():
            rows.append({"seed": seed, "method": name,
                         **compare_time_course(pred, split.cells["test"], seed)})
        print(f"sci-CAR seed {seed} done ({time.perf_counter() - t0:.0f}s)", flush=True)
    df = pd.DataFrame(rows)
    summ = df.groupby("method")[["dtw", "wasserstein"]].agg(["mean", "std"])
    order = ["train_half", "no_change", "mean_shift", "trpo_ppo:teacher", "trpo_ppo:autoregressive"]
    names = {"train_half": "observed training half (sampling-noise floor)",
             "no_change": "no change (0 h cells)",
             "mean_shift": "mean shift per point (training half)"}
    n = {h: len(split.cells["test"][i]) + len(split.cells["train"][i])
         for i, h in enumerate(split.hours)}
    md = ["## sci-CAR A549 + dexamethasone: a measured time course (0 / 1 / 3 h)", "",
          f"Data: `{SCICAR_RELPATH}` (Cao et al. 2018; {adata.n_obs} cells × {adata.n_vars} genes, "
          f"values as stored: normalised, log scale); cells per time: "
          + ", ".join(f"{h} h: {c}" for h, c in n.items()) + ".", "",
          "**What this tests: fitting one measured time course, not generalisation to unseen "
          "perturbations** (there is one treatment, so nothing is held out but cells). Design:",
          "",
          "* control = the 0 h cells; perturbation = dexamethasone (encoded as a stimulation of "
          "NR3C1, the same encoding in every episode); points = 1 h and 3 h (T = 2, pseudotime = "
          "hours / 3).",
          "* Per seed the cells of every time are split at random into two halves; the "
          f"{args.scicar_genes} genes of highest variance over the training half are kept.",
          "* sci-CAR measures each cell once, so a cell has no state at 1 h or 3 h: the "
          "observation at every point is the same 0 h cell (teacher forcing on the control state); "
          "the reward is the per-gene squared error against the training half's population delta "
          "(mean at t − mean at 0 h). Autoregressive: at 3 h the policy sees its own 1 h prediction.",
          f"* TRPO→PPO (`default_train_config('trpo_ppo')`, γ = 0 since the action does not change "
          f"the next observation; 64 envs × {2 * len(split.hours[1:])} steps per update, 2 × 128 "
          f"hidden units, {args.scicar_steps} env steps), trained on the training half only.",
          "* Evaluation on the held-out half: predicted cells = held-out 0 h cells + predicted "
          "delta. DTW between the mean trajectories over 0 / 1 / 3 h (the 0 h point is the same "
          "for every method); Wasserstein-1 between predicted and held-out cells, averaged over "
          "1 h and 3 h. Baselines: no change, and the training half's mean shift at each point "
          "(the linear/mean model of a single treatment). The training half's observed cells give "
          "the sampling-noise floor.",
          "* The reward's target is the population delta, the same for every 0 h cell, so the "
          "best a policy can reach under it is the mean shift itself; the RL rows measure how "
          "close training gets (a per-cell response is not rewarded, as cells are not tracked).",
          "* Wasserstein-1 in 200 dimensions is dominated by cell-to-cell variation of the sparse "
          "sci-CAR profiles, so its differences are small against its size; the noise-floor row "
          "compares two finite observed samples and is not a lower bound for the others.",
          f"* {args.seeds} seeds (seed = cell split + policy); mean ± sd over seeds.", "",
          "| method | DTW | Wasserstein |", "|---|---|---|"]
    for m in [m for m in order if m in summ.index]:
        md.append(f"| {names.get(m, label_of(m))} | {summ.loc[m, ('dtw', 'mean')]:.3f} ± "
                  f"{summ.loc[m, ('dtw', 'std')]:.3f} | {summ.loc[m, ('wasserstein', 'mean')]:.3f}"
                  f" ± {summ.loc[m, ('wasserstein', 'std')]:.3f} |")
    d = {m: summ.loc[m, ("dtw", "mean")] for m in summ.index}
    rl = min(("trpo_ppo:teacher", "trpo_ppo:autoregressive"), key=d.get)
    verdict = (f"Mean shift DTW {d['mean_shift']:.3f} vs no change {d['no_change']:.3f} "
               f"(noise floor {d['train_half']:.3f}); best RL rollout {label_of(rl)} {d[rl]:.3f}, "
               f"{'better' if d[rl] < d['mean_shift'] else 'worse'} than the mean shift and "
               f"{'better' if d[rl] < d['no_change'] else 'worse'} than no change.")
    md += ["", f"**Verdict.** {verdict}", ""]
    payload = {"config": {"genes": args.scicar_genes, "steps": args.scicar_steps,
                          "seeds": args.seeds, "file": str(SCICAR_RELPATH)},
               "verdict": verdict,
               "summary": {m: {f"{k[0]}_{k[1]}": float(v) for k, v in r.items()}
                           for m, r in summ.iterrows()},
               "rows": df.to_dict(orient="records"), "wall_s": time.perf_counter() - t0}
    return md, payload


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="twin,scicar",
                    help="comma-separated parts to run: twin, scicar (default both)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--points", type=int, default=5, help="pseudotime points T (twin)")
    ap.add_argument("--steps", type=int, default=40_000, help="env steps per twin policy")
    ap.add_argument("--algos", default="trpo_ppo", help="algorithms trained on the twin")
    ap.add_argument("--scicar-steps", type=int, default=16_384, help="env steps per sci-CAR policy")
    ap.add_argument("--scicar-genes", type=int, default=200, help="most variable sci-CAR genes")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 seed, small budgets")
    ap.add_argument("--no-write", action="store_true",
                    help="print the Markdown only; do not write results/trajectories.*")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = sorted(set(datasets) - {"twin", "scicar"})
    if unknown or not datasets:
        ap.error(f"--datasets takes twin and/or scicar, got {args.datasets!r}")
    if args.quick:
        args.seeds, args.steps, args.scicar_steps = 1, 3_000, 2_048
    t0 = time.perf_counter()
    md = ["# Trajectories: policy rollouts along pseudotime vs the twin and a measured time course",
          "", "Command: `python benchmarks/trajectories.py "
          f"{' '.join(argv if argv is not None else sys.argv[1:])}`", ""]
    payload: dict[str, Any] = {"config": vars(args)}
    if "twin" in datasets:
        lines, twin = run_twin(args)
        md += lines
        payload.update(twin)                    # the twin's keys stay at the top level
    if "scicar" in datasets:
        out = run_scicar(args)
        if out is None:
            md += ["## sci-CAR A549 + dexamethasone", "",
                   f"Skipped: `{SCICAR_RELPATH}` is absent from ../shared/data.", ""]
        else:
            md += out[0]
            payload["scicar"] = out[1]
    payload["wall_s"] = time.perf_counter() - t0
    text = "\n".join(md)
    if not args.no_write:
        write_results("trajectories", payload, text)
    print(text)
    print(f"total {payload['wall_s']:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
