"""Chat with the scagents tools through any tool-calling LangChain chat model.

Run from the repository root (or with scagents installed)::

    python examples/chat_loop.py "predict IFNG knockout" "recommend 8 perturbations to test next"
    python examples/chat_loop.py --model openai:gpt-4o-mini --workdir ./work
    python examples/chat_loop.py --model anthropic:claude-sonnet-4-5 "predict IFNG knockout" \\
        "recommend 8 perturbations to test next"

With messages on the command line it answers them in order and exits; without, it reads messages
from the keyboard until an empty line or Ctrl-D. Every tool call and its (short) result is printed.

Choosing a model
----------------
Without ``--model`` the loop runs offline with :class:`scagents.tools.ScriptedChatModel`: fixed
keyword rules instead of an LLM ("predict GENE knockout", "simulate GENE overexpression",
"recommend N perturbations", "list files"), calling the same tools and quoting their results.
``--model provider:model`` is passed to ``langchain.chat_models.init_chat_model`` when the
``langchain`` package is installed (``pip install langchain``); it then works for every provider
LangChain supports. Without ``langchain`` the three common providers are built directly:

==============  ======================================  ===========================================
provider        install                                 example ``--model`` (API key)
==============  ======================================  ===========================================
OpenAI          ``pip install langchain-openai``        ``openai:gpt-4o-mini`` (``OPENAI_API_KEY``)
Anthropic       ``pip install langchain-anthropic``     ``anthropic:claude-sonnet-4-5``
                                                        (``ANTHROPIC_API_KEY``)
Ollama (local)  ``pip install langchain-ollama``        ``ollama:llama3.1`` (a running ``ollama serve``)
==============  ======================================  ===========================================

In Python the same loop is two calls::

    from langchain_openai import ChatOpenAI                   # or ChatAnthropic, ChatOllama
    from scagents.tools import make_tools, run_chat

    messages = run_chat(ChatOpenAI(model="gpt-4o-mini"), make_tools("work"),
                        ["predict IFNG knockout", "recommend 8 perturbations to test next"])
    print(messages[-1].content)

All tools work inside ``--workdir``: paths the model gives are resolved there and paths leaving it
are refused; full results (data sets, networks, policies, run folders with reports) stay there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage  # noqa: E402

from scagents.api import filter_dependency_warnings  # noqa: E402
from scagents.tools import ScriptedChatModel, make_tools, run_chat  # noqa: E402

_PROVIDERS = {
    "openai": ("langchain_openai", "ChatOpenAI", "langchain-openai"),
    "anthropic": ("langchain_anthropic", "ChatAnthropic", "langchain-anthropic"),
    "ollama": ("langchain_ollama", "ChatOllama", "langchain-ollama"),
}


def build_model(spec: str | None):
    """A chat model from ``provider:model`` (see the module docstring); ``None``: the offline one."""
    if spec is None:
        return ScriptedChatModel()
    provider, _, name = spec.partition(":")
    if not name:
        raise SystemExit(f"error: --model must look like provider:model (e.g. openai:gpt-4o-mini), "
                         f"got {spec!r}")
    try:
        from langchain.chat_models import init_chat_model
    except ImportError:
        pass
    else:
        return init_chat_model(name, model_provider=provider, temperature=0)
    if provider not in _PROVIDERS:
        raise SystemExit(f"error: provider {provider!r} needs the `langchain` package "
                         f"(pip install langchain); without it use one of {', '.join(_PROVIDERS)}.")
    module, cls, package = _PROVIDERS[provider]
    try:
        mod = __import__(module, fromlist=[cls])
    except ImportError:
        raise SystemExit(f"error: pip install {package} (or langchain) to use {spec}") from None
    return getattr(mod, cls)(model=name, temperature=0)


def show(msg: BaseMessage) -> None:
    """Print a message of the transcript as it happens."""
    if isinstance(msg, AIMessage):
        for call in msg.tool_calls:
            print(f"  → {call['name']}({call['args']})", flush=True)
        if msg.content:
            print(f"scagents: {msg.content}", flush=True)
    elif isinstance(msg, ToolMessage):
        text = str(msg.content)
        print(f"  ← {text[:300]}{'…' if len(text) > 300 else ''}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("messages", nargs="*", help="messages to send (default: read the keyboard)")
    parser.add_argument("--model", default=None,
                        help="provider:model, e.g. openai:gpt-4o-mini (default: the offline "
                             "scripted model, no LLM)")
    parser.add_argument("--workdir", default="scagents_work", help="working directory of the tools")
    parser.add_argument("--n-cells", type=int, default=200, help="cells per twin condition")
    parser.add_argument("--policy-steps", type=int, default=12_000,
                        help="environment steps of the policy training in predictions")
    parser.add_argument("--max-steps", type=int, default=8, help="model calls per message")
    args = parser.parse_args(argv)

    filter_dependency_warnings()
    model = build_model(args.model)
    tools = make_tools(args.workdir, n_cells=args.n_cells, policy_steps=args.policy_steps)
    history: list[BaseMessage] = []

    def ask(text: str) -> None:
        nonlocal history
        history = run_chat(model, tools, [text], history=history or None,
                           max_steps=args.max_steps, on_message=show)

    if args.messages:
        for text in args.messages:
            print(f"you: {text}")
            ask(text)
        return 0
    print(f"scagents chat ({args.model or 'offline scripted model'}); tools work in {Path(args.workdir).resolve()}. "
          "Empty line to quit.")
    while True:
        try:
            text = input("you: ").strip()
        except EOFError:
            break
        if not text:
            break
        ask(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
