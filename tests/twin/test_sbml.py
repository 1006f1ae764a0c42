"""Reading SBML-qual: the network equals the same model written as .bnet (truth tables), inputs and
initial levels are kept, names vs ids, and what is not read is refused in one line."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from scagents.errors import ModelFileError
from scagents.twin import (
    compile_network,
    initial_states,
    load_model,
    read_model,
    run_dynamics,
    simulate,
)
from scagents.twin.rules import rule_variables

QUAL = "http://www.sbml.org/sbml/level3/version1/qual/version1"


def _sbml(species: str, transitions: str, head: str = "") -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n{head}'
            f'<sbml xmlns="http://www.sbml.org/sbml/level3/version1/core" level="3" version="1" '
            f'xmlns:qual="{QUAL}" qual:required="true">\n<model id="toy">\n'
            f"<qual:listOfQualitativeSpecies>\n{species}</qual:listOfQualitativeSpecies>\n"
            f"<qual:listOfTransitions>\n{transitions}</qual:listOfTransitions>\n</model>\n</sbml>\n")


def _sp(sid: str, name: str | None = None, *, constant: bool = False, max_level: int = 1,
        initial: int | None = None) -> str:
    attrs = f'qual:id="{sid}" qual:maxLevel="{max_level}" qual:constant="{str(constant).lower()}"'
    if name is not None:
        attrs += f' qual:name="{name}"'
    if initial is not None:
        attrs += f' qual:initialLevel="{initial}"'
    return f"  <qual:qualitativeSpecies {attrs}/>\n"


def _tr(out: str, terms: list[tuple[int, str]], *, default: int = 0,
        inputs: list[tuple[str, str, int]] = (), tid: str | None = None) -> str:
    """A transition setting ``out``; ``terms`` are (resultLevel, MathML), ``inputs`` (species, id, threshold)."""
    ins = "".join(f'<qual:input qual:qualitativeSpecies="{s}" qual:id="{i}" qual:thresholdLevel="{t}" '
                  f'qual:transitionEffect="none"/>' for s, i, t in inputs)
    fts = "".join(f'<qual:functionTerm qual:resultLevel="{lv}"><math xmlns="http://www.w3.org/1998/Math/'
                  f'MathML">{m}</math></qual:functionTerm>' for lv, m in terms)
    return (f'  <qual:transition qual:id="{tid or "tr_" + out}"><qual:listOfInputs>{ins}</qual:listOfInputs>'
            f'<qual:listOfOutputs><qual:output qual:qualitativeSpecies="{out}" '
            f'qual:transitionEffect="assignmentLevel"/></qual:listOfOutputs><qual:listOfFunctionTerms>'
            f'<qual:defaultTerm qual:resultLevel="{default}"/>{fts}</qual:listOfFunctionTerms>'
            "</qual:transition>\n")


def _cmp(op: str, a: str, b: str) -> str:
    """``<apply><op/>a b</apply>``; a number is written as <cn>, a name as <ci>."""
    def tok(x: str) -> str:
        return f'<cn type="integer">{x}</cn>' if x.isdigit() else f"<ci>{x}</ci>"
    return f"<apply><{op}/>{tok(a)}{tok(b)}</apply>"


def _apply(op: str, *args: str) -> str:
    return f"<apply><{op}/>{''.join(args)}</apply>"


# GINsim style: thresholds of the inputs (ci naming the input id), geq/lt; biodivine style: eq 1/0;
# xor, implies, a default of 1 with a result-0 term, two result-1 terms, species-species eq, <true/>
TOY_SPECIES = (_sp("SIG", constant=True, initial=1) + _sp("A", initial=1) + _sp("B") + _sp("C")
               + _sp("D") + _sp("E") + _sp("F") + _sp("FREE") + _sp("G"))
TOY_TRANSITIONS = (
    _tr("A", [(1, _apply("and", _cmp("geq", "SIG", "theta_A_SIG"), _cmp("lt", "C", "theta_A_C")))],
        inputs=[("SIG", "theta_A_SIG", 1), ("C", "theta_A_C", 1)])
    + _tr("B", [(1, _apply("xor", _cmp("eq", "A", "1"), _cmp("eq", "C", "1")))])
    + _tr("C", [(1, _apply("implies", _cmp("eq", "A", "1"), _cmp("eq", "B", "1")))])
    + _tr("D", [(0, _apply("and", _cmp("eq", "A", "1"), _cmp("neq", "B", "0")))], default=1)
    + _tr("E", [(1, _cmp("eq", "A", "0")), (1, _cmp("gt", "C", "0"))])
    + _tr("F", [(1, _cmp("eq", "A", "B"))])
    + '  <qual:transition qual:id="tr_FREE"><qual:listOfOutputs><qual:output qual:qualitativeSpecies="FREE" '
      'qual:transitionEffect="assignmentLevel"/></qual:listOfOutputs></qual:transition>\n'
    + _tr("G", [(1, "<true/>")])
)
TOY_BNET = """targets, factors
# @input SIG = 1
SIG, SIG
A, SIG & !C
B, (A & !C) | (!A & C)
C, !A | B
D, !(A & B)
E, !A | C
F, (A & B) | (!A & !B)
FREE, FREE
G, 1
"""


def _eval(node: tuple, env: dict[str, np.ndarray]) -> np.ndarray:
    kind = node[0]
    if kind == "var":
        return env[node[1]]
    if kind == "const":
        return np.full(len(next(iter(env.values()))), bool(node[1]))
    if kind == "not":
        return ~_eval(node[1], env)
    parts = [_eval(c, env) for c in node[1]]
    return np.logical_and.reduce(parts) if kind == "and" else np.logical_or.reduce(parts)


def _truth_table_differences(a, b) -> list[str]:
    """Genes whose rules differ on some state (an input: no rule and ``X = X`` are the same)."""
    assert set(a.genes) == set(b.genes)
    states = np.array(list(itertools.product([False, True], repeat=len(a.genes))))
    env = {g: states[:, i] for i, g in enumerate(a.genes)}

    def rule(net, g):
        return ("var", g) if net.asts[g] is None else net.asts[g]

    return [g for g in a.genes if not np.array_equal(_eval(rule(a, g), env), _eval(rule(b, g), env))]


def test_truth_table_check_can_fail():
    one = read_model("targets, factors\nA, A\nB, A & C\nC, C\n", format="bnet")
    other = read_model("targets, factors\nA, A\nB, A | C\nC, C\n", format="bnet")
    assert _truth_table_differences(one, other) == ["B"]


def test_sbml_qual_equals_the_same_model_as_bnet(tmp_path):
    path = tmp_path / "toy.sbml"
    path.write_text(_sbml(TOY_SPECIES, TOY_TRANSITIONS))
    net = read_model(path)
    ref = read_model(TOY_BNET, format="bnet")
    assert net.format == "sbml" and net.name == "toy"
    assert net.genes == ref.genes
    assert set(net.inputs) == set(ref.inputs) == {"SIG", "FREE"}
    assert _truth_table_differences(net, ref) == []
    assert net.regulators("A") == ["SIG", "C"] and net.rules["G"] == "True"
    # signed edges come from the rules, as for .bnet
    signs = {(r.source, r.target): r.sign for r in net.edges.itertuples()}
    assert signs[("SIG", "A")] == 1 and signs[("C", "A")] == -1


def test_inputs_and_initial_levels(tmp_path):
    path = tmp_path / "toy.xml"
    path.write_text(_sbml(TOY_SPECIES, TOY_TRANSITIONS))
    net = read_model(path)
    assert net.initial_state == {"SIG": 1.0, "A": 1.0}
    assert net.input_values == {"SIG": 1.0}  # constant species: clamped at its level
    assert net.undefined_inputs == []  # every species is declared: nothing to warn about


def test_names_are_used_made_valid_and_ids_when_names_collide(tmp_path):
    species = _sp("s_1", "CycD", constant=True, initial=1) + _sp("s_2", "Rb") + _sp("s_3", "E2F")
    transitions = (_tr("s_2", [(1, _cmp("eq", "s_1", "0"))])
                   + _tr("s_3", [(1, _apply("not", _cmp("eq", "s_2", "1")))]))
    path = tmp_path / "named.sbml"
    path.write_text(_sbml(species, transitions))
    net = read_model(path)
    assert net.genes == ["CycD", "Rb", "E2F"] and net.rules == {"CycD": "", "Rb": "not CycD", "E2F": "not Rb"}
    assert net.resolve_gene("s_1") == "CycD"  # the ids stay usable as aliases

    # a name that is no gene name is made one; a species without a name keeps its id
    mixed = species.replace('"CycD"', '"Cyclin D/E"').replace(' qual:name="E2F"', "")
    path.write_text(_sbml(mixed, transitions))
    net = read_model(path)
    assert net.genes == ["Cyclin_D_E", "Rb", "s_3"] and net.rules["Rb"] == "not Cyclin_D_E"
    assert net.aliases["Cyclin D/E"] == "Cyclin_D_E" and net.resolve_gene("s_1") == "Cyclin_D_E"

    # two species whose names are the same once made valid: every gene is named by its id
    path.write_text(_sbml(species.replace('"CycD"', '"Rb/E2F"').replace('"Rb"', '"Rb_E2F"'), transitions))
    net = read_model(path)
    assert net.genes == ["s_1", "s_2", "s_3"] and net.rules["s_3"] == "not s_2"
    assert net.resolve_gene("E2F") == "s_3"  # names stay usable as aliases


def test_cellcollective_v_prefix_is_stripped_as_for_bnet(tmp_path):
    species = _sp("v_X", "v_X") + _sp("v_Y", "v_Y")
    path = tmp_path / "v.sbml"
    path.write_text(_sbml(species, _tr("v_Y", [(1, _cmp("eq", "v_X", "1"))])))
    net = read_model(path)
    assert net.genes == ["X", "Y"] and net.rules["Y"] == "X" and net.resolve_gene("v_Y") == "Y"


@pytest.mark.parametrize("text, expected", [
    (_sbml(_sp("A") + _sp("B"), _tr("B", [(1, _cmp("eq", "A", "1"))]),
           head='<!DOCTYPE sbml [<!ENTITY x "y">]>\n'), "DOCTYPE or ENTITY"),
    (_sbml(_sp("A", max_level=2) + _sp("B"), _tr("B", [(1, _cmp("geq", "A", "2"))])),
     "species 'A' has maxLevel 2: this is a multi-valued model"),
    (_sbml(_sp("A") + _sp("B"), _tr("B", [(1, _apply("plus", "<ci>A</ci>", "<cn>1</cn>"))])),
     "transition 'tr_B': MathML <plus/> is not supported; supported MathML: and, or, not"),
    (_sbml(_sp("A") + _sp("B"), _tr("B", [(2, _cmp("eq", "A", "1"))])),
     "transition 'tr_B': a functionTerm has resultLevel 2"),
    (_sbml(_sp("A") + _sp("B"), _tr("B", [(1, _cmp("eq", "Q", "1"))])),
     "<ci>Q</ci> names neither a species nor an input"),
    (_sbml(_sp("A") + _sp("B"), _tr("B", [(1, _cmp("eq", "A", "1"))]) + _tr("B", [(1, "<true/>")], tid="t2")),
     "species 'B' is also set by transition 'tr_B'"),
    ('<?xml version="1.0"?>\n<sbml xmlns="http://www.sbml.org/sbml/level3/version1/core" level="3" '
     'version="1">\n<model id="m"><listOfSpecies/></model></sbml>\n', "without qualitative species"),
    ('<?xml version="1.0"?>\n<sbml><model', "not well-formed XML"),
])
def test_what_is_not_read_is_refused_in_one_line(tmp_path, text, expected):
    path = tmp_path / "bad.sbml"
    path.write_text(text)
    with pytest.raises(ModelFileError) as err:
        read_model(path)
    msg = str(err.value)
    assert expected in msg and "\n" not in msg and str(path) in msg


def test_apply_around_one_expression_is_a_bracket():
    # some exporters write <apply><apply><eq/>...</apply></apply>
    grouped = _sbml(_sp("A") + _sp("B"), _tr("B", [(1, "<apply>" + _cmp("eq", "A", "0") + "</apply>")]))
    assert read_model(grouped).rules["B"] == "not A"


def test_doctype_is_refused_before_any_parsing(tmp_path):
    # a 'billion laughs' document: refused on sight, never expanded
    bomb = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>\n'
            "<sbml>&lol2;</sbml>\n")
    with pytest.raises(ModelFileError, match="declares a DOCTYPE or ENTITY"):
        read_model(bomb)


def test_sbml_text_is_detected_without_a_suffix(tmp_path):
    net = read_model(_sbml(TOY_SPECIES, TOY_TRANSITIONS))
    assert net.format == "sbml" and net.n_genes == 9
    path = tmp_path / "exported.txt"  # with a byte-order mark and a blank line before '<?xml'
    path.write_text("\ufeff\n" + _sbml(TOY_SPECIES, TOY_TRANSITIONS), encoding="utf-8")
    assert read_model(path).format == "sbml"


def test_load_model_of_an_sbml_file_simulates_as_its_bnet(tmp_path):
    sbml, bnet = tmp_path / "toy.sbml", tmp_path / "toy.bnet"
    sbml.write_text(_sbml(TOY_SPECIES, TOY_TRANSITIONS))
    bnet.write_text(TOY_BNET + "# @initial A = 1\n")
    from_sbml, from_bnet = load_model(str(sbml)), load_model(str(bnet))
    trajectories = []
    for net in (from_sbml, from_bnet):
        rng = np.random.default_rng(7)
        x0 = initial_states(net, 30, rng)
        trajectories.append(run_dynamics(net, x0, n_steps=40, rng=rng))
    assert trajectories[0].shape == trajectories[1].shape
    np.testing.assert_allclose(trajectories[0], trajectories[1])
    # SIG is clamped at 1 throughout
    assert np.all(trajectories[0][..., from_sbml.gene_index("SIG")] == 1.0)
    mdata = simulate(str(sbml), n_cells=40, n_steps=40, seed=0)
    assert mdata.n_obs == 40


def test_rules_nested_hundreds_deep_are_read(tmp_path):
    # machine-written conditions nest binary <and/> deeper than Python's recursion limit: read
    # iteratively and flattened
    cond = _cmp("eq", "A", "1")
    for i in range(1500):
        cond = _apply("and", cond, _cmp("eq", "B" if i % 3 else "A", "1" if i % 2 else "0"))
    path = tmp_path / "deep.sbml"
    path.write_text(_sbml(_sp("A") + _sp("B") + _sp("C"), _tr("C", [(1, cond)])))
    net = read_model(path)
    assert set(rule_variables(net.asts["C"])) == {"A", "B"} and net.asts["C"][0] == "and"


def _alternating(depth: int) -> str:
    cond = _cmp("eq", "A", "1")
    for i in range(depth):  # alternating or/and: nothing to flatten
        cond = _apply("and" if i % 2 else "or", cond, _cmp("eq", "B", "1"))
    return _sbml(_sp("A") + _sp("B") + _sp("C"), _tr("C", [(1, cond)]))


def test_rules_too_deep_to_simulate_are_refused_in_one_line():
    net = read_model(_alternating(150))  # read, but more brackets than Python compiles
    with pytest.raises(ModelFileError) as err:
        compile_network(net)
    assert "the rule of C is nested too deeply to be simulated" in str(err.value) and "\n" not in str(err.value)
    compile_network(read_model(_alternating(60)))
    with pytest.raises(ModelFileError, match=r"the rule of C is nested 402 levels deep .* more than the 300"):
        read_model(_alternating(401))


TOGGLE_BNET = """# @input SIG = 0.5 sd 0.3
# @initial A = 0.3 sd 0.2
# @initial B = 0.3 sd 0.2
# @fate Afate = A & !B
# @fate Bfate = B & !A
targets, factors
A, (SIG | A) & !B
B, !A & !SIG | B & !A
C, A | EXT
"""


def test_cli_steers_an_sbml_model_as_its_bnet(tmp_path, capsys):
    import json

    from scagents.cli import main

    one = "<cn>1</cn>"
    a, b, sig, ext = (f"<apply><eq/><ci>{g}</ci>{one}</apply>" for g in ("A", "B", "SIG", "EXT"))
    transitions = (
        _tr("A", [(1, _apply("and", _apply("or", sig, a), _apply("not", b)))])
        + _tr("B", [(1, _apply("or", _apply("and", _apply("not", a), _apply("not", sig)),
                               _apply("and", b, _apply("not", a))))])
        + _tr("C", [(1, _apply("or", a, ext))]))
    sbml = tmp_path / "toggle.sbml"
    sbml.write_text(_sbml(_sp("A") + _sp("B") + _sp("C") + _sp("SIG") + _sp("EXT"), transitions))
    # the milieu, initial states and fates of an SBML model come from its sidecar
    (tmp_path / "toggle.inputs.json").write_text(json.dumps({
        "inputs": {"SIG": [0.5, 0.3]}, "initial": {"A": [0.3, 0.2], "B": [0.3, 0.2]},
        "fates": {"Afate": "A & !B", "Bfate": "B & !A"}}))
    bnet = tmp_path / "bnet" / "toggle.bnet"
    bnet.parent.mkdir()
    bnet.write_text(TOGGLE_BNET)
    answers = []
    for model in (sbml, bnet):
        out = tmp_path / f"run_{model.suffix[1:]}"
        assert main(["run", "--model", str(model), "--goal", "drive Bfate cells to Afate", "--inputs", "SIG=1",
                     "--n-cells", "16", "--seed", "3", "--out", str(out), "--quiet"]) == 0
        answers.append(json.loads((out / "steering.json").read_text()))
    capsys.readouterr()
    for key in ("best", "control", "proposals", "task"):
        assert answers[0][key] == answers[1][key], key
