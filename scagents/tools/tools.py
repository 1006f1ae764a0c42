"""The scagents capabilities as LangChain tools (also served over MCP by :mod:`scagents.tools.mcp_server`).

>>> from scagents.tools import make_tools
>>> tools = make_tools("workdir")                              # doctest: +SKIP
>>> tools[0].invoke({"path": "screen.h5ad"})                   # doctest: +SKIP

Each tool validates its arguments with the pydantic model of :mod:`scagents.tools.schemas`, works
inside one :class:`~scagents.tools.workspace.Workspace`, keeps every full object on disk there
(``datasets/*.h5ad|h5mu``, ``twin/``, ``networks/*.csv``, ``policies/*.pt``, ``runs/<run_id>/`` of
prediction and steering runs,
``campaigns.sqlite``) and returns a short JSON summary naming those files relative to the working
directory. A bad call returns one line ``error: … fix: …`` instead of raising.

The tools wrap the library; they do not reimplement it:

=========================  ========================================================================
tool                       wraps
=========================  ========================================================================
``load_data``              :func:`scagents.data.load`
``integrate``              :func:`scagents.integration.integrate`
``infer_network``          :func:`scagents.grn.infer_network`, :func:`~scagents.grn.network_edges`
``simulate_perturbation``  :func:`scagents.twin.simulate`, :func:`scagents.data.gene_effects`
``train_policy``           :class:`scagents.envs.ResponseTask`, :func:`scagents.policies.train`
``predict_perturbation``   :func:`scagents.agents.run_graph` (the whole agent graph)
``recommend_perturbations`` the ranking of a prediction run, or :func:`scagents.campaign.propose_round`
``ingest_results``         :func:`scagents.campaign.ingest`
``steer_cells``            :func:`scagents.agents.steering.steer` (the CLI's steering path)
``write_report``           :func:`scagents.agents.report.report_agent`, steering report, campaign history
``list_files``             the working directory's files
=========================  ========================================================================
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, ValidationError

from scagents._atomic import atomic_path, write_json
from scagents.data import write as write_data
from scagents.errors import DataFileError, ScagentsError
from scagents.tools import schemas as S
from scagents.tools.workspace import Workspace, format_error, format_validation_error

__all__ = ["ToolSettings", "Toolkit", "make_tools", "TOOL_NAMES", "RUN_RESULT"]

RUN_RESULT = "tool_result.json"
"""File in a run folder holding the full prediction summary written by ``predict_perturbation``."""

STEERING_RESULT = "steering.json"
"""File in a run folder holding the full answer of a ``steer_cells`` (or CLI steering) run."""

N_LISTED = 8  # genes / edges listed per direction in an answer


def _is_steering_run(folder: Path) -> bool:
    """Whether ``folder`` holds a finished steering run (its answer and its checkpoint)."""
    from scagents.agents.graph import CHECKPOINTS

    return (folder / STEERING_RESULT).is_file() and (folder / CHECKPOINTS).is_file()


class ToolRunError(ScagentsError, ValueError):
    """A tool cannot do what was asked with the current working directory (e.g. no run yet)."""


def _run_default(name: str):
    """The default of a :class:`~scagents.agents.RunOptions` field (one set of defaults)."""
    from scagents.agents.state import RunOptions

    return RunOptions.model_fields[name].default


@dataclass
class ToolSettings:
    """Defaults used when a call leaves a size argument out (small values make tools fast).

    Attributes
    ----------
    n_cells
        Cells simulated per condition on the twin.
    policy_steps
        Environment steps of the first policy training in ``predict_perturbation``.
    train_steps
        Environment steps of ``train_policy``.
    task_cells
        Control cells simulated per perturbation for the twin task of ``train_policy``.
    max_proposals
        Candidates ranked by a prediction run (``recommend_perturbations`` reads them).
    twin_candidates
        Twin genes left unperturbed in a prediction run, to be ranked as recommendations.
    policy_attempts
        Policy trainings a prediction run tries before its fallback.
    """

    n_cells: int = 1000
    policy_steps: int = field(default_factory=lambda: _run_default("policy_steps"))
    train_steps: int = 20_000
    task_cells: int = 128
    max_proposals: int = 50
    twin_candidates: int = 8
    policy_attempts: int = 2


def _dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)


def _read(path: Path):
    """AnnData or MuData from a workspace file (the library's reader, no standardisation)."""
    from scagents.data import read

    return read(path)




def _suffix(obj) -> str:
    return ".h5mu" if hasattr(obj, "mod") else ".h5ad"


def _effect_rows(df: pd.DataFrame, n: int = N_LISTED) -> list[dict]:
    cols = [c for c in ("delta", "padj") if c in df]
    return [{"gene": str(g), **{c: round(float(r[c]), 4) for c in cols}}
            for g, r in df.head(n).iterrows()]


class Toolkit:
    """The tool implementations, bound to one working directory.

    Parameters
    ----------
    workdir
        Working directory (created if missing); every path is resolved inside it.
    settings
        Defaults for the size arguments (see :class:`ToolSettings`).
    """

    def __init__(self, workdir: str | Path, settings: ToolSettings | None = None) -> None:
        self.ws = Workspace(workdir)
        self.settings = settings or ToolSettings()

    def _model(self, name: str) -> str:
        """A shipped twin model's name, or the path of a model file inside the workspace.

        A model named by a path goes through the workspace sandbox like every other path.
        """
        from scagents.twin import list_models, shipped_model

        key = shipped_model(name)
        if key is not None:
            return key
        path = self.ws.resolve(name, what="model file")
        if not path.is_file():
            raise ToolRunError(
                f"No shipped model or model file named {name!r}: shipped models are "
                f"{', '.join(list_models())} (also 'th'); a model file must be inside the working "
                "directory.")
        return str(path)

    @contextlib.contextmanager
    def _ledger(self) -> Iterator[Path]:
        """The campaign ledger; a failed call that created it removes it again (no stray file)."""
        path = self.ws.ledger
        existed = os.path.lexists(path)
        try:
            yield path
        except BaseException:
            if not existed:
                for suffix in ("", "-journal", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
            raise

    def _write_csv(self, df: pd.DataFrame, path: Path, **kwargs) -> Path:
        with atomic_path(path) as tmp:
            df.to_csv(tmp, **kwargs)
        return path

    # ------------------------------------------------------------------------------ load_data
    def load_data(self, a: S.LoadData) -> dict:
        from scagents.data import load, rna_modality

        src = self.ws.resolve(a.path, must_exist=True, what="data file")
        obj = load(src, perturbation_key=a.perturbation_key, control_labels=a.control_labels)
        _, rna = rna_modality(obj)
        out = self.ws.new_file("datasets", a.name or src.name.split(".")[0], _suffix(obj))
        write_data(obj, out)
        ctrl = rna.obs["is_control"].astype(bool).to_numpy()
        counts = rna.obs.loc[~ctrl, "perturbation"].astype(str).value_counts()
        info = rna.uns.get("scagents", {}).get("data", {})
        return {"dataset": self.ws.rel(out), "n_cells": int(rna.n_obs), "n_genes": int(rna.n_vars),
                "modalities": list(obj.mod) if hasattr(obj, "mod") else ["rna"],
                "n_control_cells": int(ctrl.sum()), "n_perturbations": int(len(counts)),
                "cells_per_perturbation": {str(k): int(v) for k, v in counts.head(15).items()},
                "is_counts": info.get("is_counts"),
                "perturbation_key": info.get("perturbation_key")}

    # ------------------------------------------------------------------------------ integrate
    def integrate(self, a: S.Integrate) -> dict:
        from scagents.integration import integrate

        src = self.ws.resolve(a.dataset, must_exist=True, what="data set")
        obj = _read(src)
        integrate(obj, n_pcs=a.n_pcs, n_neighbors=a.n_neighbors, resolution=a.resolution,
                  joint=a.joint, umap=a.umap)
        out = self.ws.new_file("datasets", f"{src.name.split('.')[0]}_integrated", _suffix(obj))
        write_data(obj, out)
        rec = obj.uns.get("scagents", {}).get("integration", {})
        sizes = obj.obs["cluster"].value_counts()
        pt = obj.obs["dpt_pseudotime"].to_numpy(float)
        return {"dataset": self.ws.rel(out), "n_cells": int(obj.n_obs),
                "n_clusters": int(len(sizes)),
                "cluster_sizes": {str(k): int(v) for k, v in sizes.head(12).items()},
                "embeddings": sorted(str(k) for k in obj.obsm),
                "pseudotime_root": {k: rec.get("root", {}).get(k) for k in ("obs_name", "rule")},
                "pseudotime_range": [float(np.nanmin(pt)), float(np.nanmax(pt))],
                "written": "obs['cluster'], obs['dpt_pseudotime'], obsm embeddings"}

    # -------------------------------------------------------------------------- infer_network
    def infer_network(self, a: S.InferNetwork) -> dict:
        from scagents.data import lognormalize, rna_modality
        from scagents.goal import resolve_gene
        from scagents.grn import infer_network, network_edges, network_matrix

        src = self.ws.resolve(a.dataset, must_exist=True, what="data set")
        obj = _read(src)
        _, rna = rna_modality(obj)
        rna = rna.copy()
        genes = list(rna.var_names.astype(str))
        regulators = [resolve_gene(g, genes) for g in a.regulators] if a.regulators else None
        focus = [resolve_gene(g, genes) for g in a.focus_genes or []]
        layer = None
        if "lognorm" in rna.layers:
            layer = "lognorm"
        elif _looks_like_counts(rna.X):
            lognormalize(rna)
            layer = "lognorm"
        atac = None
        if a.use_atac and hasattr(obj, "mod") and "atac" in obj.mod:
            atac = obj.mod["atac"]
        infer_network(rna, method=a.method, regulators=regulators, layer=layer, atac=atac,
                      top_k=a.top_k)
        edges = network_edges(rna)
        stem = f"{src.name.split('.')[0]}_{a.method}"
        e_path = self.ws.new_file("networks", f"{stem}_edges", ".csv")
        m_path = e_path.with_name(e_path.name.replace("_edges", "_matrix"))
        self._write_csv(edges, e_path, index=False)
        self._write_csv(network_matrix(rna), m_path)

        def rows(df: pd.DataFrame) -> list[dict]:
            return [{"source": r.source, "target": r.target, "weight": round(float(r.weight), 4)}
                    for r in df.head(N_LISTED).itertuples()]

        out = {"edges_csv": self.ws.rel(e_path), "matrix_csv": self.ws.rel(m_path),
               "method": a.method, "n_edges": int(len(edges)), "n_genes": len(genes),
               "n_regulators": int(edges["source"].nunique()), "used_atac_prior": atac is not None,
               "strongest_edges": rows(edges)}
        if focus:
            out["focus"] = {g: rows(edges[(edges["source"] == g) | (edges["target"] == g)])
                            for g in focus}
        return out

    # ------------------------------------------------------------------ simulate_perturbation
    def simulate_perturbation(self, a: S.SimulatePerturbation) -> dict:
        from scagents.data import MAX_PADJ, MIN_EFFECT, gene_effects, lognormalize
        from scagents.goal import resolve_gene
        from scagents.perturbation import Perturbation
        from scagents.twin import load_model, simulate

        net = load_model(self._model(a.model))
        targets = tuple(resolve_gene(g, net.genes, aliases=net.aliases) for g in a.targets)
        pert = Perturbation(targets, kind=a.kind, strength=a.strength)
        n = a.n_cells or self.settings.n_cells
        mdata = simulate(net, perturbations=[None, pert], n_cells=n, seed=a.seed)
        rna = mdata["rna"].copy()
        lognormalize(rna)
        x = _dense(rna.layers["lognorm"])
        ctrl = rna.obs["is_control"].to_numpy(bool)
        eff = gene_effects(x[ctrl], x[~ctrl], rna.var_names)
        label = pert.label.replace(" ", "_")
        h5 = self.ws.new_file("twin", f"{net.name}_{label}", ".h5mu")
        mdata.uns.pop("twin_perturbations", None)
        write_data(mdata, h5)
        csv = h5.with_name(h5.name.replace(".h5mu", "_effects.csv"))
        self._write_csv(eff.round(6), csv)
        sig = eff[(eff["padj"] < MAX_PADJ) & (eff["delta"].abs() > MIN_EFFECT)]
        fates = rna.obs["fate"].astype(str)
        return {"perturbation": pert.label, "model": net.name, "n_cells_per_condition": n,
                "dataset": self.ws.rel(h5), "effects_csv": self.ws.rel(csv),
                "top_down": _effect_rows(sig[sig["delta"] < 0]),
                "top_up": _effect_rows(sig[sig["delta"] > 0]),
                "fate_shift": {"control": fates[ctrl].value_counts(normalize=True).round(3).to_dict(),
                               pert.label: fates[~ctrl].value_counts(normalize=True).round(3).to_dict()},
                "note": f"listed when |delta| > {MIN_EFFECT} and BH-adjusted p < {MAX_PADJ}; "
                        "delta = change of mean log-normalised expression from control"}

    # --------------------------------------------------------------------------- train_policy
    def train_policy(self, a: S.TrainPolicy) -> dict:
        from scagents.data import load
        from scagents.envs import PerturbationResponseVecEnv, ResponseTask, evaluate_policy
        from scagents.policies import TrainConfig, save, train

        if a.dataset is not None:
            src = self.ws.resolve(a.dataset, must_exist=True, what="data set")
            obj = load(src)
            n_genes = obj["rna"].n_vars if hasattr(obj, "mod") and "rna" in obj.mod else obj.n_vars
            task = ResponseTask.from_anndata(obj, modalities=["rna"] if hasattr(obj, "mod") else None,
                                             n_top_features=None if n_genes <= 2000 else 1000,
                                             max_control_cells=256, seed=a.seed)
            name = src.name.split(".")[0]
        else:
            from scagents.perturbation import Perturbation
            from scagents.twin import load_model

            net = load_model(self._model(a.model))
            perts = [Perturbation((g,)) for g in net.genes if g not in net.inputs]
            task = ResponseTask.from_twin(net, perts, n_cells=self.settings.task_cells,
                                          modalities=("rna",), seed=a.seed)
            name = f"twin_{net.name}"
        if task.n_perturbations < 3:
            raise ToolRunError(f"The data set has {task.n_perturbations} perturbation(s) with "
                               "enough cells; training needs at least 3 (2 to train, 1 to test).")
        if a.holdout:
            train_task, test_task = task.split(test=a.holdout)
        else:
            train_task, test_task = task.split(test_fraction=0.2, seed=a.seed)
        steps = a.total_steps or self.settings.train_steps
        cfg = TrainConfig(algo=a.algo, total_steps=steps, n_envs=64, n_steps=8, hidden_sizes=(64, 64),
                          lr=1e-3, init_log_std=-2.0, gamma=0.0, gae_lambda=0.0, reward_components=True,
                          critic_init_gain=0.01, seed=a.seed)
        env = PerturbationResponseVecEnv(train_task, num_envs=cfg.n_envs)
        path = self.ws.new_file("policies", f"{name}_{a.algo}", ".pt")
        log_path = path.with_suffix(".log.csv")
        policy, log = train(env, cfg, progress=False, log_path=log_path)
        save(policy, path, cfg)
        mod = test_task.embedding_modality
        ev = evaluate_policy(policy, test_task, modality=mod, max_cells=256)
        base = train_task.deltas[mod][:, -1].mean(0)
        base_mse = float(np.mean([np.mean((base - test_task.observed_delta(i, modality=mod)) ** 2)
                                  for i in range(test_task.n_perturbations)]))
        metrics = {k: float(ev[k].mean()) for k in ("mse", "pearson", "pearson_delta_topk")
                   if k in ev}
        return {"policy": self.ws.rel(path), "training_log": self.ws.rel(log_path),
                "algo": a.algo, "steps": steps, "task": repr(task),
                "n_train_perturbations": train_task.n_perturbations,
                "heldout": list(test_task.labels),
                "heldout_mean_metrics": metrics,
                "baseline_mean_training_effect_mse": base_mse,
                "beats_baseline_mse": bool(metrics.get("mse", np.inf) < base_mse),
                "final_return": float(log.rows[-1]["episodic_return_mean"])}

    # ------------------------------------------------------------------- predict_perturbation
    def predict_perturbation(self, a: S.PredictPerturbation) -> dict:
        from scagents.agents.graph import default_out_dir, run_graph
        from scagents.agents.report import held_out_sentence
        from scagents.agents.state import PolicySummary, RunOptions

        goal = f"predict {' and '.join(a.targets)} {a.kind}"
        data = None
        if a.dataset is not None:
            data = str(self.ws.resolve(a.dataset, must_exist=True, what="data set"))
        model = self._model(a.model)
        opts = RunOptions(goal=goal, data=data, model=model, n_cells=a.n_cells or self.settings.n_cells,
                          seed=a.seed, perturbation_key=a.perturbation_key,
                          control_labels=a.control_labels, policy_steps=self.settings.policy_steps,
                          n_proposals=self.settings.max_proposals,
                          n_candidates=self.settings.twin_candidates,
                          max_policy_attempts=self.settings.policy_attempts,
                          progress=False)  # a tool answers in its result, not on the terminal
        runs = self.ws.resolve("runs", what="runs folder")
        runs_existed = runs.exists()
        out = default_out_dir(goal, runs)
        out.mkdir(parents=True)
        try:
            state = run_graph(opts, out=out, root=runs)
            pol = state.get("policy") or {}
            if not pol.get("prediction_path"):
                raise ToolRunError(f"The prediction of {goal!r} stopped: "
                                   f"{state.get('stop_reason') or pol.get('reason') or 'unknown reason'}")
        except BaseException:
            shutil.rmtree(out, ignore_errors=True)  # a run without a prediction leaves nothing
            if not runs_existed:
                with contextlib.suppress(OSError):
                    runs.rmdir()
            raise
        full = {"run_id": out.name, "goal": goal, "data": state["data"]["source"],
                "policy": pol, "candidates": state["data"]["candidates"]}
        write_json(out / RUN_RESULT, full)

        def rows(key: str) -> list[dict]:
            return [{"gene": r["gene"], "delta": round(r["delta"], 4)} for r in pol[key][:N_LISTED]]

        pert = state["data"]["perturbation"]  # as the data label it (the goal may say otherwise)
        label = f"{'+'.join(pert['targets'])} {pert['kind']}"
        res = {"run_id": out.name, "perturbation": f"{'+'.join(a.targets)} {a.kind}",
               "data": state["data"]["source"], "method": pol["method"], "status": pol["status"],
               "status_reason": pol.get("reason", ""), "top_down": rows("top_down"),
               "top_up": rows("top_up"), "n_ranked_candidates": len(pol.get("proposals", [])),
               "prediction_csv": self.ws.rel(out / pol["prediction_path"]),
               "report": self.ws.rel(out / "report.md"),
               "note": "delta = predicted change of mean log-normalised expression. "
                       + held_out_sentence(PolicySummary.model_validate(pol), label,
                                           twin=state["data"].get("truth_path") is not None)}
        if pol.get("evaluation"):
            res["check_against_measured"] = pol["evaluation"]
        if pol.get("evidence"):
            ev = pol["evidence"]
            res["evidence"] = {"detectable": ev["detectable"], "genes_above_noise": ev["n_clear"],
                               **({"needed": ev["needed"]} if not ev["detectable"] else {})}
        return res

    # ---------------------------------------------------------------------------- steer_cells
    def steer_cells(self, a: S.SteerCells) -> dict:
        """Answer a steering goal through :func:`scagents.agents.steering.steer`, the CLI's path.

        The fields (``target``, ``start_fate``, ``avoid``, ``exclude``, ``max_interventions``) are
        written as the plain-words goal the CLI would be given
        (:func:`scagents.steering.steering_goal_text`); the run goes to ``runs/<run_id>/``.

        Returns
        -------
        dict
            The short answer (:meth:`_steering_answer`).
        """
        from scagents.agents.steering import steer
        from scagents.steering import goal_with_budget, is_steering_goal, steering_goal_text

        goal = goal_with_budget(a.goal.strip(), a.max_interventions) if a.goal is not None else steering_goal_text(
            a.target, start_fate=a.start_fate, avoid=a.avoid, exclude=a.exclude or (),
            max_interventions=a.max_interventions)
        if not is_steering_goal(goal):
            raise ToolRunError(f"{goal!r} is not a steering goal (it names no fate to reach or block): "
                               "write e.g. 'drive Th0 cells to Th1' or 'block the erythroid fate', or give "
                               "target='Th1'; to predict a perturbation's effect call predict_perturbation.")
        model = self._model(a.model)
        runs = self.ws.resolve("runs", what="runs folder")
        runs_existed = runs.exists()
        try:
            state = steer(goal, model=model, seed=a.seed, n_cells=a.n_cells or self.settings.n_cells,
                          root=runs, inputs=a.inputs)
        except BaseException:
            if not runs_existed:  # a refused goal leaves no empty runs folder behind
                with contextlib.suppress(OSError):
                    runs.rmdir()
            raise
        return self._steering_answer(state["steering"], Path(state["out_dir"]))

    def _steering_answer(self, r: dict, folder: Path) -> dict:
        """The short answer of a steering run (the full one is ``steering.json`` in its folder)."""
        b, c, t = r["best"], r["control"], r["task"]
        n_seeds = len(r["interval_seeds"])
        if r.get("silent"):  # every control cell all-off: the one line, no shares, no schedule
            out = {"run_id": folder.name, "goal": r["goal"]["text"], "model": t["model"], "target": t["target"],
                   "start_fate": t["start_fate"], "avoid": t["avoid"], "signal": False, "silent": True,
                   "answer": r["no_signal"], "simulations": 0}
            for key, field in (("excluded", "excluded"), ("model_note", "undefined_inputs")):
                if r.get(field):
                    out[key] = r[field]
            if t.get("inputs"):
                out["inputs"] = t["inputs"]
            out["report"] = self.ws.rel(folder / r["files"].get("markdown", "steering.md"))
            out["files"] = {k: self.ws.rel(folder / v) for k, v in r["files"].items() if k != "markdown"}
            return out

        def share(e: dict) -> dict:
            return {"mean": round(e["target_fraction_mean"], 3), "min": round(e["target_fraction_min"], 3),
                    "max": round(e["target_fraction_max"], 3)}

        steps = "; ".join(f"t={s['time']:.2f} {s['intervention']}" for s in b["steps"]) or "do nothing"
        if r.get("no_signal"):
            answer = r["no_signal"]
        else:
            answer = (f"{steps}: {t['target']} fraction {b['target_fraction_mean']:.2f} (min "
                      f"{b['target_fraction_min']:.2f}, max {b['target_fraction_max']:.2f} over {n_seeds} fresh "
                      f"population seeds) vs {c['target_fraction_mean']:.2f} (min {c['target_fraction_min']:.2f}, "
                      f"max {c['target_fraction_max']:.2f}) without intervention"
                      + ("; the target is the fate to avoid" if t["avoid"] else "") + ".")
        out = {"run_id": folder.name, "goal": r["goal"]["text"], "model": t["model"], "target": t["target"],
               "start_fate": t["start_fate"], "avoid": t["avoid"], "signal": bool(r["signal"]),
               "answer": answer}
        if not r.get("no_signal"):
            out.update(best_schedule=b["steps"], target_fraction=share(b), control_target_fraction=share(c),
                       proposals=[{k: p[k] for k in ("rank", "perturbation", "time", "marginal_contribution")}
                                  for p in r["proposals"]])
            if r.get("marker_note"):
                out["note"] = r["marker_note"]
            if r.get("silenced"):
                from scagents.steering import _silenced_line

                out["not_proposed"] = _silenced_line(r)
            if r.get("n_tied_best", 1) > 1:
                out["ties"] = (f"{r['n_tied_best']} schedules found reach the same objective on the search "
                               "population; runner-ups in the report")
        else:
            out.update(target_fraction=share(b), control_target_fraction=share(c))
        if r.get("excluded"):
            out["excluded"] = r["excluded"]
        if t.get("inputs"):
            out["inputs"] = t["inputs"]
        if r.get("undefined_inputs"):
            out["model_note"] = r["undefined_inputs"]
        out["simulations"] = r["simulations"]
        out["report"] = self.ws.rel(folder / r["files"].get("markdown", "steering.md"))
        out["files"] = {k: self.ws.rel(folder / v) for k, v in r["files"].items() if k != "markdown"}
        return out

    # ---------------------------------------------------------------- recommend_perturbations
    def _run_folder(self, run: str | None, *, steering: bool = False) -> Path:
        """The folder of run ``run`` (default: the latest); prediction runs, and steering runs too
        with ``steering``."""
        if run is not None:
            folder = self.ws.resolve(Path("runs") / run, what="run")
            if not (folder / RUN_RESULT).is_file() and not (steering and _is_steering_run(folder)):
                kind = "prediction run or steering run" if steering else "prediction run"
                hint = (" (a steer_cells run has no ranking of perturbations to recommend; its answer is "
                        "in its steering.md)" if _is_steering_run(folder) else "")
                raise ToolRunError(f"No {kind} {run!r} in the working directory{hint}; "
                                   f"known runs: {self._run_ids(steering=steering)[:10] or 'none'}.")
            return folder
        ids = self._run_ids(steering=steering)
        if not ids:
            raise ToolRunError("No prediction run in the working directory yet: call "
                               "predict_perturbation first (or give campaign=... to use a "
                               "closed-loop campaign)." if not steering else
                               "No run in the working directory yet: call predict_perturbation or "
                               "steer_cells first (or give campaign=... for a campaign's history).")
        return self.ws.resolve(Path("runs") / ids[0], what="run")

    def _run_ids(self, *, steering: bool = False) -> list[str]:
        """Run ids with a prediction (and with ``steering`` finished steering runs too), newest
        first (links leading out of the workspace skipped)."""
        runs = self.ws.resolve("runs", what="runs folder")
        if not runs.is_dir():
            return []
        names = (RUN_RESULT, STEERING_RESULT) if steering else (RUN_RESULT,)
        done = []
        for p in runs.iterdir():
            if not p.resolve().is_relative_to(self.ws.root):
                continue
            for name in names:
                if (p / name).is_file() and (p / name).resolve().is_relative_to(self.ws.root):
                    done.append(((p / name).stat().st_mtime, p.name))
                    break
        done.sort(reverse=True)
        return [name for _, name in done]

    def recommend_perturbations(self, a: S.RecommendPerturbations) -> dict:
        if a.campaign is not None:
            return self._propose(a)
        folder = self._run_folder(a.run)
        path = self.ws.resolve(folder / RUN_RESULT, what="run result")
        try:
            full = json.loads(path.read_text(encoding="utf-8"))
            props = full["policy"].get("proposals", [])
            chosen = props[: a.n]
            res = {"run_id": full["run_id"], "goal": full["goal"],
                   "ranked_by": full["policy"]["method"],
                   "recommendations": [{"rank": p["rank"], "perturbation": p["perturbation"],
                                        "score": round(float(p["score"]), 4),
                                        "uncertainty": round(float(p["uncertainty"]), 4)}
                                       for p in chosen],
                   "csv": self.ws.rel(folder / "recommendations.csv"),
                   "how": "score = predicted effect on the genes the goal changes most (ensemble "
                          "mean) + disagreement between models (upper confidence bound); untested "
                          "genes only"}
            if chosen:
                res["rationale_of_first"] = chosen[0]["rationale"]
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, IndexError, TypeError,
                ValueError, AttributeError):
            raise ToolRunError(
                f"The result file runs/{folder.name}/{RUN_RESULT} is unreadable (truncated or "
                "edited); run predict_perturbation again, or name another run.") from None
        self._write_csv(pd.DataFrame(chosen), folder / "recommendations.csv", index=False)
        if len(chosen) < a.n:
            res["note"] = (f"only {len(props)} untested candidate(s) in this run; "
                           f"{a.n} were asked for")
        return res

    def _propose(self, a: S.RecommendPerturbations) -> dict:
        from scagents.campaign import propose_round
        from scagents.campaign.ledger import read_candidates_file

        cands, header = a.candidates, None
        if a.candidates_file is not None:
            path = self.ws.resolve(a.candidates_file, must_exist=True, what="candidates file")
            try:
                cands, header = read_candidates_file(path)
            except DataFileError:
                raise ToolRunError(f"The candidates file {a.candidates_file!r} is not text; give "
                                   "a text file with one gene per line.") from None
        with self._ledger() as ledger:
            df = propose_round(ledger, a.campaign, batch=a.n, goal=a.goal, candidates=cands,
                               designer=a.designer, seed=a.seed, objective=a.objective)
        rnd = int(df["round"].iloc[0]) if len(df) else 0
        csv = self.ws.new_file("campaigns", f"{a.campaign}_round{rnd}", ".csv")
        self._write_csv(df, csv, index=False)
        res = {"campaign": a.campaign, "round": rnd, "designer": df.attrs["designer"]["designer"],
               "designer_config": df.attrs["designer"], "objective": df.attrs["objective"],
               "recommendations": [{"rank": int(r.rank), "gene": r.gene, "score": round(float(r.score), 4),
                                    "uncertainty": round(float(r.uncertainty), 4)}
                                   for r in df.itertuples()],
               "csv": self.ws.rel(csv), "ledger": self.ws.rel(self.ws.ledger),
               "next_step": "measure these perturbations, then call ingest_results with the results "
                            "file (gene,score CSV, MAGeCK gene_summary or BAGEL2 BF table)"}
        if len(df) < a.n:
            res["note"] = f"only {len(df)} untested candidate(s) were left; {a.n} were asked for"
        if waiting := df.attrs.get("unmeasured"):
            from scagents.cli import unmeasured_line

            res["unmeasured_earlier"] = unmeasured_line(waiting)
        if info := df.attrs.get("candidates"):
            from scagents.campaign.ledger import candidates_line

            res["candidates"] = candidates_line(info, a.candidates_file, header)
        return res

    # ------------------------------------------------------------------------- ingest_results
    def ingest_results(self, a: S.IngestResults) -> dict:
        from scagents.campaign import campaign_info, ingest

        path = self.ws.resolve(a.results_path, must_exist=True, what="results file")
        with self._ledger() as ledger:
            s = ingest(ledger, a.campaign, path, score_column=a.score_column, gene_column=a.gene_column)
            info = campaign_info(ledger, a.campaign)
        return {"campaign": a.campaign, "file": self.ws.rel(path), "score_rule": s.score_rule,
                "n_new": s.n_new, "n_already_stored": s.n_already, "duplicate_file": s.duplicate_file,
                "rounds": s.rounds, "n_ignored_not_proposed": s.n_unproposed,
                "n_ignored_not_candidates": s.n_unknown, "library": s.library, "scale": info["scale"],
                "random_reference": info["random_reference"], "progress": info["progress"],
                "progress_by_round": info["rounds"]}

    # --------------------------------------------------------------------------- write_report
    def write_report(self, a: S.WriteReport) -> dict:
        if a.campaign is not None:
            from scagents.campaign import campaign_info, history, plot_campaign

            with self._ledger() as ledger:
                h = history(ledger, a.campaign)
            csv = self.ws.new_file("campaigns", f"{a.campaign}_history", ".csv")
            self._write_csv(h, csv, index=False)
            png = plot_campaign(self.ws.ledger, a.campaign, csv.with_suffix(".png"))
            info = campaign_info(self.ws.ledger, a.campaign)
            return {"campaign": a.campaign, "goal": info["goal"], "history_csv": self.ws.rel(csv),
                    "progress_plot": self.ws.rel(png), "scale": info["scale"],
                    "random_reference": info["random_reference"], "progress": info["progress"],
                    "progress_by_round": info["rounds"]}
        from scagents.agents.graph import CHECKPOINTS, load_state
        from scagents.agents.report import report_agent

        folder = self._run_folder(a.run, steering=True)
        if not self.ws.resolve(folder / CHECKPOINTS, what="run checkpoint").is_file():
            raise ToolRunError(f"Run {folder.name!r} has no checkpoint to build a report from.")
        try:
            values = load_state(folder)
        except sqlite3.DatabaseError:
            raise ToolRunError(f"The checkpoint file runs/{folder.name}/{CHECKPOINTS} is not a "
                               "readable SQLite database (truncated or replaced); run "
                               "predict_perturbation again.") from None
        if not values.get("options"):
            raise ToolRunError(f"Run {folder.name!r} has an empty checkpoint; run "
                               "predict_perturbation again.")
        if values.get("steering"):  # a steering run: its steering.{md,json} are rewritten (as `scagents report`)
            from scagents.steering import _write

            r = values["steering"]
            r["files"] = {**r.get("files", {}), **_write(r, folder)}
            md = folder / r["files"]["markdown"]
            return {"run_id": folder.name, "kind": "steering",
                    "files": {k: self.ws.rel(folder / v) for k, v in r["files"].items()},
                    "excerpt": md.read_text()[:700]}
        # the report goes into the run folder found here, whatever folder the checkpoint names
        files = report_agent(dict(values, out_dir=str(folder)))["report"]["files"]
        md = folder / files.get("markdown", "report.md")
        return {"run_id": folder.name,
                "files": {k: self.ws.rel(folder / v) for k, v in files.items()},
                "excerpt": md.read_text()[:700] if md.exists() else ""}

    # ----------------------------------------------------------------------------- list_files
    def list_files(self, a: S.ListFiles) -> dict:
        files = self.ws.listing(a.folder)
        return {"folder": a.folder, "n_files": len(files), "files": files}


def _looks_like_counts(X) -> bool:
    from scagents.data import scan_values

    return bool(scan_values(X).is_counts)


# ------------------------------------------------------------------------------- the tools
_SPECS: dict[str, tuple[type[BaseModel], str]] = {
    "load_data": (S.LoadData, (
        "Load a single-cell perturbation data set (h5ad, h5mu, 10x h5, csv, matrix-market folder) "
        "from the working directory, recognise the perturbation and control columns and store it "
        "as a standardised data set. Returns its path and cells per perturbation.")),
    "integrate": (S.Integrate, (
        "Preprocess every modality of a data set, build a joint neighbour graph, cluster the cells "
        "and order them in pseudotime. Writes a new data set file; returns cluster sizes.")),
    "infer_network": (S.InferNetwork, (
        "Infer a signed regulator->target gene network from a data set (ridge, correlation or "
        "partial correlation; an ATAC modality can serve as a chromatin prior). Saves the edge "
        "table and matrix as CSV; returns the strongest edges and the edges of focus genes.")),
    "simulate_perturbation": (S.SimulatePerturbation, (
        "Simulate control and perturbed cells on the mechanistic digital twin (Boolean T-helper "
        "model by default) and report the simulated change of each gene and of cell fates. "
        "This is the twin's ground truth, not a prediction from data.")),
    "train_policy": (S.TrainPolicy, (
        "Train the TRPO->PPO response policy on a perturbation data set (or the twin), with "
        "some perturbations held out, and score it on them against the mean-effect baseline. "
        "Saves the policy (.pt).")),
    "predict_perturbation": (S.PredictPerturbation, (
        "Predict the transcriptional response to a gene perturbation (e.g. IFNG knockout) with the "
        "full agent system: data, integration, network inference, TRPO->PPO policy validated "
        "against baselines (network-propagation fallback), and a report. Returns the genes "
        "predicted down and up and ranks untested perturbations for recommend_perturbations.")),
    "recommend_perturbations": (S.RecommendPerturbations, (
        "Recommend the next perturbations to test: by default the n best-ranked untested genes of "
        "the latest predict_perturbation run; with `campaign`, propose and record the next round "
        "of a closed-loop campaign (create it with `goal` and `candidates`).")),
    "ingest_results": (S.IngestResults, (
        "Add measured results of proposed perturbations to a closed-loop campaign: a MAGeCK RRA/MLE "
        "gene summary, a BAGEL2 BF table or a CSV/TSV with gene and score columns; returns which column "
        "became the score (score_rule), the rows ignored and the progress per round.")),
    "steer_cells": (S.SteerCells, (
        "Find how to steer cells to a fate on the digital twin (Boolean gene-regulatory model as "
        "stochastic Hill dynamics): searches schedules of up to 3 knockouts/overexpressions at 3 "
        "decision times (greedy, cross-entropy, TRPO->PPO) and re-runs the best on fresh populations. "
        "Give a goal in plain words ('drive Th0 cells to Th1', 'block the erythroid fate') or a target "
        "fate, optionally a model file, milieu inputs and genes to leave out. Returns the best "
        "schedule, its effect on the target fate's share with the spread over population seeds vs no "
        "intervention, or says the simulation carries no signal; the report and plots are in the run "
        "folder.")),
    "write_report": (S.WriteReport, (
        "(Re)write the report of a run (latest by default): Markdown/HTML/JSON of a prediction run, "
        "steering.md/json of a steer_cells run; or the history table and progress plot of a "
        "campaign.")),
    "list_files": (S.ListFiles, (
        "List the files in the working directory (newest first) to find data sets, runs and "
        "results.")),
}

TOOL_NAMES: tuple[str, ...] = tuple(_SPECS)


def _make_runner(kit: Toolkit, name: str, schema: type[BaseModel]) -> Callable[..., str]:
    impl = getattr(kit, name)

    def run(**kwargs) -> str:
        try:
            args = schema.model_validate(kwargs)
            return kit.ws.summarise(name, impl(args))
        except (ValidationError, ScagentsError, FileNotFoundError) as exc:
            return format_error(exc, workspace=kit.ws, tool=name)
        except Exception as exc:  # noqa: BLE001 - a model must get a message, never a traceback
            return format_error(exc, workspace=kit.ws, tool=name)

    run.__name__ = name
    run.__doc__ = _SPECS[name][1]
    return run


def make_tools(workdir: str | Path, *, settings: ToolSettings | None = None,
               **overrides: int) -> list[BaseTool]:
    """The scagents tools, operating inside ``workdir``.

    Parameters
    ----------
    workdir
        Working directory; every path argument is resolved inside it and paths leaving it are
        refused.
    settings
        Defaults of the size arguments (:class:`ToolSettings`).
    **overrides
        Individual :class:`ToolSettings` fields, e.g. ``n_cells=40, policy_steps=256`` for fast runs.

    Returns
    -------
    list[langchain_core.tools.BaseTool]
        One :class:`~langchain_core.tools.StructuredTool` per name in :data:`TOOL_NAMES`, each with
        its pydantic ``args_schema``. Calling a tool returns a JSON summary (at most about 2,000
        characters, see :meth:`Workspace.summarise`) or one line ``error: … fix: …``.
    """
    base = settings or ToolSettings()
    if overrides:
        base = ToolSettings(**{**base.__dict__, **overrides})
    kit = Toolkit(workdir, base)
    tools: list[BaseTool] = []
    for name, (schema, description) in _SPECS.items():
        tools.append(StructuredTool.from_function(
            func=_make_runner(kit, name, schema), name=name, description=description,
            args_schema=schema, handle_validation_error=format_validation_error))
    return tools
