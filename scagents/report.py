"""Write the report of a run: Markdown, JSON and PNG plots in one folder.

The report is built from a plain, JSON-serialisable result dictionary (see
:func:`scagents.pipeline.run` for the keys), so anything written here can be checked against what was
computed. Plots use matplotlib's non-interactive Agg backend.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

REPORT_MD = "report.md"
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    """Lay out, write (120 dpi) and close a figure; returns ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _plt().close(fig)
    return path


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
    return _save(fig, path)


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
    return _save(fig, path)


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
    return _save(fig, path)


def plot_embedding_values(
    coords: np.ndarray, values: np.ndarray, path: Path, *, title: str, label: str,
    xlabel: str = "PC1", ylabel: str = "PC2",
) -> Path:
    """Scatter plot of cells in two dimensions coloured by a value (diverging colour map)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    lim = float(np.nanmax(np.abs(values))) if len(values) else 1.0
    sc = ax.scatter(coords[:, 0], coords[:, 1], c=values, s=4, cmap="coolwarm", vmin=-lim,
                    vmax=lim)
    fig.colorbar(sc, ax=ax, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(textwrap.fill(title, 48), fontsize=9)
    return _save(fig, path)


def plot_network(edges: list[dict], centre: list[str], path: Path, *, title: str) -> Path:
    """The neighbourhood of ``centre`` genes: centre in the middle, neighbours on a circle,
    arrows from regulator to target (red activation / positive weight, blue repression)."""
    plt = _plt()
    nodes = list(dict.fromkeys([*centre, *[e["source"] for e in edges], *[e["target"] for e in edges]]))
    others = [n for n in nodes if n not in centre]
    pos = {c: (0.15 * i, 0.0) for i, c in enumerate(centre)}
    for i, n in enumerate(others):
        a = 2 * np.pi * i / max(len(others), 1)
        pos[n] = (np.cos(a), np.sin(a))
    fig, ax = plt.subplots(figsize=(5.0, 5.0))
    wmax = max([abs(e["weight"]) for e in edges] or [1.0]) or 1.0
    for e in edges:
        (x0, y0), (x1, y1) = pos[e["source"]], pos[e["target"]]
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops={
            "arrowstyle": "-|>", "color": "#c0392b" if e["weight"] > 0 else "#2471a3",
            "lw": 0.5 + 2.5 * abs(e["weight"]) / wmax, "shrinkA": 12, "shrinkB": 12})
    for n, (x, y) in pos.items():
        ax.scatter([x], [y], s=500 if n in centre else 250,
                   color="#f4d03f" if n in centre else "#d5dbdb", zorder=3)
        ax.text(x, y, n, ha="center", va="center", fontsize=7, zorder=4)
    ax.set_xlim(-1.4, 1.4)
    ax.set_ylim(-1.4, 1.4)
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def plot_training(rows: list[dict], path: Path, *, title: str) -> Path:
    """Mean episodic return per update, one colour per phase (TRPO, PPO)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    for phase, colour in (("trpo", "#8e44ad"), ("ppo", "#16a085")):
        sel = [r for r in rows if r.get("phase") == phase]
        if sel:
            ax.plot([float(r["step"]) for r in sel], [float(r["episodic_return_mean"]) for r in sel],
                    marker="o", ms=3, color=colour, label=phase.upper())
    ax.set_xlabel("environment steps")
    ax.set_ylabel("mean episodic return (−MSE)")
    ax.set_title(title, fontsize=10)
    ax.legend(frameon=False, fontsize=8)
    return _save(fig, path)


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
    for sentence in result.get("headline") or []:  # the answer and its check, before anything else
        lines += [sentence, ""]
    data = result["data"]
    lines += [
        f"**Data:** {data['description']} ({data['n_cells']} cells × {data['n_genes']} genes)",
        f"**Method:** {result['method']['name']} — {result['method']['description']}",
        f"**Seed:** {result['seed']} · scagents {result['version']}",
        "",
    ]
    if result.get("validation"):
        val = result["validation"]
        lines += ["## Which model answered and why", ""]
        if val.get("decision"):
            lines += [f"**Decision:** {val['decision']}", ""]
        lines += [val.get("description", ""), ""]
        answered = val.get("answered_by")
        rows = [{"model": (f"**{k}** (answered)" if k == answered else k), **v}
                for k, v in val["scores"].items()]
        lines += _table(rows, ["model", "mse", "mse_sd", "pearson", "pearson_delta_topk",
                               "direction_accuracy"]) + [""]
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
    if result.get("twin_check"):
        lines += _twin_check_lines(result["twin_check"])
    if result.get("evaluation"):
        lines += ["## Check against observed cells", ""]
        ev = result["evaluation"]
        lines += [ev.get("description", ""), ""]
        lines += _table([{"metric": k, "value": v} for k, v in ev["metrics"].items()],
                        ["metric", "value"]) + [""]
    if result.get("network"):
        net = result["network"]
        lines += ["## Regulatory network around the target", ""]
        if net.get("edges"):
            lines += [net.get("description", ""), ""]
            lines += _table(net["edges"], ["source", "target", "weight"]) + [""]
        else:
            lines += [net.get("description", "No network."), ""]
    if result.get("proposals") is not None:
        lines += ["## Recommended next perturbations", ""]
        if result["proposals"]:
            lines += _table(result["proposals"], ["rank", "perturbation", "score", "uncertainty",
                                                  "rationale"]) + [""]
        else:
            lines += ["No untested candidate is left to propose.", ""]
    if result.get("agents"):
        lines += ["## Which agent produced what", ""]
        lines += _table(result["agents"], ["agent", "status", "produced"]) + [""]
    if result.get("figures"):
        lines += ["## Figures", ""]
        for name, fname in result["figures"].items():
            lines += [f"![{name}]({fname})", ""]
    if result.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in result["notes"]] + [""]
    return "\n".join(lines)


def _twin_check_lines(tc: dict) -> list[str]:
    """Markdown of the "Check against the twin's simulation" section."""
    k = tc.get("k", 20)
    lines = ["## Check against the twin's simulation", "", tc.get("description", ""), ""]
    names = {f"pearson_delta_top{k}": f"Pearson-delta, top-{k} simulated DE genes",
             f"direction_accuracy_top{k}": f"direction accuracy (up / down / unchanged at "
                                           f"|Δ| > 0.05), top-{k} DE genes",
             f"sign_agreement_top{k}": f"sign agreement, top-{k} DE genes",
             "mse": "MSE, all responding genes",
             "pearson": "Pearson, all responding genes"}
    lines += _table([{"metric": names.get(m, m), "value": v} for m, v in tc["metrics"].items()],
                    ["metric", "value"]) + [""]
    cols = ["gene", "simulated_delta", "predicted_delta", "activity_delta", "same_direction"]
    for direction in ("up", "down"):
        rows = tc.get(f"top_{direction}") or []
        lines += [f"### Top simulated {direction}-regulated genes next to the prediction", ""]
        if rows:
            lines += _table(rows, [c for c in cols if c in rows[0]]) + [""]
        else:
            lines += [f"The simulation moves no gene {direction}.", ""]
    lines += ["`simulated_delta` / `predicted_delta`: change of mean log1p-normalised counts; "
              "`activity_delta`: change of the noiseless model activity (0–1) behind the counts.",
              ""]
    if tc.get("fate_shift"):
        fs = tc["fate_shift"]
        conds = list(fs)
        fates = sorted({f for c in conds for f in fs[c]})
        lines += ["### Simulated fate shift", "",
                  "Fraction of simulated cells whose trajectory reaches each fate.", ""]
        lines += _table([{"fate": f, **{c: fs[c].get(f, 0.0) for c in conds}} for f in fates],
                        ["fate", *conds]) + [""]
    lines += [f"- {n}" for n in tc.get("notes", [])] + [""]
    return lines


def render_html(markdown: str, out_dir: str | Path) -> str:
    """A self-contained HTML page of a report: the Markdown rendered (headings, tables, lists,
    bold) and every ``![name](file.png)`` image inlined as base64."""
    import base64
    import html
    import re

    out = Path(out_dir)

    def inline(text: str) -> str:
        text = html.escape(text)
        text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
        return re.sub(r"`(.+?)`", r"<code>\1</code>", text)

    body: list[str] = []
    rows: list[list[str]] = []

    def flush_table() -> None:
        if rows:
            head, *rest = rows
            body.append("<table><tr>" + "".join(f"<th>{inline(c)}</th>" for c in head) + "</tr>"
                        + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>"
                                  for r in rest) + "</table>")
            rows.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= {"-"} for c in cells):
                rows.append(cells)
            continue
        flush_table()
        img = re.fullmatch(r"!\[(.*?)\]\((.+?)\)", line.strip())
        if img:
            f = out / img.group(2)
            if f.exists():
                data = base64.b64encode(f.read_bytes()).decode()
                body.append(f'<figure><img alt="{html.escape(img.group(1))}" '
                            f'src="data:image/png;base64,{data}"/>'
                            f"<figcaption>{html.escape(img.group(1))}</figcaption></figure>")
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{inline(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("- "):
            body.append(f"<li>{inline(line[2:])}</li>")
        elif line.strip():
            body.append(f"<p>{inline(line)}</p>")
    flush_table()
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
             "padding:2px 6px;font-size:90%}img{max-width:100%}")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>scagents report</title>"
            f"<style>{style}</style></head><body>" + "\n".join(body) + "</body></html>")


def write_report(result: dict, out_dir: str | Path, *, html: bool = False) -> dict[str, Path]:
    """Write ``report.md`` and ``report.json`` (and ``report.html`` with ``html=True``).

    Figures must already be in ``out_dir`` and listed in ``result["figures"]`` (name → file name);
    the HTML page inlines them (base64), so it is self-contained.

    Returns
    -------
    Paths of the files written, keyed ``"markdown"``, ``"json"`` (and ``"html"``).
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
    paths = {"markdown": md, "json": js}
    if html:
        page = out / REPORT_HTML
        tmp = page.with_suffix(".html.tmp")
        tmp.write_text(render_html(md.read_text(), out))
        tmp.replace(page)
        paths["html"] = page
    return paths


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj)}")
