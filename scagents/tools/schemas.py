"""Pydantic argument models of the tools (shared by the LangChain tools and the MCP server).

Field descriptions are what a chat model reads to fill in a call, so they say what each value
means, its unit and its default. Paths are relative to the working directory of the tools.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "LoadData", "Integrate", "InferNetwork", "SimulatePerturbation", "TrainPolicy",
    "PredictPerturbation", "RecommendPerturbations", "IngestResults", "WriteReport", "ListFiles",
    "SteerCells",
]

Kind = Literal["knockout", "knockdown", "overexpression"]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _genes(v: list[str] | None) -> list[str] | None:
    if v is None:
        return None
    out = [str(g).strip() for g in v if str(g).strip()]
    if len(set(out)) != len(out):
        raise ValueError("list each gene once")
    return out


class LoadData(_Args):
    """Arguments of ``load_data``."""

    path: str = Field(description="Data file (.h5ad, .h5mu, 10x .h5, .csv) or matrix-market folder, "
                                  "relative to the working directory.")
    perturbation_key: str | None = Field(None, description="obs column naming the perturbation of "
                                                           "each cell; default: recognised.")
    control_labels: list[str] | None = Field(None, description="Labels of control cells, e.g. "
                                                               "['non-targeting']; default: recognised.")
    name: str | None = Field(None, description="Name of the stored data set (default: file stem).")


class Integrate(_Args):
    """Arguments of ``integrate``."""

    dataset: str = Field(description="Data set file in the working directory (e.g. the `path` "
                                     "returned by load_data or simulate_perturbation).")
    n_pcs: int = Field(30, ge=2, le=200, description="PCA / LSI components per modality.")
    n_neighbors: int = Field(15, ge=2, le=200, description="Neighbours of the kNN graphs.")
    resolution: float = Field(1.0, gt=0, le=10, description="Clustering resolution.")
    joint: Literal["concat", "wnn"] = Field("concat", description="How modalities are combined: "
                                            "'concat' (fast) or 'wnn' (weighted nearest neighbours).")
    umap: bool = Field(False, description="Also compute a UMAP.")


class InferNetwork(_Args):
    """Arguments of ``infer_network``."""

    dataset: str = Field(description="Data set file in the working directory.")
    method: Literal["ensemble", "ridge", "correlation", "partial_correlation"] = Field(
        "ensemble", description="Inference method (default: infer_network's, extra-trees + random-forest "
                                "importances signed by the Spearman correlation; plain ridge above its size rule).")
    regulators: list[str] | None = Field(None, description="Genes allowed as regulators; default all.")
    top_k: int | None = Field(None, ge=1, le=1000,
                              description="Keep at most this many regulators per target.")
    focus_genes: list[str] | None = Field(None, description="Genes whose edges are listed in the "
                                                            "answer (all edges are saved to a CSV).")
    use_atac: bool = Field(True, description="Use an ATAC modality, when present, as a chromatin prior.")

    @field_validator("regulators", "focus_genes")
    @classmethod
    def _unique_genes(cls, v: list[str] | None) -> list[str] | None:
        return _genes(v)


class SimulatePerturbation(_Args):
    """Arguments of ``simulate_perturbation``."""

    targets: list[str] = Field(min_length=1, max_length=5,
                               description="Genes perturbed together, e.g. ['IFNG'].")
    kind: Kind = Field("knockout", description="Perturbation kind.")
    strength: float = Field(0.7, ge=0, le=1, description="Fraction of activity removed by a knockdown.")
    model: str = Field("th", description="Twin model: 'th' (T-helper, Mendoza 2006) or 'krumsiek11'.")
    n_cells: int | None = Field(None, ge=10, le=20000, description="Cells per condition "
                                "(default: the tool server's setting).")
    seed: int = Field(0, ge=0, lt=2**32, description="Random seed (0 ≤ seed < 2**32).")

    @field_validator("targets")
    @classmethod
    def _unique_genes(cls, v: list[str] | None) -> list[str] | None:
        return _genes(v)


class TrainPolicy(_Args):
    """Arguments of ``train_policy``."""

    dataset: str | None = Field(None, description="Perturbation data set in the working directory; "
                                "default: simulate every single-gene knockout on the twin `model`.")
    model: str = Field("th", description="Twin model when no dataset is given.")
    holdout: list[str] | None = Field(None, description="Perturbation labels held out for "
                                      "evaluation (e.g. ['IFNG']); default: a random 20 %.")
    total_steps: int | None = Field(None, ge=256, le=2_000_000, description="Environment steps "
                                    "(default: the tool server's setting).")
    algo: Literal["trpo_ppo", "ppo", "trpo"] = Field("trpo_ppo", description="Optimiser.")
    seed: int = Field(0, ge=0, lt=2**32, description="Random seed (0 ≤ seed < 2**32).")

    @field_validator("holdout")
    @classmethod
    def _unique_genes(cls, v: list[str] | None) -> list[str] | None:
        return _genes(v)


class PredictPerturbation(_Args):
    """Arguments of ``predict_perturbation``."""

    targets: list[str] = Field(min_length=1, max_length=5,
                               description="Genes perturbed together, e.g. ['IFNG'] or ['STAT1', 'IRF1'].")
    kind: Kind = Field("knockout", description="Perturbation kind.")
    dataset: str | None = Field(None, description="Perturbation data set in the working directory; "
                                "default: the digital twin `model`.")
    model: str = Field("th", description="Twin model when no dataset is given.")
    perturbation_key: str | None = Field(None, description="obs column naming the perturbation.")
    control_labels: list[str] | None = Field(None, description="Labels of control cells.")
    n_cells: int | None = Field(None, ge=10, le=20000, description="Cells simulated per condition "
                                "on the twin (default: the tool server's setting).")
    seed: int = Field(0, ge=0, lt=2**32, description="Random seed (0 ≤ seed < 2**32).")

    @field_validator("targets")
    @classmethod
    def _unique_genes(cls, v: list[str] | None) -> list[str] | None:
        return _genes(v)


class SteerCells(_Args):
    """Arguments of ``steer_cells``."""

    goal: str | None = Field(None, description="The steering goal in plain words, as the CLI's --goal, e.g. "
                             "'drive Th0 cells to Th1', 'block the erythroid fate', 'which two perturbations "
                             "make granulocytes', 'steer to Th1 without touching IFNG'. Give either goal or "
                             "target.")
    target: str | None = Field(None, description="The fate to reach (or to block with avoid=true), e.g. 'Th1'; "
                               "a fate of the model (its @fate lines).")
    start_fate: str | None = Field(None, description="Fate of the start population, e.g. 'Th0'; default: the "
                                   "model's start state. With target only.")
    avoid: bool = Field(False, description="Block the target fate instead of reaching it. With target only.")
    exclude: list[str] | None = Field(None, description="Genes left out of the search (no knockout or "
                                      "overexpression of them). With target only.")
    max_interventions: int | None = Field(None, ge=1, le=3, description="At most this many interventions "
                                          "(default 2, as the CLI's goal without a number); with goal or "
                                          "target.")
    model: str = Field("th", description="Twin model: 'th' (T-helper, Mendoza 2006), 'krumsiek11', or a "
                       "Boolean model file in the working directory (.bnet, SBML-qual .sbml/.xml, BooleanNet "
                       "'A* = rule', scanpy-style .txt, BoolODE tab-separated) whose fates are "
                       "'# @fate NAME = RULE' lines or a NAME.inputs.json sidecar. A goal naming only "
                       "another shipped model's fates uses that model.")
    inputs: dict[str, float] | None = Field(None, description="Milieu: activities (0-1) of the model's input "
                                            "genes, e.g. {'IL12': 1, 'TCR': 1} (the CLI's --inputs).")
    n_cells: int | None = Field(None, ge=10, le=20000, description="Cells per simulated population (the "
                                "search uses at most 100; default: the tool server's setting).")
    seed: int = Field(0, ge=0, lt=2**31, description="Random seed (0 ≤ seed < 2**31), as the CLI's --seed.")

    @field_validator("exclude")
    @classmethod
    def _unique_genes(cls, v: list[str] | None) -> list[str] | None:
        return _genes(v)

    @field_validator("inputs")
    @classmethod
    def _activities(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        for gene, value in (v or {}).items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"input {gene} = {value}: activities lie in [0, 1]")
        return v

    @model_validator(mode="after")
    def _goal_or_target(self) -> SteerCells:
        fields = [k for k in ("start_fate", "exclude") if getattr(self, k) is not None]
        fields += ["avoid"] if self.avoid else []
        if self.goal is not None and (self.target is not None or fields):
            got = ", ".join(["target"] * (self.target is not None) + fields)
            raise ValueError(f"give goal or target, not both (got goal and {got}); start_fate, avoid and "
                             "exclude go with target")
        if self.goal is None and self.target is None:
            raise ValueError("give the goal in plain words (goal='drive Th0 cells to Th1') or the target fate "
                             "(target='Th1')")
        return self


class RecommendPerturbations(_Args):
    """Arguments of ``recommend_perturbations``."""

    n: int = Field(8, ge=1, le=500, description="Number of perturbations to recommend.")
    run: str | None = Field(None, description="Prediction run (its run_id) whose ranking is used; "
                            "default: the latest predict_perturbation run. Ignored with `campaign`.")
    campaign: str | None = Field(None, description="Closed-loop campaign name: propose and record "
                                 "the next round in the campaign ledger instead.")
    goal: str | None = Field(None, description="Goal of a NEW campaign, e.g. 'find regulators of "
                             "IFNG'.")
    candidates: list[str] | None = Field(None, description="Candidate genes of a NEW campaign.")
    candidates_file: str | None = Field(None, description="File with one candidate gene per line "
                                        "(instead of `candidates`).")
    designer: Literal["policy", "ridge_ucb", "gp_ucb", "bayes_prior", "prior_only", "random"] | None = Field(
        None, description="Campaign designer; default: the campaign's stored designer, else bayes_prior "
        "(the same default as `scagents next` and the benchmark).")
    seed: int | None = Field(None, ge=0, lt=2**32, json_schema_extra={"minimum": 0, "exclusiveMaximum": 2**32},
                             description="Random seed (0 ≤ seed < 2**32); default: the campaign's stored "
                             "seed, else 0.")
    objective: Literal["increase", "decrease", "either"] | None = Field(
        None, description="Objective of a NEW campaign (default: from the goal's words).")

    @field_validator("candidates")
    @classmethod
    def _unique_genes(cls, v: list[str] | None) -> list[str] | None:
        return _genes(v)


class IngestResults(_Args):
    """Arguments of ``ingest_results``."""

    campaign: str = Field(description="Campaign name.")
    results_path: str = Field(description="Results file in the working directory: a MAGeCK RRA or MLE "
                              "gene_summary.txt, a BAGEL2 BF table, or a CSV/TSV with a `gene` column and a "
                              "signed `score` column (e.g. lfc, log2FC, z, beta). Rows of genes not proposed "
                              "in the campaign are ignored and counted.")
    score_column: str | None = Field(None, description="Column holding the signed effect (the CLI's "
                                     "--score-column), e.g. 'Rep1|beta' of a MAGeCK MLE summary with several "
                                     "conditions; default: chosen by the file's format (see `score_rule` in "
                                     "the answer).")
    gene_column: str | None = Field(None, description="Column holding the gene symbols (the CLI's "
                                    "--gene-column); default: chosen by the file's format.")


class WriteReport(_Args):
    """Arguments of ``write_report``."""

    run: str | None = Field(None, description="Run id of a predict_perturbation or steer_cells run; "
                            "default: the latest run.")
    campaign: str | None = Field(None, description="Write the campaign's history table and "
                                 "progress plot instead.")


class ListFiles(_Args):
    """Arguments of ``list_files``."""

    folder: str = Field(".", description="Folder relative to the working directory.")
