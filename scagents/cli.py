"""Command-line interface: ``python -m scagents <command>``."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from scagents.errors import ScagentsError

DEBUG_ENV = "SCAGENTS_DEBUG"
"""Set to 1 (or pass ``--debug``) to get the full traceback of an error instead of one line."""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def _seed(text: str) -> int:
    """argparse type of a random seed: an integer in [0, 2**31)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value < 2**31:
        raise argparse.ArgumentTypeError(f"{value} is out of range; give a seed from 0 to {2**31 - 1}")
    return value


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
                        "perturbation targets (protein names such as PD-L1, IFN-γ, T-bet are "
                        "read as their symbols; the run prints how it read the goal). On data "
                        "with a treatment column: "
                        '"predict IFN-beta stimulation in CD14 monocytes" (a held-out cell type) '
                        'or "predict dexamethasone 3h" (a held-out time point)')
    p.add_argument("--resume", default=None, metavar="RUN_ID",
                   help="resume a killed run (its folder name under ./scagents_runs) without "
                        "re-running finished agents")
    p.add_argument("--llm", default=None, metavar="PROVIDER:MODEL",
                   help="let a LangChain chat model plan the agents (needs `langchain`); default: "
                        "the deterministic planner")
    p.add_argument("--data", default=None, help=".h5ad / .h5mu / 10x .h5 file or matrix-market folder")
    p.add_argument("--out", default=None, help="output folder (default: ./scagents_runs/<time>_<goal>)")
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    p.add_argument("--model", default="th", help="twin model when no --data is given: th, krumsiek11, or a Boolean model "
                        "file (.bnet, SBML-qual .sbml/.xml, BooleanNet 'A* = rule', scanpy-style .txt)")
    p.add_argument("--n-cells", type=int, default=1000, help="cells simulated per condition on the twin")
    p.add_argument("--inputs", nargs="+", default=None, metavar="GENE=VALUE",
                   help="twin milieu: activity (0-1) of model input genes, e.g. --inputs TCR=1 IL12=1")
    p.add_argument("--perturbation-key", default=None, help="obs column naming the perturbation")
    p.add_argument("--control", action="append", default=None,
                   help="label of control cells (repeatable); default: recognised automatically")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bars and no per-agent lines on stderr")
    p.add_argument("--genes", type=int, default=None, metavar="N",
                   help="cap on the genes the network and policy agents work on: the goal's genes, "
                        "the data's perturbation targets, then the most highly variable genes "
                        "(default 2000; the list and the reasons are written to genes_used.csv)")
    p.add_argument("--skip-network", action="store_true",
                   help="do not infer a regulatory network (the prediction then has no network "
                        "propagation baseline)")
    p.add_argument("--quick", action="store_true",
                   help="smaller budgets everywhere: 1000 genes, 250 candidate regulators, top 20 "
                        "regulators per gene, 4000 policy training steps and no retrain, 1000 cells "
                        "integrated (defaults: 2000, 500, 50, 65536 with one retrain, 2000); an "
                        "explicit --genes wins")
    p.set_defaults(func=_cmd_run)


#: the budgets of ``run --quick`` (RunOptions fields; keep the --quick help in step)
QUICK = {"n_genes": 1000, "n_regulators": 250, "network_top_k": 20, "policy_steps": 4000,
         "max_policy_attempts": 1, "integration_cells": 1000}


def _cmd_run(args: argparse.Namespace) -> int:
    from scagents.api import run

    if args.goal is None and args.resume is None:
        print("error: give --goal \"predict IFNG knockout\" (or --resume RUN_ID)", file=sys.stderr)
        return 2
    inputs = {}
    for item in args.inputs or []:
        gene, sep, value = item.partition("=")
        try:
            inputs[gene.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not gene.strip():
            print(f"error: --inputs {item!r}: write GENE=VALUE with a number, e.g. TCR=1",
                  file=sys.stderr)
            return 2
    from scagents.steering import is_steering_goal

    if args.resume is not None:  # a steering run resumes through the steering path
        from scagents.agents.graph import run_state

        try:
            goal = (run_state(args.resume).get("options") or {}).get("goal")
        except ScagentsError:
            goal = None  # api.run says what is wrong with the run id
        if is_steering_goal(goal):
            from scagents.agents.steering import run_steering

            return run_steering(goal, resume=args.resume, quiet=args.quiet)
    else:
        if is_steering_goal(args.goal):  # fate steering: the steering agent answers on the twin
            from scagents.agents.steering import run_steering

            return run_steering(args.goal, out=args.out, model=args.model, seed=args.seed,
                                n_cells=args.n_cells, quiet=args.quiet, inputs=inputs, data=args.data)
    if args.genes is not None and args.genes < 10:
        print(f"error: --genes must be at least 10, got {args.genes}", file=sys.stderr)
        return 2
    budget = dict(QUICK) if args.quick else {}
    if args.genes is not None:
        budget["n_genes"] = args.genes
    res = run(args.data, args.goal, out=args.out, seed=args.seed, quiet=args.quiet,
              resume=args.resume, model=args.model, n_cells=args.n_cells,
              perturbation_key=args.perturbation_key, control=args.control, llm=args.llm,
              skip_network=args.skip_network, progress=not args.quiet, **budget,
              **({"inputs": inputs} if inputs else {}))
    up = ", ".join(f"{r['gene']} {r['delta']:+.2f}" for r in res.top_up[:5]) or "none"
    down = ", ".join(f"{r['gene']} {r['delta']:+.2f}" for r in res.top_down[:5]) or "none"
    print(f"{res.goal}  [{res.method}, {res.status}]  run id: {res.run_id}")
    reading = (res.report.get("goal") or {}).get("reading")
    if reading and reading not in (res.report.get("goal_note") or ""):  # how the goal was read
        print("  " + reading)
    if res.report.get("goal_note"):  # the goal's kind word vs the data's label, in one line
        print("  note: " + res.report["goal_note"])
    for line in (res.report.get("headline") or [])[1:2]:  # the answer's check, in plain words
        print("  " + line.replace("**", ""))
    if res.status == "unchecked":  # say it before the genes: nothing measured checks this answer
        print(f"  {res.report['method']['description']}")
    ev = res.report.get("evidence") or {}
    if ev.get("detectable") is False:
        print(f"  no detectable effect. {ev.get('needed', '')}")
    else:
        print(f"  up:   {up}")
        print(f"  down: {down}")
    for p in res.proposals[:5]:
        print(f"  next #{p['rank']}: {p['perturbation']} (score {p['score']:.3f})")
    print(f"report: {res.out / 'report.md'}  ({res.wall_time_s:.1f} s)")
    return 0


def _add_listing_cmds(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list the runs in a folder (newest first)",
                       description="List the runs under a folder: id, start, goal, state, answer.")
    p.add_argument("--out", default="scagents_runs", help="folder holding the run folders "
                                                         "(default: ./scagents_runs)")
    p.set_defaults(func=_cmd_runs)
    p = sub.add_parser("campaigns", help="list the campaigns of a ledger",
                       description="List the campaigns of a ledger, one line each: goal, rounds, proposed, "
                                   "measured, hits (with the hits random batches are expected to hold when a "
                                   "library file was ingested), best gene and last update. Hits and best are "
                                   "counted as 'scagents campaign NAME' counts them (on the library scale when "
                                   "known).")
    p.add_argument("--db", default="scagents_campaigns.sqlite", help="campaign ledger (SQLite)")
    p.set_defaults(func=_cmd_campaigns)


def _table(rows: list[dict], empty: str) -> str:
    if not rows:
        return empty
    cols = list(rows[0])
    width = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(width[c]) for c in cols)]
    lines += ["  ".join(str(r[c]).ljust(width[c]) for c in cols) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def _cmd_runs(args: argparse.Namespace) -> int:
    from scagents.api import list_runs

    print(_table(list_runs(args.out), f"no runs in {args.out}"))
    return 0


def _cmd_campaigns(args: argparse.Namespace) -> int:
    from pathlib import Path

    if not Path(args.db).is_file():
        print(f"error: no campaign ledger at {args.db!r}; start a campaign with `python -m scagents "
              "next --campaign NAME --goal ...` or pass --db FILE", file=sys.stderr)
        return 2
    from scagents.campaign import campaign_summaries

    print(_table(campaign_summaries(args.db), f"no campaigns in {args.db}"))
    return 0


def _add_campaign_cmds(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("next", help="propose the next perturbations of a campaign",
                       description="Propose and record the next round of a closed-loop campaign.")
    p.add_argument("--campaign", required=True,
                   help="campaign name: a new name starts a campaign, an existing one continues it")
    p.add_argument("--batch", type=int, default=16, help="genes to propose this round (default: %(default)s)")
    p.add_argument("--goal", default=None, help="goal of a new campaign")
    p.add_argument("--candidates", default=None,
                   help="file with one candidate gene per line, of a new campaign (an existing one keeps its own: "
                        "another set is refused)")
    p.add_argument("--features", default=None,
                   help="candidate features of a new campaign: .h5ad expression file or CSV/TSV table "
                        "(gene, feature columns); default: the shared PBMC expression data when present; an "
                        "existing campaign keeps its stored features (giving others is refused)")
    p.add_argument("--objective", default=None, choices=["increase", "decrease", "either"],
                   help="what counts as a hit: the read-out goes up, down, or either way (largest change); "
                        "default for a new campaign: from the goal's words (increase/boost, decrease/suppress, "
                        "else either); stored with the campaign")
    p.add_argument("--designer", default=None,
                   help="policy, ridge_ucb, gp_ucb, bayes_prior (prior-anchored Bayesian), learned_policy (the trained "
                        "TRPO→PPO acquisition; answers only if it passed its validation), prior_only or random; default: "
                        "the campaign's stored "
                        "designer, else bayes_prior (naming another one starts it afresh)")
    p.add_argument("--db", default="scagents_campaigns.sqlite", help="campaign ledger (SQLite)")
    p.add_argument("--seed", type=_seed, default=None, help="random seed (default: the stored one, else 0)")
    p.add_argument("--rounds", type=int, default=None,
                   help="planned number of rounds (the policy sees its progress; default: stored, else 5)")
    p.add_argument("--policy-steps", type=int, default=None,
                   help="policy designer: training steps per round (default: stored, else 4000)")
    p.add_argument("--designer-option", action="append", default=[], metavar="KEY=VALUE",
                   help="any designer option (e.g. ucb_weight=0, diversity=0.5, beta=2); repeatable; stored "
                        "with the campaign's designer")
    p.set_defaults(func=_cmd_next)
    p = sub.add_parser(
        "ingest", help="add measured results to a campaign",
        description="Add a round's measured results to a campaign: a MAGeCK RRA or MLE gene summary "
                    "(gene_summary.txt), a BAGEL2 BF table, or a CSV/TSV with a gene column and a signed score "
                    "column. The rows of the campaign's proposed genes are stored under the round that "
                    "proposed them; other rows (the rest of a screen's library) are counted and ignored. "
                    "The line 'score = ...' says which column became the score.",
        epilog="score rules: MAGeCK RRA → neg|lfc (gene log2 fold change); MAGeCK MLE → <condition>|beta "
               "(several conditions: give --score-column); BAGEL2 → −BF (sign flipped: negative = depleted); "
               "other tables → the one column named score, value, effect, lfc, log2FC, logFC, z or beta "
               "(column names are compared case-insensitively). p-values, FDRs, ranks and RRA scores are "
               "never a score.")
    p.add_argument("--campaign", required=True, help="name of the campaign whose proposals were measured")
    p.add_argument("results", help="results file: MAGeCK gene_summary.txt (RRA or MLE), BAGEL2 .bf table, or "
                                   "CSV/TSV with gene and score columns (optionally round: the round as `next` "
                                   "printed it, 1 for the first; checked against the proposing round)")
    p.add_argument("--db", default="scagents_campaigns.sqlite",
                   help="campaign ledger (SQLite; default: %(default)s)")
    p.add_argument("--score-column", default=None, metavar="NAME",
                   help="the column holding the signed effect (e.g. 'Rep1|beta' of a MAGeCK MLE summary with "
                        "several conditions, or log2FC of a table with several score columns); "
                        "case-insensitive")
    p.add_argument("--gene-column", default=None, metavar="NAME",
                   help="the column holding the gene symbols, when the file has none or several of gene, id, "
                        "symbol, gene_name, target, perturbation; case-insensitive")
    p.set_defaults(func=_cmd_ingest)
    p = sub.add_parser("campaign", help="show a campaign's history table and plot",
                       description="Print the history of a campaign and write its progress plot. Hit-likeness "
                                   "is on the scale of an ingested whole-library file (its median and robust SD, "
                                   "fixed across rounds) when there is one, else on the measured proposals' scale; "
                                   "it prints that scale and, per round, the hits found and, with a library, the "
                                   "hits random batches of the same size are expected to hold.")
    p.add_argument("name", help="campaign name (see 'scagents campaigns')")
    p.add_argument("--db", default="scagents_campaigns.sqlite", help="campaign ledger (SQLite; default: %(default)s)")
    p.add_argument("--plot", default=None, help="PNG path (default <name>_progress.png)")
    p.set_defaults(func=_cmd_campaign)
    p = sub.add_parser("report", help="(re)write the report of a finished run",
                       description="Rewrite report.md/html/json of a run folder from its state.")
    p.add_argument("run", help="run id or run folder")
    p.add_argument("--root", default="scagents_runs",
                   help="folder holding the runs, for a run id (default: %(default)s)")
    p.set_defaults(func=_cmd_report)


def _cmd_next(args: argparse.Namespace) -> int:
    from pathlib import Path

    from scagents.campaign import propose_round
    from scagents.campaign.ledger import read_candidates_file

    cands, header = (None, None) if not args.candidates else read_candidates_file(Path(args.candidates))
    opts = {} if args.policy_steps is None else {"total_timesteps": args.policy_steps}
    for item in args.designer_option:
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            print(f"error: --designer-option {item!r} is not KEY=VALUE; write e.g. --designer-option ucb_weight=0",
                  file=sys.stderr)
            return 2
        opts[key.strip()] = _option_value(val.strip())
    df = propose_round(args.db, args.campaign, batch=args.batch, goal=args.goal, candidates=cands,
                       designer=args.designer, seed=args.seed, n_rounds=args.rounds,
                       features=args.features or "auto", objective=args.objective, **opts)
    print(format_proposals(df))
    if info := df.attrs.get("candidates"):
        from scagents.campaign.ledger import candidates_line

        print(candidates_line(info, args.candidates, header))
    return 0


def _option_value(text: str):
    """A designer option's value: a number or true/false when it reads as one, else the text."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


_OBJECTIVE_LINES = {"increase": "increase (a hit raises the read-out; reward = score above the median)",
                    "decrease": "decrease (a hit lowers the read-out; reward = score below the median)",
                    "either": "either (a hit changes the read-out either way; reward = |score − median|)"}


def _designer_line(cfg: dict) -> str:
    opts = ", ".join(f"{k}={v}" for k, v in cfg.get("options", {}).items())
    graph = f", graph {cfg['graph']}" if cfg.get("graph", "none") != "none" else ""
    return (f"designer: {cfg['designer']} (seed {cfg['seed']}, groups {cfg['groups']}{graph}, {cfg['n_rounds']} planned "
            f"rounds{'; ' + opts if opts else ''}) — stored in the ledger; later rounds continue it")


def unmeasured_line(waiting: dict[int, int]) -> str:
    """What ``next`` says when earlier rounds still wait for results: ``{round: genes not measured}``."""
    rounds = ", ".join(str(r) for r in sorted(waiting))
    return (f"{sum(waiting.values())} gene(s) proposed in round(s) {rounds} are not measured yet; this round was "
            "chosen without their results (ingest them first, and they inform the next round)")


def _shown(x: float) -> str:
    """A score in a sentence: 3 significant digits, floating-point noise shown as 0."""
    return "0" if abs(float(x)) < 1e-9 else f"{float(x):.3g}"


def _readable(df):
    """A table for printing: floating-point noise (``4e-17``) shown as 0 and floats to 4 significant
    digits; the data themselves are untouched."""
    import numpy as np

    out = df.copy()
    for col in out.select_dtypes("float").columns:
        v = out[col].to_numpy(float)
        out[col] = np.where(np.abs(v) < 1e-9, 0.0, v)
    return out.to_string(index=False, float_format=lambda x: f"{x:.4g}")


def format_proposals(df) -> str:
    """The ``next`` table in plain words: the proposals (the rationale once below the table when
    every row shares it) and, when the ranks do not follow the score, a line saying why."""
    why = df["rationale"].unique() if "rationale" in df else []
    table = df.drop(columns="rationale") if len(why) == 1 else df
    lines = [_readable(table), ""]
    if df.attrs.get("objective"):
        lines.append(f"objective: {_OBJECTIVE_LINES.get(df.attrs['objective'], df.attrs['objective'])}")
    if df.attrs.get("designer"):
        lines.append(_designer_line(df.attrs["designer"]))
    if df.attrs.get("feature_coverage"):
        lines.append("feature sources (share of the candidates each describes): " + ", ".join(
            f"{k} {'absent' if v is None else f'{v:.0%}'}" for k, v in df.attrs["feature_coverage"].items()))
        from scagents.campaign.features import absent_sources_line

        if (absent := absent_sources_line(df.attrs["feature_coverage"])) is not None:
            lines.append(absent)
    if len(why) == 1:
        lines.append(f"why: {why[0]}")
    if waiting := df.attrs.get("unmeasured"):
        lines.append(f"note: {unmeasured_line(waiting)}.")
    scores = df["score"].to_numpy(float)
    later_higher = [(i, j) for i in range(len(df)) for j in range(i + 1, len(df))
                    if scores[j] > scores[i] + 1e-12]
    if later_higher:
        i, j = later_higher[0]
        a, b = df.iloc[i], df.iloc[j]
        lines.append(
            f"note: ranks are the pick order, not the score order — each pick lowers the chance of "
            f"genes with similar expression (diversity), so {a['gene']} (rank {a['rank']}, score "
            f"{_shown(a['score'])}) comes before {b['gene']} (rank {b['rank']}, score {_shown(b['score'])}).")
    return "\n".join(lines).rstrip()


def _cmd_ingest(args: argparse.Namespace) -> int:
    from scagents.campaign import ingest

    summary = ingest(args.db, args.campaign, args.results, score_column=args.score_column,
                     gene_column=args.gene_column)
    print(format_ingest(summary))
    return 0


def format_ingest(summary) -> str:
    """What ``ingest`` did, in plain lines: the score rule, what was added, what was ignored."""
    if summary.duplicate_file:
        rule = f" with {summary.score_rule}" if summary.score_rule else ""
        return (f"{summary.path}: already ingested{rule} (this file was ingested before; nothing added to "
                f"campaign {summary.campaign!r}).")
    rounds = ", ".join(str(r) for r in summary.rounds)
    lines = [summary.score_rule] if summary.score_rule else []
    lines.append(f"{summary.path}: {summary.n_new} new measurement(s) added to campaign "
                 f"{summary.campaign!r}{f' (round {rounds})' if rounds else ''}; {summary.n_already} already stored.")
    ignored = summary.n_unproposed + summary.n_unknown
    if ignored:
        parts = []
        if summary.n_unproposed:
            parts.append(f"{summary.n_unproposed} candidate(s) not proposed yet")
        if summary.n_unknown:
            eg = f" (e.g. {', '.join(summary.unknown)})" if summary.unknown else ""
            parts.append(f"{summary.n_unknown} gene(s) that are not candidates of the campaign{eg}")
        lines.append(f"ignored: {ignored} other row(s): {'; '.join(parts)}.")
    if summary.n_unmeasured:
        eg = ", ".join(summary.unmeasured) + (", …" if summary.n_unmeasured > len(summary.unmeasured) else "")
        lines.append(f"still unmeasured: {summary.n_unmeasured} proposed gene(s) of the campaign"
                     f"{f' ({eg}): not in this file' if eg else ''}.")
    if summary.library:
        lines.append(summary.library)
    if summary.note:
        lines.append(f"note: {summary.note}.")
    return "\n".join(lines)


def _cmd_campaign(args: argparse.Namespace) -> int:
    from scagents.campaign import history, plot_campaign
    from scagents.campaign.ledger import campaign_progress, check_campaign_name
    from scagents.errors import DataFileError

    check_campaign_name(args.name)  # the default plot file is named after it
    h = history(args.db, args.name)
    print(_readable(h.drop(columns="rationale")))
    print("")
    for rnd, why in h.groupby("round", sort=True)["rationale"].unique().items():
        print(f"round {rnd} ({h.loc[h['round'] == rnd, 'designer'].iloc[0]}): {'; '.join(why)}")
    prog = campaign_progress(args.db, args.name)
    print("")
    print(prog["scale"])
    print(prog["random_reference"])
    print("\n".join(prog["lines"]))
    plot = args.plot or f"{args.name}_progress.png"
    try:
        path = plot_campaign(args.db, args.name, plot)
    except OSError as exc:
        why = f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else (exc.strerror or str(exc))
        raise DataFileError(f"Cannot write the plot {plot} ({why}); give --plot PATH in a writable folder.") from None
    print(f"plot: {path}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from scagents.agents.graph import run_state
    from scagents.agents.report import report_agent

    values = run_state(args.run, root=args.root)
    if values.get("steering"):  # a fate-steering run: its steering.{md,json} are rewritten
        from scagents.steering import _write, print_answer

        folder = Path(values["out_dir"])
        _write(values["steering"], folder)
        print_answer(values["steering"], folder, float(values["steering"].get("wall_time_s", 0.0)))
        return 0
    if not values.get("policy"):
        print("error: the run has no prediction yet; resume it with run --resume", file=sys.stderr)
        return 2
    folder = Path(values["out_dir"])
    files = report_agent(values)["report"]["files"]
    print("report: " + ", ".join(str(folder / f) for f in files.values()))
    return 0


def _add_mcp(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mcp", help="serve the scagents tools over the Model Context Protocol (stdio)",
        description="Serve the scagents tools (predict, recommend, steer, simulate, load, integrate, "
        "network, train, ingest, report) to an MCP client over stdin/stdout. Every path a tool "
        "receives must lie inside --workdir.")
    p.add_argument("--workdir", default=".", help="working directory of the tools (default: .)")
    p.add_argument("--n-cells", type=int, default=1000,
                   help="default cells per condition simulated on the twin")
    p.add_argument("--policy-steps", type=int, default=None,
                   help="default environment steps of the policy training in predictions "
                        "(default: the run's, RunOptions.policy_steps)")
    p.set_defaults(func=_cmd_mcp)


def _cmd_mcp(args: argparse.Namespace) -> int:
    if args.policy_steps is None:
        from scagents.agents.state import RunOptions

        args.policy_steps = int(RunOptions.model_fields["policy_steps"].default)
    if args.n_cells < 10 or args.policy_steps < 256:
        print("error: --n-cells must be at least 10 and --policy-steps at least 256",
              file=sys.stderr)
        return 2
    if os.path.exists(args.workdir) and not os.path.isdir(args.workdir):
        print(f"error: --workdir {args.workdir} is a file; give the folder the tools work in", file=sys.stderr)
        return 2
    from scagents.tools.mcp_server import serve

    serve(args.workdir, n_cells=args.n_cells, policy_steps=args.policy_steps)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="scagents",
        description="Agents that analyse single-cell perturbation data and recommend what to test next.",
    )
    from scagents import __version__

    parser.add_argument("--version", action="version", version=f"scagents {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help=f"show the full traceback of an error (also: {DEBUG_ENV}=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_run(sub)
    _add_campaign_cmds(sub)
    _add_listing_cmds(sub)
    _add_mcp(sub)
    return parser


def _error_line(exc: BaseException) -> tuple[str, int]:
    """One line for an error: expected (bad input, exit code 2) or internal (a bug, exit code 1)."""
    import sqlite3

    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        e = exc.errors()[0]
        flag = "--" + str(e["loc"][0]).replace("_", "-") if e["loc"] else "option"
        msg, code = f"invalid {flag} {e.get('input')!r}: {e['msg']}", 2
    elif isinstance(exc, ScagentsError):
        msg, code = str(exc), 2
    elif isinstance(exc, OSError) and exc.filename is not None:
        msg, code = f"{exc.strerror or exc}: {exc.filename}", 2
    elif isinstance(exc, OSError | sqlite3.DatabaseError | UnicodeError):
        msg, code = f"{exc} ({type(exc).__name__}); check the files and folders given", 2
    elif isinstance(exc, MemoryError):
        msg, code = "out of memory; use a smaller data set (or fewer cells)", 2
    else:
        msg = (f"internal error ({type(exc).__name__}: {exc}); this is a bug — rerun with --debug "
               f"(or {DEBUG_ENV}=1) for the traceback and report it")
        code = 1
    return _one_line(msg), code


def _one_line(msg: str, limit: int = 2000) -> str:
    msg = " ".join(str(msg).split())
    return msg if len(msg) <= limit else msg[:limit] + " …"


def _quiet_stdout() -> None:
    """After a broken pipe (``scagents next | head``): send the rest of stdout to /dev/null."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (in-process capture)
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code: 0 done, 2 bad input (one ``error:`` line on
    stderr), 1 internal error (one line; ``--debug`` or ``SCAGENTS_DEBUG=1`` show the traceback).

    Dependency noise (:data:`scagents._warnings.DEPENDENCY_WARNINGS`) is silenced; other warnings are
    held back while a command runs: shown after it succeeds (scagents' own as one ``warning:`` line
    each), dropped when it fails (the error line says what matters). The caller's warning filters
    are left as they were.
    """
    from scagents.api import filter_dependency_warnings

    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    with warnings.catch_warnings(record=not debug) as caught:
        filter_dependency_warnings()
        try:
            code = int(args.func(args) or 0)
            sys.stdout.flush()
        except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Python advises
            _quiet_stdout()
            return 1
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            return 130
        except Exception as exc:
            if debug:
                raise
            line, code = _error_line(exc)
            print(f"error: {line}", file=sys.stderr)
            return code
    if code == 0:
        for w in {(str(w.message), w.category): w for w in caught or []}.values():
            _show_warning(w)
    return code


def _show_warning(w: warnings.WarningMessage) -> None:
    """Show a held-back warning: scagents' own as ``warning: <message>`` on one line (it speaks to
    the user; where in the code it was raised does not help), any other in Python's format."""
    own = Path(w.filename).resolve().is_relative_to(Path(__file__).resolve().parent)
    if own:
        print(f"warning: {_one_line(str(w.message))}", file=sys.stderr)
    else:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
