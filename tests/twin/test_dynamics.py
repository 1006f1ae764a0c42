"""The Hill form of the twin's dynamics: the opt-in normalized form keeps Boolean fixed points, the
default standard form is unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from scagents.twin import load_model, read_model, run_dynamics, simulate
from scagents.twin.dynamics import compile_network

# five genes, each the AND of all five: all-on is a Boolean fixed point
AND5 = "\n".join(f"{g}, A & B & C & D & E" for g in "ABCDE") + "\n"


def _and5():
    return read_model(AND5, format="bnet")


def test_normalized_hill_is_exact_at_boolean_states():
    cn = compile_network(_and5())
    x = np.array([[0.0, 1.0, 0.5]] * 5)
    h, nh = cn.hill(x, form="normalized")
    assert h[0, 0] == 0.0 and h[0, 1] == 1.0 and nh[0, 1] == 0.0
    assert 0.0 < h[0, 2] < 1.0
    hs, _ = cn.hill(x)
    assert hs[0, 1] == pytest.approx(1.0 / (1.0 + 0.5**4))  # the standard form stays below 1
    np.testing.assert_array_equal(cn.rule_values(np.ones((5, 1)), "normalized"), 1.0)


def test_normalized_keeps_a_boolean_fixed_point_the_standard_form_loses():
    net = _and5()
    x0 = np.ones((3, 5))
    std = run_dynamics(net, x0, n_steps=400, noise=0.0, rng=0, record_every=400)[-1]
    norm = run_dynamics(net, x0, n_steps=400, noise=0.0, rng=0, record_every=400, hill="normalized")[-1]
    assert np.all(std < 0.5)  # 0.94**5 = 0.74 < 1: the self-sustaining state decays
    np.testing.assert_allclose(norm, 1.0, atol=1e-5)
    # the all-off fixed point stays too
    off = run_dynamics(net, np.zeros((2, 5)), n_steps=100, noise=0.0, rng=0, hill="normalized")[-1]
    np.testing.assert_array_equal(off, 0.0)


def test_unknown_hill_form_is_refused():
    with pytest.raises(ValueError, match="hill must be one of"):
        run_dynamics(_and5(), np.ones((1, 5)), n_steps=2, hill="odefy")
    with pytest.raises(ValueError, match="hill must be one of"):
        simulate(_and5(), n_cells=2, n_steps=2, hill="odefy")


def _x0() -> np.ndarray:
    return np.linspace(0.1, 0.9, 44).reshape(4, 11)


def test_standard_form_is_unchanged_bit_for_bit():
    # values recorded with the code before the hill option existed (commit 1bff017)
    net = load_model("krumsiek11")
    rec = run_dynamics(net, _x0(), n_steps=50, noise=0.1, rng=7, record_every=50)
    pinned = [[0.007946803234517574, 0.011117293499410152, 0.00037956779124215245,
               0.013395976275205612, 0.01628938689827919, 0.00014952762285247445],
              [0.007341725751757622, 0.02558128722012043, 0.030573857948184013,
               0.004623297601938248, 0.00032939817174337804, 0.029276013374328613],
              [0.0801687017083168, 0.03296034783124924, 0.07475139945745468,
               0.05641644448041916, 0.07453219592571259, 0.11057236045598984],
              [0.06214926764369011, 0.11881186068058014, 0.19922120869159698,
               0.18502095341682434, 0.06905187666416168, 0.06750047951936722]]
    np.testing.assert_array_equal(rec[-1][:, :6], np.array(pinned, dtype=np.float32))
    rec0 = run_dynamics(net, _x0(), n_steps=50, noise=0.0, rng=7, record_every=50, hill="standard")
    pinned0 = [0.0077392891980707645, 0.009680780582129955, 0.010657742619514465,
               0.012088609859347343, 0.013520387001335621, 0.014950103126466274,
               0.017283758148550987, 0.02028823271393776, 0.020677918568253517,
               0.02061774581670761, 0.02297520637512207]
    np.testing.assert_array_equal(rec0[-1][0], np.array(pinned0, dtype=np.float32))
    m = simulate(net, n_cells=20, n_steps=30, seed=2, modalities=["rna", "atac"])
    assert float(m["rna"].X.sum()) == 4170.0 and float(m["atac"].X.sum()) == 230.0
    assert float(m["rna"].layers["activity"].sum()) == 50.52564239501953
    assert m.uns["twin"]["params"]["hill"] == "standard"
