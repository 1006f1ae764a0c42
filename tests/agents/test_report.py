"""The report's headline (answer, check, method) and the twin check leave model inputs out."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scagents.agents.report import headline, twin_check
from scagents.agents.state import PolicySummary


def _truth() -> pd.DataFrame:
    # TCR is a model input (set by the milieu): its count change is the largest but not a response
    return pd.DataFrame({"delta": [0.9, -0.6, 0.4, -0.3, 0.05],
                         "is_input": [True, False, False, False, False]},
                        index=["TCR", "STAT1", "GATA3", "TBX21", "IL4"])


def test_twin_check_never_lists_or_scores_model_inputs():
    pred = pd.Series({"TCR": -0.9, "STAT1": -0.5, "GATA3": 0.3, "TBX21": 0.2, "IL4": 0.01})
    tc = twin_check(pred, _truth(), label="STAT1 knockout", k=20)
    listed = [r["gene"] for r in tc["top_up"] + tc["top_down"]]
    assert "TCR" not in listed and set(listed) == {"STAT1", "GATA3", "TBX21", "IL4"}
    # 4 responding genes; TBX21 is the one in the wrong direction (TCR would be a second)
    assert tc["k"] == 4 and tc["metrics"]["sign_agreement_top4"] == 0.75
    assert "4 responding genes" in tc["description"] and "TCR" in tc["description"]


def _result(**kw) -> dict:
    base = {"top_up": [{"gene": "GATA3", "delta": 0.3}], "top_down": [{"gene": "TBX21",
                                                                      "delta": -0.2}],
            "min_effect": 0.01}
    return {**base, **kw}


def test_headline_answer_then_check_then_method():
    pol = PolicySummary(status="fallback", method="mean effect per kind",
                        validation_labels=["A", "B", "C"], held_out="STAT1",
                        held_out_labels=["STAT1"], held_out_cells=120)
    ev = {"metrics": {"pearson_delta_topk": 0.6}, "k": 20, "same_sign": 14}
    lines = headline(_result(evaluation=ev), pol, "STAT1 knockout",
                     targets={"STAT1": -0.8})
    assert lines[0] == ("**Answer:** STAT1 knockout is predicted to raise GATA3 (+0.30) and lower "
                        "TBX21 (-0.20).")
    assert lines[1] == ("**How far to trust it:** the prediction agrees with the 120 observed "
                        "cells of STAT1 knockout in direction for 14 of the 20 most changed genes "
                        "(partial agreement: trust the strongest changes only).")
    assert lines[2].startswith("**Answered by:** mean effect per kind, because the TRPO→PPO "
                               "policy did not beat the baselines on 3 held-out")


def test_headline_says_when_a_knocked_out_target_goes_up():
    pol = PolicySummary(status="validated", method="TRPO→PPO policy", validation_labels=["A"])
    tc = {"k": 19, "metrics": {"sign_agreement_top19": 18 / 19}}
    lines = headline(_result(twin_check=tc), pol, "STAT1 knockout", kind="knockout",
                     targets={"STAT1": 0.48})
    assert "for 18 of the 19 most changed genes (good agreement)" in lines[1]
    assert "It predicts STAT1 (+0.48) itself to move against its own knockout" in lines[1]
    # an over-expressed target that goes up is as expected
    ok = headline(_result(twin_check=tc), pol, "STAT1 overexpression", kind="overexpression",
                  targets={"STAT1": 0.48})
    assert "against" not in ok[1]


def test_headline_without_measured_cells_uses_validation():
    pol = PolicySummary(status="validated", method="TRPO→PPO policy",
                        validation_labels=["A", "B"],
                        validation={"TRPO→PPO policy": {"direction_accuracy": 0.7}})
    lines = headline(_result(top_up=[], top_down=[]), pol, "X knockout")
    assert lines[0] == "**Answer:** X knockout is predicted to change no gene by more than 0.01."
    assert "no cells of it were measured" in lines[1] and "70 %" in lines[1]


def test_headline_of_an_unmeasured_goal_says_what_the_direction_accuracy_counts():
    # the validation's direction accuracy is three-class over all genes: "no change" scores on
    # every unchanged gene, so 38 % is no skill when the reference also gets 38 %
    pol = PolicySummary(status="fallback", method="combination (stacked)",
                        validation_labels=["A", "B"],
                        validation={"combination (stacked)": {"direction_accuracy": 0.378},
                                    "no change (reference)": {"direction_accuracy": 0.378}})
    line = headline(_result(), pol, "X knockout")[1]
    assert "of the most changed genes" not in line
    assert ("labelled 38 % of all genes right as up, down or unchanged (|change| > 0.05), where "
            "predicting no change at all gets 38 %: no better than that.") in line


def test_validation_sentences_say_what_they_averaged_only_when_genes_have_several_labels():
    """'mean over the 3 genes (6 labels)' where a validation gene has several labels; the
    sentences of earlier versions where every gene has one."""
    from scagents.agents.report import validation_units

    scores = {"combination (stacked)": {"direction_accuracy": 0.62},
              "no change (reference)": {"direction_accuracy": 0.378}}
    labels = ["A_P1", "A_P2", "B_P1", "B_P2", "C_P1", "C_P2"]
    pol = PolicySummary(status="fallback", method="combination (stacked)", validation_labels=labels,
                        validation_count="3 validation genes (6 labels)", validation=scores)
    assert validation_units(pol) == "3 genes (6 labels)"
    line = headline(_result(), pol, "X knockout")[1]
    assert ("on 3 other held-out validation genes (6 labels) this method labelled 62 % of all genes "
            "right as up, down or unchanged (|change| > 0.05; mean over the 3 genes (6 labels), "
            "each one's labels averaged first), where predicting no change") in line
    one = pol.model_copy(update={"validation_labels": ["A", "B", "C"],
                                 "validation_count": "3 validation perturbations"})
    assert validation_units(one) == ""
    assert "(|change| > 0.05), where predicting no change" in headline(_result(), one, "X knockout")[1]


def test_trust_verdict_rests_on_the_genes_that_clear_the_noise():
    # 19 most changed genes, only 4 clear the noise and 3 of those have the right sign: the
    # verdict must not be "poor agreement ... do not rely" because noise-level genes disagree
    pol = PolicySummary(status="fallback", method="combination (stacked)", validation_labels=["A"])
    tc = {"k": 19, "metrics": {"sign_agreement_top19": 11 / 19}, "k_clear": 4, "same_sign_clear": 3}
    line = headline(_result(twin_check=tc), pol, "STAT1 knockout")[1]
    assert "for 11 of the 19 most changed genes; only 4 of them change beyond the noise" in line
    assert "3 of those 4 right (too few to tell from chance" in line and "do not rely" not in line
    five = {**tc, "k_clear": 5, "same_sign_clear": 4}
    assert "4 of those 5 right (good agreement)" in headline(_result(twin_check=five), pol, "STAT1 knockout")[1]
    one = {**tc, "k_clear": 1, "same_sign_clear": 1}  # one gene right is a coin flip, not "good agreement"
    assert "good agreement" not in headline(_result(twin_check=one), pol, "STAT1 knockout")[1]
    none = {**tc, "k_clear": 0, "same_sign_clear": 0}
    assert "none of them changes beyond the noise" in headline(_result(twin_check=none), pol,
                                                               "STAT1 knockout")[1]
    ev = {"metrics": {}, "k": 20, "same_sign": 20, "k_clear": 20, "same_sign_clear": 20}
    pol.held_out_cells = 444
    assert "for 20 of the 20 most changed genes (good agreement)." in headline(
        _result(evaluation=ev), pol, "STAT1 knockout")[1]


def test_twin_check_counts_the_top_genes_that_clear_the_noise():
    pred = pd.Series({"TCR": -0.9, "STAT1": -0.5, "GATA3": 0.3, "TBX21": 0.2, "IL4": 0.01})
    tc = twin_check(pred, _truth(), label="STAT1 knockout", k=20, cleared=["STAT1", "TBX21", "TCR"])
    assert tc["k_clear"] == 2 and tc["same_sign_clear"] == 1  # TBX21 predicted up, simulated down
    assert "k_clear" not in twin_check(pred, _truth(), label="STAT1 knockout", k=20)


def test_additive_comparison_puts_the_sum_of_singles_beside_a_shrunken_prediction():
    from scagents.agents.report import additive_comparison

    # the measured singles sum to STAT1 -1.55; the prediction shrinks it to -0.30 and flips IRF8
    add = pd.Series({"STAT1": -1.55, "IRF1": -0.8, "GBP1": -0.6, "IRF8": 0.4, "TCR": 0.9,
                     "CXCL10": -0.3})
    pred = pd.Series({"STAT1": -0.30, "IRF1": -0.2, "GBP1": -0.1, "IRF8": -0.1, "TCR": -0.9,
                      "CXCL10": -0.05})
    out = additive_comparison(pred, add, ["STAT1", "IRF1"], kind="knockout",
                              labels={"STAT1": ["STAT1g1", "STAT1g2"], "IRF1": ["IRF1"]},
                              inputs=["TCR"])
    assert [r["gene"] for r in out["rows"]][:2] == ["STAT1", "IRF1"]
    assert "TCR" not in [r["gene"] for r in out["rows"]]  # a model input is set, not predicted
    assert out["k"] == 5 and out["same_sign"] == 4  # IRF8 is predicted the other way
    assert next(r for r in out["rows"] if r["gene"] == "IRF8")["same_direction"] == "NO"
    assert out["targets"]["STAT1"] == {"predicted": -0.3, "additive": -1.55}
    assert "STAT1 predicted -0.30 vs additive -1.55" in out["sentence"]
    assert "4 of the 5 genes" in out["sentence"]
    ratio = float(np.linalg.norm(pred.drop("TCR")) / np.linalg.norm(add.drop("TCR")))
    assert out["norm_ratio"] == round(ratio, 4) and f"{ratio:.2f} times" in out["sentence"]
    assert "'STAT1g1', 'STAT1g2', averaged" in out["description"]


def test_headline_names_the_additive_reference_of_a_combination():
    add = {"same_sign": 19, "k": 20, "norm_ratio": 0.13}
    pol = PolicySummary(status="fallback", method="linear gene embedding", validation_labels=["A"])
    head = headline(_result(additive=add), pol, "STAT1+IRF1 knockout")
    assert ("additive reference), it has the sign of 19 of that sum's 20 most changed genes and "
            "0.13 times its size.") in head[1]
    assert "additive" not in headline(_result(), pol, "STAT1 knockout")[1]


def test_headline_says_when_the_answer_is_the_mean_training_effect():
    # a target outside the genes worked on cannot be placed: the answer falls back to the mean effect
    pol = PolicySummary(status="fallback", method="linear gene embedding", validation_labels=["A", "B"],
                        validation={"linear gene embedding": {"direction_accuracy": 0.7}},
                        generic={"pearson": 1.0, "size_ratio": 1.0, "unplaced": ["IRF1"]})
    line = headline(_result(top_up=[], top_down=[]), pol, "STAT1+IRF1 knockout")[1]
    assert "in effect, the mean effect of the training perturbations" in line
    assert "IRF1 is not among the genes worked on" in line
    pol.generic = None
    assert "mean effect of the training" not in headline(_result(top_up=[], top_down=[]), pol,
                                                         "STAT1+IRF1 knockout")[1]


def test_headline_points_a_generic_combination_to_the_additive_reference():
    # Papalexi STAT1+IRF1: IRF1 cannot be placed, the answer is the mean effect (STAT1 -0.30) while
    # the sum of the measured singles holds STAT1's own knockout (-3.30)
    add = {"same_sign": 12, "k": 20, "norm_ratio": 0.2,
           "targets": {"STAT1": {"predicted": -0.30, "additive": -3.30}}}
    pol = PolicySummary(status="fallback", method="linear gene embedding", validation_labels=["A"],
                        generic={"pearson": 1.0, "size_ratio": 1.0, "unplaced": ["IRF1"]})
    line = headline(_result(additive=add), pol, "STAT1+IRF1 knockout")[1]
    assert ("Unlike this answer, the additive reference (column additive_delta of the prediction file, "
            "and its section below) uses each target's own measured single effect (STAT1 -3.30 in it "
            "vs -0.30 here); it assumes the targets act independently (no interaction).") in line
    pol.generic = None  # a specific answer: the reference is set beside it, not pointed to
    assert "Unlike this answer" not in headline(_result(additive=add), pol, "STAT1+IRF1 knockout")[1]


def _tiny_run(tmp_path, *, log: list[dict], target: str = "STAT1", network: dict | None = None,
              twin: bool = False, **policy) -> dict:
    """The result dictionary of a small synthetic run (40 cells × 6 genes, no integration, no
    network unless ``network``) of the goal "predict ``target`` knockout" whose policy summary is
    ``policy``."""
    import anndata as ad
    import mudata as md

    from scagents.agents.report import build_result
    from scagents.agents.state import DataSummary, RunOptions

    rng = np.random.default_rng(0)
    genes = ["STAT1", "IRF1", "GBP1", "CXCL10", "ACTB", "B2M"]
    obs = pd.DataFrame({"perturbation": ["control"] * 20 + [f"{target} knockout"] * 20,
                        "is_control": [True] * 20 + [False] * 20},
                       index=[f"c{i}" for i in range(40)])
    rna = ad.AnnData(rng.poisson(5, size=(40, 6)).astype(np.float32), obs=obs,
                     var=pd.DataFrame(index=genes))
    md.MuData({"rna": rna}).write(tmp_path / "data.h5mu")
    delta = np.array([-0.03, 0.02, -0.015, 0.012, 0.001, -0.002])
    pd.DataFrame({"gene": genes, "control_mean": 1.5, "delta": delta, "perturbed_mean": 1.5 + delta,
                  "delta_lower": delta - 0.2, "delta_upper": delta + 0.2,
                  "clears_noise": False}).to_csv(tmp_path / "prediction.csv", index=False)
    data = DataSummary(source="file", description="tiny.h5ad", path="data.h5mu", n_cells=40,
                       n_genes=6, modalities=["rna"],
                       goal={"text": f"predict {target} knockout", "targets": [target],
                             "kind": "knockout"},
                       perturbation={"targets": [target], "kind": "knockout"},
                       goal_measured=True, measured=[f"{target} knockout"], candidates=[],
                       is_counts=True, truth_path="twin_truth.csv" if twin else None)
    if twin:  # the twin's own simulation of the goal
        pd.DataFrame({"delta": -delta}, index=pd.Index(genes, name="gene")).to_csv(
            tmp_path / "twin_truth.csv")
    state = {"options": RunOptions(goal="predict STAT1 knockout", progress=False).model_dump(),
             "out_dir": str(tmp_path), "data": data.model_dump(),
             "integration": {"status": "skipped",
                             "reason": "single-modality data: nothing to integrate"},
             "network": network or {"status": "skipped", "reason": "--skip-network"},
             "policy": PolicySummary(prediction_path="prediction.csv", **policy).model_dump(),
             "log": log}
    return build_result(state)


_NO_EFFECT = {
    "status": "no_effect", "method": "mean effect per kind",
    "reason": "the goal's observed change does not clear its noise floor, so the policy was not "
              "trained",
    "validation": {"mean effect per kind": {"mse": 0.02}, "linear": {"mse": 0.03},
                   "no change (reference)": {"mse": 0.01}}, "validation_labels": ["A", "B"],
    "train_labels": ["C", "D"], "fit_labels": ["C", "D"], "held_out": "STAT1 knockout",
    "held_out_labels": ["STAT1 knockout"], "held_out_cells": 20,
    "evaluation": {"mse": 0.02, "pearson": 0.4, "k": 6, "same_sign_topk": 5, "k_clear": 0,
                   "same_sign_clear": 0},
    "evidence": {"kind": "observed", "detectable": False, "n_clear": 0, "n_genes": 6,
                 "cleared": [], "method": "bootstrap over cells",
                 "needed": "To detect an effect: about 400 cells per condition (now 20)."},
    "interval": {"level": 0.8, "q": 1.0, "method": "split-conformal", "n_calibration": 2}}
_LOG = [{"agent": "data", "status": "done", "summary": "loaded"},
        {"agent": "integration", "status": "skipped",
         "summary": "single-modality data: nothing to integrate"},
        {"agent": "network", "status": "skipped", "summary": "--skip-network"}]


def test_a_run_without_a_detectable_effect_says_so_everywhere(tmp_path):
    from scagents.report import render_markdown

    result = _tiny_run(tmp_path, log=[*_LOG, {"agent": "policy", "status": "no_effect",
                                              "summary": _NO_EFFECT["reason"]}], **_NO_EFFECT)
    text = render_markdown(result)
    # STAT1 is predicted at -0.03: "no gene by more than 0.01" would be false; the lists are empty
    # because nothing observed clears the noise
    assert result["headline"][0].startswith("**Answer:** no detectable effect: no gene's observed "
                                            "change under STAT1 knockout in its 20 cells")
    assert "by more than 0.01" not in text
    # the evaluation section once overwrote the evidence: the proposals said "no untested
    # candidate is left" although none was sought
    assert "None: with no detectable effect there is nothing to follow up." in text
    assert "No untested candidate is left" not in text
    assert "none of them changes beyond the noise" in result["evaluation"]["description"]
    rows = {r["agent"]: r["produced"] for r in result["agents"]}
    assert rows["policy"].startswith("no TRPO→PPO policy trained") and "proposals" not in rows["policy"]
    assert rows["integration"].startswith("nothing — single-modality") and "joint" not in rows["integration"]
    assert rows["data"].startswith("goal parsed, data loaded (")
    # captions say what was drawn: a PCA of RNA coloured by condition (no clusters, no fates)
    caption = result["captions"]["embedding"]
    assert "principal components" in caption and "joint" not in caption
    assert "cluster" not in caption and "fate" not in caption
    assert "observed change in the goal's measured cells" in result["captions"]["intervals"]
    assert "for reference only" in result["captions"]["effects"]
    assert f"![{caption}](embedding.png)" in text
    assert result["headline"][2] == (
        "**Answered by:** mean effect per kind (its prediction kept for reference only), because the "
        "goal's observed change does not clear its noise floor, so the policy was not trained; of "
        "the baselines it had the lowest validation error on 2 held-out validation perturbations.")


def test_the_agent_table_credits_proposals_to_the_fallback(tmp_path):
    from scagents.agents.report import agent_rows

    pol = PolicySummary(status="not_validated", method="combination", policy_path="policy.pt",
                        validation={"combination": {"mse": 0.02}},
                        proposals=[{"rank": 1, "perturbation": "X knockout", "score": 1.0,
                                    "uncertainty": 0.1, "rationale": "r"}])
    log = [{"agent": "policy", "status": "not_validated", "summary": "did not beat"},
           {"agent": "fallback", "status": "fallback", "summary": ""}]
    rows = {r["agent"]: r["produced"] for r in agent_rows(log, pol, {"policy": "policy.pt",
                                                                     "fallback": "prediction.csv"})}
    assert rows["policy"].startswith("trained TRPO→PPO policy, candidates validated, its own "
                                     "prediction (not the answer")
    assert "proposals" not in rows["policy"] and "proposals" in rows["fallback"]


def test_a_knocked_out_gene_outside_the_measured_genes_is_said_so(tmp_path):
    # SPI1 was perturbed (its cells are in the data) but its RNA is not among the genes: the
    # network section once ended "The strongest touching SPI1:" above no table
    from scagents.report import render_markdown

    measured = {**_NO_EFFECT, "status": "fallback", "held_out_labels": ["SPI1 knockout"],
                "held_out": "SPI1 knockout"}
    net = {"status": "done", "method": "ridge", "n_edges": 12, "neighbourhood": []}
    result = _tiny_run(tmp_path, log=_LOG, target="SPI1", network=net, **measured)
    text = render_markdown(result)
    assert "The strongest touching SPI1" not in text
    assert ("No edge touches SPI1: it is not among the genes measured and worked on."
            in result["network"]["description"])
    assert any(n.startswith("SPI1 is not among the genes measured and worked on: the prediction "
                            "cannot show its own change under the knockout") for n in result["notes"])



def test_headline_of_an_unchecked_network_answer_says_why_it_answers():
    pol = PolicySummary(status="unchecked", method="network propagation",
                        reason="not validated: checked only against the goal's own observed cells "
                               "(below)")
    line = headline(_result(), pol, "STAT1 knockout")[2]
    assert "status unchecked" not in line
    assert line == ("**Answered by:** network propagation, because too few perturbations were "
                    "measured to train and validate a predictor, and it needs no training; its "
                    "prediction is not validated: checked only against the goal's own observed "
                    "cells (below).")


def test_stimulation_hyper_parameters_are_written_in_words():
    from scagents.agents.report import _hyper_parameters

    chosen = (("similarity-weighted shift", 0.25), ("similarity-weighted linear", (0.5, 1.0)))
    assert _hyper_parameters(chosen) == ("hyper-parameters similarity-weighted shift 0.25, "
                                         "similarity-weighted linear (0.5, 1)")
    assert _hyper_parameters(0.3) == "hyper-parameter 0.3"
    # the run stores them as text (the repr): read back, not printed as a tuple
    assert _hyper_parameters(repr(chosen)) == _hyper_parameters(chosen)
    assert _hyper_parameters("0.25") == "hyper-parameter 0.25"
    assert _hyper_parameters("auto") == "hyper-parameter auto"



def test_twin_notes_say_simulated_not_measured(tmp_path):
    fitted = {**_NO_EFFECT, "fit_labels": ["C", "STAT1 overexpression"]}
    result = _tiny_run(tmp_path, log=_LOG, twin=True, **fitted)
    note = next(n for n in result["notes"] if n.startswith("Other perturbations of the same gene"))
    assert "were simulated and used for fitting" in note and "measured" not in note



def test_a_no_effect_fallback_row_does_not_call_its_prediction_the_answer():
    from scagents.agents.report import agent_rows

    pol = PolicySummary(status="no_effect", method="combination")
    log = [{"agent": "policy", "status": "not_validated", "summary": "did not beat"},
           {"agent": "fallback", "status": "no_effect", "summary": "no gene clears"}]
    rows = {r["agent"]: r["produced"] for r in agent_rows(log, pol, {})}
    assert rows["fallback"].startswith("a baseline's prediction (kept for reference: no "
                                       "detectable effect)")



def test_the_cell_plot_marks_the_goals_cells_held_out_only_when_they_were():
    from scagents.agents.report import _conditions

    obs = pd.DataFrame({"perturbation": ["control", "STAT1 knockout", "IRF1 knockout"],
                        "is_control": [True, False, False]})
    pert = {"targets": ["STAT1"], "kind": "knockout"}
    assert _conditions(obs, pert)[1] == "STAT1 knockout (held out)"
    assert _conditions(obs, pert, held_out=False) == ["control", "STAT1 knockout", "IRF1 knockout"]


def test_stimulation_validation_groups_are_named_as_cell_types():
    # Kang 2018: the inner validation labels are "B STIM" …; the report names the cell types
    from scagents.agents.report import _stimulation_result, stimulation_group_names

    st = {"kind": "cell_type", "treatment": "STIM", "pooled": False,
          "trained_on": {"CD14 Mono": ["B", "CD4 T", "NK"]}, "control_cells": 50}
    pol = PolicySummary(status="validated", method="mean shift",
                        validation={"mean shift": {"mse": 0.1}},
                        validation_labels=["B STIM", "CD4 T STIM", "NK STIM"],
                        held_out_labels=["CD14 Mono STIM"], held_out_cells=80, stimulation=st)
    assert stimulation_group_names(pol) == ["B cells", "CD4 T cells", "NK cells"]
    # a run that did not record the treatment: the groups it was trained on name the labels
    old = pol.model_copy(update={"stimulation": {k: v for k, v in st.items() if k != "treatment"}})
    assert stimulation_group_names(old) == ["B cells", "CD4 T cells", "NK cells"]
    result = {"goal": {"text": "g"}, "method": {"name": "mean shift", "description": ""},
              "validation": {"description": ""}, "notes": [], "headline": [""]}
    _stimulation_result(result, pol, None, "IFN-β stimulation of CD14 Mono")
    text = result["validation"]["description"]
    assert "3 cell types, held out in turn (B cells, CD4 T cells, NK cells)" in text
    assert "STIM" not in text
    times = pol.model_copy(update={"validation_labels": ["2h STIM"],
                                   "stimulation": {**st, "kind": "time"}})
    assert stimulation_group_names(times) == ["time point 2h"]


def test_the_share_that_clears_the_noise_is_worded_from_the_numbers():
    # 19 of 20 clear: nearly all, not "only 19"; 4 of 19: fewer than half, "only 4"
    pol = PolicySummary(status="fallback", method="combination (stacked)", validation_labels=["A"],
                        held_out_cells=444)
    ev = {"metrics": {}, "k": 20, "same_sign": 18, "k_clear": 19, "same_sign_clear": 18}
    line = headline(_result(evaluation=ev), pol, "STAT1 knockout")[1]
    assert "; 19 of them change beyond the noise" in line and "only 19" not in line
    tc = {"k": 19, "metrics": {"sign_agreement_top19": 11 / 19}, "k_clear": 4, "same_sign_clear": 3}
    assert "only 4 of them change" in headline(_result(twin_check=tc), pol, "STAT1 knockout")[1]
    from scagents.agents.report import _clear_clause

    assert _clear_clause(ev) == " (19 of them change beyond the noise; of those it has 18 right)"
    assert _clear_clause({**ev, "k_clear": 9}).startswith(" (only 9 of them change")
