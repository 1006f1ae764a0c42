import pytest

from scagents.errors import GeneNotFoundError, GoalError
from scagents.goal import match_measured, parse_goal, resolve_gene
from scagents.perturbation import Perturbation

GENES = ["IFNG", "IFNGR1", "STAT1", "IRF1", "GATA3", "TBX21", "Pu.1", "IL12RB2"]


@pytest.mark.parametrize(
    ("text", "targets", "kind"),
    [
        ("predict IFNG knockout", ("IFNG",), "knockout"),
        ("predict STAT1 and IRF1 knockout", ("STAT1", "IRF1"), "knockout"),
        ("predict GATA3 overexpression", ("GATA3",), "overexpression"),
        ("what happens if I knock down stat1?", ("STAT1",), "knockdown"),
        ("predict TBET knockout", ("TBX21",), "knockout"),
        ("Predict the effect of PU.1 deletion", ("Pu.1",), "knockout"),
        ("predict IL12RB2", ("IL12RB2",), "knockout"),
    ],
)
def test_parse_goal(text, targets, kind):
    goal = parse_goal(text, GENES, aliases={"TBET": "TBX21"})
    assert goal.perturbation.targets == targets
    assert goal.perturbation.kind == kind
    assert goal.action == "predict"


def test_unknown_gene_names_closest():
    with pytest.raises(GeneNotFoundError, match=r"IFNGG.*Closest gene names: IFNG"):
        parse_goal("predict IFNGG knockout", GENES)


def test_goal_without_gene():
    with pytest.raises(GoalError, match="No gene of the data"):
        parse_goal("predict what happens", GENES)
    with pytest.raises(GoalError, match="empty"):
        parse_goal("   ", GENES)


def test_resolve_gene_case_and_alias():
    assert resolve_gene("gata3", GENES) == "GATA3"
    assert resolve_gene("tbet", GENES, aliases={"TBET": "TBX21"}) == "TBX21"
    with pytest.raises(GeneNotFoundError, match="STAT1"):
        resolve_gene("STAT11", GENES)


@pytest.mark.parametrize(
    "text",
    ["predict knockout and overexpression of STAT1", "predict STAT1 knockdown and overexpression",
     "predict STAT1 KO and OE", "what if I knock out and knock down STAT1?"],
)
def test_contradictory_kinds_are_refused_in_one_line(text):
    with pytest.raises(GoalError) as err:
        parse_goal(text, GENES)
    msg = str(err.value)
    assert "\n" not in msg and "one kind per run" in msg and "STAT1" in msg


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("predict STAT1 CRISPR knockdown", "knockdown"),          # CRISPR names the tool, not a kind
        ("predict STAT1 CRISPRi", "knockdown"),
        ("predict STAT1 CRISPRa", "overexpression"),
        ("predict STAT1 CRISPR", "knockout"),
        ("predict STAT1 knockout in stimulated cells", "knockout"),
        ("which genes are up-regulated after STAT1 knockout?", "knockout"),
        ("predict the effect of STAT1 knockout on T cell activation", "knockout"),
        ("activate STAT1", "overexpression"),
    ],
)
def test_generic_and_descriptive_words_are_not_contradictions(text, kind):
    assert parse_goal(text, GENES).perturbation.kind == kind


def test_perturbation_targets_are_askable_when_not_measured():
    measured = ["STAT1", "GATA3"]
    goal = parse_goal("predict IRF1 and SPI1 knockout", measured, targets=["IRF1", "SPI1", "STAT1"])
    assert goal.perturbation.targets == ("IRF1", "SPI1")
    with pytest.raises(GeneNotFoundError, match=r"IRF11.*1 genes, 1 more perturbation targets.*Closest gene names: IRF1"):
        parse_goal("predict IRF11 knockout", ["STAT1"], targets=["IRF1"])


def test_inputs_are_never_suggested():
    genes = ["TCR", "IL12A", "STAT1", "GATA3"]
    with pytest.raises(GoalError) as err:
        parse_goal("predict something", genes, inputs=["TCR", "IL12A"])
    assert "predict STAT1 knockout" in str(err.value)
    with pytest.raises(GeneNotFoundError) as err:
        parse_goal("predict TCRX knockout", genes, inputs=["TCR", "IL12A"])
    assert "TCR," not in str(err.value) and "TCR." not in str(err.value)


def _p(t, kind="knockout"):
    return Perturbation((t,), kind=kind)


@pytest.mark.parametrize(
    ("goal_kind", "data_kind", "by_default", "matched"),
    [
        ("knockout", "knockout", False, True),
        ("knockdown", "knockout", False, True),          # loss of function answers either word
        ("knockout", "knockdown", False, True),
        ("overexpression", "knockout", True, True),      # data kinds only a default: same cells
        ("overexpression", "knockout", False, False),    # named kinds: another experiment
        ("knockdown", "overexpression", False, False),
        ("overexpression", "overexpression", False, True),
    ],
)
def test_match_measured(goal_kind, data_kind, by_default, matched):
    measured = {"STAT1": _p("STAT1", data_kind), "GATA3": _p("GATA3", data_kind),
                "non-targeting": None}
    label, note = match_measured(_p("STAT1", goal_kind), measured, kinds_by_default=by_default)
    assert (label == "STAT1") is matched and (label is None) is (not matched)
    # a mismatch is always named, in one line
    assert (note != "") is (goal_kind != data_kind) and "\n" not in note
    if goal_kind != data_kind:
        assert goal_kind in note and data_kind in note


def test_match_measured_prefers_the_exact_kind():
    measured = {"STAT1": _p("STAT1"), "STAT1 overexpression": _p("STAT1", "overexpression")}
    assert match_measured(_p("STAT1", "overexpression"), measured) == ("STAT1 overexpression", "")
    assert match_measured(_p("STAT1", "knockdown"), measured)[0] == "STAT1"
    assert match_measured(_p("IRF1"), measured) == (None, "")


def test_numeric_and_underscore_gene_names_can_be_targeted():
    genes = ["1234", "5678", "gene_7", "ABC"]
    assert parse_goal("predict 1234 knockout", genes).perturbation.targets == ("1234",)
    assert parse_goal("predict 1234 and 5678 knockout", genes).perturbation.targets == ("1234", "5678")
    assert parse_goal("predict gene_7 overexpression", genes).perturbation.targets == ("gene_7",)
    # digit-led words that name no gene are not taken for unknown genes
    assert parse_goal("predict ABC knockout at 24H", genes).perturbation.targets == ("ABC",)


@pytest.mark.parametrize("genes", [["1000", "1001"], ["x", "AND", "7"], ["gene_1"]])
def test_no_gene_error_suggests_a_goal_that_parses(genes):
    with pytest.raises(GoalError) as info:
        parse_goal("predict something", genes)
    suggested = str(info.value).split('e.g. "')[1].rstrip('".')
    assert parse_goal(suggested, genes).perturbation.targets[0] in genes
