"""Stimulation responses: predict a held-out cell type's (or time point's) response to a treatment.

The task is scGen's (Lotfollahi et al. 2019): the data hold control and treated cells of several
cell types (Kang 2018: PBMCs, control vs IFN-β, 13 cell types); one cell type's treated cells are
held out, and its response — the change of its mean log-normalised expression from its *own*
control cells — is predicted from its control cells and the other cell types' responses. For a
treatment time course (sci-CAR A549 cells, dexamethasone 0 / 1 / 3 h) a held-out time point's
change from 0 h is predicted from the other time points.

Everything works on per-group mean profiles (:func:`condition_means`: one sparse product, so the
whole transcriptome fits in memory), and the held-out group's treated profile is removed from the
means before any model sees them (:meth:`ConditionMeans.without_treated`).

Candidates (cell types):

- ``no change`` — the reference (predicts no response);
- ``mean shift`` — the mean response of the other cell types (each counted once), and
  ``mean shift, pooled cells`` — treated minus control mean over all their cells: the baselines;
- ``similarity-weighted shift`` — the other cell types' responses weighted by
  ``exp(-d² / (τ · median d²))``, ``d`` the distance between control profiles;
- ``linear on control level`` — per gene, a ridge regression across the other cell types of the
  response on the control expression, ``Δ_g = a_g + b_g (x_g − x̄_g)``;
- ``similarity-weighted linear`` — the same regression with the similarity weights;
- ``ridge on control profiles`` — kernel ridge regression of the response vector on the whole
  control profile (linear kernel) across cell types;
- ``average of the learned candidates`` — the mean of the four predictions above, each with the
  hyper-parameter its own inner validation chose.

Candidates (time points): ``no change``; the baselines ``mean shift`` (mean change of the other
time points) and ``linear in time`` (piecewise-linear interpolation through 0 h and the other time
points, extrapolated from the last two beyond them).

:func:`fit_response` chooses by inner validation over the training groups only (leave one group out
inside training, each hyper-parameter too) with the policy agent's rule
(:func:`scagents.agents.policy.compare_to_baseline`). The learned candidate put to the test is the
one with the highest inner Pearson-delta among those whose inner MSE ties the lowest (within one
paired standard error); it answers only if it
beats the best baseline by ≥ 5 % mean MSE, by more than one standard error paired over the inner
groups, and with a Pearson-delta top-20 that is not worse; otherwise the best baseline answers. The
answer carries split-conformal 80 % intervals calibrated on the inner residuals
(:mod:`scagents.evidence`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["ConditionMeans", "condition_means", "ResponseFit", "fit_response", "CELL_TYPE_CANDIDATES",
           "TIME_CANDIDATES", "REFERENCE", "MEAN_SHIFT", "POOLED_SHIFT", "LINEAR_TIME",
           "MIN_CELLS", "SCORE_KEYS", "score"]

REFERENCE = "no change"
MEAN_SHIFT = "mean shift"
POOLED_SHIFT = "mean shift, pooled cells"
LINEAR_TIME = "linear in time"
MIN_CELLS = 3
"""Fewest control and treated cells a group needs to train or validate on."""
TOP_K = 20


@dataclass(frozen=True)
class ConditionMeans:
    """Mean profiles of control and treated cells per group (cell type, or time point).

    Attributes
    ----------
    groups
        Group names (cell types; for a time course the treated time points).
    genes
        Gene names (columns).
    control, treated
        ``(n_groups, n_genes)`` mean expression of the control / treated cells of each group
        (``NaN`` rows where a group has none). For a time course every control row is the 0 h
        profile.
    n_control, n_treated
        Cells behind each mean.
    hours
        Time course: the hours of each group; ``None`` for cell types.
    """

    groups: tuple[str, ...]
    genes: tuple[str, ...]
    control: np.ndarray
    treated: np.ndarray
    n_control: np.ndarray
    n_treated: np.ndarray
    hours: np.ndarray | None = None

    @property
    def delta(self) -> np.ndarray:
        """``treated − control`` per group."""
        return self.treated - self.control

    def index(self, group: str) -> int:
        return self.groups.index(group)

    def without_treated(self, i: int) -> ConditionMeans:
        """A copy in which group ``i``'s treated cells are unknown (``NaN``, 0 cells): what every
        model of a held-out group is given."""
        treated, n = self.treated.copy(), self.n_treated.copy()
        treated[i] = np.nan
        n[i] = 0
        return replace(self, treated=treated, n_treated=n)

    def usable(self) -> list[int]:
        """Groups with at least :data:`MIN_CELLS` control and treated cells."""
        return [i for i in range(len(self.groups))
                if self.n_control[i] >= MIN_CELLS and self.n_treated[i] >= MIN_CELLS]


def condition_means(x, groups: Sequence[str], condition: Sequence[str], *, control: str,
                    treated: str | None = None, genes: Sequence[str],
                    hours: dict[str, float] | None = None) -> ConditionMeans:
    """Per-group mean profiles of control and treated cells, without densifying ``x``.

    Parameters
    ----------
    x
        Cells × genes expression (log-normalised; sparse or dense).
    groups
        Each cell's group (cell type). Ignored for a time course (``hours`` given).
    condition
        Each cell's condition (the treatment column's level).
    control
        The control level.
    treated
        The treated level (cell types). For a time course (``hours``) every level but
        ``control`` is a group.
    genes
        Gene names of the columns.
    hours
        Time course: level → hours.
    """
    cond = np.asarray(condition, dtype=object).astype(str)
    if hours is not None:
        names = [lv for lv in sorted(hours, key=hours.get) if lv != control]
        cells = [cond == lv for lv in names]
        ctrl = [cond == control] * len(names)
    else:
        grp = np.asarray(groups, dtype=object).astype(str)
        names = sorted(set(grp))
        cells = [(grp == g) & (cond == treated) for g in names]
        ctrl = [(grp == g) & (cond == control) for g in names]
    masks = [*ctrl, *cells]
    ind = sp.csr_matrix(np.stack(masks).astype(np.float64))
    counts = np.asarray(ind.sum(1)).ravel()
    sums = ind @ (x if sp.issparse(x) else np.asarray(x, dtype=np.float64))
    sums = np.asarray(sums.toarray() if sp.issparse(sums) else sums, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts[:, None]
    mean[counts == 0] = np.nan
    k = len(names)
    return ConditionMeans(
        groups=tuple(names), genes=tuple(str(g) for g in genes), control=mean[:k],
        treated=mean[k:], n_control=counts[:k].astype(int), n_treated=counts[k:].astype(int),
        hours=None if hours is None else np.array([hours[n] for n in names], float))


# ------------------------------------------------------------------------------------ candidates
Predictor = Callable[[ConditionMeans, list[int], int, object], np.ndarray]


def _no_change(m: ConditionMeans, train: list[int], target: int, _p) -> np.ndarray:
    return np.zeros(len(m.genes))


def _mean_shift(m: ConditionMeans, train: list[int], target: int, _p) -> np.ndarray:
    return m.delta[train].mean(0)


def _pooled_shift(m: ConditionMeans, train: list[int], target: int, _p) -> np.ndarray:
    nt, nc = m.n_treated[train].astype(float), m.n_control[train].astype(float)
    return nt @ m.treated[train] / nt.sum() - nc @ m.control[train] / nc.sum()


def _weights(m: ConditionMeans, train: list[int], target: int, tau: float) -> np.ndarray:
    d2 = ((m.control[train] - m.control[target]) ** 2).sum(1)
    scale = max(float(np.median(d2)), 1e-12)
    w = np.exp(-(d2 - d2.min()) / (tau * scale))
    return w / w.sum()


def _similarity_shift(m: ConditionMeans, train: list[int], target: int, tau) -> np.ndarray:
    return _weights(m, train, target, tau) @ m.delta[train]


def _weighted_linear(m: ConditionMeans, train: list[int], target: int, w: np.ndarray,
                     lam: float) -> np.ndarray:
    x, y = m.control[train], m.delta[train]
    xm, ym = w @ x, w @ y
    xc = x - xm
    sxx = w @ (xc ** 2)
    b = (w @ (xc * (y - ym))) / (sxx + lam * sxx.mean() + 1e-12)
    return ym + b * (m.control[target] - xm)


def _linear_control(m: ConditionMeans, train: list[int], target: int, lam) -> np.ndarray:
    return _weighted_linear(m, train, target, np.full(len(train), 1.0 / len(train)), lam)


def _similarity_linear(m: ConditionMeans, train: list[int], target: int, p) -> np.ndarray:
    tau, lam = p
    return _weighted_linear(m, train, target, _weights(m, train, target, tau), lam)


def _ridge_profiles(m: ConditionMeans, train: list[int], target: int, lam) -> np.ndarray:
    x, y = m.control[train], m.delta[train]
    xm, ym = x.mean(0), y.mean(0)
    xc = x - xm
    gram = xc @ xc.T
    ridge = lam * np.trace(gram) / len(train) + 1e-12
    alpha = np.linalg.solve(gram + ridge * np.eye(len(train)), y - ym)
    return ym + ((m.control[target] - xm) @ xc.T) @ alpha


def _linear_time(m: ConditionMeans, train: list[int], target: int, _p) -> np.ndarray:
    """Piecewise-linear in time through (0 h, 0) and the training time points; beyond the last
    one, extrapolated from the last two."""
    t = np.concatenate([[0.0], m.hours[train]])
    d = np.vstack([np.zeros(len(m.genes)), m.delta[train]])
    order = np.argsort(t)
    t, d = t[order], d[order]
    h = float(m.hours[target])
    j = int(np.clip(np.searchsorted(t, h) - 1, 0, len(t) - 2))
    frac = (h - t[j]) / (t[j + 1] - t[j])
    return d[j] + frac * (d[j + 1] - d[j])


@dataclass(frozen=True)
class Candidate:
    """A candidate predictor: ``fn(means, train, target, param)`` and its hyper-parameter grid."""

    fn: Predictor
    grid: tuple = (None,)
    role: str = "learned"  # "learned", "baseline", "reference" or "ensemble"
    describe: str = ""


ENSEMBLE = "average of the learned candidates"


def _ensemble_fn(cands: dict[str, Candidate]) -> Predictor:
    def predict(m: ConditionMeans, train: list[int], target: int, params) -> np.ndarray:
        """Mean of the learned candidates' predictions, each with its hyper-parameter
        (``params``: ``((name, param), …)``)."""
        return np.mean([cands[name].fn(m, train, target, p) for name, p in params], axis=0)

    return predict


CELL_TYPE_CANDIDATES: dict[str, Candidate] = {
    REFERENCE: Candidate(_no_change, role="reference", describe="no response"),
    MEAN_SHIFT: Candidate(_mean_shift, role="baseline",
                          describe="mean response of the other cell types"),
    POOLED_SHIFT: Candidate(_pooled_shift, role="baseline",
                            describe="treated minus control mean over the other cell types' cells"),
    "similarity-weighted shift": Candidate(
        _similarity_shift, grid=(0.1, 0.25, 0.5, 1.0),
        describe="other cell types' responses weighted by the similarity of their control profile "
                 "(τ)"),
    "linear on control level": Candidate(
        _linear_control, grid=(0.3, 1.0, 3.0, 10.0),
        describe="per-gene ridge regression of the response on control expression across cell "
                 "types (λ)"),
    "similarity-weighted linear": Candidate(
        _similarity_linear, grid=tuple((t, lam) for t in (0.25, 0.5, 1.0) for lam in (1.0, 3.0, 10.0)),
        describe="the per-gene regression with similarity weights (τ, λ)"),
    "ridge on control profiles": Candidate(
        _ridge_profiles, grid=(0.1, 1.0, 10.0),
        describe="kernel ridge regression of the response on the whole control profile (λ)"),
    ENSEMBLE: Candidate(_no_change, role="ensemble",
                        describe="mean of the learned candidates' predictions, each with the "
                                 "hyper-parameter its inner validation chose"),
}

TIME_CANDIDATES: dict[str, Candidate] = {
    REFERENCE: Candidate(_no_change, role="reference", describe="no response"),
    MEAN_SHIFT: Candidate(_mean_shift, role="baseline",
                          describe="mean change of the other time points"),
    LINEAR_TIME: Candidate(_linear_time, role="baseline",
                           describe="linear interpolation / extrapolation in time through 0 h"),
}


def _floor(m: ConditionMeans, target: int, pred: np.ndarray) -> np.ndarray:
    """A predicted response never takes the mean expression below 0 (log-normalised data)."""
    return np.maximum(pred, -np.nan_to_num(m.control[target]))


SCORE_KEYS: tuple[str, ...] = ("mse", "pearson", "pearson_delta_topk", "direction_accuracy")
"""What :func:`score` returns, per validation group (the columns of the report's validation
table)."""


def score(pred: np.ndarray, obs: np.ndarray, k: int = TOP_K) -> dict[str, float]:
    """MSE, Pearson and direction accuracy (up / down / unchanged at
    :data:`scagents.metrics.DEFAULT_DIRECTION_EPS`) over all genes, and Pearson of the change over
    the ``k`` most changed observed genes (:func:`scagents.metrics.prediction_report`'s
    definitions; a constant prediction has no Pearson: ``nan``)."""
    from scagents.metrics import direction_labels, pearson, pearson_delta_topk

    kk = min(k, len(obs))
    return {"mse": float(np.mean((pred - obs) ** 2)),
            "pearson": float(pearson(pred, obs)),
            "pearson_delta_topk": float(pearson_delta_topk(pred, obs, k=kk)),
            "direction_accuracy": float(np.mean(direction_labels(pred) == direction_labels(obs)))}


@dataclass
class ResponseFit:
    """The answer of :func:`fit_response` for one held-out group.

    ``delta`` is the predicted response; ``method`` / ``param`` the answering candidate;
    ``status`` ``"validated"`` (a learned candidate passed the rule), ``"fallback"`` (a baseline
    answers) or ``"unchecked"`` (too few training groups to validate: the mean shift answers);
    ``validation`` the inner-validation summary per candidate (its best hyper-parameter);
    ``train`` the groups fitted on (never ``target``), ``inner`` the groups validated on;
    ``lower`` / ``upper`` the conformal interval (``None`` without validation).
    """

    target: str
    method: str
    param: object
    status: str
    decision: str
    delta: np.ndarray
    candidates: dict[str, np.ndarray]
    validation: dict[str, dict]
    train: list[str]
    inner: list[str]
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    q: float | None = None
    rows: dict[str, pd.DataFrame] = field(default_factory=dict)
    params: dict[str, object] = field(default_factory=dict)


def _challenger(learned: list[str], rows: dict[str, pd.DataFrame], validation: dict) -> str:
    """The learned candidate put to the baseline test: among those whose inner MSE is within one
    paired standard error of the lowest (a tie on MSE), the highest inner Pearson-delta."""
    best = min(learned, key=lambda k: (validation[k]["mse"], k))
    tied = []
    for k in learned:
        d = (rows[k]["mse"] - rows[best]["mse"].reindex(rows[k].index)).to_numpy(float)
        se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else 0.0
        if d.mean() <= se:
            tied.append(k)
    return max(tied, key=lambda k: (np.nan_to_num(validation[k]["pearson_delta_topk"], nan=-1.0),
                                    -validation[k]["mse"], k))


def fit_response(means: ConditionMeans, target: str, *, candidates: dict[str, Candidate] | None = None,
                 min_improvement: float = 0.05, level: float | None = None) -> ResponseFit:
    """Predict ``target``'s response from the other groups, choosing the predictor by inner
    validation over the other groups only.

    Parameters
    ----------
    means
        :func:`condition_means` of the data; ``target``'s treated profile is removed before
        anything is fitted.
    target
        The held-out group (cell type or time point).
    candidates
        The candidate predictors (default: :data:`TIME_CANDIDATES` for a time course, else
        :data:`CELL_TYPE_CANDIDATES`).
    min_improvement
        Relative mean-MSE improvement over the best baseline a learned candidate needs to answer
        (the policy agent's ``min_improvement``).
    level
        Nominal coverage of the intervals (default :data:`scagents.evidence.INTERVAL_LEVEL`).

    Returns
    -------
    ResponseFit
    """
    from scagents.agents.policy import compare_to_baseline
    from scagents.evidence import (
        INTERVAL_LEVEL,
        conformal_intervals,
        conformal_quantile,
        interval_scale,
    )

    cands = candidates or (TIME_CANDIDATES if means.hours is not None else CELL_TYPE_CANDIDATES)
    t = means.index(target)
    if means.n_control[t] == 0:
        raise ValueError(f"{target!r} has no control cells: its response cannot be predicted.")
    m = means.without_treated(t)  # the held-out group's treated cells are never seen below
    train = [i for i in m.usable() if i != t]
    if not train:
        if len(means.groups) == 1:
            raise ValueError(
                "The cells form one group (no cell-type or time-point column in obs), so there is "
                "no other group to learn the treatment's response from. Add a cell-type column "
                "(e.g. obs['cell_type']) or a time-point column (e.g. obs['time']).")
        raise ValueError(f"No other group has {MIN_CELLS} control and treated cells to learn "
                         f"{str(target)!r}'s response from.")
    members = [k for k, c in cands.items() if c.role == "learned"]
    learned = [k for k, c in cands.items() if c.role in ("learned", "ensemble")]
    baselines = [k for k, c in cands.items() if c.role == "baseline"]
    # inner validation: leave each training group out of the training groups
    inner = train if len(train) >= 3 or (m.hours is not None and len(train) >= 2) else []
    rows: dict[str, pd.DataFrame] = {}
    best_param: dict[str, object] = {}
    cands = dict(cands)
    for name, c in sorted(cands.items(), key=lambda kv: kv[1].role == "ensemble"):
        if c.role == "ensemble":  # after its members: their chosen hyper-parameters
            c = cands[name] = replace(c, fn=_ensemble_fn(cands),
                                      grid=(tuple((k, best_param[k]) for k in members),))
        per_param = {}
        for p in c.grid:
            recs = []
            for i in inner:
                rest = [j for j in train if j != i]
                if m.hours is not None and name == LINEAR_TIME and not rest:
                    rest = []
                pred = _floor(m, i, c.fn(m, rest, i, p)) if rest else np.zeros(len(m.genes))
                recs.append({"group": m.groups[i], **score(pred, m.delta[i])})
            per_param[p] = pd.DataFrame(recs).set_index("group") if recs else pd.DataFrame(
                columns=list(SCORE_KEYS))
        p_best = min(c.grid, key=lambda p: (float(per_param[p]["mse"].mean())
                                            if len(per_param[p]) else 0.0, str(p)))
        best_param[name], rows[name] = p_best, per_param[p_best]
    preds = {name: _floor(m, t, np.asarray(c.fn(m, train, t, best_param[name]), float))
             for name, c in cands.items()}
    validation = {}
    for name, r in rows.items():
        if len(r):
            validation[name] = {
                "mse": round(float(r["mse"].mean()), 6),
                "mse_sd": round(float(r["mse"].std(ddof=1)) if len(r) > 1 else 0.0, 6),
                **{key: round(float(np.nanmean(r[key])) if r[key].notna().any() else np.nan, 6)
                   for key in ("pearson", "pearson_delta_topk", "direction_accuracy")},
                "n": float(len(r))}
    if not inner:
        method = MEAN_SHIFT
        status = "unchecked"
        decision = (f"{MEAN_SHIFT} answers, not validated: {len(train)} other group"
                    f"{'s' if len(train) != 1 else ''} ({', '.join(repr(m.groups[i]) for i in train)})"
                    f" {'are' if len(train) != 1 else 'is'} too few to validate a predictor on "
                    "(leave-one-out inside training needs 3 cell types, or 2 time points); the "
                    "mean shift assumes the least.")
    else:
        best_base = min(baselines, key=lambda k: (validation[k]["mse"], k))
        if learned:
            challenger = _challenger(learned, rows, validation)
            verdict = compare_to_baseline(rows, policy=challenger, baselines=baselines,
                                          min_improvement=min_improvement)
            scores = {k: {"mse": v["mse"], "pearson_delta_topk": v["pearson_delta_topk"]}
                      for k, v in validation.items()}
            why = verdict.describe(challenger, scores, min_improvement)
            method = challenger if verdict.validated else verdict.best_baseline
            status = "validated" if verdict.validated else "fallback"
        else:
            method, status = best_base, "fallback"
            why = f"{best_base} had the lowest inner-validation MSE among the baselines"
        decision = (f"{method} answers. Inner validation, leaving each of the {len(inner)} training "
                    f"groups out in turn (the held-out {target!r} never used): {why}.")
    delta = preds[method]
    out = ResponseFit(target=target, method=method, param=best_param[method], status=status,
                      decision=decision, delta=delta, candidates=preds, validation=validation,
                      train=[m.groups[i] for i in train], inner=[m.groups[i] for i in inner],
                      rows=rows, params=best_param)
    if inner:
        level = INTERVAL_LEVEL if level is None else level
        c = cands[method]
        gene_sd = m.delta[train].std(0) if len(train) > 1 else np.abs(m.delta[train][0])
        res, scales = [], []
        names = list(cands)
        for i in inner:
            rest = [j for j in train if j != i]
            res.append(m.delta[i] - _floor(m, i, c.fn(m, rest, i, best_param[method])))
            scales.append(interval_scale(np.stack([_floor(m, i, cands[k].fn(m, rest, i, best_param[k]))
                                                   for k in names]), gene_sd))
        q = conformal_quantile(np.stack(res), np.stack(scales), level=level)
        scale = interval_scale(np.stack([preds[k] for k in names]), gene_sd)
        out.lower, out.upper = conformal_intervals(delta, scale, q)
        out.q = q
    return out
