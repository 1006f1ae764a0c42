"""``python -m scagents mcp``: the tools over MCP (stdio), driven by an MCP client session."""

from __future__ import annotations

import json
from pathlib import Path

from scagents.tools import TOOL_NAMES
from scagents.tools import schemas as S
from tests.tools.mcp_client import with_mcp_session


def _session_calls(workdir: Path) -> dict:
    """Start the server as a subprocess, list the tools and make four calls."""
    async def use(session) -> dict:
        listed = await session.list_tools()
        sim = await session.call_tool("simulate_perturbation",
                                      {"targets": ["IFNG"], "kind": "knockout", "seed": 1})
        escape = await session.call_tool("load_data", {"path": "../../etc/passwd"})
        bad = await session.call_tool("recommend_perturbations", {"n": -1, "campaign": "x"})
        steer = await session.call_tool("steer_cells", {"target": "Th17"})
        return {"tools": listed.tools, "sim": sim, "escape": escape, "bad": bad, "steer": steer}

    return with_mcp_session(workdir, use, n_cells=60, timeout=120)


def test_mcp_server_lists_and_runs_the_tools(tmp_path):
    out = _session_calls(tmp_path)
    tools = {t.name: t for t in out["tools"]}
    assert tuple(tools) == TOOL_NAMES
    # the same pydantic schemas as the LangChain tools
    assert tools["simulate_perturbation"].input_schema == S.SimulatePerturbation.model_json_schema()
    assert tools["recommend_perturbations"].input_schema["properties"]["n"]["minimum"] == 1
    # the steering tool is listed, with its schema, and a bad fate is one clear line
    assert tools["steer_cells"].input_schema == S.SteerCells.model_json_schema()
    assert "steer cells to a fate" in tools["steer_cells"].description
    steer = out["steer"].content[0].text
    assert out["steer"].is_error and "Unknown fate 'Th17'" in steer and "\n" not in steer

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
