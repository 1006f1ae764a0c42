"""The steering agent: answers fate-steering goals ("drive Th0 cells to Th1") on the digital twin.

The supervisor routes a goal that :func:`scagents.steering.is_steering_goal` recognises here instead
of the data → network → policy path; the agent writes ``steering.{md,json}`` and the plots into the
run folder (:func:`scagents.steering.answer_steering_goal`).
"""

from __future__ import annotations

import shutil
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from scagents.agents.state import AgentRecord, RunOptions, RunState

__all__ = ["steering_agent", "steer", "run_steering"]


def steering_agent(state: RunState) -> dict:
    """Search the best intervention schedule for the run's steering goal."""
    from scagents.steering import answer_steering_goal

    opts = RunOptions.model_validate(state["options"])
    # at most 100 cells: the default --n-cells (200) would double the time of the answer
    result = answer_steering_goal(opts.goal, state["out_dir"], model=opts.model, seed=opts.seed,
                                  n_cells=min(opts.n_cells, 100), inputs=opts.inputs)
    best = result["best"] or {"steps": [], "objective": None}
    steps = "; ".join(f"t={s['time']:.2f} {s['intervention']}" for s in best["steps"]) or "do nothing"
    summary = ("silent simulation: every control cell ends all-off, no schedule searched"
               if result.get("silent") else
               f"goal met without intervention: every cell already ends as asked for {result['task']['target']}"
               if result.get("goal_met_without_intervention") else
               f"no signal: no schedule moves {result['task']['target']} beyond the seed spread"
               if result.get("no_signal") else
               f"best schedule: {steps} → {result['task']['target']} {best['target_fraction_mean']:.2f} "
               f"(control {result['control']['target_fraction_mean']:.2f})")
    rec = AgentRecord(agent="steering", status="done", summary=summary,
                      figures={"simulations": result["simulations"], "objective": best["objective"]})
    return {"steering": result, "report": {"status": "done", "files": result["files"]},
            "log": [rec.model_dump()]}


def steer(goal: str, *, out: str | Path | None = None, model: str = "th", seed: int = 0, n_cells: int = 100,
          root: str | Path = "scagents_runs", inputs: dict[str, float] | None = None, data: str | None = None,
          on_event: Callable[[str, dict], None] | None = None) -> dict:
    """Answer a steering goal through the agent graph (the CLI's and the ``steer_cells`` tool's path).

    The goal, the model and the milieu are checked before a run folder is made; a run the twin
    cannot answer (e.g. no cell reaches the start fate in this milieu) leaves no folder.

    Parameters
    ----------
    goal
        The steering goal in plain words (:func:`scagents.steering.parse_steering_goal`).
    out
        Run folder (default ``<root>/<time>_<goal>``); its name is the run id.
    model
        Shipped twin model or model file.
    seed
        Random seed of the search.
    n_cells
        Cells simulated per population (the agent uses at most 100).
    root
        Folder of the runs.
    inputs
        Milieu: activities (0-1) of model input genes.
    data
        A data file: refused (steering goals are answered on the twin only).
    on_event
        Called as ``on_event(agent, update)`` after each agent.

    Returns
    -------
    dict
        The run's final state; ``state["steering"]`` is the answer
        (:func:`scagents.steering.answer_steering_goal`).

    Raises
    ------
    GoalError
        With ``data``, a goal the model cannot answer, or a start fate no cell reaches.
    """
    from scagents.agents.data import _check_twin_inputs
    from scagents.agents.graph import default_out_dir, run_graph
    from scagents.errors import GoalError
    from scagents.steering import parse_steering_goal
    from scagents.twin import load_model
    from scagents.twin.rules import UndefinedInputWarning

    if data is not None:
        raise GoalError(f"Steering goals ({goal!r}) are answered on the digital twin only (--model th, "
                        f"krumsiek11 or a Boolean model file), not on --data {data}: drop --data, or ask "
                        f"what a perturbation does in the data (--goal \"predict STAT1 knockout\"), or rank "
                        f"perturbations for a read-out with `python -m scagents next --campaign NAME --goal ...`.")
    with warnings.catch_warnings():  # the answer names the genes without a rule (no second note)
        warnings.simplefilter("ignore", UndefinedInputWarning)
        g = parse_steering_goal(goal, model)  # a bad goal fails here, before a run folder is made
        _check_twin_inputs(load_model(g.model), inputs or {})
    opts = RunOptions(goal=goal, model=model, n_cells=n_cells, seed=seed, progress=on_event is not None,
                      inputs=dict(inputs or {}))
    out_dir = Path(out) if out is not None else default_out_dir(goal, root)
    created = not out_dir.exists()
    try:
        with warnings.catch_warnings():  # the answer names the genes without a rule (no second note)
            warnings.simplefilter("ignore", UndefinedInputWarning)
            return run_graph(opts, out=out_dir, root=root, on_event=on_event)
    except GoalError:  # e.g. no cell reaches the start fate in this milieu: a rejected run leaves no folder
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise


def run_steering(goal: str, *, out: str | None = None, model: str = "th", seed: int = 0, n_cells: int = 100,
                 quiet: bool = False, root: str = "scagents_runs", inputs: dict[str, float] | None = None,
                 data: str | None = None, resume: str | None = None) -> int:
    """Run a steering goal through the agent graph and print the answer (the CLI's ``run`` path).

    Raises
    ------
    GoalError
        With ``data``: steering goals are answered on the twin only.
    """
    from scagents.agents.graph import run_graph
    from scagents.steering import print_answer

    if resume is not None:  # a steering run: finish it (a finished one is only printed again)
        state = run_graph(resume=resume, root=root, on_event=None)
        print_answer(state["steering"], Path(state["out_dir"]), state["wall_time_s"])
        return 0

    def progress(agent: str, update: dict) -> None:
        for rec in update.get("log", []):
            print(f"[{rec['agent']}] {rec['status']}: {rec['summary']}", file=sys.stderr, flush=True)

    state = steer(goal, out=out, model=model, seed=seed, n_cells=n_cells, root=root, inputs=inputs, data=data,
                  on_event=None if quiet else progress)
    print_answer(state["steering"], Path(state["out_dir"]), state["wall_time_s"])
    return 0
