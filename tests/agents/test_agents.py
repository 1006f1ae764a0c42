"""Each agent called on its own (no graph), and the deterministic planner's routing."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scagents.agents.data import data_agent
from scagents.agents.network import neighbourhood, network_agent
from scagents.agents.policy import fallback_agent, policy_agent, rank_proposals
from scagents.agents.report import report_agent
from scagents.agents.state import DataSummary, PolicySummary, RunOptions, initial_state
from scagents.agents.supervisor import allowed_moves, plan_next, supervisor


def _state(tmp_path, **kw):
    opts = RunOptions(goal=kw.pop("goal", "predict IFNG knockout"), n_cells=kw.pop("n_cells", 200),
                      n_train_cells=kw.pop("n_train_cells", 40), policy_steps=2048, **kw)
    return initial_state(opts, tmp_path)


@pytest.fixture(scope="module")
def twin_state(tmp_path_factory):
    st = _state(tmp_path_factory.mktemp("run"))
    st.update(data_agent(st))
    return st


def test_data_agent_twin(twin_state):
    import mudata as md

    from scagents.twin import load_model

    d = DataSummary.model_validate(twin_state["data"])
    assert d.perturbation["targets"] == ["IFNG"] and d.goal_measured
    assert (Path(twin_state["out_dir"]) / d.path).exists()
    assert d.modalities == ["rna", "atac", "prot"]
    # every non-input gene knocked out and over-expressed; the goal is one of them, listed first
    net = load_model("th")
    genes = [g for g in net.genes if g not in net.inputs]
    expected = {g for g in genes} | {f"{g} overexpression" for g in genes}
    assert set(d.measured) == expected and d.measured[0] == "IFNG" and d.candidates == []
    rna = md.read_h5mu(Path(twin_state["out_dir"]) / d.path)["rna"]
    counts = rna.obs["perturbation"].astype(str).value_counts()
    assert counts["control"] == 200 and counts["IFNG"] == 200      # n_cells
    assert counts["STAT1"] == 40 and counts["GATA3 overexpression"] == 40  # n_train_cells
    assert d.cells_per_condition == {"control": 200, "goal": 200, "training": 40}
    assert set(d.truth_fates) == {"control", "IFNG knockout"}
    assert sum(d.truth_fates["control"].values()) == pytest.approx(1.0, abs=1e-3)


def test_data_agent_candidates(tmp_path):
    st = _state(tmp_path, n_candidates=3, n_cells=30, n_train_cells=20)
    d = DataSummary.model_validate(data_agent(st)["data"])
    assert len(d.candidates) == 3 and "IFNG" not in d.candidates
    assert {m.split()[0] for m in d.measured}.isdisjoint(d.candidates)
    assert len(d.measured) == 2 * (19 - 3)


def test_data_agent_stops_on_unknown_gene(tmp_path):
    st = _state(tmp_path, goal="predict IFNGQ knockout")
    up = data_agent(st)
    assert up["data"] is None and "Closest gene names" in up["stop_reason"]
    assert plan_next({**st, **up}) == "end"


def test_data_agent_targets_numeric_gene_names(tmp_path):
    """Data sets whose genes are numbers (e.g. Entrez ids) can be asked about (issue 15)."""
    import anndata as ad
    import numpy as np
    import pandas as pd

    labels = ["control"] * 10 + [g for g in ("1001", "1002", "1003", "1004") for _ in range(5)]
    adata = ad.AnnData(np.random.default_rng(0).poisson(2.0, (len(labels), 8)).astype(np.float32),
                       obs=pd.DataFrame({"perturbation": labels}, index=[f"c{i}" for i in range(len(labels))]),
                       var=pd.DataFrame(index=[str(1000 + i) for i in range(8)]))
    adata.write_h5ad(tmp_path / "numeric.h5ad")
    st = _state(tmp_path, goal="predict 1002 knockout", data=str(tmp_path / "numeric.h5ad"))
    d = DataSummary.model_validate(data_agent(st)["data"])
    assert d.perturbation["targets"] == ["1002"] and d.goal_measured


def test_planner_routes():
    base = {"options": RunOptions(goal="predict IFNG knockout").model_dump(), "log": []}
    assert plan_next(base) == "data"
    one = {**base, "data": {"modalities": ["rna"]}, "integration": None}
    up = supervisor(one)  # single modality: integration is skipped by the supervisor itself
    assert up["integration"]["status"] == "skipped" and up["next"] == "network"
    s = {**base, "data": {"modalities": ["rna", "atac"]}, "integration": {"status": "done"},
         "network": {"status": "done"}, "policy": {"status": "not_validated", "attempts": 1}}
    assert allowed_moves(s) == ["policy", "fallback"]  # retrain first
    s["policy"]["retrain"] = False  # the gap is too large for a doubled budget
    assert allowed_moves(s) == ["fallback"]
    s["policy"] = {"status": "not_validated", "attempts": 2, "retrain": True}
    assert plan_next(s) == "fallback"
    s["policy"] = {"status": "validated", "attempts": 1}
    assert plan_next(s) == "report"


def test_network_agent(twin_state):
    up = network_agent(twin_state)
    net = up["network"]
    if net["status"] == "skipped":
        pytest.skip(net["reason"])
    assert net["status"] == "done" and net["n_edges"] > 0
    assert all("IFNG" in (e["source"], e["target"]) for e in net["neighbourhood"])


def test_coef_sign_counts_and_the_report_sentence():
    """Drawn edges whose propagation coefficient has the other sign are counted and said in words."""
    import pandas as pd

    from scagents.agents.network import coef_sign_counts, propagation_sign_note

    edges = pd.DataFrame({"source": list("AABC"), "target": list("BCDD"),
                          "weight": [0.9, -0.5, 0.4, -0.2], "coef": [1.2, 0.3, 0.0, -0.1]})
    counts = coef_sign_counts(edges)
    assert counts == {"n_edges": 4, "n_with_coef": 3, "n_opposite": 1}
    note = propagation_sign_note(counts)
    assert "regression coefficients (partial effects" in note
    assert "of the 4 drawn edges, 3 carry a coefficient" in note and "1 carry none" in note
    assert "1 of those (33%) have a coefficient of the opposite sign" in note
    assert coef_sign_counts(edges.drop(columns="coef")) == {} and propagation_sign_note({}) == ""
    full = propagation_sign_note({"n_edges": 2, "n_with_coef": 2, "n_opposite": 0})
    assert "carry none" not in full and "0 of those (0%)" in full
    cand = propagation_sign_note(counts, candidate={"n_edges": 8, "n_with_coef": 8, "n_opposite": 2})
    assert "in this run 2 of its 8 edges with a coefficient, 25%, have a coefficient of the sign opposite" in cand
    assert "in this run" not in note


def test_neighbourhood_orders_by_weight():
    import pandas as pd

    e = pd.DataFrame({"source": ["A", "B", "C"], "target": ["X", "A", "D"],
                      "weight": [0.1, -0.9, 5.0]})
    assert [r["source"] for r in neighbourhood(e, ["A"])] == ["B", "A"]


@pytest.mark.slow
def test_policy_fallback_and_report(twin_state):
    st = dict(twin_state)
    st.update(network_agent(st))
    up = policy_agent(st)
    pol = PolicySummary.model_validate(up["policy"])
    assert pol.status in ("validated", "not_validated") and pol.attempts == 1
    assert "IFNG" not in pol.train_labels and "IFNG" not in pol.validation_labels
    assert {"TRPO→PPO policy", "linear gene embedding", "mean effect per kind"} <= set(pol.validation)
    # every single-gene perturbation of the twin was measured: untested pairs are proposed instead
    assert len(pol.proposals) == 8
    for prop in pol.proposals:
        targets = prop.perturbation.split(" ")[0].split("+")
        assert len(targets) == 2 and "IFNG" not in targets
    assert [p.score for p in pol.proposals] == sorted((p.score for p in pol.proposals), reverse=True)
    # the twin's milieu inputs are clamped: predicted unchanged in the file (and when scored)
    inputs = DataSummary.model_validate(st["data"]).inputs
    out = Path(st["out_dir"])
    pred = pd.read_csv(out / "prediction.csv", index_col="gene")
    assert set(inputs) & set(pred.index)
    assert (pred.loc[pred.index.isin(inputs), "delta"] == 0).all()
    st.update(up)
    st.update(fallback_agent(st))
    fb = PolicySummary.model_validate(st["policy"])
    pred = pd.read_csv(out / "prediction.csv", index_col="gene")
    assert (pred.loc[pred.index.isin(inputs), "delta"] == 0).all()
    baselines = [k for k in fb.validation if k not in ("TRPO→PPO policy", "no change (reference)")]
    assert fb.status == "fallback"
    assert fb.method == min(baselines, key=lambda k: fb.validation[k]["mse"])
    st.update(report_agent(st))
    for f in ("report.md", "report.html", "report.json", "effects.png", "embedding.png"):
        assert (out / f).stat().st_size > 0
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "<img" in html
    md = (out / "report.md").read_text()
    assert "Recommended next perturbations" in md and "Which agent produced what" in md
    assert json.loads((out / "report.json").read_text())["method"]["name"] == fb.method
    # the report says what propagation propagates, counted from the run's edge table
    net = st["network"]
    edges = pd.read_csv(out / net["edges_path"])
    c, w = edges["coef"].to_numpy(), edges["weight"].to_numpy()
    opposite = int(((c != 0) & (np.sign(c) != np.sign(w))).sum())
    assert net["coef_signs"] == {"n_edges": len(edges), "n_with_coef": int((c != 0).sum()),
                                 "n_opposite": opposite}
    assert "regression coefficients (partial effects" in md
    assert f"{opposite} of those" in md and f"of the {len(edges)} drawn edges" in md
    # and for the network-propagation candidate's own network, fitted on the training perturbations
    cand = fb.network_signs
    assert set(cand) == {"n_edges", "n_with_coef", "n_opposite"} and cand["n_with_coef"] > 0
    assert f"in this run {cand['n_opposite']} of its {cand['n_with_coef']} edges with a coefficient" in md


def test_rank_proposals_ucb():
    import numpy as np
    import pandas as pd

    goal = pd.Series([1.0], index=["a"])
    models = {"m1": lambda t, k: np.array([0.5]) if t == ("x",) else np.array([-0.1]),
              "m2": lambda t, k: np.array([0.5]) if t == ("x",) else np.array([0.3])}
    props = rank_proposals(goal, ["y", "x"], "knockout", models, n=2, goal_label="g")
    assert props[0].perturbation == "x knockout"  # UCB: 0.5 + 0 > 0.2 + 0.1 (|effect| mean 0.2, std 0.1)
    assert props[1].uncertainty == pytest.approx(0.1)


def test_pair_candidates_when_every_single_gene_was_measured():
    from scagents.agents.policy import pair_candidates

    measured = ["IFNG", "STAT1", "STAT1 overexpression", "TBX21", "GATA3", "STAT1+GATA3"]
    pairs = pair_candidates(["IFNG", "STAT1", "TBX21", "GATA3"], measured, ("IFNG",))
    # no pair with the goal's own target, none already measured (in either order), no duplicates
    assert sorted(pairs) == ["STAT1+TBX21", "TBX21+GATA3"]


def test_network_agent_uses_the_screen_but_not_the_goal_cells(twin_state, monkeypatch):
    """With a knockout screen the ranking uses the perturbed cells (never the goal's own), with
    infer_network's defaults; propagation coefficients come from the control-cell fit."""
    import pandas as pd

    from scagents import grn

    calls = []
    real = grn.infer_network

    def spy(adata, **kw):
        calls.append((adata.obs.copy(), kw))
        return real(adata, **kw)

    monkeypatch.setattr(grn, "infer_network", spy)
    up = network_agent(twin_state)
    net = up["network"]
    assert net["status"] == "done", net["reason"]
    (obs_screen, kw_screen), (obs_ctrl, kw_ctrl) = calls
    # the screen fit: control + perturbed cells, the goal's (IFNG) cells left out
    assert kw_screen["perturbations"] == "target_genes"
    assert (~obs_screen["is_control"].astype(bool)).sum() > 0
    assert "IFNG" not in set(obs_screen["target_genes"].astype(str))
    # the propagation fit: control cells only
    assert obs_ctrl["is_control"].astype(bool).all() and "perturbations" not in kw_ctrl
    # one default: the agent never overrides what the selection chose (infer_network's defaults)
    chosen = {"method", "transform", "fit_cells", "combine", "direct", "min_t", "alpha", "reduce", "gate", "orient",
              "evidence_weight", "regulator_prior",
              "trees", "n_trees", "tree_weight"}
    assert not chosen & (set(kw_screen) | set(kw_ctrl))
    src = net["sources"]
    assert src["n_perturbed_regulators"] > 0 and 0 < src["n_perturbation_supported"] <= src["n_edges"]
    edges = pd.read_csv(Path(twin_state["out_dir"]) / net["edges_path"])
    assert {"coef", "evidence", "perturbation_t"} <= set(edges.columns)
    assert set(edges["evidence"]) == {"perturbation", "regression"}
    assert edges.groupby("target").size().max() <= 50  # top_k per target
    # propagation: the control-cell fit, its own file; the edge table's coef comes from it
    prop = pd.read_csv(Path(twin_state["out_dir"]) / net["propagation_path"])
    assert net["propagation_path"] != net["edges_path"] and (prop["coef"] != 0).any()
    both = edges.merge(prop, on=["source", "target"], suffixes=("", "_prop"))
    assert len(both) and (both["coef"] == both["coef_prop"]).all()
    assert "log-odds-like" in net["weight_note"] and "not an effect size" in net["weight_note"]
    rec = up["log"][0]
    assert "supported by the knockout screen" in rec["summary"]
    assert rec["figures"]["n_perturbed_cells"] > 0


def test_network_method_label_says_what_was_fitted():
    """The report names what infer_network fitted, not only the method's name."""
    import anndata as ad

    from scagents.agents.network import method_label
    from scagents.grn import infer_network

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6))
    x[:, 1] = x[:, 0] + 0.1 * rng.normal(size=200)
    a = ad.AnnData(x.astype(np.float32))
    infer_network(a)
    assert method_label(a.uns["grn"]["params"]) == (
        "extra-trees + random-forest importance signed by Spearman correlation")
    infer_network(a, tree_weight=1.0, trees="rf")
    assert method_label(a.uns["grn"]["params"]) == (
        "rank average of ridge and random-forest importance (trees weighted 1:1)")
    assert method_label({"method": "ensemble", "trees": {"fitted": False}}).startswith("ridge")
    assert method_label({"method": "ridge"}) == "ridge"
    a.obs["pseudotime"] = rng.uniform(size=200)
    infer_network(a, n_trees=5)
    assert method_label(a.uns["grn"]["params"]) == (
        "extra-trees + random-forest importance signed by Spearman correlation, with the cell time "
        "obs['pseudotime'] as one more feature")


def test_network_weight_scale_matches_the_weights():
    """The report's sentence on the weight scale says what the numbers are."""
    import anndata as ad

    from scagents.agents.network import weight_scale
    from scagents.grn import infer_network, network_edges

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6))
    x[:, 1] = x[:, 0] + 0.1 * rng.normal(size=300)
    labels = np.array(["non-targeting"] * 200 + ["G0"] * 50 + ["G2"] * 50)
    x[labels == "G0", 0] -= 3.0
    x[labels == "G0", 1] -= 3.0  # G0's knockout lowers G1: G0 activates G1
    a = ad.AnnData(x.astype(np.float32))
    a.var_names = [f"G{i}" for i in range(6)]
    a.obs["target_genes"] = labels
    ctrl = a[labels == "non-targeting"].copy()
    infer_network(ctrl)
    w = network_edges(ctrl)["weight"].abs()
    assert "percentile rank" in weight_scale(ctrl.uns["grn"]["params"]) and w.max() <= 1.0
    infer_network(a, perturbations="target_genes")
    note = weight_scale(a.uns["grn"]["params"])
    edges = network_edges(a)
    assert "log-odds-like" in note and "2·log(1 + max(|t| − 1.5, 0))" in note
    assert edges["weight"].abs().max() > 1.0  # not a rank in [0, 1]: the sentence says why
    top = edges.loc[(edges["source"] == "G0") & (edges["target"] == "G1"), "weight"]
    assert len(top) == 1 and top.iloc[0] > 0  # "+ activates", as the knockout shows
    assert weight_scale({"method": "correlation"}).endswith("correlation (−1 to 1).")
    assert weight_scale({}) == ""
