"""The Python entry point, in scanpy's style: ``scagents.run(adata, goal=...)``.

>>> import scagents
>>> res = scagents.run(adata, goal="predict STAT1 knockout")      # doctest: +SKIP
>>> adata.varm["scagents"]["delta"].nlargest(5)                     # doctest: +SKIP
>>> res = scagents.RunResult.load("scagents_runs/20260101-120000_predict_stat1_knockout")  # doctest: +SKIP

:func:`run` runs the same agent graph as ``python -m scagents run`` (the command line calls it), on a
file, an in-memory AnnData / MuData or the embedded digital twin, and returns a :class:`RunResult`.
Given an AnnData / MuData it also writes the answer back into the object (see :func:`run`).

Everything heavy (the agent graph, anndata, pandas) is imported inside the functions, so importing
this module — and the command line's usage errors — stay fast.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scagents._warnings import (
    DEPENDENCY_WARNINGS,
    dependency_warnings_filtered,
    filter_dependency_warnings,
)
from scagents.errors import GoalError, ScagentsError, check_path

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["run", "RunResult", "RunStoppedError", "list_runs", "write_result",
           "filter_dependency_warnings", "dependency_warnings_filtered", "DEPENDENCY_WARNINGS", "RESULT_KEY", "INPUT_FILES"]

RESULT_KEY = "scagents"
"""Default ``key_added``: ``.uns["scagents"]`` and ``.varm["scagents"]``."""
INPUT_FILES = {"anndata": "input.h5ad", "mudata": "input.h5mu"}
"""Where :func:`run` writes an in-memory object in the run folder (the data agent reads it there)."""

class RunStoppedError(ScagentsError, ValueError):
    """A run stopped before it could answer (unknown gene, no perturbation data, …)."""


# ------------------------------------------------------------------------------------ RunResult
@dataclass
class RunResult:
    """What a run answered, read back from its folder (``report.json``, ``prediction.csv``).

    Attributes
    ----------
    run_id
        The run folder's name (``python -m scagents run --resume RUN_ID``, ``report RUN_ID``).
    out
        The run folder.
    goal
        The goal as asked.
    perturbation
        The perturbation answered, e.g. ``"STAT1 knockout"``.
    headline
        The report's headline in plain text: the answer, how far to trust it (its check against
        observed cells or the twin) and which method gave it.
    method
        The model that answered (e.g. ``"TRPO→PPO policy"``, ``"linear gene embedding"``).
    status
        ``validated`` (the policy beat the baselines on held-out perturbations), ``fallback`` (a
        baseline answered), ``unchecked`` (too few measured perturbations to train and validate:
        network propagation answered, not validated), ``no_effect`` (no gene's change clears the
        noise: the prediction is kept for reference only) or another agent status.
    predicted
        One row per gene (index ``gene``): ``delta`` (predicted change of log-normalised
        expression from control), ``control_mean``, ``perturbed_mean`` and whatever else the run
        saved per gene (e.g. the observed change, intervals).
    top_up, top_down
        The genes listed as up / down in the report.
    validation
        Scores of every candidate model on the held-out perturbations and the decision.
    check
        The check of the answer against observed cells (``evaluation``) or the twin's own
        simulation (``twin_check``); ``None`` when neither was possible.
    proposals
        The recommended next perturbations.
    files
        Report files by name (``markdown``, ``html``, ``json``, ``prediction``, figures).
    seed, version
        Provenance.
    report
        The whole ``report.json``.
    wall_time_s
        Seconds the run took (``None`` when loaded from a folder).
    """

    run_id: str
    out: Path
    goal: str
    perturbation: str
    headline: str
    method: str
    status: str
    predicted: pd.DataFrame
    top_up: list[dict]
    top_down: list[dict]
    validation: dict
    check: dict | None
    proposals: list[dict]
    files: dict[str, Path]
    seed: int
    version: str
    report: dict = field(repr=False)
    wall_time_s: float | None = None

    @property
    def delta(self) -> pd.Series:
        """Predicted change from control per gene (``predicted["delta"]``)."""
        return self.predicted["delta"]

    def __repr__(self) -> str:
        return (f"RunResult({self.run_id!r}: {self.perturbation}, {self.method} [{self.status}], "
                f"{len(self.predicted)} genes, out={str(self.out)!r})")

    @classmethod
    def load(cls, path: str | os.PathLike) -> RunResult:
        """Read a finished run from its folder (or its ``report.json``); JSON and CSV only.

        Parameters
        ----------
        path
            The run folder (e.g. ``"scagents_runs/<run id>"``; a bare run id is not looked up
            under a root) or its ``report.json``.

        Returns
        -------
        RunResult
            With ``wall_time_s`` ``None``.

        Raises
        ------
        RunStoppedError
            The folder holds no finished report (the message says how to finish the run).
        """
        import pandas as pd

        from scagents.agents.policy import PREDICTION_FILE

        folder = Path(path)
        if folder.name == "report.json":
            folder = folder.parent
        report_path = folder / "report.json"
        if not report_path.is_file():
            hint = (f"finish it with `python -m scagents run --resume {folder}`"
                    if (folder / "checkpoints.sqlite").exists()
                    else "give the folder of a run (under ./scagents_runs by default)")
            raise RunStoppedError(f"No finished run at {str(folder)!r} (no report.json): {hint}.")
        report = json.loads(report_path.read_text())
        pred_path = folder / PREDICTION_FILE
        if pred_path.is_file():
            predicted = pd.read_csv(pred_path, index_col="gene")
        else:  # the report keeps the strongest 50 genes
            predicted = pd.DataFrame(report.get("genes", [])).set_index("gene")
        pert = report.get("perturbation") or {}
        label = ((report.get("goal") or {}).get("label")
                 or f"{'+'.join(pert.get('targets', []))} {pert.get('kind', '')}".strip())
        method = (report.get("method") or {}).get("name", "")
        statuses = [a["status"] for a in report.get("agents", [])
                    if a.get("agent") in ("policy", "fallback", "stimulation")]
        status = statuses[-1] if statuses else "unknown"
        check = report.get("twin_check") or report.get("evaluation")
        files = {"markdown": folder / "report.md", "html": folder / "report.html",
                 "json": report_path, "prediction": pred_path}
        files.update({k: folder / v for k, v in (report.get("figures") or {}).items()})
        return cls(
            run_id=folder.name, out=folder, goal=(report.get("goal") or {}).get("text", ""),
            perturbation=label, headline=_headline(report, label, method, status),
            method=method, status=status, predicted=predicted,
            top_up=list(report.get("top_up", [])), top_down=list(report.get("top_down", [])),
            validation=dict(report.get("validation") or {}), check=check,
            proposals=list(report.get("proposals", [])),
            files={k: p for k, p in files.items() if p.exists()},
            seed=int(report.get("seed", 0)), version=str(report.get("version", "")),
            report=report)


def _headline(report: dict, label: str, method: str, status: str) -> str:
    """The report's own headline when it has one, else the answer in one sentence."""
    given = report.get("headline")
    if isinstance(given, str) and given:
        return given
    if isinstance(given, list) and given:  # answer, check, method (scagents.agents.report)
        return " ".join(str(s).replace("**", "") for s in given)
    if isinstance(given, dict) and isinstance(given.get("text"), str):
        return given["text"]

    def genes(rows: list[dict]) -> str:
        return ", ".join(f"{r['gene']} {r['delta']:+.2f}" for r in rows[:3]) or "none"

    how = (report.get("method") or {}).get("description", "") if status == "unchecked" else status
    return (f"{label}: down {genes(report.get('top_down', []))}; up "
            f"{genes(report.get('top_up', []))} (answered by {method}, {how}).")


# ---------------------------------------------------------------------------------------- run
def _print_agent_records(agent: str, update: dict) -> None:
    for rec in update.get("log", []):
        if rec["status"] == "failed":  # the RunStoppedError that ends the run says it
            continue
        print(f"[{rec['agent']}] {rec['status']}: {rec['summary']}", file=sys.stderr, flush=True)


def run(
    data: Any = None,
    goal: str | None = None,
    *,
    out: str | os.PathLike | None = None,
    seed: int = 0,
    quiet: bool = True,
    key_added: str = RESULT_KEY,
    resume: str | None = None,
    root: str | os.PathLike = "scagents_runs",
    model: str = "th",
    n_cells: int = 1000,
    perturbation_key: str | None = None,
    control: str | list[str] | None = None,
    llm: str | None = None,
    on_event: Callable[[str, dict], None] | None = None,
    **options: Any,
) -> RunResult:
    """Answer a goal such as ``"predict STAT1 knockout"`` with the agent graph.

    The same code path as ``python -m scagents run``: data → integration → network → policy (or a
    validated baseline) → report, checkpointed in a run folder.

    Parameters
    ----------
    data
        An AnnData or MuData in memory, a path (``.h5ad`` / ``.h5mu`` / 10x ``.h5`` / matrix-market
        folder), or ``None`` for the embedded digital twin (``model``). An in-memory object is
        written to ``input.h5ad`` / ``input.h5mu`` in the run folder (the data agent reads it from
        there, and a killed run resumes from it); a backed AnnData is read from its file. The
        object is never modified except for the results added below (in memory; write it to keep
        them).
    goal
        The goal in plain words; not needed with ``resume``.
    out
        Run folder (default ``<root>/<time>_<goal>``); its name is the run id.
    seed
        Random seed: the same seed gives the same ``report.json``.
    quiet
        ``False`` prints what each agent did to stderr as it finishes.
    key_added
        Where the results go in ``data`` (see Returns).
    resume
        Run id (folder name under ``root``) or folder of an interrupted run to finish.
    root
        Folder of the runs.
    model, n_cells
        Twin model and cells simulated per condition when ``data`` is ``None``.
    perturbation_key, control
        The ``.obs`` column naming the perturbation and the label(s) of control cells, when they
        are not recognised automatically.
    llm
        ``provider:model`` of a LangChain chat model that plans the agents (default: the
        deterministic planner).
    on_event
        Called as ``on_event(agent, update)`` after each agent (overrides ``quiet``).
    **options
        Further :class:`scagents.agents.RunOptions` fields (``policy_steps``,
        ``max_policy_attempts``, ``n_validation``, ``n_proposals``, …).

    Returns
    -------
    RunResult
        The answer. When ``data`` is an AnnData / MuData the results are also written into it
        (for a MuData into its RNA modality and ``mdata.uns``):

        ``.varm[key_added]``
            DataFrame, one row per gene of ``var_names``: ``delta`` (predicted change of
            log-normalised expression from control), ``control_mean``, ``perturbed_mean`` and
            every other per-gene column the run saved (observed change, intervals); NaN for genes
            the run did not predict.
        ``.uns[key_added]``
            Provenance and summary: goal, perturbation, method, status, headline, run id, run
            folder, seed, version, validation decision and scores, the check against observed
            cells / the twin, the recommended next perturbations. The ``integration`` and
            ``data`` records of :func:`scagents.tl.integrate` / :func:`scagents.pp.load` already
            there are kept.

    Raises
    ------
    RunStoppedError
        The goal cannot be answered with these data (the message says why and what to do).
    DataFileNotFoundError
        ``data`` is a path that does not exist.
    """
    if goal is None and resume is None:
        raise RunStoppedError('Give a goal, e.g. goal="predict IFNG knockout" (or resume=RUN_ID).')
    from scagents.steering import is_steering_goal

    if resume is None and is_steering_goal(goal):  # no prediction to return: say where it is answered
        raise GoalError(f"{goal!r} is a fate-steering goal: scagents.run answers prediction goals; use "
                        f"scagents.steering.answer_steering_goal({goal!r}, out_dir, model=...) or "
                        f"`python -m scagents run --goal {goal!r}`.")
    obj = None
    data_path: str | None = None
    if isinstance(data, str | os.PathLike):
        check_path(data)
        data_path = str(data)
    elif data is not None:
        obj = data
        if not (hasattr(obj, "obs_names") and hasattr(obj, "var_names")):
            raise RunStoppedError(f"data must be an AnnData, a MuData, a path or None, got "
                                  f"{type(data).__name__}.")
        if getattr(obj, "isbacked", False):  # X is on disk already: read the file, not X
            data_path = str(obj.filename)
    if isinstance(control, str):
        control = [control]
    with dependency_warnings_filtered():
        from scagents.agents.graph import default_out_dir, run_graph

        opts = None
        out_dir = None
        created = False
        if resume is None:
            options.setdefault("progress", not quiet)  # progress bars on stderr only when not quiet
            opts = _options(goal, data_path, model=model, n_cells=n_cells, seed=seed,
                            perturbation_key=perturbation_key, control_labels=control, llm=llm,
                            **options)
            out_dir = Path(out) if out is not None else default_out_dir(goal, root)
            if obj is not None and data_path is None:
                created = not out_dir.exists()
                out_dir.mkdir(parents=True, exist_ok=True)
                opts.data = str(_write_input(obj, out_dir))
        printer = on_event or (None if quiet else _print_agent_records)
        state = run_graph(opts, out=out_dir, resume=resume, root=root, on_event=printer)
        if not (state.get("policy") or {}).get("prediction_path"):
            reason = (state.get("stop_reason") or (state.get("policy") or {}).get("reason")
                      or "no prediction was made")
            if created and state.get("stop_reason"):  # rejected: run_graph removed its own files
                shutil.rmtree(out_dir, ignore_errors=True)
            raise RunStoppedError(reason)
        result = RunResult.load(state["out_dir"])
        result.wall_time_s = state.get("wall_time_s")
        if obj is not None:
            write_result(obj, result, key_added=key_added)
    return result


def _options(goal, data, **kw):
    from pydantic import ValidationError

    from scagents.agents.state import RunOptions

    try:
        return RunOptions(goal=goal, data=data, **kw)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = ".".join(str(x) for x in err["loc"]) or "options"
        raise RunStoppedError(f"Invalid {name}={err.get('input')!r}: {err['msg']}.") from None


def _write_input(obj: Any, out_dir: Path) -> Path:
    """Write an in-memory AnnData (X, layers, obs, var only) / MuData into the run folder."""
    import anndata as ad

    from scagents.data import write

    if hasattr(obj, "mod"):
        return write(obj, out_dir / INPUT_FILES["mudata"])
    slim = ad.AnnData(X=obj.X, obs=obj.obs.copy(), var=obj.var.copy(),
                      layers={k: v for k, v in obj.layers.items()},
                      # text descriptions (uns["source"], …) can name the data's treatment
                      uns={k: v for k, v in obj.uns.items() if isinstance(v, str)})
    return write(slim, out_dir / INPUT_FILES["anndata"])


def write_result(obj: Any, result: RunResult, *, key_added: str = RESULT_KEY) -> None:
    """Write a run's answer into an AnnData / MuData (see :func:`run` for where)."""
    from scagents.data import gene_names, rna_modality

    rna = rna_modality(obj)[1] if hasattr(obj, "mod") else obj  # "rna", "gex", … as run() read it

    table = result.predicted.select_dtypes("number").astype("float64")
    table = table.reindex(gene_names(rna))  # the run's names: symbols for Ensembl var_names
    table.index = rna.var_names
    rna.varm[key_added] = table
    prev = obj.uns.get(key_added)
    kept = ({k: prev[k] for k in ("integration", "data") if k in prev}  # tl.integrate's, load's
            if hasattr(prev, "keys") else {})
    obj.uns[key_added] = {**kept, **_h5_safe({
        "goal": result.goal, "perturbation": result.perturbation, "headline": result.headline,
        "method": result.method, "status": result.status, "run_id": result.run_id,
        "out": str(result.out), "seed": result.seed, "version": result.version,
        "n_genes_predicted": int(table["delta"].notna().sum()) if "delta" in table else 0,
        "validation": {"decision": result.validation.get("decision", ""),
                       "answered_by": result.validation.get("answered_by", ""),
                       "scores": result.validation.get("scores", {})},
        "check": {"description": (result.check or {}).get("description", ""),
                  "metrics": (result.check or {}).get("metrics", {})},
        "proposals": [p["perturbation"] for p in result.proposals],
        "proposal_scores": [float(p["score"]) for p in result.proposals],
        "evidence": {k: v for k, v in (result.report.get("evidence") or {}).items()
                     if k in ("kind", "method", "detectable", "n_clear", "cleared", "needed")},
        "intervals": {k: v for k, v in (result.report.get("intervals") or {}).items()
                      if k in ("level", "q", "n_calibration", "method", "columns")},
    })}


def _h5_safe(value: Any) -> Any:
    """Drop ``None`` (anndata cannot write it) from nested dicts / lists."""
    if isinstance(value, dict):
        return {str(k): _h5_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_h5_safe(v) for v in value if v is not None]
    return value


# --------------------------------------------------------------------------------- list_runs
def list_runs(root: str | os.PathLike = "scagents_runs") -> list[dict]:
    """The runs under ``root``, newest first: id, start time, goal, state, answer.

    A finished run is described from its ``report.json``; an unfinished one from its checkpoint
    (``state`` is ``stopped: <reason>`` or ``interrupted after <agent>``: resume it).

    Returns
    -------
    list[dict]
        ``run_id``, ``started`` (ISO time, from ``agents.log``), ``goal``, ``state``
        (``finished`` / ``stopped: …`` / ``interrupted after …``), ``answer`` (method and status).
    """
    from datetime import datetime

    from scagents.agents.graph import AGENT_LOG, CHECKPOINTS

    root = Path(root)
    if not root.is_dir():
        raise RunStoppedError(f"No runs folder {str(root)!r}: runs are written under "
                              "./scagents_runs by default; pass --out DIR (the folder holding "
                              "the run folders).")
    rows = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        has_report = (folder / "report.json").is_file()
        if not has_report and not (folder / CHECKPOINTS).exists():
            continue
        started = folder.stat().st_mtime
        log = folder / AGENT_LOG
        events = []
        if log.is_file():
            for line in log.read_text().splitlines():
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut by a kill
                    continue
            if events:
                started = float(events[0].get("time", started))
        row = {"run_id": folder.name,
               "started": datetime.fromtimestamp(started).isoformat(sep=" ", timespec="seconds")}
        steering = folder / "steering.json"
        if not has_report and steering.is_file():  # a finished fate-steering run
            try:
                st = json.loads(steering.read_text())
                steps = "; ".join(f"t={s['time']:.2f} {s['intervention']}" for s in (st["best"] or {}).get("steps", []))
                answer = ("silent simulation (all-off), nothing searched" if st.get("silent") else
                          "goal met without intervention" if st.get("goal_met_without_intervention") else
                          "no signal" if st.get("no_signal") else
                          f"{steps or 'do nothing'} -> {st['task']['target']} "
                          f"{st['best']['target_fraction_mean']:.2f} (control "
                          f"{st['control']['target_fraction_mean']:.2f})")
                row.update(goal=st["goal"]["text"], state="finished (steering)", answer=answer)
            except (ValueError, KeyError, TypeError) as exc:
                row.update(goal="?", state=f"unreadable steering.json ({exc})", answer="")
        elif has_report:
            try:
                res = RunResult.load(folder)
                row.update(goal=res.goal, state="finished",
                           answer=f"{res.perturbation}: {res.method} ({res.status})")
            except (ValueError, KeyError) as exc:
                row.update(goal="?", state=f"unreadable report.json ({exc})", answer="")
        else:
            row.update(_unfinished(folder, events))
        rows.append(row)
    return sorted(rows, key=lambda r: r["started"], reverse=True)


def _unfinished(folder: Path, events: list[dict]) -> dict:
    from scagents.agents.graph import load_state

    done = [e["agent"] for e in events if e.get("event") == "finished"]
    try:
        values = load_state(folder)
    except Exception as exc:  # noqa: BLE001 - a damaged checkpoint is reported, not raised
        return {"goal": "?", "state": f"unreadable checkpoint ({type(exc).__name__})",
                "answer": ""}
    goal = (values.get("options") or {}).get("goal", "?")
    if values.get("stop_reason"):
        return {"goal": goal, "state": f"stopped: {values['stop_reason']}", "answer": ""}
    after = done[-1] if done else "start"
    return {"goal": goal, "state": f"interrupted after {after} (run --resume {folder.name})",
            "answer": ""}
