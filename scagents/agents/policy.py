"""The policy agent: train the TRPO→PPO response policy, validate it, predict, and propose.

The response task (:class:`scagents.envs.ResponseTask`) is built from the run's data (on the default
twin: control cells plus the knockout and overexpression of every gene of the model). The goal's
perturbation is *held out* (the prediction is honest: no model sees its cells) and so is a
validation set of other perturbations, stratified by perturbation kind.

The policy is trained with the paper's TRPO→PPO schedule on the remaining perturbations, and every
candidate model is scored on the validation set: the policy, the linear gene-embedding model and the
mean effect (both fitted per perturbation kind, :func:`scagents.evaluation.fit_baseline`), network
propagation (:func:`scagents.evaluation.fit_network_baseline`: a ridge network inferred from the
control cells and the training perturbations' cells) unless the run skips the network, their stacked
combination (:func:`scagents.combination.fit_combination`), and "no change" as a reference — the
constructors of ``benchmarks/ablation.py``'s rows (:func:`fit_candidates`).
:func:`compare_to_baseline` decides: the policy answers only if it beats the best baseline by more
than the validation noise — at least ``min_improvement`` (5 %) lower mean MSE, a paired MSE
improvement larger than its standard error across the validation perturbations, and a
Pearson-delta that is not worse. Every one of these means, the choice of the best baseline and the
reported validation scores are over units: the labels of one target gene set and kind —
``STAT2_P1`` / ``STAT2_P2`` — are averaged into one first (they are not independent, and a gene
measured under four guide labels must not weigh four times a gene measured under one). Otherwise the agent reports
``status="not_validated"``; the planner retrains it with a doubled budget when the gap is small
(``retrain``), else routes to :func:`fallback_agent`,
which answers with the best-validating baseline, refitted on the training *and* validation
perturbations (never the goal's), and says so. The whole rule is :func:`answering_rule`;
:func:`answering_predictor` runs it on a set of perturbations for the ablation's "answering
predictor" row.

When the data hold too few measured perturbations to train and validate any predictor (e.g. control
and one stimulation, no genetic perturbation), the policy agent is skipped and the fallback answers a
gene perturbation by in-silico perturbation through the inferred network (:func:`_network_answer`,
``status="unchecked"``: nothing measured checks it), or stops with "No prediction possible" when
there is no network or the goal's genes reach no other gene in it.

Next perturbations are ranked over the untested candidates by their predicted effect on the genes
the goal's perturbation changes most, plus the disagreement between the available models
(an upper-confidence-bound score), with a rationale line each.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scagents._atomic import atomic_path, jsonable
from scagents.agents.state import (
    AgentRecord,
    DataSummary,
    GeneEffect,
    NetworkSummary,
    PolicySummary,
    Proposal,
    RunOptions,
    RunState,
    run_path,
)
from scagents.perturbation import target_group_key

__all__ = ["policy_agent", "generic_answer", "fallback_agent", "POLICY_FILE", "PREDICTION_FILE", "TRAINING_LOG",
           "rank_proposals", "pair_candidates", "compare_to_baseline", "Verdict", "MIN_LISTED", "POLICY", "BASELINES",
           "REFERENCE", "COMBINATION", "NETWORK", "policy_train_config", "Answer", "answering_rule",
           "answering_predictor", "fallback_choice", "fit_candidates", "refit_candidate",
           "validation_split", "combinations_aside", "validation_count", "additive_of_singles",
           "target_group_key"]

POLICY_FILE = "policy.pt"
PREDICTION_FILE = "prediction.csv"
TRAINING_LOG = "training_log.csv"
MIN_LISTED = 0.01  # smallest |predicted delta| listed as up / down
VALIDATION_METRIC = "mse"
POLICY = "TRPO→PPO policy"
REFERENCE = "no change (reference)"
NETWORK = "network propagation"
COMBINATION = "combination (stacked)"
"""Candidate of :func:`_combination_predictor`: mean effect, linear and network propagation stacked
by :func:`scagents.combination.fit_combination` on the training perturbations only."""
RETRAIN_GAP = 0.25
"""A doubled training budget is tried only when the policy's validation MSE is at most this much
(relative) above the best baseline's; a larger gap goes straight to the fallback."""

Predict = Callable[[tuple[str, ...], str], np.ndarray]


def _fit_kindwise(method: str) -> Callable[[object], Predict]:
    def fit(train_task) -> Predict:
        from scagents.evaluation import fit_baseline
        from scagents.perturbation import Perturbation

        model = fit_baseline(method, train_task, modality="rna")

        def predict(targets, kind) -> np.ndarray:
            return np.asarray(model(Perturbation(tuple(targets), kind=kind)), dtype=float)

        if hasattr(model, "sign_agreement"):  # network propagation: its network's sign counts
            predict.sign_agreement = model.sign_agreement  # type: ignore[attr-defined]
        return predict

    return fit


#: baselines that may answer (name → fit(train_task) -> predict); network propagation is added
#: when the network agent produced a network. Module-level so tests can replace a baseline.
BASELINES: dict[str, Callable[[object], Predict]] = {
    "linear gene embedding": _fit_kindwise("linear"),
    "mean effect per kind": _fit_kindwise("mean_effect"),
}


@dataclass
class _Context:
    opts: RunOptions
    data: DataSummary
    out: Path
    task: object
    train: object
    held: object
    fit_task: object
    genes: list[str]
    goal_label: str | None
    val_labels: list[str]
    control: pd.Series
    goal_held: list[str] = field(default_factory=list)
    held_note: str = ""
    goal_cells: int = 0
    too_few: str = ""
    """Why no predictor can be trained and validated (too few measured perturbations), or ''."""
    aside_labels: list[str] = field(default_factory=list)
    """Combinations holding a single-gene validation target, kept out of training
    (:func:`combinations_aside`)."""

    @property
    def n_val(self) -> str:
        """What the validation set counts (:func:`validation_count`)."""
        return validation_count(self.task, self.val_labels)

    @property
    def n_val_held(self) -> str:
        """:attr:`n_val` with "held-out" (``"6 held-out validation genes (9 labels)"``)."""
        return validation_count(self.task, self.val_labels, "held-out")

    @property
    def val_groups(self) -> list[list[int]]:
        """Positions in :attr:`val_labels` grouped by target gene set and kind
        (:func:`scagents.perturbation.target_groups`): the exchangeable units of the paired
        standard error and the conformal calibration."""
        from scagents.perturbation import target_groups

        perts = [self.task.perturbations[self.task.index(lab)] for lab in self.val_labels]
        return target_groups([p.targets for p in perts], [p.kind for p in perts])
    baselines: dict[str, Predict] = field(default_factory=dict)
    reference: dict[str, Predict] = field(default_factory=dict)
    floor: pd.DataFrame | None = None  # noise floor of the goal's observed change (evidence)
    n_goal_cells: int = 0
    gene_sd: np.ndarray | None = None  # spread of each gene's change over training perturbations
    replicated: bool = False  # the floor's verdicts were confirmed in a twin replicate


def _stratified(indices: list[int], kinds: list[str], rng: np.random.Generator) -> list[int]:
    """Shuffle within each kind, then interleave the kinds (a prefix is stratified by kind)."""
    groups: dict[str, list[int]] = {}
    for i in indices:
        groups.setdefault(kinds[i], []).append(i)
    queues = [[g[j] for j in rng.permutation(len(g))] for _, g in sorted(groups.items())]
    out = []
    while any(queues):
        for q in queues:
            if q:
                out.append(q.pop(0))
    return out


def _context(state: RunState, *, candidates: bool = True) -> _Context:
    """The run's task, splits and goal floor; with ``candidates`` also the fitted candidates
    (:func:`_fit_context_candidates`, which :func:`policy_agent` runs beside the training)."""
    import mudata as md

    from scagents.envs import ResponseTask

    opts = RunOptions.model_validate(state["options"])
    data = DataSummary.model_validate(state["data"])
    out = Path(state["out_dir"])
    mdata = md.read_h5mu(out / data.path)
    genes_file = run_path(state, data.genes_path)
    if genes_file is not None and genes_file.exists():
        # the data agent's gene selection (goal genes, perturbation targets, variable genes);
        # log-normalised on every gene first, so library sizes are whole-transcriptome totals
        from scagents.data import lognormalize

        rna = mdata["rna"]
        if "lognorm" not in rna.layers:
            lognormalize(rna)
        keep = set(pd.read_csv(genes_file, usecols=["gene"])["gene"].astype(str))
        source, n_top = rna[:, [g for g in rna.var_names if g in keep]].copy(), None
        del mdata, rna
    else:  # a run from before the gene selection
        source, n_top = mdata, (None if data.n_genes <= 2000 else 1000)
    # keep_cells: the network-propagation candidate is inferred from the training cells
    task = ResponseTask.from_anndata(source, modalities=["rna"], n_top_features=n_top,
                                     max_control_cells=256, seed=opts.seed,
                                     keep_cells=not opts.skip_network)
    cell_obs = source["rna"].obs if hasattr(source, "mod") else source.obs
    goal_held, held_note = _goal_held(task, data)
    others = [i for i in range(task.n_perturbations) if i not in goal_held]
    targets = [tuple(p.targets) for p in task.perturbations]
    val, too_few = validation_split([p.kind for p in task.perturbations], others,
                                    opts.n_validation, opts.seed, targets=targets)
    if goal_held and not others:
        # only the goal's perturbation was measured: nothing to train on (too_few), so the answer
        # comes through the control cells' network; the task keeps the goal's cells to check it
        train = held = fit_task = task
        aside: list[int] = []
    else:
        aside = combinations_aside(targets, val, others)
        out_of_train = val + goal_held + aside
        train, held = task.split(test=out_of_train) if out_of_train else (task, task)
        fit_task = task.split(test=goal_held)[0] if goal_held else task
    genes = list(task.features["rna"])
    control = pd.Series(np.asarray(train.control_mean["rna"][-1], float), index=genes)
    ctx = _Context(opts=opts, data=data, out=out, task=task, train=train, held=held,
                   fit_task=fit_task, genes=genes,
                   goal_label=task.labels[goal_held[0]] if goal_held else None,
                   goal_held=[task.labels[i] for i in goal_held], held_note=held_note,
                   goal_cells=int(cell_obs["perturbation"].astype(str)
                                  .isin([task.labels[i] for i in goal_held]).sum()),
                   val_labels=[task.labels[i] for i in val], control=control, too_few=too_few,
                   aside_labels=[task.labels[i] for i in aside])
    if candidates:
        _fit_context_candidates(state, ctx)
    ctx.reference[REFERENCE] = lambda targets, kind: np.zeros(len(genes))
    from scagents.evaluation import task_effects

    ctx.gene_sd = task_effects(train)[1].to_numpy(float).std(axis=0)
    if ctx.goal_label is not None:
        ctx.floor, ctx.n_goal_cells = _goal_floor(source, ctx.goal_held, genes, opts.seed)
        truth = out / data.truth_path if data.truth_path else None
        if ctx.floor is not None and truth is not None and truth.exists():
            rep = pd.read_csv(truth, index_col=0)
            if "replicate_clears" in rep:  # twin: a gene must clear in the replicate too
                again = rep["replicate_clears"].reindex(genes).fillna(False).astype(bool)
                ctx.floor["clears"] = ctx.floor["clears"] & again.to_numpy()
                ctx.replicated = True
    return ctx


def _fit_context_candidates(state: RunState, ctx: _Context) -> None:
    """Fill ``ctx.baselines``: :func:`fit_candidates` on the training perturbations, or — with too
    few perturbations to validate — the network agent's network (:func:`_network_answer`)."""
    if ctx.too_few:
        prop = _propagation_predictor(state, ctx)
        if prop is not None:
            ctx.baselines[NETWORK] = prop
    else:
        ctx.baselines.update(fit_candidates(ctx.train, seed=ctx.opts.seed,
                                            network=not ctx.opts.skip_network))


def _goal_floor(source, labels: list[str], genes: list[str], seed: int
                ) -> tuple[pd.DataFrame | None, int]:
    """Noise floor of the goal's observed change (:func:`scagents.evidence.noise_floor`) from the
    goal's cells (every label held out for it) and the control cells of the data the task was
    built from (an AnnData or a
    MuData); ``(None, 0)`` when they cannot be read."""
    from scagents.data import lognormalize
    from scagents.envs.response import _modality_matrix
    from scagents.evidence import noise_floor

    rna = source
    if hasattr(source, "mod"):
        rna = source.mod["rna"] if "rna" in source.mod else source.mod[list(source.mod)[0]]
    obs = rna.obs
    if "perturbation" not in obs or "is_control" not in obs:
        return None, 0
    ctrl = obs["is_control"].fillna(False).to_numpy(bool)
    goal = obs["perturbation"].astype(str).isin(labels).to_numpy() & ~ctrl
    if goal.sum() < 2 or ctrl.sum() < 2:
        return None, 0
    rng = np.random.default_rng(seed)
    c_idx = np.flatnonzero(ctrl)
    c_idx = np.sort(rng.choice(c_idx, min(len(c_idx), 4000), replace=False))
    cols = rna.var_names.get_indexer(genes)
    x_c = _modality_matrix(rna[c_idx], "lognorm", lognormalize)[:, cols]
    x_g = _modality_matrix(rna[np.flatnonzero(goal)], "lognorm", lognormalize)[:, cols]
    return noise_floor(x_c, x_g, genes, min_effect=MIN_LISTED, seed=seed), int(goal.sum())


def _goal_held(task, data: DataSummary) -> tuple[list[int], str]:
    """Positions in ``task`` of the goal's cells, held out of every model, and a note.

    The goal's cells are the data agent's ``goal_label`` plus any other label of the task with the
    goal's target genes and kind (e.g. one label per guide). Nothing is guessed here: a goal label
    the task does not hold (too few cells to form a perturbation) is said in the note.
    """
    from scagents.perturbation import Perturbation

    goal = Perturbation.from_dict(data.perturbation)
    same = [i for i, p in enumerate(task.perturbations)
            if (set(p.targets), p.kind) == (set(goal.targets), goal.kind)
            and task.labels[i] != data.goal_label]
    note = ""
    if data.goal_label is not None and data.goal_label in task.labels:
        return [task.labels.index(data.goal_label), *same], note
    if data.goal_label is not None:
        note = (f"The data hold cells labelled {data.goal_label!r} (the goal's), but fewer than "
                "the 5 a perturbation needs: they were left out of every model and cannot check "
                "the answer.")
    return same, note


def _propagation_predictor(state: RunState, ctx: _Context) -> Predict | None:
    """In-silico perturbation through the inferred network (``scagents.grn.propagate_delta``)."""
    net = state.get("network")
    if not net or NetworkSummary.model_validate(net).status != "done":
        return None
    try:
        from scagents import grn
    except ImportError:  # pragma: no cover
        return None
    if not hasattr(grn, "propagator"):
        return None
    genes = ctx.genes
    matrix = ctx.out / "network_matrix.csv"
    if matrix.exists():  # runs from before the edge table carried the coefficients
        w = pd.read_csv(matrix, index_col=0).reindex(index=genes, columns=genes).fillna(0.0)
    else:  # coefficients in expression units (scagents.grn.network_matrix) when present
        summary = NetworkSummary.model_validate(net)
        edges = pd.read_csv(ctx.out / (summary.propagation_path or summary.edges_path))
        value = "coef" if "coef" in edges.columns else "weight"
        w = (edges.pivot_table(index="source", columns="target", values=value, aggfunc="sum")
             .reindex(index=genes, columns=genes).fillna(0.0))
    measured = set(genes)
    shift = grn.propagator(w, ctx.control, n_steps=3)
    del w

    def predict(targets: tuple[str, ...], kind: str) -> np.ndarray:
        """Propagate through the network; a target the data do not measure cannot be forced, so
        only measured targets are propagated (none measured → no predicted change)."""
        from scagents.perturbation import Perturbation

        known = tuple(t for t in targets if t in measured)
        if not known:
            return np.zeros(len(genes))
        return shift(Perturbation(known, kind=kind))  # ctx.control is indexed by the genes

    return predict


def _combination_predictor(task, seed: int, network: bool = True) -> Predict | None:
    """The stacked combination (:func:`scagents.combination.fit_combination`, the constructor the
    ablation's ``"combination"`` row calls) of the mean effect, the linear model and — unless
    ``network`` is false — network propagation (:func:`scagents.evaluation.fit_network_baseline`,
    refitted on each inner fold's cells), fitted on ``task``'s perturbations only; ``None`` when
    they are too few to cross-fit."""
    from scagents.combination import COMBINATION_BASES, fit_combination
    from scagents.errors import DataError
    from scagents.perturbation import Perturbation

    bases = tuple(b for b in COMBINATION_BASES if network or b != "network")
    try:
        model = fit_combination(task, bases=bases, seed=seed, modality="rna")
    except DataError:
        return None
    return lambda targets, kind: model(Perturbation(tuple(targets), kind=kind))


def fit_candidates(train_task, *, seed: int, network: bool = True) -> dict[str, Predict]:
    """The baselines that may answer instead of the policy, fitted on ``train_task`` only.

    :data:`BASELINES` (linear gene embedding and mean effect, per kind), :data:`NETWORK`
    (``scagents.evaluation.fit_baseline("network")``: a ridge network inferred from the control
    cells and the training perturbations' cells, so ``train_task`` must keep its cells) when
    ``network`` is true, and :data:`COMBINATION` (:func:`_combination_predictor`) when there are
    enough perturbations to cross-fit it. The same constructors as the ablation's rows
    (``benchmarks/ablation.py``), used by :func:`policy_agent` and :func:`answering_predictor`.
    """
    key = _task_key(train_task, seed, network)
    if key in _CANDIDATES:  # the policy and fallback agents of one run fit the same candidates
        return dict(_CANDIDATES[key])
    out = {name: fit(train_task) for name, fit in BASELINES.items()}
    if network:
        out[NETWORK] = _fit_kindwise("network")(train_task)
    comb = _combination_predictor(train_task, seed, network)
    if comb is not None:
        out[COMBINATION] = comb
    _CANDIDATES.clear()
    _CANDIDATES[key] = dict(out)
    return out


_CANDIDATES: dict[str, dict[str, Predict]] = {}
"""The last :func:`fit_candidates` result of this process, keyed by :func:`_task_key`: the fits are
deterministic, so a second call on the same training task (the fallback agent after the policy
agent) reuses them instead of fitting the network and the combination again."""


def _task_key(task, seed: int, network: bool) -> str:
    """A digest of everything :func:`fit_candidates` reads from ``task``, with its arguments."""
    import hashlib

    h = hashlib.blake2b(digest_size=20)
    h.update(repr((int(seed), bool(network), list(task.labels), [p.to_dict() for p in task.perturbations],
                   {m: list(v) for m, v in task.features.items()})).encode())
    arrays = [task.deltas, task.control_mean, task.states, task.cell_states or {}]
    for group in arrays:
        for name in sorted(group):
            a = np.ascontiguousarray(group[name])
            h.update(f"{name}:{a.dtype}:{a.shape}".encode())
            h.update(a.tobytes())
    h.update(np.ascontiguousarray(task.pseudotime).tobytes())
    for frame in (task.gene_features, task.embedding):
        if frame is not None and len(frame):
            h.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
            h.update(repr(list(frame.columns)).encode())
    return h.hexdigest()


def refit_candidate(name: str, fit_task, *, seed: int, network: bool = True) -> Predict | None:
    """Candidate ``name`` of :func:`fit_candidates` fitted again on ``fit_task`` (training +
    validation perturbations) before it answers; ``None`` when it cannot be refitted there."""
    if name in BASELINES:
        return BASELINES[name](fit_task)
    if name == NETWORK:
        return _fit_kindwise("network")(fit_task)
    if name == COMBINATION:
        return _combination_predictor(fit_task, seed, network)
    return None


def validation_split(kinds: list[str], candidates: list[int], n_validation: int, seed: int,
                     targets: list[tuple[str, ...]] | None = None) -> tuple[list[int], str]:
    """The validation perturbations among ``candidates`` (positions in ``kinds``), drawn by target
    gene set and stratified by perturbation kind; and why none can be held out ('' when they can).

    Every label of one target set and kind (per promoter ``STAT2_P1`` / ``STAT2_P2`` /
    ``STAT2_P1P2``, per guide ``STAT2g1`` / ``STAT2g2``;
    :func:`scagents.perturbation.target_groups`) is on one side, as the goal's own labels (same
    targets and kind) are all held out (``_goal_held``): a perturbation's effect is never both
    trained on and validated. ``min(n_validation, max(1, n // 3))`` of the ``n`` target sets are
    drawn, stratified by kind and shuffled by ``seed``; at least two must remain to train on.
    With one label per target set and kind (or ``targets=None``: each label its own set) the
    draw is the one over labels of earlier versions, position for position.

    Parameters
    ----------
    kinds
        Perturbation kind of every position.
    candidates
        Positions that may be drawn (the goal's are not).
    n_validation
        Most target sets to hold out (``RunOptions.n_validation``).
    seed
        Seed of the shuffle.
    targets
        Target genes of every position; ``None``: every label is its own target set.

    Returns
    -------
    validation, too_few
        Sorted positions of every label of the drawn target sets, and the reason nothing could be
        held out ('' when something was).
    """
    rng = np.random.default_rng(seed)
    candidates = list(candidates)
    if targets is None:
        members = {i: [i] for i in candidates}
    else:
        from scagents.perturbation import target_groups

        members = {candidates[g[0]]: [candidates[j] for j in g]
                   for g in target_groups([tuple(targets[i]) for i in candidates],
                                          [kinds[i] for i in candidates])}
    others = _stratified(list(members), list(kinds), rng)  # one kind per group
    n_val = min(n_validation, max(1, len(others) // 3))
    if len(others) - n_val < 2:  # nothing to train and validate on: only the network can answer
        what = ("perturbation(s)" if len(others) == len(candidates)
                else f"target gene set(s) ({len(candidates)} labels)")
        return [], (f"the data hold {len(others)} {what} besides the goal; at least "
                    f"{n_val + 2} are needed to train and validate a predictor")
    return sorted(j for first in others[:n_val] for j in members[first]), ""


def combinations_aside(targets: list[tuple[str, ...]], validation: list[int],
                       candidates: list[int]) -> list[int]:
    """Combinations kept out of training because they hold a validation gene.

    The rule of the goal (a combination holding the goal's genes is left out of every model
    when the goal's cells were measured; :func:`scagents.data.combinations_with`) applied to
    each single-gene validation target: a combination among ``candidates`` (two or more targets,
    not itself validated) holding such a gene is neither trained on nor scored, so the gene is
    validated as the goal is answered — without any of its cells. A combination drawn for
    validation moves alone (its singles stay in training: predicting a combination from its
    singles is the task).

    Parameters
    ----------
    targets
        Target genes of every position.
    validation
        Positions drawn for validation (:func:`validation_split`).
    candidates
        Positions that could be trained on.

    Returns
    -------
    list of int
        Sorted positions to leave out of training; ``[]`` when no combination holds a
        single-gene validation target.
    """
    held = {tuple(targets[i])[0] for i in validation if len(set(targets[i])) == 1}
    val = set(validation)
    return sorted(i for i in candidates if i not in val and len(set(targets[i])) > 1
                  and held & set(targets[i]))


def validation_count(task, labels: list[str], adjective: str = "") -> str:
    """What a validation set counts, for the run's sentences: ``"6 validation perturbations"``
    with one label per target set and kind, else ``"6 validation genes (9 labels)"``
    (``"6 validation perturbations (9 labels)"`` when a combination, or two kinds of one gene,
    is among them).

    Parameters
    ----------
    task
        The :class:`~scagents.envs.ResponseTask` the labels belong to.
    labels
        The validation labels.
    adjective
        Put before "validation" (``"held-out"`` → ``"6 held-out validation genes (9 labels)"``).
    """
    from scagents.perturbation import target_groups

    perts = [task.perturbations[task.index(lab)] for lab in labels]
    targets = [tuple(p.targets) for p in perts]
    n_sets = len(target_groups(targets, [p.kind for p in perts]))
    what = f"{adjective} validation" if adjective else "validation"
    if n_sets == len(labels):
        return f"{n_sets} {what} perturbation{'s' if n_sets != 1 else ''}"
    genes = all(len(set(t)) == 1 for t in targets) and len({frozenset(t) for t in targets}) == n_sets
    unit = "gene" if genes else "perturbation"  # one kind per gene, or combinations / two kinds
    return f"{n_sets} {what} {unit}{'s' if n_sets != 1 else ''} ({len(labels)} labels)"


EXPECTED_SIGN = {"knockout": -1, "knockdown": -1, "overexpression": 1, "stimulation": 1}
"""Direction a perturbation moves its own targets."""


def target_check(delta: pd.Series, targets: tuple[str, ...], kind: str) -> list[dict]:
    """The goal's direct targets: does the predicted change move each measured target the way the
    perturbation must (down under a knockout / knockdown, up under an over-expression)?

    A target agrees unless it moves the wrong way by more than ``MIN_LISTED``.
    """
    sign = EXPECTED_SIGN.get(kind, -1)
    out = []
    for t in targets:
        if t in delta.index:
            d = float(delta[t])
            out.append({"gene": t, "predicted_delta": round(d, 6),
                        "expected": "down" if sign < 0 else "up",
                        "agrees": bool(sign * d >= -MIN_LISTED)})
    return out


def _target_direction(pred: np.ndarray, genes: list[str], targets: tuple[str, ...],
                      kind: str) -> float:
    """Fraction of a perturbation's measured targets predicted to move the expected way
    (by more than ``MIN_LISTED``); NaN when no target is measured."""
    sign = EXPECTED_SIGN.get(kind, -1)
    pos = [genes.index(t) for t in targets if t in genes]
    if not pos:
        return float("nan")
    return float(np.mean([sign * pred[i] > MIN_LISTED for i in pos]))


def _score_rows(ctx: _Context, predict: Predict) -> pd.DataFrame:
    """Validation metrics of a predictor, one row per validation perturbation (with
    ``target_direction``: how its own measured targets are predicted to move, and
    ``target_group``: :func:`target_group_key`, the unit :func:`compare_to_baseline` pairs on)."""
    from scagents.metrics import prediction_report
    from scagents.twin.milieu import hold_inputs

    if ctx.data is not None:  # the twin's clamped inputs: 0 (no run data: a benchmark's view)
        predict = hold_inputs(predict, ctx.genes, ctx.data.inputs)
    rows = []
    for label in ctx.val_labels:
        p = ctx.task.perturbations[ctx.task.index(label)]
        obs = ctx.held.observed_delta(label, modality="rna")
        pred = np.asarray(predict(p.targets, p.kind), float)
        rep = prediction_report(pred, obs, k=min(20, len(obs)))
        rows.append({"perturbation": label, **rep,
                     "target_direction": _target_direction(pred, ctx.genes, p.targets, p.kind),
                     "target_group": target_group_key(p.targets, p.kind)})
    return pd.DataFrame(rows).set_index("perturbation")


def _units_of(rows: pd.DataFrame) -> np.ndarray | None:
    """The unit of each validation row (its ``target_group`` column), or ``None`` without one."""
    return rows["target_group"].to_numpy() if "target_group" in rows.columns else None


def _summary(rows: pd.DataFrame) -> dict[str, float]:
    """Mean validation metrics (and the spread of the MSE) of one model.

    Each mean is over the units (:func:`scagents.perturbation.unit_mean`: the labels of one target
    gene set and kind, ``STAT2_P1`` / ``STAT2_P2``, averaged first, as in the paired s.e. of
    :func:`compare_to_baseline`), ``mse_sd`` is the spread across the units, ``n`` counts the
    labels and ``n_units`` (only when fewer than the labels) the units. With one label per unit
    (or no ``target_group`` column) the means over the labels of earlier versions.
    """
    from scagents.perturbation import unit_mean, unit_means

    units = _units_of(rows)
    mse = unit_means(rows["mse"], units)
    out = {k: round(unit_mean(rows[k], units), 6) for k in
           ("mse", "pearson", "pearson_delta_topk", "direction_accuracy")}
    out["mse_sd"] = round(float(pd.Series(mse).std(ddof=1)) if len(mse) > 1 else 0.0, 6)
    if "target_direction" in rows and rows["target_direction"].notna().any():
        out["target_direction"] = round(unit_mean(rows["target_direction"], units), 6)
    out["n"] = float(len(rows))
    if len(mse) < len(rows):
        out["n_units"] = float(len(mse))
    return out


def _unit_noun(counted: str | None) -> str:
    """The unit a validation count names (``"3 validation genes (6 labels)"`` → ``"genes"``)."""
    words = (counted or "").split()
    return (words[words.index("validation") + 1] if "validation" in words[:-1]
            else "target gene sets")


@dataclass
class Verdict:
    """The outcome of :func:`compare_to_baseline`."""

    validated: bool
    best_baseline: str
    relative_improvement: float
    paired_mean: float
    paired_se: float
    checks: dict[str, bool]
    #: mean Pearson-delta top-20 of the policy / the best baseline on the perturbations both score
    pearson_pair: tuple[float, float] = (float("nan"), float("nan"))
    #: units the paired mean and s.e. are over (target gene sets and kinds) and the rows (labels)
    n_units: int = 0
    n_rows: int = 0

    def describe(self, policy: str, scores: dict[str, dict[str, float]], min_improvement: float,
                 counted: str | None = None) -> str:
        """The verdict in one sentence.

        Parameters
        ----------
        policy
            Name of the learned model.
        scores
            Model name → mean validation metrics (``mse``).
        min_improvement
            The rule's relative MSE margin.
        counted
            What the validation set counts (:func:`validation_count`, ``"3 validation genes (6
            labels)"``), named when the means and the paired s.e. are over fewer units than
            labels (each unit's labels averaged first); default ``"N target gene sets (M
            labels)"``. With one label per unit the sentence is that of earlier versions.
        """
        b = self.best_baseline
        mean_over, same, both = "", "", "perturbations"
        if 0 < self.n_units < self.n_rows:  # labels of one gene averaged: say what is counted
            noun = _unit_noun(counted)
            what = counted or f"{self.n_units} target gene sets ({self.n_rows} labels)"
            mean_over = f", means over the {what}, each one's labels averaged first"
            same, both = f" over the same {self.n_units} {noun}", noun
        parts = [
            f"{policy} validation MSE {scores[policy]['mse']:.4g} vs {scores[b]['mse']:.4g} for the "
            f"best baseline ({b}){mean_over}: {100 * self.relative_improvement:+.1f} % "
            f"(needs ≥ {100 * min_improvement:.0f} % lower)",
            (f"paired MSE difference {self.paired_mean:+.4g} ± {self.paired_se:.2g} s.e.{same} "
             "(must be below −1 s.e.)") if np.isfinite(self.paired_se) else
            (f"paired MSE difference {self.paired_mean:+.4g} on a single validation "
             f"{'gene' if 0 < self.n_units < self.n_rows else 'perturbation'} (no standard error from one, "
             "so this check cannot pass)"),
            f"Pearson-delta top-20 {self.pearson_pair[0]:.3f} vs {self.pearson_pair[1]:.3f} on the "
            f"{both} both score (must not be lower)"]
        failed = [name for name, ok in self.checks.items() if not ok]
        verdict = (f"{policy} beats the best baseline beyond the validation noise"
                   if self.validated else f"failed: {', '.join(failed)}")
        return "; ".join(parts) + f" → {verdict}"


def compare_to_baseline(rows: dict[str, pd.DataFrame], *, policy: str, baselines: list[str],
                        min_improvement: float = 0.05) -> Verdict:
    """Does the policy beat the best baseline by more than the validation noise?

    Parameters
    ----------
    rows
        Model name → per-validation-perturbation metrics (index: perturbation; columns ``mse`` and
        ``pearson_delta_topk``), all on the same perturbations. An optional ``target_group``
        column of the policy's rows (:func:`target_group_key`) names the unit of each row: the
        labels of one target gene set and kind (``STAT2_P1`` / ``STAT2_P2``) are correlated, so
        every mean below — the MSE of each model (which baseline is best, the relative
        improvement), the paired difference with its standard error, the Pearson-delta and the
        targets' direction — averages each unit's labels first, then the units
        (:func:`scagents.perturbation.unit_mean`): a gene with four guide labels weighs as much as
        a gene with one. Without it, or with one label per unit, every row is its own unit and
        the means are over rows, as in earlier versions.
    policy
        Name of the learned model in ``rows``.
    baselines
        Names of the baselines that may answer instead; the best is the lowest mean MSE (over
        units).
    min_improvement
        Relative reduction of the mean MSE (over units) the policy needs (0.05 = 5 %).

    Returns
    -------
    Verdict
        ``validated`` is true only when all three checks pass: ``"≥ min_improvement lower MSE"``,
        ``"paired improvement > 1 s.e."`` (mean over the units of the per-unit MSE differences
        policy − baseline below minus its standard error over the units; with one label per unit
        the per-perturbation differences) and ``"Pearson-delta not worse"`` (mean
        top-20 Pearson-delta at least the baseline's, both averaged over the units of the
        perturbations where both have one; none such passes); with a
        ``target_direction`` column also ``"targets' own direction not worse"`` (the fraction of
        the validation perturbations' measured targets moved the expected way, averaged over
        units).
    """
    from scagents.perturbation import unit_mean, unit_means

    pol = rows[policy]
    # the unit of each row (target gene set and kind): every mean below is over units, each
    # unit's labels averaged first, as the paired s.e.; one label per unit: the means over rows
    units = _units_of(pol)
    unit_of = pd.Series(units if units is not None else np.asarray(pol.index), index=pol.index)

    def mean(k: str, col: str, mask: pd.Series | None = None) -> float:
        r = rows[k] if mask is None else rows[k].reindex(pol.index)[mask]
        u = None if units is None else unit_of.reindex(r.index).to_numpy()
        return unit_mean(r[col], u)

    best = min(baselines, key=lambda k: (mean(k, "mse"), k))
    base = rows[best].reindex(pol.index)
    rel = 1.0 - mean(policy, "mse") / max(mean(best, "mse"), 1e-12)
    # one value per unit: its labels' differences averaged
    diff = unit_means((pol["mse"] - base["mse"]).to_numpy(float), unit_of.to_numpy())
    mean_diff = float(diff.mean())
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("inf")
    # Pearson-delta compared on the perturbations where both models have one (a model that
    # predicts no change for a perturbation has none there; averaging each over its own subset
    # would compare different perturbations)
    both = pol["pearson_delta_topk"].notna() & base["pearson_delta_topk"].notna()
    p_pol = mean(policy, "pearson_delta_topk", both) if both.any() else float("nan")
    p_base = mean(best, "pearson_delta_topk", both) if both.any() else float("nan")
    checks = {
        f"≥ {100 * min_improvement:.0f} % lower MSE": rel >= min_improvement,
        "paired improvement > 1 s.e.": bool(np.isfinite(se) and mean_diff < -se),
        "Pearson-delta not worse": bool(np.isnan(p_base) or (np.isfinite(p_pol) and p_pol >= p_base)),
    }
    if "target_direction" in pol and pol["target_direction"].notna().any():
        t_pol = mean(policy, "target_direction")
        t_base = (mean(best, "target_direction") if "target_direction" in base
                  and base["target_direction"].notna().any() else float("nan"))
        checks["targets' own direction not worse"] = bool(np.isnan(t_base) or t_pol >= t_base)
    return Verdict(validated=all(checks.values()), best_baseline=best, relative_improvement=rel,
                   paired_mean=mean_diff, paired_se=se, checks=checks, pearson_pair=(p_pol, p_base),
                   n_units=len(diff), n_rows=len(pol))


WRONG_TARGETS = "goal's targets moved the expected way"
"""The check :func:`answering_rule` adds when the policy moves a target the wrong way."""


@dataclass
class Answer:
    """The outcome of :func:`answering_rule`."""

    verdict: Verdict
    #: the policy did not validate but came close enough for a doubled budget to be worth trying
    retrain: bool
    #: who answers: :data:`POLICY`, a baseline's name, or ``None`` while a retrain comes first
    answer: str | None


def fallback_choice(validation: dict[str, dict[str, float]], baselines: list[str]) -> str:
    """The baseline with the lowest mean validation MSE (ties: by name)."""
    return min(baselines, key=lambda k: (validation[k][VALIDATION_METRIC], k))


def answering_rule(rows: dict[str, pd.DataFrame], *, baselines: list[str], attempt: int,
                   max_attempts: int, min_improvement: float,
                   wrong_targets: list[str] | tuple[str, ...] = ()) -> Answer:
    """Who answers: the rule of :func:`policy_agent`, the planner and :func:`fallback_agent`.

    The policy (``rows[POLICY]``) answers when :func:`compare_to_baseline` validates it and it
    moves none of the targets of the perturbations to be answered the wrong way
    (``wrong_targets`` non-empty fails it). Otherwise a retrain with a doubled budget comes first
    when its validation MSE is at most :data:`RETRAIN_GAP` above the best baseline's and
    ``attempt < max_attempts``; else the baseline with the lowest validation MSE
    (:func:`fallback_choice`) answers, refitted on training + validation perturbations
    (:func:`refit_candidate`). ``benchmarks/ablation.py`` scores this rule through
    :func:`answering_predictor`.
    """
    verdict = compare_to_baseline(rows, policy=POLICY, baselines=baselines,
                                  min_improvement=min_improvement)
    if wrong_targets:
        verdict.validated = False
        verdict.checks[WRONG_TARGETS] = False
    retrain = not verdict.validated and verdict.relative_improvement > -RETRAIN_GAP
    if verdict.validated:
        answer: str | None = POLICY
    elif retrain and attempt < max_attempts:
        answer = None
    else:
        answer = fallback_choice({k: _summary(rows[k]) for k in baselines}, baselines)
    return Answer(verdict=verdict, retrain=retrain, answer=answer)


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


def pair_candidates(genes: list[str], measured: list[str], goal_targets: tuple[str, ...],
                    *, max_genes: int = 20) -> list[str]:
    """Untested two-gene combinations, used when every single gene has been perturbed already.

    Pairs are formed among the perturbed genes (at most ``max_genes``, in data order), leaving out
    pairs that contain the goal's own targets and combinations already measured.
    """
    singles = [lab.split(" ")[0] for lab in measured if "+" not in lab.split(" ")[0]]
    pool = [g for g in dict.fromkeys(singles) if g in genes and g not in goal_targets][:max_genes]
    done = {lab.split(" ")[0] for lab in measured}
    return [f"{a}+{b}" for i, a in enumerate(pool) for b in pool[i + 1:]
            if f"{a}+{b}" not in done and f"{b}+{a}" not in done]


def rank_proposals(goal_delta: pd.Series, candidates: list[str], kind: str,
                   models: dict[str, Predict], *, n: int, goal_label: str) -> list[Proposal]:
    """Rank untested perturbations for the next experiment.

    Parameters
    ----------
    goal_delta
        Predicted change of the goal's perturbation (indexed by gene).
    candidates
        Untested perturbations: single genes (``"STAT4"``) or combinations (``"STAT4+GATA3"``).
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
            d = predict(tuple(gene.split("+")), kind)
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
            rationale=f"untested{' combination' if '+' in gene else ''}; predicted to move the genes "
                      f"{goal_label} changes most ({top}, …) "
                      f"by {eff:.3f} RMS, models disagree by ±{unc:.3f} "
                      f"({', '.join(f'{k} {v:.3f}' for k, v in per_model.items())})"))
    return out


def additive_of_singles(task, targets: tuple[str, ...], kind: str
                        ) -> tuple[np.ndarray, dict[str, list[str]]] | None:
    """The additive reference of a combination: the sum of its targets' measured single effects.

    The standard baseline for combinations (Norman et al. 2019; Ahlmann-Eltze et al. 2025): each
    target's observed single-gene effect of the same kind (the mean over its labels, e.g. one per
    guide) in ``task``, summed. Observed data, not a model: nothing is fitted.

    Parameters
    ----------
    task
        The run's :class:`scagents.envs.ResponseTask` (every perturbation, its observed deltas).
    targets, kind
        The combination.

    Returns
    -------
    tuple or None
        ``(delta, labels)`` — the summed observed delta over the task's genes and, per target, the
        labels whose effects were averaged — or ``None`` when the goal has fewer than two targets
        or a target has no measured single perturbation of that kind.
    """
    if len(targets) < 2:
        return None
    total = np.zeros(len(task.features["rna"]))
    used: dict[str, list[str]] = {}
    for t in targets:
        idx = [i for i, p in enumerate(task.perturbations)
               if tuple(p.targets) == (t,) and p.kind == kind]
        if not idx:
            return None
        used[t] = [task.labels[i] for i in idx]
        total += np.mean([task.observed_delta(i, modality="rna") for i in idx], axis=0)
    return total, used


def _finish(state: RunState, ctx: _Context, *, status: str, method: str, predict: Predict,
            validation: dict, attempts: int, reason: str = "", decision: str = "",
            fit_labels: list[str] | None = None, retrain: bool = False,
            policy_path: str | None = None, training_log: str | None = None,
            ensemble: dict[str, Predict] | None = None, n_proposals: int | None = None,
            models: dict[str, Predict] | None = None, calibrate: Predict | None = None
            ) -> PolicySummary:
    """Predict the goal with ``predict``, attach its calibrated intervals and the evidence check,
    write the prediction file and rank the proposals.

    ``models`` are the candidate predictors whose spread sets the interval scale (default
    ``{method: predict}``); ``calibrate`` is the version of ``predict`` fitted without the
    validation perturbations, whose validation residuals calibrate the intervals (default
    ``predict``). When no gene clears the noise the status becomes ``"no_effect"``: no up / down
    lists and no proposals — unless ``status`` is ``"not_validated"`` (a policy that did not
    validate answers nothing; its retrain or the fallback answers).
    """
    from scagents.evidence import evidence_check
    from scagents.metrics import prediction_report
    from scagents.perturbation import Perturbation
    from scagents.twin.milieu import hold_inputs

    predict, calibrate, models, ensemble = (hold_inputs(f, ctx.genes, ctx.data.inputs)
                                            for f in (predict, calibrate, models, ensemble))
    goal = Perturbation.from_dict(ctx.data.perturbation)
    pred = pd.Series(predict(goal.targets, goal.kind), index=ctx.genes)
    df = pd.DataFrame({"control_mean": ctx.control, "delta": pred})
    df["perturbed_mean"] = df["control_mean"] + df["delta"]
    interval = None
    df["delta_lower"] = df["delta_upper"] = np.nan
    if ctx.val_labels:  # no validation perturbation: nothing to calibrate an interval on
        interval = _intervals(ctx, predict, calibrate or predict, models or {method: predict},
                              goal)
        df["delta_lower"], df["delta_upper"] = interval.pop("lower"), interval.pop("upper")
    evaluation = None
    if ctx.goal_label is not None:
        obs = ctx.held.observed_delta(ctx.goal_label, modality="rna")
        df["observed_delta"] = obs
        k = min(20, len(obs))
        rep = prediction_report(pred.to_numpy(), obs, k=k)
        evaluation = {m: round(float(v), 6) for m, v in rep.items()
                      if m in ("mse", "pearson", "pearson_delta_topk", "direction_accuracy")}
        top = np.argsort(-np.abs(obs), kind="stable")[:k]
        evaluation["k"] = float(k)
        evaluation["same_sign_topk"] = float(np.sum(np.sign(pred.to_numpy()[top])
                                                    == np.sign(obs[top])))
        if ctx.floor is not None:  # of those genes, the ones whose change clears the noise
            clear = ctx.floor["clears"].reindex(ctx.genes).fillna(False).to_numpy(bool)[top]
            evaluation["k_clear"] = float(clear.sum())
            evaluation["same_sign_clear"] = float(np.sum((np.sign(pred.to_numpy()[top])
                                                          == np.sign(obs[top]))[clear]))
    if ctx.floor is not None:
        df["noise_floor"] = ctx.floor["noise_floor"]
        df["clears_noise"] = ctx.floor["clears"]
        # the twin's milieu inputs are set, not responding: a count change of theirs is only the normalisation
        responding = ctx.floor[~ctx.floor.index.isin(ctx.data.inputs)]
        evidence = evidence_check(responding, kind="observed", n_cells=ctx.n_goal_cells,
                                  inputs=ctx.data.inputs, silent_model=ctx.data.silent_model,
                                  replicated=ctx.replicated)
    elif interval is not None:
        df["clears_noise"] = (df["delta_lower"] > 0) | (df["delta_upper"] < 0)
        evidence = evidence_check(df.rename(columns={"delta_lower": "lower",
                                                     "delta_upper": "upper"}),
                                  kind="interval", level=interval["level"])
    else:
        df["clears_noise"] = False
        evidence = {"kind": "unavailable", "detectable": None, "n_clear": 0,
                    "n_genes": len(df), "cleared": [], "cells_needed": None,
                    "method": "no evidence check was possible: the goal's cells were not "
                              "measured and no validation perturbation calibrates an interval",
                    "needed": "To check the effect: measure the perturbation, or enough other "
                              "perturbations to validate a predictor."}
    evidence = _with_target_expression(ctx, evidence)
    additive = additive_of_singles(ctx.task, goal.targets, goal.kind)
    if additive is not None:  # the combination's reference: sum of the measured single effects
        df["additive_delta"] = additive[0]
    additive_labels = {} if additive is None else additive[1]
    generic = generic_answer(pred, ctx, goal, method)
    df = df.reindex(df["delta"].abs().sort_values(ascending=False).index)
    df.index.name = "gene"
    with atomic_path(ctx.out / PREDICTION_FILE) as tmp:
        df.round(8).to_csv(tmp)
    targets = target_check(pred, goal.targets, goal.kind)
    for t in targets:  # a target the control cells do not express cannot go down in RNA
        t["control_mean"] = round(float(df.loc[t["gene"], "control_mean"]), 6)

    # model inputs (fixed milieu signals on the twin) are set, not responding: never listed
    listed = df[~df.index.isin(ctx.data.inputs)]

    def rows(sel: pd.DataFrame) -> list[GeneEffect]:
        def num(x) -> float | None:
            return None if pd.isna(x) else round(float(x), 6)

        return [GeneEffect(gene=str(g), delta=round(float(r.delta), 6),
                           control_mean=round(float(r.control_mean), 6),
                           perturbed_mean=round(float(r.perturbed_mean), 6),
                           lower=num(r.delta_lower), upper=num(r.delta_upper),
                           clears_noise=None if evidence["detectable"] is None
                           else bool(r.clears_noise))
                for g, r in sel.head(10).iterrows()]

    # a policy that did not validate does not answer, not even "no effect": the retrain or the
    # fallback answers, and the evidence of that answer decides
    if evidence["detectable"] is False and status != "not_validated":
        status = "no_effect"
        note = evidence.get("target_note", "")
        how = evidence["method"]
        decision = (f"No detectable effect: {note + ' Evidence: ' if note else ''}"
                    f"{how}; no gene clears it, so no gene is "
                    f"listed as up or down and no next experiment is proposed. "
                    f"{evidence['needed']} (The prediction of {method} is kept in "
                    f"{PREDICTION_FILE} for reference.) " + decision).strip()
        return PolicySummary(
            status=status, reason=reason, attempts=attempts, method=method,
            policy_path=policy_path, training_log=training_log, prediction_path=PREDICTION_FILE,
            validation=validation, validation_labels=ctx.val_labels,
            validation_count=ctx.n_val, validation_aside=list(ctx.aside_labels),
            train_labels=list(ctx.train.labels),
            fit_labels=list(ctx.train.labels if fit_labels is None else fit_labels),
            decision=decision, retrain=False, evaluation=evaluation, evidence=evidence,
            interval=interval, target_check=targets, additive_labels=additive_labels, generic=generic,
            held_out=ctx.goal_label,
            held_out_labels=list(ctx.goal_held), held_out_cells=ctx.goal_cells,
            held_out_note=ctx.held_note, network_signs=_network_signs(ctx))
    candidates = [] if n_proposals == 0 else ctx.data.candidates or pair_candidates(ctx.genes, ctx.data.measured, goal.targets)
    proposals = rank_proposals(pred, candidates, goal.kind, ensemble or {method: predict},
                               n=ctx.opts.n_proposals if n_proposals is None else n_proposals,
                               goal_label=goal.label)
    return PolicySummary(
        status=status, reason=reason, attempts=attempts, method=method, policy_path=policy_path,
        training_log=training_log, prediction_path=PREDICTION_FILE, validation=validation,
        validation_labels=ctx.val_labels, validation_count=ctx.n_val,
        validation_aside=list(ctx.aside_labels), train_labels=list(ctx.train.labels),
        fit_labels=list(ctx.train.labels if fit_labels is None else fit_labels),
        decision=decision, retrain=retrain,
        held_out=ctx.goal_label, held_out_labels=list(ctx.goal_held),
        held_out_cells=ctx.goal_cells, held_out_note=ctx.held_note,
        top_up=rows(listed[listed["delta"] > MIN_LISTED]),
        top_down=rows(listed[listed["delta"] < -MIN_LISTED]),
        evaluation=evaluation, proposals=proposals, evidence=evidence, interval=interval,
        target_check=targets, additive_labels=additive_labels, generic=generic,
        network_signs=_network_signs(ctx))


GENERIC_PEARSON = 0.99
"""An answer whose Pearson correlation with the mean training effect (over all genes) is at least this, at a
size within ``GENERIC_SIZE`` of it, is called the mean effect (nothing in it specific to the goal)."""
GENERIC_SIZE = (0.9, 1.1)


def generic_answer(pred: pd.Series, ctx: _Context, goal, method: str) -> dict | None:
    """Whether the answer is, in effect, the mean effect of the training perturbations of its kind.

    A candidate that cannot place the goal's perturbation (a target outside the genes worked on has no gene
    embedding and no network node) falls back to that mean without saying so; the report must say it. On the
    twin the answer is held at 0 on the milieu inputs (:func:`scagents.twin.milieu.hold_inputs`), and so is the
    mean it is compared with.

    Returns
    -------
    dict or None
        ``pearson`` and ``size_ratio`` (‖answer‖ / ‖mean effect‖) of the answer against the mean training
        effect of its kind, and ``unplaced`` (the goal's targets that are not among the genes worked on),
        when the answer is that mean (:data:`GENERIC_PEARSON`, :data:`GENERIC_SIZE`); else ``None`` (also
        when the mean-effect candidate itself answered: the report names it then).
    """
    from scagents.metrics import pearson
    from scagents.twin.milieu import hold_inputs

    name = "mean effect per kind"
    if method == name:
        return None
    # the mean over the training perturbations, and over training + validation (what an answer is refitted on);
    # held at the twin's milieu inputs as the answer is (_finish), else those genes alone hide the mean
    data = getattr(ctx, "data", None)
    inputs = list(data.inputs) if data is not None else []
    means = [hold_inputs(f, ctx.genes, inputs)
             for f in (ctx.baselines.get(name),
                       BASELINES[name](ctx.fit_task) if getattr(ctx, "fit_task", None) is not None else None)
             if f is not None]
    a = pred.to_numpy(dtype=np.float64)
    if not np.isfinite(a).all():
        return None
    for mean_fn in means:
        mean = np.asarray(mean_fn(goal.targets, goal.kind), dtype=np.float64)
        norm = float(np.linalg.norm(mean))
        if norm == 0:
            continue
        r, ratio = float(pearson(a, mean)), float(np.linalg.norm(a) / norm)
        if r >= GENERIC_PEARSON and GENERIC_SIZE[0] <= ratio <= GENERIC_SIZE[1]:
            genes = set(ctx.genes)
            return {"pearson": round(r, 4), "size_ratio": round(ratio, 4),
                    "unplaced": [str(t) for t in goal.targets if t not in genes]}
    return None


def _network_signs(ctx: _Context) -> dict:
    """:func:`scagents.grn.sign_agreement` of the network-propagation candidate fitted on the training
    perturbations ({} when there is none, or it is the network agent's network)."""
    return dict(getattr(ctx.baselines.get(NETWORK), "sign_agreement", None) or {})


def _with_target_expression(ctx: _Context, evidence: dict) -> dict:
    """Attach the twin's check of the goal's targets (:attr:`DataSummary.target_expression`): a
    knocked-out / knocked-down target that is not expressed in the milieu, and whose own change
    does not clear the noise, is explained in ``target_note`` (why no effect on it can be
    expected, and the milieus of the model's inputs that express it)."""
    checks = list(ctx.data.target_expression)
    if not checks:
        return evidence
    clears = ctx.floor["clears"] if ctx.floor is not None else None
    off = [t for t in checks if not t["expressed"]
           and (clears is None or not bool(clears.get(t["gene"], False)))]
    note = " ".join(t["sentence"] for t in off)
    out = {**evidence, "target_expression": checks, "target_note": note}
    if off and evidence.get("detectable") is False and not ctx.data.silent_model:
        # more cells cannot lower a gene that is off: what is needed is a milieu expressing it
        hints = []
        for t in off:
            if t["switch_on"]:
                best = t["switch_on"][0]["inputs"]
                hints.append(f"{t['gene']}: --inputs " + " ".join(
                    f"{g}={v:g}" for g, v in best.items() if v != t["milieu"].get(g)))
        genes = ", ".join(t["gene"] for t in off)
        out["needed"] = (f"To detect an effect: a milieu in which {genes} "
                         f"{'is' if len(off) == 1 else 'are'} expressed"
                         + (f" ({'; '.join(hints)})" if hints else
                            " (none of the model's input combinations checked expresses it: "
                            "other initial states)")
                         + "; more cells cannot lower a gene that is already off.")
        out["cells_needed"] = None
    return out


def _intervals(ctx: _Context, predict: Predict, calibrate: Predict, models: dict[str, Predict],
               goal) -> dict:
    """Per-gene intervals of the goal's predicted change, split-conformal on the validation
    perturbations (:mod:`scagents.evidence`): scale = spread of ``models``' predictions with the
    gene's spread over the training perturbations; ``q`` = the conformal quantile of the
    validation residuals of ``calibrate`` over that scale, the scores of one target gene set's
    labels averaged into one unit (:attr:`_Context.val_groups`; ``n_calibration`` counts units)."""
    from scagents.evidence import (
        INTERVAL_LEVEL,
        conformal_intervals,
        conformal_quantile,
        interval_scale,
    )

    res, scales = [], []
    for label in ctx.val_labels:
        p = ctx.task.perturbations[ctx.task.index(label)]
        obs = np.asarray(ctx.held.observed_delta(label, modality="rna"), float)
        cand = np.stack([np.asarray(f(p.targets, p.kind), float) for f in models.values()])
        res.append(obs - np.asarray(calibrate(p.targets, p.kind), float))
        scales.append(interval_scale(cand, ctx.gene_sd))
    groups = ctx.val_groups
    q = conformal_quantile(np.stack(res), np.stack(scales), level=INTERVAL_LEVEL, groups=groups)
    cand = np.stack([np.asarray(f(goal.targets, goal.kind), float) for f in models.values()])
    scale = interval_scale(cand, ctx.gene_sd)
    lower, upper = conformal_intervals(np.asarray(predict(goal.targets, goal.kind), float),
                                       scale, q)
    return {"level": INTERVAL_LEVEL, "q": round(q, 6), "n_calibration": len(groups),
            "models": list(models),
            "method": (f"split-conformal on the {ctx.n_val}: "
                       f"delta ± q · scale, scale = spread of the {len(models)} candidate "
                       "predictions combined with the gene's spread over the training "
                       f"perturbations, q = {q:.3g}, the {100 * INTERVAL_LEVEL:.0f} % conformal "
                       "quantile of |observed − predicted| / scale"
                       + _units_clause(groups, len(ctx.val_labels))),
            "columns": ["delta_lower", "delta_upper"], "lower": lower, "upper": upper}


def policy_train_config(steps: int, seed: int):
    """The :class:`~scagents.policies.TrainConfig` of the agent's policy training.

    ``scagents.evaluation.default_train_config("trpo_ppo", total_steps=steps, seed=seed)``: the
    configuration of the ablation's RL rows (``benchmarks/ablation.py``; 2 × 256 hidden units,
    256 environments × 8 steps, per-gene rewards, γ = 0), whose budget of 65,536 steps (the
    default :attr:`RunOptions.policy_steps`) was chosen there by inner validation on the twin.
    The one constructor used by :func:`policy_agent` (attempt ``a``: ``steps = policy_steps ·
    2^(a-1)``, ``seed = seed + a - 1``), :func:`answering_predictor` and the benchmarks that
    measure the agent's policy (``benchmarks/intervals.py``).
    """
    from scagents.evaluation import default_train_config

    return default_train_config("trpo_ppo", total_steps=int(steps), seed=int(seed))


def _train(train_task, steps: int, seed: int, *, progress: bool = False,
           log_path: Path | None = None):
    """Train the TRPO→PPO policy on ``train_task`` with :func:`policy_train_config`."""
    from scagents.envs import PerturbationResponseVecEnv
    from scagents.policies import train

    cfg = policy_train_config(steps, seed)
    env = PerturbationResponseVecEnv(train_task, num_envs=cfg.n_envs)
    return train(env, cfg, progress=progress, log_path=log_path)


def _train_policy(ctx: _Context, attempt: int) -> tuple[Predict, dict]:
    """Train the TRPO→PPO policy (attempt ``a``: ``policy_steps · 2^(a-1)`` steps, seed
    ``seed + a - 1``) on the training perturbations; save it and its training log."""
    from scagents.policies import save

    steps = ctx.opts.policy_steps * 2 ** (attempt - 1)
    t0 = time.perf_counter()
    policy, log = _train(ctx.train, steps, ctx.opts.seed + attempt - 1,
                         progress=ctx.opts.progress, log_path=ctx.out / TRAINING_LOG)
    train_s = time.perf_counter() - t0
    save(policy, ctx.out / POLICY_FILE)
    return _policy_predictor(ctx, policy), {
        "steps": steps, "train_seconds": round(train_s, 2),
        "final_return": float(log.rows[-1]["episodic_return_mean"]),
        "policy_path": POLICY_FILE, "training_log": TRAINING_LOG}


def answering_predictor(task, *, seed: int = 0, answer_for: list | tuple = (),
                        network: bool = True, **options) -> tuple[Callable, dict]:
    """The policy agent's answer, as a predictor fitted on ``task``'s perturbations only.

    What :func:`policy_agent`, the planner and :func:`fallback_agent` do for a goal, with every
    perturbation of ``task`` in the role of the measured perturbations besides the goal: a
    validation set is held out (:func:`validation_split`), the candidates are fitted on the rest
    (:func:`fit_candidates`), the policy is trained (:func:`policy_train_config`, attempt ``a``:
    ``policy_steps · 2^(a-1)`` steps, seed ``seed + a - 1``) and :func:`answering_rule` decides —
    retraining while it says so — who answers; a baseline answers refitted on all of ``task``
    (:func:`refit_candidate`). ``benchmarks/ablation.py`` scores it on held-out perturbations.

    Parameters
    ----------
    task
        The :class:`~scagents.envs.ResponseTask` to learn from (with its cells kept when
        ``network``).
    seed
        The run's seed (validation split, inner folds, policy training).
    answer_for
        The perturbations to be answered: the policy fails validation when it moves one of their
        own targets the wrong way (the agent's check of the goal's targets; predictions only).
    network
        Whether network propagation is a candidate (the agent: unless ``--skip-network``).
    **options
        :class:`~scagents.agents.state.RunOptions` fields of the rule (``n_validation``,
        ``policy_steps``, ``max_policy_attempts``, ``min_improvement``); default: the agent's.

    Returns
    -------
    predict, info
        ``predict(perturbation) -> 1-D delta`` of the answering candidate, and ``answered_by``,
        ``attempts``, ``steps``, ``validation_labels``, ``validation_count`` (what they count:
        :func:`validation_count`) and the validation MSE of each candidate (the mean over the
        validation units, each one's labels averaged first: :func:`_summary`).
    """
    from scagents.envs import predict_delta
    from scagents.errors import DataError
    from scagents.perturbation import unit_mean

    fields = RunOptions.model_fields
    opt = {k: options.get(k, fields[k].default) for k in
           ("n_validation", "policy_steps", "max_policy_attempts", "min_improvement")}
    unknown = set(options) - set(opt)
    if unknown:
        raise DataError(f"answering_predictor: unknown option(s) {sorted(unknown)}.")
    targets = [tuple(p.targets) for p in task.perturbations]
    everything = list(range(task.n_perturbations))
    val, too_few = validation_split([p.kind for p in task.perturbations], everything,
                                    opt["n_validation"], seed, targets=targets)
    if too_few:
        raise DataError(f"answering_predictor: {too_few}.")
    train, held = task.split(test=val + combinations_aside(targets, val, everything))
    genes = list(task.features["rna"])
    view = _Context(opts=RunOptions(goal="benchmark"), data=None, out=Path("."), task=task,
                    train=train, held=held, fit_task=task, genes=genes, goal_label=None,
                    val_labels=[task.labels[i] for i in val], control=pd.Series(dtype=float))
    baselines = fit_candidates(train, seed=seed, network=network)
    rows = {name: _score_rows(view, f) for name, f in baselines.items()}
    for attempt in range(1, opt["max_policy_attempts"] + 1):
        steps = opt["policy_steps"] * 2 ** (attempt - 1)
        policy, _ = _train(train, steps, seed + attempt - 1)

        def pol(targets, kind, policy=policy):
            from scagents.perturbation import Perturbation

            return predict_delta(policy, train, Perturbation(tuple(targets), kind=kind),
                                 modality="rna", max_cells=256)

        rows[POLICY] = _score_rows(view, pol)
        wrong = [t["gene"] for p in answer_for for t in
                 target_check(pd.Series(pol(p.targets, p.kind), index=genes), p.targets, p.kind)
                 if not t["agrees"]]
        rule = answering_rule(rows, baselines=list(baselines), attempt=attempt,
                              max_attempts=opt["max_policy_attempts"],
                              min_improvement=opt["min_improvement"], wrong_targets=wrong)
        if rule.answer is not None:
            break
    name = rule.answer
    chosen = pol if name == POLICY else (
        refit_candidate(name, task, seed=seed, network=network) or baselines[name])
    info = {"answered_by": name, "attempts": attempt, "steps": steps,
            "validation_labels": list(view.val_labels), "validation_count": view.n_val,
            "validation_mse": {k: unit_mean(r["mse"], _units_of(r)) for k, r in rows.items()}}
    return (lambda p: np.asarray(chosen(p.targets, p.kind), float)), info


def _validate(ctx: _Context, models: dict[str, Predict]) -> tuple[dict, dict]:
    rows = {name: _score_rows(ctx, f) for name, f in models.items()}
    return rows, {name: _summary(r) for name, r in rows.items()}


def policy_agent(state: RunState) -> dict:
    """Train the TRPO→PPO response policy, validate it against the baselines and predict the goal.

    Each call is one training attempt (the planner calls it again for a retrain); attempt ``a``
    trains for ``policy_steps · 2^(a-1)`` environment steps with seed ``seed + a - 1``. The
    decision rule is :func:`compare_to_baseline` with ``options.min_improvement``.

    Returns
    -------
    dict
        State update: ``policy`` (a :class:`PolicySummary` dump; ``status`` is ``"validated"`` or
        ``"not_validated"`` — with ``retrain`` saying whether a doubled budget is worth trying —
        or ``"skipped"`` when :mod:`scagents.envs` is unavailable) and a log record;
        ``stop_reason`` when the data cannot support the goal.
    """
    prev = state.get("policy") or {}
    attempt = int(prev.get("attempts", 0)) + 1
    try:
        from scagents.envs import PerturbationResponseVecEnv  # noqa: F401
        from scagents.policies import TrainConfig, save, train  # noqa: F401
    except ImportError as exc:
        s = PolicySummary(status="skipped", attempts=attempt,
                          reason=f"skipped: the response environments are unavailable ({exc})")
        return _out("policy", s)
    ctx = _context(state, candidates=False)
    if ctx.too_few:  # the fallback answers through the network (see _network_answer)
        return _out("policy", PolicySummary(status="skipped", attempts=attempt,
                                            reason=f"skipped: {ctx.too_few}"))
    if ctx.floor is not None and not ctx.floor["clears"].any():
        _fit_context_candidates(state, ctx)
        return _no_effect_without_training(state, ctx, attempt)
    # the candidates (NumPy) are fitted on a second thread while the policy trains (torch, one
    # thread): the same fits, in the time of the training
    from concurrent.futures import ThreadPoolExecutor

    def fit_beside() -> None:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):  # one core each
            _fit_context_candidates(state, ctx)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="candidates") as pool:
        fitting = pool.submit(fit_beside)
        predict, info = _train_policy(ctx, attempt)
        fitting.result()
    rows, validation = _validate(ctx, {POLICY: predict, **ctx.baselines, **ctx.reference})
    from scagents.perturbation import Perturbation

    goal = Perturbation.from_dict(ctx.data.perturbation)
    wrong = [t for t in target_check(pd.Series(predict(goal.targets, goal.kind), index=ctx.genes),
                                     goal.targets, goal.kind) if not t["agrees"]]
    rule = answering_rule(rows, baselines=list(ctx.baselines), attempt=attempt,
                          max_attempts=ctx.opts.max_policy_attempts,
                          min_improvement=ctx.opts.min_improvement,
                          wrong_targets=[t["gene"] for t in wrong])
    verdict, retrain = rule.verdict, rule.retrain
    reason = (verdict.describe(POLICY, validation, ctx.opts.min_improvement, counted=ctx.n_val)
              + f" (after {info['steps']} training steps)")
    if wrong:
        reason += ("; it cannot be validated: it predicts "
                   + ", ".join(f"{t['gene']} {t['predicted_delta']:+.3f}" for t in wrong)
                   + f" under {goal.label} (expected {wrong[0]['expected']})")
    if verdict.validated:
        decision = (f"The {POLICY} answers: on {ctx.n_val_held} it beat the best baseline ({verdict.best_baseline}) by more "
                    f"than the validation noise. {reason}.")
    else:
        decision = (f"The {POLICY} does not answer: {reason}. "
                    + ("A retrain with a doubled budget follows." if retrain else
                       f"Its MSE is more than {100 * RETRAIN_GAP:.0f} % above the best baseline's, "
                       "so no retrain is attempted."))
    ensemble = {POLICY: predict, **{k: v for k, v in ctx.baselines.items()
                                   if k != "mean effect per kind"}}
    s = _finish(state, ctx, status="validated" if verdict.validated else "not_validated",
                method=POLICY, predict=predict, validation=validation, attempts=attempt,
                reason=reason, decision=decision, retrain=retrain,
                fit_labels=list(ctx.train.labels), policy_path=info["policy_path"],
                training_log=info["training_log"], ensemble=ensemble,
                models={POLICY: predict, **ctx.baselines, **ctx.reference})
    return _out("policy", s, extra={k: info[k] for k in ("train_seconds", "steps", "final_return")
                                    if k in info})


def _no_effect_without_training(state: RunState, ctx: _Context, attempt: int) -> dict:
    """The goal's observed change does not clear its noise floor: nothing to learn or propose.

    The baselines are still validated and the best one's prediction is kept for reference (with
    its intervals); the policy is not trained."""
    models = {**ctx.baselines, **ctx.reference}
    validation = _validate(ctx, models)[1]
    name = min(ctx.baselines, key=lambda k: (validation[k][VALIDATION_METRIC], k))
    reason = ("the goal's observed change does not clear its noise floor, so the policy was not "
              "trained")
    s = _finish(state, ctx, status="no_effect", method=name, predict=ctx.baselines[name],
                validation=validation, attempts=attempt, reason=reason,
                decision=f"The {POLICY} was not trained.", models=models)
    return _out("policy", s)


def fallback_agent(state: RunState) -> dict:
    """Answer with the best-validating baseline when the policy did not validate.

    The candidates are those of :func:`fit_candidates`; the one with the lowest mean validation
    MSE answers (:func:`fallback_choice`). It is refitted on the training and validation
    perturbations (the goal's perturbation stays held out, :func:`refit_candidate`) before
    predicting the goal. The validation table of the
    policy attempts is kept, and the reason is stated in ``decision``.

    Returns
    -------
    dict
        State update: ``policy`` with ``status="fallback"`` and the baseline's prediction.
    """
    prev = PolicySummary.model_validate(state.get("policy") or {"status": "skipped"})
    ctx = _context(state)
    if ctx.too_few:
        return _network_answer(state, ctx, prev)
    validation = dict(prev.validation)
    missing = {k: f for k, f in {**ctx.baselines, **ctx.reference}.items() if k not in validation}
    validation.update(_validate(ctx, missing)[1])
    name = fallback_choice(validation, list(ctx.baselines))
    others = ", ".join(f"{k} {validation[k]['mse']:.4g}" for k in ctx.baselines if k != name)
    refit = refit_candidate(name, ctx.fit_task, seed=ctx.opts.seed,
                            network=not ctx.opts.skip_network)
    predict, fit_labels = refit or ctx.baselines[name], list(ctx.fit_task.labels)
    # only a measured goal has cells to hold out; an unmeasured one is simply not among them
    fitted = (f"refitted on {len(fit_labels)} perturbations (training + validation"
              + ("; the goal's perturbation held out)" if ctx.goal_held else ")"))
    if name == COMBINATION:
        fitted += ", its weights chosen again by inner validation over them"
    elif name == NETWORK:
        fitted += ", its network inferred again from their cells and the control cells"
    why_policy = (f"the {POLICY} did not validate — {prev.reason}" if prev.status == "not_validated"
                  else f"the {POLICY} could not be used — {prev.reason or prev.status}")
    reason = (f"{why_policy}; predicting with {name}, the baseline with the lowest validation MSE "
              f"({validation[name]['mse']:.4g}; {others})")
    if len(ctx.val_groups) < len(ctx.val_labels):  # the means are over genes: say so
        lowest = (f"the lowest validation MSE, mean over the {ctx.n_val_held} with each one's "
                  f"labels averaged first ({validation[name]['mse']:.4g} vs {others})")
    else:
        lowest = (f"the lowest mean validation MSE ({validation[name]['mse']:.4g} vs {others}) on "
                  f"{ctx.n_val_held}")
    decision = (f"{name} answers. Why: {why_policy}. Among the baselines {name} had {lowest}; "
                f"{fitted}.")
    ensemble = {k: v for k, v in ctx.baselines.items() if k != "mean effect per kind"}
    ensemble[name] = predict
    s = _finish(state, ctx, status="fallback", method=name, predict=predict,
                validation=validation, attempts=prev.attempts, reason=reason, decision=decision,
                fit_labels=fit_labels, policy_path=prev.policy_path,
                training_log=prev.training_log, ensemble=ensemble,
                models={**ctx.baselines, **ctx.reference}, calibrate=ctx.baselines[name])
    if s.interval is not None:
        s.interval.update(_fallback_calibration(ctx, name,
                                                refitted=refit is not None,
                                                q=s.interval["q"]))
    return _out("fallback", s)


def _units_clause(groups: list[list[int]], n_labels: int) -> str:
    """The clause of the interval's method saying what the conformal rank counts when a validation
    target gene set has several labels (``"; the labels of each of the 3 target gene sets count as
    one calibration unit (their scores averaged)"``); ``""`` with one label each."""
    if len(groups) == n_labels:
        return ""
    return (f"; the labels of each of the {len(groups)} target gene sets count as one calibration "
            "unit (their scores averaged)")


def _fallback_calibration(ctx: _Context, name: str, *, refitted: bool, q: float) -> dict:
    """How the fallback's intervals were calibrated (``interval["calibration"]`` and the end of
    ``interval["method"]``): split-conformal on the validation perturbations, with ``q`` from the
    residuals of ``name`` fitted on the training perturbations only — never from a fit that saw
    them; a refitted baseline keeps that ``q`` and scale (the ``refit`` rows of
    ``benchmarks/intervals.py`` measure its coverage)."""
    from scagents.evidence import INTERVAL_LEVEL

    n_val, n_train = ctx.n_val, ctx.train.n_perturbations
    text = (f"split-conformal on the {n_val}: q from the residuals of "
            f"{name} fitted on the {n_train} training perturbations only (it never saw the "
            "validation perturbations)")
    if refitted:
        text += (f"; the answer is {name} refitted on training + validation, with the same q and "
                 "scale")
    return {"calibration": text, "calibration_fit": "training perturbations only",
            "method": f"{text}. Interval: delta ± q · scale, scale = spread of the candidate "
                      "predictions combined with the gene's spread over the training "
                      f"perturbations, q = {q:.3g}, the {100 * INTERVAL_LEVEL:.0f} % conformal "
                      "quantile of |observed − predicted| / scale on the validation perturbations"
                      + _units_clause(ctx.val_groups, len(ctx.val_labels))}


def _network_answer(state: RunState, ctx: _Context, prev: PolicySummary) -> dict:
    """Too few measured perturbations to train and validate a predictor: predict the goal by
    in-silico perturbation through the inferred network (status ``"unchecked"``), or stop with
    "No prediction possible" when there is no network or the goal's genes reach no other gene."""
    from scagents.perturbation import Perturbation

    goal = Perturbation.from_dict(ctx.data.perturbation)
    predict = ctx.baselines.get(NETWORK)
    net = NetworkSummary.model_validate(state.get("network") or {"status": "skipped"})
    moved = pd.Series(0.0, index=ctx.genes)
    if predict is not None:
        moved = pd.Series(predict(goal.targets, goal.kind), index=ctx.genes).drop(
            list(goal.targets), errors="ignore")
    n_moved = int((moved.abs() > MIN_LISTED).sum())
    if not n_moved:
        why = (f"no regulatory network was inferred — {net.reason.removeprefix('skipped: ')}"
               if predict is None else
               f"{'+'.join(goal.targets)} has no edges to other genes in the inferred network")
        msg = (f"No prediction possible for {goal.label}: {ctx.too_few}, and {why}. Needed: a "
               "network with edges from the goal's gene(s) (run without --skip-network) or more "
               "measured perturbations to learn from.")
        rec = AgentRecord(agent="fallback", status="failed", summary=msg)
        return {"stop_reason": msg, "log": [rec.model_dump()]}
    measured = [lab for lab in ctx.task.labels if lab != ctx.goal_label]
    check = ("checked only against the goal's own observed cells (below)" if ctx.goal_label
             else "no measured perturbation could be held out to check a prediction against")
    reason = f"not validated: {check}"
    decision = (f"{NETWORK} answers, not validated. Why: {ctx.too_few} (measured besides the "
                f"goal: {', '.join(measured) or 'none'}), so neither the {POLICY} nor a fitted "
                f"baseline can be trained and checked. The {goal.kind} of "
                f"{'+'.join(goal.targets)} is propagated through the regulatory network inferred "
                f"from control cells ({net.n_edges} edges, {net.method}); it moves {n_moved} other "
                f"genes by more than {MIN_LISTED}. Not validated: {check}; treat it as a "
                "hypothesis. No next perturbations are ranked: a ranking would rest on the same "
                "unchecked network. No interval is given: with no validation perturbation nothing "
                "calibrates one.")
    s = _finish(state, ctx, status="unchecked", method=NETWORK, predict=predict, validation={},
                attempts=prev.attempts, reason=reason, decision=decision, fit_labels=[],
                n_proposals=0)
    return _out("fallback", s.model_copy(update={"train_labels": []}))


def _out(agent: str, s: PolicySummary, extra: dict | None = None) -> dict:
    figures = {"status": s.status, "method": s.method, "attempts": s.attempts}
    if s.validation:
        figures["validation_mse"] = {k: v["mse"] for k, v in s.validation.items()}
    if s.evaluation:
        figures["goal_pearson"] = s.evaluation.get("pearson")
    if s.evidence:
        figures["detectable"] = s.evidence["detectable"]
        figures["genes_above_noise"] = s.evidence["n_clear"]
    figures.update(extra or {})
    rec = AgentRecord(agent=agent, status=s.status,
                      summary=s.reason or f"predicted with {s.method}", figures=jsonable(figures))
    return {"policy": s.model_dump(), "log": [rec.model_dump()]}
