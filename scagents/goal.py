"""Parse a goal written in plain words into a perturbation request.

Examples of goals understood::

    predict IFNG knockout
    predict STAT1 and IRF1 knockout
    predict GATA3 overexpression
    what happens if I knock down JAK2?
    predict the effect of TBET, STAT4 knockouts

The parser is deliberately small and deterministic: it finds the kind of perturbation from its
keywords and the target genes from the words that name genes of the data (or model). A word that
looks like a gene symbol but is not in the data gets a :class:`~scagents.errors.GeneNotFoundError`
naming the closest genes that are.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from scagents.errors import GeneNotFoundError, GoalError
from scagents.perturbation import Perturbation

#: keyword (regular expression) → perturbation kind; the first match in this order wins.
KIND_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"over[- ]?express\w*|\boe\b|activat\w*|crispra|up[- ]?regulat\w*", "overexpression"),
    (r"knock[- ]?downs?|knocked[- ]?down|\bkd\b|crispri|silenc\w*|inhibit\w*", "knockdown"),
    (r"knock[- ]?outs?|knocked[- ]?out|\bko\b|delet\w*|loss[- ]of[- ]function|null|crispr\b", "knockout"),
    (r"stimulat\w*|treat\w*", "stimulation"),
)

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


def _kind(text: str) -> str | None:
    low = text.lower()
    for pattern, kind in KIND_PATTERNS:
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
    name: str, genes: Iterable[str], *, aliases: Mapping[str, str] | None = None
) -> str:
    """Return the gene of ``genes`` that ``name`` refers to (exact, case-insensitive or alias).

    Raises
    ------
    GeneNotFoundError
        If no gene matches; the message lists the closest gene names.
    """
    genes = list(genes)
    if name in genes:
        return name
    by_upper = {g.upper(): g for g in genes}
    if name.upper() in by_upper:
        return by_upper[name.upper()]
    if aliases:
        alias_upper = {a.upper(): g for a, g in aliases.items()}
        if name.upper() in alias_upper and alias_upper[name.upper()] in genes:
            return alias_upper[name.upper()]
    close = difflib.get_close_matches(name.upper(), list(by_upper), n=5, cutoff=0.5)
    hint = ", ".join(by_upper[c] for c in close) if close else ", ".join(genes[:10]) + ", …"
    raise GeneNotFoundError(
        f"Gene {name if len(name) <= 60 else name[:60] + '…'!r} is not in the data ({len(genes)} genes). Closest gene names: {hint}. "
        "Check the spelling, or point --data at a data set that measures this gene."
    )


def parse_goal(
    text: str,
    genes: Iterable[str],
    *,
    aliases: Mapping[str, str] | None = None,
    default_kind: str = "knockout",
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

    Returns
    -------
    The parsed :class:`Goal`.

    Raises
    ------
    GoalError
        If the goal is empty or names no gene.
    GeneNotFoundError
        If a word that looks like a gene symbol is not in ``genes``.
    """
    if not text or not text.strip():
        raise GoalError('The goal is empty. Write e.g. --goal "predict IFNG knockout".')
    genes = list(genes)
    gene_upper = {g.upper() for g in genes}
    alias_upper = {a.upper() for a in (aliases or {})}
    kind = _kind(text) or default_kind

    targets: list[str] = []
    unknown: list[str] = []
    for token in _candidate_tokens(text):
        up = token.upper()
        if up in gene_upper or up in alias_upper:
            gene = resolve_gene(token, genes, aliases=aliases)
            if gene not in targets:
                targets.append(gene)
        elif _looks_like_symbol(token):
            unknown.append(token)
    if unknown:
        # a symbol-like word the data do not have: say which and what is close
        resolve_gene(unknown[0], genes, aliases=aliases)
    if not targets:
        shown = text if len(text) <= 200 else text[:200] + "…"
        raise GoalError(
            f"No gene of the data is named in the goal {shown!r}. Name the target gene(s), e.g. "
            f'"{_example_goal(genes)}".'
        )
    return Goal(text=text, action="predict", perturbation=Perturbation(tuple(targets), kind=kind))


def _looks_like_symbol(token: str) -> bool:
    """Gene symbols are written in capitals and/or with digits (IFNG, Stat1, Pu.1, IL12RB2)."""
    if len(token) < 2 or not token[0].isalpha():  # a word starting with a digit only names a gene
        return False                                # the data have (e.g. "1234"), never an unknown one
    has_digit = any(c.isdigit() for c in token)
    upper = sum(c.isupper() for c in token)
    return upper >= 2 or (has_digit and upper >= 1)
