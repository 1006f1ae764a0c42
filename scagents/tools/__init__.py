"""The scagents capabilities as tools for chat models: LangChain tools, a chat loop, an MCP server.

>>> from scagents.tools import make_tools, run_chat
>>> tools = make_tools("workdir")                                  # doctest: +SKIP
>>> messages = run_chat(model, tools, ["predict IFNG knockout"])   # doctest: +SKIP

``python -m scagents mcp --workdir DIR`` serves the same tools over the Model Context Protocol
(see :mod:`scagents.tools.mcp_server`).
"""

from scagents.tools.chat import SYSTEM_PROMPT, ScriptedChatModel, keyword_reply, run_chat
from scagents.tools.tools import TOOL_NAMES, Toolkit, ToolSettings, make_tools
from scagents.tools.workspace import Workspace, WorkspacePathError, format_error

__all__ = ["SYSTEM_PROMPT", "TOOL_NAMES", "ScriptedChatModel", "Toolkit", "ToolSettings", "Workspace",
           "WorkspacePathError", "format_error", "keyword_reply", "make_tools", "run_chat"]
