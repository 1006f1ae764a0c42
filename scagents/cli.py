"""Command-line interface: ``python -m scagents <command>``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from scagents.errors import ScagentsError


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="answer a goal such as 'predict IFNG knockout' and write a report",
        description="Predict the response to a perturbation and write a report (Markdown, JSON, "
        "PNG). Without --data it runs on the embedded digital twin (T-helper model).",
    )
    p.add_argument("--goal", default=None,
                   help='e.g. "predict STAT1 and TBX21 knockout" (one kind per goal: knockout, '
                        "knockdown or overexpression); name measured genes or the data's "
                        "perturbation targets")
    p.add_argument("--resume", default=None, metavar="RUN_ID",
                   help="resume a killed run (its folder name under ./scagents_runs) without "
                        "re-running finished agents")
    p.add_argument("--llm", default=None, metavar="PROVIDER:MODEL",
                   help="let a LangChain chat model plan the agents (needs `langchain`); default: "
                        "the deterministic planner")
    p.add_argument("--data", default=None, help=".h5ad / .h5mu / 10x .h5 file or matrix-market folder")
    p.add_argument("--out", default=None, help="output folder (default: ./scagents_runs/<time>_<goal>)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--model", default="th", help="twin model when no --data is given: th, krumsiek11")
    p.add_argument("--n-cells", type=int, default=200, help="cells simulated per condition on the twin")
    p.add_argument("--perturbation-key", default=None, help="obs column naming the perturbation")
    p.add_argument("--control", action="append", default=None,
                   help="label of control cells (repeatable); default: recognised automatically")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from scagents.agents.graph import run_graph
    from scagents.agents.state import RunOptions

    if args.goal is None and args.resume is None:
        print("error: give --goal \"predict IFNG knockout\" (or --resume RUN_ID)", file=sys.stderr)
        return 2

    def progress(agent: str, update: dict) -> None:
        if args.quiet:
            return
        for rec in update.get("log", []):
            print(f"[{rec['agent']}] {rec['status']}: {rec['summary']}", file=sys.stderr, flush=True)

    opts = None
    if args.resume is None:
        opts = RunOptions(goal=args.goal, data=args.data, model=args.model, n_cells=args.n_cells,
                          seed=args.seed, perturbation_key=args.perturbation_key,
                          control_labels=args.control, llm=args.llm)
    state = run_graph(opts, out=args.out, resume=args.resume, on_event=progress)
    out = Path(state["out_dir"])
    if state.get("stop_reason") and not state.get("policy"):
        print(f"error: {state['stop_reason']}", file=sys.stderr)
        return 2
    pol = state["policy"]
    up = ", ".join(f"{r['gene']} {r['delta']:+.2f}" for r in pol["top_up"][:5]) or "none"
    down = ", ".join(f"{r['gene']} {r['delta']:+.2f}" for r in pol["top_down"][:5]) or "none"
    print(f"{state['options']['goal']}  [{pol['method']}, {pol['status']}]  run id: {out.name}")
    if (state.get("data") or {}).get("goal_note"):  # the goal's kind word vs the data's label
        print("  note: " + state["data"]["goal_note"])
    report = out / "report.json"
    if report.exists():  # the answer's check, in plain words (report.json "headline")
        import json

        for line in json.loads(report.read_text()).get("headline", [])[1:2]:
            print("  " + line.replace("**", ""))
    print(f"  up:   {up}")
    print(f"  down: {down}")
    for p in pol["proposals"][:5]:
        print(f"  next #{p['rank']}: {p['perturbation']} (score {p['score']:.3f})")
    print(f"report: {out / 'report.md'}  ({state['wall_time_s']:.1f} s)")
    return 0


def _add_campaign_cmds(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("next", help="propose the next perturbations of a campaign",
                       description="Propose and record the next round of a closed-loop campaign.")
    p.add_argument("--campaign", required=True)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--goal", default=None, help="goal of a new campaign")
    p.add_argument("--candidates", default=None, help="file with one candidate gene per line")
    p.add_argument("--features", default=None,
                   help="candidate features of a new campaign: .h5ad expression file or CSV/TSV table "
                        "(gene, feature columns); default: the shared PBMC expression data when present")
    p.add_argument("--designer", default="policy", help="policy, ridge_ucb, gp_ucb or random")
    p.add_argument("--db", default="scagents_campaigns.sqlite", help="campaign ledger (SQLite)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_next)
    p = sub.add_parser("ingest", help="add measured results to a campaign",
                       description="Ingest a CSV/TSV with gene and score columns.")
    p.add_argument("--campaign", required=True)
    p.add_argument("results")
    p.add_argument("--db", default="scagents_campaigns.sqlite")
    p.set_defaults(func=_cmd_ingest)
    p = sub.add_parser("campaign", help="show a campaign's history table and plot",
                       description="Print the history of a campaign and write its progress plot.")
    p.add_argument("name")
    p.add_argument("--db", default="scagents_campaigns.sqlite")
    p.add_argument("--plot", default=None, help="PNG path (default <name>_progress.png)")
    p.set_defaults(func=_cmd_campaign)
    p = sub.add_parser("report", help="(re)write the report of a finished run",
                       description="Rewrite report.md/html/json of a run folder from its state.")
    p.add_argument("run", help="run id or run folder")
    p.add_argument("--root", default="scagents_runs")
    p.set_defaults(func=_cmd_report)


def _cmd_next(args: argparse.Namespace) -> int:
    from pathlib import Path

    from scagents.campaign import propose_round

    cands = None
    if args.candidates:
        cands = [g.strip() for g in Path(args.candidates).read_text().split() if g.strip()]
    df = propose_round(args.db, args.campaign, batch=args.batch, goal=args.goal, candidates=cands,
                       designer=args.designer, seed=args.seed, features=args.features or "auto")
    print(format_proposals(df))
    return 0


def format_proposals(df) -> str:
    """The ``next`` table in plain words: the proposals (the rationale once below the table when
    every row shares it) and, when the ranks do not follow the score, a line saying why."""
    why = df["rationale"].unique() if "rationale" in df else []
    table = df.drop(columns="rationale") if len(why) == 1 else df
    lines = [table.to_string(index=False), ""]
    if len(why) == 1:
        lines.append(f"why: {why[0]}")
    scores = df["score"].to_numpy(float)
    later_higher = [(i, j) for i in range(len(df)) for j in range(i + 1, len(df))
                    if scores[j] > scores[i] + 1e-12]
    if later_higher:
        i, j = later_higher[0]
        a, b = df.iloc[i], df.iloc[j]
        lines.append(
            f"note: ranks are the pick order, not the score order — each pick lowers the chance of "
            f"genes with similar expression (diversity), so {a['gene']} (rank {a['rank']}, score "
            f"{a['score']:.3g}) comes before {b['gene']} (rank {b['rank']}, score {b['score']:.3g}).")
    return "\n".join(lines).rstrip()


def _cmd_ingest(args: argparse.Namespace) -> int:
    from scagents.campaign import ingest

    summary = ingest(args.db, args.campaign, args.results)
    if summary.duplicate_file:
        print(f"{summary.path}: this file was ingested before; nothing added "
              f"(campaign {summary.campaign!r}).")
    else:
        rounds = ", ".join(str(r) for r in summary.rounds) or "-"
        print(f"{summary.path}: {summary.n_new} new measurement(s) added to campaign "
              f"{summary.campaign!r} (round {rounds}); {summary.n_already} already stored.")
    return 0


def _cmd_campaign(args: argparse.Namespace) -> int:
    from scagents.campaign import history, plot_campaign

    h = history(args.db, args.name)
    print(h.drop(columns="rationale").to_string(index=False))
    print("")
    for rnd, why in h.groupby("round", sort=True)["rationale"].unique().items():
        print(f"round {rnd} ({h.loc[h['round'] == rnd, 'designer'].iloc[0]}): {'; '.join(why)}")
    path = plot_campaign(args.db, args.name, args.plot or f"{args.name}_progress.png")
    print(f"plot: {path}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from scagents.agents.graph import CHECKPOINTS, _saver, build_graph
    from scagents.agents.report import report_agent

    folder = Path(args.run) if Path(args.run).is_dir() else Path(args.root) / args.run
    if not (folder / CHECKPOINTS).exists():
        print(f"error: no run at {folder}", file=sys.stderr)
        return 2
    saver, conn = _saver(folder)
    try:
        values = build_graph(saver).get_state({"configurable": {"thread_id": folder.name}}).values
    finally:
        conn.close()
    if not values.get("policy"):
        print("error: the run has no prediction yet; resume it with run --resume", file=sys.stderr)
        return 2
    files = report_agent(values)["report"]["files"]
    print("report: " + ", ".join(str(folder / f) for f in files.values()))
    return 0


def _add_mcp(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mcp", help="serve the scagents tools over the Model Context Protocol (stdio)",
        description="Serve the scagents tools (predict, recommend, simulate, load, integrate, "
        "network, train, ingest, report) to an MCP client over stdin/stdout. Every path a tool "
        "receives must lie inside --workdir.")
    p.add_argument("--workdir", default=".", help="working directory of the tools (default: .)")
    p.add_argument("--n-cells", type=int, default=200,
                   help="default cells per condition simulated on the twin")
    p.add_argument("--policy-steps", type=int, default=12_000,
                   help="default environment steps of the policy training in predictions")
    p.set_defaults(func=_cmd_mcp)


def _cmd_mcp(args: argparse.Namespace) -> int:
    from scagents.tools.mcp_server import serve

    if args.n_cells < 10 or args.policy_steps < 256:
        print("error: --n-cells must be at least 10 and --policy-steps at least 256",
              file=sys.stderr)
        return 2
    serve(args.workdir, n_cells=args.n_cells, policy_steps=args.policy_steps)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scagents",
        description="Agents that analyse single-cell perturbation data and recommend what to test next.",
    )
    from scagents import __version__

    parser.add_argument("--version", action="version", version=f"scagents {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_run(sub)
    _add_campaign_cmds(sub)
    _add_mcp(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ScagentsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
