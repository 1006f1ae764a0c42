"""Which model answers: the validation rule, the fallback's choice and the twin check.

The policy's training is replaced by fakes (an oracle, or a copy of the best baseline) so that each
branch of the decision is forced quickly; the rest of the agents run for real on a small twin.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scagents.agents.policy as policy_mod
from scagents.agents.data import data_agent
from scagents.agents.policy import POLICY, compare_to_baseline, fallback_agent, policy_agent
from scagents.agents.report import report_agent, twin_check
from scagents.agents.state import PolicySummary, RunOptions, initial_state
from scagents.agents.supervisor import allowed_moves


@pytest.fixture(scope="module")
def base_state(tmp_path_factory):
    opts = RunOptions(goal="predict IFNG knockout", n_cells=200, n_train_cells=30,
                      policy_steps=512)
    st = initial_state(opts, tmp_path_factory.mktemp("decision"))
    st.update(data_agent(st))
    st["integration"] = {"status": "skipped", "reason": "not needed here"}
    st["network"] = {"status": "skipped", "reason": "not needed here"}
    return st


def _fresh(base_state, tmp_path):
    """A copy of the state in its own run folder (the agents write files there)."""
    import shutil

    for f in Path(base_state["out_dir"]).iterdir():
        if f.is_file():
            shutil.copy(f, tmp_path / f.name)
    return {**base_state, "out_dir": str(tmp_path), "log": []}


def _fake_training(make_predict):
    def fake(ctx, attempt):
        return make_predict(ctx), {"steps": 0, "policy_path": None, "training_log": None}
    return fake


def _oracle_mse(ctx) -> float:
    """The oracle's validation MSE once the agent holds the twin's clamped inputs at 0
    (:func:`scagents.twin.milieu.hold_inputs`): what the inputs' observed sampling noise costs."""
    import numpy as np

    out = []
    for label in ctx.val_labels:
        p = ctx.task.perturbations[ctx.task.index(label)]
        obs = np.asarray(ctx.held.observed_delta(label, modality="rna"), float)
        held = [i for i, g in enumerate(ctx.genes) if g in ctx.data.inputs and g not in p.targets]
        err = np.zeros_like(obs)
        err[held] = obs[held]
        out.append(float(np.mean(err ** 2)))
    return float(np.mean(out))


def _oracle(ctx):
    """Predicts the held-out perturbations' observed change exactly (beats every baseline); for
    anything it has no observation of (e.g. proposed combinations) it predicts no change."""
    import numpy as np

    from scagents.errors import PerturbationError
    from scagents.perturbation import Perturbation

    def predict(targets, kind):
        try:
            return ctx.held.observed_delta(Perturbation(tuple(targets), kind=kind), modality="rna")
        except PerturbationError:
            return np.zeros(len(ctx.genes))
    return predict


def _best_baseline(ctx):
    """Name of the candidate baseline with the lowest validation MSE (what the rule compares to)."""
    scores = policy_mod._validate(ctx, ctx.baselines)[1]
    return min(ctx.baselines, key=lambda k: (scores[k]["mse"], k))


def _near_best(ctx):
    """The best-validating baseline's prediction, 1 % smaller: within its validation noise. The
    baseline is looked up at the first call: the agent fits the candidates beside the training."""
    chosen: dict = {}

    def predict(targets, kind):
        if "best" not in chosen:
            chosen["best"] = ctx.baselines[_best_baseline(ctx)]
        return 0.99 * chosen["best"](targets, kind)
    return predict


def _best_in(validation: dict) -> str:
    """The candidate baseline (not the policy, not the no-change reference) with the lowest MSE."""
    names = [k for k in validation if k not in (POLICY, policy_mod.REFERENCE)]
    return min(names, key=lambda k: (validation[k]["mse"], k))


# ------------------------------------------------------------------------------ the rule itself
def _rows(mse, pd_topk):
    idx = [f"p{i}" for i in range(len(mse))]
    return pd.DataFrame({"mse": mse, "pearson_delta_topk": pd_topk}, index=idx)


def test_compare_needs_margin_beyond_noise():
    base = _rows([0.40, 0.50, 0.60, 0.70], [0.6, 0.6, 0.6, 0.6])
    worse = _rows([0.39, 0.49, 0.59, 0.69], [0.7] * 4)      # ~2 % lower: below the 5 % margin
    v = compare_to_baseline({"pol": worse, "b": base, "c": base * 2}, policy="pol",
                            baselines=["b", "c"])
    assert v.best_baseline == "b" and not v.validated
    assert not v.checks["≥ 5 % lower MSE"] and v.checks["Pearson-delta not worse"]
    better = _rows([0.30, 0.40, 0.50, 0.60], [0.7] * 4)     # 18 % lower on every perturbation
    v = compare_to_baseline({"pol": better, "b": base}, policy="pol", baselines=["b"])
    assert v.validated and v.paired_mean == pytest.approx(-0.1)
    lucky = _rows([0.05, 0.55, 0.65, 0.75], [0.7] * 4)      # lower mean thanks to one perturbation
    v = compare_to_baseline({"pol": lucky, "b": base}, policy="pol", baselines=["b"])
    assert v.relative_improvement > 0.05 and not v.checks["paired improvement > 1 s.e."]
    assert not v.validated
    worse_corr = _rows([0.30, 0.40, 0.50, 0.60], [0.5] * 4)
    v = compare_to_baseline({"pol": worse_corr, "b": base}, policy="pol", baselines=["b"])
    assert not v.validated and not v.checks["Pearson-delta not worse"]


def test_compare_pearson_on_the_perturbations_both_score():
    # the baseline has a Pearson-delta on p0 and p3 only (it predicts no change elsewhere): the
    # policy is compared there (0.75 vs 0.70), not by its mean over all four (0.425)
    base = _rows([0.40, 0.50, 0.60, 0.70], [0.9, np.nan, np.nan, 0.5])
    pol = _rows([0.30, 0.40, 0.50, 0.60], [0.95, 0.1, 0.1, 0.55])
    v = compare_to_baseline({"pol": pol, "b": base}, policy="pol", baselines=["b"])
    assert v.checks["Pearson-delta not worse"] and v.validated
    assert v.pearson_pair == pytest.approx((0.75, 0.70))
    scores = {"pol": {"mse": 0.45, "pearson_delta_topk": 0.425}, "b": {"mse": 0.55, "pearson_delta_topk": 0.7}}
    assert "Pearson-delta top-20 0.750 vs 0.700 on the perturbations both score" in v.describe("pol", scores, 0.05)
    assert v.describe("pol", scores, 0.05).endswith("→ pol beats the best baseline beyond the validation noise")
    worse = _rows([0.30, 0.40, 0.50, 0.60], [0.85, 0.9, 0.9, 0.45])  # higher overall, lower where both score
    v = compare_to_baseline({"pol": worse, "b": base}, policy="pol", baselines=["b"])
    assert not v.checks["Pearson-delta not worse"] and not v.validated


# ------------------------------------------------------------------------------ forced branches
def test_goal_never_in_training(base_state, tmp_path, monkeypatch):
    seen = []

    def spy(ctx):
        seen.extend([ctx.train.labels, ctx.fit_task.labels])
        return _near_best(ctx)

    monkeypatch.setattr(policy_mod, "_train_policy", _fake_training(spy))
    st = _fresh(base_state, tmp_path)
    pol = PolicySummary.model_validate(policy_agent(st)["policy"])
    assert seen and all("IFNG" not in labels for labels in seen)
    assert "IFNG" not in pol.train_labels + pol.fit_labels + pol.validation_labels
    assert "IFNG overexpression" in pol.train_labels + pol.validation_labels  # other experiment
    assert set(pol.train_labels).isdisjoint(pol.validation_labels)
    assert len(pol.validation_labels) == 10
    kinds = {lab.endswith("overexpression") for lab in pol.validation_labels}
    assert kinds == {True, False}  # stratified by kind


def test_policy_answers_when_it_beats_the_baselines(base_state, tmp_path, monkeypatch):
    monkeypatch.setattr(policy_mod, "_train_policy", _fake_training(_oracle))
    st = _fresh(base_state, tmp_path)
    up = policy_agent(st)
    pol = PolicySummary.model_validate(up["policy"])
    assert pol.status == "validated" and pol.method == POLICY
    ctx = policy_mod._context(st)
    assert pol.validation[POLICY]["mse"] == pytest.approx(_oracle_mse(ctx), abs=1e-5)
    assert pol.validation[POLICY]["mse"] < min(v["mse"] for k, v in pol.validation.items()
                                               if k != POLICY)
    assert "answers" in pol.decision and f"best baseline ({_best_in(pol.validation)})" in pol.decision
    assert allowed_moves({**st, **up}) == ["report"]


def test_fallback_to_best_baseline_when_policy_within_noise(base_state, tmp_path, monkeypatch):
    monkeypatch.setattr(policy_mod, "_train_policy", _fake_training(_near_best))
    st = _fresh(base_state, tmp_path)
    up = policy_agent(st)
    pol = PolicySummary.model_validate(up["policy"])
    assert pol.status == "not_validated" and pol.retrain  # close: a retrain is worth trying
    assert "≥ 5 % lower MSE" in pol.reason
    st.update(up)
    st["policy"]["attempts"] = st["options"]["max_policy_attempts"]
    assert allowed_moves(st) == ["fallback"]
    st.update(fallback_agent(st))
    fb = PolicySummary.model_validate(st["policy"])
    assert fb.status == "fallback" and fb.method == _best_in(fb.validation)
    assert fb.validation["linear gene embedding"]["mse"] < fb.validation["mean effect per kind"]["mse"]
    assert "lowest mean validation MSE" in fb.decision and "did not validate" in fb.decision
    # refitted on training + validation perturbations, never the goal's
    assert set(fb.fit_labels) == set(fb.train_labels) | set(fb.validation_labels)
    assert "IFNG" not in fb.fit_labels


def test_fallback_picks_mean_effect_when_it_validates_best(base_state, tmp_path, monkeypatch):
    fits = []
    real_mean = policy_mod.BASELINES["mean effect per kind"]

    def bad_linear(task):
        return lambda targets, kind: np.full(23, 5.0)

    def spy_mean(task):
        fits.append(list(task.labels))
        return real_mean(task)

    monkeypatch.setitem(policy_mod.BASELINES, "linear gene embedding", bad_linear)
    monkeypatch.setitem(policy_mod.BASELINES, "mean effect per kind", spy_mean)
    # without the stacked combination (it would reweight the mean effect per gene and win): this
    # test is about the fallback choosing the mean effect among single baselines
    monkeypatch.setattr(policy_mod, "_combination_predictor", lambda *a, **k: None)
    st = _fresh(base_state, tmp_path)
    st["options"] = {**st["options"], "skip_network": True}   # no network candidate either
    st["policy"] = PolicySummary(status="not_validated", attempts=2, reason="forced").model_dump()
    fb = PolicySummary.model_validate(fallback_agent(st)["policy"])
    assert fb.method == "mean effect per kind"  # not network propagation, not linear
    assert fb.validation["mean effect per kind"]["mse"] < fb.validation["linear gene embedding"]["mse"]
    assert len(fits[-1]) == len(fb.train_labels) + len(fb.validation_labels)  # the refit
    assert "IFNG" not in fits[-1]
    # the answer is the refitted mean knockout effect of the training + validation knockouts
    pred = pd.read_csv(Path(st["out_dir"]) / fb.prediction_path, index_col="gene")["delta"]
    assert np.isfinite(pred).all() and pred.abs().max() > 0


def test_combination_is_a_candidate_fitted_without_validation_or_goal(base_state, tmp_path,
                                                                       monkeypatch):
    fitted_on = []
    real = policy_mod._combination_predictor

    def spy(task, seed, network=True):
        fitted_on.append(list(task.labels))
        return real(task, seed, network)

    monkeypatch.setattr(policy_mod, "_combination_predictor", spy)
    zeros = _fake_training(lambda ctx: (lambda targets, kind: np.zeros(len(ctx.genes))))
    monkeypatch.setattr(policy_mod, "_train_policy", zeros)
    st = _fresh(base_state, tmp_path)
    up = policy_agent(st)
    pol = PolicySummary.model_validate(up["policy"])
    assert policy_mod.COMBINATION in pol.validation and pol.status == "not_validated"
    assert f"best baseline ({_best_in(pol.validation)})" in pol.reason
    # fitted on the training perturbations only: never a validation perturbation or the goal
    assert fitted_on[0] == pol.train_labels
    assert set(fitted_on[0]).isdisjoint(pol.validation_labels) and "IFNG" not in fitted_on[0]
    st.update(up)
    st["policy"]["attempts"] = st["options"]["max_policy_attempts"]
    st.update(fallback_agent(st))
    fb = PolicySummary.model_validate(st["policy"])
    # on this twin the stack validates best, so it answers under the same rule as any baseline
    assert fb.method == _best_in(fb.validation) == policy_mod.COMBINATION
    others = [k for k in fb.validation if k not in (POLICY, policy_mod.REFERENCE,
                                                    policy_mod.COMBINATION)]
    assert all(fb.validation[policy_mod.COMBINATION]["mse"] < fb.validation[k]["mse"]
               for k in others)
    # and is refitted on training + validation perturbations (never the goal's) before answering
    assert set(fitted_on[-1]) == set(fb.fit_labels) == set(fb.train_labels) | set(
        fb.validation_labels)
    assert "IFNG" not in fb.fit_labels and "inner validation" in fb.decision


def test_agent_candidates_are_the_shared_constructors(base_state, tmp_path):
    """The agent's candidates are fit_candidates on its training perturbations: network
    propagation by fit_network_baseline on their cells (not the network agent's network), the
    combination by fit_combination with that network base — the ablation's constructors."""
    from scagents.evaluation import fit_baseline

    st = _fresh(base_state, tmp_path)
    ctx = policy_mod._context(st)
    assert ctx.train.cell_states and set(ctx.train.cell_states) <= set(ctx.train.labels)
    ref = policy_mod.fit_candidates(ctx.train, seed=ctx.opts.seed)
    assert set(ctx.baselines) == set(ref) >= {policy_mod.NETWORK, policy_mod.COMBINATION}
    net = fit_baseline("network", ctx.train, modality="rna")
    comb = fit_baseline("combination", ctx.train, modality="rna", seed=ctx.opts.seed)
    for label in ctx.val_labels:
        p = ctx.task.perturbations[ctx.task.index(label)]
        for name, f in ref.items():
            assert np.allclose(ctx.baselines[name](p.targets, p.kind), f(p.targets, p.kind))
        assert np.allclose(ctx.baselines[policy_mod.NETWORK](p.targets, p.kind), net(p))
        assert np.allclose(ctx.baselines[policy_mod.COMBINATION](p.targets, p.kind), comb(p))


def test_fallback_intervals_are_split_conformal_on_the_validation_perturbations(
        base_state, tmp_path):
    """The fallback answers with a baseline refitted on training + validation; its q comes from
    the validation residuals of the same baseline fitted on the training perturbations only
    (issue 14), recomputed here by hand."""
    from scagents.evaluation import task_effects
    from scagents.evidence import conformal_quantile, interval_scale

    st = _fresh(base_state, tmp_path)
    st["policy"] = PolicySummary(status="not_validated", attempts=2, reason="forced").model_dump()
    fb = PolicySummary.model_validate(fallback_agent(st)["policy"])
    ctx = policy_mod._context(st)
    assert fb.validation_labels == ctx.val_labels and len(ctx.val_labels) >= 2
    from scagents.twin.milieu import hold_inputs

    # the agent holds the twin's clamped inputs at 0 in every model it scores and calibrates
    models = {k: hold_inputs(f, ctx.genes, ctx.data.inputs)
              for k, f in {**ctx.baselines, **ctx.reference}.items()}

    def fit(t):   # the answering baseline's own constructor (refit_candidate: the agent's refit)
        return hold_inputs(policy_mod.refit_candidate(fb.method, t, seed=ctx.opts.seed),
                           ctx.genes, ctx.data.inputs)

    train_only = fit(ctx.train)
    refit = fit(ctx.fit_task)
    sd = task_effects(ctx.train)[1].to_numpy(float).std(axis=0)

    def q_of(predict):
        res, scales = [], []
        for label in ctx.val_labels:
            p = ctx.task.perturbations[ctx.task.index(label)]
            obs = np.asarray(ctx.held.observed_delta(label, modality="rna"), float)
            res.append(obs - predict(p.targets, p.kind))
            scales.append(interval_scale(np.stack([f(p.targets, p.kind) for f in models.values()]),
                                         sd))
        return conformal_quantile(np.stack(res), np.stack(scales))

    assert fb.interval["q"] == pytest.approx(q_of(train_only), abs=1e-6)
    assert fb.interval["q"] != pytest.approx(q_of(refit), abs=1e-6)   # not from a fit that saw them
    assert fb.interval["calibration_fit"] == "training perturbations only"
    assert f"split-conformal on the {len(ctx.val_labels)} validation perturbations" \
        in fb.interval["method"] and "refitted on training + validation" in fb.interval["method"]
    pred = pd.read_csv(Path(st["out_dir"]) / fb.prediction_path, index_col="gene")
    goal = refit(("IFNG",), "knockout")
    assert np.allclose(pred["delta"].reindex(ctx.genes).to_numpy(), goal, atol=1e-6)


# ------------------------------------------------------------------------------ the twin check
def test_report_has_twin_check_from_actual_numbers(base_state, tmp_path, monkeypatch):
    import mudata as md

    from scagents.data import lognormalize
    from scagents.metrics import direction_metrics, mse, pearson_delta_topk, top_de_indices

    monkeypatch.setattr(policy_mod, "_train_policy", _fake_training(_near_best))
    st = _fresh(base_state, tmp_path)
    st.update(policy_agent(st))
    st["policy"]["retrain"] = False
    st.update(fallback_agent(st))
    st.update(report_agent(st))
    out = Path(st["out_dir"])
    result = json.loads((out / "report.json").read_text())
    md_text = (out / "report.md").read_text()
    assert "## Check against the twin's simulation" in md_text
    assert "## Which model answered and why" in md_text and "(answered)" in md_text
    assert result["validation"]["answered_by"] == st["policy"]["method"] == \
        _best_in(st["policy"]["validation"])

    # the simulated truth, recomputed from the cells
    rna = md.read_h5mu(out / "data.h5mu")["rna"]
    lognormalize(rna)
    x = np.asarray(rna.layers["lognorm"].toarray() if hasattr(rna.layers["lognorm"], "toarray")
                   else rna.layers["lognorm"], float)
    lab = rna.obs["perturbation"].astype(str).to_numpy()
    sim = pd.Series(x[lab == "IFNG"].mean(0) - x[lab == "control"].mean(0), index=rna.var_names)
    sim = sim[~rna.var["is_input"].astype(bool).to_numpy()]  # model inputs are not responses
    pred = pd.read_csv(out / "prediction.csv", index_col="gene")["delta"].reindex(sim.index)
    tc = result["twin_check"]
    k = min(20, len(sim))
    assert tc["k"] == k == 19
    assert tc["metrics"]["mse"] == pytest.approx(mse(pred.to_numpy(), sim.to_numpy()), abs=1e-3)
    assert tc["metrics"][f"pearson_delta_top{k}"] == pytest.approx(
        pearson_delta_topk(pred.to_numpy(), sim.to_numpy(), k=k), abs=1e-3)
    idx = top_de_indices(sim.to_numpy(), k)
    acc = direction_metrics(pred.to_numpy()[idx], sim.to_numpy()[idx])["accuracy"]
    assert tc["metrics"][f"direction_accuracy_top{k}"] == pytest.approx(acc, abs=1e-3)
    assert tc["top_down"][0]["gene"] == sim.idxmin()
    assert tc["top_down"][0]["simulated_delta"] == pytest.approx(sim.min(), abs=1e-3)
    assert tc["top_down"][0]["predicted_delta"] == pytest.approx(pred[sim.idxmin()], abs=1e-3)
    # simulated fate shift: control vs perturbed fractions of the simulated cells
    fates = rna.obs["fate"].astype(str)
    th1 = float((fates[lab == "IFNG"] == "Th1").mean())
    assert tc["fate_shift"]["IFNG knockout"].get("Th1", 0.0) == pytest.approx(th1, abs=1e-3)
    assert "Simulated fate shift" in md_text and (out / "fate_shift.png").stat().st_size > 0
    # the answer is the prediction, not the truth
    assert result["genes"][0]["delta"] == pytest.approx(pred.abs().max(), abs=1e-3) or \
        result["genes"][0]["delta"] == pytest.approx(-pred.abs().max(), abs=1e-3)
    assert not np.allclose(pred.to_numpy(), sim.to_numpy(), atol=1e-3)


def test_twin_check_flags_wrong_direction_and_composition():
    truth = pd.DataFrame({
        "delta": [-1.0, -0.5, 0.4, 0.3, 0.0, 0.2],
        "activity_delta": [-0.4, -0.2, 0.1, 0.0, 0.0, 0.0],
        "is_input": [False, False, False, True, False, False]},
        index=["A", "B", "C", "TCR", "D", "E"])
    pred = pd.Series({"A": -0.8, "B": 0.2, "C": 0.3, "TCR": -0.1, "D": 0.0, "E": 0.1})
    tc = twin_check(pred, truth, fates={"control": {"Th1": 0.5}, "A knockout": {"Th1": 0.0}},
                    label="A knockout", k=4)
    assert tc["k"] == 4 and tc["metrics"]["sign_agreement_top4"] == pytest.approx(0.75)
    assert [r["gene"] for r in tc["top_down"]] == ["A", "B"]
    assert tc["top_down"][1]["same_direction"] == "NO"
    assert any("B (simulated -0.50, predicted +0.20)" in n for n in tc["notes"])
    assert tc["compositional"] == ["E"]  # counts up although its activity does not change
    assert any("E +0.20 (activity +0.000)" in n for n in tc["notes"])
    # TCR is a model input (set by the milieu): never listed, scored or called compositional
    assert "TCR" not in [r["gene"] for r in tc["top_up"] + tc["top_down"]]
    assert all("TCR" not in n for n in tc["notes"])
    assert tc["fate_shift"]["A knockout"]["Th1"] == 0.0


# ------------------------------------------------------------------------------ evidence (issue 14)
def test_policy_moving_its_knocked_out_target_up_is_not_validated(base_state, tmp_path,
                                                                   monkeypatch):
    def oracle_but_target_up(ctx):
        inner = _oracle(ctx)
        i = ctx.genes.index("IFNG")

        def predict(targets, kind):
            d = np.array(inner(targets, kind), float)
            if "IFNG" in targets and kind == "knockout":
                d[i] = 0.3
            return d
        return predict

    monkeypatch.setattr(policy_mod, "_train_policy", _fake_training(oracle_but_target_up))
    st = _fresh(base_state, tmp_path)
    pol = PolicySummary.model_validate(policy_agent(st)["policy"])
    ctx = policy_mod._context(st)
    assert pol.validation[POLICY]["mse"] == pytest.approx(_oracle_mse(ctx), abs=1e-5)
    assert pol.validation[POLICY]["mse"] < min(v["mse"] for k, v in pol.validation.items()
                                               if k != POLICY)  # beats every baseline
    assert pol.status == "not_validated"
    assert "cannot be validated" in pol.reason and "IFNG +0.300" in pol.reason
    assert [{k: v for k, v in t.items() if k != "control_mean"} for t in pol.target_check] == [
        {"gene": "IFNG", "predicted_delta": 0.3, "expected": "down", "agrees": False}]
    assert pol.target_check[0]["control_mean"] >= 0.0  # the report says when it is not expressed


def test_validation_scores_the_targets_own_direction():
    base = _rows([0.40, 0.50, 0.60, 0.70], [0.6] * 4).assign(target_direction=[1.0] * 4)
    better_but_wrong = _rows([0.30, 0.40, 0.50, 0.60], [0.7] * 4).assign(
        target_direction=[0.0, 1.0, 0.0, 1.0])
    v = compare_to_baseline({"pol": better_but_wrong, "b": base}, policy="pol", baselines=["b"])
    assert not v.validated and not v.checks["targets' own direction not worse"]


def test_answer_carries_evidence_and_calibrated_intervals(base_state, tmp_path, monkeypatch):
    monkeypatch.setattr(policy_mod, "_train_policy", _fake_training(_near_best))
    st = _fresh(base_state, tmp_path)
    st.update(policy_agent(st))
    st["policy"]["retrain"] = False
    st.update(fallback_agent(st))
    pol = PolicySummary.model_validate(st["policy"])
    assert pol.evidence["kind"] == "observed" and pol.evidence["detectable"]
    assert "IFNG" in pol.evidence["cleared"]
    # the twin's milieu inputs are set, not responding: never counted as genes that change
    inputs = set(st["data"]["inputs"])
    assert inputs and not inputs & set(pol.evidence["cleared"])
    assert pol.evidence["n_genes"] == len(pd.read_csv(Path(st["out_dir"]) / "prediction.csv")) - len(inputs)
    assert pol.interval["level"] == 0.8 and 0 < pol.interval["q"] < np.inf
    assert pol.interval["n_calibration"] == len(pol.validation_labels)
    out = Path(st["out_dir"])
    pred = pd.read_csv(out / "prediction.csv", index_col="gene")
    assert (pred["delta_lower"] <= pred["delta"] + 1e-9).all()
    assert (pred["delta"] <= pred["delta_upper"] + 1e-9).all()
    # the evidence flags are the noise floor's verdicts on the observed change
    above = pred["observed_delta"].abs() >= pred["noise_floor"] - 1e-9
    again = pd.read_csv(out / "twin_truth.csv", index_col=0)["replicate_clears"].astype(bool)
    assert pred["clears_noise"].equals(above & again.reindex(pred.index))
    listed = pol.top_up + pol.top_down
    assert listed and all(g.lower is not None and g.clears_noise is not None for g in listed)
    st.update(report_agent(st))
    result = json.loads((out / "report.json").read_text())
    assert result["evidence"]["detectable"] and result["intervals"]["q"] == pol.interval["q"]
    assert {"lower", "upper", "clears_noise"} <= set(result["genes"][0])
    per_gene = result["intervals"]["per_gene"]
    assert len(per_gene["lower"]) == len(pred.index.difference(st["data"]["inputs"]))
    assert per_gene["gene"][0] == result["genes"][0]["gene"]
    md_text = (out / "report.md").read_text()
    assert "## Evidence check" in md_text and "| lower | upper |" in md_text
    assert (out / "intervals.png").stat().st_size > 0


def test_silent_model_answers_no_detectable_effect(tmp_path):
    model = tmp_path / "silent.bnet"
    model.write_text("targets, factors\nv_ALPHA, v_SIG & !v_BETA\nv_BETA, v_ALPHA\n"
                     "v_GAMMA, v_ALPHA | v_BETA\nv_DELTA, v_GAMMA\nv_EPS, !v_DELTA & v_SIG\n")
    opts = RunOptions(goal="predict ALPHA knockout", model=str(model), n_cells=100,
                      n_train_cells=30, policy_steps=256)
    st = initial_state(opts, tmp_path / "run")
    Path(st["out_dir"]).mkdir()
    st.update(data_agent(st))
    assert st["data"]["silent_model"] and "all-off" in st["data"]["warnings"][0]
    st["integration"] = {"status": "skipped", "reason": "not needed here"}
    st["network"] = {"status": "skipped", "reason": "not needed here"}
    st.update(policy_agent(st))
    pol = PolicySummary.model_validate(st["policy"])
    assert pol.status == "no_effect" and not pol.evidence["detectable"]
    assert pol.top_up == [] and pol.top_down == [] and pol.proposals == []
    assert "--inputs" in pol.evidence["needed"] and "SIG" in pol.evidence["needed"]
    assert not (Path(st["out_dir"]) / "policy.pt").exists()   # nothing was trained on noise
    assert allowed_moves(st) == ["report"]
    st.update(report_agent(st))
    md_text = (Path(st["out_dir"]) / "report.md").read_text()
    assert "**No detectable effect:**" in md_text and "(policy validated)" not in md_text
    assert "None: with no detectable effect there is nothing to follow up." in md_text
    assert "Warning: model 'silent' simulates every cell to one all-off state" in md_text


def test_unmeasured_goal_evidence_comes_from_the_intervals(tmp_path, monkeypatch):
    import anndata as ad

    rng = np.random.default_rng(0)
    genes = [f"G{i}" for i in range(30)]
    blocks, labels = [], []
    for lab in ["control"] + [f"G{i}" for i in range(12)]:
        mu = np.full(30, 20.0)
        if lab != "control":
            j = int(lab[1:])
            mu[j] = 2.0                      # the target itself drops
            mu[(j + 1) % 30] = 60.0          # and a downstream gene rises
        blocks.append(rng.poisson(mu, size=(60, 30)))
        labels += [lab] * 60
    adata = ad.AnnData(X=np.vstack(blocks).astype(np.float32),
                       obs=pd.DataFrame({"perturbation": labels},
                                        index=[f"c{i}" for i in range(len(labels))]),
                       var=pd.DataFrame(index=genes))
    path = tmp_path / "toy.h5ad"
    adata.write_h5ad(path)
    opts = RunOptions(goal="predict G20 knockout", data=str(path), perturbation_key="perturbation",
                      control_labels=["control"], policy_steps=256, n_validation=4)
    st = initial_state(opts, tmp_path / "run")
    Path(st["out_dir"]).mkdir()
    st.update(data_agent(st))
    assert not st["data"]["goal_measured"]
    st["integration"] = {"status": "skipped", "reason": "not needed here"}
    st["network"] = {"status": "skipped", "reason": "not needed here"}
    monkeypatch.setattr(policy_mod, "_train_policy", _fake_training(_near_best))
    st.update(policy_agent(st))
    pol = PolicySummary.model_validate(st["policy"])
    assert pol.evidence["kind"] == "interval" and pol.evaluation is None
    pred = pd.read_csv(Path(st["out_dir"]) / "prediction.csv", index_col="gene")
    excludes_zero = (pred["delta_lower"] > 0) | (pred["delta_upper"] < 0)
    assert pred["clears_noise"].equals(excludes_zero)
    assert pol.evidence["detectable"] == bool(excludes_zero.any())
    assert (pol.status == "no_effect") == (not excludes_zero.any())
    # the learnt knockout effect (target down by ~2.2 log units) is larger than the spread
    assert "G20" in pol.evidence["cleared"] and pred.loc["G20", "delta_upper"] < 0


def test_knockout_of_a_gene_off_in_the_milieu_says_why_and_where_it_is_on(tmp_path):
    """STAT4 is off in the Th twin's default milieu (no IL-12): its knockout has no detectable
    effect, and the answer says why and which inputs express it (issue 14)."""
    opts = RunOptions(goal="predict STAT4 knockout", n_cells=100, n_train_cells=20,
                      policy_steps=256)
    st = initial_state(opts, tmp_path / "run")
    Path(st["out_dir"]).mkdir()
    st.update(data_agent(st))
    (check,) = st["data"]["target_expression"]
    assert check["gene"] == "STAT4" and not check["expressed"] and check["n_milieus"] == 16
    assert check["switch_on"] and all(m["inputs"]["IL12A"] == 1.0 for m in check["switch_on"])
    assert "--inputs" in check["sentence"] and "IL12A=1" in check["sentence"]
    st["integration"] = {"status": "skipped", "reason": "not needed here"}
    st["network"] = {"status": "skipped", "reason": "not needed here"}
    st.update(policy_agent(st))
    pol = PolicySummary.model_validate(st["policy"])
    assert pol.status == "no_effect" and pol.proposals == []
    assert pol.evidence["target_note"] == check["sentence"]
    assert "STAT4 is not expressed under this milieu" in pol.decision
    # more cells cannot help: what is needed is a milieu that expresses the target
    assert pol.evidence["needed"].startswith("To detect an effect: a milieu in which STAT4 is")
    assert "IL12A=1" in pol.evidence["needed"] and pol.evidence["cells_needed"] is None
    st.update(report_agent(st))
    out = Path(st["out_dir"])
    assert "**Why:** STAT4 is not expressed under this milieu" in (out / "report.md").read_text()
    ev = json.loads((out / "report.json").read_text())["evidence"]
    assert ev["target_expression"][0]["switch_on"] == check["switch_on"]


def test_expressed_target_carries_no_explanation(base_state, tmp_path):
    (check,) = base_state["data"]["target_expression"]
    assert check["gene"] == "IFNG" and check["expressed"] and check["sentence"] == ""
    assert check["n_milieus"] == 0          # nothing scanned for an expressed target
