"""Is a gene expressed in the twin's milieu, and which milieu of the inputs switches it on."""

from pathlib import Path

from scagents.twin import load_model
from scagents.twin.milieu import MAX_FULL_INPUTS, scan_milieus, target_expression

GATED = ("targets, factors\nv_A, v_SIG\nv_B, v_A\nv_C, v_A & v_B\nv_D, !v_A\n")


def _model(tmp_path: Path, text: str, name: str = "gated.bnet"):
    path = tmp_path / name
    path.write_text(text)
    return load_model(path)


def test_off_target_names_the_input_that_switches_it_on(tmp_path):
    net = _model(tmp_path, GATED)
    scan = scan_milieus(net, n_cells=24)
    assert list(scan["SIG"]) == [0.0, 1.0] and scan.loc[scan["SIG"] == 1, "A"].item() > 0.3
    out = target_expression(net, "A", control_activity=0.0, scan=scan)
    assert not out["expressed"] and out["n_milieus"] == 2
    assert out["switch_on"][0]["inputs"] == {"SIG": 1.0}
    assert "not expressed under this milieu" in out["sentence"]
    assert "--inputs SIG=1" in out["sentence"]
    # expressed now: no scan, no sentence
    on = target_expression(net, "A", control_activity=0.8)
    assert on["expressed"] and on["sentence"] == "" and on["n_milieus"] == 0


def test_gene_no_milieu_expresses_and_a_model_without_inputs(tmp_path):
    net = _model(tmp_path, GATED + "v_E, v_E & !v_SIG\n")
    out = target_expression(net, "E", control_activity=0.0, scan=scan_milieus(net, n_cells=16))
    assert out["switch_on"] == [] and "None of the 2 milieus checked" in out["sentence"]
    free = _model(tmp_path, "targets, factors\nv_X, v_Y\nv_Y, v_X\n", "free.bnet")
    out = target_expression(free, "X", control_activity=0.0)
    assert "no milieu inputs" in out["sentence"] and "@initial" in out["sentence"]


def test_many_inputs_scan_single_and_pair_switches(tmp_path):
    k = MAX_FULL_INPUTS + 1
    ins = [f"v_I{i}" for i in range(k)]
    net = _model(tmp_path, "targets, factors\nv_Z, " + " & ".join(ins[:2]) + "\nv_W, "
                 + " | ".join(ins[2:]) + "\n", "many.bnet")
    assert len(net.inputs) == k
    scan = scan_milieus(net, n_cells=8)
    assert len(scan) == 1 + k + k * (k - 1) // 2       # now, each single, each pair
    out = target_expression(net, "Z", control_activity=0.0, scan=scan)
    assert out["switch_on"] and out["switch_on"][0]["inputs"]["I0"] == 1.0
    assert out["switch_on"][0]["inputs"]["I1"] == 1.0 and "--inputs I0=1 I1=1" in out["sentence"]
    # switches on top of a milieu with I0 on: each distinct milieu is simulated once
    again = scan_milieus(net, n_cells=8, inputs={"I0": 1.0})
    assert len(again) == len(again.drop_duplicates(subset=list(net.inputs))) == 1 + k - 1 + (
        (k - 1) * (k - 2) // 2)


def test_hold_inputs_zeroes_clamped_inputs_but_not_own_targets():
    import numpy as np

    from scagents.twin.milieu import hold_inputs

    genes = ["TCR", "GATA3", "IL12", "TBX21"]
    calls = []

    def predict(targets, kind):
        calls.append((targets, kind))
        return np.array([0.3, -0.2, 0.1, 0.4])

    held = hold_inputs(predict, genes, ["TCR", "IL12", "IFNB"])   # IFNB: not a predicted gene
    np.testing.assert_array_equal(held(("GATA3",), "knockout"), [0.0, -0.2, 0.0, 0.4])
    np.testing.assert_array_equal(held(("IL12",), "knockout"), [0.0, -0.2, 0.1, 0.4])
    assert calls == [(("GATA3",), "knockout"), (("IL12",), "knockout")]
    # mappings are wrapped entry by entry, None and data without inputs pass through unchanged
    both = hold_inputs({"a": predict, "b": predict}, genes, ["TCR"])
    assert set(both) == {"a", "b"} and both["b"](("GATA3",), "knockout")[0] == 0.0
    assert hold_inputs(None, genes, ["TCR"]) is None
    assert hold_inputs(predict, genes, []) is predict
    assert hold_inputs(predict, genes, ["IFNB"]) is predict
