"""Held-out evaluation shared by benchmarks, agents and parallel runners.

One function answers "train on the training fold, predict the held-out perturbations, score them"
for every method, learned or not::

    from scagents.envs import ResponseTask
    from scagents.evaluation import heldout_scores, summarize

    task = ResponseTask.from_twin("th", modalities=("rna",))
    df = heldout_scores(task, method="trpo_ppo", seed=0, fold=0, n_folds=5)
    summarize(df)                        # mean ± sd over seeds × folds per method

The split is by perturbation (:meth:`scagents.envs.ResponseTask.split`, k-fold over targets with
the shuffle seeded by ``seed``): a held-out perturbation is never seen in training, and its
encoding uses only its target names. Every method is scored on the *change from control* (delta)
with :func:`scagents.metrics.prediction_report`, as ``EVALUATION.md`` asks.

Methods
-------
``"no_change"``
    Predicts a zero delta (the control profile).
``"mean_effect"``
    The mean training delta (of the training perturbations of the same kind, when there are any).
``"linear"``
    :class:`scagents.baselines.LinearGeneEmbedding` (``k = 10``, ridge ``0.1``), fitted per
    perturbation kind (knockouts and over-expressions of the twin have opposite effects; on data
    with one kind this is the plain model).
``"network"``
    Network propagation (:func:`fit_network_baseline`): a ridge network
    (:func:`scagents.grn.infer_network`, ``method="ridge"``, ``alpha="auto"``) is inferred from the
    *training* fold's cells only (the control cells plus every cell of the training
    perturbations, :attr:`ResponseTask.cell_states`, so the task must be built with
    ``keep_cells=True``); a held-out perturbation's forced change (knockout: target to 0;
    knockdown: ``strength`` of it removed; over-expression: target raised to its maximum over
    those training cells) is propagated from the mean control profile for 3 steps with
    :func:`scagents.grn.propagate_delta`, and the propagated shift is the predicted delta. A
    target absent from the network's genes gives a zero prediction. The propagated coefficients are
    the ridge fit's own (partial effects); their sign can differ from the edge table's (Spearman by
    default) — ``benchmarks/results/propagation_sign.md`` counts how often and compares propagating
    the edge table's signs instead (not adopted).
``"combination"``
    :func:`scagents.combination.fit_combination`: per-gene non-negative stacking of
    ``"mean_effect"``, ``"linear"`` and ``"network"``, fitted on cross-fitted predictions of the
    training perturbations (inner 5-fold, shuffled by ``seed``), its shrinkage chosen by inner
    validation.
``"ppo"``, ``"trpo"``, ``"trpo_ppo"``
    An actor-critic trained by :func:`scagents.policies.train` on
    :class:`scagents.envs.PerturbationResponseVecEnv` of the training perturbations; its
    deterministic action averaged over control cells is the predicted delta
    (:func:`scagents.envs.response.evaluate_policy`).
``"ppo_residual"``, ``"trpo_residual"``, ``"trpo_ppo_residual"``
    The same optimisers on the environment's residual mode: the observation also holds the
    ``"linear"`` baseline's delta for the episode's perturbation and the action is a correction
    added to it (the policy's initial mean is ~0, so training starts at the baseline). During
    training the baseline of each training perturbation is *cross-fitted* (predicted by a linear
    model fitted on the other training perturbations, 5 inner folds), so the corrections are
    learnt against out-of-sample baseline errors, as at test time; the held-out perturbations get
    the linear model fitted on the whole training fold. Nothing of a held-out perturbation enters
    training.
``"trpo_ppo_residual_combination"``
    The same, with the ``"combination"`` as the baseline the policy corrects (cross-fitted the
    same way: each inner fold's combination is itself fitted by its own inner validation).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from scagents.baselines import LinearGeneEmbedding, MeanEffect, NoChange, Predictor
from scagents.errors import DataError
from scagents.metrics import prediction_report

__all__ = [
    "RL_METHODS",
    "RESIDUAL_METHODS",
    "BASELINE_METHODS",
    "COMBINATION_METHODS",
    "COMBINATION_RESIDUAL_METHODS",
    "METHODS",
    "METHOD_LABELS",
    "REPORT_METRICS",
    "MEDIAN_METRICS",
    "default_train_config",
    "task_effects",
    "fit_baseline",
    "fit_network_baseline",
    "crossfit_baseline",
    "heldout_scores",
    "select_train_config",
    "summarize",
]

RL_METHODS: tuple[str, ...] = ("ppo", "trpo", "trpo_ppo")
"""Policy optimisers of :mod:`scagents.policies` (one :class:`~scagents.policies.TrainConfig` algo each)."""
RESIDUAL_METHODS: tuple[str, ...] = ("ppo_residual", "trpo_residual", "trpo_ppo_residual")
"""The RL optimisers in residual mode (correction on top of the linear baseline)."""
BASELINE_METHODS: tuple[str, ...] = ("no_change", "mean_effect", "linear", "network")
"""Simple predictors every learned model must beat."""
COMBINATION_METHODS: tuple[str, ...] = ("combination",)
"""Stacked combinations of the baselines (:func:`scagents.combination.fit_combination`)."""
COMBINATION_RESIDUAL_METHODS: tuple[str, ...] = ("trpo_ppo_residual_combination",)
"""TRPO→PPO in residual mode on top of the ``"combination"`` instead of the linear baseline."""
METHODS: tuple[str, ...] = (BASELINE_METHODS + RL_METHODS + RESIDUAL_METHODS + COMBINATION_METHODS
                            + COMBINATION_RESIDUAL_METHODS)
"""Every method :func:`heldout_scores` accepts."""
METHOD_LABELS: dict[str, str] = {
    "no_change": "no change (control)",
    "mean_effect": "mean of training effects",
    "linear": "linear (gene embedding)",
    "network": "network propagation",
    "ppo": "PPO",
    "trpo": "TRPO",
    "trpo_ppo": "TRPO→PPO",
    "ppo_residual": "PPO (residual on linear)",
    "trpo_residual": "TRPO (residual on linear)",
    "trpo_ppo_residual": "TRPO→PPO (residual on linear)",
    "combination": "combination (stacked: mean, linear, network)",
    "trpo_ppo_residual_combination": "TRPO→PPO (residual on combination)",
}
"""Display names used in result tables."""
REPORT_METRICS: tuple[str, ...] = (
    "pearson_delta_topk", "mse", "rmse", "mae", "r2", "pearson", "direction_accuracy",
    "direction_precision", "direction_recall", "direction_f1", "direction_auprc",
)
"""Metrics (keys of :func:`scagents.metrics.prediction_report`) summarised by :func:`summarize`."""
MEDIAN_METRICS: tuple[str, ...] = ("r2",)
"""Metrics that :func:`summarize` averages over perturbations by the median (see there)."""


def default_train_config(algo: str = "trpo_ppo", **overrides: Any):
    """The :class:`~scagents.policies.TrainConfig` used by the ablation for every algorithm.

    The three algorithms (pure and residual) share every setting (network sizes, rollout,
    learning rate, budget) except ``algo``. The networks are the paper's: modality-specific
    branches (one 64-unit layer per observation block, when there are several) followed by 2 × 256
    shared hidden units, for actor and critic. The rollout layout (256 environments × 8 steps)
    and the budget were chosen among five candidates by *inner* validation (held-out
    perturbations inside the twin's outer-fold-0 training set, :func:`select_train_config`; see
    ``benchmarks/ablation.py`` and its results: 65,536 steps, which the ablation passes as
    ``total_steps`` and the policy agent uses by default through
    :func:`scagents.agents.policy.policy_train_config`); no setting was tuned on a held-out fold. The response task is a contextual
    bandit for static data (``T = 1``, ``gamma = 0``); the initial policy standard deviation is
    small because deltas are small (~0.1).

    Parameters
    ----------
    algo
        ``"ppo"``, ``"trpo"`` or ``"trpo_ppo"``.
    **overrides
        Any other :class:`~scagents.policies.TrainConfig` field.

    Returns
    -------
    scagents.policies.TrainConfig
    """
    from scagents.policies import TrainConfig

    base = dict(algo=algo, total_steps=32_768, n_envs=256, n_steps=8, hidden_sizes=(256, 256),
                branch_sizes=(64,),
                lr=1e-3, delta=0.02, ppo_epochs=4, n_minibatches=8, vf_epochs=5,
                init_log_std=-2.0, gamma=0.0, gae_lambda=0.0, reward_components=True,
                critic_init_gain=0.01, torch_threads=1)
    base.update(overrides)
    return TrainConfig(**base)


def _labels_of(task, modality: str) -> tuple[pd.Series, pd.DataFrame]:
    genes = pd.Index(task.features[modality]).astype(str)
    control = pd.Series(task.control_mean[modality][-1].astype(np.float64), index=genes)
    effects = pd.DataFrame(task.deltas[modality][:, -1].astype(np.float64), index=task.labels,
                           columns=genes)
    return control, effects


def task_effects(task, *, modality: str | None = None) -> tuple[pd.Series, pd.DataFrame]:
    """Control profile and perturbation deltas of a task, as the baselines take them.

    Parameters
    ----------
    task
        A :class:`scagents.envs.ResponseTask`.
    modality
        Modality (default the task's gene modality).

    Returns
    -------
    control, effects
        Mean control state at the last point (Series by feature) and perturbations × features
        deltas at the last point, indexed by the task's labels.
    """
    return _labels_of(task, modality or task.embedding_modality)


class _KindwisePredictor:
    """One baseline per perturbation kind (fallback: fitted on every kind)."""

    def __init__(self, factory: Callable[[], Predictor], name: str):
        self.factory = factory
        self.name = name

    def fit(self, control: pd.Series, effects: pd.DataFrame, kinds: Sequence[str],
            targets: Sequence[tuple[str, ...]]) -> _KindwisePredictor:
        self.models: dict[str, Predictor] = {}
        kinds_arr = np.asarray(kinds)
        index = ["+".join(t) for t in targets]
        for kind in sorted(set(kinds)):
            rows = np.flatnonzero(kinds_arr == kind)
            sub = pd.DataFrame(effects.to_numpy()[rows], index=[index[i] for i in rows],
                               columns=effects.columns)
            sub = sub.groupby(level=0).mean()
            self.models[kind] = self.factory().fit(control, sub)
        everything = pd.DataFrame(effects.to_numpy(), index=index,
                                  columns=effects.columns).groupby(level=0).mean()
        self.fallback = self.factory().fit(control, everything)
        return self

    def predict(self, targets: tuple[str, ...], kind: str) -> np.ndarray:
        model = self.models.get(kind, self.fallback)
        return model.predict(list(targets)).to_numpy(dtype=np.float64)


_BASELINE_FACTORIES: dict[str, Callable[[], Predictor]] = {
    "no_change": NoChange,
    "mean_effect": MeanEffect,
    "linear": lambda: LinearGeneEmbedding(k=10, ridge=0.1),
}


def fit_baseline(method: str, train_task, *, modality: str | None = None,
                 point: int = -1, seed: int = 0) -> Callable[[Any], np.ndarray]:
    """Fit a simple baseline on a training task.

    Parameters
    ----------
    method
        One of :data:`BASELINE_METHODS`.
    train_task
        The training :class:`~scagents.envs.ResponseTask`.
    modality
        Modality to predict (default the gene modality).
    point
        Pseudotime point whose deltas are learnt (default the last).
    seed
        Shuffle of the inner folds of ``"combination"`` (ignored by the others).

    Returns
    -------
    Callable
        ``predict(perturbation) -> 1-D delta`` for a :class:`~scagents.perturbation.Perturbation`.
    """
    if method == "network":
        return fit_network_baseline(train_task, modality=modality)
    if method == "combination":
        from scagents.combination import fit_combination

        return fit_combination(train_task, modality=modality, seed=seed)
    if method not in _BASELINE_FACTORIES:
        raise DataError(f"Unknown baseline {method!r}; choose from {sorted(_BASELINE_FACTORIES)}.")
    mod = modality or train_task.embedding_modality
    genes = pd.Index(train_task.features[mod]).astype(str)
    control = pd.Series(train_task.control_mean[mod][point].astype(np.float64), index=genes)
    effects = pd.DataFrame(train_task.deltas[mod][:, point].astype(np.float64),
                           index=train_task.labels, columns=genes)
    model = _KindwisePredictor(_BASELINE_FACTORIES[method], method).fit(
        control, effects, [p.kind for p in train_task.perturbations],
        [p.targets for p in train_task.perturbations])
    return lambda p: model.predict(p.targets, p.kind)


def fit_network_baseline(train_task, *, modality: str | None = None, n_steps: int = 3,
                         alpha: float | str = "auto", n_regulators: int | None = None,
                         signs: str = "coef") -> Callable[[Any], np.ndarray]:
    """Fit the network-propagation baseline on a training task's cells.

    A ridge network (:func:`scagents.grn.infer_network`) is inferred from an AnnData of the
    control cells (``train_task.states`` at the last point) and every perturbed cell of the
    training perturbations (``train_task.cell_states``); a perturbation's forced change is then
    propagated from the mean control profile by :func:`scagents.grn.propagate_delta`.

    Parameters
    ----------
    train_task
        The training :class:`~scagents.envs.ResponseTask`, built with ``keep_cells=True``.
    modality
        Gene modality (default :attr:`~scagents.envs.ResponseTask.embedding_modality`; the
        per-cell states are kept for that modality only).
    n_steps
        Propagation steps (edges travelled).
    alpha
        Ridge penalty of :func:`~scagents.grn.infer_network` (``"auto"``: its internal held-out
        choice, on the training cells).
    n_regulators
        Candidate regulators when the task has more genes (default
        :data:`scagents.data.genes.DEFAULT_N_REGULATORS`, the network agent's cap): the training
        perturbations' targets first, then the genes most variable over the training cells — the
        priority of :func:`scagents.data.genes.select_genes`. Every gene stays a target. Tasks with
        at most that many genes (the twin, a 299-gene Perturb-seq panel) use every gene.
    signs
        Signs of the propagated coefficients (:func:`scagents.grn.network_matrix`): ``"coef"``
        (default) the ridge coefficients' own (partial effects), ``"edges"`` ``|coefficient|`` x the
        edge table's sign (``infer_network``'s ``sign_from``, Spearman by default).
        ``benchmarks/propagation_sign.py`` compares the two on held-out perturbations; by its
        pre-registered rule ``"edges"`` was not adopted (higher MSE on the twin).

    Returns
    -------
    Callable
        ``predict(perturbation) -> 1-D delta``; zero for a perturbation none of whose targets is
        a gene of the network. Its attribute ``sign_agreement`` holds
        :func:`scagents.grn.sign_agreement` of the fitted network (edges, edges with a coefficient,
        and those whose coefficient's sign is opposite to the edge's).

    Raises
    ------
    DataError
        The task holds no per-cell states of its perturbations.
    """
    import anndata as ad

    from scagents.errors import GeneNotFoundError
    from scagents.grn import infer_network, network_matrix, propagator, sign_agreement

    mod = modality or train_task.embedding_modality
    if mod != train_task.embedding_modality:
        raise DataError(f"The network baseline predicts the gene modality "
                        f"{train_task.embedding_modality!r} only, not {mod!r}.")
    cells = train_task.cell_states
    if not cells:
        raise DataError("The network baseline needs the perturbed cells: build the task with "
                        "ResponseTask.from_twin(..., keep_cells=True) or "
                        "ResponseTask.from_anndata(..., keep_cells=True).")
    genes = pd.Index(train_task.features[mod]).astype(str)
    X = np.concatenate([train_task.states[mod][:, -1]]
                       + [cells[lab] for lab in train_task.labels if lab in cells]).astype(np.float32)
    adata = ad.AnnData(X=X, var=pd.DataFrame(index=genes))
    infer_network(adata, method="ridge", alpha=alpha,
                  regulators=_network_regulators(train_task, genes, X, n_regulators))
    W = network_matrix(adata, signs=signs)
    agreement = sign_agreement(adata)
    control = pd.Series(train_task.control_mean[mod][-1].astype(np.float64), index=genes)
    gene_max = pd.Series(X.max(axis=0).astype(np.float64), index=genes)
    shift = propagator(W, control, n_steps, gene_max=gene_max)
    del adata, W

    def predict(p) -> np.ndarray:
        known = tuple(t for t in p.targets if t in genes)
        if not known:
            return np.zeros(len(genes))
        q = replace(p, targets=known)
        try:
            return shift(q)
        except GeneNotFoundError:  # pragma: no cover - guarded by ``known``
            return np.zeros(len(genes))

    predict.sign_agreement = agreement  # type: ignore[attr-defined]
    return predict


def _network_regulators(train_task, genes: pd.Index, X: np.ndarray, n_regulators: int | None
                        ) -> list[str] | None:
    """Candidate regulators of :func:`fit_network_baseline` (``None``: every gene)."""
    from scagents.data.genes import DEFAULT_N_REGULATORS

    cap = DEFAULT_N_REGULATORS if n_regulators is None else int(n_regulators)
    if len(genes) <= cap:
        return None
    named = [str(t) for p in train_task.perturbations for t in p.targets]
    var = pd.Series(X.var(axis=0), index=genes)
    named = var.reindex(list(dict.fromkeys(g for g in named if g in genes)))
    order = named.sort_values(ascending=False, kind="stable").index.append(
        var.sort_values(ascending=False, kind="stable").index)
    return list(dict.fromkeys(order))[:cap]


def _baseline_matrix(predict: Callable[[Any], np.ndarray], task, perturbations) -> np.ndarray:
    """``(n, d_action)`` baseline deltas in the action layout (zero for non-gene modalities)."""
    mod = task.embedding_modality
    out = np.zeros((len(perturbations), sum(task.dims.values())), np.float32)
    sl = task.action_slices[mod]
    for i, p in enumerate(perturbations):
        out[i, sl] = predict(p)
    return out


def crossfit_baseline(train_task, *, method: str = "linear", n_folds: int = 5,
                      seed: int = 0) -> np.ndarray:
    """Out-of-sample baseline deltas of a training task's own perturbations.

    Each training perturbation is predicted by ``method`` fitted on the training perturbations
    of the other inner folds (k-fold over target gene sets: all labels of a target on one side),
    so the residual policies learn corrections against the baseline errors they meet on held-out data.

    Parameters
    ----------
    train_task
        The training :class:`~scagents.envs.ResponseTask`.
    method
        One of :data:`BASELINE_METHODS` (``"linear"`` for the residual variants).
    n_folds
        Inner folds.
    seed
        Shuffle of the inner folds.

    Returns
    -------
    numpy.ndarray
        ``(n_perturbations, d_action)`` float32 baseline deltas in the task's action layout (the
        gene modality filled, other modalities 0).
    """
    n = train_task.n_perturbations
    out = np.zeros((n, sum(train_task.dims.values())), np.float32)
    k = min(n_folds, train_task.n_groups)  # folds over target gene sets (task.split)
    if k < 2:
        return out
    for f in range(k):
        inner_train, inner_test = train_task.split(n_folds=k, fold=f, seed=seed)
        predict = fit_baseline(method, inner_train, seed=seed)
        rows = [train_task.index(lab) for lab in inner_test.labels]
        out[rows] = _baseline_matrix(predict, train_task, inner_test.perturbations)
    return out


def _score_rows(predict: Callable[[int], np.ndarray], test_task, mod: str, k: int,
                meta: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for i, label in enumerate(test_task.labels):
        obs = test_task.observed_delta(i, modality=mod)
        pred = predict(i)
        rows.append({**meta, "perturbation": label,
                     **prediction_report(pred, obs, k=min(k, len(obs)))})
    return rows


def heldout_scores(task, *, method: str, seed: int = 0, fold: int = 0, n_folds: int = 5,
                   train_config=None, modality: str | None = None, k: int = 20,
                   max_cells: int | None = 512, return_policy: bool = False
                   ) -> pd.DataFrame | tuple[pd.DataFrame, Any]:
    """Train ``method`` on the training fold of ``task`` and score the held-out perturbations.

    Parameters
    ----------
    task
        A :class:`~scagents.envs.ResponseTask` (from the twin or real data).
    method
        One of :data:`METHODS`.
    seed
        Seeds the fold shuffle *and* the policy training (``TrainConfig.seed``).
    fold, n_folds
        Which fold of the k-fold split over perturbations is held out.
    train_config
        :class:`~scagents.policies.TrainConfig` for RL methods; ``algo`` and ``seed`` are
        overwritten by ``method`` and ``seed``. Default :func:`default_train_config`.
    modality
        Modality scored (default the gene modality). RL policies predict every modality of the
        task; only this block is scored.
    k
        Top-DE genes of :func:`scagents.metrics.pearson_delta_topk`.
    max_cells
        Control cells averaged per RL prediction.
    return_policy
        Also return the trained policy (``None`` for baselines).

    Returns
    -------
    pandas.DataFrame
        One row per held-out perturbation: ``method``, ``seed``, ``fold``, ``n_folds``,
        ``perturbation``, ``train_time_s``, every key of
        :func:`scagents.metrics.prediction_report` and ``target_group`` (its unit,
        :func:`scagents.perturbation.target_group_key`, which :func:`summarize` averages first). RL methods also get ``diverged``: ``True``
        when the trained policy has non-finite weights or predictions (the metric columns are then
        absent/NaN; :func:`summarize` counts such splits in ``n_diverged``). With ``return_policy`` a ``(frame, policy)``
        pair.
    """
    if method not in METHODS:
        raise DataError(f"Unknown method {method!r}; choose from {list(METHODS)}.")
    train_task, test_task = task.split(n_folds=n_folds, fold=fold, seed=seed)
    mod = modality or task.embedding_modality
    task._check_modality(mod)
    start = time.perf_counter()
    policy = None
    if method in RL_METHODS or method in RESIDUAL_METHODS or method in COMBINATION_RESIDUAL_METHODS:
        from scagents.envs.response import PerturbationResponseVecEnv, evaluate_policy
        from scagents.policies import train

        base = "combination" if method in COMBINATION_RESIDUAL_METHODS else "linear"
        algo = method.removesuffix("_combination").removesuffix("_residual")
        cfg = train_config if train_config is not None else default_train_config()
        cfg = replace(cfg, algo=algo, seed=int(seed))
        train_base = test_base = None
        if method in RESIDUAL_METHODS or method in COMBINATION_RESIDUAL_METHODS:
            train_base = crossfit_baseline(train_task, method=base, seed=seed)
            test_base = _baseline_matrix(fit_baseline(base, train_task, seed=seed), test_task,
                                         test_task.perturbations)
        env = PerturbationResponseVecEnv(train_task, num_envs=cfg.n_envs, baseline=train_base)
        policy, _ = train(env, cfg, progress=False)
        elapsed = time.perf_counter() - start
        meta = {"method": method, "seed": int(seed), "fold": int(fold), "n_folds": int(n_folds),
                "train_time_s": elapsed}
        diverged = not all(bool(np.isfinite(t.detach().cpu().numpy()).all())
                           for t in policy.parameters())
        df = None
        if not diverged:
            try:
                df = evaluate_policy(policy, test_task, modality=mod, k=k, max_cells=max_cells,
                                     baseline=test_base).drop(columns=["modality"])
            except DataError as err:
                if "NaN or infinite" not in str(err):
                    raise
                diverged = True
        if diverged:      # a failed training: every metric NaN, flagged, never silently dropped
            df = pd.DataFrame({"perturbation": test_task.labels})
        out = pd.concat([pd.DataFrame([{**meta, "diverged": diverged}] * len(df)), df], axis=1)
    else:
        predict = fit_baseline(method, train_task, modality=mod, seed=seed)
        elapsed = time.perf_counter() - start
        meta = {"method": method, "seed": int(seed), "fold": int(fold), "n_folds": int(n_folds),
                "train_time_s": elapsed}
        out = pd.DataFrame(_score_rows(lambda i: predict(test_task.perturbations[i]), test_task,
                                       mod, k, meta))
    from scagents.perturbation import target_group_key

    unit = {lab: target_group_key(p.targets, p.kind)
            for lab, p in zip(test_task.labels, test_task.perturbations, strict=True)}
    out["target_group"] = out["perturbation"].map(unit)
    return (out, policy) if return_policy else out


def select_train_config(task, candidates: Mapping[str, Any], *, method: str = "trpo_ppo",
                        fold: int = 0, n_folds: int = 5, split_seed: int = 0,
                        inner_folds: int = 5, inner_fold_ids: Sequence[int] = (0, 1),
                        seeds: Sequence[int] = (0, 1), k: int = 20,
                        max_cells: int | None = 512) -> tuple[str, pd.DataFrame]:
    """Pick an RL training configuration by inner validation inside one training fold.

    Only the *training* perturbations of outer fold ``fold`` (of ``n_folds``, shuffle
    ``split_seed``) are used: they are split once more by perturbation (``inner_folds``-fold,
    reshuffled by each seed), every candidate is trained on the inner training part and scored on
    the inner validation part with :func:`heldout_scores`, and the candidate with the lowest mean
    inner-validation delta MSE wins. The outer held-out perturbations never enter.

    Parameters
    ----------
    task
        The full :class:`~scagents.envs.ResponseTask`.
    candidates
        Name → :class:`~scagents.policies.TrainConfig` (``algo`` and ``seed`` are overwritten).
    method
        RL method trained for the comparison (one of :data:`RL_METHODS` or
        :data:`RESIDUAL_METHODS`).
    fold, n_folds, split_seed
        The outer split whose training perturbations are used.
    inner_folds
        k of the inner split.
    inner_fold_ids
        Inner folds used as validation sets.
    seeds
        Seeds (inner split shuffle and policy initialisation).
    k, max_cells
        As in :func:`heldout_scores`.

    Returns
    -------
    best, table
        The winning candidate's name and one row per candidate (index ``candidate``; columns
        ``mse_mean``, ``mse_sd``, ``pearson_delta_topk_mean``, ``pearson_delta_topk_sd``,
        ``train_time_s`` (median), ``n_splits``), sorted as ``candidates``.

    Raises
    ------
    DataError
        No candidates, or ``method`` is not an RL method.
    """
    if not candidates:
        raise DataError("select_train_config needs at least one candidate TrainConfig.")
    if method not in RL_METHODS + RESIDUAL_METHODS:
        raise DataError(f"select_train_config compares RL configurations; method {method!r} is "
                        f"not one of {list(RL_METHODS + RESIDUAL_METHODS)}.")
    train_task, _ = task.split(n_folds=n_folds, fold=fold, seed=split_seed)
    frames = []
    for name, cfg in candidates.items():
        for seed in seeds:
            for inner in inner_fold_ids:
                df = heldout_scores(train_task, method=method, seed=seed, fold=inner,
                                    n_folds=inner_folds, train_config=cfg, k=k,
                                    max_cells=max_cells)
                frames.append(df.assign(candidate=name))
    scores = pd.concat(frames, ignore_index=True)
    summary = summarize(scores, metrics=("mse", "pearson_delta_topk"), by="candidate")
    table = pd.DataFrame({
        "mse_mean": summary[("mse", "mean")], "mse_sd": summary[("mse", "sd")],
        "pearson_delta_topk_mean": summary[("pearson_delta_topk", "mean")],
        "pearson_delta_topk_sd": summary[("pearson_delta_topk", "sd")],
        "train_time_s": scores.groupby(["candidate", "seed", "fold"], sort=False)["train_time_s"]
        .first().groupby(level=0, sort=False).median(),
        "n_splits": summary["n_splits"]}).reindex(list(candidates))
    table.index.name = "candidate"
    return str(table["mse_mean"].idxmin()), table


def summarize(scores: pd.DataFrame, *, metrics: Sequence[str] = REPORT_METRICS,
              by: str = "method") -> pd.DataFrame:
    """Mean ± sd over seeds × folds of per-split averages.

    Each (``by``, ``seed``, ``fold``) split is first averaged over its held-out perturbations
    — over their units when ``scores`` has a ``target_group`` column (:func:`heldout_scores`):
    the labels of one target gene set and kind (``STAT2_P1`` / ``STAT2_P2``) averaged first, so
    a gene measured under four labels weighs as much as a gene under one; with one label per
    unit, the mean over the labels as before —
    (NaN-aware: a top-DE Pearson is undefined for a constant prediction; for the metrics in
    :data:`MEDIAN_METRICS` the median is used, because R² of a perturbation with an almost zero
    observed delta is an arbitrarily large negative number), then the mean and the sample standard
    deviation are taken over the splits.

    Parameters
    ----------
    scores
        Concatenated :func:`heldout_scores` frames.
    metrics
        Columns to summarise.
    by
        Grouping column.

    Returns
    -------
    pandas.DataFrame
        Index ``by``; columns ``(metric, "mean")``, ``(metric, "sd")`` and ``n_splits``, plus
        ``n_diverged`` (splits whose RL training diverged; their metrics are NaN and left out of
        the mean and sd) when ``scores`` has a ``diverged`` column.
    """
    missing = [c for c in (by, "seed", "fold", *metrics) if c not in scores.columns]
    if missing:
        raise DataError(f"scores lacks the column(s) {missing}; pass heldout_scores() output.")
    flags_of = scores
    if "target_group" in scores.columns:
        units = scores.groupby([by, "seed", "fold", "target_group"], sort=False, dropna=False)
        if units.ngroups < len(scores):  # some unit has several labels: average them first
            scores = units[list(metrics)].mean().reset_index()
    keys = scores.groupby([by, "seed", "fold"], sort=False)
    per_split = keys[list(metrics)].mean()
    robust = [m for m in metrics if m in MEDIAN_METRICS]
    if robust:
        per_split[robust] = keys[robust].median()
    grouped = per_split.groupby(level=0, sort=False)
    out = pd.concat({"mean": grouped.mean(), "sd": grouped.std(ddof=1)}, axis=1)
    out = out.swaplevel(axis=1)[[(m, s) for m in metrics for s in ("mean", "sd")]]
    out["n_splits"] = grouped.size()
    if "diverged" in flags_of.columns:
        flags = flags_of.groupby([by, "seed", "fold"], sort=False)["diverged"].any()
        out["n_diverged"] = flags.fillna(False).astype(bool).groupby(level=0, sort=False).sum()
        out["n_diverged"] = out["n_diverged"].fillna(0).astype(int)
    return out
