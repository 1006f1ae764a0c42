"""The agent graph: a LangGraph ``StateGraph`` of the supervisor and the specialist agents.

::

    START → supervisor ─┬→ data ───────┐
                        ├→ integration ┤
                        ├→ network ────┤   every agent returns to the supervisor,
                        ├→ policy ─────┤   which routes on the state (see supervisor.py)
                        ├→ stimulation ┤   (treatment goals, instead of network and policy)
                        ├→ fallback ───┤
                        ├→ report ─────┘
                        └→ END

Runs are checkpointed with LangGraph's SQLite checkpointer in ``<run>/checkpoints.sqlite``
(``thread_id`` = run id = the run folder's name) with synchronous durability, so a killed run resumes
with :func:`run_graph` ``(resume=RUN_ID)`` from the last finished agent. Every agent start and finish
is appended to ``<run>/agents.log`` (JSON lines with its key figures).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from langgraph.graph import END, START, StateGraph

from scagents._atomic import dumps
from scagents.agents.data import data_agent
from scagents.agents.integration import integration_agent
from scagents.agents.network import network_agent
from scagents.agents.policy import fallback_agent, policy_agent
from scagents.agents.report import report_agent
from scagents.agents.state import RunOptions, RunState, initial_state
from scagents.agents.steering import steering_agent
from scagents.agents.stimulation import stimulation_agent
from scagents.agents.supervisor import END_MOVE, LLMPlanner, make_supervisor
from scagents.errors import ScagentsError

__all__ = ["build_graph", "run_graph", "load_state", "run_state", "default_out_dir", "RunNotFoundError",
           "CheckpointError", "RunFolderError",
           "AGENT_LOG", "CHECKPOINTS", "KILL_ENV"]

AGENT_LOG = "agents.log"
CHECKPOINTS = "checkpoints.sqlite"
KILL_ENV = "SCAGENTS_TEST_KILL_AFTER"
"""Testing hook: SIGKILL the process once the named agent's checkpoint has been written."""

SPECIALISTS: dict[str, Callable[[RunState], dict]] = {
    "data": data_agent,
    "integration": integration_agent,
    "network": network_agent,
    "policy": policy_agent,
    "fallback": fallback_agent,
    "report": report_agent,
    "steering": steering_agent,
    "stimulation": stimulation_agent,
}


class RunNotFoundError(ScagentsError, FileNotFoundError):
    """``--resume RUN_ID`` names no run with a checkpoint."""


class CheckpointError(ScagentsError, ValueError):
    """A run's ``checkpoints.sqlite`` cannot be read (corrupt, truncated or not SQLite)."""


class RunFolderError(ScagentsError, ValueError):
    """The folder asked for a new run cannot hold it (a file, or the folder of another run)."""


def default_out_dir(goal: str, root: str | Path = "scagents_runs") -> Path:
    """A new run folder under ``root`` named after the time and the goal (its name is the run id)."""
    slug = "".join(c if c.isalnum() else "_" for c in goal.lower()).strip("_")[:40]
    base = Path(root) / f"{datetime.now():%Y%m%d-%H%M%S}_{slug}"
    out, i = base, 1
    while out.exists():
        out, i = Path(f"{base}_{i}"), i + 1
    return out


def _log_event(state: RunState, record: dict) -> None:
    path = Path(state["out_dir"]) / AGENT_LOG
    with path.open("a") as fh:
        fh.write(dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _maybe_kill(state: RunState) -> None:
    """The testing hook: the previous step's checkpoint is on disk when a node starts."""
    target = os.environ.get(KILL_ENV)
    if target and any(r["agent"] == target for r in state.get("log", [])):
        os.kill(os.getpid(), 9)


def _wrap(name: str, fn: Callable[[RunState], dict]) -> Callable[[RunState], dict]:
    def node(state: RunState) -> dict:
        _maybe_kill(state)
        if name != "supervisor":
            _log_event(state, {"agent": name, "event": "started", "time": time.time()})
        t0 = time.perf_counter()
        update = fn(state)
        if name != "supervisor":
            rec = (update.get("log") or [{}])[-1]
            _log_event(state, {"agent": name, "event": "finished", "time": time.time(),
                               "seconds": round(time.perf_counter() - t0, 3),
                               "status": rec.get("status"), "summary": rec.get("summary"),
                               "figures": rec.get("figures", {})})
        return update

    node.__name__ = f"{name}_node"
    return node


def _route(state: RunState) -> str:
    move = state.get("next") or END_MOVE
    return END if move == END_MOVE else move


def build_graph(checkpointer=None, *, planner: Callable[[RunState, list[str]], str] | None = None):
    """Build and compile the agent graph.

    Parameters
    ----------
    checkpointer
        A LangGraph checkpointer (e.g. ``SqliteSaver``); ``None`` compiles without persistence.
    planner
        Optional ``planner(state, allowed) -> move`` (e.g. :class:`LLMPlanner`); the deterministic
        planner is used when ``None``.

    Returns
    -------
    The compiled graph.
    """
    g = StateGraph(RunState)
    g.add_node("supervisor", _wrap("supervisor", make_supervisor(planner)))
    for name, fn in SPECIALISTS.items():
        g.add_node(name, _wrap(name, fn))
        g.add_edge(name, "supervisor")
    g.add_edge(START, "supervisor")
    g.add_conditional_edges("supervisor", _route, {**{n: n for n in SPECIALISTS}, END: END})
    return g.compile(checkpointer=checkpointer)


def _saver(out: Path):
    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(str(out / CHECKPOINTS), check_same_thread=False)
    return SqliteSaver(conn), conn


def _check_checkpoints(folder: Path) -> None:
    """Raise :class:`CheckpointError` unless ``folder/checkpoints.sqlite`` is a readable checkpoint
    database; it is opened read-only, so a damaged file is left as it is."""
    path = folder / CHECKPOINTS
    fix = ("The run cannot be resumed or reported from it; start a new run with `scagents run --goal ...` "
           "(the other files of the run folder are untouched).")
    # SQLite may create the -wal/-shm side files of a WAL database even read-only: remove the new ones
    side = [p for p in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")) if not p.exists()]
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            ok = con.execute("PRAGMA quick_check").fetchone()[0]
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise CheckpointError(f"{path} is not a readable checkpoint database ({exc}). {fix}") from exc
    finally:
        for p in side:
            p.unlink(missing_ok=True)
    if ok != "ok" or "checkpoints" not in tables:
        raise CheckpointError(f"{path} is damaged or holds no checkpoints ({'no checkpoints table' if ok == 'ok' else ok}"
                              f"). {fix}")


def _run_folder(run: str | Path, root: str | Path, action: str) -> Path:
    """The folder of run ``run`` (a run id under ``root``, or a run folder) with readable checkpoints."""
    folder = Path(run) if Path(run).is_dir() else Path(root) / run
    if not (folder / CHECKPOINTS).is_file():
        raise RunNotFoundError(f"No run {str(run)!r} to {action}: {folder / CHECKPOINTS} does not exist. Run "
                               f"ids are the folder names under {root}/; for a run written with --out "
                               "elsewhere, give the path of its folder.")
    _check_checkpoints(folder)
    return folder


def load_state(folder: str | Path) -> dict:
    """The last checkpointed state of the run in ``folder`` (empty when it has none), with
    ``out_dir`` set to ``folder`` (the run may have been moved or renamed since it started)."""
    folder = Path(folder)
    saver, conn = _saver(folder)
    try:
        graph = build_graph(saver)
        values = graph.get_state({"configurable": {"thread_id": folder.name}}).values
        if not values:  # a renamed run folder: its checkpoints hold the run id it was started with
            threads = [r[0] for r in conn.execute("SELECT DISTINCT thread_id FROM checkpoints")]
            if len(threads) == 1:
                values = graph.get_state({"configurable": {"thread_id": threads[0]}}).values
    finally:
        conn.close()
    values = dict(values)
    if values:
        values["out_dir"] = str(folder)
    return values


def run_state(run: str | Path, *, root: str | Path = "scagents_runs") -> dict:
    """:func:`load_state` of a run (run id under ``root``, or run folder), checked first.

    Raises
    ------
    RunNotFoundError
        No run with checkpoints there.
    CheckpointError
        Its checkpoints cannot be read (checked read-only: a damaged file is left as it is).
    """
    folder = _run_folder(run, root, "report")
    try:
        return load_state(folder)
    except sqlite3.DatabaseError as exc:
        raise CheckpointError(f"{folder / CHECKPOINTS} cannot be read ({exc}).") from exc


def _new_run_folder(out_dir: Path) -> tuple[Path | None, set[Path]]:
    """Check that ``out_dir`` can hold a new run; return the highest folder the run will create
    (``None`` if ``out_dir`` exists) and the entries ``out_dir`` already holds."""
    if out_dir.exists() and not out_dir.is_dir():
        raise RunFolderError(f"The run folder {out_dir} exists and is not a folder; give --out a new folder path.")
    if (out_dir / CHECKPOINTS).exists():
        raise RunFolderError(f"{out_dir} already holds a run; resume it with --resume {out_dir} or give --out "
                             "a new folder.")
    top = None
    for folder in (out_dir, *out_dir.parents):
        if folder.exists():
            if not folder.is_dir():
                raise RunFolderError(f"Cannot create the run folder {out_dir}: {folder} is a file; give --out "
                                     "a folder path.")
            break
        top = folder
    return top, set(out_dir.iterdir()) if top is None else set()


def _remove_new(out_dir: Path, top: Path | None, before: set[Path]) -> None:
    """Remove what a rejected run created: its folder (and parents) or the entries it added."""
    for path in [top] if top is not None else sorted(set(out_dir.iterdir()) - before):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def run_graph(
    options: RunOptions | None = None, *, out: str | Path | None = None, resume: str | None = None,
    root: str | Path = "scagents_runs", on_event: Callable[[str, dict], None] | None = None,
    planner: Callable[[RunState, list[str]], str] | None = None,
) -> dict:
    """Run (or resume) the agent graph and return the final state.

    Parameters
    ----------
    options
        The run options (goal, data, seed, …); not needed with ``resume``.
    out
        Run folder of a new run (default ``<root>/<time>_<goal>``); its name is the run id.
    resume
        Run id (folder name under ``root``) or run folder of a run to resume: finished agents are
        not run again.
    root
        Folder of the runs.
    on_event
        Called as ``on_event(agent, update)`` after each agent (progress streaming).
    planner
        Optional planner (see :func:`build_graph`); ``options.llm`` builds an :class:`LLMPlanner`.

    Returns
    -------
    dict
        The final state values plus ``wall_time_s``. A new run the data cannot answer
        (``stop_reason``) is rejected: what it created (the run folder) is removed again.

    Raises
    ------
    RunNotFoundError
        ``resume`` names no checkpointed run.
    CheckpointError
        The checkpoints of the run to resume cannot be read.
    RunFolderError
        ``out`` is a file or the folder of another run, or the run to resume was moved (its
        agents would write at its old place).
    """
    t0 = time.perf_counter()
    top, before = None, set()
    if resume is not None:
        out_dir, inputs = _run_folder(resume, root, "resume"), None
    else:
        if options is None:
            raise ScagentsError("run_graph needs options (a RunOptions) or resume=RUN_ID.")
        out_dir = Path(out) if out is not None else default_out_dir(options.goal, root)
        top, before = _new_run_folder(out_dir)
        inputs = initial_state(options, out_dir)
    if planner is None and options is not None and options.llm:
        planner = LLMPlanner(options.llm)
    out_dir.mkdir(parents=True, exist_ok=True)
    saver, conn = _saver(out_dir)
    try:
        graph = build_graph(saver, planner=planner)
        config = {"configurable": {"thread_id": out_dir.name}, "recursion_limit": 50}
        if resume is not None:
            snap = graph.get_state(config)
            if not snap.values:
                raise RunNotFoundError(f"Run {resume!r} has no checkpoint to resume from.")
            started = Path(snap.values.get("out_dir", out_dir))
            if started.resolve() != out_dir.resolve():  # its agents would write there, not here
                raise RunFolderError(f"Run {resume!r} was started in {started} (from the folder the run was "
                                     f"started in), not in {out_dir}; resume it from there, or move it back.")
            if not snap.next:
                on_event and on_event("resume", {"note": "the run had already finished"})
        for chunk in graph.stream(inputs, config, stream_mode="updates", durability="sync"):
            for node, update in chunk.items():
                if on_event is not None and node != "supervisor":
                    on_event(node, update or {})
        values = dict(graph.get_state(config).values)
    except sqlite3.DatabaseError as exc:
        raise CheckpointError(f"{out_dir / CHECKPOINTS} cannot be read or written ({exc}).") from exc
    finally:
        conn.close()
    if resume is None and values.get("stop_reason"):
        _remove_new(out_dir, top, before)  # a rejected run leaves nothing behind
    values["wall_time_s"] = round(time.perf_counter() - t0, 2)
    return values
