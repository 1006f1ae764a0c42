"""Tests of the digital twin: model parsing, dynamics, fates under perturbation, count output."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import pytest

from scagents.errors import GeneNotFoundError, ModalityError, ModelFileError
from scagents.perturbation import Perturbation
from scagents.twin import (
    classify_fate,
    initial_states,
    list_models,
    load_model,
    read_model,
    run_dynamics,
    simulate,
)
from tests.conftest import shared_file

N = 400  # cells per condition: enough for stable fractions, fast enough for CI


def _sign(net, source, target):
    e = net.edges
    row = e[(e["source"] == source) & (e["target"] == target)]
    assert len(row) == 1, f"edge {source}->{target} missing"
    return int(row["sign"].iloc[0])


def _fractions(mdata, label):
    obs = mdata["rna"].obs
    return obs.loc[obs["perturbation"] == label, "fate"].value_counts(normalize=True)


@pytest.fixture(scope="module")
def th():
    return load_model("th")


@pytest.fixture(scope="module")
def krumsiek():
    return load_model("krumsiek11")


# ---------------------------------------------------------------------------------------------- parsing


def test_krumsiek_from_scanpy_file(krumsiek):
    import scanpy

    assert os.path.dirname(scanpy.__file__) in krumsiek.source or "krumsiek11" in krumsiek.source
    assert len(krumsiek.genes) == 11 and krumsiek.genes[0] == "Gata2"
    # Gata2 = Gata2 and not (Gata1 and Fog1) and not Pu.1
    assert _sign(krumsiek, "Gata2", "Gata2") == 1
    assert _sign(krumsiek, "Pu.1", "Gata2") == -1
    assert _sign(krumsiek, "Fog1", "Gata2") == -1
    # Gfi1 = Cebpa and not EgrNab; coupling weight -5.0 kept as |w|
    assert _sign(krumsiek, "EgrNab", "Gfi1") == -1
    e = krumsiek.edges
    assert e.loc[(e.source == "EgrNab") & (e.target == "Gfi1"), "weight"].item() == 5.0
    assert krumsiek.inputs == []
    assert set(krumsiek.fates) == {"erythroid", "megakaryocyte", "monocyte", "granulocyte"}
    for alias in ("PU.1", "PU1", "SPI1", "pu.1"):
        assert krumsiek.resolve_gene(alias) == "Pu.1"


def test_th_model_file(th):
    assert th.name == "th_mendoza2006"
    assert "10.1186/1742-4682-3-13" in th.source
    assert set(th.inputs) == {"TCR", "IFNB1", "IL12A", "IL18"}
    assert len(th.genes) == 23
    assert th.resolve_gene("TBET") == "TBX21"
    assert th.resolve_gene("tbet") == "TBX21"
    assert th.resolve_gene("IFNg") == "IFNG"
    # TBX21 = (TBX21 and not GATA3) or (STAT1 and not GATA3)
    assert _sign(th, "STAT1", "TBX21") == 1 and _sign(th, "GATA3", "TBX21") == -1
    # IL4 = GATA3 and not STAT1 ; JAK1 = IFNGR1 and not SOCS1
    assert _sign(th, "STAT1", "IL4") == -1 and _sign(th, "SOCS1", "JAK1") == -1
    assert _sign(th, "IFNG", "IFNGR1") == 1
    assert len(th.edges) == 34  # the published network has 34 regulations
    assert {"IFNGR1", "IL4R", "IL12RB2", "IL18R1"} <= set(th.surface)
    assert list_models()[0] == "th_mendoza2006" and "krumsiek11" in list_models()
    assert load_model("th_mendoza2006").genes == th.genes


def test_bnet_format():
    net = read_model(shared_file("grn/boolean_models/Th_differentiation_Mendoza2006.bnet"))
    assert net.n_genes == 23  # 19 with rules + 4 implicit inputs
    assert set(net.inputs) == {"IFNb", "IL12", "IL18", "TCR"}
    assert net.aliases["v_Tbet"] == "Tbet"  # CellCollective prefix stripped
    assert _sign(net, "STAT3", "IFNg") == -1 and _sign(net, "NFAT", "IFNg") == 1
    assert _sign(net, "Tbet", "GATA3") == -1
    assert len(net.edges) == 34
    # same topology as the shipped HGNC-named file
    th = load_model("th")
    ours = {(th.resolve_gene(s), th.resolve_gene(t), g) for s, t, g in
            th.edges[["source", "target", "sign"]].itertuples(index=False)}
    theirs = {(th.resolve_gene(s), th.resolve_gene(t), g) for s, t, g in
              net.edges[["source", "target", "sign"]].itertuples(index=False)}
    assert ours == theirs


def test_boolode_format():
    net = read_model(shared_file("grn/boolean_models/GSD.txt"))
    assert net.n_genes == 19 and net.genes[0] == "UGR"
    assert net.initial_state == {"UGR": 1.0}  # from GSD_ics.txt (value 2 clipped to 1)
    # FGF9 = SOX9 and not WNT4
    assert _sign(net, "SOX9", "FGF9") == 1 and _sign(net, "WNT4", "FGF9") == -1
    assert net.rules["PGD2"] == "SOX9"


def test_text_and_constants():
    net = read_model("A = A\nB = A and not C\nC = True\n")
    assert net.inputs == ["A"]
    assert _sign(net, "C", "B") == -1
    x = run_dynamics(net, np.array([[1.0, 0.0, 0.0]]), n_steps=200, dt=0.1, noise=0.0, rng=0)
    assert x.shape == (201, 1, 3)
    assert x[-1, 0, 2] > 0.9 and x[-1, 0, 1] < 0.2  # C on represses B


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("A = A\nB = A and not Q\n", r"line 2.*unknown gene 'Q'"),
        ("A = A\nB = (A and\n", r"line 2.*syntax error"),
        ("A = A\nB = A ) or A\n", r"line 2.*syntax error"),
        ("# only a comment\n\n", r"no rules"),
        ("A = A\nA = not A\n", r"line 2.*already has a rule"),
        ("A = A\nB = A\n# coupling list:\nB  C  1.0\n", r"line 4.*unknown gene 'C'"),
        ("@fate X = A and Z\nA = A\n", r"fate 'X' uses unknown gene 'Z'"),
        ("Gene\tRule\nA\tA or @\n", r"line 2.*syntax error"),
    ],
)
def test_malformed_models(text, match):
    with pytest.raises(ModelFileError, match=match):
        read_model(text)


def test_missing_file_and_empty_file(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        read_model(tmp_path / "nope.bnet")
    empty = tmp_path / "empty.bnet"
    empty.write_text("")
    with pytest.raises(ModelFileError, match="no rules"):
        read_model(empty)
    with pytest.raises(ModelFileError, match="Shipped models"):
        load_model("no_such_model")


def test_unknown_gene_suggests(th):
    with pytest.raises(GeneNotFoundError, match="GATA3") as err:
        simulate(th, perturbations=Perturbation("GATA33"), n_cells=10, n_steps=5)
    assert isinstance(err.value, KeyError)


# ---------------------------------------------------------------------------------------------- dynamics


def test_run_dynamics_shapes_and_determinism(th):
    x0 = initial_states(th, 50, np.random.default_rng(0))
    assert x0.shape == (50, th.n_genes) and x0.min() >= 0 and x0.max() <= 1
    a = run_dynamics(th, x0, n_steps=40, dt=0.05, noise=0.1, rng=np.random.default_rng(1),
                     record_every=10)
    b = run_dynamics(th, x0, n_steps=40, dt=0.05, noise=0.1, rng=np.random.default_rng(1),
                     record_every=10)
    assert a.shape == (5, 50, th.n_genes)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[0], x0.astype(np.float32))
    # inputs stay clamped; a knockout is exactly 0 once it starts
    tcr = th.gene_index("TCR")
    np.testing.assert_array_equal(a[:, :, tcr],
                                  np.broadcast_to(x0[:, tcr].astype(np.float32), a.shape[:2]))
    ko = run_dynamics(th, x0, n_steps=40, rng=1, perturbation=Perturbation("STAT1", start_time=0.5),
                      record_every=10)
    s1 = th.gene_index("STAT1")
    assert np.all(ko[3:, :, s1] == 0.0) and np.any(ko[1, :, s1] > 0)


def test_classify_fate(th):
    x = np.zeros((3, th.n_genes))
    x[0, th.gene_index("TBX21")] = 0.9
    x[1, th.gene_index("GATA3")] = 0.9
    assert list(classify_fate(th, x)) == ["Th1", "Th2", "Th0"]


# ---------------------------------------------------------------------------------------------- biology


def test_krumsiek_knockouts(krumsiek):
    m = simulate(krumsiek, perturbations=[None, Perturbation("PU.1"), Perturbation("GATA1")],
                 n_cells=N, modalities=("rna",), seed=3)
    ctrl = _fractions(m, "control")
    assert (ctrl > 0.03).sum() >= 4, ctrl  # several fates in control
    pu1 = _fractions(m, "Pu.1")
    assert pu1.get("monocyte", 0) == 0 and pu1.get("granulocyte", 0) == 0, pu1
    assert pu1.get("erythroid", 0) + pu1.get("megakaryocyte", 0) > 0.8
    gata1 = _fractions(m, "Gata1")
    assert gata1.get("erythroid", 0) == 0 and gata1.get("megakaryocyte", 0) == 0, gata1
    assert gata1.get("monocyte", 0) + gata1.get("granulocyte", 0) > 0.3


@pytest.fixture(scope="module")
def th_ifng(th):
    return simulate(th, perturbations=[None, Perturbation("IFNG"),
                                       Perturbation("GATA3", kind="overexpression")],
                    n_cells=N, seed=1)


def test_ifng_knockout_silences_signalling(th_ifng):
    rna = th_ifng["rna"]
    act = pd.DataFrame(rna.layers["activity"], columns=rna.var_names, index=rna.obs_names)
    ctrl = rna.obs["perturbation"] == "control"
    ko = rna.obs["perturbation"] == "IFNG"
    assert act.loc[ko, "IFNB1"].max() == 0.0  # IFN-beta input is off by default
    # SOCS1 feedback keeps JAK1/STAT1 at a moderate level in Th1 cells of the Mendoza model
    for gene, floor in (("IFNG", 0.2), ("IFNGR1", 0.2), ("JAK1", 0.03), ("STAT1", 0.03)):
        assert act.loc[ctrl, gene].mean() > floor, gene
        assert act.loc[ko, gene].mean() < 0.1 * act.loc[ctrl, gene].mean(), gene
    f_ctrl, f_ko = _fractions(th_ifng, "control"), _fractions(th_ifng, "IFNG")
    assert f_ctrl.get("Th1", 0) > 0.25 and min(f_ctrl.get("Th0", 0), f_ctrl.get("Th2", 0)) > 0.05
    assert f_ko.get("Th1", 0) < f_ctrl["Th1"] - 0.2
    assert f_ko.get("Th0", 0) + f_ko.get("Th2", 0) > f_ctrl["Th0"] + f_ctrl["Th2"] + 0.2


def test_gata3_overexpression_gives_th2(th_ifng):
    f_ctrl = _fractions(th_ifng, "control")
    f_oe = _fractions(th_ifng, "GATA3 overexpression")
    assert f_oe.get("Th2", 0) > f_ctrl.get("Th2", 0) + 0.3


def test_inputs_polarise(th):
    m = simulate(th, inputs={"IL12": 1.0, "TCR": 1.0}, n_cells=200, modalities=("rna",))
    base = simulate(th, n_cells=200, modalities=("rna",))
    assert _fractions(m, "control").get("Th1", 0) > _fractions(base, "control").get("Th1", 0)
    with pytest.raises(GeneNotFoundError):
        simulate(th, inputs={"IL99": 1.0}, n_cells=5, n_steps=5)


def test_late_perturbation_leaves_early_cells(th):
    m = simulate(th, perturbations=[None, Perturbation("IFNG", start_time=0.6)], n_cells=N,
                 modalities=("rna",), seed=2)
    rna = m["rna"]
    ifng = rna.layers["activity"][:, rna.var_names.get_loc("IFNG")]
    t = rna.obs["pseudotime"].to_numpy()
    ctrl = (rna.obs["perturbation"] == "control").to_numpy()
    pert = ~ctrl
    early, late = t < 0.55, t > 0.65
    assert abs(ifng[pert & early].mean() - ifng[ctrl & early].mean()) < 0.1
    assert ifng[pert & late].max() == 0.0 and ifng[ctrl & late].mean() > 0.2
    assert rna.obs.loc[pert, "perturbation"].iloc[0] == "IFNG @0.6"


# ---------------------------------------------------------------------------------------------- output


def test_output_structure_and_counts(th_ifng):
    m = th_ifng
    assert set(m.mod) == {"rna", "atac", "prot"}
    for key in ("perturbation", "target_genes", "perturbation_type", "is_control", "pseudotime", "fate"):
        assert key in m.obs.columns
        for mod in m.mod.values():
            assert key in mod.obs.columns
    obs = m["rna"].obs
    assert set(obs.loc[obs["is_control"], "target_genes"]) == {""}
    assert set(obs.loc[obs["is_control"], "perturbation_type"]) == {"control"}
    assert set(obs.loc[~obs["is_control"], "perturbation_type"]) == {"knockout", "overexpression"}
    assert obs["pseudotime"].between(0, 1).all()
    twin = m.uns["twin"]
    assert twin["model"] == "th_mendoza2006" and twin["seed"] == 1
    assert {"source", "target", "sign", "weight"} <= set(twin["edges"].columns)
    assert set(twin["perturbations"]) == {"IFNG", "GATA3 overexpression"}
    assert m["rna"].obsm["final_state"].shape == (3 * N, 23)
    # final states reproduce the fate labels
    np.testing.assert_array_equal(
        classify_fate(load_model("th"), m["rna"].obsm["final_state"]), obs["fate"].astype(str))

    X = m["rna"].X
    assert np.all(X >= 0) and np.all(X == np.round(X))
    assert (X == 0).mean() > 0.05
    expressed = X.mean(axis=0) > 2
    assert expressed.sum() >= 5
    assert np.all(X[:, expressed].var(axis=0) > X[:, expressed].mean(axis=0))  # overdispersed
    # counts follow activity: IFNG counts higher in control than in IFNG knockout
    g = m["rna"].var_names.get_loc("IFNG")
    assert X[obs["is_control"].to_numpy(), g].mean() > 3 * X[(obs["perturbation"] == "IFNG").to_numpy(), g].mean()

    atac = m["atac"]
    assert "chrTwin:IFNG_enh1" in atac.var_names and "chrTwin:IFNG_prom" in atac.var_names
    assert np.all(atac.X >= 0) and np.all(atac.X == np.round(atac.X))
    acc = atac.layers["accessibility"][:, atac.var_names.get_loc("chrTwin:TBX21_prom")]
    tbx = m["rna"].layers["activity"][:, m["rna"].var_names.get_loc("TBX21")]
    assert np.corrcoef(acc, tbx)[0, 1] > 0.5  # regulators of TBX21 open its promoter
    prot = m["prot"]
    assert "ADT_IFNGR1" in prot.var_names and prot.X.min() >= 0
    col = prot.var_names.get_loc("ADT_IFNGR1")
    assert prot.X[obs["is_control"].to_numpy(), col].mean() > 2 * prot.X[(obs["perturbation"] == "IFNG").to_numpy(), col].mean()


def test_seed_reproducibility(th):
    kw = dict(perturbations=[None, Perturbation("STAT1")], n_cells=100, n_steps=100)
    a, b, c = simulate(th, seed=5, **kw), simulate(th, seed=5, **kw), simulate(th, seed=6, **kw)
    for mod in ("rna", "atac", "prot"):
        np.testing.assert_array_equal(a[mod].X, b[mod].X)
    np.testing.assert_array_equal(a["rna"].layers["activity"], b["rna"].layers["activity"])
    assert not np.array_equal(a["rna"].X, c["rna"].X)
    assert not np.array_equal(a["rna"].layers["activity"], c["rna"].layers["activity"])


def test_a_gene_with_a_constant_rule_is_simulated():
    # 'G, 1' has no regulator: no enhancer drive (it gave NaN ATAC rates: 'lam value too large')
    net = read_model("targets, factors\nA, B\nB, A\nG, 1\n", format="bnet")
    mdata = simulate(net, n_cells=30, n_steps=20)
    assert np.isfinite(mdata["atac"].X).all() and mdata.n_obs == 30


def test_h5mu_roundtrip(tmp_path, th):
    import mudata

    m = simulate(th, perturbations=Perturbation("IFNG"), n_cells=30, n_steps=20)
    assert not m.obs["is_control"].any()
    path = tmp_path / "twin.h5mu"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.write(path)
        back = mudata.read_h5mu(path)
    np.testing.assert_array_equal(back["rna"].X, m["rna"].X)
    assert back.uns["twin"]["model"] == "th_mendoza2006"


def test_bad_modality(th):
    with pytest.raises(ModalityError):
        simulate(th, modalities=("rna", "hic"), n_cells=5, n_steps=5)


# ------------------------------------------------------------------ milieu in model files (issue 14)
BNET = """targets, factors
v_A, v_S & !v_B
v_B, v_A
v_C, v_A | v_C
"""


def test_bnet_comment_directives_set_inputs_initial_and_fates(tmp_path):
    path = tmp_path / "toy.bnet"
    path.write_text("# @input S = 1\n# @initial v_C = 0.7 sd 0.1\n# @fate on = A & !B\n" + BNET)
    net = read_model(path)
    assert net.inputs == ["S"] and net.input_values == {"S": 1.0}
    assert net.initial_state == {"C": 0.7} and net.initial_sd == {"C": 0.1}
    assert net.fates == {"on": "A and not B"}


@pytest.mark.parametrize("suffix", [".inputs.json", ".inputs.tsv"])
def test_bnet_sidecar_sets_the_milieu(tmp_path, suffix):
    path = tmp_path / "toy.bnet"
    path.write_text(BNET)
    side = tmp_path / f"toy{suffix}"
    if suffix.endswith("json"):
        side.write_text('{"inputs": {"v_S": [1, 0.05]}, "initial": {"C": 0.5}, '
                        '"fates": {"on": "A & !B"}}')
    else:
        side.write_text("# kind\tname\tvalue\ninput\tS\t1 sd 0.05\ninitial\tC\t0.5\n"
                        "fate\ton\tA & !B\n")
    net = read_model(path)
    assert net.input_values == {"S": 1.0} and net.input_sd == {"S": 0.05}
    assert net.initial_state == {"C": 0.5} and "on" in net.fates
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)   # active milieu: no silent-model warning
        mdata = simulate(net, n_cells=50, modalities=["rna"])
    assert len(mdata.uns["twin"]["warnings"]) == 0


@pytest.mark.parametrize(("text", "message"), [
    ('{"inputs": {"S": 2}}', "must lie in [0, 1]"),
    ('{"milieu": {}}', "expected a JSON object"),
    ("{not json", "not valid JSON"),
])
def test_bad_sidecar_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "toy.bnet"
    path.write_text(BNET)
    (tmp_path / "toy.inputs.json").write_text(text)
    with pytest.raises(ModelFileError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_model(path)


def test_silent_model_warns_and_names_its_inputs(tmp_path):
    path = tmp_path / "toy.bnet"
    path.write_text(BNET)
    net = read_model(path)
    with pytest.warns(UserWarning, match=r"all-off state.*S = 0.*--inputs S=1"):
        mdata = simulate(net, n_cells=30, modalities=["rna"])
    assert "all-off" in str(mdata.uns["twin"]["warnings"][0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        simulate(net, n_cells=30, modalities=["rna"], inputs={"S": 1.0})


def test_simulate_reads_gene_names_as_knockouts():
    from scagents.twin import simulate

    def dense(x):
        return x.toarray() if hasattr(x, "toarray") else np.asarray(x)

    kw = dict(n_cells=8, n_steps=20, seed=1)
    by_name = simulate("th", perturbations=[None, "IFNG", "TBET+GATA3"], **kw)
    by_object = simulate("th", perturbations=[None, Perturbation(("IFNG",)), Perturbation(("TBET", "GATA3"))], **kw)
    assert list(by_name["rna"].obs["perturbation"]) == list(by_object["rna"].obs["perturbation"])
    np.testing.assert_array_equal(dense(by_name["rna"].X), dense(by_object["rna"].X))
    assert simulate("th", perturbations="IFNG", n_cells=4, n_steps=10)["rna"].obs["perturbation"].nunique() == 1
    with pytest.raises(TypeError, match="perturbations: expected Perturbation objects, gene names"):
        simulate("th", perturbations=[3], n_cells=4, n_steps=10)
