"""Every metric scagents reports, defined once.

Four families:

* **Prediction of a perturbation's effect** — always on the *change from control* (delta), never on
  expression levels (the control profile alone already correlates ~0.998 with every perturbed
  profile; see ``EVALUATION.md``): :func:`mse`, :func:`rmse`, :func:`mae`, :func:`r2`,
  :func:`pearson`, :func:`pearson_delta_topk`, :func:`direction_metrics` and the bundle
  :func:`prediction_report`.
* **Network recovery** (BEELINE, Pratapa et al. 2020, Nat Methods): :func:`auprc_ratio`,
  :func:`early_precision_ratio`.
* **Trajectories and cell populations**: :func:`dtw_distance`, :func:`wasserstein_distance`.
* **Closed-loop design / bandits**: :func:`hit_ratio`.

All functions are pure (no state, no randomness except the seeded subsampling of
:func:`wasserstein_distance`) and take NumPy arrays or pandas objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_fscore_support

from scagents.errors import DataError

__all__ = [
    "mse",
    "rmse",
    "mae",
    "r2",
    "pearson",
    "pearson_delta_topk",
    "direction_labels",
    "direction_metrics",
    "prediction_report",
    "auprc_ratio",
    "early_precision_ratio",
    "dtw_distance",
    "wasserstein_distance",
    "hit_ratio",
    "DEFAULT_DIRECTION_EPS",
]

#: Default threshold (in log1p-normalised expression units) below which a change counts as "unchanged".
DEFAULT_DIRECTION_EPS: float = 0.05


# --------------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------------
def _pair(pred: np.ndarray, true: np.ndarray, *,
          what: str = "pred and true") -> tuple[np.ndarray, np.ndarray]:
    """Two finite 1-D float arrays of the same non-zero length."""
    p = np.asarray(pred, dtype=float)
    t = np.asarray(true, dtype=float)
    if p.ndim != 1 or t.ndim != 1:
        raise DataError(f"{what} must be 1-D arrays (one value per gene), got shapes {p.shape} and "
                        f"{t.shape}; pass one perturbation at a time or flatten with .ravel().")
    if p.shape != t.shape:
        raise DataError(f"{what} have different lengths ({p.size} vs {t.size}); align both on the "
                        "same genes first (e.g. pred.reindex(true.index)).")
    if p.size == 0:
        raise DataError(f"{what} are empty; a metric needs at least one gene.")
    if not (np.isfinite(p).all() and np.isfinite(t).all()):
        raise DataError(f"{what} contain NaN or infinite values; drop or fill them before scoring.")
    return p, t


# --------------------------------------------------------------------------------------------------
# regression metrics on deltas
# --------------------------------------------------------------------------------------------------
def mse(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean squared error ``mean((pred - true)**2)``.

    Parameters
    ----------
    pred, true
        1-D arrays of the same length (predicted and observed change from control, per gene).

    Returns
    -------
    float
    """
    p, t = _pair(pred, true)
    return float(np.mean((p - t) ** 2))


def rmse(pred: np.ndarray, true: np.ndarray) -> float:
    """Root mean squared error ``sqrt(mse(pred, true))``.

    Parameters
    ----------
    pred, true
        1-D arrays of the same length.

    Returns
    -------
    float
    """
    return float(np.sqrt(mse(pred, true)))


def mae(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean absolute error ``mean(|pred - true|)``.

    Parameters
    ----------
    pred, true
        1-D arrays of the same length.

    Returns
    -------
    float
    """
    p, t = _pair(pred, true)
    return float(np.mean(np.abs(p - t)))


def r2(pred: np.ndarray, true: np.ndarray) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot`` of ``pred`` as a prediction of ``true``.

    ``SS_res = sum((true - pred)**2)`` and ``SS_tot = sum((true - mean(true))**2)`` (the
    scikit-learn definition; it is not symmetric and can be negative). Predicting zero change for
    an observed delta ``true`` gives ``1 - sum(true**2) / SS_tot`` — usually slightly negative.

    Parameters
    ----------
    pred, true
        1-D arrays of the same length.

    Returns
    -------
    float
        ``nan`` when ``true`` is constant (``SS_tot = 0``): R² is undefined there.
    """
    p, t = _pair(pred, true)
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    if np.ptp(t) == 0 or ss_tot == 0.0:
        return float("nan")
    return float(1.0 - np.sum((t - p) ** 2) / ss_tot)


def pearson(pred: np.ndarray, true: np.ndarray) -> float:
    """Pearson correlation coefficient of two 1-D arrays.

    Parameters
    ----------
    pred, true
        1-D arrays of the same length (at least 2 values).

    Returns
    -------
    float
        In [-1, 1]; ``nan`` (without a warning) when either array is constant or has fewer than 2
        values — a constant prediction such as "no change" has no defined correlation. Aggregate
        with ``np.nanmean`` and report how many values were ``nan``.
    """
    p, t = _pair(pred, true)
    if p.size < 2 or np.ptp(p) == 0 or np.ptp(t) == 0:
        return float("nan")
    pc = p - p.mean()
    tc = t - t.mean()
    denom = float(np.sqrt(np.sum(pc**2) * np.sum(tc**2)))
    if denom == 0.0:  # underflow of tiny but unequal values
        return float("nan")
    return float(np.clip(np.sum(pc * tc) / denom, -1.0, 1.0))


def top_de_indices(true_delta: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` genes with the largest ``|true_delta|`` (ties: lower index first).

    Parameters
    ----------
    true_delta
        1-D observed change from control.
    k
        Number of genes; capped at the number of genes.

    Returns
    -------
    numpy.ndarray
        Integer indices, largest ``|delta|`` first.
    """
    t = np.asarray(true_delta, dtype=float)
    if k < 1:
        raise DataError(f"k must be a positive number of genes, got {k}.")
    order = np.argsort(-np.abs(t), kind="stable")
    return order[: min(k, t.size)]


def pearson_delta_topk(pred_delta: np.ndarray, true_delta: np.ndarray, *, k: int = 20,
                       de_genes: Sequence[int] | np.ndarray | None = None) -> float:
    """Pearson correlation of predicted vs observed change over the top differentially expressed genes.

    The headline metric of ``EVALUATION.md``: for one perturbation, take the ``k`` genes with the
    largest observed ``|delta|`` (or the genes given in ``de_genes``) and correlate predicted and
    observed deltas on those genes only.

    Parameters
    ----------
    pred_delta, true_delta
        1-D predicted and observed change from control, same gene order.
    k
        Number of top DE genes (by ``|true_delta|``; ties broken by gene order). Capped at the
        number of genes. Ignored when ``de_genes`` is given.
    de_genes
        Integer positions, or a boolean mask, of the DE genes to use instead of the top ``k``.

    Returns
    -------
    float
        ``nan`` when the prediction (or the observation) is constant on those genes — e.g. the
        no-change baseline.
    """
    p, t = _pair(pred_delta, true_delta, what="pred_delta and true_delta")
    if de_genes is None:
        idx = top_de_indices(t, k)
    else:
        idx = np.asarray(de_genes)
        if idx.dtype == bool:
            if idx.shape != t.shape:
                raise DataError(f"de_genes as a boolean mask must have one entry per gene "
                                f"({t.size}), got {idx.size}.")
            idx = np.flatnonzero(idx)
        elif not np.issubdtype(idx.dtype, np.integer):
            raise DataError("de_genes must be integer positions or a boolean mask; map gene names "
                            "to positions first, e.g. genes.get_indexer(names).")
        if idx.size == 0 or idx.min() < 0 or idx.max() >= t.size:
            raise DataError(f"de_genes must be non-empty positions in [0, {t.size}).")
    return pearson(p[idx], t[idx])


# --------------------------------------------------------------------------------------------------
# direction of change
# --------------------------------------------------------------------------------------------------
def direction_labels(delta: np.ndarray, *, eps: float = DEFAULT_DIRECTION_EPS) -> np.ndarray:
    """Three-class direction of change: ``+1`` if ``delta > eps``, ``-1`` if ``delta < -eps``, else 0.

    Parameters
    ----------
    delta
        Change from control.
    eps
        Non-negative threshold; ``|delta| <= eps`` counts as unchanged.

    Returns
    -------
    numpy.ndarray
        Integer labels in ``{-1, 0, 1}``.
    """
    if eps < 0:
        raise DataError(f"eps must be non-negative, got {eps}.")
    d = np.asarray(delta, dtype=float)
    return np.where(d > eps, 1, np.where(d < -eps, -1, 0)).astype(int)


def _average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision, ``nan`` when only one class is present."""
    if labels.all() or not labels.any():
        return float("nan")
    return float(average_precision_score(labels, scores))


def direction_metrics(pred_delta: np.ndarray, true_delta: np.ndarray, *,
                      eps: float = DEFAULT_DIRECTION_EPS,
                      pred_eps: float | None = None) -> dict[str, float]:
    """How well the predicted direction of change (up / down / unchanged) matches the observed one.

    Each gene is labelled with :func:`direction_labels`: observed label from ``true_delta`` with
    threshold ``eps``, predicted label from ``pred_delta`` with threshold ``pred_eps`` (default
    ``eps``). Then:

    ``accuracy``
        Fraction of genes whose three-class label (up / down / unchanged) is predicted exactly.
    ``precision``, ``recall``, ``f1``
        Macro averages over the two classes *up* and *down* only (the "unchanged" class is not
        averaged in, so predicting everything unchanged scores 0, not 1/3). Per class ``c``:
        ``precision_c = |pred=c & true=c| / |pred=c|``, ``recall_c = |pred=c & true=c| / |true=c|``,
        ``f1_c`` their harmonic mean; an undefined ratio (empty denominator) counts as 0
        (scikit-learn ``precision_recall_fscore_support(labels=[-1, 1], average="macro",
        zero_division=0)``).
    ``auprc``
        Average precision (scikit-learn ``average_precision_score``, the step-wise area under the
        precision-recall curve) of ranking genes by ``|pred_delta|`` for the class *changed*
        (``|true_delta| > eps``). Random ranking scores the fraction of changed genes.
    ``auprc_up``, ``auprc_down``
        Average precision of the signed score ``pred_delta`` for the class *up*, and of
        ``-pred_delta`` for the class *down*.
    ``n_changed``, ``frac_changed``
        Number and fraction of observed changed genes (the chance level of ``auprc``).

    An AUPRC is ``nan`` when its class is absent or covers every gene.

    Parameters
    ----------
    pred_delta, true_delta
        1-D predicted and observed change from control, same gene order.
    eps
        Threshold on ``|true_delta|`` for a change (log1p-normalised units; default 0.05).
    pred_eps
        Threshold on ``|pred_delta|``; ``None`` uses ``eps``.

    Returns
    -------
    dict[str, float]
        Keys ``accuracy, precision, recall, f1, auprc, auprc_up, auprc_down, n_changed,
        frac_changed``.
    """
    p, t = _pair(pred_delta, true_delta, what="pred_delta and true_delta")
    y_true = direction_labels(t, eps=eps)
    y_pred = direction_labels(p, eps=eps if pred_eps is None else pred_eps)
    prec, rec, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=[-1, 1], average="macro", zero_division=0)
    changed = y_true != 0
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "precision": float(prec),
        "recall": float(rec),
        "f1": float(f1),
        "auprc": _average_precision(changed, np.abs(p)),
        "auprc_up": _average_precision(y_true == 1, p),
        "auprc_down": _average_precision(y_true == -1, -p),
        "n_changed": float(changed.sum()),
        "frac_changed": float(changed.mean()),
    }


def prediction_report(pred_delta: np.ndarray, true_delta: np.ndarray, *, k: int = 20,
                      eps: float = DEFAULT_DIRECTION_EPS) -> dict[str, float]:
    """All delta metrics of one perturbation's prediction in one flat dictionary.

    Parameters
    ----------
    pred_delta, true_delta
        1-D predicted and observed change from control (perturbed mean - control mean), same genes.
    k
        Number of top DE genes for :func:`pearson_delta_topk`.
    eps
        Direction-of-change threshold for :func:`direction_metrics`.

    Returns
    -------
    dict[str, float]
        ``mse, rmse, mae, r2, pearson`` (all genes), ``pearson_delta_topk`` (top ``k`` DE genes),
        and the :func:`direction_metrics` keys prefixed with ``direction_`` (``direction_accuracy``,
        ``direction_precision``, ``direction_recall``, ``direction_f1``, ``direction_auprc``,
        ``direction_auprc_up``, ``direction_auprc_down``, ``direction_n_changed``,
        ``direction_frac_changed``).
    """
    p, t = _pair(pred_delta, true_delta, what="pred_delta and true_delta")
    out = {
        "mse": mse(p, t),
        "rmse": rmse(p, t),
        "mae": mae(p, t),
        "r2": r2(p, t),
        "pearson": pearson(p, t),
        "pearson_delta_topk": pearson_delta_topk(p, t, k=k),
    }
    out.update({f"direction_{key}": v for key, v in direction_metrics(p, t, eps=eps).items()})
    return out


# --------------------------------------------------------------------------------------------------
# network recovery (BEELINE)
# --------------------------------------------------------------------------------------------------
def _edge_scores(edges_pred: pd.DataFrame, edges_true: pd.DataFrame, genes: Sequence[str] | None,
                 directed: bool, exclude_self: bool) -> tuple[np.ndarray, np.ndarray]:
    """Scores ``|weight|`` and truth labels of every possible edge among ``genes`` (flat arrays)."""
    for name, df, cols in (("edges_pred", edges_pred, ("source", "target", "weight")),
                           ("edges_true", edges_true, ("source", "target"))):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise DataError(f"{name} lacks column(s) {missing}; it needs {list(cols)} "
                            f"(found {list(df.columns)}).")
    if genes is None:
        genes = pd.unique(pd.concat([edges_true["source"], edges_true["target"],
                                     edges_pred["source"], edges_pred["target"]]).astype(str))
    gene_index = pd.Index([str(g) for g in genes])
    if gene_index.has_duplicates:
        raise DataError("genes contains duplicate names; pass each gene once.")
    n = len(gene_index)
    if n < 2:
        raise DataError(f"Network metrics need at least 2 genes, got {n}.")

    def flat(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        s = gene_index.get_indexer(df["source"].astype(str))
        t = gene_index.get_indexer(df["target"].astype(str))
        keep = (s >= 0) & (t >= 0)
        s, t = s[keep], t[keep]
        if not directed:
            s, t = np.minimum(s, t), np.maximum(s, t)
        return s * n + t, keep

    # the possible edges: ordered pairs (directed) or pairs i <= j (undirected)
    ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    possible = np.ones((n, n), dtype=bool) if directed else ii <= jj
    if exclude_self:
        possible &= ii != jj
    possible = possible.ravel()

    labels = np.zeros(n * n, dtype=bool)
    true_flat, _ = flat(edges_true)
    labels[true_flat] = True

    scores = np.zeros(n * n, dtype=float)
    pred_flat, keep = flat(edges_pred)
    weights = np.abs(pd.to_numeric(edges_pred["weight"], errors="coerce").to_numpy(float)[keep])
    if not np.isfinite(weights).all():
        raise DataError("edges_pred['weight'] contains NaN or non-numeric values.")
    np.maximum.at(scores, pred_flat, weights)  # duplicated (or both-direction) edges: max |weight|
    return scores[possible], labels[possible]


def auprc_ratio(edges_pred: pd.DataFrame, edges_true: pd.DataFrame, *,
                genes: Sequence[str] | None = None, directed: bool = True,
                exclude_self: bool = True) -> float:
    """AUPRC of a predicted network over that of a random predictor (BEELINE's AUPRC ratio).

    Every possible edge among ``genes`` is ranked by ``|weight|`` of the prediction (edges absent
    from ``edges_pred`` score 0, tied at the bottom); the area under the precision-recall curve is
    computed as average precision (scikit-learn ``average_precision_score``: step-wise, ties
    grouped at one threshold) and divided by the AUPRC of a random ranking, i.e. the *density* of
    the truth: ``n_true_edges / n_possible_edges``. A perfect ranking scores ``1 / density``; a
    random one about 1 (a little above with few true edges: average precision of a random ranking
    is biased upwards when there are few positives).

    Parameters
    ----------
    edges_pred
        Columns ``source``, ``target``, ``weight`` (sign ignored: ``|weight|`` ranks). Duplicated
        edges keep their largest ``|weight|``.
    edges_true
        Columns ``source``, ``target`` (a ``sign`` column, if any, is ignored).
    genes
        The genes among which edges are possible; edges of either table with a gene outside are
        dropped. ``None``: every gene named in either table.
    directed
        ``True``: ``A→B`` and ``B→A`` are different edges (``n(n-1)`` possible edges). ``False``:
        unordered pairs; a pair is true if either direction is, and scores the larger ``|weight|``
        of both directions.
    exclude_self
        Leave self-loops out of the possible edges (and of the truth).

    Returns
    -------
    float

    Raises
    ------
    DataError
        Missing columns, fewer than 2 genes, or no true edge among ``genes``.
    """
    scores, labels = _edge_scores(edges_pred, edges_true, genes, directed, exclude_self)
    n_true = int(labels.sum())
    if n_true == 0:
        raise DataError("edges_true has no edge among the given genes; check the gene names "
                        "(case matters) and the genes argument.")
    density = n_true / labels.size
    if n_true == labels.size:
        return 1.0
    return float(average_precision_score(labels, scores) / density)


def early_precision_ratio(edges_pred: pd.DataFrame, edges_true: pd.DataFrame, *,
                          genes: Sequence[str] | None = None, directed: bool = True,
                          exclude_self: bool = True) -> float:
    """Early precision of a predicted network over that of a random predictor (BEELINE's EPR).

    With ``k`` = the number of true edges among ``genes``, the top-``k`` predicted edges are those
    whose ``|weight|`` is at least the ``k``-th largest (ties at the cut-off are all included, as in
    BEELINE; only edges listed in ``edges_pred`` with a non-zero weight are candidates, so a
    prediction with fewer than ``k`` edges is judged on all of them). Early precision is the
    fraction of those that are true; it is divided by the density of the truth
    (``n_true_edges / n_possible_edges``), the expected precision of a random predictor.

    Parameters
    ----------
    edges_pred, edges_true, genes, directed, exclude_self
        As in :func:`auprc_ratio`.

    Returns
    -------
    float
        0 when no edge is predicted.
    """
    scores, labels = _edge_scores(edges_pred, edges_true, genes, directed, exclude_self)
    n_true = int(labels.sum())
    if n_true == 0:
        raise DataError("edges_true has no edge among the given genes; check the gene names "
                        "(case matters) and the genes argument.")
    density = n_true / labels.size
    predicted = scores > 0
    if not predicted.any():
        return 0.0
    s = scores[predicted]
    cutoff = np.sort(s)[::-1][min(n_true, s.size) - 1]
    top = s >= cutoff
    precision = float(labels[predicted][top].mean())
    return precision / density


# --------------------------------------------------------------------------------------------------
# trajectories and populations
# --------------------------------------------------------------------------------------------------
def dtw_distance(traj_a: np.ndarray, traj_b: np.ndarray) -> float:
    """Dynamic-time-warping distance between two (multivariate) trajectories.

    Uses ``dtaidistance`` (``dtw_ndim.distance``): the square root of the smallest sum, over
    monotone alignments of the time points, of squared Euclidean distances between aligned
    states. Trajectories may have different lengths.

    Parameters
    ----------
    traj_a, traj_b
        Arrays ``n_time × n_genes`` (the same ``n_genes``), or 1-D series.

    Returns
    -------
    float
        0 for identical trajectories (and for time-stretched copies).
    """
    from dtaidistance import dtw, dtw_ndim

    a = np.ascontiguousarray(np.asarray(traj_a, dtype=np.float64))
    b = np.ascontiguousarray(np.asarray(traj_b, dtype=np.float64))
    if a.ndim == 1 and b.ndim == 1:
        if a.size == 0 or b.size == 0:
            raise DataError("dtw_distance needs non-empty trajectories.")
        return float(dtw.distance(a, b, use_c=dtw.try_import_c(verbose=False)))
    a = a.reshape(-1, 1) if a.ndim == 1 else a
    b = b.reshape(-1, 1) if b.ndim == 1 else b
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise DataError(f"Trajectories must be n_time × n_genes arrays with the same genes; got "
                        f"shapes {np.shape(traj_a)} and {np.shape(traj_b)}.")
    if a.shape[0] == 0 or b.shape[0] == 0:
        raise DataError("dtw_distance needs non-empty trajectories.")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise DataError("Trajectories contain NaN or infinite values.")
    return float(dtw_ndim.distance(a, b, use_c=dtw.try_import_c(verbose=False)))


def wasserstein_distance(cells_a: np.ndarray, cells_b: np.ndarray, *, max_points: int = 2000,
                         seed: int = 0) -> float:
    """Wasserstein-1 (earth mover's) distance between two point clouds with uniform weights.

    1-D data (vectors or ``n × 1``) use ``scipy.stats.wasserstein_distance``; higher dimensions
    solve the exact optimal-transport problem with POT (``ot.emd2``) on the Euclidean cost matrix.
    Clouds larger than ``max_points`` are subsampled (without replacement, seeded) first.

    Parameters
    ----------
    cells_a, cells_b
        Arrays ``n_a × d`` and ``n_b × d`` (e.g. cells in an embedding), or 1-D samples.
    max_points
        Largest number of points used from each cloud (the exact solver is quadratic in memory).
    seed
        Seed of the subsampling.

    Returns
    -------
    float
        0 for identical clouds; for 1-D clouds shifted by ``c``, ``|c|``.
    """
    from scipy.stats import wasserstein_distance as wasserstein_1d

    a = np.asarray(cells_a, dtype=np.float64)
    b = np.asarray(cells_b, dtype=np.float64)
    a = a.reshape(-1, 1) if a.ndim == 1 else a
    b = b.reshape(-1, 1) if b.ndim == 1 else b
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise DataError(f"Point clouds must be n × d arrays with the same d; got shapes "
                        f"{np.shape(cells_a)} and {np.shape(cells_b)}.")
    if a.shape[0] == 0 or b.shape[0] == 0:
        raise DataError("wasserstein_distance needs two non-empty point clouds.")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise DataError("Point clouds contain NaN or infinite values.")
    if max_points < 1:
        raise DataError(f"max_points must be positive, got {max_points}.")
    rng = np.random.default_rng(seed)
    if a.shape[0] > max_points:
        a = a[rng.choice(a.shape[0], max_points, replace=False)]
    if b.shape[0] > max_points:
        b = b[rng.choice(b.shape[0], max_points, replace=False)]
    if a.shape[1] == 1:
        return float(wasserstein_1d(a[:, 0], b[:, 0]))
    import ot

    cost = ot.dist(a, b, metric="euclidean")
    wa = np.full(a.shape[0], 1.0 / a.shape[0])
    wb = np.full(b.shape[0], 1.0 / b.shape[0])
    return float(ot.emd2(wa, wb, cost, numItermax=10_000_000))


# --------------------------------------------------------------------------------------------------
# closed loop
# --------------------------------------------------------------------------------------------------
def hit_ratio(picked: Iterable[str], hits: Iterable[str]) -> float:
    """Fraction of the true hits that were picked: ``|picked ∩ hits| / |hits|``.

    Duplicates count once.

    Parameters
    ----------
    picked
        Perturbations (e.g. genes) chosen by a policy.
    hits
        The perturbations that are true hits.

    Returns
    -------
    float
        In [0, 1].

    Raises
    ------
    DataError
        When ``hits`` is empty (the ratio is undefined).
    """
    hit_set = set(hits)
    if not hit_set:
        raise DataError("hit_ratio needs at least one true hit; hits is empty.")
    return len(set(picked) & hit_set) / len(hit_set)
