"""The supervisor: decides which agent runs next.

The default planner (:func:`plan_next`) is deterministic and needs no LLM: data → integration
(multi-modal data only) → network → policy → (retrain when the policy did not validate but came
close, ``policy["retrain"]`` | fallback when the policy does not validate) → report, and it stops with the reason when the goal cannot be met by the data. The optional LLM
planner (:class:`LLMPlanner`) lets a LangChain chat model choose among the *same* allowed moves; an
answer outside them is ignored and the deterministic choice is used.
"""

from __future__ import annotations

from collections.abc import Callable

from scagents.agents.state import AgentRecord, IntegrationSummary, RunOptions, RunState
from scagents.errors import ScagentsError

__all__ = ["plan_next", "allowed_moves", "supervisor", "make_supervisor", "LLMPlanner",
           "LLMPlannerError", "END_MOVE"]

END_MOVE = "end"


class LLMPlannerError(ScagentsError, RuntimeError):
    """The optional LLM planner cannot be set up (langchain missing, unknown model...)."""


def allowed_moves(state: RunState) -> list[str]:
    """The agents that may run next given the state (the first is the deterministic choice)."""
    opts = RunOptions.model_validate(state["options"])
    from scagents.steering import is_steering_goal

    if is_steering_goal(opts.goal):  # fate steering: one agent answers on the twin
        return ["steering"] if state.get("steering") is None else [END_MOVE]
    if state.get("stop_reason"):
        return [END_MOVE] if state.get("report") or not state.get("data") else ["report"]
    if state.get("data") is None:
        return ["data"]
    if state["data"].get("stimulation"):  # a treatment goal: the stimulation agent answers
        if state.get("policy") is None:
            return ["stimulation"]
        return ["report"] if state.get("report") is None else [END_MOVE]
    if state.get("integration") is None:
        return ["integration"]
    if state.get("network") is None:
        return ["network", "policy"]
    pol = state.get("policy")
    if pol is None:
        return ["policy"]
    if pol["status"] in ("not_validated", "skipped"):
        if (pol["status"] == "not_validated" and pol["attempts"] < opts.max_policy_attempts
                and pol.get("retrain", True)):
            return ["policy", "fallback"]
        return ["fallback"]
    if state.get("report") is None:
        return ["report"]
    return [END_MOVE]


def plan_next(state: RunState) -> str:
    """The deterministic planner's choice (see the module docstring)."""
    return allowed_moves(state)[0]


def _skip_integration(state: RunState) -> dict | None:
    data = state.get("data")
    if data is not None and state.get("integration") is None and len(data["modalities"]) < 2:
        reason = ("a treatment goal is predicted from RNA alone: nothing to integrate"
                  if data.get("stimulation") else "single-modality data: nothing to integrate")
        s = IntegrationSummary(status="skipped", reason=reason)
        rec = AgentRecord(agent="integration", status="skipped", summary=s.reason)
        return {"integration": s.model_dump(), "log": [rec.model_dump()]}
    return None


def make_supervisor(choose: Callable[[RunState, list[str]], str] | None = None):
    """A supervisor node using ``choose(state, allowed)`` to pick among the allowed moves."""

    def supervisor_node(state: RunState) -> dict:
        update: dict = {}
        skip = _skip_integration(state)
        if skip:
            update.update(skip)
            state = {**state, **skip}
        allowed = allowed_moves(state)
        move = allowed[0]
        if choose is not None and len(allowed) > 1:
            picked = choose(state, allowed)
            move = picked if picked in allowed else allowed[0]
        update["next"] = move
        return update

    supervisor_node.__doc__ = "Decide the next agent; single-modality data skip integration here."
    return supervisor_node


#: the deterministic supervisor node
supervisor = make_supervisor()


class LLMPlanner:
    """Let a LangChain chat model choose among the allowed moves.

    Parameters
    ----------
    model
        A LangChain chat model, or a ``"provider:model"`` string resolved with
        ``langchain.chat_models.init_chat_model`` (needs the ``langchain`` package and the
        provider's integration package and API key).
    """

    def __init__(self, model) -> None:
        if isinstance(model, str):
            try:
                from langchain.chat_models import init_chat_model
            except ImportError as exc:
                raise LLMPlannerError(
                    f"--llm {model} needs the 'langchain' package and the provider's integration "
                    "(e.g. pip install langchain langchain-openai); without --llm the deterministic "
                    "planner is used.") from exc
            try:
                model = init_chat_model(model)
            except Exception as exc:  # noqa: BLE001 - provider errors vary
                raise LLMPlannerError(f"Cannot start the chat model {model!r}: {exc}") from exc
        self.model = model
        self.decisions: list[dict] = []

    def __call__(self, state: RunState, allowed: list[str]) -> str:
        summary = {k: (state.get(k) or {}).get("status") for k in
                   ("integration", "network", "policy")}
        pol = state.get("policy") or {}
        prompt = (
            "You supervise a single-cell perturbation analysis. Goal: "
            f"{state['options']['goal']!r}. Agent status: {summary}. Policy note: "
            f"{pol.get('reason', '')!r}. Choose the next agent from {allowed}. "
            "Answer with the agent name only.")
        try:
            reply = self.model.invoke(prompt)
            text = str(getattr(reply, "content", reply)).strip().lower()
        except Exception as exc:  # noqa: BLE001 - an LLM outage must not stop the run
            text = ""
            self.decisions.append({"allowed": allowed, "error": str(exc)})
        choice = next((a for a in allowed if a in text), allowed[0])
        self.decisions.append({"allowed": allowed, "reply": text[:200], "choice": choice})
        return choice
