"""``python -m scagents mcp``: the tools over MCP (stdio), driven by an MCP client session."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from scagents.tools import TOOL_NAMES
from scagents.tools import schemas as S

ROOT = Path(__file__).resolve().parents[2]


def _session_calls(workdir: Path) -> dict:
    """Start the server as a subprocess, list the tools and make three calls."""
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    params = StdioServerParameters(
        command=sys.executable, cwd=str(ROOT), env=env,
        args=["-m", "scagents", "mcp", "--workdir", str(workdir), "--n-cells", "60"])

    async def main() -> dict:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            listed = await session.list_tools()
            sim = await session.call_tool("simulate_perturbation",
                                          {"targets": ["IFNG"], "kind": "knockout", "seed": 1})
            escape = await session.call_tool("load_data", {"path": "../../etc/passwd"})
            bad = await session.call_tool("recommend_perturbations", {"n": -1, "campaign": "x"})
            return {"tools": listed.tools, "sim": sim, "escape": escape, "bad": bad}

    return asyncio.run(asyncio.wait_for(main(), timeout=120))


def test_mcp_server_lists_and_runs_the_tools(tmp_path):
    out = _session_calls(tmp_path)
    tools = {t.name: t for t in out["tools"]}
    assert tuple(tools) == TOOL_NAMES
    # the same pydantic schemas as the LangChain tools
    assert tools["simulate_perturbation"].input_schema == S.SimulatePerturbation.model_json_schema()
    assert tools["recommend_perturbations"].input_schema["properties"]["n"]["minimum"] == 1

    sim = out["sim"]
    assert not sim.is_error
    res = json.loads(sim.content[0].text)
    assert res["perturbation"] == "IFNG knockout" and res["n_cells_per_condition"] == 60
    assert "IFNG" in [r["gene"] for r in res["top_down"]]
    assert (tmp_path / res["dataset"]).is_file()  # written in the server's working directory
    assert (tmp_path / res["effects_csv"]).is_file()

    assert out["escape"].is_error
    assert "outside the working directory" in out["escape"].content[0].text
    assert out["bad"].is_error
    assert "argument 'n'" in out["bad"].content[0].text
