"""Held-out bookkeeping from facts: whatever kind word the user writes and however the data label
their perturbations, the goal's cells are found, held out of every model, and the report's
held-out sentence is computed from the label sets stored in the run."""

from __future__ import annotations

import json
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from scagents.agents.data import data_agent
from scagents.agents.policy import fallback_agent
from scagents.agents.report import held_out_sentence, report_agent
from scagents.agents.state import DataSummary, PolicySummary, RunOptions, initial_state

N_GOAL = 20
EXCLUDED = {"unassigned_or_multi": 10, "Multiplet": 6}

#: how the data label their perturbations: obs["perturbation_type"] of perturbed cells (None: no
#: column, the data layer assumes knockout by default)
LABELLINGS = {"no kind (default)": None, "CRISPRi (knockdown)": "knockdown",
              "knockout": "knockout", "CRISPRa (overexpression)": "overexpression"}
#: kind word in the goal → the kind it names
WORDS = {"knockdown": "knockdown", "CRISPRi": "knockdown", "knockout": "knockout",
         "overexpression": "overexpression"}
LOF = {"knockout", "knockdown"}


def _screen(path, data_kind: str | None) -> None:
    """A small screen: 60 control cells, G0..G7 perturbed (20 cells each; each lowers its own
    gene and a few others), and cells without a usable perturbation."""
    rng = np.random.default_rng(0)
    genes = [f"G{i}" for i in range(30)]
    labels = (["non-targeting"] * 60 + [f"G{i}" for i in range(8) for _ in range(N_GOAL)]
              + [lab for lab, n in EXCLUDED.items() for _ in range(n)])
    rate = np.full((len(labels), len(genes)), 4.0)
    for c, lab in enumerate(labels):
        if lab.startswith("G"):
            g = int(lab[1:])
            rate[c, g] = 0.5
            rate[c, (g * 7 + 3) % 30] *= 2.5
    obs = pd.DataFrame({"perturbation": labels}, index=[f"c{i}" for i in range(len(labels))])
    if data_kind is not None:
        obs["perturbation_type"] = ["control" if lab == "non-targeting" else data_kind
                                    for lab in labels]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ad.AnnData(rng.poisson(rate).astype(np.float32), obs=obs,
                   var=pd.DataFrame(index=genes)).write_h5ad(path)


@pytest.fixture(scope="module")
def screens(tmp_path_factory):
    root = tmp_path_factory.mktemp("screens")
    out = {}
    for name, kind in LABELLINGS.items():
        out[name] = root / f"{kind or 'default'}.h5ad"
        _screen(out[name], kind)
    return out


def _answer(path, goal: str, out) -> tuple[dict, DataSummary, PolicySummary]:
    opts = RunOptions(goal=goal, data=str(path), n_validation=2, n_proposals=2)
    state = initial_state(opts, out)
    state.update(data_agent(state))
    assert state["data"] is not None, state.get("stop_reason")
    state.update(fallback_agent(state))  # the baselines answer: no policy training needed here
    return (state, DataSummary.model_validate(state["data"]),
            PolicySummary.model_validate(state["policy"]))


@pytest.mark.parametrize("labelling", list(LABELLINGS))
@pytest.mark.parametrize("word", list(WORDS))
def test_goal_cells_held_out_for_every_kind_word_and_labelling(screens, tmp_path, labelling, word):
    data_kind = LABELLINGS[labelling] or "knockout"
    asked = WORDS[word]
    _, data, pol = _answer(screens[labelling], f"predict G0 {word}", tmp_path)
    # the same cells when the words agree in direction, or when the data's kind is only a default
    same_cells = (asked == data_kind or {asked, data_kind} <= LOF
                  or LABELLINGS[labelling] is None)
    models = set(pol.train_labels) | set(pol.fit_labels) | set(pol.validation_labels)
    # cells without a usable perturbation are never a perturbation of any model
    assert data.excluded == EXCLUDED and not models & set(EXCLUDED)
    if same_cells:
        assert data.goal_label == "G0" and pol.held_out == "G0"
        assert pol.held_out_labels == ["G0"] and pol.held_out_cells == N_GOAL
        assert "G0" not in models                                   # in no training set
        assert pol.evaluation is not None                           # checked against its cells
        assert data.perturbation == {**data.perturbation, "targets": ["G0"], "kind": data_kind}
        sentence = held_out_sentence(pol, f"G0 {data_kind}")
        assert sentence.startswith(f"The goal's perturbation (G0 {data_kind}) was held out: its "
                                   f"{N_GOAL} measured cells (label 'G0')")
    else:
        # an over-expression and a loss of function the data name are different experiments
        assert data.goal_label is None and pol.held_out is None and pol.held_out_labels == []
        assert pol.evaluation is None and "G0" in pol.fit_labels
        assert held_out_sentence(pol, f"G0 {asked}").startswith("The data hold no cells of G0")
    # a mismatch between the word and the data's label is named, in one line
    assert (data.goal_note != "") is (asked != data_kind)
    assert "\n" not in data.goal_note


def test_held_out_sentence_reports_a_leak_instead_of_asserting_it():
    pol = PolicySummary(status="fallback", held_out="G0", held_out_labels=["G0"],
                        held_out_cells=5, train_labels=["G1", "G2"], fit_labels=["G0", "G1", "G2"])
    assert "were used to train or fit a model" in held_out_sentence(pol, "G0 knockout")
    old = PolicySummary(status="fallback", evaluation={"mse": 0.1}, fit_labels=["G1"])
    assert "does not record which cells were held out" in held_out_sentence(old, "G0 knockout")


def test_report_held_out_sentence_and_observed_section(screens, tmp_path):
    state, data, pol = _answer(screens["CRISPRi (knockdown)"], "predict G0 knockout", tmp_path)
    state.update(report_agent(state))
    report = json.loads((tmp_path / "report.json").read_text())
    md = (tmp_path / "report.md").read_text()
    # the mismatch, the held-out fact and the excluded cells, in the notes
    assert report["notes"][0] == data.goal_note and "knockdown" in data.goal_note
    assert report["notes"][1] == held_out_sentence(pol, "G0 knockdown")
    assert any("16 cells carry no usable perturbation" in n for n in report["notes"])
    # the observed-vs-predicted section is there, from the same stored facts
    assert f"its {N_GOAL} cells (label 'G0') were held out" in report["evaluation"]["description"]
    assert "## Check against observed cells" in md
    # the headline comes first: the answer, its check against the observed cells, the method
    head = report["headline"]
    assert head[0].startswith("**Answer:** G0 knockdown is predicted to")
    n, k = int(pol.evaluation["same_sign_topk"]), int(pol.evaluation["k"])
    assert f"agrees with the {N_GOAL} observed cells of G0 knockdown in direction for {n} of the " \
           f"{k} most changed genes" in head[1]
    assert head[2].startswith(f"**Answered by:** {pol.method}")
    assert md.index(head[0]) < md.index("## Which model answered")


def test_goal_label_the_task_lost_is_said_not_swallowed(screens):
    from scagents.agents.policy import _goal_held
    from scagents.data import load
    from scagents.envs import ResponseTask

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task = ResponseTask.from_anndata(load(screens["knockout"]), modalities=["rna"])
    data = DataSummary(source="", description="", path="", n_cells=0, n_genes=0,
                       modalities=["rna"], goal={}, perturbation={"targets": ["G0"]},
                       goal_measured=True, goal_label="G0 guide 2", measured=[], candidates=[])
    held, note = _goal_held(task, data)
    # the data's own G0 knockout cells are still held out; the lost label is said
    assert [task.labels[i] for i in held] == ["G0"]
    assert "'G0 guide 2'" in note and "fewer than the 5" in note


def test_fallback_says_held_out_only_when_the_goal_was_measured(screens, tmp_path):
    # an unmeasured goal has no cells to hold out: the decision must not claim it was held out
    _, data, pol = _answer(screens["knockout"], "predict G20 knockout", tmp_path / "unmeasured")
    assert not data.goal_measured
    assert "refitted on" in pol.decision and "held out)" not in pol.decision
    _, data, pol = _answer(screens["knockout"], "predict G3 knockout", tmp_path / "measured")
    assert data.goal_measured and "the goal's perturbation held out)" in pol.decision


def test_additive_of_singles_sums_the_measured_single_effects_of_the_goal_kind():
    from types import SimpleNamespace

    from scagents.agents.policy import additive_of_singles
    from scagents.perturbation import Perturbation

    deltas = {"A1": [-1.0, 0.2, 0.0], "A2": [-0.6, 0.4, 0.0], "B": [0.1, -0.5, 0.3],
              "Aoe": [5.0, 5.0, 5.0], "A+B": [9.0, 9.0, 9.0]}
    perts = {"A1": (("A",), "knockout"), "A2": (("A",), "knockout"), "B": (("B",), "knockout"),
             "Aoe": (("A",), "overexpression"), "A+B": (("A", "B"), "knockout")}
    labels = list(deltas)
    task = SimpleNamespace(
        labels=labels, features={"rna": ["A", "B", "C"]},
        perturbations=[Perturbation(perts[lab][0], kind=perts[lab][1]) for lab in labels],
        observed_delta=lambda i, modality: np.asarray(deltas[labels[i]], float))
    total, used = additive_of_singles(task, ("A", "B"), "knockout")
    # A: mean of its two knockout labels (not the over-expression, not the measured pair) + B
    np.testing.assert_allclose(total, [-0.8 + 0.1, 0.3 - 0.5, 0.3])
    assert used == {"A": ["A1", "A2"], "B": ["B"]}
    assert additive_of_singles(task, ("A",), "knockout") is None       # not a combination
    assert additive_of_singles(task, ("A", "C"), "knockout") is None   # C was never perturbed


def test_combination_report_shows_the_additive_reference(screens, tmp_path):
    state, data, pol = _answer(screens["knockout"], "predict G0 and G1 knockout", tmp_path)
    assert pol.additive_labels == {"G0": ["G0"], "G1": ["G1"]}
    state.update(report_agent(state))
    report = json.loads((tmp_path / "report.json").read_text())
    md = (tmp_path / "report.md").read_text()
    pred = pd.read_csv(tmp_path / pol.prediction_path, index_col="gene")
    add = report["additive"]
    # each listed gene: the prediction and the stored sum of the observed singles, side by side
    for r in add["rows"]:
        assert r["predicted_delta"] == round(pred.loc[r["gene"], "delta"], 4)
        assert r["additive_delta"] == round(pred.loc[r["gene"], "additive_delta"], 4)
    # G0 and G1 lose most of their counts in their own single knockouts: the sum says so
    assert add["targets"]["G0"]["additive"] < -0.5 and add["targets"]["G1"]["additive"] < -0.5
    assert "## Additive reference: sum of the measured single effects" in md
    assert add["sentence"] in md and "G0 predicted" in add["sentence"]
    # a single-gene goal has no additive reference
    state1, _, pol1 = _answer(screens["knockout"], "predict G0 knockout", tmp_path / "one")
    assert pol1.additive_labels == {}
    state1.update(report_agent(state1))
    assert "additive" not in json.loads((tmp_path / "one" / "report.json").read_text())


def test_generic_answer_flags_only_the_mean_training_effect():
    from types import SimpleNamespace

    from scagents.agents.policy import generic_answer
    from scagents.perturbation import Perturbation

    genes = [f"G{i}" for i in range(30)]
    mean = np.linspace(-1.0, 1.0, 30)
    ctx = SimpleNamespace(genes=genes, baselines={"mean effect per kind": lambda t, k: mean})
    goal = Perturbation(("G1", "IRF1"), kind="knockout")
    flagged = generic_answer(pd.Series(1.02 * mean, index=genes), ctx, goal, "linear gene embedding")
    assert flagged == {"pearson": 1.0, "size_ratio": 1.02, "unplaced": ["IRF1"]}
    specific = mean.copy()
    specific[1] -= 3.0  # the measured target moves on its own: not the mean effect
    assert generic_answer(pd.Series(specific, index=genes), ctx, goal, "linear gene embedding") is None
    assert generic_answer(pd.Series(mean, index=genes), ctx, goal, "mean effect per kind") is None


def test_generic_answer_holds_the_twins_inputs_like_the_answer():
    """On the twin the answer is 0 on the milieu inputs (hold_inputs); the mean training effect is
    not, and with 4 of 22 genes differing the mean-effect answer went unflagged (Pearson 0.95 in a
    twin run whose linear model answered a pair with a target outside the genes worked on)."""
    from types import SimpleNamespace

    from scagents.agents.policy import generic_answer
    from scagents.perturbation import Perturbation

    genes = ["TCR", "IL18", *(f"G{i}" for i in range(20))]
    rng = np.random.default_rng(0)
    mean = rng.normal(0.0, 0.1, len(genes))
    mean[:2] = [1.5, -1.5]  # the inputs' measured mean change: sampling noise of the milieu
    answer = mean.copy()
    answer[:2] = 0.0  # held at the milieu's value, as _finish holds every answer
    ctx = SimpleNamespace(genes=genes, baselines={"mean effect per kind": lambda t, k: mean},
                          data=SimpleNamespace(inputs=["TCR", "IL18"]))
    goal = Perturbation(("G1", "STAT6"), kind="knockout")
    flagged = generic_answer(pd.Series(answer, index=genes), ctx, goal, "linear gene embedding")
    assert flagged is not None and flagged["pearson"] == 1.0 and flagged["unplaced"] == ["STAT6"]
    ctx.data = SimpleNamespace(inputs=[])  # real data: no inputs, nothing held
    assert generic_answer(pd.Series(answer, index=genes), ctx, goal, "linear gene embedding") is None


# ------------------------------------------------------ every label of a gene on one side
def _old_validation_split(kinds: list[str], candidates: list[int], n_validation: int, seed: int
                          ) -> list[int]:
    """The split of earlier versions, verbatim: labels drawn one by one (stratified by kind)."""
    rng = np.random.default_rng(seed)
    groups: dict[str, list[int]] = {}
    for i in candidates:
        groups.setdefault(kinds[i], []).append(i)
    queues = [[g[j] for j in rng.permutation(len(g))] for _, g in sorted(groups.items())]
    others = []
    while any(queues):
        for q in queues:
            if q:
                others.append(q.pop(0))
    n_val = min(n_validation, max(1, len(others) // 3))
    return [] if len(others) - n_val < 2 else sorted(others[:n_val])


#: labels of one data set: per promoter (Replogle), per guide, and single labels
LABELS = {"STAT2_P1": ("STAT2",), "STAT2_P2": ("STAT2",), "STAT2_P1P2": ("STAT2",),
          "IRF1g1": ("IRF1",), "IRF1g2": ("IRF1",), "IRF1_g1": ("IRF1",),
          "JAK2_P1": ("JAK2",), "JAK2_P2": ("JAK2",),
          **{f"G{i}": (f"G{i}",) for i in range(10)}}


def _sides_of_each_gene(val: list[int], targets: list[tuple[str, ...]]) -> dict[frozenset, set]:
    sides: dict[frozenset, set] = {}
    for i, t in enumerate(targets):
        sides.setdefault(frozenset(t), set()).add(i in set(val))
    return sides


def test_validation_split_never_splits_a_genes_labels():
    from scagents.agents.policy import validation_split

    targets = list(LABELS.values())
    kinds = ["knockout"] * len(targets)
    kinds[-1] = kinds[-2] = "overexpression"
    leaked = 0
    for seed in range(20):
        val, why = validation_split(kinds, list(range(len(targets))), 10, seed, targets=targets)
        assert why == "" and val
        assert all(len(s) == 1 for s in _sides_of_each_gene(val, targets).values()), seed
        # a third of the 13 genes (not of the 18 labels) is held out
        assert len({frozenset(targets[i]) for i in val}) == 13 // 3
        old = _old_validation_split(kinds, list(range(len(targets))), 10, seed)
        leaked += any(len(s) > 1 for s in _sides_of_each_gene(old, targets).values())
    assert leaked > 0   # the label-by-label draw did put one gene on both sides


def test_validation_split_with_one_label_per_gene_is_the_earlier_split():
    from scagents.agents.policy import validation_split

    kinds = ["knockout"] * 14 + ["overexpression"] * 5 + ["knockdown"] * 4
    targets = [(f"G{i}",) for i in range(len(kinds))]
    for seed in range(25):
        for cands in (list(range(len(kinds))), [i for i in range(len(kinds)) if i % 5]):
            for n_val in (2, 10):
                old = _old_validation_split(kinds, cands, n_val, seed)
                assert validation_split(kinds, cands, n_val, seed, targets=targets)[0] == old
                assert validation_split(kinds, cands, n_val, seed)[0] == old
    # pinned: the draw of earlier versions for seed 0
    assert validation_split(kinds, list(range(23)), 10, 0, targets=targets)[0] == \
        _old_validation_split(kinds, list(range(23)), 10, 0)


def test_validation_split_too_few_genes_counts_genes():
    from scagents.agents.policy import validation_split

    targets = [("A",), ("A",), ("B",), ("B",)]
    val, why = validation_split(["knockout"] * 4, list(range(4)), 10, 0, targets=targets)
    assert val == [] and why.startswith("the data hold 2 target gene set(s) (4 labels)")
    # label by label, the same data looked like enough to validate on
    assert validation_split(["knockout"] * 4, list(range(4)), 10, 0)[0] != []


def test_combinations_holding_a_validation_gene_stay_out_of_training():
    from scagents.agents.policy import combinations_aside

    targets = [("A",), ("A",), ("B",), ("A", "B"), ("B", "C"), ("C", "A"), ("D", "E")]
    assert combinations_aside(targets, [0, 1], list(range(7))) == [3, 5]
    assert combinations_aside(targets, [3], list(range(7))) == []   # a combination moves alone
    assert combinations_aside(targets, [0, 1], [0, 1, 2, 3]) == [3]   # candidates only


def test_validation_count_says_what_is_counted():
    from scagents.agents.policy import validation_count
    from scagents.envs import ResponseTask

    class _Task:
        def __init__(self, targets, kinds=None):
            from scagents.perturbation import Perturbation

            self.labels = list(targets)
            self.perturbations = [Perturbation(t, kind=(kinds or {}).get(lab, "knockout"))
                                  for lab, t in targets.items()]

        index = ResponseTask.index

    task = _Task(LABELS)
    assert validation_count(task, ["G0", "G1"]) == "2 validation perturbations"
    assert validation_count(task, ["G0"]) == "1 validation perturbation"
    assert validation_count(task, ["STAT2_P1", "STAT2_P2", "G3"]) == \
        "2 validation genes (3 labels)"
    # a knockout and an over-expression of one gene are two perturbations, not two genes
    both = _Task({**LABELS, "STAT2": ("STAT2",)}, kinds={"STAT2": "overexpression"})
    assert validation_count(both, ["STAT2_P1", "STAT2_P2", "STAT2"]) == \
        "2 validation perturbations (3 labels)"


def test_validation_split_keeps_kinds_apart_like_the_goals_labels():
    from scagents.agents.policy import validation_split

    targets = [("A",), ("A",), ("A",)] + [(f"G{i}",) for i in range(9)]
    kinds = ["knockout", "knockout", "overexpression"] + ["knockout"] * 9
    for seed in range(10):
        val = set(validation_split(kinds, list(range(12)), 10, seed, targets=targets)[0])
        assert (0 in val) == (1 in val)     # the two knockout labels of A move together


def _promoter_screen(path) -> None:
    """Six targets G0..G5, each with two promoter labels (``G1_P1``, ``G1_P2``), and G0 plain."""
    rng = np.random.default_rng(1)
    genes = [f"G{i}" for i in range(30)]
    labels = ["non-targeting"] * 60 + ["G0"] * N_GOAL + [
        f"G{i}_P{k}" for i in range(1, 10) for k in (1, 2) for _ in range(12)]
    rate = np.full((len(labels), len(genes)), 4.0)
    for c, lab in enumerate(labels):
        if lab.startswith("G"):
            g = int(lab[1:].split("_")[0])
            rate[c, g] = 0.5
            rate[c, (g * 7 + 3) % 30] *= 2.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ad.AnnData(rng.poisson(rate).astype(np.float32),
                   obs=pd.DataFrame({"perturbation": labels},
                                    index=[f"c{i}" for i in range(len(labels))]),
                   var=pd.DataFrame(index=genes)).write_h5ad(path)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_run_validates_whole_genes_and_says_so(tmp_path, seed):
    """The user's path: no promoter label of a validation gene is trained on, and the decision,
    the report's validation line and the interval's method count genes and labels."""
    path = tmp_path / "promoters.h5ad"
    _promoter_screen(path)
    opts = RunOptions(goal="predict G0 knockout", data=str(path), n_validation=3,
                      n_proposals=2, seed=seed)
    state = initial_state(opts, tmp_path / "out")
    state.update(data_agent(state))
    assert state["data"] is not None, state.get("stop_reason")
    state.update(fallback_agent(state))
    pol = PolicySummary.model_validate(state["policy"])
    gene = {lab: lab.split("_")[0] for lab in pol.validation_labels + pol.train_labels}
    val_genes = {gene[lab] for lab in pol.validation_labels}
    assert len(val_genes) == 3 and len(pol.validation_labels) == 6
    assert not val_genes & {gene[lab] for lab in pol.train_labels}
    assert pol.validation_count == "3 validation genes (6 labels)"
    # the fallback's choice: the lowest validation MSE, a mean over genes
    assert ("the lowest validation MSE, mean over the 3 held-out validation genes (6 labels) with "
            "each one's labels averaged first (") in pol.decision
    assert all(v["n_units"] == 3 and v["n"] == 6 for v in pol.validation.values())
    assert pol.interval is None or "3 validation genes (6 labels)" in pol.interval["method"]
    # the conformal rank counts genes: each gene's two promoter labels are one calibration unit
    assert pol.interval is None or (
        pol.interval["n_calibration"] == 3
        and "the labels of each of the 3 target gene sets count as one calibration unit"
        in pol.interval["method"])
    state.update(report_agent(state))
    result = json.loads((tmp_path / "out" / "report.json").read_text())
    assert "scored on 3 held-out validation genes (6 labels)" in result["validation"]["description"]
    assert ("means over the 3 genes (6 labels), each one's labels averaged first, of the MSE "
            "(lower is better; mse_sd its spread across the genes)") in result["validation"]["description"]
def test_a_policy_that_did_not_validate_never_answers_no_effect(screens, tmp_path, monkeypatch):
    # unmeasured goal: the evidence is the intervals of the prediction. A trained policy that
    # predicts no change fails validation and its intervals all include 0; it once answered
    # "no detectable effect" as the TRPO→PPO policy, and the planner skipped the fallback
    from scagents.agents import policy as pol_mod
    from scagents.agents.supervisor import plan_next

    def no_change(ctx, attempt):
        return (lambda targets, kind: np.zeros(len(ctx.genes))), {
            "steps": 256, "policy_path": None, "training_log": None}

    monkeypatch.setattr(pol_mod, "_train_policy", no_change)
    opts = RunOptions(goal="predict G20 knockout", data=str(screens["knockout"]), n_validation=2,
                      n_proposals=2, skip_network=True, max_policy_attempts=1)
    state = initial_state(opts, tmp_path)
    state.update(data_agent(state))
    state["integration"] = {"status": "skipped", "reason": "test"}
    state["network"] = {"status": "skipped", "reason": "test"}
    state.update(pol_mod.policy_agent(state))
    pol = PolicySummary.model_validate(state["policy"])
    assert pol.status == "not_validated"
    assert plan_next(state) == "fallback"


def test_data_with_only_the_goals_perturbation_answer_without_crashing(tmp_path):
    # control + the goal's perturbation only: nothing to train on. The policy agent once raised
    # "The split leaves 0 training and 1 test perturbations" and the run ended without a report
    from scagents.agents.policy import policy_agent

    rng = np.random.default_rng(0)
    rate = np.full((80, 30), 4.0)
    rate[60:, 0] = 0.5
    path = tmp_path / "one.h5ad"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ad.AnnData(rng.poisson(rate).astype(np.float32),
                   obs=pd.DataFrame({"perturbation": ["non-targeting"] * 60 + ["G0"] * 20},
                                    index=[f"c{i}" for i in range(80)]),
                   var=pd.DataFrame(index=[f"G{i}" for i in range(30)])).write_h5ad(path)
    opts = RunOptions(goal="predict G0 knockout", data=str(path), skip_network=True)
    state = initial_state(opts, tmp_path / "run")
    state.update(data_agent(state))
    state["integration"] = {"status": "skipped", "reason": "test"}
    state["network"] = {"status": "skipped", "reason": "--skip-network"}
    state.update(policy_agent(state))
    assert state["policy"]["status"] == "skipped" and "0 perturbation(s) besides" in state["policy"]["reason"]
    update = fallback_agent(state)  # no network to answer through: said, not raised
    assert update["stop_reason"].startswith("No prediction possible for G0 knockout")


def test_held_out_sentence_when_no_model_saw_perturbed_cells():
    pol = PolicySummary(status="unchecked", held_out_labels=["G0"], held_out_cells=20)
    assert held_out_sentence(pol, "G0 knockout") == (
        "The goal's perturbation (G0 knockout) was held out: no model was fitted on perturbed cells, "
        "and its 20 measured cells (label 'G0') check the prediction.")


# ---------------------------------------------------------------- the paired s.e. over genes
def _validation_rows(mse, units=None) -> pd.DataFrame:
    idx = [f"p{i}" for i in range(len(mse))]
    rows = pd.DataFrame({"mse": mse, "pearson_delta_topk": [0.5] * len(mse)}, index=idx)
    if units is not None:
        rows["target_group"] = units
    return rows


def test_compare_counts_a_genes_labels_as_one_unit():
    """Two promoter labels of one gene with identical errors are one unit of the paired s.e.:
    the verdict is that of the data with the gene once (label by label the duplicate would
    shrink the s.e. and pass the margin)."""
    from scagents.agents.policy import compare_to_baseline

    base = [0.50, 0.60, 0.70, 0.80]
    pol = [0.30, 0.65, 0.70, 0.75]   # paired differences -0.2, 0.05, 0, -0.05
    once = compare_to_baseline({"pol": _validation_rows(pol, list("ABCD")),
                                "b": _validation_rows(base)}, policy="pol", baselines=["b"])
    units = ["A knockout", "A knockout", "B knockout", "C knockout", "D knockout"]
    twice = {"pol": _validation_rows([pol[0], *pol], units), "b": _validation_rows([base[0], *base])}
    v = compare_to_baseline(twice, policy="pol", baselines=["b"])
    assert (v.paired_mean, v.paired_se) == pytest.approx((once.paired_mean, once.paired_se), abs=1e-15)
    assert (v.n_units, v.n_rows) == (4, 5) and (once.n_units, once.n_rows) == (4, 4)
    assert not v.checks["paired improvement > 1 s.e."] and not once.checks["paired improvement > 1 s.e."]
    # label by label (no units): the duplicated gene counts twice and passes, as before
    rows = {"pol": twice["pol"].drop(columns="target_group"), "b": twice["b"]}
    assert compare_to_baseline(rows, policy="pol", baselines=["b"]).checks[
        "paired improvement > 1 s.e."]
    scores = {"pol": {"mse": 0.6}, "b": {"mse": 0.66}}
    text = v.describe("pol", scores, 0.05, counted="4 validation genes (5 labels)")
    assert "best baseline (b), means over the 4 validation genes (5 labels), each one's labels " \
        "averaged first: " in text
    assert "s.e. over the same 4 genes (must be below" in text and "on the genes both score" in text
    assert "s.e. (must be below" in once.describe("pol", scores, 0.05)   # one label each: as before
    assert "labels" not in once.describe("pol", scores, 0.05)


def test_validation_rows_name_their_unit():
    """The unit of a validation row is its target gene set and kind, as the validation split's."""
    from scagents.agents.policy import target_group_key

    assert target_group_key(("B", "A"), "knockout") == target_group_key(("A", "B"), "knockout")
    assert target_group_key(("A",), "knockout") != target_group_key(("A",), "overexpression")


def test_compare_with_one_label_per_unit_is_unchanged():
    """Pinned from earlier versions (the paired s.e. over rows): identical with units."""
    from scagents.agents.policy import compare_to_baseline

    rng = np.random.default_rng(7)
    idx = [f"p{i}" for i in range(7)]
    base = pd.DataFrame({"mse": rng.uniform(0.3, 0.8, 7), "pearson_delta_topk": rng.uniform(0.2, 0.9, 7)},
                        index=idx)
    pol = pd.DataFrame({"mse": base["mse"].to_numpy() * rng.uniform(0.6, 1.05, 7),
                        "pearson_delta_topk": rng.uniform(0.3, 0.95, 7)}, index=idx)
    for rows in (pol, pol.assign(target_group=[f"G{i} knockout" for i in range(7)])):
        v = compare_to_baseline({"pol": rows, "b": base, "c": base * 1.1}, policy="pol",
                                baselines=["b", "c"])
        assert v.paired_mean == -0.04519503105175975 and v.paired_se == 0.02367071555164704
        assert v.relative_improvement == 0.0800702919454006 and v.validated
        diff = (pol["mse"] - base["mse"]).to_numpy()   # the earlier computation
        assert v.paired_se == diff.std(ddof=1) / np.sqrt(7)


# ------------------------------------------- every validation mean per unit, as the paired s.e.
def _label_summary(rows: pd.DataFrame) -> dict[str, float]:
    """``policy._summary`` before units (session 14): means over the labels."""
    out = {k: round(float(rows[k].mean()), 6) for k in
           ("mse", "pearson", "pearson_delta_topk", "direction_accuracy")}
    out["mse_sd"] = round(float(rows["mse"].std(ddof=1)) if len(rows) > 1 else 0.0, 6)
    if "target_direction" in rows and rows["target_direction"].notna().any():
        out["target_direction"] = round(float(rows["target_direction"].mean()), 6)
    out["n"] = float(len(rows))
    return out


def _label_compare(rows, *, policy, baselines, min_improvement=0.05):
    """``compare_to_baseline`` before units (session 14): the best baseline, the relative MSE,
    the Pearson-delta and the targets' direction averaged over labels (the paired s.e. per unit)."""
    from scagents.agents.policy import Verdict

    best = min(baselines, key=lambda k: (float(rows[k]["mse"].mean()), k))
    pol, base = rows[policy], rows[best].reindex(rows[policy].index)
    rel = 1.0 - float(pol["mse"].mean()) / max(float(base["mse"].mean()), 1e-12)
    units = (pol["target_group"].to_numpy() if "target_group" in pol.columns
             else np.asarray(pol.index))
    diff = (pol["mse"] - base["mse"]).groupby(units, sort=False).mean().to_numpy(float)
    mean = float(diff.mean())
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("inf")
    both = pol["pearson_delta_topk"].notna() & base["pearson_delta_topk"].notna()
    p_pol = float(pol.loc[both, "pearson_delta_topk"].mean()) if both.any() else float("nan")
    p_base = float(base.loc[both, "pearson_delta_topk"].mean()) if both.any() else float("nan")
    checks = {
        f"≥ {100 * min_improvement:.0f} % lower MSE": rel >= min_improvement,
        "paired improvement > 1 s.e.": bool(np.isfinite(se) and mean < -se),
        "Pearson-delta not worse": bool(np.isnan(p_base) or (np.isfinite(p_pol) and p_pol >= p_base)),
    }
    if "target_direction" in pol and pol["target_direction"].notna().any():
        t_pol = float(np.nanmean(pol["target_direction"]))
        t_base = (float(np.nanmean(base["target_direction"])) if "target_direction" in base
                  and base["target_direction"].notna().any() else float("nan"))
        checks["targets' own direction not worse"] = bool(np.isnan(t_base) or t_pol >= t_base)
    return Verdict(validated=all(checks.values()), best_baseline=best, relative_improvement=rel,
                   paired_mean=mean, paired_se=se, checks=checks, pearson_pair=(p_pol, p_base),
                   n_units=len(diff), n_rows=len(pol))


def _scored(rng, n: int, units: list[str] | None = None) -> pd.DataFrame:
    """Validation rows as ``_score_rows`` writes them, with NaN Pearson-deltas and targets."""
    rows = pd.DataFrame({"mse": rng.uniform(0.2, 0.9, n), "pearson": rng.uniform(0, 1, n),
                         "pearson_delta_topk": rng.uniform(0, 1, n),
                         "direction_accuracy": rng.uniform(0.3, 0.9, n),
                         "target_direction": rng.choice([0.0, 0.5, 1.0], n)},
                        index=[f"p{i}" for i in range(n)])
    rows.loc[rng.random(n) < 0.25, "pearson_delta_topk"] = np.nan
    rows.loc[rng.random(n) < 0.25, "target_direction"] = np.nan
    if units is not None:
        rows["target_group"] = units
    return rows


def test_one_label_per_unit_gives_the_earlier_means_and_verdicts_bit_for_bit():
    """Every unit one label (or no units): the validation table, the best baseline and every
    figure of the verdict are those of the label-by-label code of earlier versions, exactly."""
    from scagents.agents.policy import _summary, compare_to_baseline

    rng = np.random.default_rng(11)
    decisions = set()
    for trial in range(60):
        n = int(rng.integers(2, 12))
        singles = [f"G{i} knockout" for i in range(n)]
        for units in (singles, None):
            rows = {name: _scored(rng, n, units) for name in ("pol", "b", "c", "d")}
            rows["pol"]["mse"] = rows["b"]["mse"] * rng.uniform(0.5, 1.1, n)
            for name, r in rows.items():
                assert repr(_summary(r)) == repr(_label_summary(r)), (trial, name)  # NaN too
            v = compare_to_baseline(rows, policy="pol", baselines=["b", "c", "d"])
            old = _label_compare(rows, policy="pol", baselines=["b", "c", "d"])
            assert repr(v) == repr(old), trial     # every field, NaN included, bit for bit
            decisions.add(v.validated)
    assert decisions == {True, False}


def _gene_heavy() -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Gene A measured under 4 guide labels, B..F under one each (9 labels, 6 genes), and the
    same data with A once. The policy is far better on A and barely better elsewhere."""
    base = [0.5] * 4 + [3.0] * 5
    pol = [0.1] * 4 + [2.98, 2.97, 2.99, 2.98, 2.98]
    units = ["A knockout"] * 4 + [f"{g} knockout" for g in "BCDEF"]
    twice = {"pol": _validation_rows(pol, units), "b": _validation_rows(base)}
    once = {"pol": _validation_rows(pol[3:], units[3:]), "b": _validation_rows(base[3:])}
    return twice, once


def test_the_gate_weighs_every_gene_once():
    """Label by label, gene A's four guides carry the relative MSE past the 5 % margin; per gene
    the improvement is 3.2 %: the policy does not answer, as with A measured once."""
    from scagents.agents.policy import compare_to_baseline

    labels, once = _gene_heavy()
    v = compare_to_baseline(labels, policy="pol", baselines=["b"])
    w = compare_to_baseline(once, policy="pol", baselines=["b"])
    old = _label_compare(labels, policy="pol", baselines=["b"])
    assert old.validated and old.relative_improvement == pytest.approx(1 - 15.3 / 17)  # 10 %
    assert v.relative_improvement == pytest.approx(w.relative_improvement) == pytest.approx(1 - 15 / 15.5)
    assert not v.validated and not v.checks["≥ 5 % lower MSE"]
    assert v.checks["paired improvement > 1 s.e."] and (v.n_units, v.n_rows) == (6, 9)


def test_the_best_baseline_and_pearson_are_chosen_per_gene():
    """Baseline b is best on gene A's four labels, c on the other three genes: per label b has
    the lower mean MSE, per gene c. The Pearson-delta comparison weighs genes too."""
    from scagents.agents.policy import compare_to_baseline

    units = ["A knockout"] * 4 + ["B knockout", "C knockout", "D knockout"]
    b = _validation_rows([0.4] * 4 + [0.8] * 3)            # per label 0.571, per gene 0.7
    c = _validation_rows([0.6] * 7)                        # 0.6 either way
    pol = _validation_rows([0.5] * 7, units)
    pol["pearson_delta_topk"] = [0.9] * 4 + [0.3] * 3       # per label 0.643, per gene 0.45
    rows = {"pol": pol, "b": b, "c": c}
    assert _label_compare(rows, policy="pol", baselines=["b", "c"]).best_baseline == "b"
    v = compare_to_baseline(rows, policy="pol", baselines=["b", "c"])
    assert v.best_baseline == "c"
    assert v.pearson_pair == pytest.approx((0.45, 0.5))
    assert not v.checks["Pearson-delta not worse"]
    assert _label_compare(rows, policy="pol", baselines=["b", "c"]).checks["Pearson-delta not worse"]


def test_validation_table_means_are_per_gene():
    """The reported means: gene A's labels averaged first; mse_sd across genes; n counts labels,
    n_units genes; with A once, the same means."""
    from scagents.agents.policy import _summary

    labels, once = _gene_heavy()
    for rows in (labels["pol"], once["pol"]):
        rows["pearson"] = rows["direction_accuracy"] = rows["mse"] / 10
    s, t = _summary(labels["pol"]), _summary(once["pol"])
    assert s["mse"] == t["mse"] == pytest.approx(2.5) and _label_summary(labels["pol"])["mse"] == \
        pytest.approx(15.3 / 9)
    assert s["mse_sd"] == t["mse_sd"]
    assert (s["n"], s["n_units"]) == (9.0, 6.0) and "n_units" not in t


def test_a_single_validation_perturbation_has_no_standard_error_and_says_so():
    """One validation unit: no s.e. can be formed; the sentence says so instead of '± inf s.e.'."""
    from scagents.agents.policy import compare_to_baseline

    v = compare_to_baseline({"pol": _validation_rows([0.4], ["A"]), "b": _validation_rows([0.5])},
                            policy="pol", baselines=["b"])
    assert not v.checks["paired improvement > 1 s.e."]
    text = v.describe("pol", {"pol": {"mse": 0.4}, "b": {"mse": 0.5}}, 0.05)
    assert "inf" not in text
    assert "paired MSE difference -0.1 on a single validation perturbation (no standard error from one" in text
