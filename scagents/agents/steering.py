"""The steering agent: answers fate-steering goals ("drive Th0 cells to Th1") on the digital twin.

The supervisor routes a goal that :func:`scagents.steering.is_steering_goal` recognises here instead
of the data → network → policy path; the agent writes ``steering.{md,json}`` and the plots into the
run folder (:func:`scagents.steering.answer_steering_goal`).
"""

from __future__ import annotations

from scagents.agents.state import AgentRecord, RunOptions, RunState

__all__ = ["steering_agent"]


def steering_agent(state: RunState) -> dict:
    """Search the best intervention schedule for the run's steering goal."""
    from scagents.steering import answer_steering_goal

    opts = RunOptions.model_validate(state["options"])
    # at most 100 cells: the default --n-cells (200) would double the time of the answer
    result = answer_steering_goal(opts.goal, state["out_dir"], model=opts.model, seed=opts.seed,
                                  n_cells=min(opts.n_cells, 100))
    best = result["best"]
    steps = "; ".join(f"t={s['time']:.2f} {s['intervention']}" for s in best["steps"]) or "do nothing"
    rec = AgentRecord(agent="steering", status="done",
                      summary=f"best schedule: {steps} → {result['task']['target']} "
                              f"{best['target_fraction_mean']:.2f} (control {result['control']['target_fraction_mean']:.2f})",
                      figures={"simulations": result["simulations"], "objective": best["objective"]})
    return {"steering": result, "report": {"status": "done", "files": result["files"]},
            "log": [rec.model_dump()]}
