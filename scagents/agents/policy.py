"""The policy agent: train the TRPO→PPO response policy, validate it, predict, and propose.

The response task (:class:`scagents.envs.ResponseTask`) is built from the run's data (on the default
twin: simulated control cells plus single-gene perturbations). The goal's perturbation is *held
out* (the prediction is honest: the policy never sees its cells) and so is a validation set of other
perturbations. The policy is trained briefly with the paper's TRPO→PPO schedule and scored on the
validation set against the baselines (linear gene embedding, mean effect and, when the network agent
produced a network, propagation through it). If it does not beat the best baseline the agent reports
``status="not_validated"``; the planner then retrains it with a larger budget or routes to
:func:`fallback_agent`, which predicts with the network-propagation baseline (the best baseline when
no network is available) and says so.

Next perturbations are ranked over the untested candidates by their predicted effect on the genes
the goal's perturbation changes most, plus the disagreement between the available models
(an upper-confidence-bound score), with a rationale line each.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scagents.agents.state import (
    AgentRecord,
    DataSummary,
    GeneEffect,
    NetworkSummary,
    PolicySummary,
    Proposal,
    RunOptions,
    RunState,
)

__all__ = ["policy_agent", "fallback_agent", "POLICY_FILE", "PREDICTION_FILE", "TRAINING_LOG",
           "rank_proposals", "MIN_LISTED"]

POLICY_FILE = "policy.pt"
PREDICTION_FILE = "prediction.csv"
TRAINING_LOG = "training_log.csv"
MIN_LISTED = 0.01  # smallest |predicted delta| listed as up / down
VALIDATION_METRIC = "mse"

Predict = Callable[[tuple[str, ...], str], np.ndarray]


@dataclass
class _Context:
    opts: RunOptions
    data: DataSummary
    out: Path
    task: object
    train: object
    held: object
    genes: list[str]
    goal_label: str | None
    val_labels: list[str]
    control: pd.Series
    baselines: dict[str, Predict] = field(default_factory=dict)


def _label(p) -> str:
    return "+".join(p.targets) + ("" if p.kind == "knockout" else f" {p.kind}")


def _context(state: RunState) -> _Context:
    import mudata as md

    from scagents.baselines import LinearGeneEmbedding, MeanEffect
    from scagents.envs import ResponseTask
    from scagents.perturbation import Perturbation

    opts = RunOptions.model_validate(state["options"])
    data = DataSummary.model_validate(state["data"])
    out = Path(state["out_dir"])
    mdata = md.read_h5mu(out / data.path)
    n_top = None if data.n_genes <= 2000 else 1000
    task = ResponseTask.from_anndata(mdata, modalities=["rna"], n_top_features=n_top,
                                     max_control_cells=256, seed=opts.seed)
    goal = Perturbation.from_dict(data.perturbation)
    goal_idx = None
    try:
        goal_idx = task.index(goal)
    except Exception:  # noqa: BLE001 - the goal was not measured: predicted from its targets only
        goal_idx = None
    others = [i for i in range(task.n_perturbations) if i != goal_idx]
    rng = np.random.default_rng(opts.seed)
    others = [others[i] for i in rng.permutation(len(others))]
    n_val = min(opts.n_validation, max(1, len(others) // 3))
    if len(others) - n_val < 2:
        raise _GoalNotMet(f"the data hold {len(others)} perturbation(s) besides the goal; at least "
                          f"{n_val + 2} are needed to train and validate a predictor")
    val = sorted(others[:n_val])
    held_idx = val + ([goal_idx] if goal_idx is not None else [])
    train, held = task.split(test=held_idx)
    genes = list(task.features["rna"])
    control = pd.Series(np.asarray(train.control_mean["rna"][-1], float), index=genes)
    effects = pd.DataFrame(np.asarray(train.deltas["rna"][:, -1], float),
                           index=["+".join(p.targets) for p in train.perturbations], columns=genes)
    effects = effects[~effects.index.duplicated()]
    ctx = _Context(opts=opts, data=data, out=out, task=task, train=train, held=held, genes=genes,
                   goal_label=task.labels[goal_idx] if goal_idx is not None else None,
                   val_labels=[task.labels[i] for i in val], control=control)
    for name, factory in (("linear gene embedding", lambda: LinearGeneEmbedding(k=8)),
                          ("mean of training effects", MeanEffect)):
        model = factory().fit(control, effects)
        ctx.baselines[name] = (lambda m: lambda targets, kind: m.predict(list(targets))
                               .reindex(genes).to_numpy(float))(model)
    prop = _propagation_predictor(state, ctx)
    if prop is not None:
        ctx.baselines["network propagation"] = prop
    return ctx


class _GoalNotMet(Exception):
    pass


def _propagation_predictor(state: RunState, ctx: _Context) -> Predict | None:
    """In-silico perturbation through the inferred network (``scagents.grn.propagate_delta``)."""
    net = state.get("network")
    if not net or NetworkSummary.model_validate(net).status != "done":
        return None
    try:
        from scagents import grn
    except ImportError:  # pragma: no cover
        return None
    if not hasattr(grn, "propagate_delta"):
        return None
    genes = ctx.genes
    matrix = ctx.out / "network_matrix.csv"
    if matrix.exists():  # coefficients in expression units (scagents.grn.network_matrix)
        w = pd.read_csv(matrix, index_col=0).reindex(index=genes, columns=genes).fillna(0.0)
    else:
        edges = pd.read_csv(ctx.out / NetworkSummary.model_validate(net).edges_path)
        w = (edges.pivot_table(index="source", columns="target", values="weight", aggfunc="sum")
             .reindex(index=genes, columns=genes).fillna(0.0))
    baseline = ctx.control

    def predict(targets: tuple[str, ...], kind: str) -> np.ndarray:
        from scagents.perturbation import Perturbation

        res = grn.propagate_delta(w, baseline, Perturbation(tuple(targets), kind=kind), n_steps=3)
        return pd.Series(np.asarray(res, float).ravel() if not isinstance(res, pd.Series) else res,
                         index=genes if not isinstance(res, pd.Series) else None
                         ).reindex(genes).fillna(0.0).to_numpy(float)

    return predict


def _score(ctx: _Context, predict: Predict) -> dict[str, float]:
    """Mean validation metrics of a predictor over the validation perturbations."""
    from scagents.metrics import prediction_report

    rows = []
    for label in ctx.val_labels:
        p = ctx.task.perturbations[ctx.task.index(label)]
        obs = ctx.held.observed_delta(label, modality="rna")
        rows.append(prediction_report(predict(p.targets, p.kind), obs, k=min(20, len(obs))))
    df = pd.DataFrame(rows)
    return {k: round(float(df[k].mean()), 6) for k in ("mse", "pearson", "pearson_delta_topk")}


def _policy_predictor(ctx: _Context, policy) -> Predict:
    from scagents.envs import predict_delta
    from scagents.perturbation import Perturbation

    def predict(targets: tuple[str, ...], kind: str) -> np.ndarray:
        p = Perturbation(tuple(targets), kind=kind)
        try:
            return predict_delta(policy, ctx.held, p, modality="rna", max_cells=256)
        except Exception:  # noqa: BLE001 - not in the held-out task: encode from targets
            return predict_delta(policy, ctx.train, p, modality="rna", max_cells=256)

    return predict


def rank_proposals(goal_delta: pd.Series, candidates: list[str], kind: str,
                   models: dict[str, Predict], *, n: int, goal_label: str) -> list[Proposal]:
    """Rank untested single-gene perturbations for the next experiment.

    Parameters
    ----------
    goal_delta
        Predicted change of the goal's perturbation (indexed by gene).
    candidates
        Genes not yet perturbed.
    kind
        Perturbation kind of the candidates.
    models
        Predictors (name → ``predict(targets, kind)``) forming the ensemble.
    n
        Number of proposals.
    goal_label
        Label of the goal's perturbation (for the rationale).

    Returns
    -------
    list[Proposal]
        Best first: ``score = effect + uncertainty``, where ``effect`` is the ensemble mean of the
        root-mean-square predicted change of the 10 genes the goal changes most and
        ``uncertainty`` its standard deviation across the models (an upper confidence bound).
    """
    if not candidates or n <= 0 or not models:
        return []
    resp = goal_delta.abs().sort_values(ascending=False).index[:10]
    pos = [goal_delta.index.get_loc(g) for g in resp]
    rows = []
    for gene in candidates:
        per_model = {}
        for name, predict in models.items():
            d = predict((gene,), kind)
            per_model[name] = float(np.sqrt(np.mean(np.asarray(d)[pos] ** 2)))
        vals = np.array(list(per_model.values()))
        rows.append((gene, float(vals.mean()), float(vals.std()), per_model))
    rows.sort(key=lambda r: (-(r[1] + r[2]), r[0]))
    out = []
    for rank, (gene, eff, unc, per_model) in enumerate(rows[:n], start=1):
        top = ", ".join(list(resp[:3]))
        out.append(Proposal(
            rank=rank, perturbation=f"{gene} {kind}", score=round(eff + unc, 6),
            uncertainty=round(unc, 6),
            rationale=f"untested; predicted to move the genes {goal_label} changes most ({top}, …) "
                      f"by {eff:.3f} RMS, models disagree by ±{unc:.3f} "
                      f"({', '.join(f'{k} {v:.3f}' for k, v in per_model.items())})"))
    return out


def _finish(state: RunState, ctx: _Context, *, status: str, method: str, predict: Predict,
            validation: dict, attempts: int, reason: str = "", policy_path: str | None = None,
            training_log: str | None = None, ensemble: dict[str, Predict] | None = None) -> PolicySummary:
    from scagents.metrics import prediction_report
    from scagents.perturbation import Perturbation

    goal = Perturbation.from_dict(ctx.data.perturbation)
    pred = pd.Series(predict(goal.targets, goal.kind), index=ctx.genes)
    df = pd.DataFrame({"control_mean": ctx.control, "delta": pred})
    df["perturbed_mean"] = df["control_mean"] + df["delta"]
    evaluation = None
    if ctx.goal_label is not None:
        obs = ctx.held.observed_delta(ctx.goal_label, modality="rna")
        df["observed_delta"] = obs
        rep = prediction_report(pred.to_numpy(), obs, k=min(20, len(obs)))
        evaluation = {k: round(float(v), 6) for k, v in rep.items()
                      if k in ("mse", "pearson", "pearson_delta_topk", "direction_accuracy")}
    df = df.reindex(df["delta"].abs().sort_values(ascending=False).index)
    df.index.name = "gene"
    df.round(8).to_csv(ctx.out / PREDICTION_FILE)

    def rows(sel: pd.DataFrame) -> list[GeneEffect]:
        return [GeneEffect(gene=str(g), delta=round(float(r.delta), 6),
                           control_mean=round(float(r.control_mean), 6),
                           perturbed_mean=round(float(r.perturbed_mean), 6))
                for g, r in sel.head(10).iterrows()]

    proposals = rank_proposals(pred, ctx.data.candidates, goal.kind, ensemble or {method: predict},
                               n=ctx.opts.n_proposals, goal_label=goal.label)
    return PolicySummary(
        status=status, reason=reason, attempts=attempts, method=method, policy_path=policy_path,
        training_log=training_log, prediction_path=PREDICTION_FILE, validation=validation,
        validation_labels=ctx.val_labels, train_labels=list(ctx.train.labels),
        top_up=rows(df[df["delta"] > MIN_LISTED]), top_down=rows(df[df["delta"] < -MIN_LISTED]),
        evaluation=evaluation, proposals=proposals)


def policy_agent(state: RunState) -> dict:
    """Train the TRPO→PPO response policy, validate it against the baselines and predict the goal.

    Each call is one training attempt (the planner calls it again for a retrain); attempt ``a``
    trains for ``policy_steps · 2^(a-1)`` environment steps with seed ``seed + a - 1``.

    Returns
    -------
    dict
        State update: ``policy`` (a :class:`PolicySummary` dump; ``status`` is ``"validated"`` or
        ``"not_validated"``, or ``"skipped"`` when :mod:`scagents.envs` is unavailable) and a log
        record; ``stop_reason`` when the data cannot support the goal.
    """
    prev = state.get("policy") or {}
    attempt = int(prev.get("attempts", 0)) + 1
    try:
        from scagents.envs import PerturbationResponseVecEnv  # noqa: F401
        from scagents.policies import TrainConfig, save, train
    except ImportError as exc:
        s = PolicySummary(status="skipped", attempts=attempt,
                          reason=f"skipped: the response environments are unavailable ({exc})")
        return _out("policy", s)
    try:
        ctx = _context(state)
    except _GoalNotMet as exc:
        s = PolicySummary(status="failed", attempts=attempt, reason=str(exc))
        rec = AgentRecord(agent="policy", status="failed", summary=str(exc))
        return {"policy": s.model_dump(), "stop_reason": f"The goal cannot be met by the data: {exc}.",
                "log": [rec.model_dump()]}
    from scagents.envs import PerturbationResponseVecEnv

    steps = ctx.opts.policy_steps * 2 ** (attempt - 1)
    cfg = TrainConfig(algo="trpo_ppo", total_steps=steps, n_envs=64, n_steps=8, hidden_sizes=(64, 64),
                      lr=1e-3, ppo_epochs=4, n_minibatches=4, init_log_std=-1.0,
                      seed=ctx.opts.seed + attempt - 1)
    env = PerturbationResponseVecEnv(ctx.train, num_envs=cfg.n_envs)
    t0 = time.perf_counter()
    policy, log = train(env, cfg, progress=False, log_path=ctx.out / TRAINING_LOG)
    train_s = time.perf_counter() - t0
    save(policy, ctx.out / POLICY_FILE)
    predict = _policy_predictor(ctx, policy)
    validation = {"TRPO→PPO policy": _score(ctx, predict)}
    validation.update({name: _score(ctx, f) for name, f in ctx.baselines.items()})
    best_name = min(ctx.baselines, key=lambda k: validation[k][VALIDATION_METRIC])
    ok = validation["TRPO→PPO policy"][VALIDATION_METRIC] < validation[best_name][VALIDATION_METRIC]
    reason = (f"validation {VALIDATION_METRIC} {validation['TRPO→PPO policy'][VALIDATION_METRIC]:.4g} "
              f"vs best baseline ({best_name}) {validation[best_name][VALIDATION_METRIC]:.4g} "
              f"after {steps} steps")
    ensemble = {"TRPO→PPO policy": predict, **{k: v for k, v in ctx.baselines.items()
                                              if k != "mean of training effects"}}
    s = _finish(state, ctx, status="validated" if ok else "not_validated", method="TRPO→PPO policy",
                predict=predict, validation=validation, attempts=attempt, reason=reason,
                policy_path=POLICY_FILE, training_log=TRAINING_LOG, ensemble=ensemble)
    return _out("policy", s, extra={"train_seconds": round(train_s, 2), "steps": steps,
                                    "final_return": float(log.rows[-1]["episodic_return_mean"])})


def fallback_agent(state: RunState) -> dict:
    """Predict with the network-propagation baseline (best baseline without a network).

    Called when the policy did not validate (or could not be trained). The validation table of the
    policy attempts is kept, and the reason for the fallback is stated.

    Returns
    -------
    dict
        State update: ``policy`` with ``status="fallback"`` and the baseline's prediction.
    """
    prev = PolicySummary.model_validate(state.get("policy") or {"status": "skipped"})
    try:
        ctx = _context(state)
    except _GoalNotMet as exc:
        rec = AgentRecord(agent="fallback", status="failed", summary=str(exc))
        return {"stop_reason": f"The goal cannot be met by the data: {exc}.", "log": [rec.model_dump()]}
    validation = dict(prev.validation)
    for name, f in ctx.baselines.items():
        validation.setdefault(name, _score(ctx, f))
    if "network propagation" in ctx.baselines:
        name = "network propagation"
        why = "the network-propagation baseline"
    else:
        cands = [k for k in ctx.baselines]
        name = min(cands, key=lambda k: validation[k][VALIDATION_METRIC])
        why = f"the best baseline on validation ({name}); no inferred network was available"
    reason = (f"the policy did not validate ({prev.reason or prev.status}); predicting with {why}")
    ensemble = {k: v for k, v in ctx.baselines.items() if k != "mean of training effects"}
    s = _finish(state, ctx, status="fallback", method=name, predict=ctx.baselines[name],
                validation=validation, attempts=prev.attempts, reason=reason,
                policy_path=prev.policy_path, training_log=prev.training_log, ensemble=ensemble)
    return _out("fallback", s)


def _out(agent: str, s: PolicySummary, extra: dict | None = None) -> dict:
    figures = {"status": s.status, "method": s.method, "attempts": s.attempts}
    if s.validation:
        figures["validation_mse"] = {k: v["mse"] for k, v in s.validation.items()}
    if s.evaluation:
        figures["goal_pearson"] = s.evaluation.get("pearson")
    figures.update(extra or {})
    rec = AgentRecord(agent=agent, status=s.status,
                      summary=s.reason or f"predicted with {s.method}", figures=json.loads(
                          json.dumps(figures, default=float)))
    return {"policy": s.model_dump(), "log": [rec.model_dump()]}
