"""The multi-agent system: a LangGraph graph of a supervisor and specialist agents.

>>> from scagents.agents import RunOptions, run_graph
>>> state = run_graph(RunOptions(goal="predict IFNG knockout"))  # doctest: +SKIP

Every agent is a plain function of the state (``data_agent``, ``integration_agent``,
``network_agent``, ``policy_agent``, ``fallback_agent``, ``report_agent``) that can be called without
the graph; :func:`build_graph` only wires them. The names below are imported on first use, so that
``import scagents.agents.state`` does not load LangGraph and every agent.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["RunOptions", "RunState", "build_graph", "initial_state", "run_graph"]

_WHERE = {"build_graph": "graph", "run_graph": "graph", "RunOptions": "state", "RunState": "state",
          "initial_state": "state"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"scagents.agents.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'scagents.agents' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
