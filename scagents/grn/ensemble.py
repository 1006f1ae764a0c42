"""Tree-based edge scores and the rank average of several edge rankings (``infer_network(method="ensemble")``).

DREAM5 (Marbach et al. 2012) found that the *community* ranking — the average of the edge ranks of
several methods — is more robust than any single method across networks. ``method="ensemble"``
averages the percentile ranks of the ridge coefficients (linear, signed) with those of an
extremely-randomised-trees importance per target (GENIE3's idea, Huynh-Thu et al. 2010, with
``ExtraTreesRegressor`` instead of random forests: one random split per feature, so about half the
time for a similar ranking). Trees see thresholds and AND/OR interactions that a linear fit misses;
the regression gives the sign.

The trees are fitted only while the problem is small: ``n_genes x min(n_cells, TREE_MAX_CELLS)``
at most :data:`TREE_BUDGET` (e.g. 150 genes x 2,000 cells or 300 genes x 1,000 cells); beyond it
``method="ensemble"`` is plain ridge and ``uns["grn"]["params"]["trees"]`` says so. Cells beyond
:data:`TREE_MAX_CELLS` are subsampled (seeded) for the trees. The size rule does not depend on the
tree options below (their cost grows linearly with ``n_trees``, so the budget caps it as well).

Options (``infer_network(trees=..., n_trees=..., tree_weight=...)``): ``trees="extra"``
(``ExtraTreesRegressor``), ``"rf"`` (``RandomForestRegressor(max_features="sqrt")``, GENIE3's
regressor) or ``"both"`` (both forests, their per-target importances averaged; the default since
session 8); ``n_trees`` per
target (and per forest with ``"both"``, which costs about both forests together: 150 genes x
2,000 cells, the size rule's edge, took 156 s vs 85 s for extra trees alone on a loaded 2-core machine); ``tree_weight`` the weight of the tree ranks against the ridge
ranks' 1 in the average (``float("inf")`` = tree ranks alone, signed by the ridge coefficients).
``infer_network``'s defaults are whatever ``benchmarks/grn_select.py`` chose on its training networks.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from scagents.grn.interventional import _percentile

__all__ = ["TREE_BUDGET", "TREE_MAX_CELLS", "N_TREES", "TREE_KINDS", "rank_average", "tree_importance",
           "trees_fit"]

N_TREES = 50
"""Trees per target (default)."""
TREE_KINDS: tuple[str, ...] = ("extra", "rf", "both")
"""Tree regressors: extremely randomised trees, GENIE3's random forest (both ``max_features="sqrt"``), or
both (``n_trees`` of each, their importances averaged)."""
TREE_MAX_CELLS = 2000
"""Cells the trees are fitted on at most (a seeded random subsample beyond)."""
TREE_BUDGET = 300_000
"""``n_genes x min(n_cells, TREE_MAX_CELLS)`` up to which ``method="ensemble"`` fits the trees."""


def trees_fit(n_cells: int, n_genes: int) -> bool:
    """Whether the size rule lets ``method="ensemble"`` fit the trees (see the module docstring; the
    same rule for every tree kind and count)."""
    return n_genes * min(n_cells, TREE_MAX_CELLS) <= TREE_BUDGET


def tree_importance(X, reg_idx: np.ndarray, *, labels: np.ndarray | None = None, genes=None,
                    n_trees: int = N_TREES, max_cells: int = TREE_MAX_CELLS, seed: int = 0,
                    allowed: np.ndarray | None = None, kind: str = "extra",
                    n_jobs: int | None = None) -> np.ndarray:
    """Tree importance (extra trees or random forest) of every regulator for every target, regulators x genes.

    Parameters
    ----------
    X
        Cells x genes expression (dense or sparse).
    reg_idx
        Column indices of the regulators (the features); a target never uses itself.
    labels
        Optional per-cell perturbation labels (``obs["target_genes"]``): target ``j``'s trees leave
        out the cells in which ``genes[j]`` itself was perturbed — its value there is set by the
        intervention, not by its regulators (the invariance principle of interventional inference).
    genes
        Gene names (columns of ``X``); needed with ``labels``.
    n_trees
        Trees per target (``max_features="sqrt"``).
    max_cells
        At most this many cells (a seeded random subsample).
    seed
        Random seed of the subsample and of the trees.
    allowed
        Optional regulators x genes mask; a target with no allowed regulator gets none.
    kind
        ``"extra"`` (``ExtraTreesRegressor``), ``"rf"`` (``RandomForestRegressor``, bootstrap
        samples and the best split per feature, as GENIE3) or ``"both"`` (``n_trees`` of each, the
        mean of their importances).
    n_jobs
        Threads the targets are fitted on (each target's forests are independent); ``None`` = every
        CPU this process may use. The importances do not depend on it.

    Returns
    -------
    ndarray
        Regulators x genes mean decrease in impurity (each target's importances sum to 1 over its
        regulators, 0 for constant targets).

    Raises
    ------
    ValueError
        Unknown ``kind`` or ``n_trees < 1``.
    """
    from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor

    if kind not in TREE_KINDS:
        raise ValueError(f"Unknown tree kind {kind!r}; use one of {', '.join(TREE_KINDS)}.")
    if int(n_trees) < 1:
        raise ValueError(f"n_trees must be >= 1, got {n_trees}.")
    forests = {"extra": (ExtraTreesRegressor,), "rf": (RandomForestRegressor,),
               "both": (ExtraTreesRegressor, RandomForestRegressor)}[kind]

    if n_jobs is None:
        n_jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    reg_idx = np.asarray(reg_idx)
    n, g = X.shape
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, max_cells, replace=False)) if n > max_cells else np.arange(n)
    Xd = np.asarray(X[rows].toarray() if sp.issparse(X) else X[rows], dtype=np.float32)
    lab = None if labels is None else np.asarray(labels, dtype=str)[rows]
    W = np.zeros((len(reg_idx), g))

    def fit_target(j: int) -> None:
        use = reg_idx != j
        if allowed is not None:
            use &= allowed[:, j]
        if not use.any():
            return
        keep = slice(None) if lab is None else lab != str(genes[j])
        y = Xd[keep, j]
        if y.size < 3 or np.ptp(y) == 0:
            return
        Xj = Xd[keep][:, reg_idx[use]]
        W[use, j] = np.mean([Forest(n_estimators=int(n_trees), max_features="sqrt", random_state=seed,
                                    n_jobs=1).fit(Xj, y).feature_importances_ for Forest in forests], axis=0)

    # targets are independent: threads over them (the trees' Cython code releases the GIL)
    with ThreadPoolExecutor(max_workers=max(1, int(n_jobs))) as pool:
        list(pool.map(fit_target, range(g)))
    return W


def rank_average(B: np.ndarray, *scores: np.ndarray, weight: float = 1.0) -> np.ndarray:
    """Signed mean percentile rank of ``|B|`` and of every score matrix (DREAM5's community ranking).

    Parameters
    ----------
    B
        Signed regression coefficients (regulators x genes); gives the sign, and ``B == 0`` (masked
        or constant) stays 0.
    scores
        Non-negative scores of the same shape (e.g. :func:`tree_importance`).
    weight
        Weight of each score matrix's ranks against the weight 1 of ``|B|``'s ranks;
        ``float("inf")`` leaves ``|B|`` out (the scores' ranks alone, signed by ``B``).

    Returns
    -------
    ndarray
        ``sign(B) * (pct(|B|) + weight * sum(pct(s_i))) / (1 + weight * len(scores))`` in [-1, 1].

    Raises
    ------
    ValueError
        ``weight`` negative or NaN, or infinite without scores.
    """
    if not weight >= 0:
        raise ValueError(f"weight must be >= 0, got {weight}.")
    pct = [_percentile(np.asarray(s, dtype=float)) for s in scores]
    if np.isinf(weight):
        if not pct:
            raise ValueError("weight=inf needs at least one score matrix.")
        return np.sign(B) * np.mean(pct, axis=0)
    total = _percentile(np.abs(B)) + weight * (np.sum(pct, axis=0) if pct else 0.0)
    return np.sign(B) * total / (1.0 + weight * len(pct))
