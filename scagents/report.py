"""Write the report of a run: Markdown, JSON and PNG plots in one folder.

The report is built from a plain, JSON-serialisable result dictionary (see
:func:`scagents.agents.report.build_result` for the keys), so anything written here can be checked against what was
computed. Plots use matplotlib's non-interactive Agg backend.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scagents._atomic import atomic_path, write_json, write_text

REPORT_MD = "report.md"
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"


#: captions of the report's figures (figure name → one plain sentence); a run's own captions, computed
#: from what it drew (``result["captions"]``), take precedence
FIGURE_CAPTIONS = {
    "effects": "Genes predicted to change most from control (red up, blue down).",
    "intervals": "Predicted change of the genes predicted to change most, with its calibrated "
                 "interval (bar); open points: the gene's change does not clear the noise.",
    "embedding": "Cells in two dimensions, coloured by condition and by how much each already "
                 "resembles the predicted change.",
    "fate_shift": "Fraction of simulated cells reaching each fate, control vs the perturbation.",
    "network": "Inferred regulators and targets of the perturbed gene(s): red arrows activate, "
               "blue bars repress.",
    "training": "Training of the TRPO→PPO policy, with the validation error of the policy and of "
                "each baseline (dashed); lower is better.",
}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    """Lay out, write (120 dpi) and close a figure; returns ``path``."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format=Path(path).suffix.lstrip(".") or "png")
    _plt().close(fig)
    return path


UP, DOWN, CONTROL_GREY = "#c0392b", "#2471a3", "#9e9e9e"


def embedding_axis_labels(key: str | None) -> tuple[str, str]:
    """Axis labels a reader knows for an embedding key: ``"X_joint_umap"`` → ``("UMAP 1",
    "UMAP 2")``, ``"X_pca"`` → ``("PC 1", "PC 2")``, ``"X_diffmap"`` → diffusion components, a
    free text such as ``"PCA of RNA"`` → ``("PC 1", "PC 2")``; anything else keeps its name."""
    k = (key or "").lower()
    for token, name in (("umap", "UMAP"), ("tsne", "t-SNE"), ("diffmap", "diffusion component"),
                        ("pca", "PC"), ("lsi", "LSI component"), ("mofa", "MOFA factor")):
        if token in k:
            return f"{name} 1", f"{name} 2"
    name = (key or "dimension").removeprefix("X_")
    return f"{name} 1", f"{name} 2"


def embedding_caption(embedding: str | None, groups: Sequence[str], *, joint: bool) -> str:
    """The caption of the cell plot, saying what was drawn.

    Parameters
    ----------
    embedding
        Name of the coordinates drawn (an ``obsm`` key such as ``"X_joint_umap"``, or
        ``"PCA of RNA"``).
    groups
        Titles of the categorical panels drawn (``"condition"``, ``"cluster"``, ``"cell type"``…).
    joint
        Whether the coordinates are the integration agent's joint embedding.

    Returns
    -------
    str
        One sentence: where the cells sit and what colours them.
    """
    axis = embedding_axis_labels(embedding)[0].rsplit(" ", 1)[0]
    where = (f"the joint embedding ({axis})" if joint else
             "the first two principal components of their RNA" if axis == "PC" else
             f"two dimensions ({axis})")
    by = ", ".join(groups) if groups else "nothing categorical"
    return (f"Cells in {where}, coloured by {by}, and by how much each already resembles the "
            "predicted change.")


def plot_effects(genes: list[dict], path: Path, *, title: str, n_top: int = 12,
                 inputs: Sequence[str] = (), is_counts: bool | None = True) -> Path:
    """Horizontal bar chart of the strongest predicted changes (up in red, down in blue).

    Up to ``n_top`` genes: the strongest changes of each direction, half the rows each (a side
    with fewer genes leaves its rows to the other), so a response dominated by induced genes still
    shows what goes down. ``inputs`` (a twin's milieu inputs, held fixed by the model) are not
    drawn as responding genes; those that would have made the top ``n_top`` are named under the
    chart. ``is_counts=False`` labels the axis with the data's own values (not counts, used as
    given) instead of log1p counts per 10⁴."""
    from matplotlib.patches import Patch

    plt = _plt()
    fixed = set(inputs)
    ranked = sorted(genes, key=lambda r: abs(r["delta"]), reverse=True)
    hidden = [r["gene"] for r in ranked[:n_top] if r["gene"] in fixed]
    up = [r for r in ranked if r["gene"] not in fixed and r["delta"] > 0]
    down = [r for r in ranked if r["gene"] not in fixed and r["delta"] < 0]
    n_down = min(len(down), max(n_top // 2, n_top - len(up)))
    rows = sorted(up[:n_top - n_down] + down[:n_down], key=lambda r: r["delta"])  # largest up on top
    fig, ax = plt.subplots(figsize=(6.0, 0.35 * max(len(rows), 3) + 1.6))
    colours = [UP if r["delta"] > 0 else DOWN for r in rows]
    ax.barh([r["gene"] for r in rows], [r["delta"] for r in rows], color=colours)
    ax.axvline(0, color="black", lw=0.8)
    xlabel = ("predicted change from control\n(mean of the data's own values, not counts)"
              if is_counts is False else
              "predicted change from control\n(mean log1p expression, counts per 10⁴)")
    if hidden:
        xlabel += f"\nnot shown: model inputs held fixed ({', '.join(hidden)})"
    ax.set_xlabel(xlabel)
    ax.set_ylabel("gene")
    ax.set_title(textwrap.fill(title, 60), fontsize=10)
    ax.legend(handles=[Patch(color=UP, label="up"), Patch(color=DOWN, label="down")],
              frameon=False, fontsize=8, loc="best")
    return _save(fig, path)


def plot_intervals(genes: list[dict], path: Path, *, title: str, level: float = 0.8,
                   n_top: int = 15, is_counts: bool | None = True,
                   open_means: str = "change not above the noise") -> Path:
    """The strongest predicted changes with their intervals (one row per gene, point = predicted
    change, bar = interval); genes whose change clears the noise are drawn filled.

    ``is_counts=False`` labels the axis with the data's own values (as :func:`plot_effects`);
    ``open_means`` says in the title what an open point means in this run (see
    :func:`clears_noise_meaning`)."""
    plt = _plt()
    rows = sorted([r for r in genes if "lower" in r], key=lambda r: abs(r["delta"]),
                  reverse=True)[:n_top][::-1]
    fig, ax = plt.subplots(figsize=(6.0, 0.35 * max(len(rows), 3) + 1.4))
    y = np.arange(len(rows))
    for i, r in enumerate(rows):
        colour = "#c0392b" if r["delta"] > 0 else "#2471a3"
        ax.plot([r["lower"], r["upper"]], [i, i], color=colour, lw=2, alpha=0.6)
        ax.scatter([r["delta"]], [i], color=colour if r.get("clears_noise", True) else "white",
                   edgecolor=colour, zorder=3, s=30)
    ax.set_yticks(y, [r["gene"] for r in rows])
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(f"predicted change from control, {100 * level:.0f} % interval\n"
                  + ("(mean of the data's own values, not counts)" if is_counts is False else
                     "(mean log1p expression, counts per 10⁴)"))
    ax.set_title(textwrap.fill(f"{title} — open points: {open_means}", 60), fontsize=9)
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
        ax.bar(x + i * width - 0.4 + width / 2, vals, width, label=cond,
               color=CONTROL_GREY if cond == "control" else f"C{i}")
    ax.set_xticks(x, fates)
    ax.set_xlabel("fate reached at the end of the trajectory")
    ax.set_ylabel("fraction of cells")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=10)
    ax.legend(frameon=False, fontsize=8)
    return _save(fig, path)


_MAX_CATEGORIES = 20
_OTHER_COLOURS = ("#d5d8dc", "#f9e79f", "#d2b4de", "#a9dfbf")


def _category_order(cats: list[str]) -> list[str]:
    """Control first, then names (numbers in numeric order), then the "other …" groups."""
    def key(c: str):
        try:
            return (c != "control", c.startswith("other"), 0, float(c), c)
        except ValueError:
            return (c != "control", c.startswith("other"), 1, 0.0, c)

    return sorted(cats, key=key)


def _category_colours(cats: list[str]) -> dict[str, Any]:
    """Dark grey for control, pale colours for the "other …" groups, tab10 (tab20 beyond ten
    named categories) for the rest."""
    plt = _plt()
    named = [c for c in cats if c != "control" and not c.startswith("other")]
    cmap = plt.get_cmap("tab10" if len(named) <= 10 else "tab20")
    out: dict[str, Any] = {}
    others = iter(_OTHER_COLOURS)
    for c in cats:
        if c == "control":
            out[c] = "#424949"
        elif c.startswith("other"):
            out[c] = next(others, "#d0d3d4")
        else:
            out[c] = cmap(named.index(c) % cmap.N)
    return out


def _scatter_categories(ax, coords: np.ndarray, labels, *, title: str, seed: int = 0) -> None:
    """Cells coloured by a categorical label, with a legend (``n`` per category) beside the axes.

    More than 20 categories keep the 19 largest; the rest become ``"other (k categories)"``.
    The "other …" groups are drawn first, the named categories over them in a seeded random
    order (so no named category hides another)."""
    lab = np.asarray([str(v) for v in labels], dtype=object)
    counts = pd.Series(lab).value_counts()
    if len(counts) > _MAX_CATEGORIES:
        keep = set(counts.index[: _MAX_CATEGORIES - 1])
        other = f"other ({len(counts) - len(keep)} categories)"
        lab = np.array([v if v in keep else other for v in lab], dtype=object)
        counts = pd.Series(lab).value_counts()
    cats = _category_order(list(counts.index))
    colours = _category_colours(cats)
    order = np.random.default_rng(seed).permutation(len(lab))
    is_other = np.array([v.startswith("other") for v in lab[order]])
    order = np.concatenate([order[is_other], order[~is_other]])
    ax.scatter(coords[order, 0], coords[order, 1], s=3, alpha=0.8, linewidths=0,
               c=[colours[v] for v in lab[order]])
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="", marker="o", ms=5, color=colours[c],
                      label=f"{c} (n={counts[c]})") for c in cats]
    ax.legend(handles=handles, frameon=False, fontsize=8, loc="upper center",
              bbox_to_anchor=(0.5, -0.1), handletextpad=0.2, columnspacing=0.8,
              ncol=1 if max(len(h.get_label()) for h in handles) > 24 else
              min(4, int(np.ceil(len(cats) / 3))))
    ax.set_title(title, fontsize=10)


def _scatter_values(fig, ax, coords: np.ndarray, values: np.ndarray, *, title: str,
                    label: str) -> None:
    """Cells coloured by a value with a labelled colour bar (diverging, centred at 0, when the
    values take both signs)."""
    v = np.asarray(values, dtype=float)
    finite = v[np.isfinite(v)]
    if finite.size and finite.min() < 0 < finite.max():
        lim = float(np.abs(finite).max())
        kw = {"cmap": "coolwarm", "vmin": -lim, "vmax": lim}
    else:
        kw = {"cmap": "viridis"}
    order = np.argsort(np.abs(np.nan_to_num(v)))  # strongest on top
    sc = ax.scatter(coords[order, 0], coords[order, 1], c=v[order], s=3, linewidths=0, **kw)
    from matplotlib.ticker import MaxNLocator

    bar = fig.colorbar(sc, ax=ax, label=label, shrink=0.85, location="bottom", pad=0.12)
    bar.locator = MaxNLocator(5)
    bar.update_ticks()
    ax.set_title(title, fontsize=10)


def plot_cells(coords: np.ndarray, panels: dict[str, Any], path: Path, *, title: str,
               embedding: str | None = "UMAP", values_label: str = "value") -> Path:
    """Cells in two dimensions, one panel per colouring.

    Parameters
    ----------
    coords
        ``(n_cells, ≥2)`` coordinates; the first two columns are drawn.
    panels
        Panel title → per-cell values. Strings (condition, cluster, fate) are drawn as categories
        with a legend; numbers (float) with a labelled colour bar (``values_label``).
    path
        PNG written.
    title
        Figure title.
    embedding
        Name of the embedding (``"X_joint_umap"``, ``"PCA"``): axis labels via
        :func:`embedding_axis_labels`.
    values_label
        Colour-bar label of the numeric panels.
    """
    plt = _plt()
    n = max(len(panels), 1)
    ncol = min(n, 2)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 5.4 * nrow), squeeze=False)
    xlabel, ylabel = embedding_axis_labels(embedding)
    coords = np.asarray(coords, dtype=float)
    for ax, (name, vals) in zip(axes.ravel(), panels.items(), strict=False):
        arr = np.asarray(vals)
        if arr.dtype.kind == "f":
            _scatter_values(fig, ax, coords, arr, title=name, label=values_label)
        else:
            _scatter_categories(ax, coords, arr, title=name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    fig.suptitle(textwrap.fill(title, 90), fontsize=10)
    return _save(fig, path)


def plot_embedding(
    coords: np.ndarray, labels: list[str], path: Path, *, title: str, xlabel: str = "PC 1",
    ylabel: str = "PC 2",
) -> Path:
    """Scatter plot of cells in two dimensions, coloured by condition (legend with cell counts)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    _scatter_categories(ax, np.asarray(coords, dtype=float), labels, title=title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return _save(fig, path)


def plot_embedding_values(
    coords: np.ndarray, values: np.ndarray, path: Path, *, title: str, label: str,
    xlabel: str = "PC 1", ylabel: str = "PC 2",
) -> Path:
    """Scatter plot of cells in two dimensions coloured by a value (labelled colour bar)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    _scatter_values(fig, ax, np.asarray(coords, dtype=float), values,
                    title=textwrap.fill(title, 48), label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return _save(fig, path)


def plot_network(edges: list[dict], centre: list[str], path: Path, *, title: str,
                 inferred_from: str = "co-expression") -> Path:
    """The neighbourhood of ``centre`` genes as a signed, directed graph.

    Centre genes sit in the middle, their neighbours on a circle. Each edge is one arrow from
    regulator to target: red with an arrow head for a positive weight (activation), blue with a
    bar head for a negative one (repression), width ∝ |weight|. A pair inferred in both directions
    is drawn as two curved arrows, never as one double-headed line. A legend explains the
    encoding and names what the edges were ``inferred_from``.
    """
    from matplotlib.lines import Line2D

    plt = _plt()
    nodes = list(dict.fromkeys([*centre, *[e["source"] for e in edges], *[e["target"] for e in edges]]))
    others = [n for n in nodes if n not in centre]
    pos = {c: (0.35 * (i - (len(centre) - 1) / 2), 0.0) for i, c in enumerate(centre)}
    for i, n in enumerate(others):
        a = np.pi / 2 - 2 * np.pi * i / max(len(others), 1)
        pos[n] = (np.cos(a), np.sin(a))
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    texts = {}
    for n, (x, y) in pos.items():
        texts[n] = ax.text(x, y, n, ha="center", va="center", fontsize=8, zorder=4,
                           fontweight="bold" if n in centre else "normal",
                           bbox={"boxstyle": "round,pad=0.35", "lw": 0.6, "ec": "#555555",
                                 "fc": "#f4d03f" if n in centre else "#e5e8e8"})
    wmax = max([abs(e["weight"]) for e in edges] or [1.0]) or 1.0
    pairs = {(e["source"], e["target"]) for e in edges}
    for e in edges:
        s, t = e["source"], e["target"]
        if s == t:
            continue
        positive = e["weight"] > 0
        both = (t, s) in pairs
        style = "-|>,head_length=0.5,head_width=0.25" if positive else "|-|,widthA=0,widthB=0.35"
        ax.annotate("", xy=pos[t], xytext=pos[s], zorder=2, arrowprops={
            "arrowstyle": style, "color": UP if positive else DOWN,
            "lw": 0.6 + 2.4 * abs(e["weight"]) / wmax, "shrinkA": 2, "shrinkB": 2,
            "patchA": texts[s].get_bbox_patch(), "patchB": texts[t].get_bbox_patch(),
            "connectionstyle": f"arc3,rad={0.18 if both else 0.0}"})
    handles = [Line2D([], [], color=UP, lw=2, marker=">", ms=6, label="activates (positive weight)"),
               Line2D([], [], color=DOWN, lw=2, marker="|", ms=9, mew=2,
                      label="represses (negative weight)"),
               Line2D([], [], color="#555555", lw=0.8, label="thin: weak"),
               Line2D([], [], color="#555555", lw=3.0, label="thick: strong")]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=2,
              frameon=False, fontsize=8, title_fontsize=8,
              title=f"arrow: regulator → target (inferred from {inferred_from};\n"
                    "a pair inferred both ways is drawn as two arrows)")
    ax.set_xlim(-1.3, 1.3)
    ax.set_ylim(-1.25, 1.25)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def plot_training(rows: list[dict], path: Path, *, title: str,
                  validation: dict[str, float] | None = None, policy: str | None = None) -> Path:
    """Training curve: the policy's error on its training perturbations per update, one colour per
    phase (TRPO, PPO), with the validation error of the trained policy and of each baseline as
    horizontal lines.

    Parameters
    ----------
    rows
        Training-log rows (``step``, ``phase``, ``episodic_return_mean`` = −MSE per cell).
    path
        PNG written.
    title
        Figure title.
    validation
        Model name → mean validation MSE (held-out perturbations), drawn as dashed lines.
    policy
        The name of the policy in ``validation`` (drawn in black).
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.0, 4.8))
    for phase, colour in (("trpo", "#8e44ad"), ("ppo", "#16a085")):
        sel = [r for r in rows if r.get("phase") == phase]
        if sel:
            ax.plot([float(r["step"]) for r in sel],
                    [-float(r["episodic_return_mean"]) for r in sel], marker="o", ms=3,
                    color=colour, label=f"{phase.upper()} phase: training error (with exploration noise)")
    styles = iter([("#e67e22", "--"), ("#7f8c8d", "--"), ("#2e86c1", "--"), ("#95a5a6", ":")])
    for name, mse in (validation or {}).items():
        if mse is None or not np.isfinite(mse):
            continue
        if name == policy:
            colour, ls, lab = "black", "-", f"policy, validation ({mse:.3g})"
        else:
            colour, ls = next(styles, ("#bdc3c7", ":"))
            lab = f"{name}, validation ({mse:.3g})"
        ax.axhline(mse, color=colour, ls=ls, lw=1.2, label=lab)
    ax.set_xlabel("environment steps (cells seen)")
    ax.set_ylabel("prediction error (MSE per gene,\nlower is better)")
    ax.set_title(textwrap.fill(title, 80), fontsize=9)
    ax.legend(frameon=False, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    return _save(fig, path)


def _fmt(x: Any, digits: int = 3) -> str:
    """One Markdown table cell: floats to ``digits`` decimals, a missing value (``None``, NaN) as
    "–", ``|`` escaped (``\\|``) and line breaks flattened so the text cannot split or end the
    row."""
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "–"
    text = f"{x:.{digits}f}" if isinstance(x, float) else str(x)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(rows: list[dict], columns: list[str]) -> list[str]:
    lines = ["| " + " | ".join(_fmt(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return lines


def table_cells(line: str) -> list[str]:
    """The cells of one Markdown table row written by :func:`_table` (escaped ``\\|`` and
    ``\\\\`` restored)."""
    import re

    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    cells = re.split(r"(?<!\\)((?:\\\\)*)\|", body)
    # re.split keeps the captured even runs of backslashes: glue them back to their cell
    out, i = [], 0
    while i < len(cells):
        cell = cells[i] + (cells[i + 1] if i + 1 < len(cells) else "")
        out.append(re.sub(r"\\(.)", r"\1", cell).strip())
        i += 2
    return out


def expression_units(data: dict) -> str:
    """The sentence saying what a predicted change is a change of.

    Parameters
    ----------
    data
        The report's ``data`` entry; its ``is_counts`` (``False``: the RNA values were not counts
        and were used as given, not re-normalised) chooses the sentence.

    Returns
    -------
    str
        One sentence for the report.
    """
    if data.get("is_counts") is False:
        return ("Change from control of the mean of the data's own RNA values (they are not counts, "
                "e.g. already normalised, so they were used as given, not normalised again).")
    return "Change from control of mean log1p-normalised expression (counts normalised to 10⁴ per cell)."


def clears_noise_meaning(evidence: dict | None, *, twin: bool = False) -> str:
    """What the ``clears_noise`` column (and the filled points of the intervals plot) means in
    this run.

    Parameters
    ----------
    evidence
        The run's evidence check: its ``kind`` says whether the goal's cells were observed
        (``"observed"``: the column is about their change, not the prediction) or only predicted
        (``"interval"``: about the prediction's interval).
    twin
        Whether the goal's cells were simulated by the twin rather than measured.

    Returns
    -------
    str
        One sentence, or ``""`` when there is no evidence check.
    """
    kind = (evidence or {}).get("kind")
    if kind == "observed":
        made = "simulated" if twin else "measured"
        return ("`clears_noise`: whether the gene's observed change in the goal's "
                f"{made} cells clears their noise floor (the evidence check) — a property of the "
                "data, not of the predicted value beside it.")
    if kind == "interval":
        return "`clears_noise`: whether the gene's calibrated interval (lower to upper) excludes 0."
    return ""


def render_markdown(result: dict) -> str:
    """Render the Markdown text of a report from a result dictionary."""
    pert = result["perturbation"]
    label = result["goal"].get("label") or f"{'+'.join(pert['targets'])} {pert['kind']}"
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
        if val.get("description"):
            lines += [val["description"], ""]
        answered = val.get("answered_by")
        rows = [{"model": (f"**{k}** (answered)" if k == answered else k), **v}
                for k, v in val["scores"].items()]
        if rows:  # none when no measured perturbation could validate a model
            lines += _table(rows, ["model", "mse", "mse_sd", "pearson", "pearson_delta_topk",
                                   "direction_accuracy"]
                            + (["target_direction"] if any("target_direction" in v for v in
                                                           val["scores"].values()) else [])) + [""]
            if any("direction_accuracy" in r for r in rows):
                lines += [DIRECTION_ACCURACY_NOTE, ""]
    ev = result.get("evidence")
    if ev:
        lines += _evidence_lines(ev, result.get("intervals"), result.get("target_check") or [])
    lines += ["## Predicted change in expression", ""]
    lines += [expression_units(result.get("data") or {}), ""]
    listed = [r for d in ("up", "down") for r in result[f"top_{d}"]]
    meaning = clears_noise_meaning(ev, twin=bool(result.get("twin_check")))
    if meaning and any(r.get("clears_noise") is not None for r in listed):
        lines += [meaning, ""]
    if any(r.get("perturbed_mean") is not None for r in listed):
        lines += ["`control_mean`: the control cells' mean; `perturbed_mean` = control_mean + "
                  "delta, the predicted mean under the perturbation (not a measured one).", ""]
    cols = ["gene", "delta", "lower", "upper", "clears_noise", "control_mean", "perturbed_mean"]
    for direction in ("up", "down"):
        rows = result[f"top_{direction}"]
        lines += [f"### Top {direction}-regulated genes", ""]
        if ev and ev.get("detectable") is False:
            lines += ["Not listed: no detectable effect (see the evidence check)."]
        elif rows:
            lines += _table(rows, [c for c in cols if c in rows[0] and rows[0][c] is not None])
        else:
            lines += [f"No gene changes {direction} by more than {result['min_effect']}."]
        lines += [""]
    if result.get("additive"):
        lines += _additive_lines(result["additive"])
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
        check = result["evaluation"]
        lines += [check.get("description", ""), ""]
        lines += _table([{"metric": k, "value": v} for k, v in check["metrics"].items()],
                        ["metric", "value"]) + [""]
        if check.get("candidates"):  # stimulation goals: every candidate against the same cells
            lines += ["Every candidate's prediction against the same observed cells:", ""]
            lines += _table([{"model": k, **v} for k, v in check["candidates"].items()],
                            ["model", "mse", "pearson_delta_topk"]) + [""]
    if result.get("per_group"):
        lines += ["## Per cell type", "", "Each cell type's response predicted from the other cell "
                  "types (its own treated cells held out), against its observed response:", ""]
        lines += _table(result["per_group"], list(result["per_group"][0])) + [""]
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
        elif ev and ev.get("detectable") is False:
            lines += ["None: with no detectable effect there is nothing to follow up.", ""]
        else:
            lines += [result.get("proposals_note", "No untested candidate is left to propose."), ""]
    if result.get("agents"):
        lines += ["## Which agent produced what", ""]
        lines += _table(result["agents"], ["agent", "status", "produced"]) + [""]
    if result.get("figures"):
        lines += ["## Figures", ""]
        for name, fname in result["figures"].items():
            caption = (result.get("captions") or {}).get(name) or FIGURE_CAPTIONS.get(name, name)
            lines += [f"![{caption}]({fname})", ""]
    if result.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in result["notes"]] + [""]
    return "\n".join(lines)


def _direction_accuracy_note() -> str:
    """The note under the validation table: what ``direction_accuracy`` counts."""
    from scagents.metrics import DEFAULT_DIRECTION_EPS

    return ("`direction_accuracy`: three-class — the fraction of all genes whose predicted "
            "direction (up, down, or unchanged within ±"
            f"{DEFAULT_DIRECTION_EPS:g}) is the observed one; genes that do not change count "
            "too, so the 'no change' reference can score high when few genes move.")


DIRECTION_ACCURACY_NOTE: str = _direction_accuracy_note()
"""What the validation table's ``direction_accuracy`` counts (three-class, over all genes)."""


def _evidence_lines(ev: dict, intervals: dict | None, targets: list[dict]) -> list[str]:
    """Markdown of the "Evidence check" section."""
    lines = ["## Evidence check", ""]
    if ev["detectable"] is None:
        lines += ["**No evidence check was possible.**", "", ev.get("needed", ""), ""]
    elif ev["detectable"]:
        lines += [f"**{ev['n_clear']} of {ev['n_genes']} genes "
                  f"{'changes' if ev['n_clear'] == 1 else 'change'} beyond the noise** "
                  f"({', '.join(ev['cleared'][:10])}{', …' if ev['n_clear'] > 10 else ''}).", ""]
    else:
        lines += ["**No detectable effect:** no gene's change clears the noise.", "",
                  ev.get("needed", ""), ""]
    if ev.get("target_note"):  # a knocked-out target that is off in the twin's milieu
        lines += [f"**Why:** {ev['target_note']}", ""]
    lines += [f"How: {ev['method']}.", ""]
    if intervals:
        lines += [f"Intervals ({100 * intervals['level']:.0f} %, columns lower / upper): "
                  f"{intervals['method']}.", ""]
    # the targets whose own observed change is known not to clear the noise (the evidence lists
    # every gene that clears when it lists them all)
    full = ev.get("kind") == "observed" and len(ev.get("cleared") or []) >= ev.get("n_clear", 0)
    for t in targets:
        quiet = full and t["gene"] not in (ev.get("cleared") or [])
        lines += [f"- Direct target {t['gene']}: predicted {t['predicted_delta']:+.3f} (expected "
                  f"{t['expected']}) — {target_verdict(t)}"
                  + ("; its own observed change in the goal's cells does not clear the noise"
                     if quiet else "") + "."]
    return lines + ([""] if targets else [])


def target_verdict(target: dict, min_effect: float = 0.01) -> str:
    """Plain words for one row of the target check: whether the prediction moves the goal's own
    target the way its perturbation must.

    Parameters
    ----------
    target
        ``predicted_delta``, ``expected`` (``"down"`` / ``"up"``), ``agrees`` (not moved the wrong
        way by more than ``min_effect``) and, from newer runs, ``control_mean``.
    min_effect
        Smallest change counted as a move.

    Returns
    -------
    str
        ``"agrees"``, ``"DISAGREES"`` or ``"does not move it …"`` (with why, when the control
        cells do not express a gene that is expected to go down).
    """
    if not target["agrees"]:
        return "DISAGREES"
    sign = -1.0 if target["expected"] == "down" else 1.0
    if sign * target["predicted_delta"] > min_effect:
        return "agrees"
    said = f"does not move it (|change| ≤ {min_effect})"
    mean = target.get("control_mean")
    if sign < 0 and mean is not None and mean <= 1e-9:
        said += (": the control cells do not express it (mean 0), so its loss cannot show in "
                 "their RNA")
    return said


def _additive_lines(add: dict) -> list[str]:
    """Markdown of the "Additive reference" section of a combination goal."""
    lines = ["## Additive reference: sum of the measured single effects", "",
             add.get("description", ""), "", f"**{add['sentence']}**", ""]
    lines += _table(add["rows"], ["gene", "predicted_delta", "additive_delta",
                                  "same_direction"]) + [""]
    if add.get("twin_metrics"):
        lines += [add.get("twin_sentence", ""), ""]
        tm = add["twin_metrics"]
        lines += _table([{"metric": m, "prediction": v, "additive reference": tm["additive"][m]}
                         for m, v in tm["prediction"].items()],
                        ["metric", "prediction", "additive reference"]) + [""]
    return lines


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
            cells = table_cells(line)
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
    # each file is written atomically, so an interrupted run never leaves half a report; the JSON is
    # strict (NaN / infinity written as null)
    write_text(md, render_markdown(result))
    write_json(js, result, indent=2)
    paths = {"markdown": md, "json": js}
    if html:
        page = out / REPORT_HTML
        write_text(page, render_html(md.read_text(), out))
        paths["html"] = page
    return paths


