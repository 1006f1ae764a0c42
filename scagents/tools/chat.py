"""A minimal tool-calling chat loop over the scagents tools.

:func:`run_chat` binds the tools to any LangChain chat model that supports tool calling
(``model.bind_tools``), sends each user message, executes every tool call the model makes, feeds
the results back as :class:`~langchain_core.messages.ToolMessage` and stops when the model answers
without calling a tool. ``examples/chat_loop.py`` wraps it in an interactive program.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import BaseTool

__all__ = ["SYSTEM_PROMPT", "run_chat", "execute_tool_call"]

SYSTEM_PROMPT = (
    "You are scagents, an assistant that analyses single-cell perturbation data with tools. "
    "Use the tools to answer: predict_perturbation for questions such as 'predict IFNG knockout', "
    "recommend_perturbations for what to test next, simulate_perturbation for the digital twin's "
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
