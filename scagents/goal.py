"""Parse a goal written in plain words into a perturbation request.

Examples of goals understood::

    predict IFNG knockout
    predict STAT1 and IRF1 knockout
    predict GATA3 overexpression
    what happens if I knock down JAK2?
    predict the effect of TBET, STAT4 knockouts

The parser is deliberately small and deterministic: it finds the kind of perturbation from its
keywords and the target genes from the words that name genes of the data (or model) or targets of
the data's measured perturbations (a screen's target need not be among the measured genes). A word
that looks like a gene symbol but is neither gets a :class:`~scagents.errors.GeneNotFoundError`
naming the closest that are. A goal naming two kinds ("knockout and overexpression") is refused.

:func:`match_measured` then finds the data's own perturbation that the goal asks about, whatever
kind word the user wrote and however the data label their perturbations.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from scagents.errors import GeneNotFoundError, GoalError
from scagents.perturbation import Perturbation

#: keyword (regular expression) → perturbation kind. Naming two of these kinds is a contradiction.
KIND_PATTERNS: tuple[tuple[str, str], ...] = (
    # verbs only for activate / up-regulate: "which genes are up-regulated" describes a response
    (r"over[- ]?express\w*|\boe\b|\bactivat(?:e|es|ing)\b|crispra|up[- ]?regulat(?:e|es|ing)\b",
     "overexpression"),
    (r"knock[- ]?downs?|knocked[- ]?down|\bkd\b|crispri|silenc\w*|inhibit\w*", "knockdown"),
    (r"knock[- ]?outs?|knocked[- ]?out|\bko\b|delet\w*|loss[- ]of[- ]function|null", "knockout"),
)

#: generic words, used only when no kind of :data:`KIND_PATTERNS` is named ("CRISPR knockdown" is a
#: knockdown; "STAT1 knockout in stimulated cells" is a knockout)
GENERIC_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"crispr\b", "knockout"),
    (r"stimulat\w*|treat\w*", "stimulation"),
)

#: kinds that remove a gene's function: the data's knockout and knockdown answer each other's goal
LOSS_OF_FUNCTION = frozenset({"knockout", "knockdown"})

#: words never taken for gene symbols even when written in capitals
STOPWORDS = frozenset(
    """PREDICT PREDICTION THE OF A AN AND OR WITH WHAT IF I WE HAPPENS HAPPEN EFFECT EFFECTS ON IN
    TO FOR KNOCKOUT KNOCKOUTS KNOCK OUT DOWN KNOCKDOWN KNOCKDOWNS OVEREXPRESSION OVEREXPRESS
    OVEREXPRESSED KO KD OE CRISPR CRISPRI CRISPRA GENE GENES DOUBLE TRIPLE COMBINED BOTH CELLS CELL
    SHOW ME TELL RESPONSE RESPONSES SIMULATE SIMULATED PERTURBATION PERTURBATIONS PERTURB
    STIMULATION STIMULATE TREAT TREATMENT DELETION DELETE SILENCE LOSS FUNCTION NULL UPREGULATE
    ACTIVATE ACTIVATION INHIBIT INHIBITION WILL DO DOES IS ARE BE AT BY FROM""".split()
)


@dataclass(frozen=True)
class Goal:
    """A parsed goal.

    Attributes
    ----------
    text
        The goal as written.
    action
        What is asked: ``"predict"`` (the response to a perturbation).
    perturbation
        The perturbation to predict.
    """

    text: str
    action: str
    perturbation: Perturbation

    def to_dict(self) -> dict:
        return {"text": self.text, "action": self.action, "perturbation": self.perturbation.to_dict()}


def _kind(text: str, example: str = "...") -> str | None:
    """The perturbation kind named in ``text``; ``None`` when none is named.

    Raises
    ------
    GoalError
        If the text names two different kinds (e.g. knockout and overexpression).
    """
    low = text.lower()
    found = {kind: m.group(0) for pattern, kind in KIND_PATTERNS
             if (m := re.search(pattern, low))}
    if len(found) > 1:
        named = " and ".join(f"{kind} ({word!r})" for kind, word in found.items())
        raise GoalError(
            f"The goal {text!r} asks for {named} at once, which contradict each other; ask for one "
            f'kind per run, e.g. "predict {example} {next(iter(found))}".')
    if found:
        return next(iter(found))
    for pattern, kind in GENERIC_PATTERNS:
        if re.search(pattern, low):
            return kind
    return None


def _candidate_tokens(text: str) -> list[str]:
    # gene names: letters, digits, '.', '-', '_' (e.g. Pu.1, HLA-DRA, IL12RB2, 1234, gene_7); a
    # word of digits only names a gene only when the data have a gene of that name
    tokens = re.findall(r"[A-Za-z0-9][A-Za-z0-9._\-]*[A-Za-z0-9]|[A-Za-z0-9]", text)
    return [t for t in tokens if t.upper() not in STOPWORDS]


def _example_goal(genes: list[str]) -> str:
    """A goal the parser reads as a knockout of one of ``genes`` (for error messages)."""
    for g in genes[:1000]:
        if _candidate_tokens(g) == [g]:
            return f"predict {g} knockout"
    return "predict IFNG knockout"


def resolve_gene(
    name: str, genes: Iterable[str], *, aliases: Mapping[str, str] | None = None,
    targets: Iterable[str] = (), inputs: Iterable[str] = (),
) -> str:
    """Return the gene of ``genes`` (or of ``targets``) that ``name`` refers to (exact,
    case-insensitive or alias).

    Parameters
    ----------
    name
        The name written by the user.
    genes
        The measured genes (or the model's genes).
    aliases
        Optional alias → gene mapping.
    targets
        Target genes of the data's perturbations: askable although they may not be measured.
    inputs
        Model inputs (fixed milieu signals): never suggested as the closest names.

    Raises
    ------
    GeneNotFoundError
        If nothing matches; the message lists the closest names (never a model input).
    """
    genes = list(genes)
    extra = [t for t in dict.fromkeys(targets) if t not in set(genes)]
    known = genes + extra
    if name in known:
        return name
    by_upper = {g.upper(): g for g in known}
    if name.upper() in by_upper:
        return by_upper[name.upper()]
    if aliases:
        alias_upper = {a.upper(): g for a, g in aliases.items()}
        if name.upper() in alias_upper and alias_upper[name.upper()] in known:
            return alias_upper[name.upper()]
    skip = {i.upper() for i in inputs}
    pool = [u for u in by_upper if u not in skip]
    close = difflib.get_close_matches(name.upper(), pool, n=5, cutoff=0.5)
    hint = ", ".join(by_upper[c] for c in close) if close else ", ".join(
        by_upper[u] for u in pool[:10]) + ", …"
    where = f"{len(genes)} genes" + (f", {len(extra)} more perturbation targets" if extra else "")
    raise GeneNotFoundError(
        f"Gene {name if len(name) <= 60 else name[:60] + '…'!r} is not in the data ({where}). "
        f"Closest gene names: {hint}. "
        "Check the spelling, or point --data at a data set that measures or perturbs this gene."
    )


def parse_goal(
    text: str,
    genes: Iterable[str],
    *,
    aliases: Mapping[str, str] | None = None,
    default_kind: str = "knockout",
    targets: Iterable[str] = (),
    inputs: Iterable[str] = (),
) -> Goal:
    """Parse a goal such as ``"predict STAT1 and IRF1 knockout"``.

    Parameters
    ----------
    text
        The goal in plain words.
    genes
        The gene names of the data or model; target genes are resolved against them.
    aliases
        Optional alias → gene mapping (e.g. ``{"TBET": "TBX21"}``).
    default_kind
        The perturbation kind when the goal names none.
    targets
        Target genes of the data's measured perturbations; a goal may name one of them although
        the gene itself is not measured (its observed cells check the answer).
    inputs
        Model inputs (fixed milieu signals, e.g. TCR on the T-helper twin): never suggested as a
        target in an error message.

    Returns
    -------
    The parsed :class:`Goal`.

    Raises
    ------
    GoalError
        If the goal is empty, names no gene, or names two contradicting kinds (knockout and
        overexpression).
    GeneNotFoundError
        If a word that looks like a gene symbol is neither in ``genes`` nor in ``targets``.
    """
    if not text or not text.strip():
        raise GoalError('The goal is empty. Write e.g. --goal "predict IFNG knockout".')
    genes = list(genes)
    targets = list(targets)
    inputs = list(inputs)
    known_upper = {g.upper() for g in (*genes, *targets)}
    alias_upper = {a.upper() for a in (aliases or {})}

    found: list[str] = []
    unknown: list[str] = []
    for token in _candidate_tokens(text):
        up = token.upper()
        if up in known_upper or up in alias_upper:
            gene = resolve_gene(token, genes, aliases=aliases, targets=targets)
            if gene not in found:
                found.append(gene)
        elif _looks_like_symbol(token):
            unknown.append(token)
    kind = _kind(text, "+".join(found) or "GENE") or default_kind
    if unknown:
        # a symbol-like word the data do not have: say which and what is close
        resolve_gene(unknown[0], genes, aliases=aliases, targets=targets, inputs=inputs)
    if not found:
        skip = {i.upper() for i in inputs}
        shown = text if len(text) <= 200 else text[:200] + "…"
        raise GoalError(
            f"No gene of the data is named in the goal {shown!r}. Name the target gene(s), e.g. "
            f'"{_example_goal([g for g in (*targets, *genes) if g.upper() not in skip])}".'
        )
    return Goal(text=text, action="predict", perturbation=Perturbation(tuple(found), kind=kind))


def match_measured(
    goal: Perturbation, measured: Mapping[str, Perturbation | None], *,
    kinds_by_default: bool = False,
) -> tuple[str | None, str]:
    """The data's perturbation a goal asks about, whatever kind word the user wrote.

    A measured perturbation answers the goal when it has the same target genes and

    1. the same kind; else
    2. the same direction (knockout and knockdown both remove function: CRISPRi data are often
       labelled "knockout" by default, and users write "knockdown" or "knockout" for either); else
    3. the data's kinds are only a default (``kinds_by_default``) and it is the only
       perturbation of those targets (e.g. a CRISPRa screen whose cells carry the default
       "knockout" label, asked about as an "overexpression"). When the data name their kinds,
       an over-expression and a loss of function of the same gene are different experiments.

    Parameters
    ----------
    goal
        The goal's perturbation.
    measured
        The data's perturbation labels → their perturbation (``None`` for labels that are not
        perturbations: controls, unassigned cells, multiplets).
    kinds_by_default
        Whether the data's kinds were assigned by default rather than given (see
        ``uns["scagents"]["data"]["perturbation_type_reason"]``).

    Returns
    -------
    label, note
        The data label of the goal's cells (``None`` when the data hold none) and a one-line note
        naming a kind mismatch (``""`` when there is none).
    """
    same = {lab: p for lab, p in measured.items()
            if p is not None and set(p.targets) == set(goal.targets)}
    if not same:
        return None, ""
    exact = [lab for lab, p in same.items() if p.kind == goal.kind]
    if exact:
        return sorted(exact)[0], ""
    lof = [lab for lab, p in same.items()
           if goal.kind in LOSS_OF_FUNCTION and p.kind in LOSS_OF_FUNCTION]
    if lof or (kinds_by_default and len(same) == 1):
        lab = sorted(lof or same)[0]
        how = " (by default: the data name no kind)" if kinds_by_default else ""
        return lab, (
            f"You asked for a {goal.kind}; the data label the cells of {lab!r} a "
            f"{same[lab].kind}{how}. They are taken as the goal's cells (held out, and used to "
            f"check the answer), and the prediction is made as a {same[lab].kind}, as the data "
            "label it.")
    kinds = ", ".join(sorted(f"{p.kind} ({lab!r})" for lab, p in same.items()))
    return None, (f"The data hold {'+'.join(goal.targets)} only as {kinds}, not as a {goal.kind}: "
                  "those cells are another experiment and are used for fitting like any other.")


def _looks_like_symbol(token: str) -> bool:
    """Gene symbols are written in capitals and/or with digits (IFNG, Stat1, Pu.1, IL12RB2)."""
    if len(token) < 2 or not token[0].isalpha():  # a word starting with a digit only names a gene
        return False                                # the data have (e.g. "1234"), never an unknown one
    has_digit = any(c.isdigit() for c in token)
    upper = sum(c.isupper() for c in token)
    return upper >= 2 or (has_digit and upper >= 1)
