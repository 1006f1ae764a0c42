import pytest

from scagents.errors import GeneNotFoundError, GoalError
from scagents.goal import parse_goal, resolve_gene

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
