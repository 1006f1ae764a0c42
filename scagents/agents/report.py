"""The report agent: Markdown + self-contained HTML + JSON + PNG plots of a run."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from scagents._atomic import write_text
from scagents.agents.network import EDGES_FILE, propagation_sign_note
from scagents.agents.policy import MIN_LISTED, POLICY, REFERENCE
from scagents.agents.state import (
    AgentRecord,
    DataSummary,
    IntegrationSummary,
    NetworkSummary,
    PolicySummary,
    ReportSummary,
    RunOptions,
    RunState,
)
from scagents.metrics import DEFAULT_DIRECTION_EPS

__all__ = ["report_agent", "build_result", "twin_check", "held_out_sentence", "headline", "agent_rows",
           "additive_comparison", "STABLE_ACTIVITY"]

#: what each agent contributes to the report (the "which agent produced what" table)
_PRODUCED = {
    "data": "goal parsed, data {made} ({files})",
    "integration": "joint embedding and clusters ({files})",
    "network": "regulatory network and the target's neighbourhood ({files})",
    "stimulation": "a held-out cell type's (or time point's) treated profile predicted from the "
                   "others, predictor chosen by inner validation ({files})",
    "report": "this report",
}


STABLE_ACTIVITY = 0.02
"""|noiseless activity change| below which a gene counts as unchanged in the model (twin check)."""
_MIN_COUNT_CHANGE = 0.05


def twin_check(predicted: pd.Series, truth: pd.DataFrame, *, fates: dict | None = None,
               label: str = "the perturbation", k: int = 20, n_top: int = 8,
               cleared: Iterable[str] | None = None) -> dict:
    """Compare a predicted response with the twin's own simulation of the same perturbation.

    Parameters
    ----------
    predicted
        Predicted change from control of log-normalised expression, indexed by gene.
    truth
        The twin's simulated response (the data agent's ``twin_truth.csv``): ``delta`` (change of
        mean log-normalised counts), optionally ``activity_delta`` (change of the noiseless model
        activity) and ``is_input`` (milieu input genes, clamped in the model: left out of the
        metrics and the lists, which cover the responding genes only).
    fates
        ``{condition: {fate: fraction}}`` of control and perturbed simulated cells.
    label
        Name of the perturbation, for the text.
    k
        Number of top simulated DE genes (by ``|delta|``) for the Pearson-delta and the direction
        accuracy (capped at the number of genes).
    n_top
        Genes listed per direction.
    cleared
        Genes whose change clears the noise (the evidence check); ``None``: not known.

    Returns
    -------
    dict
        ``metrics`` (``pearson_delta_top{k}``, ``direction_accuracy_top{k}`` — three-class
        up / down / unchanged at |Δ| > 0.05 of :func:`scagents.metrics.direction_metrics` on those
        genes —, ``sign_agreement_top{k}``, ``mse`` and ``pearson`` over all responding genes), ``top_up`` /
        ``top_down`` (simulated vs predicted delta and activity change of the genes the simulation
        moves most), ``fate_shift``, ``compositional`` (listed genes whose count change is not a
        change of model activity) and ``notes`` (plain-language verdict and explanations); with
        ``cleared`` also ``k_clear`` (how many of the top-``k`` genes clear the noise) and
        ``same_sign_clear`` (how many of those the prediction has the sign of right).
    """
    from scagents.metrics import direction_metrics, mse, pearson, pearson_delta_topk, top_de_indices

    is_input = (truth["is_input"].astype(bool) if "is_input" in truth
                else pd.Series(False, index=truth.index))
    # model inputs are set by the milieu, not responses: left out of the check and the lists
    genes = truth.index[~is_input.to_numpy()]
    sim = truth["delta"].astype(float).reindex(genes)
    pred = predicted.reindex(genes).astype(float).fillna(0.0)
    kk = min(k, len(genes))
    idx = top_de_indices(sim.to_numpy(), kk)
    p_top, s_top = pred.to_numpy()[idx], sim.to_numpy()[idx]
    metrics = {
        f"pearson_delta_top{kk}": pearson_delta_topk(pred.to_numpy(), sim.to_numpy(), k=kk),
        f"direction_accuracy_top{kk}": direction_metrics(p_top, s_top)["accuracy"],
        f"sign_agreement_top{kk}": float(np.mean(np.sign(p_top) == np.sign(s_top))),
        "mse": mse(pred.to_numpy(), sim.to_numpy()),
        "pearson": pearson(pred.to_numpy(), sim.to_numpy()),
    }
    metrics = {m: round(float(v), 4) for m, v in metrics.items()}
    act = truth["activity_delta"].astype(float) if "activity_delta" in truth else None

    def rows(sel: pd.Index) -> list[dict]:
        out = []
        for g in sel:
            r = {"gene": str(g), "simulated_delta": round(float(sim[g]), 4),
                 "predicted_delta": round(float(pred[g]), 4)}
            if act is not None:
                r["activity_delta"] = round(float(act[g]), 4)
            r["same_direction"] = "yes" if np.sign(pred[g]) == np.sign(sim[g]) else "NO"
            out.append(r)
        return out

    up = sim[sim > 0].sort_values(ascending=False).index[:n_top]
    down = sim[sim < 0].sort_values().index[:n_top]
    listed = list(dict.fromkeys([*up, *down, *pred.abs().sort_values(ascending=False).index[:10]]))
    compositional = []
    if act is not None:
        compositional = [g for g in listed if abs(act[g]) < STABLE_ACTIVITY
                         and abs(sim[g]) > _MIN_COUNT_CHANGE]
    n_dir = int(round(metrics[f"sign_agreement_top{kk}"] * kk))
    wrong = [g for g in [*up[:5], *down[:5]] if np.sign(pred[g]) != np.sign(sim[g])]
    notes = [f"The prediction has the sign of {n_dir} of the {kk} largest simulated changes right "
             f"(Pearson-delta top-{kk} {metrics[f'pearson_delta_top{kk}']:.2f}, MSE "
             f"{metrics['mse']:.3f})."]
    if wrong:
        notes.append("Predicted in the wrong direction among the 5 strongest simulated up and down "
                     "genes: " + ", ".join(f"{g} (simulated {sim[g]:+.2f}, predicted {pred[g]:+.2f})"
                                          for g in wrong) + ".")
    if compositional:
        notes.append(
            "Compositional effect — these genes change in normalised counts although their "
            "model activity barely changes: " + ", ".join(
                f"{g} {sim[g]:+.2f} (activity {act[g]:+.3f})" for g in compositional)
            + ". Counts are normalised to the same total per cell: when strongly expressed genes "
            "lose counts, unchanged genes take a larger share and appear up (and vice versa). "
            "This is not regulation, and a model trained on normalised counts learns it too.")
    noise = {}
    if cleared is not None:
        clear = np.isin(np.asarray(genes[idx], dtype=str), [str(g) for g in cleared])
        noise = {"k_clear": int(clear.sum()),
                 "same_sign_clear": int(np.sum((np.sign(p_top) == np.sign(s_top))[clear]))}
    return {
        **noise,
        "description": (f"The twin simulated {label} itself (held out from every model): the "
                        "prediction above is compared with the simulated change from control of "
                        f"the model's {len(genes)} responding genes"
                        + (f" (its inputs {', '.join(map(str, truth.index[is_input.to_numpy()]))} "
                           "are set by the milieu, not predicted)" if is_input.any() else "")
                        + ". The simulation is the ground truth; it is not used as the answer."),
        "metrics": metrics, "k": kk, "top_up": rows(up), "top_down": rows(down),
        "fate_shift": fates, "compositional": [str(g) for g in compositional], "notes": notes,
    }


def additive_comparison(predicted: pd.Series, additive: pd.Series, targets: Iterable[str], *,
                        kind: str, labels: dict[str, list[str]], k: int = 20, n_top: int = 10,
                        inputs: Iterable[str] = ()) -> dict:
    """Set a combination's prediction beside the additive reference (sum of the measured singles).

    Parameters
    ----------
    predicted, additive
        Predicted change and the sum of the targets' observed single effects, indexed by gene.
    targets, kind
        The goal's targets and kind.
    labels
        Per target, the labels whose observed effects were summed (for the text).
    k
        Genes the additive reference changes most, on which the sign agreement and the Pearson
        correlation are computed (capped at the number of genes).
    n_top
        Genes listed: the largest of ``max(|predicted|, |additive|)``.
    inputs
        Model inputs (set, not predicted): left out.

    Returns
    -------
    dict
        ``description``, ``rows`` (gene, predicted_delta, additive_delta), ``k``,
        ``same_sign`` (genes among the additive reference's top ``k`` whose predicted sign is the
        same), ``pearson_topk``, ``norm_ratio`` (‖prediction‖ / ‖additive‖ over all genes),
        ``targets`` (each target's predicted and additive change) and ``sentence``.
    """
    from scagents.metrics import pearson

    drop = set(map(str, inputs))
    genes = [g for g in additive.index if str(g) not in drop]
    add = additive.reindex(genes).astype(float)
    pred = predicted.reindex(genes).astype(float).fillna(0.0)
    kk = min(k, len(genes))
    top = np.argsort(-np.abs(add.to_numpy()), kind="stable")[:kk]
    p_top, a_top = pred.to_numpy()[top], add.to_numpy()[top]
    same = int(np.sum(np.sign(p_top) == np.sign(a_top)))
    r = float(pearson(p_top, a_top)) if kk > 1 else float("nan")
    n_add = float(np.linalg.norm(add.to_numpy()))
    ratio = float(np.linalg.norm(pred.to_numpy()) / n_add) if n_add > 0 else float("nan")
    size = np.maximum(pred.abs(), add.abs()).sort_values(ascending=False, kind="stable")
    rows = [{"gene": str(g), "predicted_delta": round(float(pred[g]), 4),
             "additive_delta": round(float(add[g]), 4),
             "same_direction": "yes" if np.sign(pred[g]) == np.sign(add[g]) else "NO"}
            for g in size.index[:n_top]]
    own = {str(t): {"predicted": round(float(pred[t]), 4), "additive": round(float(add[t]), 4)}
           for t in targets if t in add.index}
    label = "+".join(map(str, targets))
    sentence = (f"The prediction has the sign of {same} of the {kk} genes the sum of the measured "
                f"single effects changes most (Pearson {r:.2f} on them) and moves genes "
                f"{ratio:.2f} times as far as that sum (ratio of the norms over all "
                f"{len(genes)} genes)")
    if own:
        sentence += ("; the targets themselves: " + ", ".join(
            f"{t} predicted {v['predicted']:+.2f} vs additive {v['additive']:+.2f}"
            for t, v in own.items()))
    unmeasured = [str(t) for t in targets if t not in add.index]
    if unmeasured:
        sentence += (f" ({', '.join(unmeasured)} {'is' if len(unmeasured) == 1 else 'are'} not "
                     "among the genes worked on)")
    return {
        "description": (f"Additive reference for {label} {kind}: the sum of the observed changes "
                        "from control of " + " + ".join(
                            f"{t} {kind} (label{'s' if len(v) > 1 else ''} "
                            f"{', '.join(repr(x) for x in v)}"
                            + (", averaged" if len(v) > 1 else "") + ")"
                            for t, v in labels.items())
                        + ", measured in the data's cells. Adding single effects is the standard, "
                          "hard-to-beat baseline for combinations (Norman et al. 2019; "
                          "Ahlmann-Eltze et al. 2025); it is a reference, not the answer."),
        "rows": rows, "k": kk, "same_sign": same, "pearson_topk": round(r, 4),
        "norm_ratio": round(ratio, 4), "targets": own, "sentence": sentence + ".",
    }


def validation_phrase(pol: PolicySummary, adjective: str = "held-out") -> str:
    """What the run's validation set counts: ``pol.validation_count`` with ``adjective`` before
    "validation" (``"6 held-out validation genes (9 labels)"``), or ``"N held-out validation
    perturbations"`` for a run from before it was recorded."""
    n = len(pol.validation_labels)
    text = pol.validation_count or f"{n} validation perturbation{'s' if n != 1 else ''}"
    return text.replace(" validation ", f" {adjective} validation ", 1) if adjective else text


def validation_units(pol: PolicySummary) -> str:
    """What a validation mean averaged, when the validation set has fewer units than labels
    (``"3 genes (6 labels)"`` from ``"3 validation genes (6 labels)"``: each gene's labels are
    averaged first, :func:`scagents.agents.policy._summary`); ``""`` with one label per unit,
    where the means are over the labels as before."""
    words = pol.validation_count.split()
    if "labels)" not in words or "validation" not in words[:-1]:
        return ""
    return " ".join(w for w in words if w != "validation")


def _scores_over(pol: PolicySummary) -> str:
    """What the validation table's means are over: ``"mean over them"``, or ``"means over the 3
    genes (6 labels), each one's labels averaged first,"`` when a gene has several labels."""
    units = validation_units(pol)
    return (f"means over the {units}, each one's labels averaged first," if units
            else "mean over them")


def _spread_over(pol: PolicySummary) -> str:
    """What ``mse_sd`` spreads across: ``"perturbations"``, or the units (``"the genes"``)."""
    units = validation_units(pol)
    return f"the {units.split()[1]}" if units else "perturbations"


def held_out_sentence(pol: PolicySummary, label: str, twin: bool = False) -> str:
    """The report's held-out sentence, computed from the label sets stored in the run.

    Parameters
    ----------
    pol
        The policy summary: ``held_out_labels`` (the goal's cells), ``train_labels`` (what every
        candidate model was trained on) and ``fit_labels`` (what the answering model was fitted
        on).
    label
        The goal's perturbation, for the text.
    twin
        Whether the data come from the twin (its cells were simulated, not measured).
    """
    used = set(pol.train_labels) | set(pol.fit_labels)
    leaked = [lab for lab in pol.held_out_labels if lab in used]
    if leaked:
        return (f"The goal's cells ({', '.join(repr(x) for x in leaked)}) were used to train or fit "
                "a model: the comparison with them is not a held-out test.")
    if pol.held_out_labels and not used:
        made = "simulated" if twin else "measured"
        return (f"The goal's perturbation ({label}) was held out: no model was fitted on "
                f"perturbed cells, and its {pol.held_out_cells} {made} cells (label "
                f"{', '.join(repr(x) for x in pol.held_out_labels)}) check the prediction.")
    if pol.held_out_labels:
        made = "simulated" if twin else "measured"
        return (f"The goal's perturbation ({label}) was held out: its {pol.held_out_cells} "
                f"{made} cells (label {', '.join(repr(x) for x in pol.held_out_labels)}) are in "
                f"none of the {len(pol.train_labels)} training and "
                f"{len(pol.fit_labels)} fitting perturbations, and they check the prediction.")
    if pol.evaluation:  # compared with observed cells, yet no held-out label stored
        return ("This run does not record which cells were held out (it was made by an older "
                "scagents): rerun it to state the held-out facts.")
    return (f"The data hold no cells of {label}: the prediction is made from the other "
            f"perturbations ({len(pol.fit_labels)} fitted) and cannot be checked against "
            "observed cells.")


MIN_JUDGED = 5
"""Fewest genes clearing the noise on which the trust line gives a verdict: with fewer, even all signs right
is not unlikely by chance (4 of 4: p = 0.0625 against a coin flip)."""


def _how_many_clear(k_clear: int, k: int) -> str:
    """How many of ``k`` genes clear the noise, worded from the numbers: ``"only 4"`` when fewer
    than half do, else just the count (``"19"`` of 20: nearly all, not "only").

    Parameters
    ----------
    k_clear
        Genes that clear the noise.
    k
        Genes looked at.

    Returns
    -------
    str
        ``"only {k_clear}"`` or ``"{k_clear}"``.
    """
    return f"only {k_clear}" if 2 * k_clear < k else str(k_clear)


def _agreement_clause(n: int, k: int, k_clear: int | None, n_clear: int | None) -> str:
    """``"{n} of the {k} most changed genes (verdict)"``, the verdict on the genes whose change
    clears the noise when only ``k_clear`` of the ``k`` do (agreement on noise-level changes says
    nothing about the prediction).

    Parameters
    ----------
    n, k
        Genes with the right sign among the ``k`` most changed.
    k_clear, n_clear
        How many of those ``k`` clear the noise, and how many of these have the right sign;
        ``None`` when not known (the sentence is then about all ``k``).

    Returns
    -------
    str
        The clause, ending without a full stop.
    """
    said = f"{n} of the {k} most changed genes"
    if k_clear is None or n_clear is None or k_clear >= k:
        return f"{said} ({_agreement(n, k)})"
    if k_clear == 0:
        return (f"{said}, but none of them changes beyond the noise (see the evidence check), so "
                "this agreement says little")
    verdict = (_agreement(n_clear, k_clear) if k_clear >= MIN_JUDGED else
               f"too few to tell from chance: {MIN_JUDGED} or more are needed")
    return (f"{said}; {_how_many_clear(k_clear, k)} of them "
            f"{'changes' if k_clear == 1 else 'change'} beyond the noise, and it has the direction of "
            f"{n_clear} of those {k_clear} right ({verdict})")


def _clear_clause(evaluation: dict) -> str:
    """``" (none of them changes beyond the noise …)"`` when fewer than all of the ``k`` most
    changed genes of an observed-cells check clear the noise, else ``""``.

    Parameters
    ----------
    evaluation
        The policy's evaluation: ``k``, and ``k_clear`` / ``same_sign_clear`` when the noise
        floor was computed.

    Returns
    -------
    str
        The clause, starting with a space, or ``""``.
    """
    if "k_clear" not in evaluation or "k" not in evaluation:
        return ""
    k, k_clear = int(evaluation["k"]), int(evaluation["k_clear"])
    if k_clear >= k:
        return ""
    if k_clear == 0:
        return (" (but none of them changes beyond the noise, so these signs are those of noise and "
                "say nothing about the prediction)")
    return (f" ({_how_many_clear(k_clear, k)} of them {'changes' if k_clear == 1 else 'change'} "
            "beyond the noise; "
            f"of those it has "
            f"{int(evaluation.get('same_sign_clear', 0))} right)")


def _agreement(n: int, k: int) -> str:
    """Plain words for a sign agreement of ``n`` of ``k`` genes (chance is about half)."""
    frac = n / k if k else 0.0
    if frac >= 0.8:
        return "good agreement"
    if frac >= 0.6:
        return "partial agreement: trust the strongest changes only"
    return "poor agreement, about what chance gives: do not rely on this prediction"


def headline(result: dict, pol: PolicySummary, label: str, *, kind: str = "knockout",
             targets: dict[str, float] | None = None) -> list[str]:
    """The report's first lines: the answer, how far to trust it, which method answered and why.

    Every figure comes from ``result`` (the twin check or the observed-cells check), ``pol`` and
    ``targets`` (the predicted change of the goal's own measured target genes: one that moves
    against its own perturbation — up under a knockout — is said in the trust line).
    """
    def genes(rows: list[dict]) -> str:
        return ", ".join(f"{r['gene']} ({r['delta']:+.2f})" for r in rows[:3])

    up, down = result["top_up"], result["top_down"]
    parts = [f"raise {genes(up)}" if up else "", f"lower {genes(down)}" if down else ""]
    said = " and ".join(p for p in parts if p)
    evidence = result.get("evidence") or {}
    if evidence.get("detectable") is False:  # the lists are empty because nothing clears the noise
        if evidence.get("kind") == "observed":
            cells = f" in its {pol.held_out_cells} cells" if pol.held_out_cells else ""
            answer = (f"**Answer:** no detectable effect: no gene's observed change under {label}"
                      f"{cells} clears the noise (see the evidence check), so no gene is listed "
                      "as up or down.")
        else:
            answer = (f"**Answer:** no detectable effect: no gene's predicted change under {label} "
                      "can be told from zero (every calibrated interval includes 0), so no gene "
                      "is listed as up or down.")
    elif said:
        answer = f"**Answer:** {label} is predicted to {said}."
    else:
        answer = (f"**Answer:** {label} is predicted to change no gene by more than "
                  f"{result['min_effect']}.")
    if result.get("twin_check"):
        tc = result["twin_check"]
        k = tc["k"]
        n = int(round(tc["metrics"][f"sign_agreement_top{k}"] * k))
        trust = (f"**How far to trust it:** the prediction agrees in direction with the twin's own "
                 f"simulation of {label} for "
                 f"{_agreement_clause(n, k, tc.get('k_clear'), tc.get('same_sign_clear'))}.")
    elif result.get("evaluation"):
        ev = result["evaluation"]
        k, n = ev["k"], ev["same_sign"]
        trust = (f"**How far to trust it:** the prediction agrees with the {pol.held_out_cells} "
                 f"observed cells of {label} in direction for "
                 f"{_agreement_clause(n, k, ev.get('k_clear'), ev.get('same_sign_clear'))}.")
    else:
        acc = pol.validation.get(pol.method, {}).get("direction_accuracy")
        ref = pol.validation.get(REFERENCE, {}).get("direction_accuracy")
        trust = "**How far to trust it:** no cells of it were measured, so it cannot be checked directly"
        if acc is not None:  # three-class accuracy over all genes, not over the most changed ones
            units = validation_units(pol)
            trust += (f"; on {validation_phrase(pol, 'other held-out')} this method "
                      f"labelled {100 * acc:.0f} % of all genes right as up, down or unchanged "
                      f"(|change| > {DEFAULT_DIRECTION_EPS}"
                      + (f"; mean over the {units}, each one's labels averaged first" if units else "")
                      + ")")
            if ref is not None:
                trust += (f", where predicting no change at all gets {100 * ref:.0f} %"
                          + (": no better than that" if round(acc, 2) <= round(ref, 2) else ""))
        trust += "."
    if pol.generic:  # the answer is the mean training effect: nothing in it is specific to the goal
        g = pol.generic
        why = (f"; {', '.join(g['unplaced'])} {'is' if len(g['unplaced']) == 1 else 'are'} not among the genes "
               "worked on, so the models cannot place this perturbation" if g.get("unplaced") else "")
        trust += (f" This answer is, in effect, the mean effect of the training perturbations (Pearson "
                  f"{g['pearson']:.2f} with it, {g['size_ratio']:.2f} times its size{why}): nothing in it is "
                  f"specific to {label}.")
    add = result.get("additive")
    if add:  # a combination: the sum of its measured singles is the reference to beat
        trust += (f" Beside the sum of the measured single effects (additive reference), it has "
                  f"the sign of {add['same_sign']} of that sum's {add['k']} most changed genes and "
                  f"{add['norm_ratio']:.2f} times its size.")
        if pol.generic:  # the reference holds what the mean cannot: each target's own measured effect
            own = add.get("targets") or {}
            trust += (" Unlike this answer, the additive reference (column additive_delta of the prediction "
                      "file, and its section below) uses each target's own measured single effect"
                      + (" (" + ", ".join(f"{t} {v['additive']:+.2f} in it vs {v['predicted']:+.2f} here"
                                          for t, v in own.items()) + ")" if own else "")
                      + "; it assumes the targets act independently (no interaction).")
    sign = {"knockout": -1, "knockdown": -1, "overexpression": 1}.get(kind, 0)
    against = [f"{g} ({d:+.2f})" for g, d in (targets or {}).items()
               if sign and d * sign < -MIN_LISTED]
    if against:
        trust += (f" It predicts {', '.join(against)} itself to move against its own {kind}: "
                  "treat the prediction with caution.")
    if pol.status == "validated":
        why = (f"it beat the best baseline on {validation_phrase(pol)} by more than the "
               "validation noise")
    elif pol.status == "fallback":
        why = (f"the TRPO→PPO policy did not beat the baselines on {validation_phrase(pol)}, "
               "and this baseline had the lowest error there")
    elif pol.status == "no_effect":
        why = pol.reason or "no gene's change clears the noise"
        errors = {k: v["mse"] for k, v in pol.validation.items()
                  if k not in (REFERENCE, POLICY) and v.get("mse") is not None}
        if errors and min(errors, key=lambda k: (errors[k], k)) == pol.method:
            why += f"; of the baselines it had the lowest validation error on {validation_phrase(pol)}"
        return [answer, trust, f"**Answered by:** {pol.method} (its prediction kept for reference "
                               f"only), because {why}."]
    elif pol.status == "unchecked":  # too few measured perturbations: the network answers untrained
        why = ("too few perturbations were measured to train and validate a predictor, and it needs "
               "no training; its prediction is " + (pol.reason or "not validated"))
    else:
        why = f"status {pol.status}: {pol.reason}" if pol.reason else f"status {pol.status}"
    return [answer, trust, f"**Answered by:** {pol.method}, because {why}."]


#: obs columns shown as the "fate / cell type" panel of the cell plot, first found wins
_CELL_TYPE_KEYS = ("fate", "cell_type", "celltype", "cell_types", "seurat_annotations",
                   "cell_label", "annotation")
_CLUSTER_KEYS = ("leiden", "louvain", "cluster", "clusters")


def _conditions(obs: pd.DataFrame, pert: dict, *, max_each: int = 8,
                held_out: bool = True) -> list[str]:
    """Per-cell condition for the cell plot: ``control``, the goal's perturbation ``pert`` (marked
    "(held out)" only when ``held_out``: no model saw its cells) and the other perturbations — each
    by name when there are at most ``max_each``, else grouped by kind (``"other knockouts (37
    perturbations)"``)."""
    n = len(obs)
    labels = (obs["perturbation"].astype(str).to_numpy() if "perturbation" in obs
              else np.full(n, "unknown", dtype=object))
    ctrl = obs["is_control"].to_numpy(bool) if "is_control" in obs else labels == "control"
    kind = (obs["perturbation_type"].astype(str).to_numpy() if "perturbation_type" in obs
            else np.full(n, "perturbation", dtype=object))
    goal_label = f"{'+'.join(pert['targets'])} {pert['kind']}"
    if "target_genes" in obs:
        is_goal = obs["target_genes"].astype(str).to_numpy() == "+".join(pert["targets"])
        if "perturbation_type" in obs:
            is_goal &= kind == pert["kind"]
    else:
        is_goal = labels == goal_label
    is_goal &= ~ctrl
    rest = ~ctrl & ~is_goal
    out = np.where(ctrl, "control", np.where(is_goal, f"{goal_label} (held out)" if held_out
                                              else goal_label, labels))
    out = out.astype(object)
    if len(set(labels[rest])) > max_each:
        n_kind = pd.Series(labels[rest]).groupby(kind[rest]).nunique()
        out[rest] = [f"other {k}s ({n_kind[k]} perturbations)" for k in kind[rest]]
    return [str(v) for v in out]


def _embedding(state: RunState, data: DataSummary, integ: IntegrationSummary,
               delta: pd.Series, seed: int
               ) -> tuple[np.ndarray, np.ndarray, str, dict[str, list[str]]]:
    """Cell coordinates, a per-cell predicted-effect score (signature score of the prediction),
    the embedding's name and the categorical colourings found in ``obs`` (condition, cluster,
    fate / cell type)."""
    import mudata as md

    from scagents.data import lognormalize

    out = Path(state["out_dir"])
    mdata = md.read_h5mu(out / (integ.path if integ.status == "done" and integ.path else data.path))
    rna = mdata["rna"]
    lognormalize(rna)
    x = rna.layers["lognorm"]
    x = np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)
    key = integ.embedding_key if integ.status == "done" else None
    if key and key in mdata.obsm:
        coords, how = np.asarray(mdata.obsm[key])[:, :2], key
    else:
        from sklearn.decomposition import PCA

        # the 2,000 most variable genes carry the picture (a whole transcriptome only slows it)
        cols = np.sort(np.argsort(-x.var(0), kind="stable")[:2000]) if x.shape[1] > 2000 else slice(None)
        coords, how = PCA(n_components=2, random_state=seed).fit_transform(x[:, cols]), "PCA of RNA"
    d = delta.reindex(rna.var_names).fillna(0.0).to_numpy()
    z = (x - x.mean(0)) / (x.std(0) + 1e-9)
    score = z @ d / (np.abs(d).sum() + 1e-12)
    obs = rna.obs
    pol = state.get("policy") or {}
    used = set(pol.get("train_labels") or []) | set(pol.get("fit_labels") or [])
    held = bool(pol.get("held_out_labels")) and not used & set(pol["held_out_labels"])
    groups: dict[str, list[str]] = {"condition": _conditions(obs, data.perturbation,
                                                             held_out=held)}
    for title, keys in (("cluster", _CLUSTER_KEYS), ("fate (twin)" if data.truth_path
                                                     else "cell type", _CELL_TYPE_KEYS)):
        col = next((k for k in keys if k in obs or k in mdata.obs), None)
        if col is not None:
            vals = obs[col] if col in obs else mdata.obs[col]
            groups[title] = [str(v) for v in vals.astype(str)]
    return coords, score, how, groups


def build_result(state: RunState) -> dict:
    """The JSON-serialisable result dictionary of a run (also plots its figures).

    Contains no timings and no absolute paths, so the same seed gives byte-identical
    ``report.json`` whether or not the run was interrupted and resumed.
    """
    import scagents
    from scagents.agents.policy import POLICY
    from scagents.report import (
        embedding_axis_labels,
        embedding_caption,
        plot_cells,
        plot_effects,
        plot_fate_shift,
        plot_network,
        plot_training,
    )

    opts = RunOptions.model_validate(state["options"])
    out = Path(state["out_dir"])
    data = DataSummary.model_validate(state["data"])
    integ = IntegrationSummary.model_validate(state.get("integration") or {"status": "skipped"})
    net = NetworkSummary.model_validate(state.get("network") or {"status": "skipped"})
    pol = PolicySummary.model_validate(state["policy"])
    pert = data.perturbation
    label = f"{'+'.join(pert['targets'])} {pert['kind']}"
    stim = pol.stimulation
    if stim:
        label = stim["label"]
    pred = pd.read_csv(out / pol.prediction_path, index_col="gene")
    genes = [{"gene": str(r.Index), "delta": float(r.delta), "control_mean": float(r.control_mean),
              "perturbed_mean": float(r.perturbed_mean),
              **({"lower": float(r.delta_lower), "upper": float(r.delta_upper)}
                 if "delta_lower" in pred and pd.notna(r.delta_lower) else {}),
              **({"clears_noise": bool(r.clears_noise)} if "clears_noise" in pred else {})}
             for r in pred.itertuples()
             if r.Index not in data.inputs]  # model inputs are set, not responses
    figures: dict[str, str] = {}
    noise = (" — no detectable effect: for reference only"
             if pol.evidence and pol.evidence["detectable"] is False else "")
    figures["effects"] = plot_effects(genes, out / "effects.png", inputs=data.inputs,
                                      is_counts=data.is_counts,
                                      title=f"Predicted response to {label} ({pol.method}"
                                            + (", not validated)" if pol.status == "unchecked"
                                               else ")") + noise).name
    coords, score, how, groups = _embedding(state, data, integ, pred["delta"], opts.seed)
    captions = {"effects": ("Genes the answering model predicts to change most from control (red up, "
                            "blue down), for reference only: no gene's change clears the noise."
                            if noise else
                            "Genes predicted to change most from control (red up, blue down)."),
                "embedding": embedding_caption(how, list(groups),
                                               joint=integ.status == "done" and how != "PCA of RNA")}
    embedding_name = embedding_axis_labels(how)[0].rsplit(" ", 1)[0].replace("PC", "PCA")
    figures["embedding"] = plot_cells(
        coords, {**groups, f"predicted effect of {label}": np.asarray(score, dtype=float)},
        out / "embedding.png", embedding=how,
        values_label="resemblance to the predicted change\n(mean z-scored expression, weighted "
                     "by it;\n> 0: cell already shifted that way)",
        title=f"{len(coords)} cells ({embedding_name}) by "
              f"{', '.join(groups)} and the predicted effect").name
    if data.truth_fates:
        figures["fate_shift"] = plot_fate_shift(
            data.truth_fates, out / "fate_shift.png",
            title=f"Fates of simulated cells, control vs {label} (twin)").name
    if net.status == "done" and net.neighbourhood:
        figures["network"] = plot_network(net.neighbourhood, list(pert["targets"]),
                                          out / "network.png",
                                          title=f"Inferred regulators and targets of "
                                                f"{'+'.join(pert['targets'])}",
                                          inferred_from=("co-expression and the knockout screen"
                                                         if "knockout screen" in (net.method or "")
                                                         else "co-expression")).name
    if pol.interval:
        from scagents.report import plot_intervals

        ev_kind = (pol.evidence or {}).get("kind")
        open_means = ("the gene's observed change in the goal's "
                      f"{'simulated' if data.truth_path else 'measured'} cells does not clear "
                      "the noise" if ev_kind == "observed" else
                      "the interval includes 0" if ev_kind == "interval" else
                      "change not above the noise")
        captions["intervals"] = (f"Predicted change of the genes predicted to change most, with its "
                                 f"calibrated {100 * pol.interval['level']:.0f} % interval (bar); "
                                 f"open points: {open_means}.")
        figures["intervals"] = plot_intervals(
            genes, out / "intervals.png", level=pol.interval["level"], is_counts=data.is_counts,
            open_means=("observed change within the noise" if ev_kind == "observed" else
                        "interval includes 0" if ev_kind == "interval" else open_means),
            title=f"Predicted change under {label} with {100 * pol.interval['level']:.0f} % "
                  f"intervals ({pol.method}){noise}").name
    if pol.training_log and (out / pol.training_log).exists():
        rows = pd.read_csv(out / pol.training_log).to_dict("records")
        figures["training"] = plot_training(
            rows, out / "training.png", policy=POLICY,
            validation={k: v.get("mse") for k, v in pol.validation.items()},
            title=f"TRPO→PPO training of the policy (last attempt); dashed: validation error on "
                  f"{validation_phrase(pol)}").name
    notes = [n for n in (data.goal_note, held_out_sentence(pol, label, data.truth_path is not None),
                         pol.held_out_note,
                         "" if stim else unmeasured_targets_note(pert["targets"], pred.index,
                                                                 pert["kind"])) if n]
    if data.set_aside:
        from scagents.agents.data import set_aside_line

        notes.append(set_aside_line(data.set_aside, pert["targets"], data.goal_label))
    if data.excluded:
        notes.append(f"{sum(data.excluded.values())} cells carry no usable perturbation and were "
                     "left out of every model: " + ", ".join(
                         f"{lab!r} ({n})" for lab, n in data.excluded.items()) + ".")
    if pol.validation_aside:
        notes.append(f"{len(pol.validation_aside)} combination(s) holding a validation gene were "
                     "kept out of the candidates' training and not scored, so each validation gene "
                     "was predicted without any of its cells, as the goal is: "
                     + ", ".join(pol.validation_aside) + ".")
    same_genes = [m for m in pol.fit_labels if m not in pol.held_out_labels
                  and set(m.split()[0].split("+")) & set(pert["targets"])]
    if same_genes:
        notes.append(f"Other perturbations of the same gene(s) were "
                     f"{'simulated' if data.truth_path else 'measured'} and used for fitting "
                     f"(different experiments): {', '.join(same_genes)}.")
    for name, s in (("integration", integ), ("network", net)):
        if stim:  # treatment goals use neither
            break
        if s.status in ("skipped", "failed"):
            notes.append(f"{name.capitalize()} {s.status}: {s.reason}")
    notes += [f"Warning: {w}" for w in data.warnings]
    if pol.status == "unchecked":  # no measured perturbation to fit or validate on
        method = f"in-silico {pert['kind']} through the inferred network; {pol.reason}"
    else:
        method = ((f"fitted on {len(pol.fit_labels)} perturbations" if pol.fit_labels
                   else "no perturbation data fitted")
                  + f"; candidates validated on {validation_phrase(pol)}"
                  + (" (policy validated)" if pol.status == "validated" else f" ({pol.status})"))
    result: dict = {
        "goal": data.goal, "perturbation": pert,
        "data": {"source": data.source, "description": data.description
                 + (f"; {data.control}" if data.control else ""),
                 "n_cells": data.n_cells, "n_genes": data.n_genes, "is_counts": data.is_counts},
        "method": {"name": pol.method, "description": method},
        "genes": genes[:50],
        "top_up": [g.model_dump() for g in pol.top_up],
        "top_down": [g.model_dump() for g in pol.top_down],
        "fate_shift": None,
        "validation": {
            "description": f"Every candidate model was trained on {len(pol.train_labels)} "
                           f"perturbations and scored on {validation_phrase(pol)} "
                           f"({', '.join(pol.validation_labels)}; all labels of one target and "
                           f"kind held out together): {_scores_over(pol)} of the MSE "
                           f"(lower is better; mse_sd its spread across {_spread_over(pol)}), "
                           "Pearson over all genes, Pearson-delta over the top-20 DE genes and the "
                           "direction accuracy. 'no change' is a reference, not a candidate.",
            "scores": pol.validation, "decision": pol.decision or pol.reason,
            "answered_by": pol.method},
        "network": {"description": (f"{net.n_edges} edges inferred ({net.method}). "
                                    + (f"{net.weight_note[0].upper()}{net.weight_note[1:]} "
                                       if net.weight_note else "")
                                    + (f"{propagation_sign_note(net.coef_signs, net.edges_path or EDGES_FILE, pol.network_signs)} "
                                       if net.coef_signs else "")
                                    + _neighbourhood_lead(net.neighbourhood, pert["targets"],
                                                          pred.index))
                    if net.status == "done" else f"No network: {net.reason}",
                    "edges": net.neighbourhood},
        "proposals": [p.model_dump() for p in pol.proposals],
        "seed": opts.seed, "version": scagents.__version__, "min_effect": 0.01,
        "notes": notes, "figures": figures, "captions": captions,
        "evidence": pol.evidence, "target_check": pol.target_check,
        "intervals": None if not pol.interval else {
            **pol.interval,
            "per_gene": {"gene": [g["gene"] for g in genes],
                         "delta": [round(g["delta"], 6) for g in genes],
                         "lower": [round(g.get("lower", np.nan), 6) for g in genes],
                         "upper": [round(g.get("upper", np.nan), 6) for g in genes]}},
    }
    if pol.status == "unchecked":
        result["validation"] = {"description": "", "scores": {}, "decision": pol.decision,
                                "answered_by": pol.method}
        result["proposals_note"] = (
            "No next perturbations are ranked: with no other measured perturbation to validate "
            "the network on, a ranking would rest on the same unvalidated network."
            if pol.evaluation else
            "No next perturbations are ranked: with nothing measured to check it, a ranking would "
            "rest on the same unchecked network.")
    if data.truth_path and (out / data.truth_path).exists():
        truth = pd.read_csv(out / data.truth_path, index_col=0)
        ev = pol.evidence or {}
        cleared = ev.get("cleared")  # the evidence stores at most 50 names: only a full list
        if cleared is not None and ev.get("n_clear", len(cleared)) > len(cleared):
            cleared = None
        result["twin_check"] = twin_check(pred["delta"], truth, fates=data.truth_fates,
                                          label=label, cleared=cleared)
    elif pol.evaluation and pol.held_out:
        result["evaluation"] = {
            "description": f"{label} was {'simulated on the twin' if data.truth_path else 'measured'}"
                           f": its {pol.held_out_cells} cells (label "
                           f"{', '.join(repr(x) for x in pol.held_out_labels)}) were held out of "
                           "every model, and the prediction is compared with their observed "
                           "change from control"
                           + (f"; it has the sign of {int(pol.evaluation['same_sign_topk'])} of "
                              f"the {int(pol.evaluation['k'])} most changed genes right"
                              + _clear_clause(pol.evaluation) + "."
                              if "k" in pol.evaluation else "."),
            "metrics": {m: v for m, v in pol.evaluation.items()
                        if m not in ("k", "same_sign_topk", "k_clear", "same_sign_clear")},
            "k": int(pol.evaluation.get("k", 0)),
            "same_sign": int(pol.evaluation.get("same_sign_topk", 0)),
            **{m: int(pol.evaluation[m]) for m in ("k_clear", "same_sign_clear")
               if m in pol.evaluation}}
    if "additive_delta" in pred and pol.additive_labels:
        result["additive"] = additive_comparison(
            pred["delta"], pred["additive_delta"], pert["targets"], kind=pert["kind"],
            labels=pol.additive_labels, inputs=data.inputs)
        if result.get("twin_check"):  # the simulated combination scores the reference too
            ref = twin_check(pred["additive_delta"], truth, label=label)
            tm = result["twin_check"]["metrics"]
            result["additive"]["twin_metrics"] = {"prediction": tm, "additive": ref["metrics"]}
            kk = result["twin_check"]["k"]
            pd_key = f"pearson_delta_top{kk}"
            result["additive"]["twin_sentence"] = (
                f"Against the twin's simulation of {label}: the prediction has MSE "
                f"{tm['mse']:.4f} and Pearson-delta top-{kk} {tm[pd_key]:.2f}, the additive "
                f"reference MSE {ref['metrics']['mse']:.4f} and Pearson-delta top-{kk} "
                f"{ref['metrics'][pd_key]:.2f} (closer by MSE: "
                + ("the prediction" if tm["mse"] < ref["metrics"]["mse"] else
                   "the additive reference" if tm["mse"] > ref["metrics"]["mse"] else "neither")
                + ").")
    own = {t: float(pred.loc[t, "delta"]) for t in pert["targets"] if t in pred.index}
    result["headline"] = headline(result, pol, label, kind=pert["kind"], targets=own)
    if stim:
        _stimulation_result(result, pol, data, label)
    result["goal_note"] = data.goal_note
    files = {"data": data.path, "integration": integ.path or "-",
             "network": net.edges_path or "-",
             "policy": ", ".join(f for f in (pol.policy_path, pol.training_log,
                                             pol.prediction_path) if f),
             "fallback": pol.prediction_path or "-",
             "stimulation": pol.prediction_path or "-"}
    agents = agent_rows(state.get("log", []), pol, files, twin=data.truth_path is not None)
    result["agents"] = agents
    return result


def agent_rows(log: list[dict], pol: PolicySummary, files: dict[str, str], *,
               twin: bool = False) -> list[dict]:
    """The "which agent produced what" table, from what each agent did in this run.

    Parameters
    ----------
    log
        The run's agent records (``agent``, ``status``, ``summary``).
    pol
        The policy summary: whether a policy file was written, whether candidates were validated
        and how many proposals were made.
    files
        Agent name → the files it wrote (comma-separated, ``"-"`` for none).
    twin
        Whether the data agent simulated the cells (the twin) rather than loading them.

    Returns
    -------
    list[dict]
        ``agent``, ``status``, ``produced`` per record, the report last. A skipped or failed agent
        produced nothing (its reason is given); the policy row names a trained policy and proposals
        only when the run has them.
    """
    fell_back = any(r["agent"] == "fallback" for r in log)
    rows = []
    for rec in log:
        name, status = rec["agent"], rec["status"]
        if name == "report":  # an earlier write of this report: listed once, below
            continue
        if status in ("skipped", "failed"):
            produced = f"nothing — {rec['summary']}"
        elif name in ("policy", "fallback"):
            made = ["trained TRPO→PPO policy" if pol.policy_path and name == "policy" else "",
                    "candidates validated" if pol.validation and name == "policy" else "",
                    ("its own prediction (not the answer: see fallback)" if fell_back else
                     "prediction") if name == "policy" else
                    "a baseline's prediction (kept for reference: no detectable effect)"
                    if status == "no_effect" else "a baseline's prediction (the answer)",
                    "proposals" if pol.proposals and (name == "fallback" or not fell_back) else ""]
            if name == "policy" and not pol.policy_path:
                made.insert(0, "no TRPO→PPO policy trained")
            produced = (", ".join(m for m in made if m) + f" ({files.get(name, '-')})"
                        + (f" — {rec['summary']}" if status in ("not_validated", "unchecked",
                                                                 "no_effect") else ""))
        else:
            produced = _PRODUCED.get(name, "").format(files=files.get(name, "-"),
                                                      made="simulated" if twin else "loaded")
            if name == "integration" and rec.get("summary"):  # which modalities, how many cells
                produced = f"{rec['summary']} ({files.get(name, '-')})"
        rows.append({"agent": name, "status": status, "produced": produced})
    rows.append({"agent": "report", "status": "done", "produced": _PRODUCED["report"]})
    return rows


def _neighbourhood_lead(edges: list[dict], targets: Iterable[str], genes: Iterable[str]) -> str:
    """The sentence before the network's edge table: ``"The strongest touching X:"`` when edges
    touch the goal's targets, else why none does (a target not among the genes worked on has no
    edge at all)."""
    targets = list(targets)
    if edges:
        return f"The strongest touching {'+'.join(targets)}:"
    known = set(map(str, genes))
    absent = [t for t in targets if t not in known]
    if absent:
        return (f"No edge touches {', '.join(absent)}: {'it is' if len(absent) == 1 else 'they are'} "
                "not among the genes measured and worked on.")
    return f"No inferred edge touches {'+'.join(targets)}."


def unmeasured_targets_note(targets: Iterable[str], genes: Iterable[str], kind: str) -> str:
    """A note naming the goal's targets whose RNA is not among the genes worked on: the
    prediction cannot show their own change, and no target check is made for them.

    Parameters
    ----------
    targets
        The goal's target genes.
    genes
        The genes the prediction covers.
    kind
        The goal's perturbation kind (for the text).

    Returns
    -------
    str
        The note, or ``""`` when every target is among ``genes``.
    """
    known = set(map(str, genes))
    absent = [str(t) for t in targets if str(t) not in known]
    if not absent:
        return ""
    one = len(absent) == 1
    return (f"{', '.join(absent)} {'is' if one else 'are'} not among the genes measured and "
            f"worked on: the prediction cannot show {'its' if one else 'their'} own change under "
            f"the {kind}, and no direct-target check is made for {'it' if one else 'them'}.")


def stimulation_held_out(pol: PolicySummary, label: str) -> str:
    """The held-out sentence of a stimulation goal, computed from the groups each prediction was
    fitted on (``pol.stimulation["trained_on"]``)."""
    st = pol.stimulation or {}
    trained = st.get("trained_on", {})
    what = "time point" if st.get("kind") == "time" else "cell type"
    leaked = [g for g, used in trained.items() if g in used]
    if leaked:
        return (f"The treated cells of {', '.join(leaked)} were used to fit their own prediction: "
                "the comparison with them is not a held-out test.")
    if st.get("pooled"):
        return (f"Each of the {len(trained)} cell types was predicted with its own treated cells "
                f"held out (fitted on the other cell types only); the answer for all cells "
                f"composes those predictions, so one cell type's treated cells helped predict the "
                f"others, never itself. Compared with all {pol.held_out_cells} treated cells.")
    (g, used), = trained.items()
    if what == "time point":  # a time course's control cells (time 0) are every time point's
        others = (f"the other time point{'s' if len(used) != 1 else ''} "
                  f"({', '.join(repr(u) for u in used)})")
        return (f"The {pol.held_out_cells} treated cells of time point {g!r} were held out of every "
                f"model: every candidate was fitted on the control cells and the treated cells of "
                f"{others}; the {st.get('control_cells', 0)} control cells, shared by every time "
                f"point, are the input of the prediction. They check the prediction of {label}.")
    return (f"The {pol.held_out_cells} treated cells of {what} {g!r} were held out of every "
            f"model: every candidate was fitted on the other {len(used)} {what}s' control and "
            f"treated cells ({', '.join(used)}); {g!r} contributed only its "
            f"{st.get('control_cells', 0)} control cells, the input of the prediction. "
            f"They check the prediction of {label}.")


def stimulation_group_names(pol: PolicySummary) -> list[str]:
    """The validation groups of a stimulation goal named as what they are: ``"B cells"`` for the
    label ``"B STIM"`` (cell types), ``"time point 6h"`` for ``"6h STIM"`` (time points).

    Parameters
    ----------
    pol
        The policy summary: ``validation_labels`` (``"{group} {treatment}"``) and ``stimulation``
        (``treatment``, or for runs that did not record it the groups in ``trained_on``).

    Returns
    -------
    list of str
        One name per validation label, in order; a label matching no group is kept as it is.
    """
    st = pol.stimulation or {}
    treatment = st.get("treatment")
    groups = sorted({str(g) for used in (st.get("trained_on") or {}).values() for g in used}
                    | set(map(str, st.get("targets") or [])), key=len, reverse=True)
    time = st.get("kind") == "time"
    out = []
    for lab in pol.validation_labels:
        if treatment and lab.endswith(f" {treatment}"):
            group = lab[: -len(treatment) - 1]
        else:  # the longest known group the label starts with
            group = next((g for g in groups if lab.startswith(f"{g} ")), None)
        out.append(lab if group is None else
                   f"time point {group}" if time else f"{group} cells")
    return out


def _hyper_parameters(value: object) -> str:
    """Plain words for a stimulation predictor's chosen hyper-parameter(s): one value, or — for
    an average of candidates — ``(name, value)`` pairs, written ``"name value, …"`` (never a Python
    tuple's repr); the run stores them as that repr, which is read back first."""
    import ast

    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return f"hyper-parameter {value}"

    def num(v: object) -> str:
        if isinstance(v, (list, tuple)):
            return "(" + ", ".join(num(x) for x in v) + ")"
        return f"{v:g}" if isinstance(v, (int, float)) else str(v)

    pairs = (isinstance(value, (list, tuple)) and value
             and all(isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[0], str)
                     for p in value))
    if pairs:
        return "hyper-parameters " + ", ".join(f"{name} {num(v)}" for name, v in value)
    return f"hyper-parameter {num(value)}"


def _stimulation_result(result: dict, pol: PolicySummary, data: DataSummary, label: str) -> None:
    """Reword the report of a stimulation goal (groups, not perturbations) from its facts."""
    st = pol.stimulation
    what = "time point" if st.get("kind") == "time" else "cell type"
    n_val = len(pol.validation_labels)
    result["goal"] = {**result["goal"], "label": label}
    result["network"] = None
    result["proposals"] = []
    result["proposals_note"] = "Treatment goals propose no next perturbation."
    result["reading"] = st.get("reading", "")
    result["per_group"] = st.get("per_group") or []
    params = st.get("params") or {}
    result["method"]["description"] = (
        f"{label}: each cell type's treated profile predicted from the other cell types' "
        "responses (inner leave-one-cell-type-out validation per cell type), composed as the "
        f"treated cells are ({pol.status})") if st.get("pooled") else (
        f"{label}: predicted from the other {what}"
        + ("s' responses" if len(next(iter(st.get("trained_on", {}).values()), [])) != 1
           else "'s response")
        + (f" ({_hyper_parameters(params[pol.method])})" if pol.method in params else "")
        + (f"; candidates validated leaving each of {n_val} other {what}s out in turn"
           if n_val else "; not validated (too few other groups)") + f" ({pol.status})")
    if st.get("pooled"):
        result["validation"]["description"] = (
            "Each cell type has its own inner validation (leaving each of the other cell types out "
            "in turn); the per-cell-type table below compares each prediction with that cell "
            "type's observed response.")
    elif pol.validation:
        result["validation"]["description"] = (
            f"Inner validation over the training {what}s only: each candidate predicted each of "
            f"{n_val} {what}s, held out in turn ({', '.join(stimulation_group_names(pol))}), "
            "from the remaining ones; mean "
            "over them of the MSE of the predicted response (all genes) and the Pearson-delta over "
            "each one's top-20 changed genes. 'no change' is a reference; the mean shifts are the "
            "baselines a learned candidate must beat (same rule as the policy: ≥ 5 % lower MSE, "
            "paired improvement > 1 s.e., Pearson-delta not worse).")
    # the generic held-out sentence counts perturbations; a stimulation goal's is per group
    notes = [n for n in result["notes"] if not n.startswith(("The goal's perturbation (",
                                                             "The goal's cells (",
                                                             "The data hold no cells of"))]
    result["notes"] = [stimulation_held_out(pol, label), *notes]
    if st.get("not_predicted"):
        result["notes"].append(f"Not predicted (no control cells or no treated cells): "
                               f"{', '.join(st['not_predicted'])}; their cells are left out.")
    if result.get("evaluation"):
        result["evaluation"]["description"] = (
            f"The observed change of {label} ({pol.held_out_cells} treated vs "
            f"{st.get('control_cells', 0)} control cells) against the prediction; the prediction "
            "has the sign of " + f"{int(pol.evaluation['same_sign_topk'])} of the "
            f"{int(pol.evaluation['k'])} most changed genes right. " + stimulation_held_out(pol, label))
        base = st.get("candidates_on_goal") or {}
        if base:
            result["evaluation"]["candidates"] = base
    if st.get("pooled"):
        why = ("each cell type's predictor was chosen by inner validation over the other cell "
               "types only (see the per-cell-type table)")
    elif pol.status == "validated":
        why = (f"it beat the mean-shift baselines leaving each of {n_val} other {what}s out in turn, "
               "by more than the validation noise")
    elif pol.status == "fallback":
        why = (f"no learned candidate beat the best mean shift leaving each of {n_val} other "
               f"{what}s out in turn, and this baseline had the lowest error there")
    else:  # the decision itself: "<method> answers, not validated: …"
        why = pol.reason.rstrip(".").removeprefix(f"{pol.method} answers, ")
        result["headline"][-1] = f"**Answered by:** {pol.method}, {why}."
        return
    result["headline"][-1] = f"**Answered by:** {pol.method}, because {why}."


def report_agent(state: RunState) -> dict:
    """Write ``report.md``, ``report.html`` (self-contained), ``report.json`` and the PNG plots.

    When the run stopped early (``stop_reason``) the report explains why instead.

    Returns
    -------
    dict
        State update: ``report`` (a :class:`ReportSummary` dump, file names relative to the run
        folder) and a log record.
    """
    from scagents.report import write_report

    out = Path(state["out_dir"])
    if state.get("stop_reason") or not state.get("policy") or not state["policy"].get(
            "prediction_path"):
        reason = state.get("stop_reason") or "no prediction was made"
        text = (f"# scagents report: stopped\n\n**Goal:** {state['options']['goal']}\n\n"
                f"The run stopped: {reason}\n")
        write_text(out / "report.md", text)
        s = ReportSummary(status="done", files={"markdown": "report.md"})
    else:
        paths = write_report(build_result(state), out, html=True)
        s = ReportSummary(status="done", files={k: Path(v).name for k, v in paths.items()})
    rec = AgentRecord(agent="report", status="done", summary=f"wrote {', '.join(s.files.values())}",
                      figures={"files": len(s.files)})
    return {"report": s.model_dump(), "log": [rec.model_dump()]}
