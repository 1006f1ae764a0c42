"""The report writer: Markdown tables that survive any cell text, and figures a reader can read
(checked on the matplotlib objects: axis labels, legends, colour bars, arrow styles)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.patches import ArrowStyle, FancyArrowPatch

from scagents import report
from scagents.report import (
    _table,
    embedding_axis_labels,
    plot_cells,
    plot_effects,
    plot_network,
    plot_training,
    render_html,
    render_markdown,
    table_cells,
)


@pytest.fixture
def figures(monkeypatch):
    """Keep every figure the plot functions build (they are still written and closed)."""
    kept = []
    save = report._save

    def keep(fig, path):
        kept.append(fig)
        return save(fig, path)

    monkeypatch.setattr(report, "_save", keep)
    return kept


def test_pipes_in_cells_do_not_break_rows():
    rows = [{"metric": "direction accuracy (|Δ| > 0.05)", "value": 0.5},
            {"metric": "a | b \\ c", "value": "x|y"}]
    lines = _table(rows, ["metric", "value"])
    assert len(lines) == 4
    for line in lines[2:]:
        assert len(table_cells(line)) == 2
    assert table_cells(lines[2]) == ["direction accuracy (|Δ| > 0.05)", "0.500"]
    assert table_cells(lines[3]) == ["a | b \\ c", "x|y"]
    missing = _table([{"a": float("nan"), "b": None}], ["a", "b"])[2]
    assert table_cells(missing) == ["–", "–"]
    # the HTML page reads the same cells back
    html = render_html("\n".join(lines), ".")
    assert html.count("<td>") == 4 and "direction accuracy (|Δ| &gt; 0.05)" in html


def test_twin_check_table_rows_parse_to_two_cells():
    """The twin check's metric names contain |Δ|: each of its rows still has two cells."""
    result = {
        "perturbation": {"targets": ["IFNG"], "kind": "knockout"}, "goal": {"text": "g"},
        "data": {"description": "d", "n_cells": 1, "n_genes": 2},
        "method": {"name": "m", "description": "x"}, "seed": 0, "version": "0",
        "top_up": [], "top_down": [], "min_effect": 0.01,
        "twin_check": {"k": 20, "metrics": {"direction_accuracy_top20": 0.5, "mse": 0.1},
                       "top_up": [], "top_down": []},
    }
    md = render_markdown(result)
    rows = [ln for ln in md.splitlines() if ln.startswith("| direction accuracy")]
    assert len(rows) == 1 and "|Δ|" in table_cells(rows[0])[0]
    assert len(table_cells(rows[0])) == 2


def test_additive_section_sits_beside_the_prediction_with_the_twin_scores():
    base = {
        "perturbation": {"targets": ["STAT1", "TBX21"], "kind": "knockout"},
        "goal": {"text": "g"}, "data": {"description": "d", "n_cells": 1, "n_genes": 2},
        "method": {"name": "m", "description": "x"}, "seed": 0, "version": "0",
        "top_up": [], "top_down": [], "min_effect": 0.01}
    add = {"description": "Additive reference for STAT1+TBX21 knockout: ...",
           "sentence": "The prediction has the sign of 13 of the 19 genes.",
           "rows": [{"gene": "STAT1", "predicted_delta": -0.735, "additive_delta": 0.887,
                     "same_direction": "NO"}],
           "twin_sentence": "Against the twin's simulation: closer by MSE: the additive reference.",
           "twin_metrics": {"prediction": {"mse": 0.4375}, "additive": {"mse": 0.2717}}}
    md = render_markdown({**base, "additive": add})
    assert "## Additive reference: sum of the measured single effects" in md
    assert "**The prediction has the sign of 13 of the 19 genes.**" in md
    row = next(ln for ln in md.splitlines() if ln.startswith("| STAT1"))
    assert table_cells(row) == ["STAT1", "-0.735", "0.887", "NO"]
    mse = next(ln for ln in md.splitlines() if ln.startswith("| mse"))
    assert table_cells(mse) == ["mse", "0.438", "0.272"]
    # absent for a single-gene goal
    assert "Additive reference" not in render_markdown(base)


@pytest.mark.parametrize("key, first", [("X_joint_umap", "UMAP 1"), ("X_umap", "UMAP 1"),
                                        ("X_pca", "PC 1"), ("PCA of RNA", "PC 1"),
                                        ("X_diffmap", "diffusion component 1"),
                                        ("X_scvi", "scvi 1")])
def test_embedding_axis_labels(key, first):
    assert embedding_axis_labels(key)[0] == first


def test_cell_plot_has_axis_names_legends_and_a_labelled_colour_bar(tmp_path, figures):
    rng = np.random.default_rng(0)
    n = 60
    coords = rng.normal(size=(n, 2))
    cond = ["control"] * 20 + ["IFNG knockout (held out)"] * 20 + ["other knockouts (3)"] * 20
    cluster = [str(i % 14) for i in range(n)]  # 14 clusters: all kept, numeric order
    plot_cells(coords, {"condition": cond, "cluster": cluster, "effect": rng.normal(size=n)},
               tmp_path / "cells.png", embedding="X_joint_umap", values_label="effect score",
               title="cells")
    assert (tmp_path / "cells.png").stat().st_size > 1000
    fig = figures[-1]
    axes = [ax for ax in fig.axes if ax.get_title() in ("condition", "cluster", "effect")]
    assert len(axes) == 3
    for ax in axes:
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("UMAP 1", "UMAP 2")
    legend = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert legend == ["control (n=20)", "IFNG knockout (held out) (n=20)",
                      "other knockouts (3) (n=20)"]
    clusters = [t.get_text().split()[0] for t in axes[1].get_legend().get_texts()]
    assert clusters == [str(i) for i in range(14)]
    colourbars = [ax for ax in fig.axes if "effect score" in (ax.get_xlabel(), ax.get_ylabel())]
    assert len(colourbars) == 1 and axes[2].get_legend() is None


def test_many_categories_are_folded_into_other(tmp_path, figures):
    coords = np.zeros((30, 2))
    plot_cells(coords, {"perturbation": [f"g{i}" for i in range(30)]}, tmp_path / "c.png",
               title="t")
    texts = [t.get_text() for t in figures[-1].axes[0].get_legend().get_texts()]
    assert len(texts) == 20 and texts[-1] == "other (11 categories) (n=11)"


def _arrows(fig) -> list[FancyArrowPatch]:
    return [c.arrow_patch for c in fig.axes[0].texts if getattr(c, "arrow_patch", None)]


def test_network_plot_signed_directed_no_double_heads(tmp_path, figures):
    edges = [{"source": "IFNG", "target": "STAT1", "weight": 0.8},
             {"source": "STAT1", "target": "IFNG", "weight": 0.5},
             {"source": "GATA3", "target": "IFNG", "weight": -0.4}]
    plot_network(edges, ["IFNG"], tmp_path / "net.png", title="net")
    fig = figures[-1]
    arrows = _arrows(fig)
    assert len(arrows) == 3  # one arrow per edge, both directions of a pair drawn separately
    styles = [a.get_arrowstyle() for a in arrows]
    # activation: a head at the target only; repression: a bar at the target only
    assert isinstance(styles[0], ArrowStyle.CurveFilledB)
    assert isinstance(styles[1], ArrowStyle.CurveFilledB)
    assert isinstance(styles[2], ArrowStyle.BarAB) and styles[2].widthA == 0
    colours = [a.get_edgecolor() for a in arrows]
    assert colours[0] == colours[1] != colours[2]
    # the two directions of IFNG <-> STAT1 bend apart instead of overlapping on one line
    assert all(a.get_connectionstyle().rad != 0 for a in arrows[:2])
    assert arrows[2].get_connectionstyle().rad == 0
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("activates" in t for t in legend) and any("represses" in t for t in legend)
    assert "inferred from co-expression;" in fig.axes[0].get_legend().get_title().get_text()
    plot_network(edges, ["IFNG"], tmp_path / "net2.png", title="net",
                 inferred_from="co-expression and the knockout screen")
    assert "knockout screen" in figures[-1].axes[0].get_legend().get_title().get_text()


def test_training_plot_draws_validation_and_baselines(tmp_path, figures):
    rows = [{"step": 100 * i, "phase": "trpo" if i < 3 else "ppo",
             "episodic_return_mean": -1.0 + 0.1 * i} for i in range(6)]
    plot_training(rows, tmp_path / "t.png", title="t", policy="the policy",
                  validation={"the policy": 0.5, "linear": 0.4, "no change": 0.7, "bad": None})
    ax = figures[-1].axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["TRPO phase: training error (with exploration noise)",
                          "PPO phase: training error (with exploration noise)"]
    assert "policy, validation (0.5)" in labels and "linear, validation (0.4)" in labels
    assert "no change, validation (0.7)" in labels and not any("bad" in t for t in labels)
    # the curve is the error (−return): positive, lower is better
    assert np.allclose(ax.lines[0].get_ydata(), [1.0, 0.9, 0.8])
    assert "lower is better" in ax.get_ylabel()


def test_effects_plot_labels(tmp_path, figures):
    genes = [{"gene": "A", "delta": 0.5}, {"gene": "B", "delta": -0.3}]
    plot_effects(genes, tmp_path / "e.png", title="e")
    ax = figures[-1].axes[0]
    assert ax.get_ylabel() == "gene" and "change from control" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["up", "down"]


def test_effects_plot_shows_both_directions(tmp_path, figures):
    # 20 strong increases and 3 weaker decreases: the decreases still get their rows
    genes = ([{"gene": f"U{i}", "delta": 3.0 - 0.1 * i} for i in range(20)]
             + [{"gene": f"D{i}", "delta": -0.5 - 0.1 * i} for i in range(3)])
    plot_effects(genes, tmp_path / "e.png", title="a long title " * 10, n_top=12)
    ax = figures[-1].axes[0]
    shown = [t.get_text() for t in ax.get_yticklabels()]
    assert shown == ["D2", "D1", "D0"] + [f"U{i}" for i in range(8, -1, -1)]
    assert "\n" in ax.get_title()  # a long title is wrapped, not cut off


def test_effects_plot_leaves_out_model_inputs(tmp_path, figures):
    genes = [{"gene": "TCR", "delta": 0.9}, {"gene": "A", "delta": 0.5},
             {"gene": "B", "delta": -0.3}]
    plot_effects(genes, tmp_path / "e.png", title="e", inputs=["TCR", "IL18"])
    ax = figures[-1].axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["B", "A"]
    assert "model inputs held fixed (TCR)" in ax.get_xlabel()


def test_expression_units_follow_whether_the_data_were_counts():
    from scagents.report import expression_units

    assert "counts normalised to 10⁴ per cell" in expression_units({"is_counts": True})
    assert "counts normalised to 10⁴ per cell" in expression_units({})  # a run from before
    said = expression_units({"is_counts": False})
    assert "not counts" in said and "10⁴" not in said


def _minimal_result(**kw) -> dict:
    """The smallest result dictionary :func:`render_markdown` reads."""
    base = {"perturbation": {"targets": ["STAT2"], "kind": "knockout"},
            "goal": {"text": "predict STAT2 knockout"},
            "data": {"description": "d", "n_cells": 10, "n_genes": 5, "is_counts": True},
            "method": {"name": "m", "description": "d"}, "seed": 0, "version": "0",
            "top_up": [], "top_down": [], "min_effect": 0.01}
    return {**base, **kw}


def test_a_target_that_does_not_move_is_not_said_to_agree():
    ev = {"detectable": False, "method": "intervals", "needed": "", "kind": "interval"}
    flat = {"gene": "STAT2", "predicted_delta": 0.0, "expected": "down", "agrees": True,
            "control_mean": 0.0}
    text = render_markdown(_minimal_result(evidence=ev, target_check=[flat]))
    line = next(s for s in text.splitlines() if s.startswith("- Direct target STAT2"))
    assert "agrees" not in line and "does not move it (|change| ≤ 0.01)" in line
    assert "the control cells do not express it (mean 0)" in line
    down = {**flat, "predicted_delta": -0.4, "control_mean": 3.0}
    assert "— agrees." in render_markdown(_minimal_result(evidence=ev, target_check=[down]))
    up = {**flat, "predicted_delta": 0.4, "agrees": False}
    assert "— DISAGREES." in render_markdown(_minimal_result(evidence=ev, target_check=[up]))



def test_a_target_line_says_when_the_targets_own_observed_change_is_noise():
    # twin, STAT1 off in the milieu: predicted -1.16 "agrees" in direction, yet its simulated change
    # does not clear the noise; the line must not read as a confirmed knockout
    ev = {"detectable": True, "method": "bootstrap", "kind": "observed", "n_clear": 2,
          "n_genes": 19, "cleared": ["SOCS1", "TBX21"]}
    target = {"gene": "STAT1", "predicted_delta": -1.161, "expected": "down", "agrees": True}
    text = render_markdown(_minimal_result(evidence=ev, target_check=[target]))
    assert ("- Direct target STAT1: predicted -1.161 (expected down) — agrees; its own observed "
            "change in the goal's cells does not clear the noise.") in text
    cleared = {**ev, "n_clear": 3, "cleared": ["STAT1", "SOCS1", "TBX21"]}
    assert "STAT1 (expected down) — agrees." not in text
    assert "(expected down) — agrees." in render_markdown(
        _minimal_result(evidence=cleared, target_check=[target]))


def test_validation_table_says_direction_accuracy_is_three_class():
    result = {
        "perturbation": {"targets": ["IFNG"], "kind": "knockout"}, "goal": {"text": "g"},
        "data": {"description": "d", "n_cells": 1, "n_genes": 2},
        "method": {"name": "m", "description": "x"}, "seed": 0, "version": "0",
        "top_up": [], "top_down": [], "min_effect": 0.01,
        "validation": {"description": "v", "answered_by": "m",
                       "scores": {"m": {"mse": 0.1, "direction_accuracy": 0.8}}},
    }
    md = render_markdown(result)
    table_end = md.index("(answered) |")
    note = md[table_end:].split("\n\n")[1]
    assert "three-class" in note and "up, down, or unchanged" in note and "all genes" in note
    result["validation"]["scores"] = {"m": {"mse": 0.1}}
    assert "three-class" not in render_markdown(result)
