"""The multi-agent system: a LangGraph graph of a supervisor and specialist agents.

>>> from scagents.agents import RunOptions, run_graph
>>> state = run_graph(RunOptions(goal="predict IFNG knockout"))  # doctest: +SKIP

Every agent is a plain function of the state (``data_agent``, ``integration_agent``,
``network_agent``, ``policy_agent``, ``fallback_agent``, ``report_agent``) that can be called without
the graph; :func:`build_graph` only wires them.
"""

from scagents.agents.graph import build_graph, run_graph
from scagents.agents.state import RunOptions, RunState, initial_state

__all__ = ["RunOptions", "RunState", "build_graph", "initial_state", "run_graph"]
