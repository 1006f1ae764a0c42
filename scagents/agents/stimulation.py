"""The stimulation agent: answers treatment goals ("predict IFN-beta stimulation in CD14 monocytes").

The data agent recognises a goal about the data's treatment (:func:`scagents.goal.is_stimulation_goal`)
and records it in ``data["stimulation"]``; the supervisor then routes here instead of the network and
policy agents. The agent predicts the held-out cell type's treated profile from the other cell types
(scGen's task) — or a held-out time point of a time course from the others — with the predictor
chosen by inner validation over the other groups (:func:`scagents.stimulation.fit_response`), and
writes the same :class:`~scagents.agents.state.PolicySummary` and ``prediction.csv`` as the policy
agent, so the report agent reports it (observed vs predicted, evidence, intervals).

Without a cell type ("predict IFN-beta stimulation") every cell type is predicted in turn from the
others and the answer is the response of all cells together: the predicted treated profile of each
cell type, averaged with the treated cells' cell-type composition, minus the mean control profile —
the quantity a biologist computes as "treated minus control" over all cells —, with a per-cell-type
table of how each prediction compares with that cell type's observed response.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scagents._atomic import atomic_path
from scagents.agents.state import (
    AgentRecord,
    DataSummary,
    GeneEffect,
    PolicySummary,
    RunOptions,
    RunState,
)

__all__ = ["stimulation_agent", "stimulation_means"]


def stimulation_means(rna, stimulation: dict):
    """:func:`scagents.stimulation.condition_means` of a standardised AnnData for a parsed
    stimulation goal (``data["stimulation"]``, :meth:`scagents.goal.StimulationGoal.to_dict`)."""
    from scagents.data import lognormalize
    from scagents.stimulation import condition_means

    if "lognorm" not in rna.layers:
        lognormalize(rna)
    d = stimulation["design"]
    cond = rna.obs[d["key"]].astype(str).to_numpy()
    if d["kind"] == "time":
        return condition_means(rna.layers["lognorm"], None, cond, control=d["control"],
                               genes=rna.var_names, hours=d["hours"])
    return condition_means(rna.layers["lognorm"], rna.obs[d["cell_type_key"]].astype(str).to_numpy()
                           if d["cell_type_key"] else np.full(rna.n_obs, "all cells"), cond,
                           control=d["control"], treated=stimulation["treatment"],
                           genes=rna.var_names)


def _dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)


def stimulation_agent(state: RunState) -> dict:
    """Predict the goal's held-out treated profile and check it against the observed cells.

    Returns
    -------
    dict
        State update: ``policy`` (a :class:`PolicySummary` dump with ``stimulation`` holding the
        bookkeeping: groups fitted on, held-out cells, per-group table) and a log record.
    """
    import mudata as md

    from scagents.agents.policy import MIN_LISTED, PREDICTION_FILE
    from scagents.evidence import INTERVAL_LEVEL, MAX_BOOT_CELLS, evidence_check, noise_floor
    from scagents.metrics import prediction_report
    from scagents.stimulation import MEAN_SHIFT, fit_response, score

    opts = RunOptions.model_validate(state["options"])
    data = DataSummary.model_validate(state["data"])
    out = Path(state["out_dir"])
    sg = data.stimulation
    design = sg["design"]
    rna = md.read_h5mu(out / data.path)["rna"]
    means = stimulation_means(rna, sg)
    genes = list(means.genes)
    time_course = design["kind"] == "time"
    if time_course:
        targets = [sg["treatment"]]
    elif sg["cell_type"]:
        targets = [sg["cell_type"]]
    else:
        targets = [g for i, g in enumerate(means.groups)
                   if means.n_control[i] > 0 and means.n_treated[i] > 0]
    try:
        fits = {g: fit_response(means, g, min_improvement=opts.min_improvement) for g in targets}
    except ValueError as exc:
        ok = [g for i, g in enumerate(means.groups) if min(means.n_control[i], means.n_treated[i]) > 0]
        ask = (f" Ask about one that has both: {', '.join(map(str, ok))}." if len(means.groups) > 1
               else "")
        msg = f"No prediction possible for {sg['label']}: {exc}{ask}"
        rec = AgentRecord(agent="stimulation", status="failed", summary=msg)
        return {"stop_reason": msg, "log": [rec.model_dump()]}
    skipped = [g for i, g in enumerate(means.groups) if g not in fits and not time_course
               and not sg["cell_type"]]
    obs = rna.obs
    cond = obs[design["key"]].astype(str).to_numpy()
    if time_course or sg["cell_type"]:
        (g, fit), = fits.items()
        i = means.index(g)
        control = means.control[i]
        pred, observed = fit.delta, means.delta[i]
        lower, upper = fit.lower, fit.upper
        in_group = (np.ones(rna.n_obs, bool) if time_course else
                    obs[design["cell_type_key"]].astype(str).to_numpy() == g)
        per_group = []
    else:  # all cells: each cell type predicted from the others, composed as the treated cells are
        w = np.array([means.n_treated[means.index(g)] for g in fits], float)
        w /= w.sum()
        ctrl_cells = np.array([means.n_control[means.index(g)] for g in fits], float)
        control = ctrl_cells @ np.stack([means.control[means.index(g)] for g in fits]) / ctrl_cells.sum()
        treated_pred = w @ np.stack([means.control[means.index(g)] + f.delta for g, f in fits.items()])
        treated_obs = w @ np.stack([means.treated[means.index(g)] for g in fits])
        pred, observed = treated_pred - control, treated_obs - control
        lower = upper = None
        in_group = obs[design["cell_type_key"]].astype(str).isin(list(fits)).to_numpy() \
            if design["cell_type_key"] else np.ones(rna.n_obs, bool)
        per_group = []
        for g, f in fits.items():
            i = means.index(g)
            s, s0 = score(f.delta, means.delta[i]), score(f.candidates[MEAN_SHIFT], means.delta[i])
            per_group.append({
                "cell_type": g, "control_cells": int(means.n_control[i]),
                "treated_cells": int(means.n_treated[i]), "answered_by": f.method,
                "status": f.status, "mse": round(s["mse"], 5),
                "pearson_delta_top20": round(s["pearson_delta_topk"], 3),
                "mean_shift_mse": round(s0["mse"], 5),
                "mean_shift_pearson_delta_top20": round(s0["pearson_delta_topk"], 3)})
    goal_cells = in_group & (cond == sg["treatment"])
    ctrl_cells = in_group & (cond == design["control"])
    # evidence: can the goal's observed change be told from noise (bootstrap over its cells)?
    x = rna.layers["lognorm"]
    floor = None
    if goal_cells.sum() >= 2 and ctrl_cells.sum() >= 2:
        rng = np.random.default_rng(opts.seed)  # dense at most MAX_BOOT_CELLS cells per side

        def cells(mask: np.ndarray) -> np.ndarray:
            idx = np.flatnonzero(mask)
            if len(idx) > MAX_BOOT_CELLS:
                idx = np.sort(rng.choice(idx, MAX_BOOT_CELLS, replace=False))
            return _dense(x[idx])

        floor = noise_floor(cells(ctrl_cells), cells(goal_cells), genes, min_effect=MIN_LISTED,
                            seed=opts.seed)
    df = pd.DataFrame({"control_mean": control, "delta": pred}, index=pd.Index(genes, name="gene"))
    df["perturbed_mean"] = df["control_mean"] + df["delta"]
    df["delta_lower"] = np.nan if lower is None else lower
    df["delta_upper"] = np.nan if upper is None else upper
    df["observed_delta"] = observed
    if floor is not None:
        df["noise_floor"] = floor["noise_floor"].to_numpy()
        df["clears_noise"] = floor["clears"].to_numpy()
        evidence = evidence_check(floor, kind="observed", n_cells=int(goal_cells.sum()))
    else:
        df["clears_noise"] = False
        evidence = {"kind": "unavailable", "detectable": None, "n_clear": 0, "n_genes": len(df),
                    "cleared": [], "cells_needed": None,
                    "method": "fewer than 2 treated or control cells: no noise floor",
                    "needed": "To check the effect: measure more treated and control cells."}
    k = min(20, len(genes))
    rep = prediction_report(pred, observed, k=k)
    evaluation = {m: round(float(v), 6) for m, v in rep.items()
                  if m in ("mse", "pearson", "pearson_delta_topk", "direction_accuracy")}
    top = np.argsort(-np.abs(observed), kind="stable")[:k]
    evaluation["k"] = float(k)
    evaluation["same_sign_topk"] = float(np.sum(np.sign(pred[top]) == np.sign(observed[top])))
    base = {name: {kk: round(v, 6) for kk, v in score(f_pred, observed).items()}
            for name, f_pred in _reference_predictions(fits).items()}
    df = df.reindex(df["delta"].abs().sort_values(ascending=False).index)
    with atomic_path(out / PREDICTION_FILE) as tmp:
        df.round(8).to_csv(tmp)

    def rows(sel: pd.DataFrame) -> list[GeneEffect]:
        def num(v) -> float | None:
            return None if pd.isna(v) else round(float(v), 6)

        return [GeneEffect(gene=str(gg), delta=round(float(r.delta), 6),
                           control_mean=round(float(r.control_mean), 6),
                           perturbed_mean=round(float(r.perturbed_mean), 6),
                           lower=num(r.delta_lower), upper=num(r.delta_upper),
                           clears_noise=None if evidence["detectable"] is None else bool(r.clears_noise))
                for gg, r in sel.head(10).iterrows()]

    # bookkeeping, from the fits themselves: which groups' treated cells trained each prediction
    first = next(iter(fits.values()))
    train_labels = sorted({f"{g} {sg['treatment']}" for f in fits.values() for g in f.train})
    held_labels = [f"{g} {sg['treatment']}" for g in fits]
    if len(fits) == 1:
        fit_labels = [f"{g} {sg['treatment']}" for g in first.train]
        method, status, decision = first.method, first.status, first.decision
        validation = first.validation
        val_labels = [f"{g} {sg['treatment']}" for g in first.inner]
        interval = None if first.q is None else {
            "level": INTERVAL_LEVEL, "q": round(float(first.q), 6), "n_calibration": len(first.inner),
            "models": list(first.candidates), "columns": ["delta_lower", "delta_upper"],
            "method": (f"split-conformal on the {len(first.inner)} inner-validation groups: delta ± "
                       "q · scale, scale = spread of the candidate predictions combined with the "
                       f"gene's spread over the training groups, q = {first.q:.3g}")}
    else:
        counts = pd.Series([f.method for f in fits.values()]).value_counts()
        method = "per cell type: " + ", ".join(f"{m} ({n})" for m, n in counts.items())
        status = ("validated" if all(f.status == "validated" for f in fits.values()) else
                  "fallback" if all(f.status in ("validated", "fallback") for f in fits.values())
                  else "unchecked")
        fit_labels, val_labels, validation, interval = [], [], {}, None
        decision = (f"Each of the {len(fits)} cell types was predicted from the others, the "
                    "predictor chosen by inner validation over those others only; "
                    + "; ".join(f"{g}: {f.method} ({f.status})" for g, f in fits.items()) + ".")
    used = {lab for f in fits.values() for lab in (f"{g} {sg['treatment']}" for g in f.train)}
    own_leak = [g for g, f in fits.items() if g in f.train]
    stim = {
        "label": sg["label"], "reading": sg["reading"], "kind": design["kind"],
        "treatment": sg["treatment"],
        "targets": list(fits), "not_predicted": skipped,
        "held_out_treated_cells": int(goal_cells.sum()), "control_cells": int(ctrl_cells.sum()),
        "trained_on": {g: f.train for g, f in fits.items()}, "leaked": own_leak,
        "per_group": per_group, "candidates_on_goal": base,
        "params": {k: str(v) for k, v in first.params.items() if v is not None}
        if len(fits) == 1 else {},
        "pooled": not (time_course or sg["cell_type"]),
    }
    is_effect = evidence["detectable"] is not False
    summary = PolicySummary(
        status=status if is_effect else "no_effect", reason=decision, attempts=1, method=method,
        prediction_path=PREDICTION_FILE, validation=validation, validation_labels=val_labels,
        validation_count=(f"{len(val_labels)} validation "
                          f"{'time point' if design['kind'] == 'time' else 'cell type'}"
                          f"{'s' if len(val_labels) != 1 else ''}" if val_labels else ""),
        train_labels=train_labels if len(fits) == 1 else sorted(used), fit_labels=fit_labels,
        held_out=held_labels[0], held_out_labels=held_labels, held_out_cells=int(goal_cells.sum()),
        decision=decision,
        top_up=rows(df[df["delta"] > MIN_LISTED]) if is_effect else [],
        top_down=rows(df[df["delta"] < -MIN_LISTED]) if is_effect else [],
        evaluation=evaluation, evidence=evidence, interval=interval, stimulation=stim)
    rec = AgentRecord(agent="stimulation", status=summary.status,
                      summary=f"{sg['label']}: {method} ({status}); held-out Pearson-delta top-{k} "
                              f"{evaluation['pearson_delta_topk']:.3f}, MSE {evaluation['mse']:.4g}",
                      figures={"method": method, "status": summary.status,
                               "goal_pearson": evaluation["pearson_delta_topk"],
                               "goal_mse": evaluation["mse"], "groups_predicted": len(fits)})
    return {"policy": summary.model_dump(), "log": [rec.model_dump()]}


def _reference_predictions(fits: dict) -> dict[str, np.ndarray]:
    """Every candidate's prediction of the goal (one group), for the report's comparison."""
    if len(fits) != 1:
        return {}
    return dict(next(iter(fits.values())).candidates)
