"""Reading Boolean gene-regulatory network models.

Five formats are understood (see :func:`read_model`):

``scanpy``
    The format of scanpy's ``sim_models/krumsiek11.txt``: ``Gene = rule`` lines with python-style
    ``and`` / ``or`` / ``not``, ``#`` comments and an optional ``# coupling list:`` section of
    ``target  regulator  weight`` lines. scagents' own model files (``scagents/twin/models/*.txt``)
    use this format plus directive lines that start with ``@``::

        @name      th_mendoza2006
        @source    Mendoza & Xenarios (2006) ...
        @alias     TBET = TBX21
        @input     TCR = 0.6 sd 0.25        # clamped input: mean and per-cell sd
        @initial   GATA3 = 0.2 sd 0.15      # initial activity: mean and per-cell sd
        @fate      Th1 = TBX21 and not GATA3
        @surface   IFNGR1 IL4R              # genes measured as surface proteins (ADT)
        @hill      n = 4, k = 0.5, tau = 1

``boolode``
    BoolODE's tab-separated ``Gene<TAB>Rule`` files (header ``Gene  Rule``); a sibling
    ``<stem>_ics.txt`` file (``Genes  Values`` with python lists) gives initial values.

``bnet``
    ``target, rule`` lines with ``&``, ``|``, ``!`` (PyBoolNet, BoolNet, CellCollective); an optional
    ``targets, factors`` header. Regulators without a rule of their own are inputs; those not
    declared (``TCR, TCR`` or ``# @input TCR = 1``) are named in an :class:`UndefinedInputWarning`
    (and in a steering answer), and a name that differs from another gene's only in letter case
    (``IFNg`` read, ``IFNG`` defined) is refused. A ``v_`` prefix
    shared by every name (CellCollective exports) is removed and kept as an alias. Comment lines
    that hold a directive (``# @input TCR = 1``, ``# @initial GATA3 = 0.2 sd 0.1``,
    ``# @fate Th1 = Tbet & !GATA3``) set the milieu, initial states and fates, as in scagents' own
    files (names with or without the ``v_`` prefix).

``sbml``
    SBML-qual (SBML Level 3 Qualitative Models, ``.sbml`` / ``.xml``; GINsim, bioLQM, CellCollective,
    BoolNet and BioModels exports) of Boolean models: every species has ``maxLevel`` at most 1. Read
    by :mod:`scagents.twin.sbml` with the standard library (a ``<!DOCTYPE``/``<!ENTITY`` declaration
    is refused); each transition's MathML becomes a rule, so the network is the one the same model
    written as ``.bnet`` gives. Genes are named by the species names (made valid: ``APC/C`` →
    ``APC_C``; the id where a species has no name) when these are all different, else by the species
    ids; the other spelling is an alias. Constant species are inputs; ``initialLevel`` is the initial
    state.

``booleannet``
    BooleanNet (Albert et al. 2008) update rules ``A* = B and not C`` (an optional rank label
    ``1: A* = ...`` is ignored: the truth tables do not depend on it), initial-value lines
    ``A = B = True`` (``True``, ``False`` or ``Random``: initial activity 1, 0, or 0.5 with per-cell
    sd 0.5) and ``#`` comments (also holding directives, as in ``.bnet``). A gene with an initial
    value but no update rule is an input held at that value; genes only read by rules are inputs
    named in an :class:`UndefinedInputWarning`, as in ``.bnet``. BooleanNet allows ``+`` in names
    (``Ca2+c``): it becomes ``_`` (``Ca2_c``) and the original spelling is kept as an alias.

For ``.bnet``, SBML-qual and BooleanNet, a ``v_`` prefix shared by every name (CellCollective and
biodivine exports) is removed and kept as an alias.

Any format: a plain-text sidecar next to the model file, ``<stem>.inputs.json`` or
``<stem>.inputs.tsv`` (``model.bnet`` → ``model.inputs.json``), adds or overrides inputs, initial
states and fates (:func:`read_sidecar`; never executed)::

    {"inputs": {"TCR": 1, "IL12": [0.5, 0.1]}, "initial": {"GATA3": 0.2},
     "fates": {"Th1": "Tbet & !GATA3"}}

    # TSV: kind<TAB>name<TAB>value (kind: input, initial or fate)
    input	TCR	1
    fate	Th1	Tbet & !GATA3
"""

from __future__ import annotations

import ast
import difflib
import re
import warnings
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from scagents.errors import GeneNotFoundError, ModelFileError

FORMATS: tuple[str, ...] = ("scanpy", "boolode", "bnet", "sbml", "booleannet")

# --------------------------------------------------------------------------------------------------
# Rule expressions: tokenizer + recursive-descent parser producing a small tuple AST
#   ("var", name) | ("const", value) | ("not", node) | ("and", [nodes]) | ("or", [nodes])
# --------------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<op>&&|\|\||[()&|!~])|(?P<word>[A-Za-z0-9_][A-Za-z0-9_.:\-]*))")
_KEYWORDS = {"and": "&", "or": "|", "not": "!"}
_CONSTANTS = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0}


class UndefinedInputWarning(UserWarning):
    """A ``.bnet`` model reads genes that have no rule: they are treated as inputs (names in the message)."""


class RuleSyntaxError(ValueError):
    """A rule expression cannot be parsed (internal; wrapped in :class:`ModelFileError`)."""


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise RuleSyntaxError(f"unexpected character {text[pos:].strip()[:1]!r} at column {pos + 1}")
        pos = m.end()
        if m.group("op"):
            op = {"&&": "&", "||": "|", "~": "!"}.get(m.group("op"), m.group("op"))
            tokens.append(("op", op))
        else:
            word = m.group("word")
            low = word.lower()
            if low in _KEYWORDS:
                tokens.append(("op", _KEYWORDS[low]))
            elif low in _CONSTANTS:
                tokens.append(("const", low))
            else:
                tokens.append(("var", word))
    return tokens


class _Frame:
    """One bracket level of the parser: the or-terms done, the and-terms of the current one, and the
    ``!`` waiting for their operand."""

    __slots__ = ("or_terms", "and_terms", "nots")

    def __init__(self, nots: int = 0):
        self.or_terms: list[tuple] = []
        self.and_terms: list[tuple] = []
        self.nots = nots  # '!' before the '(' that opened this level (applied when it closes)

    def close_and(self) -> None:
        terms = self.and_terms
        self.or_terms.append(terms[0] if len(terms) == 1 else ("and", terms))
        self.and_terms = []

    def node(self) -> tuple:
        self.close_and()
        return self.or_terms[0] if len(self.or_terms) == 1 else ("or", self.or_terms)


def _negate(node: tuple, nots: int) -> tuple:
    for _ in range(nots):
        node = ("not", node)
    return node


def _parse_tokens(tokens: list[tuple[str, str]]) -> tuple:
    """``or := and ('|' and)*``, ``and := not ('&' not)*``, ``not := '!' not | atom``,
    ``atom := name | constant | '(' or ')'``, parsed with an explicit stack of bracket levels, so
    rules nested hundreds of brackets deep (machine-written models) are read."""
    if not tokens:
        raise RuleSyntaxError("empty rule")
    frames = [_Frame()]
    pending_nots = 0  # '!' read, waiting for an operand
    expect_operand = True
    for kind, value in tokens:
        frame = frames[-1]
        if expect_operand:
            if (kind, value) == ("op", "!"):
                pending_nots += 1
            elif (kind, value) == ("op", "("):
                frames.append(_Frame(pending_nots))
                pending_nots = 0
            elif kind in ("var", "const"):
                operand = ("var", value) if kind == "var" else ("const", _CONSTANTS[value])
                frame.and_terms.append(_negate(operand, pending_nots))
                pending_nots, expect_operand = 0, False
            else:
                raise RuleSyntaxError(f"unexpected {value!r} where a gene name or '(' was expected")
        elif (kind, value) == ("op", "&"):
            expect_operand = True
        elif (kind, value) == ("op", "|"):
            frame.close_and()
            expect_operand = True
        elif (kind, value) == ("op", ")") and len(frames) > 1:
            frames.pop()
            frames[-1].and_terms.append(_negate(frame.node(), frame.nots))
        elif len(frames) > 1:
            raise RuleSyntaxError("missing ')'")
        else:
            raise RuleSyntaxError(f"unexpected {value!r} after a complete expression")
    if expect_operand or len(frames) > 1:
        raise RuleSyntaxError("the rule ends unexpectedly (missing operand or ')')")
    return frames[0].node()


def parse_rule(text: str) -> tuple:
    """Parse a Boolean rule (``and``/``or``/``not`` or ``&``/``|``/``!``) into a tuple AST.

    Raises
    ------
    RuleSyntaxError
        When the expression is malformed.
    """
    return _parse_tokens(_tokenize(text))


def rule_variables(node: tuple) -> list[str]:
    """Gene names referenced by a rule AST, in order of first appearance."""
    out: list[str] = []
    for name, _sign in _literals(node, +1):
        if name not in out:
            out.append(name)
    return out


def _literals(node: tuple, sign: int):
    kind = node[0]
    if kind == "var":
        yield node[1], sign
    elif kind == "not":
        yield from _literals(node[1], -sign)
    elif kind in ("and", "or"):
        for child in node[1]:
            yield from _literals(child, sign)


def rename_ast(node: tuple, mapping: dict[str, str]) -> tuple:
    """Return a copy of a rule AST with gene names replaced through ``mapping``."""
    kind = node[0]
    if kind == "var":
        return ("var", mapping.get(node[1], node[1]))
    if kind == "not":
        return ("not", rename_ast(node[1], mapping))
    if kind in ("and", "or"):
        return (kind, [rename_ast(c, mapping) for c in node[1]])
    return node


def format_rule(node: tuple) -> str:
    """Write a rule AST back as a python-style expression (``and``/``or``/``not``)."""
    kind = node[0]
    if kind == "var":
        return node[1]
    if kind == "const":
        return "True" if node[1] else "False"
    if kind == "not":
        inner = format_rule(node[1])
        return f"not {inner}" if node[1][0] in ("var", "const", "not") else f"not ({inner})"
    parts = []
    for child in node[1]:
        s = format_rule(child)
        parts.append(f"({s})" if child[0] in ("and", "or") and child[0] != kind else s)
    return f" {kind} ".join(parts)


# --------------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------------


def _norm(name: str) -> str:
    """Case- and punctuation-insensitive key: ``"PU.1"``, ``"pu1"``, ``"Pu-1"`` → ``"pu1"``."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass
class BooleanNetwork:
    """A Boolean gene-regulatory network and what is needed to simulate it.

    Attributes
    ----------
    name
        Model name (``"krumsiek11"``, ``"th_mendoza2006"``, the file stem...).
    genes
        Gene names in model order; columns of every state array follow this order.
    rules
        ``{gene: rule}`` in python-style syntax; ``""`` for genes without a rule.
    inputs
        Genes with no rule, or whose rule is only themselves (``A = A``): they are held, or clamped
        to the values of :attr:`input_values` / the ``inputs`` argument of the simulators.
    edges
        Signed edges, columns ``source``, ``target``, ``sign`` (+1 activation, -1 repression) and
        ``weight`` (the coupling strength where the file gives one, else 1.0).
    fates
        ``{fate: Boolean condition}`` evaluated on final states (active = activity > 0.5).
    aliases
        ``{alias: gene}``; gene look-ups are case- and punctuation-insensitive on names and aliases.
    initial_state
        ``{gene: mean initial activity}``; genes not listed start at 0.
    source
        Citation of the publication the rules come from.
    initial_sd
        ``{gene: per-cell standard deviation of the initial activity}``.
    input_values, input_sd
        Default (mean, per-cell sd) of clamped inputs; an input not listed is held at its initial value.
    surface
        Genes measured as surface proteins (ADT) by :func:`scagents.twin.simulate`.
    hill_n, hill_k, tau
        Hill coefficient and threshold of the activation function and the activity time constant.
    coupling
        ``{(target, regulator): weight}`` from a scanpy-format coupling list.
    undefined_inputs
        Genes read by rules of a ``.bnet`` file that have no rule of their own and are not declared
        by ``@input`` (nor a sidecar): inputs by default, named by :func:`undefined_inputs_line`.
    format
        The format the rules were read in (``"scanpy"``, ``"boolode"``, ``"bnet"``, ``"sbml"``,
        ``"booleannet"``).
    """

    name: str
    genes: list[str]
    rules: dict[str, str]
    inputs: list[str]
    edges: pd.DataFrame
    fates: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    initial_state: dict[str, float] = field(default_factory=dict)
    source: str = ""
    initial_sd: dict[str, float] = field(default_factory=dict)
    input_values: dict[str, float] = field(default_factory=dict)
    input_sd: dict[str, float] = field(default_factory=dict)
    surface: list[str] = field(default_factory=list)
    hill_n: float = 4.0
    hill_k: float = 0.5
    tau: float = 1.0
    coupling: dict[tuple[str, str], float] = field(default_factory=dict)
    asts: dict[str, tuple | None] = field(default_factory=dict, repr=False)
    undefined_inputs: list[str] = field(default_factory=list)
    format: str = ""

    @property
    def n_genes(self) -> int:
        return len(self.genes)

    def gene_index(self, name: str) -> int:
        """Column of a gene (name or alias, case-insensitive) in state arrays."""
        return self.genes.index(self.resolve_gene(name))

    def resolve_gene(self, name: str) -> str:
        """Map a gene name or alias (case- and punctuation-insensitive) to the model's gene name.

        Raises
        ------
        GeneNotFoundError
            When nothing matches; the message lists the closest names.
        """
        if name in self.genes:
            return name
        key = _norm(str(name))
        for gene in self.genes:
            if _norm(gene) == key:
                return gene
        for alias, gene in self.aliases.items():
            if _norm(alias) == key:
                return gene
        pool = {g.lower(): g for g in self.genes} | {a.lower(): a for a in self.aliases}
        close = difflib.get_close_matches(str(name).lower(), list(pool), n=5, cutoff=0.5)
        hint = (
            f" Closest names: {', '.join(pool[c] for c in close)}." if close else ""
        )
        raise GeneNotFoundError(
            f"Gene {name!r} is not in model {self.name!r}.{hint} "
            f"Known genes: {', '.join(self.genes)}."
        )

    def regulators(self, gene: str) -> list[str]:
        """Regulators of ``gene`` (the genes its rule reads)."""
        node = self.asts.get(self.resolve_gene(gene))
        return [] if node is None else rule_variables(node)

    def __repr__(self) -> str:  # compact: the edge table would flood a notebook
        return (
            f"BooleanNetwork(name={self.name!r}, {self.n_genes} genes, {len(self.edges)} edges, "
            f"inputs={self.inputs}, fates={list(self.fates)})"
        )


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


MAX_MODEL_BYTES = 20_000_000
"""Largest model file read (the largest published Boolean models are well under 1 MB)."""


def _excerpt(text: str, limit: int = 40) -> str:
    """A short quote of a line of the file (the messages never echo whole lines of a file)."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _fail(origin: str, lineno: int | None, message: str) -> ModelFileError:
    where = f"{origin}, line {lineno}" if lineno is not None else origin
    if len(message) > 300:
        message = message[:299] + "…"
    return ModelFileError(f"{where}: {message}")


def _read_text(path: Path) -> str:
    """The text of a model file; a binary, unreadable or oversized file raises :class:`ModelFileError`."""
    try:
        size = path.stat().st_size
        if size > MAX_MODEL_BYTES:
            raise _fail(str(path), None, f"the file has {size:,} bytes, more than a model file can "
                        f"have ({MAX_MODEL_BYTES:,}); give a Boolean model file (.bnet, .sbml, .txt).")
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _fail(str(path), None, "the file is not UTF-8 text (a binary file?); give a Boolean "
                    "model file (.bnet, .sbml, .txt).") from None
    except OSError as exc:
        raise _fail(str(path), None, f"cannot be read ({type(exc).__name__}: {exc.strerror}).") from None


_BOOLEANNET_UPDATE = re.compile(r"^\s*(?:\d+\s*:\s*)?([A-Za-z0-9_+\-][A-Za-z0-9_+\-.]*)\s*\*\s*=(.*)$")
"""A BooleanNet update line: optional rank label, ``NAME* = rule`` (also ``NAME *= rule``)."""


def _detect_format(lines: list[str], path: Path | None) -> str:
    suffix = path.suffix.lower() if path is not None else ""
    if suffix == ".bnet":
        return "bnet"
    if suffix in (".sbml", ".xml"):
        return "sbml"
    if suffix == ".booleannet":
        return "booleannet"
    first = next((t for ln in lines if (t := ln.strip().lstrip("\ufeff").strip())), "")
    if first.startswith("<"):
        return "sbml"
    if any(_BOOLEANNET_UPDATE.match(ln) for ln in lines if not ln.lstrip().startswith("#")):
        return "booleannet"
    for line in lines:
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if "\t" in s and "=" not in s:
            return "boolode"
        if s.startswith("@") or "=" in s:
            return "scanpy"
        if "," in s:
            return "bnet"
        break
    return "scanpy"


SUPPORTED = ("scagents reads Boolean models as .bnet ('target, rule' with &, |, !: PyBoolNet, BoolNet, "
             "CellCollective and biodivine exports), Boolean SBML-qual (.sbml/.xml, every species maxLevel 1: "
             "GINsim, bioLQM, CellCollective, BioModels), BooleanNet ('A* = rule'), scanpy-style "
             "'Gene = rule' text or BoolODE 'Gene<TAB>Rule' files")

_UNSUPPORTED_SUFFIXES = {".ginml": "GINsim (GINML)", ".zginml": "GINsim (zipped GINML)", ".bnd": "MaBoSS",
                         ".cfg": "MaBoSS", ".an": "AN (automata network)", ".aeon": "AEON",
                         ".zip": "a zip archive", ".sedml": "SED-ML", ".omex": "a COMBINE archive (OMEX)"}


def _refuse_unsupported(path: Path | None, text: str | None) -> None:
    """Refuse, in one line naming the supported ones, a model in a format scagents does not read.

    Known by the file's suffix (GINsim, MaBoSS, AEON, zip ...) or, for text, by an XML start that
    is not SBML (GINML's ``<gxl>``, another XML format).
    """
    kind = None
    if path is not None:
        kind = _UNSUPPORTED_SUFFIXES.get(path.suffix.lower())
    if kind is None and text is not None:
        head = text.lstrip("\ufeff \t\r\n")[:20000]
        if head.startswith("<") and not re.search(r"<(?:\w+:)?sbml[\s>]", head):
            kind = "GINsim (GINML)" if "<gxl" in head else "XML (not SBML)"
    if kind is not None:
        origin = str(path) if path is not None else "<model text>"
        raise ModelFileError(f"{origin}: {kind} model files are not read; {SUPPORTED}. Export the model as "
                             ".bnet or SBML-qual first (GINsim, bioLQM, CellCollective and BoolNet export "
                             "both).")


def _parse_value_sd(text: str) -> tuple[float, float | None]:
    """``"0.6"`` → (0.6, None); ``"0.6 sd 0.25"`` → (0.6, 0.25)."""
    parts = text.replace(",", " ").split()
    if len(parts) == 1:
        return float(parts[0]), None
    if len(parts) == 3 and parts[1].lower() == "sd":
        return float(parts[0]), float(parts[2])
    raise ValueError(f"expected 'VALUE' or 'VALUE sd SD', got {_excerpt(text)}")


def read_model(path_or_text: str | Path, *, format: str | None = None) -> BooleanNetwork:
    """Read a Boolean network from a file or from model text.

    Parameters
    ----------
    path_or_text
        A path to a model file, or the model text itself (any string with a newline is text).
    format
        ``"scanpy"`` (``Gene = rule``; scagents' own files), ``"boolode"`` (``Gene<TAB>Rule``),
        ``"bnet"`` (``target, rule``), ``"sbml"`` (Boolean SBML-qual) or ``"booleannet"``
        (``A* = rule``); ``None`` detects it from the suffix (``.bnet``, ``.sbml``/``.xml``,
        ``.booleannet``) and the text (an XML start is SBML-qual, an ``A* =`` line BooleanNet).

    Returns
    -------
    BooleanNetwork
        Genes, rules, inputs, signed edges, fates, aliases, initial state and citation.

    Raises
    ------
    ModelFileError
        In one line: the file is empty, a rule has a syntax error, a rule names an unknown gene
        (scanpy and boolode formats, where every gene must have a line), a rule reads a name that
        differs from another gene's only in letter case (bnet, BooleanNet) or a gene is defined twice
        (with the line number); an SBML file declares a DOCTYPE/ENTITY, is multi-valued (a species
        with ``maxLevel`` > 1), has a result level other than 0/1 or MathML outside the supported set
        (naming the species or transition); or the file is in a format scagents does not read
        (GINML, MaBoSS, AEON, a zip archive...), naming the ones it reads.

    Warns
    -----
    UndefinedInputWarning
        A ``.bnet`` or BooleanNet rule reads genes without a rule that are not declared as inputs
        (named).
    """
    path: Path | None = None
    if isinstance(path_or_text, Path) or ("\n" not in str(path_or_text)):
        candidate = Path(path_or_text)
        try:
            is_file = candidate.is_file()
        except OSError:  # e.g. a name too long to be a path
            is_file = False
        if is_file:
            path = candidate
        elif isinstance(path_or_text, Path) or not re.search(r"[=,\t]", str(path_or_text)):
            raise ModelFileError(
                f"Model file {str(path_or_text)!r} does not exist. Pass an existing path, model text "
                "(with newlines), or a shipped model name to scagents.twin.load_model()."
            )
    if path is not None:
        _refuse_unsupported(path, None)
        text = _read_text(path)
        origin = str(path)
        name = path.stem
    else:
        text = str(path_or_text)
        origin = "<model text>"
        name = "model"
    if format is None:
        _refuse_unsupported(path, text)
    lines = text.splitlines()
    fmt = (format or _detect_format(lines, path)).lower()
    if fmt in ("krumsiek", "scagents", "txt"):
        fmt = "scanpy"
    if fmt not in FORMATS:
        raise ModelFileError(f"Unknown model format {format!r}; use one of {', '.join(FORMATS)}.")

    meta: dict = {"aliases": {}, "fates": {}, "initial": {}, "initial_sd": {}, "input_values": {},
                  "input_sd": {}, "surface": [], "hill": {}, "name": None, "source": [],
                  "coupling": {}}
    entries: list[tuple[int, str, str]] = []  # (lineno, target, rule text)
    coupling_lines: list[tuple[int, str, str, float]] = []

    if fmt == "scanpy":
        in_coupling = False
        for lineno, raw in enumerate(lines, start=1):
            s = raw.strip()
            if not s:
                continue
            if s.startswith("#"):
                if "coupling list" in s.lower():
                    in_coupling = True
                continue
            s = s.split(" #", 1)[0].strip()
            if s.startswith("@"):
                _read_directive(s, lineno, origin, meta)
                continue
            if in_coupling:
                parts = s.split()
                try:
                    coupling_lines.append((lineno, parts[0], parts[1], float(parts[2])))
                except (IndexError, ValueError):
                    raise _fail(origin, lineno, f"coupling lines are 'TARGET REGULATOR WEIGHT', got {_excerpt(s)}") from None
                continue
            if "=" not in s:
                raise _fail(origin, lineno, f"expected 'Gene = rule', got {_excerpt(s)}")
            target, rule = (p.strip() for p in s.split("=", 1))
            entries.append((lineno, target, rule))
    elif fmt == "boolode":
        for lineno, raw in enumerate(lines, start=1):
            s = raw.strip()
            if not s or s.startswith("#"):
                continue
            parts = re.split(r"\t+", s, maxsplit=1)
            if len(parts) == 1:
                parts = s.split(None, 1)
            if not entries and parts[0].strip().lower() == "gene":
                continue  # header line
            if len(parts) != 2:
                raise _fail(origin, lineno, f"expected 'Gene<TAB>Rule', got {_excerpt(s)}")
            entries.append((lineno, parts[0].strip(), parts[1].strip()))
        if path is not None:
            ics = path.with_name(f"{path.stem}_ics{path.suffix}")
            # only a real file beside the model, never a link to a file elsewhere
            if ics.is_file() and ics.resolve().parent == path.resolve().parent:
                _read_boolode_ics(ics, meta)
    elif fmt == "booleannet":
        _read_booleannet(lines, origin, meta, entries)
    elif fmt == "bnet":
        for lineno, raw in enumerate(lines, start=1):
            s = _rule_line(raw, lineno, origin, meta)
            if not s:
                continue
            if "," not in s:
                raise _fail(origin, lineno, f"expected 'target, rule', got {_excerpt(s)}")
            target, rule = (p.strip() for p in s.split(",", 1))
            if target.lower() == "targets" and rule.lower().startswith("factors"):
                continue
            entries.append((lineno, target, rule))

    if fmt == "sbml":
        from scagents.twin.sbml import parse_sbml_qual

        qual = parse_sbml_qual(text, origin)
        asts: dict[str, tuple | None] = dict(qual.asts)
        genes = list(qual.genes)
        undefined: dict[str, str] = {}
        meta["initial"].update(qual.initial)
        meta["input_values"].update(qual.constant)
        meta["aliases"].update(qual.aliases)
    else:
        if not entries:
            raise _fail(origin, None, "the model contains no rules (empty file or only comments).")
        asts, genes, undefined = _parse_entries(entries, origin, implicit_inputs=fmt in ("bnet", "booleannet"))

    for target, node in asts.items():
        if node is not None and (depth := _rule_depth(node)) > MAX_RULE_DEPTH:
            raise _fail(origin, None, f"the rule of {target} is nested {depth} levels deep (and/or/not), more "
                                      f"than the {MAX_RULE_DEPTH} scagents reads; simplify it (e.g. to a "
                                      "disjunctive normal form).")
    if path is not None:
        read_sidecar(path, meta)
    # bnet: strip a shared CellCollective 'v_' prefix
    aliases = dict(meta["aliases"])
    if fmt in ("bnet", "sbml", "booleannet") and all(g.startswith("v_") and len(g) > 2 for g in genes):
        mapping = {g: g[2:] for g in genes}
        asts = {mapping[g]: (None if n is None else rename_ast(n, mapping)) for g, n in asts.items()}
        genes = [mapping[g] for g in genes]
        aliases = {a: mapping.get(g, g) for a, g in aliases.items() if a not in mapping.values()}
        aliases.update({old: new for old, new in mapping.items()})
        _rename_meta(meta, mapping)
        undefined = {k: mapping[v] for k, v in undefined.items()}
    # inputs the file declares (@input, a sidecar) are meant; the others are reported by name
    ruleless = [g for g in undefined.values() if g not in meta["input_values"]]

    for lineno, target, regulator, weight in coupling_lines:
        for g in (target, regulator):
            if g not in asts:
                raise _fail(origin, lineno, f"coupling list names unknown gene {g!r}")
        node = asts[target]
        if node is None or regulator not in rule_variables(node):
            raise _fail(origin, lineno, f"coupling {target} <- {regulator}: {regulator} is not in the rule of {target}")
        meta["coupling"][(target, regulator)] = weight

    net = BooleanNetwork(
        name=meta["name"] or name,
        genes=genes,
        rules={g: ("" if asts[g] is None else format_rule(asts[g])) for g in genes},
        inputs=[g for g in genes if asts[g] is None or asts[g] == ("var", g)],
        edges=_edges(genes, asts, meta["coupling"]),
        fates=dict(meta["fates"]),
        aliases=aliases,
        initial_state=dict(meta["initial"]),
        source=" ".join(meta["source"]),
        initial_sd=dict(meta["initial_sd"]),
        input_values=dict(meta["input_values"]),
        input_sd=dict(meta["input_sd"]),
        surface=list(meta["surface"]),
        coupling=dict(meta["coupling"]),
        asts=asts,
        undefined_inputs=ruleless,
        format=fmt,
        **meta["hill"],
    )
    _validate_references(net, origin)
    if ruleless:
        warnings.warn(f"{origin}: {undefined_inputs_line(net)}", UndefinedInputWarning, stacklevel=2)
    return net


def _parse_entries(entries: list[tuple[int, str, str]], origin: str, *, implicit_inputs: bool
                   ) -> tuple[dict[str, tuple | None], list[str], dict[str, str]]:
    """Parse ``(lineno, target, rule text)`` lines into rule ASTs.

    Returns the ASTs (``None`` for inputs), the genes in order, and the genes read by rules without a
    line of their own (by lower-case name; inputs when ``implicit_inputs``, else refused).
    """
    asts: dict[str, tuple | None] = {}
    lineno_of: dict[str, int] = {}
    for lineno, target, rule in entries:
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.:\-]*", target):
            raise _fail(origin, lineno, f"{_excerpt(target)} is not a valid gene name")
        if target in asts:
            raise _fail(origin, lineno, f"gene {target!r} already has a rule on line {lineno_of[target]}")
        lineno_of[target] = lineno
        if rule == "":
            asts[target] = None
            continue
        try:
            asts[target] = parse_rule(rule)
        except RuleSyntaxError as err:
            raise _fail(origin, lineno, f"syntax error in the rule of {target}: {err} (rule: {_excerpt(rule)})") from None
        if _rule_depth(asts[target]) > MAX_RULE_DEPTH:  # e.g. '(a | (b | (c | ...)))': flatten
            asts[target] = flatten_rule(asts[target])  # type: ignore[arg-type]
        if (depth := _rule_depth(asts[target])) > MAX_RULE_DEPTH:  # type: ignore[arg-type]
            raise _fail(origin, lineno, f"the rule of {target} is nested {depth} levels deep (and/or/not), more "
                                        f"than the {MAX_RULE_DEPTH} scagents reads; simplify it (e.g. to a "
                                        "disjunctive normal form).")

    genes = list(asts)
    defined = {g.lower(): g for g in asts}  # the genes with a line of their own, by lower-case name
    undefined: dict[str, str] = {}  # genes read only on right-hand sides (bnet), by lower-case name
    for target, node in list(asts.items()):
        if node is None:
            continue
        for var in rule_variables(node):
            if var in asts:
                continue
            if implicit_inputs:
                other = defined.get(var.lower()) or undefined.get(var.lower())
                if other is not None:
                    raise _fail(origin, lineno_of[target], _case_message(target, var, other, other in defined.values()))
                undefined[var.lower()] = var
                asts[var] = None
                genes.append(var)
                continue
            close = difflib.get_close_matches(var, genes, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise _fail(origin, lineno_of[target],
                        f"the rule of {target} uses unknown gene {var!r}.{hint} Every gene needs its own "
                        f"line ('{var} = ...', empty right-hand side for an input).")
    return asts, genes, undefined


_BOOLEANNET_INITIAL = {"true": (1.0, None), "1": (1.0, None), "false": (0.0, None), "0": (0.0, None),
                       "random": (0.5, 0.5)}
"""BooleanNet initial values → (mean initial activity, per-cell sd); ``Random`` is 0.5 with sd 0.5."""


def _read_booleannet(lines: list[str], origin: str, meta: dict, entries: list[tuple[int, str, str]]) -> None:
    """Read BooleanNet lines into ``entries`` (update rules) and ``meta`` (initial values, aliases).

    A gene with an initial value but no update rule gets an empty rule (an input held at its value).
    """
    renamed: dict[str, str] = {}  # spelling with '+' -> gene name with '_'
    name_chars = r"A-Za-z0-9_+\-."

    def gene(word: str) -> str:
        if "+" not in word:
            return word
        renamed[word] = word.replace("+", "_")
        return renamed[word]

    initial_only: list[tuple[int, str]] = []
    for lineno, raw in enumerate(lines, start=1):
        s = _rule_line(raw, lineno, origin, meta)
        if not s:
            continue
        m = _BOOLEANNET_UPDATE.match(s)
        if m is not None:
            target, rule = m.group(1), m.group(2).strip()
            if not rule:
                raise _fail(origin, lineno, f"the update rule of {target} is empty ('{target}* = ...')")
            # '+' is part of names in BooleanNet (it has no '+' operator)
            rule = re.sub(rf"[{name_chars}]*\+[{name_chars}]*", lambda w: gene(w.group(0)), rule)
            entries.append((lineno, gene(target), rule))
            continue
        parts = [p.strip() for p in s.split("=")]
        if len(parts) < 2 or not all(parts[:-1]):
            raise _fail(origin, lineno, f"expected 'A* = rule' (update) or 'A = True' (initial value), got "
                                        f"{_excerpt(s)}")
        value = _BOOLEANNET_INITIAL.get(parts[-1].lower())
        if value is None:
            raise _fail(origin, lineno, f"initial value {_excerpt(parts[-1])} is not read: BooleanNet initial "
                                        "values are True, False or Random (piecewise-linear PLDE parameters "
                                        "are not read)")
        for word in parts[:-1]:
            g = gene(word)
            meta["initial"][g] = value[0]
            if value[1] is not None:
                meta["initial_sd"][g] = value[1]
            initial_only.append((lineno, g))
    ruled = {target for _, target, _ in entries}
    for lineno, g in initial_only:
        if g not in ruled:
            ruled.add(g)
            entries.append((lineno, g, ""))
    text = "\n".join(line.split("#", 1)[0] for line in lines)
    for word, g in renamed.items():
        if re.search(rf"(?<![{name_chars}]){re.escape(g)}(?![{name_chars}])", text):
            raise _fail(origin, None, f"BooleanNet name {word!r} would become {g!r} ('+' is not allowed in gene "
                                      f"names here), but the model already has a gene {g!r}; rename one.")
        meta["aliases"][word] = g


MAX_RULE_DEPTH = 300
"""Deepest rule read (levels of and/or/not; a deeper rule is first flattened by :func:`flatten_rule`):
the rule trees are walked recursively downstream. (The simulator compiles rules to Python
expressions, which allow 200 nested brackets: about 100-200 levels; :func:`scagents.twin.compile_network`
refuses a deeper rule by name.)"""


def _rule_depth(node: tuple) -> int:
    """Levels of and/or/not in a rule AST (iterative: the AST may be deeper than the recursion limit)."""
    best, stack = 0, [(node, 1)]
    while stack:
        x, d = stack.pop()
        best = max(best, d)
        if x[0] in ("and", "or"):
            stack.extend((c, d + 1) for c in x[1])
        elif x[0] == "not":
            stack.append((x[1], d + 1))
    return best


def flatten_rule(node: tuple) -> tuple:
    """The same rule with nested and-in-and / or-in-or merged (``a | (b | c)`` → ``a | b | c``).

    Same truth table and the same text from :func:`format_rule`; iterative, for rules nested deeper
    than the recursion limit. Only rules deeper than :data:`MAX_RULE_DEPTH` are flattened when read
    (the others keep the shape written in the file).
    """
    done: dict[int, tuple] = {}
    stack: list[tuple[tuple, bool]] = [(node, False)]
    while stack:
        x, ready = stack.pop()
        kind = x[0]
        if kind in ("var", "const"):
            done[id(x)] = x
            continue
        kids = [x[1]] if kind == "not" else x[1]
        if not ready:
            stack.append((x, True))
            stack.extend((c, False) for c in kids)
            continue
        new = [done[id(c)] for c in kids]
        if kind == "not":
            done[id(x)] = ("not", new[0])
        else:
            merged: list[tuple] = []
            for c in new:
                merged.extend(c[1] if c[0] == kind else [c])
            done[id(x)] = (kind, merged)
    return done[id(node)]


def _case_message(target: str, var: str, other: str, other_defined: bool) -> str:
    """The refusal of a name that differs from another one of the model only in letter case."""
    if other_defined:
        return (f"the rule of {target} reads {var!r} but the model defines {other!r} (names are "
                f"case-sensitive, so {var!r} would be a separate input without a rule); write {other!r} in "
                f"the rule, or, if {var!r} is another gene, give it its own line ('{var}, {var}' for an input).")
    return (f"the rule of {target} reads {var!r} and another rule reads {other!r}, neither has a rule and "
            "names are case-sensitive (they would be two separate inputs); use one spelling in every rule.")


def _typo_of(name: str, genes: list[str]) -> str | None:
    """A gene of ``genes`` that ``name`` may be a misspelling of: the same letters and digits
    but for punctuation (``IL_12`` / ``IL12``), or two neighbouring letters swapped (``IFGN`` /
    ``IFNG``); ``None`` when there is none. (Names one character or two digits apart, such as
    IL12 / IL10 / IL21 or IFNb / IFNg, are often different genes and get no hint.)"""
    low = name.lower()
    for g in genes:
        other = g.lower()
        if other == low:
            continue
        if _norm(g) == _norm(name):
            return g
        if len(other) != len(low):
            continue
        diff = [i for i, (x, y) in enumerate(zip(low, other, strict=True)) if x != y]
        if (len(diff) == 2 and diff[1] == diff[0] + 1 and low[diff[0]] == other[diff[1]]
                and low[diff[1]] == other[diff[0]] and low[diff[0]].isalpha() and low[diff[1]].isalpha()):
            return g
    return None


def undefined_inputs_line(net: BooleanNetwork, limit: int = 12, given: Collection[str] = ()) -> str | None:
    """One sentence naming the genes read by rules without a rule of their own (``None`` if none).

    In a ``.bnet`` model such genes become inputs (external signals are written that way), but a
    misspelt gene becomes one too; the sentence names each, and the model gene it may be a typo of.
    Genes in ``given`` (the milieu the user set, e.g. ``--inputs EGF=1``) are inputs by intent and
    are not named.
    """
    names = [g for g in net.undefined_inputs if g not in set(given)]
    if not names:
        return None
    defined = [g for g in net.genes if g not in net.undefined_inputs]
    shown = []
    for g in names[:limit]:
        typo = _typo_of(g, defined)
        shown.append(f"{g} (misspelt {typo}?)" if typo else g)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    n = len(names)
    verb = "genes have no rule and are treated as inputs" if n != 1 else "gene has no rule and is treated as an input"
    line = "'GENE = True' (or False)" if net.format == "booleannet" else "'GENE, GENE'"
    return (f"{n} {verb}: {', '.join(shown)}{more}. Declare an external signal with a line {line} "
            "or '# @input GENE = VALUE' (this note then goes); otherwise check the spelling in the rules.")


def _rule_line(raw: str, lineno: int, origin: str, meta: dict) -> str:
    """A ``#``-commented model line (.bnet, BooleanNet): a ``# @directive`` is read into ``meta``
    and gives ``""``, as do comments and blank lines; otherwise the text before any ``#``."""
    directive = raw.strip().lstrip("#").strip()
    if raw.strip().startswith("#") and directive.startswith("@"):
        _read_directive(directive.split(" #", 1)[0].strip(), lineno, origin, meta)
        return ""
    return raw.split("#", 1)[0].strip()


def _read_directive(s: str, lineno: int, origin: str, meta: dict) -> None:
    key, _, rest = s[1:].partition(" ")
    key, rest = key.lower().strip(), rest.strip()
    try:
        if key == "name":
            meta["name"] = rest
        elif key == "source":
            meta["source"].append(rest)
        elif key == "surface":
            meta["surface"].extend(rest.replace(",", " ").split())
        elif key in ("alias", "fate", "input", "initial"):
            left, _, right = rest.partition("=")
            left, right = left.strip(), right.strip()
            if not left or not right:
                raise ValueError(f"expected '@{key} NAME = VALUE'")
            if key == "alias":
                meta["aliases"][left] = right
            elif key == "fate":
                parse_rule(right)
                meta["fates"][left] = right
            else:
                value, sd = _parse_value_sd(right)
                meta["input_values" if key == "input" else "initial"][left] = value
                if sd is not None:
                    meta["input_sd" if key == "input" else "initial_sd"][left] = sd
        elif key == "hill":
            for item in rest.split(","):
                k, _, v = item.partition("=")
                k = k.strip().lower()
                if k not in ("n", "k", "tau"):
                    raise ValueError(f"unknown @hill parameter {k!r} (use n, k, tau)")
                meta["hill"][{"n": "hill_n", "k": "hill_k", "tau": "tau"}[k]] = float(v)
        else:
            raise ValueError(f"unknown directive '@{key}' (use @name, @source, @alias, @input, "
                             "@initial, @fate, @surface, @hill)")
    except (ValueError, RuleSyntaxError) as err:
        raise _fail(origin, lineno, str(err)) from None


SIDECAR_SUFFIXES: tuple[str, ...] = (".inputs.json", ".inputs.tsv")


def read_sidecar(model_path: Path, meta: dict | None = None) -> dict:
    """Read the milieu sidecar of a model file (``<stem>.inputs.json`` or ``.inputs.tsv``).

    JSON: ``{"inputs": {gene: value or [mean, sd]}, "initial": {...}, "fates": {name: rule}}``;
    TSV: ``kind<TAB>name<TAB>value`` lines (``kind``: ``input``, ``initial`` or ``fate``; ``#``
    comments). Values are activities in [0, 1]. Nothing in the file is executed.

    Returns
    -------
    dict
        ``meta`` (updated in place), or a fresh dict with the keys ``input_values``,
        ``input_sd``, ``initial``, ``initial_sd`` and ``fates``.
    """
    import json

    meta = meta if meta is not None else {"input_values": {}, "input_sd": {}, "initial": {},
                                          "initial_sd": {}, "fates": {}}
    for suffix in SIDECAR_SUFFIXES:
        side = model_path.with_name(model_path.stem + suffix)
        if not side.is_file():
            continue
        items: list[tuple[str, str, object, int | None]] = []
        if suffix.endswith(".json"):
            try:
                data = json.loads(side.read_text())
            except json.JSONDecodeError as err:
                raise _fail(str(side), err.lineno, f"not valid JSON ({err.msg})") from None
            if not isinstance(data, dict) or set(data) - {"inputs", "initial", "fates"}:
                raise _fail(str(side), None, "expected a JSON object with the keys 'inputs', "
                                             "'initial' and/or 'fates'")
            for key, kind in (("inputs", "input"), ("initial", "initial"), ("fates", "fate")):
                for name, value in (data.get(key) or {}).items():
                    items.append((kind, str(name), value, None))
        else:
            for lineno, raw in enumerate(side.read_text().splitlines(), start=1):
                s = raw.split("#", 1)[0].strip()
                if not s:
                    continue
                parts = [p.strip() for p in s.split("\t")]
                if len(parts) != 3:
                    raise _fail(str(side), lineno, f"expected 'kind<TAB>name<TAB>value', got {s!r}")
                items.append((parts[0].lower(), parts[1], parts[2], lineno))
        for kind, name, value, lineno in items:
            try:
                if kind == "fate":
                    parse_rule(str(value))
                    meta["fates"][name] = str(value)
                    continue
                if kind not in ("input", "initial"):
                    raise ValueError(f"unknown kind {kind!r} (use input, initial or fate)")
                if isinstance(value, (list, tuple)) and len(value) == 2:
                    mean, sd = float(value[0]), float(value[1])
                elif isinstance(value, str):
                    mean, sd = _parse_value_sd(value)
                else:
                    mean, sd = float(value), None
                if not 0.0 <= mean <= 1.0:
                    raise ValueError(f"{kind} {name} = {mean}: activities must lie in [0, 1]")
                meta["input_values" if kind == "input" else "initial"][name] = mean
                if sd is not None:
                    meta["input_sd" if kind == "input" else "initial_sd"][name] = sd
            except (ValueError, TypeError, RuleSyntaxError) as err:
                raise _fail(str(side), lineno, str(err)) from None
    return meta


def _rename_meta(meta: dict, mapping: dict[str, str]) -> None:
    """Rename the genes named by directives / a sidecar (e.g. after stripping a ``v_`` prefix)."""
    for key in ("input_values", "input_sd", "initial", "initial_sd"):
        meta[key] = {mapping.get(g, g): v for g, v in meta[key].items()}
    meta["surface"] = [mapping.get(g, g) for g in meta["surface"]]
    meta["fates"] = {f: format_rule(rename_ast(parse_rule(c), mapping))
                     for f, c in meta["fates"].items()}


def _read_boolode_ics(path: Path, meta: dict) -> None:
    for lineno, raw in enumerate(_read_text(path).splitlines(), start=1):
        s = raw.strip()
        if not s or s.lower().startswith("genes"):
            continue
        try:
            left, right = re.split(r"\t+", s, maxsplit=1)
            genes, values = ast.literal_eval(left), ast.literal_eval(right)
        except (ValueError, SyntaxError):
            raise _fail(str(path), lineno, f"expected \"['Gene', ...]<TAB>[value, ...]\", got {_excerpt(s)}") from None
        for gene, value in zip(genes, values, strict=False):
            # BoolODE's values are on a 0..2 scale at most; activities here live in [0, 1]
            meta["initial"][str(gene)] = float(min(max(float(value), 0.0), 1.0))


def _validate_references(net: BooleanNetwork, origin: str) -> None:
    """Directives must name genes of the model; fate conditions must only read model genes."""
    for label, names in (("@input", net.input_values), ("@initial", net.initial_state),
                         ("@surface", net.surface), ("@alias", net.aliases.values())):
        for g in names:
            if g not in net.genes:
                raise _fail(origin, None, f"{label} names unknown gene {g!r}")
    for fate, cond in net.fates.items():
        for g in rule_variables(parse_rule(cond)):
            if g not in net.genes:
                raise _fail(origin, None, f"fate {fate!r} uses unknown gene {g!r}")


def _edges(genes: list[str], asts: dict, coupling: dict) -> pd.DataFrame:
    rows = []
    for target in genes:
        node = asts[target]
        if node is None:
            continue
        signs: dict[str, list[int]] = {}
        for reg, sign in _literals(node, +1):
            signs.setdefault(reg, []).append(sign)
        for reg, ss in signs.items():
            w = coupling.get((target, reg))
            if w is not None and w != 0:
                sign = 1 if w > 0 else -1
            else:
                sign = 1 if sum(ss) >= 0 else -1
            rows.append({"source": reg, "target": target, "sign": sign,
                         "weight": abs(w) if w is not None else 1.0})
    return pd.DataFrame(rows, columns=["source", "target", "sign", "weight"]).astype(
        {"sign": int, "weight": float})
