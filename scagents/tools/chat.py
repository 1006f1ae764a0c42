"""A minimal tool-calling chat loop over the scagents tools.

:func:`run_chat` binds the tools to any LangChain chat model that supports tool calling
(``model.bind_tools``), sends each user message, executes every tool call the model makes, feeds
the results back as :class:`~langchain_core.messages.ToolMessage` and stops when the model answers
without calling a tool. ``examples/chat_loop.py`` wraps it in an interactive program.

:class:`ScriptedChatModel` is a chat model that needs no provider: it answers from a script (tests)
or, by default, with :func:`keyword_reply` — a few fixed rules that turn "predict IFNG knockout",
"simulate GATA3 overexpression", "recommend 8 perturbations" or "list files" into the matching tool
call and quote the tool's result back. It is what the chat loop uses offline.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool
from pydantic import Field

__all__ = ["SYSTEM_PROMPT", "run_chat", "execute_tool_call", "ScriptedChatModel", "keyword_reply"]

SYSTEM_PROMPT = (
    "You are scagents, an assistant that analyses single-cell perturbation data with tools. "
    "Use the tools to answer: predict_perturbation for questions such as 'predict IFNG knockout', "
    "recommend_perturbations for what to test next, steer_cells for how to steer cells to a fate "
    "(e.g. 'drive Th0 cells to Th1'), simulate_perturbation for the digital twin's "
    "ground truth, load_data / integrate / infer_network / train_policy for analyses, "
    "ingest_results and write_report for campaigns and reports. Paths are relative to the working "
    "directory. When a tool answers 'error: … fix: …', follow the fix and call it again. Quote "
    "gene names and numbers from the tool results; do not invent them."
)


def execute_tool_call(tools: dict[str, BaseTool], call: dict) -> ToolMessage:
    """Run one tool call of an :class:`AIMessage` and wrap the answer as a ToolMessage.

    An unknown tool name gives an ``error: … fix: …`` message, never an exception.
    """
    tool = tools.get(call["name"])
    if tool is None:
        return ToolMessage(content=f"error: there is no tool named {call['name']!r}. fix: use one "
                                   f"of {', '.join(sorted(tools))}.",
                           tool_call_id=call["id"], name=call["name"], status="error")
    msg = tool.invoke({**call, "type": "tool_call"})
    if isinstance(msg, ToolMessage) and str(msg.content).startswith("error:"):
        msg.status = "error"
    return msg


def run_chat(
    model: BaseChatModel,
    tools: Sequence[BaseTool],
    user_messages: Iterable[str],
    *,
    max_steps: int = 8,
    system_prompt: str | None = SYSTEM_PROMPT,
    history: Sequence[BaseMessage] | None = None,
    on_message: Callable[[BaseMessage], None] | None = None,
) -> list[BaseMessage]:
    """Talk to a tool-calling chat model, executing the tools it calls.

    Parameters
    ----------
    model
        A LangChain chat model with ``bind_tools`` (OpenAI, Anthropic, Ollama, … or a fake one in tests).
    tools
        The tools (e.g. :func:`scagents.tools.make_tools`).
    user_messages
        The user's messages, sent one after the other; each is answered before the next is sent.
    max_steps
        Model calls allowed per user message; when the model is still calling tools after that,
        the turn ends with an :class:`AIMessage` saying so.
    system_prompt
        System message put first (ignored when ``history`` is given); ``None`` for none.
    history
        Messages of an earlier conversation to continue.
    on_message
        Called with every new message (to print a transcript as it happens).

    Returns
    -------
    list[langchain_core.messages.BaseMessage]
        The whole conversation: system prompt (if any), then per user message the
        :class:`HumanMessage`, each :class:`AIMessage` and the :class:`ToolMessage` of each tool
        call, ending with the model's final :class:`AIMessage`.
    """
    if max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}.")
    bound = model.bind_tools(list(tools))
    by_name = {t.name: t for t in tools}
    messages: list[BaseMessage] = list(history or [])
    if not messages and system_prompt:
        messages.append(SystemMessage(system_prompt))

    def add(msg: BaseMessage) -> None:
        messages.append(msg)
        if on_message is not None:
            on_message(msg)

    for text in user_messages:
        add(HumanMessage(text))
        for _ in range(max_steps):
            ai = bound.invoke(messages)
            add(ai)
            if not getattr(ai, "tool_calls", None):
                break
            for call in ai.tool_calls:
                add(execute_tool_call(by_name, call))
        else:
            add(AIMessage(f"(stopped: the model was still calling tools after {max_steps} steps)"))
    return messages


# ------------------------------------------------------------------------ a model without provider
class ScriptedChatModel(GenericFakeChatModel):
    """A tool-calling chat model that needs no provider or network.

    Each call answers with the next entry of ``script`` — an :class:`AIMessage` (possibly with
    ``tool_calls``) or a function of the messages so far returning one — and, once the script is
    used up, with ``reply(messages)`` (default :func:`keyword_reply`). ``bind_tools`` records the
    tool names and returns the model itself; ``seen`` keeps the messages each call received.

    >>> from scagents.tools import ScriptedChatModel, make_tools, run_chat
    >>> messages = run_chat(ScriptedChatModel(), make_tools("work"),
    ...                     ["predict IFNG knockout"])                      # doctest: +SKIP
    """

    messages: Iterator[Any] = Field(default_factory=lambda: iter(()))
    script: list[Any] = Field(default_factory=list)
    reply: Callable[[list[BaseMessage]], AIMessage] | None = None
    bound_tools: list[str] = Field(default_factory=list)
    seen: list[list[BaseMessage]] = Field(default_factory=list)

    def bind_tools(self, tools, **kwargs):
        self.bound_tools = [t.name for t in tools]
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        self.seen.append(list(messages))
        if self.script:
            step = self.script.pop(0)
            msg = step(messages) if callable(step) else step
        else:
            msg = (self.reply or keyword_reply)(list(messages))
        return ChatResult(generations=[ChatGeneration(message=msg)])


_KINDS = {"overexpression": r"over[- ]?express\w*|activat\w*|crispra",
          "knockdown": r"knock[- ]?down|crispri|silenc\w*",
          "knockout": r"knock[- ]?out|\bko\b|delet\w*"}
_HELP = ("I am the offline scripted model (no LLM provider configured); I understand: "
         "'predict GENE [and GENE] knockout|knockdown|overexpression', 'simulate GENE knockout', "
         "'recommend N perturbations', 'drive Th0 cells to Th1' (steering), 'list files'. Give --model provider:model to chat with an LLM.")


def _targets_and_kind(text: str) -> tuple[list[str], str]:
    from scagents.goal import STOPWORDS

    low = text.lower()
    kind = next((k for k, pat in _KINDS.items() if re.search(pat, low)), "knockout")
    words = re.findall(r"\b[A-Za-z][A-Za-z0-9.\-]*[A-Za-z0-9]\b", text)
    genes = [w for w in words if w.upper() not in STOPWORDS and w == w.upper() and len(w) > 1]
    return list(dict.fromkeys(genes)), kind


def _call(name: str, args: dict, n: int) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": f"call_{n}",
                                      "type": "tool_call"}])


def _summarise(msg: ToolMessage) -> str:
    """The scripted model's answer after a tool result: quote the numbers, invent nothing."""
    text = str(msg.content)
    if text.startswith("error:"):
        return f"The tool {msg.name} answered: {text}"
    try:
        res = json.loads(text)
    except json.JSONDecodeError:
        return text[:600]

    def genes(rows: list[dict]) -> str:
        return ", ".join(f"{r['gene']} ({r['delta']:+.2f})" for r in rows[:5]) or "none"

    if msg.name in ("predict_perturbation", "simulate_perturbation"):
        how = res.get("method") or f"the {res.get('model', 'twin')} twin simulation"
        return (f"{res.get('perturbation')} ({how}): down {genes(res.get('top_down', []))}; "
                f"up {genes(res.get('top_up', []))}.")
    if msg.name == "recommend_perturbations" and "recommendations" in res:
        listed = "; ".join(f"{r['rank']}. {r['perturbation']}" for r in res["recommendations"])
        return f"Test next: {listed}."
    if msg.name == "steer_cells" and "answer" in res:
        return f"{res['goal']} (twin model {res.get('model')}): {res['answer']} Report: {res.get('report')}."
    if msg.name == "list_files" and "files" in res:
        names = [f["path"] if isinstance(f, dict) else str(f) for f in res["files"]]
        return (f"Files: {', '.join(names[:20]) or 'none'}"
                + (f" (and {len(names) - 20} more)" if len(names) > 20 else "") + ".")
    return json.dumps(res)[:600]


def keyword_reply(messages: list[BaseMessage]) -> AIMessage:
    """Fixed rules in place of an LLM: a tool call for the last user message, then its answer.

    After a tool result the reply quotes it (:class:`ToolMessage` → a sentence with its genes and
    numbers). Otherwise the last user message is matched: ``recommend`` / ``next`` →
    ``recommend_perturbations``; ``simulate`` → ``simulate_perturbation``; ``list`` / ``files`` →
    ``list_files``; a steering goal (``drive Th0 cells to Th1``) → ``steer_cells``; anything naming a
    gene symbol (capitals) → ``predict_perturbation``; the rest
    gets a short help text.
    """
    last = messages[-1] if messages else None
    if isinstance(last, ToolMessage):
        return AIMessage(_summarise(last))
    text = str(last.content) if last is not None else ""
    low = text.lower()
    n = sum(isinstance(m, AIMessage) for m in messages) + 1
    if re.search(r"\brecommend|\bnext\b|\bpropos", low):
        m = re.search(r"\b(\d+)\b", low)
        return _call("recommend_perturbations", {"n": int(m.group(1)) if m else 8}, n)
    if re.search(r"\blist\b|\bfiles?\b", low):
        return _call("list_files", {}, n)
    from scagents.steering import is_steering_goal

    if is_steering_goal(text):
        return _call("steer_cells", {"goal": text.strip()}, n)
    genes, kind = _targets_and_kind(text)
    if genes:
        tool = "simulate_perturbation" if "simulat" in low else "predict_perturbation"
        return _call(tool, {"targets": genes[:5], "kind": kind}, n)
    return AIMessage(_HELP)
