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
    p.add_argument("--goal", required=True, help='e.g. "predict STAT1 and IRF1 knockout"')
    p.add_argument("--data", default=None, help=".h5ad / .h5mu / 10x .h5 file or matrix-market folder")
    p.add_argument("--out", default=None, help="output folder (default: ./scagents_runs/<time>_<goal>)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--model", default="th", help="twin model when no --data is given: th, krumsiek11")
    p.add_argument("--n-cells", type=int, default=2000, help="cells simulated per condition on the twin")
    p.add_argument("--perturbation-key", default=None, help="obs column naming the perturbation")
    p.add_argument("--control", action="append", default=None,
                   help="label of control cells (repeatable); default: recognised automatically")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    from scagents.pipeline import run

    result = run(
        args.goal, data=args.data, out=args.out, seed=args.seed, n_cells=args.n_cells,
        model=args.model, perturbation_key=args.perturbation_key, control_labels=args.control,
        progress=not args.quiet,
    )
    up = ", ".join(f"{r['gene']} {r['delta']:+.2f}" for r in result["top_up"][:5]) or "none"
    down = ", ".join(f"{r['gene']} {r['delta']:+.2f}" for r in result["top_down"][:5]) or "none"
    print(f"{result['goal']['text']}  [{result['method']['name']}]")
    print(f"  up:   {up}")
    print(f"  down: {down}")
    if result.get("fate_shift"):
        for cond, fr in result["fate_shift"].items():
            print(f"  fates ({cond}): " + ", ".join(f"{k} {v:.0%}" for k, v in sorted(fr.items())))
    print(f"report: {result['files']['markdown']}  ({result['wall_time_s']:.1f} s)")
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
