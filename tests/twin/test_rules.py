"""Reading model files: genes without a rule are named, case-only variants and unsupported formats
are refused in one line."""

from __future__ import annotations

import warnings

import pytest

from scagents.errors import ModelFileError
from scagents.twin import read_model
from scagents.twin.rules import (
    RuleSyntaxError,
    UndefinedInputWarning,
    flatten_rule,
    format_rule,
    parse_rule,
    undefined_inputs_line,
)
from tests.conftest import shared_file


def _read_quietly(text: str, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = read_model(text, **kwargs)
    return net, [w for w in caught if issubclass(w.category, UndefinedInputWarning)]


def test_case_only_variant_of_a_defined_gene_is_refused():
    text = "targets, factors\nIFNG, TBX21\nTBX21, GATA3 & !IFNg\nGATA3, !TBX21\n"
    with pytest.raises(ModelFileError) as err:
        read_model(text, format="bnet")
    msg = str(err.value)
    assert "line 3" in msg and "'IFNg'" in msg and "'IFNG'" in msg and "write 'IFNG' in the rule" in msg
    assert "\n" not in msg


def test_two_spellings_of_a_ruleless_gene_are_refused():
    text = "targets, factors\nA, SIG & !B\nB, !A & !Sig\n"
    with pytest.raises(ModelFileError, match="reads 'Sig' and another rule reads 'SIG'.*one spelling"):
        read_model(text, format="bnet")


def test_genes_without_a_rule_are_named_with_their_likely_typo():
    text = ("targets, factors\nIFNG, TBX21 & IFGN & IL12\nTBX21, GATA3 & !IFNG & TCR & GATA_3\nGATA3, !TBX21\n"
            "IL10, TCR\n")
    net, caught = _read_quietly(text, format="bnet")
    assert net.undefined_inputs == ["IFGN", "IL12", "TCR", "GATA_3"] and set(net.inputs) == set(net.undefined_inputs)
    line = undefined_inputs_line(net)
    # swapped letters and punctuation get a hint; IL12 (one digit from IL10) is often another gene: none
    assert line.startswith("4 genes have no rule and are treated as inputs: IFGN (misspelt IFNG?), IL12, TCR, "
                           "GATA_3 (misspelt GATA3?).")
    assert len(caught) == 1 and line in str(caught[0].message)


def test_declared_inputs_are_not_reported():
    # '# @input' and 'GENE, GENE' declare an input: nothing to say
    text = "# @input SIG = 1\ntargets, factors\nA, SIG & !B\nB, !A & EXT\nEXT, EXT\n"
    net, caught = _read_quietly(text, format="bnet")
    assert set(net.inputs) == {"SIG", "EXT"} and net.undefined_inputs == [] and caught == []
    assert undefined_inputs_line(net) is None


def test_shared_bnet_model_names_its_inputs():
    net, caught = _read_quietly(str(shared_file("grn/boolean_models/Th_differentiation_Mendoza2006.bnet")))
    # CellCollective's v_ prefix is stripped in the names reported
    assert sorted(net.undefined_inputs) == ["IFNb", "IL12", "IL18", "TCR"]
    assert "4 genes have no rule and are treated as inputs" in str(caught[0].message)


@pytest.mark.parametrize("name, content, kind", [
    ("m.zginml", "PK\x03\x04", "GINsim"),
    ("m.ginml", '<?xml version="1.0"?>\n<gxl><graph/></gxl>\n', "GINsim (GINML)"),
    ("m.xml", '<?xml version="1.0"?>\n<gxl><graph/></gxl>\n', "GINsim (GINML)"),
    ("m.txt", '<?xml version="1.0"?>\n<network><node/></network>\n', "XML (not SBML)"),
    ("m.bnd", "Node A { logic = B; }\n", "MaBoSS"),
    ("m.aeon", "A -> B\n$B: A\n", "AEON"),
    ("m.zip", "PK\x03\x04", "a zip archive"),
])
def test_unsupported_formats_name_the_supported_ones(tmp_path, name, content, kind):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ModelFileError) as err:
        read_model(path)
    msg = str(err.value)
    assert kind in msg and ".bnet" in msg and "SBML-qual" in msg and "BooleanNet" in msg
    assert "'Gene = rule'" in msg and "\n" not in msg


# BooleanNet (Albert et al. 2008): ranked or plain 'A* = rule' lines, 'A = B = True' initial values
BOOLEANNET = """# T-cell toy model
TCR = True
IL2 = Random
Ca2+c = False
1: NFAT* = TCR and Ca2+c   # a rank label
2: Ca2+c *= TCR and not NFAT
FOXP3* = (NFAT or IL2) and not IFNG
IFNG * = NFAT and not FOXP3
PTEN* = PTEN
"""
BOOLEANNET_AS_BNET = """targets, factors
TCR, TCR
IL2, IL2
Ca2_c, TCR & !NFAT
NFAT, TCR & Ca2_c
FOXP3, (NFAT | IL2) & !IFNG
IFNG, NFAT & !FOXP3
PTEN, PTEN
"""


def _truth_tables_equal(a, b) -> bool:
    import itertools

    def ev(node, env):
        kind = node[0]
        if kind == "var":
            return env[node[1]]
        if kind == "const":
            return bool(node[1])
        if kind == "not":
            return not ev(node[1], env)
        vals = [ev(c, env) for c in node[1]]
        return all(vals) if kind == "and" else any(vals)

    if set(a.genes) != set(b.genes) or set(a.inputs) != set(b.inputs):
        return False
    for bits in itertools.product([False, True], repeat=len(a.genes)):
        env = dict(zip(a.genes, bits, strict=True))
        for g in a.genes:
            ra = ("var", g) if a.asts[g] is None else a.asts[g]
            rb = ("var", g) if b.asts[g] is None else b.asts[g]
            if ev(ra, env) != ev(rb, env):
                return False
    return True


def test_booleannet_equals_the_same_model_as_bnet(tmp_path):
    path = tmp_path / "tcell.txt"  # detected from the 'A* =' lines, whatever the suffix
    path.write_text(BOOLEANNET)
    net, caught = _read_quietly(str(path))
    ref, _ = _read_quietly(BOOLEANNET_AS_BNET, format="bnet")
    assert net.format == "booleannet" and caught == []
    assert _truth_tables_equal(net, ref)
    # the check can fail: one rule changed
    other, _ = _read_quietly(BOOLEANNET_AS_BNET.replace("NFAT, TCR & Ca2_c", "NFAT, TCR | Ca2_c"), format="bnet")
    assert not _truth_tables_equal(net, other)


def test_booleannet_initial_values_inputs_and_plus_names():
    net, caught = _read_quietly(BOOLEANNET)
    assert set(net.inputs) == {"TCR", "IL2", "PTEN"} and net.undefined_inputs == [] and caught == []
    assert net.initial_state == {"TCR": 1.0, "IL2": 0.5, "Ca2_c": 0.0}
    assert net.initial_sd == {"IL2": 0.5}  # Random: a per-cell spread around 0.5
    assert net.rules["NFAT"] == "TCR and Ca2_c"
    assert net.resolve_gene("Ca2+c") == "Ca2_c" and net.aliases["Ca2+c"] == "Ca2_c"


def test_booleannet_genes_without_rule_or_initial_value_are_named():
    net, caught = _read_quietly("A* = EGF and not B\nB* = A\nC = D = True\n")
    assert net.undefined_inputs == ["EGF"] and set(net.inputs) == {"EGF", "C", "D"}
    assert net.initial_state == {"C": 1.0, "D": 1.0}
    line = undefined_inputs_line(net)
    assert "EGF" in line and "'GENE = True' (or False)" in line and len(caught) == 1


@pytest.mark.parametrize("text, expected", [
    ("A* = B\nB = (1, 2, 3)\n", "line 2: initial value '(1, 2, 3)' is not read: BooleanNet initial values"),
    ("A* = B\nB and C\n", "line 2: expected 'A* = rule' (update) or 'A = True'"),
    ("A* = B and\nB* = A\n", "line 1: syntax error in the rule of A"),
    ("A+* = B\nA_* = B\n", "'A+' would become 'A_'"),
])
def test_booleannet_errors_are_one_line(text, expected):
    with pytest.raises(ModelFileError) as err:
        read_model(text)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_booleannet_comment_directives_set_fates(tmp_path):
    path = tmp_path / "m.booleannet"
    path.write_text("# @fate Treg = FOXP3 & !IFNG\n" + BOOLEANNET)
    net = read_model(path)
    assert net.format == "booleannet" and net.fates == {"Treg": "FOXP3 & !IFNG"}


def test_genes_set_in_the_milieu_are_inputs_by_intent_and_not_named():
    net, _ = _read_quietly("targets, factors\nA, EGF & !B\nB, !A & TGFB\n", format="bnet")
    assert undefined_inputs_line(net, given={"EGF": 1.0}).startswith(
        "1 gene has no rule and is treated as an input: TGFB.")
    assert undefined_inputs_line(net, given={"EGF": 1.0, "TGFB": 0.0}) is None


def test_rules_nested_hundreds_of_brackets_deep_are_read():
    # machine-written models (biodivine's exports) nest brackets deeper than Python's recursion limit
    deep_or = "a"
    for name in ["b", "c"] * 600:
        deep_or = f"({name} | {deep_or})"
    net = read_model(f"targets, factors\nx, {deep_or} & !((((((((y))))))))\na, a\nb, b\nc, c\ny, y\n", format="bnet")
    assert net.asts["x"] == ("and", [("or", [("var", "c"), ("var", "b")] * 600 + [("var", "a")]),
                                     ("not", ("var", "y"))])
    assert net.rules["x"].startswith("(c or b or c or b")
    assert parse_rule("(" * 2000 + "a" + ")" * 2000) == ("var", "a")
    with pytest.raises(RuleSyntaxError, match="missing"):
        parse_rule("(" * 2000 + "a b" + ")" * 2000)


def test_flatten_rule_keeps_the_rule():
    node = parse_rule("a | (b | !(c & (d & e)))")
    assert flatten_rule(node) == ("or", [("var", "a"), ("var", "b"),
                                         ("not", ("and", [("var", "c"), ("var", "d"), ("var", "e")]))])
    assert format_rule(flatten_rule(node)) == format_rule(node)

