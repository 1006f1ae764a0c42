"""Reading model files: genes without a rule are named, case-only variants and unsupported formats
are refused in one line."""

from __future__ import annotations

import warnings

import pytest

from scagents.errors import ModelFileError
from scagents.twin import read_model
from scagents.twin.rules import UndefinedInputWarning, undefined_inputs_line
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
    ("m.sbml", "<sbml/>\n", "SBML-qual"),
    ("m.xml", '<?xml version="1.0"?>\n<sbml xmlns:qual="q"></sbml>\n', "SBML-qual"),
    ("m.txt", '<?xml version="1.0"?>\n<sbml></sbml>\n', "SBML-qual (XML)"),
    ("m.zginml", "PK\x03\x04", "GINsim"),
    ("m.bnd", "Node A { logic = B; }\n", "MaBoSS"),
    ("m.txt", "A* = B and not C\nB* = A\nC* = B\n", "BooleanNet"),
])
def test_unsupported_formats_name_the_supported_ones(tmp_path, name, content, kind):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ModelFileError) as err:
        read_model(path)
    msg = str(err.value)
    assert kind in msg and ".bnet" in msg and "'Gene = rule'" in msg and "\n" not in msg


def test_genes_set_in_the_milieu_are_inputs_by_intent_and_not_named():
    net, _ = _read_quietly("targets, factors\nA, EGF & !B\nB, !A & TGFB\n", format="bnet")
    assert undefined_inputs_line(net, given={"EGF": 1.0}).startswith(
        "1 gene has no rule and is treated as an input: TGFB.")
    assert undefined_inputs_line(net, given={"EGF": 1.0, "TGFB": 0.0}) is None
