"""The data agent: parse the goal, load (or simulate) the data and store it in the run folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scagents.agents.state import AgentRecord, DataSummary, RunOptions, RunState
from scagents.errors import ScagentsError

__all__ = ["data_agent", "DATA_FILE"]

DATA_FILE = "data.h5mu"


def _twin(opts: RunOptions, out: Path) -> DataSummary:
    from scagents.goal import parse_goal
    from scagents.perturbation import Perturbation
    from scagents.twin import load_model, simulate

    net = load_model(opts.model)
    goal = parse_goal(opts.goal, net.genes, aliases=net.aliases)
    pert = goal.perturbation
    rng = np.random.default_rng(opts.seed)
    others = [g for g in net.genes if g not in pert.targets and g not in net.inputs]
    others = [others[i] for i in rng.permutation(len(others))]
    n_cand = min(opts.n_candidates, max(0, len(others) - opts.n_validation - 2))
    candidates, measured = sorted(others[:n_cand]), sorted(others[n_cand:])
    perts = [None, pert] + [Perturbation((g,), kind=pert.kind) for g in measured]
    mdata = simulate(net, perturbations=perts, n_cells=opts.n_cells, seed=opts.seed)
    rna = mdata["rna"]
    # the twin's own answer, kept aside to check the prediction (never used in training)
    from scagents.data import lognormalize
    from scagents.pipeline import gene_effects

    tmp = rna.copy()
    lognormalize(tmp)
    x = np.asarray(tmp.layers["lognorm"].toarray() if hasattr(tmp.layers["lognorm"], "toarray")
                   else tmp.layers["lognorm"], dtype=float)
    ctrl = tmp.obs["is_control"].to_numpy(bool)
    goal_cells = (tmp.obs["target_genes"].astype(str) == "+".join(pert.targets)).to_numpy()
    truth = gene_effects(x[ctrl], x[goal_cells], tmp.var_names)
    truth.to_csv(out / "twin_truth.csv")
    mdata.uns.pop("twin_perturbations", None)
    _write(mdata, out / DATA_FILE)
    return DataSummary(
        source=f"twin:{net.name}", description=f"digital twin, model {net.name}",
        path=DATA_FILE, n_cells=int(mdata.n_obs), n_genes=int(rna.n_vars),
        modalities=list(mdata.mod), goal=goal.to_dict(), perturbation=pert.to_dict(),
        goal_measured=True, measured=["+".join(pert.targets)] + measured, candidates=candidates,
        truth_path="twin_truth.csv")


def _write(obj, path: Path) -> None:
    """Write AnnData/MuData atomically (a killed run never leaves half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    if hasattr(obj, "mod"):
        obj.write(str(tmp))
    else:
        obj.write_h5ad(tmp)
    tmp.replace(path)


def _user_data(opts: RunOptions, out: Path) -> DataSummary:
    import mudata as md

    from scagents.data import load
    from scagents.goal import parse_goal

    obj = load(opts.data, perturbation_key=opts.perturbation_key,
               control_labels=opts.control_labels)
    rna = obj["rna"] if hasattr(obj, "mod") and "rna" in obj.mod else (
        obj[list(obj.mod)[0]] if hasattr(obj, "mod") else obj)
    goal = parse_goal(opts.goal, rna.var_names)
    pert = goal.perturbation
    labels = rna.obs.loc[~rna.obs["is_control"].astype(bool), "target_genes"].astype(str)
    counts = labels.value_counts()
    measured = sorted(str(g) for g in counts.index if g)
    label = "+".join(pert.targets)
    perturbed = {t for m in measured for t in m.split("+")}
    var = pd.Series(np.asarray(rna.X.mean(0)).ravel(), index=rna.var_names)
    candidates = [g for g in var.sort_values(ascending=False).index if g not in perturbed][:200]
    mods = list(obj.mod) if hasattr(obj, "mod") else ["rna"]
    path = out / DATA_FILE
    _write(obj if hasattr(obj, "mod") else md.MuData({"rna": obj}), path)
    return DataSummary(
        source=str(opts.data), description=Path(opts.data).name, path=DATA_FILE,
        n_cells=int(rna.n_obs), n_genes=int(rna.n_vars), modalities=mods, goal=goal.to_dict(),
        perturbation=pert.to_dict(), goal_measured=label in measured, measured=measured,
        candidates=sorted(candidates))


def data_agent(state: RunState) -> dict:
    """Parse the goal and load the data (the twin by default) into ``<run>/data.h5mu``.

    Parameters
    ----------
    state
        The run state; reads ``options`` and ``out_dir``.

    Returns
    -------
    dict
        State update: ``data`` (a :class:`DataSummary` dump), or ``stop_reason`` when the goal
        cannot be met by the data (unknown gene, no perturbation named, unreadable file).
    """
    opts = RunOptions.model_validate(state["options"])
    out = Path(state["out_dir"])
    try:
        summary = _twin(opts, out) if opts.data is None else _user_data(opts, out)
    except (ScagentsError, FileNotFoundError) as exc:
        rec = AgentRecord(agent="data", status="failed", summary=str(exc))
        return {"data": None, "stop_reason": str(exc), "log": [rec.model_dump()]}
    rec = AgentRecord(
        agent="data", status="done",
        summary=f"{summary.description}: {summary.n_cells} cells × {summary.n_genes} genes, "
                f"modalities {', '.join(summary.modalities)}, {len(summary.measured)} perturbations",
        figures={"n_cells": summary.n_cells, "n_genes": summary.n_genes,
                 "n_perturbations": len(summary.measured), "n_candidates": len(summary.candidates)})
    return {"data": summary.model_dump(), "log": [rec.model_dump()]}
