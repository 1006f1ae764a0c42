"""The scagents tools over the Model Context Protocol (stdio transport).

``python -m scagents mcp --workdir DIR`` starts :func:`serve`. The server lists exactly the tools of
:func:`scagents.tools.make_tools`, with their pydantic models' JSON schemas as input schemas, and
runs a call through the same LangChain tool (validation, path sandboxing, summaries and
``error: … fix: …`` messages included). A result starting with ``error:`` is flagged
``isError`` so clients can tell failures apart.

An MCP client configuration (Claude Desktop, an IDE, …) runs it as a command, for example::

    {"mcpServers": {"scagents": {"command": "python",
                                 "args": ["-m", "scagents", "mcp", "--workdir", "/path/to/work"]}}}

Written for the ``mcp`` 2.x low-level server API (``mcp.server.lowlevel.Server`` with
``on_list_tools`` / ``on_call_tool`` handlers).
"""

from __future__ import annotations

from pathlib import Path

import anyio
from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from scagents.tools.tools import ToolSettings, make_tools
from scagents.tools.workspace import cap

__all__ = ["build_server", "serve", "INSTRUCTIONS"]

INSTRUCTIONS = (
    "Tools of scagents, agents that analyse single-cell perturbation data: predict the response "
    "to a gene perturbation, recommend the next perturbations to test, steer cells to a fate on the "
    "digital twin, simulate the digital twin, "
    "load/integrate data, infer networks, train the response policy, run closed-loop campaigns "
    "and write reports. Paths are relative to the server's working directory. Results are short "
    "JSON summaries; full objects stay on disk in the working directory. A result starting with "
    "'error:' says what to fix."
)


def build_server(workdir: str | Path, *, settings: ToolSettings | None = None,
                 **overrides: int) -> Server:
    """An MCP server exposing the scagents tools of ``workdir``.

    Parameters
    ----------
    workdir
        Working directory of the tools.
    settings, **overrides
        Passed to :func:`scagents.tools.make_tools`.

    Returns
    -------
    mcp.server.lowlevel.Server
        Serve it with ``server.run(read, write, server.create_initialization_options())``.
    """
    from scagents import __version__

    tools = {t.name: t for t in make_tools(workdir, settings=settings, **overrides)}
    listing = [types.Tool(name=t.name, description=t.description,
                          input_schema=t.args_schema.model_json_schema())
               for t in tools.values()]
    lock = anyio.Lock()  # one tool at a time: tools write into the same working directory

    async def on_list_tools(ctx, params) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listing)

    async def on_call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        tool = tools.get(params.name)
        if tool is None:
            text = (f"error: there is no tool named {cap(params.name, 60)!r}. fix: use one of "
                    f"{', '.join(sorted(tools))}.")
        else:
            args = dict(params.arguments or {})
            async with lock:
                text = await anyio.to_thread.run_sync(tool.invoke, args)
        text = str(text)
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)],
                                    is_error=text.startswith("error:"))

    return Server("scagents", version=__version__, instructions=INSTRUCTIONS,
                  on_list_tools=on_list_tools, on_call_tool=on_call_tool)


def serve(workdir: str | Path, *, settings: ToolSettings | None = None, **overrides: int) -> None:
    """Serve the tools over stdio until the client closes the connection.

    Parameters
    ----------
    workdir
        Working directory of the tools.
    settings, **overrides
        Passed to :func:`scagents.tools.make_tools`.
    """
    server = build_server(workdir, settings=settings, **overrides)

    async def main() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(main)
