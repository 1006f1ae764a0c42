"""The typed state of the agent graph and the pydantic models passed between agents.

The graph state (:class:`RunState`) is a ``TypedDict`` of plain JSON values so that LangGraph's
SQLite checkpoints stay small and portable; each agent reads its inputs with the pydantic models
below (``DataSummary.model_validate(state["data"])``) and writes its output with ``model_dump()``.
Big objects (AnnData / MuData, trained policies, prediction tables) live on disk in the run folder
and the state holds their file names, relative to the run folder.
"""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AGENTS", "RunOptions", "DataSummary", "IntegrationSummary", "NetworkSummary", "GeneEffect",
    "Proposal", "PolicySummary", "ReportSummary", "AgentRecord", "RunState", "initial_state",
    "run_path",
]

#: the specialist agents, in the order the deterministic planner calls them
AGENTS: tuple[str, ...] = ("data", "integration", "network", "policy", "fallback", "report")

Status = Literal["done", "skipped", "failed", "validated", "not_validated", "fallback", "unchecked",
                 "no_effect"]
"""``unchecked``: a prediction no measured perturbation could check (too few to validate on);
``no_effect``: no gene's change clears the noise (scagents.evidence)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunOptions(_Model):
    """What the user asked for (``python -m scagents run`` options)."""

    goal: str = Field(description='The goal in plain words, e.g. "predict IFNG knockout".')
    data: str | None = Field(None, description="Data file; None runs on the digital twin.")
    model: str = Field("th", description="Twin model when data is None.")
    n_cells: int = Field(1000, ge=10, description=(
        "Cells simulated per condition on the twin (control and the goal's perturbation); the "
        "default is large enough that a knocked-out active gene's own change is significant on "
        "every shipped model (benchmarks/twin_evidence.py)."))
    n_train_cells: int = Field(120, ge=10, description="Cells kept per training perturbation on "
                                                       "the twin (at most n_cells).")
    seed: int = 0
    perturbation_key: str | None = None
    control_labels: list[str] | None = None
    policy_steps: int = Field(65_536, ge=256, description=(
        "Environment steps of the first training (the budget chosen by inner validation on the "
        "twin in benchmarks/ablation.py; configuration: scagents.agents.policy.policy_train_config)."))
    max_policy_attempts: int = Field(2, ge=1, description="Training attempts before the fallback.")
    n_validation: int = Field(10, ge=1, description=(
        "Perturbations held out for validation, each with all its labels (a target gene set and "
        "kind: STAT2_P1 and STAT2_P2 count once; at most a third of those besides the goal)."))
    min_improvement: float = Field(0.05, ge=0.0, lt=1.0, description=(
        "Relative validation-MSE improvement over the best baseline the policy needs to answer."))
    n_candidates: int = Field(0, ge=0, description=(
        "Twin genes left unperturbed as candidates for the recommendations (0: every gene's "
        "knockout and overexpression is simulated)."))
    n_proposals: int = Field(8, ge=0, description="Next perturbations to recommend.")
    llm: str | None = Field(None, description="provider:model of an optional LLM planner.")
    inputs: dict[str, float] = Field(default_factory=dict, description=(
        "Twin: milieu input activities (0–1) overriding the model's, e.g. {'IL12A': 1}."))
    n_genes: int = Field(2000, ge=10, description=(
        "Cap on the genes the network and policy agents work on: the goal's genes, the data's "
        "perturbation targets, then the most highly variable genes (scagents.data.select_genes)."))
    n_regulators: int = Field(500, ge=1, description="Candidate regulators of the network.")
    network_top_k: int = Field(50, ge=1, description="Strongest regulators kept per target gene.")
    skip_network: bool = Field(False, description="Do not infer a regulatory network.")
    integration_cells: int = Field(2000, ge=10, description="Cells integrated (a seeded subset).")
    progress: bool = Field(True, description="Show progress bars on stderr.")


class DataSummary(_Model):
    """What the data agent loaded (the object itself is ``path`` in the run folder)."""

    source: str
    description: str
    path: str
    n_cells: int
    n_genes: int
    modalities: list[str]
    goal: dict
    perturbation: dict
    goal_measured: bool
    goal_label: str | None = Field(None, description=(
        "The data's perturbation label (obs['perturbation']) of the goal's cells; None when the "
        "data hold none. The policy agent holds exactly this label out of every model."))
    goal_note: str = Field("", description=(
        "One line naming a mismatch between the goal's kind word and the data's labelling."))
    excluded: dict[str, int] = Field(default_factory=dict, description=(
        "Labels of cells without a usable perturbation (unassigned, multiplets, …) → cell "
        "count; left out of every model."))
    control: str = Field("", description=(
        "Which labels were taken as the control cells, e.g. \"control: 600 cells labelled "
        "'safe-targeting'\" (empty on the twin)."))
    set_aside: dict[str, int] = Field(default_factory=dict, description=(
        "Combinations holding every goal gene and more (label → cell count; e.g. STAT1+IRF1 for "
        "a STAT1 goal), left out of every model when the goal's own cells were measured."))
    measured: list[str] = Field(description="Perturbation labels with cells in the data.")
    candidates: list[str] = Field(description="Genes not yet perturbed that could be tested next.")
    truth_path: str | None = Field(None, description=(
        "Twin: simulated response of the goal (CSV: delta of log-normalised counts, padj, "
        "activity_delta = change of the noiseless model activity, is_input)."))
    truth_fates: dict[str, dict[str, float]] | None = Field(None, description=(
        "Twin: fraction of cells reaching each fate, control and the goal's perturbation."))
    inputs: list[str] = Field(default_factory=list, description="Twin: milieu input genes.")
    cells_per_condition: dict[str, int] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list, description=(
        "Twin: problems of the simulation the user must know (e.g. a silent all-off model)."))
    silent_model: bool = Field(False, description=(
        "Twin: every control cell ends in one all-off state (no gene active)."))
    target_expression: list[dict] = Field(default_factory=list, description=(
        "Twin, loss-of-function goal: per target, whether it is expressed in the run's milieu and "
        "which milieus of the model's inputs express it "
        "(:func:`scagents.twin.milieu.target_expression`)."))
    genes_path: str | None = Field(None, description=(
        "CSV of the genes the network and policy agents work on (gene, reason, variability_rank, "
        "regulator); None: every gene."))
    gene_selection: dict = Field(default_factory=dict, description=(
        "How the genes were chosen: n_total, cap, n_selected, n_regulators, counts per reason."))
    is_counts: bool | None = Field(None, description=(
        "Whether the RNA values are counts (log1p-normalised to 10⁴ per cell before use) or "
        "already-normalised values used as given; None: not recorded (a run from before)."))
    stimulation: dict | None = Field(None, description=(
        "A goal about the data's treatment (scagents.goal.StimulationGoal.to_dict): treatment "
        "level, cell type, how the goal was read; the stimulation agent answers it."))


class IntegrationSummary(_Model):
    status: Status
    reason: str = ""
    path: str | None = None
    embedding_key: str | None = None
    n_clusters: int | None = None
    modalities: list[str] = Field(default_factory=list, description="The modalities integrated.")
    n_cells: int | None = None
    note: str = Field("", description=(
        "What was integrated, on how many cells, how the modalities were joined, and what was "
        "left out (empty modalities, cells missing from a modality)."))


class NetworkSummary(_Model):
    status: Status
    reason: str = ""
    method: str | None = None
    edges_path: str | None = None
    propagation_path: str | None = Field(None, description=(
        "Edge table used for in-silico propagation when it differs from edges_path (a knockout screen "
        "ranks the reported network; propagation uses the control-cell fit)."))
    n_edges: int = 0
    weight_note: str = Field("", description="What an edge's weight means (its sign and its scale).")
    neighbourhood: list[dict] = Field(default_factory=list,
                                      description="Edges touching the goal's targets.")
    sources: dict = Field(default_factory=dict, description=(
        "Each evidence source's contribution: edges supported by a knockout screen, by regression "
        "alone, and the ATAC prior's statistics (scagents.grn.infer_network's uns['grn']['sources'])."))
    coef_signs: dict = Field(default_factory=dict, description=(
        "Drawn edges vs the coefficients propagation uses (scagents.agents.network.coef_sign_counts): "
        "n_edges, n_with_coef (edges with a non-zero coefficient), n_opposite (coefficient's sign "
        "opposite to the drawn edge's)."))


class GeneEffect(_Model):
    gene: str
    delta: float
    control_mean: float
    perturbed_mean: float
    lower: float | None = Field(None, description="Lower end of the calibrated interval of delta.")
    upper: float | None = Field(None, description="Upper end of the calibrated interval of delta.")
    clears_noise: bool | None = Field(None, description=(
        "Whether the gene's change clears the noise floor (see PolicySummary.evidence)."))


class Proposal(_Model):
    rank: int
    perturbation: str
    score: float
    uncertainty: float
    rationale: str


class PolicySummary(_Model):
    status: Status
    reason: str = ""
    attempts: int = 0
    method: str = ""
    policy_path: str | None = None
    training_log: str | None = None
    prediction_path: str | None = None
    validation: dict[str, dict[str, float]] = Field(default_factory=dict, description=(
        "Model → mean validation metrics (mse, mse_sd, pearson, pearson_delta_topk, "
        "direction_accuracy, target_direction, n labels; n_units when fewer): each a mean over "
        "target gene sets, the labels of one averaged first (scagents.agents.policy._summary); "
        "with one label per set, the mean over the labels."))
    validation_labels: list[str] = Field(default_factory=list)
    validation_count: str = Field("", description=(
        "What the validation set counts: '6 validation perturbations' with one label per target "
        "gene set, else '6 validation genes (9 labels)' — every label of a gene is held out "
        "together ('' in runs from before it was recorded)."))
    validation_aside: list[str] = Field(default_factory=list, description=(
        "Combinations holding a single-gene validation target, kept out of the candidates' "
        "training and not scored (scagents.agents.policy.combinations_aside)."))
    train_labels: list[str] = Field(default_factory=list, description=(
        "Perturbations the candidate models were trained on before validation."))
    fit_labels: list[str] = Field(default_factory=list, description=(
        "Perturbations the answering model was fitted on (a baseline is refitted on the training "
        "and validation perturbations once chosen); never the goal's."))
    held_out: str | None = Field(None, description=(
        "The task label of the goal's cells, held out of every model and used to check the "
        "prediction (None: the data hold none)."))
    held_out_labels: list[str] = Field(default_factory=list, description=(
        "Every task label held out as the goal's cells (the goal's label first)."))
    held_out_cells: int = Field(0, description="Cells of the held-out labels in the data.")
    held_out_note: str = ""
    decision: str = Field("", description="Which model answered and why, in plain words.")
    retrain: bool = Field(False, description=(
        "not_validated: whether a retrain with a doubled budget is worth trying."))
    top_up: list[GeneEffect] = Field(default_factory=list)
    top_down: list[GeneEffect] = Field(default_factory=list)
    evaluation: dict[str, float] | None = None
    proposals: list[Proposal] = Field(default_factory=list)
    evidence: dict | None = Field(None, description=(
        "Evidence check (scagents.evidence.evidence_check): is any gene's change above the noise "
        "floor; status 'no_effect' when not."))
    interval: dict | None = Field(None, description=(
        "How the per-gene intervals of the prediction were calibrated: level, q, "
        "n_calibration (calibration units: validation perturbations, all labels of one target "
        "gene set and kind counted once; the inner groups of a stimulation), method; the intervals are the delta_lower / delta_upper columns of the "
        "prediction file."))
    target_check: list[dict] = Field(default_factory=list, description=(
        "The goal's direct targets: predicted change, expected direction, whether it agrees."))
    additive_labels: dict[str, list[str]] = Field(default_factory=dict, description=(
        "Multi-target goals whose every target has a measured single perturbation of the goal's "
        "kind: per target, the labels whose observed effects were summed into the additive "
        "reference (the additive_delta column of the prediction file). Empty otherwise."))
    generic: dict | None = Field(None, description=(
        "Set when the answer is, in effect, the mean training effect of its kind (nothing specific to the "
        "goal): pearson, size_ratio against it, and unplaced (goal targets not among the genes worked on)."))
    network_signs: dict = Field(default_factory=dict, description=(
        "The network-propagation candidate's own ridge network (fitted on the training perturbations' and "
        "the control cells; scagents.grn.sign_agreement): n_edges, n_with_coef, n_opposite (coefficient's "
        "sign opposite to the edge's). Empty when that candidate was not fitted."))
    stimulation: dict | None = Field(None, description=(
        "Stimulation goals: the groups (cell types / time points) each prediction was fitted on, "
        "the held-out treated cells, the per-cell-type table of a goal over all cells."))


class ReportSummary(_Model):
    status: Status
    files: dict[str, str]


class AgentRecord(_Model):
    """One line of the agent log kept in the state (timings are only in ``agents.log``)."""

    agent: str
    status: str
    summary: str
    figures: dict[str, Any] = Field(default_factory=dict)


class RunState(TypedDict, total=False):
    """The graph state (JSON values only; see the module docstring)."""

    run_id: str
    out_dir: str
    options: dict
    data: dict | None
    integration: dict | None
    network: dict | None
    policy: dict | None
    report: dict | None
    steering: dict | None
    next: str
    stop_reason: str | None
    log: Annotated[list[dict], operator.add]


def initial_state(options: RunOptions, out_dir: str | Path) -> RunState:
    """The state a new run starts from."""
    out = Path(out_dir)
    return RunState(run_id=out.name, out_dir=str(out), options=options.model_dump(), data=None,
                    integration=None, network=None, policy=None, report=None, next="",
                    stop_reason=None, log=[])


def run_path(state: RunState, name: str | None) -> Path | None:
    """Absolute path of a file named relative to the run folder (``None`` stays ``None``)."""
    return None if name is None else Path(state["out_dir"]) / name
