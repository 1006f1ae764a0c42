"""The whole chat loop with the scripted tool-calling chat model and the real tools."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from scagents.tools import TOOL_NAMES, ScriptedChatModel, keyword_reply, make_tools, run_chat


def _last_tool_result(messages: list[BaseMessage]) -> dict:
    tool_msgs = [m for m in messages if isinstance(m, ToolMessage)]
    return json.loads(tool_msgs[-1].content)


def _answer_prediction(messages: list[BaseMessage]) -> AIMessage:
    res = _last_tool_result(messages)
    down = ", ".join(f"{r['gene']} ({r['delta']:+.2f})" for r in res["top_down"][:5])
    up = ", ".join(f"{r['gene']} ({r['delta']:+.2f})" for r in res["top_up"][:5])
    return AIMessage(f"{res['perturbation']} (predicted with {res['method']}): down {down}; up {up}.")


def _answer_recommendation(messages: list[BaseMessage]) -> AIMessage:
    res = _last_tool_result(messages)
    listed = "; ".join(f"{r['rank']}. {r['perturbation']}" for r in res["recommendations"])
    return AIMessage(f"Test next: {listed}.")


def _call(name: str, args: dict, call_id: str) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}])


@pytest.fixture(scope="module")
def conversation(tmp_path_factory) -> tuple[ScriptedChatModel, list[BaseMessage], Path]:
    script: list[AIMessage | Callable] = [
        _call("predict_perturbation", {"targets": ["IFNG"], "kind": "knockout"}, "call_1"),
        _answer_prediction,
        _call("recommend_perturbations", {"n": 8}, "call_2"),
        _answer_recommendation,
    ]
    model = ScriptedChatModel(messages=iter([]), script=script)
    workdir = tmp_path_factory.mktemp("chat")
    tools = make_tools(workdir, n_cells=200, policy_steps=256, policy_attempts=1)
    messages = run_chat(model, tools, ["predict IFNG knockout",
                                       "recommend 8 perturbations to test next"])
    return model, messages, workdir


def test_loop_binds_all_tools_and_uses_whole_script(conversation):
    model, messages, _ = conversation
    assert model.bound_tools == list(TOOL_NAMES)
    assert model.script == []  # four model calls: call, answer, call, answer
    assert len(model.seen) == 4
    kinds = [type(m) for m in messages]
    assert kinds == [SystemMessage, HumanMessage, AIMessage, ToolMessage, AIMessage,
                     HumanMessage, AIMessage, ToolMessage, AIMessage]
    # the model saw the tool result before answering
    assert isinstance(model.seen[1][-1], ToolMessage) and model.seen[1][-1].tool_call_id == "call_1"
    assert isinstance(model.seen[3][-1], ToolMessage) and model.seen[3][-1].tool_call_id == "call_2"


def test_predict_ifng_knockout_turn(conversation):
    _, messages, workdir = conversation
    call = messages[2].tool_calls[0]
    assert call["name"] == "predict_perturbation"
    assert call["args"] == {"targets": ["IFNG"], "kind": "knockout"}
    tool_msg = messages[3]
    assert tool_msg.name == "predict_perturbation" and tool_msg.status == "success"
    assert len(tool_msg.content) <= 2100  # a summary, not the whole prediction
    res = json.loads(tool_msg.content)
    down = [r["gene"] for r in res["top_down"]]
    assert down and all(r["delta"] < 0 for r in res["top_down"])
    # the tool reported the real prediction kept on disk (largest decreases first)
    pred = pd.read_csv(workdir / res["prediction_csv"], index_col=0)
    # the model's milieu inputs are set, not responding: the prediction file keeps them, lists never do
    from scagents.twin import load_model

    pred = pred.drop(index=[g for g in load_model("th").inputs if g in pred.index])
    assert list(pred[pred["delta"] < 0].sort_values("delta").index[:len(down)]) == down
    assert pred.loc["IFNG", "delta"] < 0  # a knockout lowers the knocked-out gene
    assert all(r["delta"] > 0 for r in res["top_up"])
    assert res["perturbation"] == "IFNG knockout" and res["data"].startswith("twin:")
    assert res["n_ranked_candidates"] >= 8
    final = messages[4]
    assert isinstance(final, AIMessage) and not final.tool_calls
    assert final.content.startswith("IFNG knockout") and f"down {down[0]} (" in final.content


def test_recommend_turn(conversation):
    _, messages, _ = conversation
    first = json.loads(messages[3].content)
    call = messages[6].tool_calls[0]
    assert call["name"] == "recommend_perturbations" and call["args"] == {"n": 8}
    res = json.loads(messages[7].content)
    recs = [r["perturbation"] for r in res["recommendations"]]
    assert len(recs) == 8 and len(set(recs)) == 8
    assert [r["rank"] for r in res["recommendations"]] == list(range(1, 9))
    scores = [r["score"] for r in res["recommendations"]]
    assert scores == sorted(scores, reverse=True)
    assert res["run_id"] == first["run_id"]  # ranked by the prediction just made
    assert all(not r.startswith("IFNG ") for r in recs)  # the goal itself is not proposed
    final = messages[8]
    assert isinstance(final, AIMessage) and not final.tool_calls
    assert all(r in final.content for r in recs)


def test_bad_tool_calls_come_back_as_messages(tmp_path):
    script = [
        AIMessage("", tool_calls=[
            {"name": "recommend_perturbations", "args": {"n": -3}, "id": "a", "type": "tool_call"},
            {"name": "no_such_tool", "args": {}, "id": "b", "type": "tool_call"},
            {"name": "load_data", "args": {"path": "../../etc/passwd"}, "id": "c",
             "type": "tool_call"}]),
        AIMessage("I could not do that."),
    ]
    model = ScriptedChatModel(messages=iter([]), script=script)
    messages = run_chat(model, make_tools(tmp_path), ["do bad things"], system_prompt=None)
    tool_msgs = [m for m in messages if isinstance(m, ToolMessage)]
    assert [m.tool_call_id for m in tool_msgs] == ["a", "b", "c"]
    assert all(m.status == "error" and m.content.startswith("error:") for m in tool_msgs)
    assert "'n'" in tool_msgs[0].content and "greater than or equal to 1" in tool_msgs[0].content
    assert "no tool named 'no_such_tool'" in tool_msgs[1].content
    assert "outside the working directory" in tool_msgs[2].content
    assert messages[-1].content == "I could not do that."


def test_max_steps_stops_a_model_that_never_answers(tmp_path):
    loop = _call("list_files", {}, "x")
    model = ScriptedChatModel(messages=iter([]), script=[loop, loop, loop])
    messages = run_chat(model, make_tools(tmp_path), ["list"], max_steps=2, system_prompt=None)
    assert len(model.script) == 1  # only two model calls were made
    assert messages[-1].content.startswith("(stopped: the model was still calling tools")


def test_keyword_reply_rules():
    """The offline model's rules: the user's words → one tool call; a tool result → its numbers."""
    def call(text):
        msg = keyword_reply([SystemMessage("s"), HumanMessage(text)])
        return (msg.tool_calls[0]["name"], msg.tool_calls[0]["args"]) if msg.tool_calls else msg.content

    assert call("predict STAT1 and IRF1 knockout") == (
        "predict_perturbation", {"targets": ["STAT1", "IRF1"], "kind": "knockout"})
    assert call("what if I knock down JAK2?") == (
        "predict_perturbation", {"targets": ["JAK2"], "kind": "knockdown"})
    assert call("simulate GATA3 overexpression") == (
        "simulate_perturbation", {"targets": ["GATA3"], "kind": "overexpression"})
    assert call("recommend 5 perturbations to test next") == ("recommend_perturbations", {"n": 5})
    assert call("list the files") == ("list_files", {})
    assert call("drive Th0 cells to Th1") == ("steer_cells", {"goal": "drive Th0 cells to Th1"})
    assert call("hello there").startswith("I am the offline scripted model")
    steered = ToolMessage('{"goal": "drive Th0 cells to Th1", "model": "th_mendoza2006", "answer": "t=0.00 '
                          'NFATC1 overexpression: Th1 fraction 0.99", "report": "runs/r/steering.md"}',
                          tool_call_id="s", name="steer_cells")
    assert "NFATC1 overexpression: Th1 fraction 0.99" in keyword_reply([steered]).content
    result = ToolMessage('{"perturbation": "IFNG knockout", "method": "linear gene embedding", '
                         '"top_down": [{"gene": "TBX21", "delta": -0.75}], "top_up": []}',
                         tool_call_id="c", name="predict_perturbation")
    answer = keyword_reply([HumanMessage("predict IFNG knockout"), result]).content
    assert answer == "IFNG knockout (linear gene embedding): down TBX21 (-0.75); up none."
    err = ToolMessage("error: Gene 'X' … fix: …", tool_call_id="d", name="predict_perturbation")
    assert keyword_reply([err]).content.startswith("The tool predict_perturbation answered: error:")


def test_scripted_model_falls_back_to_the_rules_offline(tmp_path):
    model = ScriptedChatModel()
    messages = run_chat(model, make_tools(tmp_path), ["list files"], system_prompt=None)
    assert [type(m) for m in messages] == [HumanMessage, AIMessage, ToolMessage, AIMessage]
    assert messages[2].name == "list_files" and messages[2].status != "error"
    assert messages[-1].content.startswith("Files:")
