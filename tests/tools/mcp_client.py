"""One MCP client session against ``python -m scagents mcp`` (stdio), shared by the MCP tests."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def with_mcp_session(workdir: Path, use: Callable[[Any], Awaitable[Any]], *, n_cells: int,
                     timeout: float) -> Any:
    """Start the server as a subprocess on ``workdir``, initialise a client session, return
    ``await use(session)``."""
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    params = StdioServerParameters(
        command=sys.executable, cwd=str(ROOT), env=env,
        args=["-m", "scagents", "mcp", "--workdir", str(workdir), "--n-cells", str(n_cells)])

    async def main() -> Any:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return await use(session)

    return asyncio.run(asyncio.wait_for(main(), timeout=timeout))
