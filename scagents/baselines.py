"""Simple perturbation-response predictors every learned model must beat.

All predictors work on pseudobulk *changes from control* and share one interface
(:class:`Predictor`)::

    model = LinearGeneEmbedding(k=10, ridge=0.1).fit(control, effects)
    delta = model.predict(["STAT1"])           # predicted change from control, one value per gene

``control`` is the mean log-normalised profile of the control cells (a :class:`pandas.Series`
indexed by gene); ``effects`` is a perturbations × genes :class:`pandas.DataFrame` of deltas
(perturbed mean - control mean) whose index holds the target-gene labels (``"STAT1"``,
``"STAT1+IRF1"``: genes joined by ``+``), as written by ``scagents.data.perturbation_effects``.

:func:`evaluate_heldout` scores a predictor with k-fold cross-validation over perturbations (a
held-out perturbation is never seen in training; labels of one target gene set, ``A+B`` and
``B+A``, fold together) using :func:`scagents.metrics.prediction_report`.

References
----------
Ahlmann-Eltze, Huber & Anders (2025), "Deep-learning-based gene perturbation effect prediction does
not yet outperform simple linear baselines", Nature Methods.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd

from scagents.errors import DataError
from scagents.metrics import DEFAULT_DIRECTION_EPS, prediction_report
from scagents.perturbation import Perturbation

__all__ = [
    "Predictor",
    "NoChange",
    "MeanEffect",
    "LinearGeneEmbedding",
    "Additive",
    "split_targets",
    "evaluate_heldout",
]

Targets = Sequence[str] | str | Perturbation


@runtime_checkable
class Predictor(Protocol):
    """What every perturbation-response predictor offers."""

    name: str

    def fit(self, control: pd.Series, effects: pd.DataFrame) -> Self:
        """Learn from the control profile and the training perturbations' deltas."""
        ...

    def predict(self, targets: Sequence[str]) -> pd.Series:
        """Predicted change from control (one value per gene) when ``targets`` are perturbed."""
        ...


def split_targets(label: str) -> tuple[str, ...]:
    """Target genes of a perturbation label: ``"STAT1+IRF1"`` → ``("STAT1", "IRF1")``.

    Parameters
    ----------
    label
        Genes joined by ``+``; surrounding spaces are ignored.

    Returns
    -------
    tuple[str, ...]
        Empty for an empty label (control).
    """
    return tuple(g.strip() for g in str(label).split("+") if g.strip())


def _as_targets(targets: Targets) -> tuple[str, ...]:
    if isinstance(targets, Perturbation):
        out = targets.targets
    elif isinstance(targets, str):
        out = split_targets(targets)
    else:
        out = tuple(str(t) for t in targets)
    if not out:
        raise DataError("predict() needs at least one target gene, e.g. predict(['STAT1']).")
    return out


class _BasePredictor:
    """Input checks and fitted state shared by the baselines."""

    name = "base"

    control_: pd.Series
    effects_: pd.DataFrame
    mean_effect_: pd.Series

    def fit(self, control: pd.Series, effects: pd.DataFrame) -> Self:
        """Check the inputs and store them.

        Parameters
        ----------
        control
            Mean log-normalised expression of the control cells, indexed by gene.
        effects
            Training perturbations × genes deltas (perturbed mean - control mean); the index holds
            the target labels (``"STAT1"``, ``"STAT1+IRF1"``) and the columns the genes of
            ``control`` (any order).

        Returns
        -------
        Self
            The fitted predictor.
        """
        if not isinstance(control, pd.Series):
            raise DataError(f"control must be a pandas Series indexed by gene, got "
                            f"{type(control).__name__}; e.g. pseudobulk(adata).loc['control'].")
        if not isinstance(effects, pd.DataFrame):
            raise DataError(f"effects must be a perturbations × genes DataFrame, got "
                            f"{type(effects).__name__}.")
        if effects.shape[0] == 0:
            raise DataError(f"{self.name}: the training set is empty (effects has no "
                            "perturbation); train on at least one perturbation.")
        if control.index.has_duplicates or effects.columns.has_duplicates:
            raise DataError("Gene names must be unique in control and in effects' columns; "
                            "run adata.var_names_make_unique() before pseudobulking.")
        if effects.index.has_duplicates:
            dup = effects.index[effects.index.duplicated()].unique().tolist()[:5]
            raise DataError(f"effects has duplicated perturbation labels {dup}; aggregate them "
                            "first (one row per perturbation).")
        if set(effects.columns) != set(control.index):
            only_e = effects.columns.difference(control.index).tolist()[:5]
            only_c = control.index.difference(effects.columns).tolist()[:5]
            raise DataError("control and effects must cover the same genes; only in effects: "
                            f"{only_e}, only in control: {only_c}.")
        values = effects.reindex(columns=control.index).to_numpy(dtype=float)
        if not (np.isfinite(values).all() and np.isfinite(control.to_numpy(dtype=float)).all()):
            raise DataError("control or effects contain NaN or infinite values; fill or drop them.")
        self.control_ = control.astype(float)
        self.effects_ = pd.DataFrame(values, index=effects.index.astype(str), columns=control.index)
        self.mean_effect_ = self.effects_.mean(axis=0)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "effects_"):
            raise DataError(f"{self.name} is not fitted; call .fit(control, effects) first.")

    def _series(self, values: np.ndarray | pd.Series, targets: tuple[str, ...]) -> pd.Series:
        return pd.Series(np.asarray(values, dtype=float), index=self.control_.index,
                         name="+".join(targets))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class NoChange(_BasePredictor):
    """Predicts no change: the delta is 0 for every gene (the perturbed cells look like control)."""

    name = "no change"

    def predict(self, targets: Targets) -> pd.Series:
        """Zero change for every gene.

        Parameters
        ----------
        targets
            Perturbed genes (ignored beyond naming the result).

        Returns
        -------
        pandas.Series
            Zeros indexed by gene.
        """
        self._check_fitted()
        t = _as_targets(targets)
        return self._series(np.zeros(len(self.control_)), t)


class MeanEffect(_BasePredictor):
    """Predicts the mean of the training perturbations' deltas, whatever the targets."""

    name = "mean of training effects"

    def predict(self, targets: Targets) -> pd.Series:
        """The mean training delta.

        Parameters
        ----------
        targets
            Perturbed genes (ignored beyond naming the result).

        Returns
        -------
        pandas.Series
            Mean delta indexed by gene.
        """
        self._check_fitted()
        return self._series(self.mean_effect_, _as_targets(targets))


class Additive(_BasePredictor):
    """Sum of the training single-gene effects of the targets (for combinations).

    A combination ``A+B`` is predicted as ``delta(A) + delta(B)``, where ``delta(g)`` is the
    training effect of the single-gene perturbation ``g``; a target without a single-gene training
    perturbation contributes the mean training effect instead. A single target seen in training is
    therefore predicted by its own training effect (use held-out evaluation).
    """

    name = "additive"

    singles_: dict[str, pd.Series]

    def fit(self, control: pd.Series, effects: pd.DataFrame) -> Self:
        """Store the single-gene training effects (see :meth:`_BasePredictor.fit`)."""
        super().fit(control, effects)
        self.singles_ = {}
        for label, row in self.effects_.iterrows():
            genes = split_targets(str(label))
            if len(genes) == 1:
                self.singles_[genes[0]] = row
        return self

    def predict(self, targets: Targets) -> pd.Series:
        """Sum of single-gene effects (mean training effect for unseen targets).

        Parameters
        ----------
        targets
            Perturbed genes.

        Returns
        -------
        pandas.Series
            Predicted delta indexed by gene.
        """
        self._check_fitted()
        t = _as_targets(targets)
        total = np.zeros(len(self.control_))
        for gene in t:
            total += self.singles_.get(gene, self.mean_effect_).to_numpy()
        return self._series(total, t)


class LinearGeneEmbedding(_BasePredictor):
    """Linear model on gene embeddings (Ahlmann-Eltze et al. 2025): ``Y ≈ G W Pᵀ + c``.

    Fitting, on the training pseudobulk:

    1. ``G`` (genes × k): PCA over genes of the training pseudobulk *expression* matrix
       (genes × conditions, the training perturbations' mean profiles ``control + delta`` plus the
       control profile), each condition centred across genes — R's ``prcomp(X)$x`` as in the
       paper's code. With ``scale_embedding=True`` (default, as in the paper) ``G`` holds the PCA
       scores ``U_k S_k``; with ``False`` the orthonormal ``U_k``, which makes ``ridge`` a penalty
       independent of the data's scale (stronger shrinkage on small data).
    2. ``P`` (conditions × k): the perturbation embedding. A perturbation of gene ``g`` is embedded
       by the row of ``G`` for ``g``; a multi-gene perturbation by the *sum* of its targets' rows
       (additive in embedding space); the control by zeros. Training perturbations with a target
       outside the gene set have no embedding and are left out of steps 3-4.
    3. ``Y`` (genes × conditions): deltas of the embedded training perturbations plus a zero column
       for the control; ``c`` = its row means, ``Yc = Y - c``.
    4. ``W = (GᵀG + λI)⁻¹ Gᵀ Yc P (PᵀP + λI)⁻¹`` (closed-form ridge, ``λ = ridge``).

    Prediction for targets all in the gene set: ``c + G W p`` with ``p`` the (summed) embedding.
    If any target is not a gene of the data (common in CRISPR screens, whose targets are often not
    among the measured genes) there is no embedding and the mean training effect is returned;
    :attr:`fallback_` records the labels predicted that way.

    Parameters
    ----------
    k
        Number of principal components (capped at the rank of the training matrix).
    ridge
        Ridge penalty λ on both sides.
    scale_embedding
        Use PCA scores (``True``) or orthonormal loadings (``False``) as gene embedding.
    """

    name = "linear gene embedding"

    def __init__(self, k: int = 10, ridge: float = 0.1, *, scale_embedding: bool = True) -> None:
        if k < 1:
            raise DataError(f"k must be a positive number of components, got {k}.")
        if ridge < 0:
            raise DataError(f"ridge must be non-negative, got {ridge}.")
        self.k = int(k)
        self.ridge = float(ridge)
        self.scale_embedding = bool(scale_embedding)

    def __repr__(self) -> str:
        return (f"LinearGeneEmbedding(k={self.k}, ridge={self.ridge}, "
                f"scale_embedding={self.scale_embedding})")

    def fit(self, control: pd.Series, effects: pd.DataFrame) -> Self:
        """Compute ``G``, ``P``, ``c`` and ``W`` from the training perturbations.

        Parameters
        ----------
        control, effects
            As in :class:`Predictor`.

        Returns
        -------
        Self
            Fitted; sets ``gene_embedding_`` (DataFrame genes × k), ``weights_`` (k × k),
            ``center_`` (Series), ``n_components_``, ``embedded_`` (training labels used in W) and
            an empty ``fallback_`` list.
        """
        super().fit(control, effects)
        genes = self.control_.index
        deltas = self.effects_.to_numpy().T                        # genes × perturbations
        levels = np.column_stack([deltas + self.control_.to_numpy()[:, None],
                                  self.control_.to_numpy()])     # + control condition
        centred = levels - levels.mean(axis=0, keepdims=True)      # prcomp: centre each column
        u, s, _ = np.linalg.svd(centred, full_matrices=False)
        rank = int(np.sum(s > s[0] * 1e-10)) if s.size and s[0] > 0 else 0
        k = max(1, min(self.k, rank)) if rank else 1
        g = u[:, :k] * s[:k] if self.scale_embedding else u[:, :k]
        self.n_components_ = k
        self.gene_embedding_ = pd.DataFrame(g, index=genes,
                                            columns=[f"PC{i + 1}" for i in range(k)])
        self._gene_pos = {str(name): i for i, name in enumerate(genes)}

        cols, rows = [], []
        self.embedded_: list[str] = []
        for j, label in enumerate(self.effects_.index):
            p = self._embed(split_targets(label))
            if p is not None:
                cols.append(deltas[:, j])
                rows.append(p)
                self.embedded_.append(label)
        y = np.column_stack([*cols, np.zeros(len(genes))])          # control: zero delta, P = 0
        p_mat = np.vstack([*rows, np.zeros(k)])
        self.center_ = pd.Series(y.mean(axis=1), index=genes)
        yc = y - y.mean(axis=1, keepdims=True)
        eye = np.eye(k)
        left = np.linalg.solve(g.T @ g + self.ridge * eye, g.T @ yc @ p_mat)
        self.weights_ = np.linalg.solve((p_mat.T @ p_mat + self.ridge * eye).T, left.T).T
        self.fallback_: list[str] = []
        return self

    def _embed(self, targets: tuple[str, ...]) -> np.ndarray | None:
        pos = [self._gene_pos.get(t) for t in targets]
        if not pos or any(p is None for p in pos):
            return None
        return self.gene_embedding_.to_numpy()[pos].sum(axis=0)

    def predict(self, targets: Targets) -> pd.Series:
        """Predicted delta ``c + G W p`` (mean training effect when a target has no embedding).

        Parameters
        ----------
        targets
            Perturbed genes.

        Returns
        -------
        pandas.Series
            Predicted delta indexed by gene.
        """
        self._check_fitted()
        t = _as_targets(targets)
        p = self._embed(t)
        if p is None:
            self.fallback_.append("+".join(t))
            return self._series(self.mean_effect_, t)
        g = self.gene_embedding_.to_numpy()
        return self._series(self.center_.to_numpy() + g @ self.weights_ @ p, t)


def evaluate_heldout(predictor_factory: Callable[[], Predictor], control: pd.Series,
                     effects: pd.DataFrame, *, n_folds: int = 5, seed: int = 0, k: int = 20,
                     eps: float = DEFAULT_DIRECTION_EPS) -> pd.DataFrame:
    """Score a predictor on held-out perturbations with k-fold cross-validation.

    The target gene sets of the rows of ``effects`` (:func:`split_targets` of each label, as a set:
    ``A+B`` and ``B+A`` are one; :func:`scagents.perturbation.target_groups`) are shuffled with
    ``seed`` and split into ``n_folds`` folds (scikit-learn ``KFold(shuffle=True,
    random_state=seed)`` over the sets); for each fold a fresh predictor from
    ``predictor_factory`` is fitted on the rows of the other folds and predicts every held-out row
    from its target genes alone. A held-out target gene set is thus never seen in training under
    any of its labels (its single-gene parts may be, for combinations). With one row per target
    gene set (the usual case) the folds are those of ``KFold`` over the rows.

    Parameters
    ----------
    predictor_factory
        Callable returning a new unfitted predictor, e.g. ``lambda: LinearGeneEmbedding(k=10)``
        or a class such as ``MeanEffect``.
    control
        Mean log-normalised control profile, indexed by gene.
    effects
        Perturbations × genes deltas from control; index = target labels.
    n_folds
        Number of folds (2 ≤ ``n_folds`` ≤ number of target gene sets).
    seed
        Seed of the split.
    k
        Number of top DE genes of :func:`scagents.metrics.pearson_delta_topk`.
    eps
        Direction-of-change threshold of :func:`scagents.metrics.direction_metrics`.

    Returns
    -------
    pandas.DataFrame
        One row per held-out perturbation: ``perturbation``, ``predictor`` (its ``name``),
        ``fold``, ``seed``, every key of :func:`scagents.metrics.prediction_report` and
        ``target_group`` (its target gene set, :func:`scagents.perturbation.target_group_key`).
        Summarise per target gene set, each one's labels averaged first (as the agent's
        validation and :func:`scagents.evaluation.summarize` do), with e.g.
        ``df.groupby(["predictor", "target_group"])[["mse"]].mean().groupby(level=0).mean()``;
        with one label per target gene set, ``df.groupby("predictor")[["mse"]].mean()`` is the same.
    """
    from sklearn.model_selection import KFold

    from scagents.perturbation import target_group_key, target_groups

    groups = target_groups([split_targets(str(label)) for label in effects.index])
    n = len(groups)
    if not 2 <= n_folds <= n:
        what = (f"perturbations ({n})" if n == effects.shape[0]
                else f"target gene sets ({n}; {effects.shape[0]} labels)")
        raise DataError(f"n_folds must be between 2 and the number of {what}, got {n_folds}.")
    genes = control.index
    rows = []
    folds = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for fold, (train_g, test_g) in enumerate(folds.split(np.arange(n))):
        train_idx = sorted(i for g in train_g for i in groups[g])
        test_idx = sorted(i for g in test_g for i in groups[g])
        model = predictor_factory().fit(control, effects.iloc[train_idx])
        for i in test_idx:
            label = effects.index[i]
            observed = effects.iloc[i].reindex(genes).to_numpy(dtype=float)
            predicted = model.predict(split_targets(str(label))).reindex(genes).to_numpy()
            report = prediction_report(predicted, observed, k=k, eps=eps)
            rows.append({"perturbation": str(label), "predictor": model.name, "fold": fold,
                         "seed": seed, **report,
                         "target_group": target_group_key(split_targets(str(label)))})
    return pd.DataFrame(rows)
