"""The optional LLM planner, driven by langchain-core's fake chat model (no key, no network)."""

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from scagents.agents.supervisor import LLMPlanner, LLMPlannerError, allowed_moves, make_supervisor


def _state(policy_status: str, attempts: int = 1) -> dict:
    return {
        "options": {"goal": "predict IFNG knockout"},
        "data": {"modalities": ["rna", "atac"]},
        "integration": {"status": "done"},
        "network": {"status": "done"},
        "policy": {"status": policy_status, "attempts": attempts, "retrain": True,
                   "reason": "validation MSE 0.6 vs 0.4"},
    }


def test_llm_picks_among_allowed_moves():
    state = _state("not_validated")
    assert allowed_moves(state) == ["policy", "fallback"]
    planner = LLMPlanner(FakeListChatModel(responses=["fallback"]))
    update = make_supervisor(planner)(state)
    assert update["next"] == "fallback"  # the model's choice, not the deterministic "policy"
    assert planner.decisions[-1]["choice"] == "fallback"


def test_llm_answer_outside_allowed_moves_is_ignored():
    state = _state("not_validated")
    planner = LLMPlanner(FakeListChatModel(responses=["let's run the report now"]))
    assert make_supervisor(planner)(state)["next"] == "policy"  # deterministic default


def test_llm_not_consulted_when_only_one_move():
    state = _state("validated")
    planner = LLMPlanner(FakeListChatModel(responses=["fallback"]))
    assert make_supervisor(planner)(state)["next"] == "report"
    assert planner.decisions == []


def test_llm_provider_string_needs_langchain():
    pytest.importorskip("langchain_core")
    try:
        import langchain  # noqa: F401
    except ImportError:
        with pytest.raises(LLMPlannerError, match="needs the 'langchain' package"):
            LLMPlanner("openai:gpt-4o-mini")
    else:  # pragma: no cover - depends on the environment
        pytest.skip("langchain is installed here; the missing-package message cannot be shown")
