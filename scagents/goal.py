"""Parse a goal written in plain words into a perturbation request.

Examples of goals understood::

    predict IFNG knockout
    predict STAT1 and IRF1 knockout
    predict GATA3 overexpression
    what happens if I knock down JAK2?
    predict the effect of TBET, STAT4 knockouts
    PD-L1 KO in THP-1 cells                      CD274 knockout; 'THP-1' is the cells' context
    effect of knocking out STAT1 on IRF1 expression   STAT1 knockout; IRF1 a read-out
    shSTAT1, IFNG-KO, IFN-γ knockout             STAT1 knockdown, IFNG knockout, IFNG knockout

The parser is deliberately small and deterministic: it finds the kind of perturbation from its
keywords and the target genes from the words that name genes of the data (or model) or targets of
the data's measured perturbations (a screen's target need not be among the measured genes). A word
that looks like a gene symbol but is neither gets a :class:`~scagents.errors.GeneNotFoundError`
naming the closest that are (or, when none is close, what can be asked). A goal naming two kinds
("knockout and overexpression" of one gene, or a different kind per gene) is refused.
:attr:`Goal.reading` says in one line how the goal was read (kind by default, protein names,
read-outs and context words), and the CLI prints it.

:func:`match_measured` then finds the data's own perturbation that the goal asks about, whatever
kind word the user wrote and however the data label their perturbations.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from scagents.errors import GeneNotFoundError, GoalError
from scagents.perturbation import Perturbation

#: keyword (regular expression) → perturbation kind. Naming two of these kinds is a contradiction.
KIND_PATTERNS: tuple[tuple[str, str], ...] = (
    # verbs only for activate / up-regulate: "which genes are up-regulated" describes a response
    (r"over[- ]?express\w*|\boe\b|\bactivat(?:e|es|ing)\b|crispra|up[- ]?regulat(?:e|es|ing)\b",
     "overexpression"),
    (r"knock(?:ed|ing)?[- ]?downs?|\bkd\b|crispri|silenc\w*|inhibit\w*", "knockdown"),
    (r"knock(?:ed|ing)?[- ]?outs?|\bko\b|delet\w*|loss[- ]of[- ]function|null", "knockout"),
)

#: generic words, used only when no kind of :data:`KIND_PATTERNS` is named ("CRISPR knockdown" is a
#: knockdown; "STAT1 knockout in stimulated cells" is a knockout)
GENERIC_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"crispr\b", "knockout"),
    (r"stimulat\w*|treat\w*", "stimulation"),
)

#: a question about which perturbation to test next (answered by ``scagents next`` or a steering
#: goal, not by a prediction goal naming no gene)
NEXT_QUESTION = (r"\bnext\b|\brecommend\w*|\bsuggest\w*|\bwhich\s+(?:genes?|perturbations?|knockouts?)\s+"
                 r"(?:should|to|would|will)\b|\bwhat\s+should\s+(?:I|we)\s+(?:perturb|knock|target)")

#: nouns of a gain that a goal without a kind word must not have answered as the default knockout
AMBIGUOUS_UP = r"\bactivations?\b|up[- ]?regulations?\b|\binductions?\b"

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
    kind_by_default: bool = False
    context: tuple[str, ...] = ()
    readouts: tuple[str, ...] = ()
    renamed: tuple[tuple[str, str], ...] = ()

    @property
    def reading(self) -> str:
        """One line saying how the goal was read (targets, kind, and the words not taken for
        targets), stated back to the user."""
        p = self.perturbation
        notes = []
        if self.kind_by_default:
            notes.append(f"the goal names no kind: {p.kind} by default")
        if self.renamed:
            notes.append(", ".join(f"{w!r} is {g}" for w, g in self.renamed))
        if self.readouts:
            notes.append(f"{', '.join(self.readouts)} read as read-out, not target: every gene's "
                         "response is predicted")
        if self.context:
            notes.append(f"{', '.join(repr(c) for c in self.context)} read as the cells' context, "
                         "not a target")
        return (f"Goal read as: {'+'.join(p.targets)} {p.kind}"
                + (f" ({'; '.join(notes)})" if notes else "") + ".")

    def to_dict(self) -> dict:
        return {"text": self.text, "action": self.action, "perturbation": self.perturbation.to_dict(),
                "reading": self.reading}


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


def _mixed_kinds(text: str, plain: str, found: list[str], found_at: list[int]) -> str | None:
    """The refusal of a goal giving its genes different kinds ("knock out IFNG and overexpress
    GATA3"); ``None`` when it names fewer than two kinds. A run predicts one perturbation of one
    kind (:class:`~scagents.perturbation.Perturbation`), so such a combination is not supported:
    the message says so and suggests each perturbation as its own goal: the genes after each kind
    word ("knock out A and B and overexpress C") or before it ("A knockout and C overexpression")."""
    low = plain.lower()
    words = sorted((m.start(), kind, m.group(0)) for pattern, kind in KIND_PATTERNS
                   if (m := re.search(pattern, low)))
    if len({k for _, k, _ in words}) < 2:
        return None
    genes = list(zip(found_at, found, strict=True)) if len(found_at) == len(found) else []
    events = sorted([(i, "kind", k) for i, k, _ in words] + [(i, "gene", g) for i, g in genes])
    groups: list[tuple[list[str], str]] = []  # (genes, kind) of each perturbation
    for _, what, name in events if len(words) < len(events) and events[0][1] == "kind" else ():
        if what == "kind":
            groups.append(([], name))
        else:
            groups[-1][0].append(name)
    if not groups and events and events[-1][1] == "kind" and events[0][1] == "gene":
        pending: list[str] = []
        for _, what, name in events:
            if what == "gene":
                pending.append(name)
            else:
                groups.append((pending, name))
                pending = []
    if groups and all(g for g, _ in groups):
        examples = ", then ".join(f'"predict {"+".join(g)} {k}"' for g, k in groups)
    else:
        examples = ", then ".join(f'"predict GENE {k}"' for _, k, _ in words)
    named = " and ".join(f"{k} ({w!r})" for _, k, w in words)
    shown = text if len(text) <= 120 else text[:120] + "…"
    return (f"The goal {shown!r} combines {named} of different genes: a combination of different "
            "kinds is not supported (a run predicts one perturbation, of one kind for all its "
            f"targets); ask one kind per run, each perturbation as its own goal, e.g. {examples}.")


def _as_written(text: str, plain: str, start: int, end: int) -> str:
    """The part of ``text`` that ``plain[start:end]`` (:func:`_plain_names` of ``text``) comes
    from: "IFN-γ" for the "IFNG" of "effect of IFN-γ"."""
    if text == plain:
        return plain[start:end]
    lo, hi = start, end
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, text, plain, autojunk=False).get_opcodes():
        if j1 <= start < j2 or (j1 == j2 == start):
            lo = i1 + (start - j1) if tag == "equal" else i1
        if j1 < end <= j2:
            hi = i1 + (end - j1) if tag == "equal" else i2
    return text[lo:hi].strip() or plain[start:end]


#: the kind words a goal may use, for spotting a misspelt one ("knockut", "overexpresion")
KIND_WORDS: tuple[str, ...] = (
    "knockout", "knockouts", "knockdown", "knockdowns", "overexpression", "overexpress",
    "overexpressed", "overexpressing", "deletion", "silencing", "inhibition", "crispri", "crispra",
)


def _misspelt_kind(text: str, skip: Iterable[str] = ()) -> tuple[str, str] | None:
    """A word of ``text`` that is nearly, but not exactly, a kind word.

    Parameters
    ----------
    text
        The goal in plain words, in which :func:`_kind` found no kind.
    skip
        Upper-case names never taken for a kind word (the data's genes and targets).

    Returns
    -------
    tuple[str, str] | None
        ``(word, closest kind word)``, or ``None`` when no word is that close (similarity ≥ 0.85,
        words of six letters or more, so "detection" is not read as "deletion").
    """
    skip = set(skip)
    for word in re.findall(r"[a-z]+(?:-[a-z]+)?", text.lower()):
        if len(word) < 6 or word.upper() in skip:
            continue
        close = difflib.get_close_matches(word.replace("-", ""), KIND_WORDS, n=1, cutoff=0.85)
        if close:
            return word, close[0]
    return None


def _candidate_tokens(text: str) -> list[str]:
    # gene names: letters, digits, '.', '-', '_' (e.g. Pu.1, HLA-DRA, IL12RB2, 1234, gene_7); a
    # word of digits only names a gene only when the data have a gene of that name
    tokens = re.findall(r"[A-Za-z0-9][A-Za-z0-9._\-]*[A-Za-z0-9]|[A-Za-z0-9]", text)
    return [t for t in tokens if t.upper() not in STOPWORDS]


#: protein, legacy and common names biologists write for a gene symbol (upper case, hyphens
#: dropped: "PD-L1" → "PDL1"); used when the data (or model) know the symbol, and named in the
#: error when they do not
COMMON_ALIASES: dict[str, str] = {
    "PDL1": "CD274", "B7H1": "CD274", "PDL2": "PDCD1LG2", "PD1": "PDCD1", "PU.1": "SPI1",
    "PU1": "SPI1", "TBET": "TBX21", "RORGT": "RORC", "P53": "TP53", "P21": "CDKN1A",
    "P16": "CDKN2A", "P27": "CDKN1B", "CMYC": "MYC", "OCT4": "POU5F1", "HER2": "ERBB2",
    "TIM3": "HAVCR2", "IKAROS": "IKZF1", "GMCSF": "CSF2", "MCSF": "CSF1", "TNFA": "TNF",
    "IFNGAMMA": "IFNG", "TGFB": "TGFB1",
}

#: gene symbols that are also common English words: written in lower case they are read as words
#: ("the max effect", "at rest"), written in capitals (or as a mouse symbol, "Max") as genes
ENGLISH_SYMBOLS = frozenset(
    """set max rest cat impact camp clock bad bid cast coil cope kit met pole ran star tank was
    atm ski she arc ace caps nov son mag mal lum ren tox gas tf pc spin snap ring rock top trip
    zip gap hip lamp tap mice end large""".split())

#: Greek letters (written or spelled) that end a protein name: "IFN-γ", "IFN gamma", "IL-1β"
_GREEK_SIGN = re.compile(r"(?<=[A-Za-z0-9])-?([γβακ])")
_GREEK_WORD = re.compile(r"\b(IFN|TNF|TGF|IL-?\d+)[- ]?(gamma|beta|alpha|kappa)\b", re.I)
_GREEK_LATIN = {"γ": "G", "β": "B", "α": "A", "κ": "K", "gamma": "G", "beta": "B", "alpha": "A",
                "kappa": "K"}

#: what follows a word naming the cells' context rather than a target ("THP-1 cells",
#: "IFN-γ stimulated", "K562 cell line")
_CONTEXT_AFTER = re.compile(
    r"[\s-]*(?:(?:T|B|NK)\s+)?(?:cells?|cell[\s-]lines?|lines?|monocytes?|macrophages?|"
    r"background|stimulated|stimulation|treated|treatment|primed|exposed)\b", re.I)
#: what around a gene names it as a read-out ("effect … on IRF1 expression", "does CD274 go down")
_READOUT_BEFORE = re.compile(r"\bon\s+(?:the\s+)?(?:(?:expression|levels?)\s+of\s+)?$", re.I)
_READOUT_AFTER = re.compile(r"\s+(?:expression|levels?|mrna|transcripts?|go(?:es)?\s+(?:up|down)|"
                            r"change|increase|decrease)\b", re.I)


def _plain_names(text: str) -> str:
    """``text`` with Greek-lettered protein names written as symbols ("IFN-γ", "IFN gamma",
    "interferon gamma" → "IFNG"; "IL-1β" → "IL-1B")."""
    text = re.sub(r"\binterferon[- ]?", "IFN-", text, flags=re.I)
    text = _GREEK_WORD.sub(lambda m: m.group(1) + _GREEK_LATIN[m.group(2).lower()], text)
    return _GREEK_SIGN.sub(lambda m: _GREEK_LATIN[m.group(1)], text)


def _variants(token: str) -> list[tuple[str, str]]:
    """Other spellings of ``token`` that may name a gene, each with the kind it implies (``""``:
    none): without hyphens ("PD-L1"), without a kind suffix ("IFNG-KO"), without a guide prefix
    ("sgSTAT1", "shSTAT1"), a common or protein name (:data:`COMMON_ALIASES`) and renamed HGNC
    families (MARCH8 ↔ MARCHF8, SEPT2 ↔ SEPTIN2)."""
    out = [(token.replace("-", ""), "")]
    if m := re.fullmatch(r"(.+?)-(KO|KD|OE|null)", token, re.I):
        kind = {"kd": "knockdown", "oe": "overexpression"}.get(m.group(2).lower(), "knockout")
        out.append((m.group(1), kind))
    if m := re.fullmatch(r"(sg|sh|si)([A-Z0-9].*)", token):
        out.append((m.group(2), "" if m.group(1) == "sg" else "knockdown"))
    for name, kind in list(out):
        up = name.upper()
        if up in COMMON_ALIASES:
            out.append((COMMON_ALIASES[up], kind))
        for a, b in ((r"MARCHF(\d+)", r"MARCH\1"), (r"MARCH(\d+)", r"MARCHF\1"),
                     (r"SEPTIN(\d+)", r"SEPT\1"), (r"SEPT(\d+)", r"SEPTIN\1")):
            if re.fullmatch(a, up):
                out.append((re.sub(a, b, up), kind))
    return out


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
        If nothing matches; the message lists the closest names (never a model input) or, when
        none is close, what can be asked (the data's perturbation targets, or its genes).
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
    where = f"{len(genes)} genes" + (f", {len(extra)} more perturbation targets" if extra else "")
    if close:
        hint = f"Closest gene names: {', '.join(by_upper[c] for c in close)}. Check the spelling, or"
    else:  # the first names of the data mean nothing to the user: say what can be asked
        hint = "No gene name is close. " + _askable(genes, targets, skip) + " Or"
    raise GeneNotFoundError(
        f"Gene {name if len(name) <= 60 else name[:60] + '…'!r} is not in the data ({where}). "
        f"{hint} point --data at a data set that measures or perturbs this gene."
    )


def _askable(genes: list[str], targets: Iterable[str], skip: set[str], shown: int = 8) -> str:
    """What a goal can ask about: the data's perturbation targets (``targets``, in the order
    given: a caller listing the most measured first shows those), then any of the data's genes;
    without targets, the genes themselves when they are few (a model's)."""
    targets = [t for t in dict.fromkeys(targets) if t.upper() not in skip]
    if targets:
        more = ", …" if len(targets) > shown else ""
        return (f"The data measure perturbations of {len(targets)} gene{'s' * (len(targets) > 1)} "
                f"(e.g. {', '.join(targets[:shown])}{more}); a gene whose perturbation is not "
                f"measured can be asked when it is one of the data's {len(genes)} genes.")
    named = [g for g in genes if g.upper() not in skip]
    if len(named) <= 3 * shown:
        return f"Genes that can be asked: {', '.join(named)}."
    return f"Name one of the data's {len(genes)} genes."


#: a time written in a goal: "t=0.5", "at time 5", "after 3h", "30 min", "day 2", "at 1 day"; a bare
#: number without a time word or unit ("at 50%", "knockdown at 0.5") is not read as a time. The
#: look-behind keeps digits inside gene symbols ("C1D", "ZC3H") from reading as "1 d", "3 h".
#: units of a time point in hours, minutes or days (treatment time courses: :func:`_hours`)
_HOUR_UNITS = r"h|hr|hrs|hour|hours|min|mins|minute|minutes|d|day|days"
_UNIT = rf"(?:{_HOUR_UNITS}|weeks?)"
_NUM = r"\d+(?:\.\d+)?"
GOAL_TIME = re.compile(
    r"(?:\b(?:at|after|before|from|until|by|within|over|for|in)\s+)?"
    r"(?P<time>\bt\s*=\s*" + _NUM
    + r"|\b(?:time(?:\s*point)?|timepoint|day|hour|week|minute)\s+" + _NUM + r"(?:\s*" + _UNIT + r")?"
    + r"|(?<![\w.])" + _NUM + r"\s*" + _UNIT + r")(?!\w|\.\d)",
    re.I)

#: why a genetic goal's time cannot be honoured on measured data (the default of ``parse_goal``)
DATA_TIME_REASON = ("a genetic perturbation is predicted for its cells as the data measured them, "
                    "with no time point to choose")


def goal_time(text: str, skip: Iterable[str] = ()) -> str | None:
    """The time a goal names ("at t=0.5", "after 3h", "day 2"); ``None`` when it names none.

    Parameters
    ----------
    text
        The goal in plain words.
    skip
        Upper-case names (the data's genes) never read as a time although they look like one.
    """
    skip = set(skip)
    for m in GOAL_TIME.finditer(text):
        if m.group("time").upper() not in skip:
            return m.group(0).strip()
    return None


def parse_goal(
    text: str,
    genes: Iterable[str],
    *,
    aliases: Mapping[str, str] | None = None,
    default_kind: str = "knockout",
    targets: Iterable[str] = (),
    inputs: Iterable[str] = (),
    time_reason: str = DATA_TIME_REASON,
    time_instead: str = "",
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
    time_reason, time_instead
        Why a time in the goal cannot be honoured, and what else to ask (``", or ask …"``), both
        said in the refusal. A genetic goal's prediction never takes a time; a treatment time
        course is asked by :func:`parse_stimulation_goal`, which is not this function.

    Returns
    -------
    The parsed :class:`Goal`.

    Raises
    ------
    GoalError
        If the goal is empty, names a time (:func:`goal_time`: never silently dropped), names no
        gene, names two contradicting kinds (knockout and overexpression), or names no kind but a
        misspelt kind word ("overexpresion").
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
    if (when := goal_time(text, known_upper | alias_upper)) is not None:
        # a time the prediction cannot honour must not be dropped silently: the answer would be for
        # another experiment than the one asked
        raise GoalError(f"The goal names a time ({when!r}) that this run cannot honour: {time_reason}; "
                        f"drop {when!r} from the goal{time_instead}.")

    known = known_upper | alias_upper
    found: list[str] = []
    found_at: list[int] = []  # where each found gene is first written in ``plain``
    unknown: list[str] = []
    unknown_as: list[str] = []  # each unknown word as the user wrote it ("IFN-γ" for "IFNG")
    context: list[str] = []
    readouts: list[str] = []
    context_genes: list[str] = []
    renamed: list[tuple[str, str]] = []
    english: list[str] = []
    implied: set[str] = set()
    plain = _plain_names(text)
    for m in re.finditer(r"[A-Za-z0-9][A-Za-z0-9._\-]*[A-Za-z0-9]|[A-Za-z0-9]", plain):
        token = m.group(0)
        up = token.upper()
        if up in STOPWORDS:
            continue
        before, after = plain[:m.start()], plain[m.end():]
        in_context = bool(_CONTEXT_AFTER.match(after))
        name = token if up in known else next((v for v, _ in _variants(token) if v.upper() in known),
                                              None)
        if name is not None and token.islower() and token.isalpha() and token in ENGLISH_SYMBOLS:
            english.append(token)  # "the max effect": a word; "MAX" is the gene
            continue
        if name is None:
            if _looks_like_symbol(token) and not in_context and not re.search(r"\bin\s+(?:the\s+)?$",
                                                                                 before, re.I):
                unknown.append(token)
                unknown_as.append(_as_written(text, plain, m.start(), m.end()))
            elif _looks_like_symbol(token):
                context.append(token)
            continue
        gene = resolve_gene(name, genes, aliases=aliases, targets=targets)
        implied |= {k for v, k in _variants(token) if k and v.upper() == name.upper()}
        if name != token and gene.upper() != token.replace("-", "").upper():
            renamed.append((token, gene))
        if _READOUT_BEFORE.search(before) or _READOUT_AFTER.match(after):
            readouts.append(gene)
        elif in_context:
            context.append(token)
            context_genes.append(gene)
        elif gene not in found:
            found.append(gene)
            found_at.append(m.start())
    # a read-out or context word is the target when the goal names no other ("predict IFNG
    # stimulation" on a model of IFNG)
    if milieu := [g for g in context_genes if g in set(inputs)]:
        # "in IL12-stimulated cells" on the twin: the milieu is set by --inputs, not by the goal's words
        raise GoalError(
            f"{milieu[0]} is an input of the model (its milieu), which the goal's words do not set: "
            f"drop it from the goal and pass --inputs {milieu[0]}=1 (or 0).")
    if not found and (readouts or context_genes):
        found = list(dict.fromkeys(readouts + context_genes))
        readouts, context = [], [c for c in context if c.upper() not in {f.upper() for f in found}
                                 and not any(v.upper() in known for v, _ in _variants(c))]
    renamed = [(w, g) for w, g in renamed if g in found]
    if len(found) > 1 and (mixed := _mixed_kinds(text, plain, found, found_at)) is not None:
        raise GoalError(mixed)
    kind = _kind(text, "+".join(found) or "GENE")
    if kind is None and (typo := _misspelt_kind(text, known_upper | alias_upper)) is not None:
        # a misspelt kind word must not fall back silently to the default (an "overexpresion"
        # goal answered as a knockout predicts the opposite perturbation)
        raise GoalError(
            f"{typo[0]!r} in the goal {text!r} is not a perturbation kind; did you mean {typo[1]!r}? "
            f'Write e.g. "predict {"+".join(found) or "GENE"} {typo[1]}" (knockout, knockdown or '
            "overexpression).")
    if kind is None and found and (noun := re.search(AMBIGUOUS_UP, text.lower())) is not None:
        # "STAT1 activation" may mean more of the gene (CRISPRa) or of its protein's activity: never the
        # default knockout, which is the opposite perturbation
        raise GoalError(
            f"{noun.group(0)!r} in the goal {text!r} is not read as a perturbation kind; write "
            f'"predict {"+".join(found)} overexpression" (more of the gene, e.g. CRISPRa) or '
            f'"predict {"+".join(found)} knockout".')
    if not found and re.search(NEXT_QUESTION, text, re.I):
        # "what should I perturb next": not a response to predict; say where it is answered
        raise GoalError(
            f"The goal {text if len(text) <= 120 else text[:120] + '…'!r} asks which perturbation "
            "to test next, but names no gene whose response to predict: name one (every run also "
            'ranks the next perturbations, "next #1…"), e.g. "predict STAT1 knockout"; use '
            '`python -m scagents next --campaign NAME --goal ...` for the next round of a screen, '
            'or a steering goal on the twin, e.g. "which perturbation makes Th1 cells".')
    by_default = kind is None and len(implied) != 1
    kind = kind or (next(iter(implied)) if len(implied) == 1 else default_kind)
    if unknown:
        # a symbol-like word the data do not have: say which and what is close
        word, written = unknown[0], unknown_as[0]
        alias = next((v for v, _ in _variants(word)[1:] if v in COMMON_ALIASES.values()), None)
        try:
            resolve_gene(alias or word, genes, aliases=aliases, targets=targets, inputs=inputs)
        except GeneNotFoundError as e:
            msg = str(e)
            if (alias or word) != written:  # repeat what the user typed: "'IFN-γ' (IFNG)"
                msg = msg.replace(f"Gene {alias or word!r}", f"Gene {written!r} ({alias or word})", 1)
            if found:  # the goal's other genes are known: say how to ask about them alone
                msg += (f" The goal's other gene{'s' if len(found) > 1 else ''} "
                        f"({'+'.join(found)}) {'are' if len(found) > 1 else 'is'} known: drop "
                        f"{written!r} to predict {'+'.join(found)} {kind}.")
            raise GeneNotFoundError(msg) from None
    if not found:
        skip = {i.upper() for i in inputs}
        shown = text if len(text) <= 200 else text[:200] + "…"
        words = (f" ({', '.join(repr(w) for w in english)} read as English: write the gene in "
                 f"capitals, e.g. {english[0].upper()!r})") if english else ""
        raise GoalError(
            f"No gene of the data is named in the goal {shown!r}{words}. Name the target gene(s), e.g. "
            f'"{_example_goal([g for g in (*targets, *genes) if g.upper() not in skip])}".'
        )
    return Goal(text=text, action="predict", perturbation=Perturbation(tuple(found), kind=kind),
                kind_by_default=by_default, context=tuple(dict.fromkeys(context)),
                readouts=tuple(dict.fromkeys(readouts)), renamed=tuple(dict.fromkeys(renamed)))


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


# --------------------------------------------------------------------------- stimulation goals
#: obs columns holding each cell's treatment condition (first found wins, case-insensitive)
CONDITION_KEYS: tuple[str, ...] = (
    "stim", "stimulation", "stimulated", "condition", "conditions", "treatment", "treated",
    "cytokine", "drug", "compound")
#: obs columns holding each cell's time point (hours) of a treatment time course
TIME_KEYS: tuple[str, ...] = ("time", "timepoint", "time_point", "hours", "hour", "treatment_time",
                              "time_h", "timepoint_h")
#: obs columns holding each cell's type (first found wins, case-insensitive)
CELL_TYPE_KEYS: tuple[str, ...] = (
    "seurat_annotations", "cell_type", "celltype", "cell_types", "celltypes", "cell_label",
    "cell_type_label", "annotation", "annotations", "cell_ontology_class", "predicted_celltype",
    "celltype_major", "broad_cell_type")

#: treatment names (normalised, see :func:`_canon`) → the canonical name and how it is shown;
#: a goal and the data's own description are matched on the canonical name
TREATMENTS: dict[str, tuple[str, str]] = {
    **{k: ("ifnb", "IFN-β") for k in ("ifnb", "ifnbeta", "interferonb", "interferonbeta", "ifnb1")},
    **{k: ("ifng", "IFN-γ") for k in ("ifng", "ifngamma", "interferong", "interferongamma")},
    **{k: ("ifna", "IFN-α") for k in ("ifna", "ifnalpha", "interferona", "interferonalpha")},
    **{k: ("dex", "dexamethasone") for k in ("dex", "dexamethasone", "dexa")},
    **{k: ("lps", "LPS") for k in ("lps", "lipopolysaccharide")},
    **{k: ("tnf", "TNF-α") for k in ("tnf", "tnfa", "tnfalpha")},
    **{k: ("tgfb", "TGF-β") for k in ("tgfb", "tgfbeta", "tgfb1")},
    **{k: ("pma", "PMA/ionomycin") for k in ("pma", "pmaionomycin", "pmaiono")},
    **{k: ("il2", "IL-2") for k in ("il2",)}, **{k: ("il4", "IL-4") for k in ("il4",)},
    **{k: ("il6", "IL-6") for k in ("il6",)}, **{k: ("il10", "IL-10") for k in ("il10",)},
}

#: words of a stimulation goal that name no treatment, time or cell type
_STIM_FILLER = frozenset(
    """predict prediction the of a an and with what if happens happen effect effects on to for
    response responses stimulation stimulate stimulated stimulating treatment treat treated
    treating exposure exposed profile profiles expression cells cell after under by at is are
    will do does show me tell""".split())
_GENERIC_STIM = re.compile(r"stimulat\w*|treat\w*|expos\w*", re.I)
_TIME_RE = re.compile(rf"(?<![\w.])({_NUM})\s*({_HOUR_UNITS})\b", re.I)
_CELL_WORDS = (("monocytes", "mono"), ("monocyte", "mono"), ("dendriticcells", "dc"),
               ("dendriticcell", "dc"), ("megakaryocytes", "mk"), ("megakaryocyte", "mk"),
               ("erythrocytes", "eryth"), ("erythroid", "eryth"), ("naturalkiller", "nk"),
               ("tcells", "t"), ("tcell", "t"), ("bcells", "b"), ("bcell", "b"),
               ("nkcells", "nk"), ("cells", ""), ("cell", ""))


def _canon(text: str) -> str:
    """Lower-case alphanumeric form of a name with Greek letters spelled as one Latin letter
    ("IFN-β", "IFN-beta", "IFNB" → "ifnb")."""
    t = str(text).lower()
    for greek, latin in (("β", "b"), ("γ", "g"), ("α", "a"), ("beta", "b"), ("gamma", "g"),
                         ("alpha", "a")):
        t = t.replace(greek, latin)
    return re.sub(r"[^a-z0-9]", "", t.replace("interferon", "ifn"))


def _join_names(text: str) -> str:
    """Join treatment names written as two words ("interferon beta", "IFN gamma") into one."""
    return re.sub(r"\b(interferon|ifn)[\s-]+(beta|gamma|alpha|β|γ|α)(?![\w-])", r"IFN-\2", text,
                  flags=re.I)


def _hours(label: str) -> float | None:
    """Hours of a time-point label ("0", "3h", "30 min", "1 day"); ``None`` if it is not one."""
    s = str(label).strip().lower()
    m = re.fullmatch(rf"({_NUM})\s*({_HOUR_UNITS})?", s)
    if not m:
        return None
    unit = (m.group(2) or "h")[0]
    return float(m.group(1)) * {"h": 1.0, "m": 1 / 60, "d": 24.0}[unit]


def _fmt_hours(h: float) -> str:
    return f"{h:g} h"


@dataclass(frozen=True)
class StimulationDesign:
    """The stimulation structure of a data set's ``obs``.

    Attributes
    ----------
    key
        The column of each cell's condition (``"stim"``) or time point (``"Time"``).
    control
        The control level (``"CTRL"``, ``"0"``).
    treated
        The other levels, in order (by time for a time course).
    kind
        ``"condition"`` or ``"time"`` (levels are time points; ``hours`` gives each one's hours).
    hours
        Level → hours (time courses only).
    cell_type_key
        The column of each cell's type (``None`` when the data have none).
    cell_types
        The cell types, sorted.
    treatments
        Canonical treatment names (:data:`TREATMENTS`) the data's description names → shown name.
    """

    key: str
    control: str
    treated: tuple[str, ...]
    kind: str = "condition"
    hours: dict = field(default_factory=dict)
    cell_type_key: str | None = None
    cell_types: tuple[str, ...] = ()
    treatments: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"key": self.key, "control": self.control, "treated": list(self.treated),
                "kind": self.kind, "hours": dict(self.hours), "cell_type_key": self.cell_type_key,
                "cell_types": list(self.cell_types), "treatments": dict(self.treatments)}


def _column(obs, names: tuple[str, ...]) -> str | None:
    lower = {str(c).lower(): str(c) for c in obs.columns}
    return next((lower[n] for n in names if n in lower), None)


def find_stimulation_design(obs, description: str = "") -> StimulationDesign | None:
    """The treatment structure of ``obs``: a condition column with one control level, or a
    time-course column whose earliest time point is 0 h; ``None`` when there is neither.

    Parameters
    ----------
    obs
        The cells' annotations (a pandas DataFrame).
    description
        Free text describing the data (e.g. ``uns["source"]``): treatment names it mentions
        (:data:`TREATMENTS`) may be used in a goal although the condition column names none
        (Kang 2018 labels its cells ``CTRL`` / ``STIM``; its description names IFN-β).
    """
    from scagents.data.validate import is_control_label

    cell_key = _column(obs, CELL_TYPE_KEYS)
    cell_types = () if cell_key is None else tuple(sorted(
        str(v) for v in obs[cell_key].dropna().astype(str).unique()))
    words = {_canon(w) for w in re.findall(r"[^\s,;:()/\[\]._]+", description)}
    design = None
    for key in [k for k in (_column(obs, TIME_KEYS), _column(obs, CONDITION_KEYS)) if k]:
        levels = [str(v) for v in obs[key].dropna().astype(str).unique()]
        if len(levels) < 2:
            continue
        hours = {lv: _hours(lv) for lv in levels}
        if all(h is not None for h in hours.values()) and min(hours.values()) == 0.0:
            order = sorted(levels, key=lambda lv: hours[lv])
            design = StimulationDesign(key=key, control=order[0], treated=tuple(order[1:]),
                                       kind="time", hours={lv: hours[lv] for lv in order})
            break
        controls = [lv for lv in levels if is_control_label(lv)]
        if len(controls) == 1:
            design = StimulationDesign(key=key, control=controls[0],
                                       treated=tuple(sorted(lv for lv in levels
                                                            if lv != controls[0])))
            break
    if design is None:
        return None
    words |= {_canon(w) for w in (design.key, *design.treated)}
    named = {TREATMENTS[w][0]: TREATMENTS[w][1] for w in sorted(words) if w in TREATMENTS}
    return StimulationDesign(**{**design.__dict__, "cell_type_key": cell_key,
                                "cell_types": cell_types, "treatments": named})


@dataclass(frozen=True)
class StimulationGoal:
    """A parsed stimulation goal ("predict IFN-beta stimulation in CD14 monocytes").

    Attributes
    ----------
    text
        The goal as written.
    treatment
        The level of the condition column whose cells answer the goal (``"STIM"``, ``"3"``).
    name
        The treatment as shown (``"IFN-β"``; the level itself when nothing names it).
    cell_type
        The cell type asked about (a value of the cell-type column); ``None``: all cells.
    design
        The data's :class:`StimulationDesign`.
    reading
        One line saying how the goal was read.
    """

    text: str
    treatment: str
    name: str
    cell_type: str | None
    design: StimulationDesign
    reading: str

    @property
    def label(self) -> str:
        """``"IFN-β stimulation (STIM) in CD14 Mono"``-style label of the goal."""
        if self.design.kind == "time":
            what = f"{self.name} {_fmt_hours(self.design.hours[self.treatment])}"
        else:
            what = f"{self.name} stimulation"
        return what + (f" in {self.cell_type}" if self.cell_type else "")

    def to_dict(self) -> dict:
        return {"text": self.text, "action": "predict", "treatment": self.treatment,
                "name": self.name, "cell_type": self.cell_type, "label": self.label,
                "reading": self.reading, "design": self.design.to_dict()}


def _match_cell_type(phrase: str, cell_types: tuple[str, ...]) -> str | None:
    """The cell type ``phrase`` names: case-, spacing- and plural-insensitive, with common words
    shortened as annotations write them ("CD14 monocytes" → "CD14 Mono", "B cells" → "B")."""
    def norm(s: str) -> str:
        s = _canon(s)
        for long, short in _CELL_WORDS:
            s = s.replace(long, short)
        return s

    want = norm(phrase)
    by_norm = {norm(c): c for c in cell_types}
    for cand in (want, want[:-1] if want.endswith("s") else want):
        if cand in by_norm:
            return by_norm[cand]
    return None


def is_stimulation_goal(text: str | None, design: StimulationDesign | None) -> bool:
    """Whether a goal asks about the data's treatment rather than a genetic perturbation: the data
    have a treatment design and the goal names no genetic kind (knockout, knockdown,
    over-expression) but a treatment word, a time point, a treatment level or name, or a cell
    type of the data."""
    if not text or design is None:
        return False
    low = text.lower()
    if any(re.search(p, low) for p, _ in KIND_PATTERNS) or re.search(r"crispr", low):
        return False
    if _GENERIC_STIM.search(low) or _TIME_RE.search(low):
        return True
    words = {_canon(w) for w in re.findall(r"[^\s,;:?!]+", _join_names(text))}
    canon = {TREATMENTS[w][0] for w in words if w in TREATMENTS}
    levels = {_canon(lv) for lv in design.treated}
    return bool(canon or words & levels)


def parse_stimulation_goal(text: str, design: StimulationDesign) -> StimulationGoal:
    """Parse a stimulation goal against the data's :class:`StimulationDesign`.

    Understood: ``"predict IFN-beta stimulation"``, ``"predict IFN-β stimulation in CD14
    monocytes"``, ``"predict STIM in B cells"`` (the column's own level), ``"predict stimulation"``
    (the data's only treatment), ``"predict dexamethasone 3h"`` (a time point of a time course).
    The treatment may be named by the column's level, by a name the data's description gives
    (IFN-β for Kang 2018, written "IFN-beta", "IFN-β", "IFNB" or "interferon beta"), or left
    generic ("stimulation") when the data hold one treatment.

    Raises
    ------
    GoalError
        One line naming what is unknown (treatment, time point or cell type) and what the data
        hold.
    """
    if not text or not text.strip():
        raise GoalError('The goal is empty. Write e.g. --goal "predict stimulation".')
    where = f"obs[{design.key!r}]"
    names = ", ".join(design.treatments.values())
    available = (f"{where} holds {', '.join(repr(t) for t in design.treated)} (control "
                 f"{design.control!r})" + (f"; the data's description names {names}" if names
                                           else ""))
    body, cell_type, cell_note = text.strip().rstrip("?.! "), None, ""
    body = _join_names(body)
    m = ([None, *re.finditer(r"\bin\s+(?!the\b)", body, re.I)])[-1]
    if m is not None:
        m = re.match(r"(.*)\bin\s+([^,;]+?)\s*$", body, re.I | re.S)
    if m and not _TIME_RE.fullmatch(m.group(2).strip()):
        phrase = m.group(2).strip()
        if not design.cell_types:
            raise GoalError(f"The goal names the cells {phrase!r}, but the data have no cell-type "
                            f"column (looked for {', '.join(CELL_TYPE_KEYS[:5])}, …); ask without "
                            "'in …' to predict all cells.")
        cell_type = _match_cell_type(phrase, design.cell_types)
        if cell_type is None:
            raise GoalError(f"No cell type {phrase!r} in obs[{design.cell_type_key!r}] (names are "
                            "matched case- and spacing-insensitively; 'monocytes' reads as 'Mono'); "
                            f"its cell types are: {', '.join(design.cell_types)}.")
        if _canon(phrase) != _canon(cell_type):
            cell_note = f" ({phrase!r} → {cell_type!r})"
        body = m.group(1).strip()
    level, name, how = None, None, ""
    if design.kind == "time":
        t = _TIME_RE.search(body)
        if t is None:
            times = ", ".join(_fmt_hours(design.hours[lv]) for lv in design.treated)
            raise GoalError(f"Name the time point to predict: {where} holds the time points "
                            f"{times} after control {_fmt_hours(design.hours[design.control])}, "
                            'e.g. "predict ' + f'{names or "treatment"} '
                            f'{_fmt_hours(design.hours[design.treated[-1]]).replace(" ", "")}".')
        hours = _hours(t.group(1) + t.group(2))
        level = next((lv for lv in design.treated if design.hours[lv] == hours), None)
        if level is None:
            times = ", ".join(_fmt_hours(design.hours[lv]) for lv in design.treated)
            raise GoalError(f"No time point {_fmt_hours(hours)} in {where}; its treated time points "
                            f"are {times} (control {_fmt_hours(design.hours[design.control])}).")
        body = body[:t.start()] + body[t.end():]
    if cell_type is None and design.cell_types:
        # the cells named elsewhere than "in …" ("what happens to CD14 monocytes after IFN-β",
        # "effect of IFN-β on B cells"): the longest run of words that is a cell type of the data
        spans = list(re.finditer(r"[^\s,;:?!]+", body))
        hit = next(((i, n, c) for n in (3, 2, 1) for i in range(len(spans) - n + 1)
                    if spans[i].group(0).lower() not in _STIM_FILLER
                    and (c := _match_cell_type(" ".join(w.group(0) for w in spans[i:i + n]),
                                               design.cell_types)) is not None), None)
        if hit is not None:
            i, n, cell_type = hit
            phrase = body[spans[i].start():spans[i + n - 1].end()]
            if _canon(phrase) != _canon(cell_type):
                cell_note = f" ({phrase!r} → {cell_type!r})"
            body = body[:spans[i].start()] + body[spans[i + n - 1].end():]
    words = [w for w in re.findall(r"[^\s,;:?!]+", body) if w.lower() not in _STIM_FILLER]
    by_level = {_canon(lv): lv for lv in design.treated}
    named = []
    for w in words:
        c = _canon(w)
        if design.kind == "condition" and c in by_level:
            level = by_level[c]
            how = f"{w!r} is the level {level!r} of {where}"
        elif c in TREATMENTS:
            named.append((w, TREATMENTS[c]))
        elif c:
            unknown = w
            several = [t for t in design.cell_types if _match_cell_type(w, tuple(t.split()))]
            if several:  # "monocytes", "T cells": a word of more than one cell type
                raise GoalError(f"{w!r} names more than one cell type of obs[{design.cell_type_key!r}]: "
                                f"{', '.join(several)}; name one, e.g. \"... in {several[0]}\".")
            raise GoalError(f"{unknown!r} is not a treatment of these data: {available}. Ask e.g. "
                            f'"predict {next(iter(design.treatments.values()), design.treated[0])}'
                            f'{" stimulation" if design.kind == "condition" else ""}'
                            + (f" in {design.cell_types[0]}" if design.cell_types else "") + '".')
    for w, (canon, shown) in named:
        if canon not in design.treatments:
            raise GoalError(f"{w!r} ({shown}) is not a treatment of these data: {available}.")
        name = shown
        how = how or (f"{w!r} is {shown}, which the data's description names")
    if level is None:
        if len(design.treated) > 1:
            raise GoalError(f"The data hold several treatments; name one: {available}.")
        level = design.treated[0]
        how = how or "no treatment named: the data's only one"
    if name is None:
        name = (next(iter(design.treatments.values())) if len(design.treatments) == 1
                and len(design.treated) == 1 else level)
    if design.kind == "time":
        how = (how + "; " if how else "") + f"time point {level!r} of {where}"
    g = StimulationGoal(text=text, treatment=level, name=name, cell_type=cell_type, design=design,
                        reading="")
    cells = (f"the {cell_type} cells of obs[{design.cell_type_key!r}]{cell_note}" if cell_type
             else "all cells")
    reading = (f"Goal read as: {g.label} — the {where} == {level!r} cells vs control "
               f"{design.control!r} ({how}), in {cells}.")
    return StimulationGoal(text=text, treatment=level, name=name, cell_type=cell_type,
                           design=design, reading=reading)
