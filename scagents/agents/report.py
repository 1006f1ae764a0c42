"""The report agent: Markdown + self-contained HTML + JSON + PNG plots of a run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

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

__all__ = ["report_agent", "build_result"]

#: what each agent contributes to the report (the "which agent produced what" table)
_PRODUCED = {
    "data": "goal parsed, data loaded / simulated ({files})",
    "integration": "joint embedding and clusters ({files})",
    "network": "regulatory network and the target's neighbourhood ({files})",
    "policy": "trained TRPO→PPO policy, validation, prediction, proposals ({files})",
    "fallback": "baseline prediction and proposals after the policy did not validate ({files})",
    "report": "this report",
}


def _embedding(state: RunState, data: DataSummary, integ: IntegrationSummary,
               delta: pd.Series, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Cell coordinates and a per-cell predicted-effect score (signature score of the prediction)."""
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

        coords, how = PCA(n_components=2, random_state=seed).fit_transform(x), "PCA of RNA"
    d = delta.reindex(rna.var_names).fillna(0.0).to_numpy()
    z = (x - x.mean(0)) / (x.std(0) + 1e-9)
    score = z @ d / (np.abs(d).sum() + 1e-12)
    return coords, score, how


def build_result(state: RunState) -> dict:
    """The JSON-serialisable result dictionary of a run (also plots its figures).

    Contains no timings and no absolute paths, so the same seed gives byte-identical
    ``report.json`` whether or not the run was interrupted and resumed.
    """
    import scagents
    from scagents.report import plot_effects, plot_embedding_values, plot_network, plot_training

    opts = RunOptions.model_validate(state["options"])
    out = Path(state["out_dir"])
    data = DataSummary.model_validate(state["data"])
    integ = IntegrationSummary.model_validate(state.get("integration") or {"status": "skipped"})
    net = NetworkSummary.model_validate(state.get("network") or {"status": "skipped"})
    pol = PolicySummary.model_validate(state["policy"])
    pert = data.perturbation
    label = f"{'+'.join(pert['targets'])} {pert['kind']}"
    pred = pd.read_csv(out / pol.prediction_path, index_col="gene")
    genes = [{"gene": str(g), "delta": float(r.delta), "control_mean": float(r.control_mean),
              "perturbed_mean": float(r.perturbed_mean)} for g, r in pred.iterrows()]
    figures: dict[str, str] = {}
    figures["effects"] = plot_effects(genes, out / "effects.png",
                                      title=f"Predicted response to {label} ({pol.method})").name
    coords, score, how = _embedding(state, data, integ, pred["delta"], opts.seed)
    figures["embedding"] = plot_embedding_values(
        coords, score, out / "embedding.png", label="predicted-effect score",
        title=f"Cells ({how}) coloured by the predicted effect of {label}",
        xlabel=f"{how} 1", ylabel=f"{how} 2").name
    if net.status == "done" and net.neighbourhood:
        figures["network"] = plot_network(net.neighbourhood, list(pert["targets"]),
                                          out / "network.png",
                                          title=f"Inferred regulators and targets of "
                                                f"{'+'.join(pert['targets'])}").name
    if pol.training_log and (out / pol.training_log).exists():
        rows = pd.read_csv(out / pol.training_log).to_dict("records")
        figures["training"] = plot_training(rows, out / "training.png",
                                            title="TRPO→PPO training (last attempt)").name
    notes = [f"The goal's perturbation ({label}) was held out: no cell of it was used to train "
             "any model; the prediction is made from its target genes only."]
    if pol.status == "fallback":
        notes.append(f"Fallback: {pol.reason}.")
    for name, s in (("integration", integ), ("network", net)):
        if s.status in ("skipped", "failed"):
            notes.append(f"{name.capitalize()} {s.status}: {s.reason}")
    result: dict = {
        "goal": data.goal, "perturbation": pert,
        "data": {"source": data.source, "description": data.description,
                 "n_cells": data.n_cells, "n_genes": data.n_genes},
        "method": {"name": pol.method,
                   "description": f"trained on {len(pol.train_labels)} perturbations, validated on "
                                  f"{len(pol.validation_labels)} held-out ones"
                                  + (" (policy validated)" if pol.status == "validated" else
                                     f" ({pol.status})")},
        "genes": genes[:50],
        "top_up": [g.model_dump() for g in pol.top_up],
        "top_down": [g.model_dump() for g in pol.top_down],
        "fate_shift": None,
        "validation": {
            "description": f"Mean over the held-out perturbations {', '.join(pol.validation_labels)}"
                           " of the prediction metrics (mse lower is better).",
            "scores": pol.validation, "decision": pol.reason},
        "network": {"description": (f"{net.n_edges} edges inferred ({net.method}); the strongest "
                                    f"touching {'+'.join(pert['targets'])}:")
                    if net.status == "done" else f"No network: {net.reason}",
                    "edges": net.neighbourhood},
        "proposals": [p.model_dump() for p in pol.proposals],
        "seed": opts.seed, "version": scagents.__version__, "min_effect": 0.01,
        "notes": notes, "figures": figures,
    }
    if pol.evaluation:
        result["evaluation"] = {
            "description": f"{label} was {'simulated on the twin' if data.truth_path else 'measured'}"
                           " but held out: the prediction is compared with its observed change.",
            "metrics": pol.evaluation}
    agents = []
    for rec in state.get("log", []):
        files = {"data": data.path, "integration": integ.path or "-",
                 "network": net.edges_path or "-",
                 "policy": ", ".join(f for f in (pol.policy_path, pol.training_log,
                                                 pol.prediction_path) if f),
                 "fallback": pol.prediction_path or "-"}.get(rec["agent"], "-")
        agents.append({"agent": rec["agent"], "status": rec["status"],
                       "produced": _PRODUCED.get(rec["agent"], "").format(files=files)
                       + (f" — {rec['summary']}" if rec["status"] in ("skipped", "failed",
                                                                       "not_validated") else "")})
    agents.append({"agent": "report", "status": "done", "produced": _PRODUCED["report"]})
    result["agents"] = agents
    return result


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
        (out / "report.md").write_text(text)
        s = ReportSummary(status="done", files={"markdown": "report.md"})
    else:
        paths = write_report(build_result(state), out, html=True)
        s = ReportSummary(status="done", files={k: Path(v).name for k, v in paths.items()})
    rec = AgentRecord(agent="report", status="done", summary=f"wrote {', '.join(s.files.values())}",
                      figures={"files": len(s.files)})
    return {"report": s.model_dump(), "log": [rec.model_dump()]}
