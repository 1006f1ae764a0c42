"""A stacked combination of the simple predictors, fitted on training perturbations only.

Network propagation often gets the *direction* of a perturbation's change right but not its size;
the mean of the training effects gets the typical size right but ignores the target; the linear
gene-embedding model sits in between. :func:`fit_combination` learns how much to trust each of
them, gene by gene, from the training perturbations alone::

    from scagents.combination import fit_combination

    predict = fit_combination(train_task)          # mean effect, linear, network propagation
    delta = predict(Perturbation(("STAT1",), kind="knockout"))
    predict.combiner.weights_                       # bases × genes, non-negative

How it is fitted (every choice fixed in advance, nothing tuned on held-out data):

1. **Cross-fitted base predictions.** The training perturbations are split into ``n_folds``
   inner folds (k-fold over perturbations, :meth:`scagents.envs.ResponseTask.split`); each base
   predictor is fitted on the other inner folds and predicts the perturbations of the left-out
   one, so every training perturbation gets out-of-sample predictions ``B[m, p, g]``.
2. **Global non-negative stacking.** One non-negative weight per base predictor,
   ``w = argmin_{w ≥ 0} Σ_{p,g} (y_pg − Σ_m w_m B_mpg)²`` (:func:`scipy.optimize.nnls`): a scale
   calibration of each base (e.g. network propagation's direction shrunk to the observed size)
   and a mix of them; no intercept, so "no change" is the all-zero weight.
3. **Per-gene weights shrunk toward the global ones.** For gene ``g``,
   ``w_g = argmin_{w ≥ 0} Σ_p (y_pg − B_pg w)² + λ_g ‖w − w_global‖²`` with
   ``λ_g = κ · trace(B_gᵀ B_g) / m`` (the prior weighs ``κ`` times an average base's own data).
   A perturbation's *own targets* are left out of steps 2–3 and get their own global weights
   (NNLS over the target entries of the training perturbations): a direct effect on the target
   is unlike the indirect changes the same gene shows when other genes are perturbed, so a
   gene's weights learnt as a non-target must not scale it as a target.
4. **κ by inner validation.** ``κ`` is chosen from :data:`SHRINKAGE_GRID` (``inf`` = global
   weights only) by the lowest mean squared error of steps 2–3 refitted on the other inner folds
   and scored on the left-out fold (the same folds as step 1; the mean over target gene sets,
   each one's labels averaged first, as the policy's validation); ties go to the larger ``κ``
   (simpler model). The weights are then refitted with that ``κ`` on every training
   perturbation, and the base predictors once more on every training perturbation.

A prediction is ``Σ_m w_mg · base_m(p)_g`` (target weights on ``p``'s own targets) with the bases
fitted on all training perturbations.
Held-out labels never enter: the function sees only ``train_task``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from scagents.errors import DataError

__all__ = ["COMBINATION_BASES", "SHRINKAGE_GRID", "StackedCombiner", "crossfit_predictions",
           "fit_combination", "MIN_PERTURBATIONS"]

COMBINATION_BASES: tuple[str, ...] = ("mean_effect", "linear", "network")
"""Base predictors of :func:`fit_combination` by default (methods of
:func:`scagents.evaluation.fit_baseline`)."""
SHRINKAGE_GRID: tuple[float, ...] = (0.1, 1.0, 10.0, float("inf"))
"""Candidate ``κ`` of the per-gene shrinkage (``inf``: one global weight per base)."""
MIN_PERTURBATIONS = 4
"""Fewest training perturbations a combination is fitted on (2 inner folds of ≥ 2)."""

Fitter = Callable[[Any], Callable[[Any], np.ndarray]]


def _nnls(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    if not np.any(a):
        return np.zeros(a.shape[1])
    return nnls(a, b)[0]


class StackedCombiner:
    """Non-negative stacking with per-gene weights shrunk toward global weights.

    Parameters
    ----------
    kappas
        Candidate shrinkage strengths (``inf``: global weights only).
    """

    def __init__(self, kappas: Sequence[float] = SHRINKAGE_GRID) -> None:
        if not kappas or any(k <= 0 or np.isnan(k) for k in kappas):
            raise DataError(f"kappas must be positive numbers (inf allowed), got {list(kappas)}.")
        self.kappas = tuple(float(k) for k in kappas)

    def __repr__(self) -> str:
        return f"StackedCombiner(kappas={self.kappas})"

    @staticmethod
    def _weights(bases: np.ndarray, y: np.ndarray, target: np.ndarray, kappa: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Global (m,), per-gene (m, g) and target (m,) weights for one ``κ``."""
        m, _, g = bases.shape
        off = ~target
        glob = _nnls(bases[:, off].T, y[off])                      # every non-target entry
        on = _nnls(bases[:, target].T, y[target]) if target.any() else glob
        if np.isinf(kappa):
            return glob, np.repeat(glob[:, None], g, axis=1), on
        out = np.empty((m, g))
        for j in range(g):
            a = bases[:, off[:, j], j].T                            # perturbations × bases
            lam = kappa * float(np.sum(a * a)) / m
            if lam <= 0:
                out[:, j] = glob
                continue
            aug = np.vstack([a, np.sqrt(lam) * np.eye(m)])
            rhs = np.concatenate([y[off[:, j], j], np.sqrt(lam) * glob])
            out[:, j] = _nnls(aug, rhs)
        return glob, out, on

    @staticmethod
    def _combine(bases: np.ndarray, w: np.ndarray, on: np.ndarray, target: np.ndarray
                 ) -> np.ndarray:
        """``(m, n, g)`` bases → ``(n, g)``: per-gene weights, target weights on target entries."""
        out = np.einsum("mng,mg->ng", bases, w)
        if target.any():
            out[target] = np.einsum("mk,m->k", bases[:, target], on)
        return out

    def fit(self, bases: np.ndarray, y: np.ndarray, folds: np.ndarray,
            target: np.ndarray | None = None,
            units: np.ndarray | None = None) -> StackedCombiner:
        """Choose ``κ`` by inner validation over ``folds`` and fit the weights on every row.

        Parameters
        ----------
        bases
            ``(m, n, g)`` out-of-sample predictions of ``m`` base predictors for ``n`` training
            perturbations.
        y
            ``(n, g)`` observed deltas of those perturbations.
        folds
            ``(n,)`` inner-fold id of each perturbation (at least two distinct ids).
        target
            ``(n, g)`` true where gene ``g`` is a target of perturbation ``n`` (default none).
            Target entries get their own global weights (a perturbation's direct effect on its
            target is unlike the indirect changes a gene shows as a non-target) and are left out
            of the per-gene and global weights.
        units
            ``(n,)`` unit of each perturbation (:func:`scagents.perturbation.target_group_key`:
            the labels of one target gene set and kind, ``STAT2_P1`` / ``STAT2_P2``, share one;
            they are in one inner fold). The inner-validation MSE of each ``κ`` averages each
            unit's labels first, then the units (:func:`scagents.perturbation.unit_mean`), as the
            policy's validation does; ``None`` or one label per unit: the mean over the labels.

        Returns
        -------
        StackedCombiner
            Fitted: ``kappa_``, ``global_weights_`` (m,), ``weights_`` (m, g),
            ``target_weights_`` (m,) and ``cv_mse_`` (κ → mean inner-validation MSE).
        """
        from scagents.perturbation import unit_mean

        bases, y, folds = np.asarray(bases, float), np.asarray(y, float), np.asarray(folds)
        target = (np.zeros(y.shape, bool) if target is None else np.asarray(target, bool))
        if (bases.ndim != 3 or y.shape != bases.shape[1:] or folds.shape != (y.shape[0],)
                or target.shape != y.shape):
            raise DataError(f"bases must be (m, n, g) with y and target (n, g) and folds (n,); "
                            f"got {bases.shape}, {y.shape}, {target.shape}, {folds.shape}.")
        if not (np.isfinite(bases).all() and np.isfinite(y).all()):
            raise DataError("Base predictions or observed deltas contain NaN or infinite values.")
        if units is not None and len(units) != len(y):
            raise DataError(f"units must have one entry per perturbation ({len(y)}); got {len(units)}.")
        grouped = units is not None and len(set(units)) < len(units)
        ids = np.unique(folds)
        if len(ids) < 2:
            raise DataError("The combination needs at least two inner folds to choose κ.")
        self.cv_mse_: dict[float, float] = {}
        for kappa in self.kappas:
            err, row_err = [], np.empty(len(y))
            for f in ids:
                tr, te = folds != f, folds == f
                _, w, on = self._weights(bases[:, tr], y[tr], target[tr], kappa)
                pred = self._combine(bases[:, te], w, on, target[te])
                err.append(((pred - y[te]) ** 2).mean(axis=1))
                row_err[te] = err[-1]
            self.cv_mse_[kappa] = (unit_mean(row_err, units) if grouped
                                   else float(np.concatenate(err).mean()))
        # lowest inner-validation MSE; ties (to 1e-12 relative) go to the larger κ
        best = min(self.cv_mse_.values())
        self.kappa_ = max(k for k, v in self.cv_mse_.items() if v <= best * (1 + 1e-12))
        self.global_weights_, self.weights_, self.target_weights_ = self._weights(
            bases, y, target, self.kappa_)
        return self

    def predict(self, bases: np.ndarray, target: np.ndarray | None = None) -> np.ndarray:
        """Combine base predictions: ``(m, g)`` → ``(g,)`` or ``(m, n, g)`` → ``(n, g)``;
        ``target`` (``(g,)`` or ``(n, g)``) marks the perturbations' own targets."""
        if not hasattr(self, "weights_"):
            raise DataError("StackedCombiner is not fitted; call .fit(bases, y, folds) first.")
        b = np.asarray(bases, float)
        one = b.ndim == 2
        b = b[:, None] if one else b
        t = (np.zeros(b.shape[1:], bool) if target is None
             else np.asarray(target, bool).reshape(b.shape[1:]))
        out = self._combine(b, self.weights_, self.target_weights_, t)
        return out[0] if one else out


def _fitters(names: Sequence[str], modality: str | None) -> dict[str, Fitter]:
    from scagents.evaluation import fit_baseline

    return {n: (lambda task, n=n: fit_baseline(n, task, modality=modality)) for n in names}


def crossfit_predictions(train_task, fitters: Mapping[str, Fitter], *, n_folds: int = 5,
                         seed: int = 0, modality: str | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Out-of-sample predictions of each base for every training perturbation.

    Parameters
    ----------
    train_task
        The training :class:`~scagents.envs.ResponseTask`.
    fitters
        Base name → ``fit(task) -> predict(perturbation) -> 1-D delta``.
    n_folds
        Inner folds (capped at half the number of target gene sets; folds move every label of a
        target set together, :meth:`~scagents.envs.ResponseTask.split`).
    seed
        Shuffle of the inner folds.
    modality
        Predicted modality (default the gene modality).

    Returns
    -------
    bases, y, folds, target
        ``(m, n, g)`` cross-fitted predictions (bases in ``fitters`` order), ``(n, g)`` observed
        deltas, ``(n,)`` inner-fold ids and the ``(n, g)`` mask of each perturbation's own target
        genes, rows in ``train_task.labels`` order.
    """
    mod = modality or train_task.embedding_modality
    n = train_task.n_perturbations
    k = min(n_folds, train_task.n_groups // 2)  # folds over target gene sets (task.split)
    if n < MIN_PERTURBATIONS or k < 2:
        raise DataError(f"The combination needs at least {MIN_PERTURBATIONS} training "
                        f"perturbations to cross-fit its bases; the task has {n}.")
    y = np.stack([np.asarray(train_task.observed_delta(i, modality=mod), float)
                  for i in range(n)])
    bases = np.zeros((len(fitters), n, y.shape[1]))
    folds = np.full(n, -1)
    for f in range(k):
        inner_train, inner_test = train_task.split(n_folds=k, fold=f, seed=seed)
        rows = [train_task.index(lab) for lab in inner_test.labels]
        folds[rows] = f
        for m, fit in enumerate(fitters.values()):
            predict = fit(inner_train)
            bases[m, rows] = np.stack([np.asarray(predict(p), float)
                                       for p in inner_test.perturbations])
    genes = pd.Index(train_task.features[mod]).astype(str)
    target = np.stack([_target_mask(genes, p) for p in train_task.perturbations])
    return bases, y, folds, target


def _target_mask(genes: pd.Index, p) -> np.ndarray:
    return genes.isin([str(t) for t in p.targets])


def fit_combination(train_task, *, fitters: Mapping[str, Fitter] | None = None,
                    n_folds: int = 5, seed: int = 0, modality: str | None = None,
                    kappas: Sequence[float] = SHRINKAGE_GRID,
                    bases: Sequence[str] | None = None) -> Callable[[Any], np.ndarray]:
    """Fit the stacked combination of base predictors on a training task (see module docs).

    Parameters
    ----------
    train_task
        The training :class:`~scagents.envs.ResponseTask` (for the default network base built
        with ``keep_cells=True``). Only its perturbations are used.
    fitters
        Base name → ``fit(task) -> predict(perturbation)``; default ``bases`` through
        :func:`scagents.evaluation.fit_baseline`.
    n_folds
        Inner folds of the cross-fitting and of the choice of ``κ``.
    seed
        Shuffle of the inner folds.
    modality
        Predicted modality (default the gene modality).
    kappas
        Candidate shrinkage strengths (:data:`SHRINKAGE_GRID`).
    bases
        Methods of :func:`scagents.evaluation.fit_baseline` stacked when ``fitters`` is not
        given (``None``: :data:`COMBINATION_BASES`; the policy agent leaves ``"network"`` out when
        the run skips the network).

    Returns
    -------
    Callable
        ``predict(perturbation) -> 1-D delta``, with attributes ``combiner`` (the fitted
        :class:`StackedCombiner`), ``bases`` (names, in weight order) and ``weights`` (a
        bases × genes :class:`pandas.DataFrame`).

    Raises
    ------
    DataError
        Fewer than :data:`MIN_PERTURBATIONS` training perturbations.
    """
    if fitters is None:
        fitters = _fitters(COMBINATION_BASES if bases is None else bases, modality)
    fitters = dict(fitters)
    if not fitters:
        raise DataError("fit_combination needs at least one base predictor.")
    bases, y, folds, target = crossfit_predictions(train_task, fitters, n_folds=n_folds,
                                                   seed=seed, modality=modality)
    from scagents.perturbation import target_group_key

    units = np.array([target_group_key(p.targets, p.kind) for p in train_task.perturbations])
    combiner = StackedCombiner(kappas).fit(bases, y, folds, target, units=units)
    full = [fit(train_task) for fit in fitters.values()]
    mod = modality or train_task.embedding_modality
    genes = pd.Index(train_task.features[mod]).astype(str)

    def predict(p) -> np.ndarray:
        return combiner.predict(np.stack([np.asarray(f(p), float) for f in full]),
                                _target_mask(genes, p))

    predict.combiner = combiner                                        # type: ignore[attr-defined]
    predict.bases = list(fitters)                                      # type: ignore[attr-defined]
    predict.weights = pd.DataFrame(combiner.weights_, index=list(fitters),  # type: ignore[attr-defined]
                                   columns=pd.Index(train_task.features[mod]).astype(str))
    return predict
