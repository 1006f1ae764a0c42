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
    assert parse_goal("predict ABC knockout in 3x replicates", genes).perturbation.targets == ("ABC",)
    # a digit-led time is not an unknown gene either, but it is refused by name, never dropped
    with pytest.raises(GoalError, match=r"names a time \('at 24H'\)"):
        parse_goal("predict ABC knockout at 24H", genes)


@pytest.mark.parametrize("genes", [["1000", "1001"], ["x", "AND", "7"], ["gene_1"]])
def test_no_gene_error_suggests_a_goal_that_parses(genes):
    with pytest.raises(GoalError) as info:
        parse_goal("predict something", genes)
    suggested = str(info.value).split('e.g. "')[1].rstrip('".')
    assert parse_goal(suggested, genes).perturbation.targets[0] in genes


# ------------------------------------------------------------------------- stimulation goals
def _kang_like_obs():
    import pandas as pd

    return pd.DataFrame({
        "stim": ["CTRL", "STIM"] * 6,
        "seurat_annotations": ["CD14 Mono"] * 4 + ["B"] * 4 + ["CD4 Naive T"] * 4})


def _design():
    from scagents.goal import find_stimulation_design

    return find_stimulation_design(_kang_like_obs(), "Seurat ifnb, Kang 2018")


def test_stimulation_design_found_from_obs_and_description():
    d = _design()
    assert (d.key, d.control, d.treated) == ("stim", "CTRL", ("STIM",))
    assert d.cell_type_key == "seurat_annotations"
    assert d.treatments == {"ifnb": "IFN-β"}


@pytest.mark.parametrize(("text", "cell_type"), [
    ("predict IFN-beta stimulation", None),
    ("predict IFN-β stimulation in CD14 monocytes", "CD14 Mono"),
    ("predict IFNB in b cells", "B"),
    ("predict the effect of interferon beta in CD4 naive T cells", "CD4 Naive T"),
    ("predict stimulation in cd14 mono", "CD14 Mono"),
    ("predict STIM in B", "B"),
])
def test_parse_stimulation_goal(text, cell_type):
    from scagents.goal import is_stimulation_goal, parse_stimulation_goal

    d = _design()
    assert is_stimulation_goal(text, d)
    g = parse_stimulation_goal(text, d)
    assert g.treatment == "STIM" and g.cell_type == cell_type and g.name == "IFN-β"
    assert g.reading.startswith("Goal read as:") and "\n" not in g.reading


def test_gene_goals_are_not_stimulation_goals():
    from scagents.goal import is_stimulation_goal

    assert not is_stimulation_goal("predict STAT1 knockout", _design())
    assert not is_stimulation_goal("predict IFN-beta stimulation", None)
    # digits inside a gene symbol are not a time point ("C1D" is not "1 d", "ZC3H15" not "3 h")
    for gene in ("C1D", "ZC3H15", "SLC25A5", "C2orf3H"):
        assert not is_stimulation_goal(f"predict {gene}", _design()), gene
    assert is_stimulation_goal("what happens at 3h", _design())


@pytest.mark.parametrize(("text", "match"), [
    ("predict dexamethasone stimulation", r"not a treatment of these data: obs\['stim'\] holds 'STIM'"),
    ("predict IFN-gamma stimulation", r"IFN-γ.*description names IFN-β"),
    ("predict IFN-beta stimulation in macrophages",
     r"No cell type 'macrophages'.*its cell types are: B, CD14 Mono, CD4 Naive T"),
    ("predict IFN-beta stimulation in T cells", r"No cell type 'T cells'"),
])
def test_stimulation_goal_errors_name_what_is_available(text, match):
    from scagents.goal import parse_stimulation_goal

    with pytest.raises(GoalError, match=match) as err:
        parse_stimulation_goal(text, _design())
    assert "\n" not in str(err.value)


def test_time_course_goal():
    import pandas as pd

    from scagents.goal import find_stimulation_design, parse_stimulation_goal

    obs = pd.DataFrame({"Time": pd.Categorical(["0", "1", "3"] * 3)})
    d = find_stimulation_design(obs, "A549, dexamethasone 0/1/3 h")
    assert d.kind == "time" and d.control == "0" and d.treated == ("1", "3")
    g = parse_stimulation_goal("predict dexamethasone 3h", d)
    assert g.treatment == "3" and g.label == "dexamethasone 3 h"
    assert parse_stimulation_goal("predict dex 1 hour", d).treatment == "1"
    with pytest.raises(GoalError, match=r"No time point 2 h.*1 h, 3 h"):
        parse_stimulation_goal("predict dexamethasone 2h", d)
    with pytest.raises(GoalError, match="Name the time point"):
        parse_stimulation_goal("predict dexamethasone", d)


@pytest.mark.parametrize(
    ("text", "word", "meant"),
    [
        ("predict STAT1 overexpresion", "overexpresion", "overexpression"),
        ("predict STAT1 knockut", "knockut", "knockout"),
        ("predict STAT1 knockdwn", "knockdwn", "knockdown"),
        ("what if STAT1 is overexpresed?", "overexpresed", "overexpressed"),
    ],
)
def test_misspelt_kind_word_is_refused_not_read_as_knockout(text, word, meant):
    # a misspelt "overexpression" used to fall back to the default kind: a knockout, the opposite
    with pytest.raises(GoalError) as err:
        parse_goal(text, GENES)
    msg = str(err.value)
    assert "\n" not in msg and repr(word) in msg and repr(meant) in msg and "STAT1" in msg


@pytest.mark.parametrize("text", ["predict STAT1 with detection of IFNG", "predict the effect of STAT1",
                                  "predict STAT1 knock-out"])
def test_words_near_no_kind_word_keep_the_default(text):
    assert parse_goal(text, GENES).perturbation.kind == "knockout"


@pytest.mark.parametrize("text", ["predict STAT1 activation", "predict STAT1 upregulation",
                                  "predict STAT1 up-regulation", "predict induction of STAT1"])
def test_gain_nouns_without_a_kind_are_refused_not_read_as_knockout(text):
    # "STAT1 activation" answered as the default knockout would predict the opposite perturbation
    with pytest.raises(GoalError) as err:
        parse_goal(text, GENES)
    msg = str(err.value)
    assert "\n" not in msg and "STAT1 overexpression" in msg and "STAT1 knockout" in msg


@pytest.mark.parametrize("text, kind", [("predict STAT1 knockout in activated T cells", "knockout"),
                                        ("activate STAT1", "overexpression"),
                                        ("predict STAT1 overexpression and its activation", "overexpression")])
def test_gain_nouns_beside_a_kind_keep_the_kind(text, kind):
    assert parse_goal(text, GENES).perturbation.kind == kind


@pytest.mark.parametrize(("text", "when"), [
    ("predict GATA3 knockout at t=0.5", "at t=0.5"),
    ("predict GATA3 knockout at t = 0.5.", "at t = 0.5"),
    ("predict STAT1 knockdown after 3h", "after 3h"),
    ("what happens if I knock out IRF1 at day 2?", "at day 2"),
    ("predict IFNG knockout 30 min", "30 min"),
    ("predict TBX21 overexpression at time 5", "at time 5"),
])
def test_a_time_is_refused_not_dropped(text, when):
    # the time used to be dropped silently: the answer was for the goal without it
    from scagents.goal import goal_time

    assert goal_time(text) == when
    with pytest.raises(GoalError, match=rf"names a time \({when!r}\).*drop {when!r} from the goal, or ask X\.$"):
        parse_goal(text, GENES, time_reason="no time here", time_instead=", or ask X")
    with pytest.raises(GoalError, match="as the data measured them") as err:
        parse_goal(text, GENES)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text", [
    "predict C1D knockout", "predict ZC3H knockout", "predict STAT1 knockdown at 50%",
    "predict IL12RB2 at 0.5", "predict 3h knockout", "predict IFNG knockout in T cells",
])
def test_gene_symbols_and_bare_numbers_are_not_times(text):
    from scagents.goal import goal_time

    assert goal_time(text, {"3H"}) is None
    assert goal_time("predict C1D knockout after 2 days") == "after 2 days"


# --------------------------------------------------------------- goals as biologists write them
BIO_GENES = ["STAT1", "IRF1", "IFNG", "IFNGR1", "JAK2", "CD274", "PDCD1LG2", "SPI1", "MARCH8", "MAX"]


@pytest.mark.parametrize(
    ("text", "targets", "kind"),
    [
        ("predict IFN-γ knockout", ("IFNG",), "knockout"),
        ("IFN-gamma knockout", ("IFNG",), "knockout"),
        ("interferon gamma knockout", ("IFNG",), "knockout"),
        ("PD-L1 knockout", ("CD274",), "knockout"),
        ("PDL2 KO", ("PDCD1LG2",), "knockout"),
        ("predict PU.1 knockout", ("SPI1",), "knockout"),
        ("predict MARCHF8 knockout", ("MARCH8",), "knockout"),
        ("predict IFNG-KO", ("IFNG",), "knockout"),
        ("STAT1-KD", ("STAT1",), "knockdown"),
        ("sgSTAT1", ("STAT1",), "knockout"),
        ("shSTAT1", ("STAT1",), "knockdown"),
        ("what happens to THP-1 cells if STAT1 is deleted", ("STAT1",), "knockout"),
        ("predict JAK2 knockout in K562", ("JAK2",), "knockout"),
        ("knockout of IFNGR1 in IFN-γ stimulated THP-1 cells", ("IFNGR1",), "knockout"),
        ("predict the effect of knocking out STAT1 on IRF1 expression", ("STAT1",), "knockout"),
        ("IRF1 KO: does CD274 go down?", ("IRF1",), "knockout"),
        ("what is the max effect of STAT1 knockout", ("STAT1",), "knockout"),
        ("predict MAX knockout", ("MAX",), "knockout"),
        ("Max KO", ("MAX",), "knockout"),
    ],
)
def test_parse_goal_as_biologists_write_it(text, targets, kind):
    goal = parse_goal(text, BIO_GENES)
    assert (goal.perturbation.targets, goal.perturbation.kind) == (targets, kind)


def test_reading_is_stated_back():
    g = parse_goal("effect of IFNG", BIO_GENES)
    assert g.reading == "Goal read as: IFNG knockout (the goal names no kind: knockout by default)."
    assert g.to_dict()["reading"] == g.reading
    g = parse_goal("predict the effect of knocking out STAT1 on IRF1 expression", BIO_GENES)
    assert g.readouts == ("IRF1",) and not g.kind_by_default and "IRF1 read as read-out" in g.reading
    g = parse_goal("what happens to THP-1 cells if STAT1 is deleted", BIO_GENES)
    assert g.context == ("THP-1",) and "'THP-1' read as the cells' context" in g.reading
    assert "'PD-L1' is CD274" in parse_goal("PD-L1 knockout", BIO_GENES).reading
    assert parse_goal("predict STAT1 knockout", BIO_GENES).reading == "Goal read as: STAT1 knockout."


def test_english_word_symbol_in_lower_case_is_a_word():
    with pytest.raises(GoalError, match=r"'max' read as English: write the gene in capitals, e\.g\. 'MAX'"):
        parse_goal("predict max knockout", BIO_GENES)


def test_unknown_gene_beside_known_says_how_to_ask_the_known():
    with pytest.raises(GeneNotFoundError, match=r"Gene 'FOXP3' is not in the data.*drop 'FOXP3' to "
                                                r"predict STAT1 knockout\."):
        parse_goal("predict STAT1 and FOXP3 knockout", BIO_GENES)


def test_unknown_protein_name_names_its_symbol():
    with pytest.raises(GeneNotFoundError, match=r"Gene 'PD-L1' \(CD274\) is not in the data"):
        parse_goal("PD-L1 knockout", ["STAT1", "IRF1"])


def test_next_perturbation_question_names_where_it_is_answered():
    with pytest.raises(GoalError, match=r"asks which perturbation to test next.*scagents next "
                                        r"--campaign.*which perturbation makes Th1 cells"):
        parse_goal("what should I perturb next to get Th1", BIO_GENES)


@pytest.mark.parametrize(("text", "cell_type"), [
    ("what happens to CD14 monocytes after IFNB treatment", "CD14 Mono"),
    ("effect of IFN-β on B cells", "B"),
    ("IFN-beta response of CD4 naive T cells", "CD4 Naive T"),
])
def test_stimulation_goal_names_cells_anywhere(text, cell_type):
    from scagents.goal import parse_stimulation_goal

    g = parse_stimulation_goal(text, _design())
    assert (g.treatment, g.cell_type) == ("STIM", cell_type)


def test_stimulation_goal_word_of_several_cell_types_is_refused():
    import pandas as pd

    from scagents.goal import find_stimulation_design, parse_stimulation_goal

    obs = pd.DataFrame({"stim": ["CTRL", "STIM"] * 4,
                        "seurat_annotations": ["CD14 Mono"] * 4 + ["CD16 Mono"] * 4})
    design = find_stimulation_design(obs, "Kang 2018 IFN-beta")
    with pytest.raises(GoalError, match=r"'monocytes' names more than one cell type of "
                                        r"obs\['seurat_annotations'\]: CD14 Mono, CD16 Mono; name one"):
        parse_stimulation_goal("effect of IFN-β on monocytes", design)


def test_what_does_a_double_knockout_do_keeps_both_targets():
    g = parse_goal("what does STAT1 and IRF1 knockout do?", BIO_GENES)
    assert g.perturbation.targets == ("STAT1", "IRF1") and g.readouts == ()


def test_stimulated_by_a_model_input_points_to_inputs():
    """On the twin "IL12-stimulated cells" names the milieu: neither a target nor silently dropped."""
    from scagents.twin import load_model

    net = load_model("th")
    with pytest.raises(GoalError, match=r"IL12A is an input of the model.*--inputs IL12A=1"):
        parse_goal("predict STAT1 knockout in IL12 stimulated cells", net.genes, aliases=net.aliases,
                   inputs=net.inputs)


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("knock out IFNG and overexpress GATA3", ['"predict IFNG knockout"', '"predict GATA3 overexpression"']),
        ("overexpress GATA3 and knock out IFNG", ['"predict GATA3 overexpression"', '"predict IFNG knockout"']),
        ("IFNG and STAT1 KO and GATA3 OE", ['"predict IFNG+STAT1 knockout"', '"predict GATA3 overexpression"']),
        ("knock out STAT1 and knock down IRF1", ['"predict STAT1 knockout"', '"predict IRF1 knockdown"']),
        ("STAT1 knockout and overexpress GATA3", ['"predict GENE knockout"', '"predict GENE overexpression"']),
    ],
)
def test_mixed_kinds_over_genes_are_refused_as_unsupported_with_one_goal_each(text, asks):
    with pytest.raises(GoalError) as err:
        parse_goal(text, GENES)
    msg = str(err.value)
    assert "\n" not in msg and "combination of different kinds is not supported" in msg
    assert "one kind per run" in msg and all(a in msg for a in asks)
    assert "+GATA3 overexpression" not in msg  # never the other experiment of both genes over-expressed


def test_unknown_word_is_repeated_as_written():
    with pytest.raises(GeneNotFoundError, match=r"^Gene 'IFN-γ' \(IFNG\) is not in the data"):
        parse_goal("effect of IFN-γ", ["IFNGR1", "STAT1"], targets=["IFNGR1"])
    with pytest.raises(GeneNotFoundError, match=r"Gene 'interferon gamma' \(IFNG\).*drop 'interferon gamma'"):
        parse_goal("knock out interferon gamma and STAT1", ["IFNGR1", "STAT1"])


def test_unknown_gene_without_close_name_says_what_can_be_asked():
    genes = [f"GENE{i}" for i in range(300)]
    targets = ["STAT1", "IRF1", "IFNGR1", "CUL3", "SMAD4", "ATF2", "BRD4", "CAV1", "CD86", "ETV7"]
    with pytest.raises(GeneNotFoundError) as err:
        parse_goal("predict FOXP3 knockout", genes, targets=targets)
    msg = str(err.value)
    assert "\n" not in msg and len(msg) <= 600 and "GENE0" not in msg
    assert "perturbations of 10 genes (e.g. STAT1, IRF1, IFNGR1" in msg and "one of the data's 300 genes" in msg
    with pytest.raises(GeneNotFoundError, match=r"Genes that can be asked: IFNG, IFNGR1, STAT1"):
        resolve_gene("FOXP3", GENES)  # a model's few genes are named
