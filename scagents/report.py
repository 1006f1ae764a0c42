"""Write the report of a run: Markdown, JSON and PNG plots in one folder.

The report is built from a plain, JSON-serialisable result dictionary (see
:func:`scagents.pipeline.run` for the keys), so anything written here can be checked against what was
computed. Plots use matplotlib's non-interactive Agg backend.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

REPORT_MD = "report.md"
REPORT_JSON = "report.json"


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_effects(genes: list[dict], path: Path, *, title: str, n_top: int = 12) -> Path:
    """Horizontal bar chart of the strongest predicted changes (up in red, down in blue)."""
    plt = _plt()
    rows = sorted(genes, key=lambda r: abs(r["delta"]), reverse=True)[:n_top][::-1]
    fig, ax = plt.subplots(figsize=(6.0, 0.35 * max(len(rows), 3) + 1.2))
    colours = ["#c0392b" if r["delta"] > 0 else "#2471a3" for r in rows]
    ax.barh([r["gene"] for r in rows], [r["delta"] for r in rows], color=colours)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("change from control (log1p normalised expression)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_fate_shift(fate_shift: dict[str, dict[str, float]], path: Path, *, title: str) -> Path:
    """Grouped bar chart of the fraction of cells reaching each fate, control vs perturbed."""
    plt = _plt()
    conditions = list(fate_shift)
    fates = sorted({f for c in conditions for f in fate_shift[c]})
    x = np.arange(len(fates))
    width = 0.8 / max(len(conditions), 1)
    fig, ax = plt.subplots(figsize=(1.2 * len(fates) + 2.5, 3.4))
    for i, cond in enumerate(conditions):
        vals = [fate_shift[cond].get(f, 0.0) for f in fates]
        ax.bar(x + i * width - 0.4 + width / 2, vals, width, label=cond)
    ax.set_xticks(x, fates)
    ax.set_ylabel("fraction of cells")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=10)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_embedding(
    coords: np.ndarray, labels: list[str], path: Path, *, title: str, xlabel: str = "PC1",
    ylabel: str = "PC2",
) -> Path:
    """Scatter plot of cells in two dimensions, coloured by condition."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    labels_arr = np.asarray(labels)
    for lab in dict.fromkeys(labels):
        sel = labels_arr == lab
        ax.scatter(coords[sel, 0], coords[sel, 1], s=4, alpha=0.5, label=f"{lab} (n={sel.sum()})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(frameon=False, fontsize=8, markerscale=3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _fmt(x: Any, digits: int = 3) -> str:
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _table(rows: list[dict], columns: list[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return lines


def render_markdown(result: dict) -> str:
    """Render the Markdown text of a report from a result dictionary."""
    pert = result["perturbation"]
    label = f"{'+'.join(pert['targets'])} {pert['kind']}"
    lines = [f"# scagents report: {label}", ""]
    lines += [f"**Goal:** {result['goal']['text']}", ""]
    data = result["data"]
    lines += [
        f"**Data:** {data['description']} ({data['n_cells']} cells × {data['n_genes']} genes)",
        f"**Method:** {result['method']['name']} — {result['method']['description']}",
        f"**Seed:** {result['seed']} · scagents {result['version']}",
        "",
    ]
    lines += ["## Predicted change in expression", ""]
    lines += [
        "Change from control of mean log1p-normalised expression (counts normalised to 10⁴ per cell).",
        "",
    ]
    for direction in ("up", "down"):
        rows = result[f"top_{direction}"]
        lines += [f"### Top {direction}-regulated genes", ""]
        if rows:
            lines += _table(rows, ["gene", "delta", "control_mean", "perturbed_mean"])
        else:
            lines += [f"No gene changes {direction} by more than {result['min_effect']}."]
        lines += [""]
    if result.get("fate_shift"):
        lines += ["## Fate shift", "", "Fraction of cells whose trajectory reaches each fate.", ""]
        fs = result["fate_shift"]
        conds = list(fs)
        fates = sorted({f for c in conds for f in fs[c]})
        rows = [{"fate": f, **{c: fs[c].get(f, 0.0) for c in conds}} for f in fates]
        lines += _table(rows, ["fate", *conds]) + [""]
    if result.get("evaluation"):
        lines += ["## Check against observed cells", ""]
        ev = result["evaluation"]
        lines += [ev.get("description", ""), ""]
        lines += _table([{"metric": k, "value": v} for k, v in ev["metrics"].items()],
                        ["metric", "value"]) + [""]
    if result.get("figures"):
        lines += ["## Figures", ""]
        for name, fname in result["figures"].items():
            lines += [f"![{name}]({fname})", ""]
    if result.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in result["notes"]] + [""]
    return "\n".join(lines)


def write_report(result: dict, out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.md`` and ``report.json`` for ``result`` into ``out_dir``.

    Figures must already be in ``out_dir`` and listed in ``result["figures"]`` (name → file name).

    Returns
    -------
    Paths of the files written, keyed ``"markdown"`` and ``"json"``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = out / REPORT_MD
    js = out / REPORT_JSON
    # write to temporary names first so an interrupted run never leaves half a report
    tmp_md, tmp_js = md.with_suffix(".md.tmp"), js.with_suffix(".json.tmp")
    tmp_md.write_text(render_markdown(result))
    tmp_js.write_text(json.dumps(result, indent=2, default=_json_default))
    tmp_md.replace(md)
    tmp_js.replace(js)
    return {"markdown": md, "json": js}


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj)}")
