"""Reading Boolean models written as SBML-qual (SBML Level 3, Qualitative Models package).

GINsim, bioLQM, CellCollective, BoolNet and BioModels export logical models as SBML-qual. This
module reads the Boolean ones (every ``qualitativeSpecies`` has ``maxLevel`` at most 1) with the
standard library's :mod:`xml.etree.ElementTree` and converts every transition into the rule AST of
:mod:`scagents.twin.rules`, so that a model read from SBML-qual is the same network as the same
model read from a ``.bnet`` file (same genes, same truth table of every rule).

What is read
------------
Species
    ``qual:qualitativeSpecies``: ``id``, ``name``, ``constant``, ``maxLevel``, ``initialLevel``.
    Genes are named by the species **names**, made valid gene names (each character other than
    letters, digits and ``_ . : -`` becomes ``_``: ``APC/C`` → ``APC_C``), a species without a name
    by its id, when these names are all different; otherwise every gene is named by its species
    **id**. CellCollective and BioModels write ids such as ``S_12`` with names such as ``CycD``;
    GINsim writes the node names as ids and often no names. The id and the name as written are kept
    as aliases, so either finds the gene (look-ups also ignore case and punctuation).
Inputs
    A ``constant="true"`` species is an input clamped at its ``initialLevel`` (when given); a species
    that no transition sets, or whose transition has no function terms (biodivine's exports of
    free inputs), is an input held at its initial level. ``initialLevel`` sets the initial state.
Transitions
    ``qual:listOfOutputs`` names the genes a transition sets (``transitionEffect`` assignmentLevel);
    ``qual:listOfFunctionTerms`` holds a ``qual:defaultTerm`` and ``qual:functionTerm`` elements
    with ``resultLevel`` 0 or 1 and a MathML condition. With default 0 the rule is the disjunction of
    the conditions of the terms with result 1; with default 1 it is the negation of the disjunction
    of those with result 0 (terms with the default's own level add nothing: the specification asks
    for terms that do not overlap).
MathML
    ``and``, ``or``, ``not``, ``xor``, ``implies``, ``true``, ``false``; the comparisons ``eq``,
    ``neq``, ``geq``, ``gt``, ``leq``, ``lt`` of a species (``ci``) with a number (``cn``), with an
    input's threshold (``ci`` naming a ``qual:input`` id stands for its ``thresholdLevel``) or with
    another species; a bare species ``ci`` in a Boolean position reads as "level 1".

Anything else (a multi-valued species, a result level other than 0/1, other MathML, several
transitions setting one species) is refused in one line naming the species or transition and what is
supported. A file containing a ``<!DOCTYPE`` or ``<!ENTITY`` declaration is refused before parsing
(no entity of an untrusted file is ever expanded).
"""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from scagents.errors import ModelFileError

SUPPORTED_MATHML = ("and, or, not, xor, implies, true, false and eq, neq, geq, gt, leq, lt comparing a "
                    "species (ci) with a number (cn), an input's threshold or another species")

_RELATIONS = {"eq": lambda a, b: a == b, "neq": lambda a, b: a != b, "geq": lambda a, b: a >= b,
              "gt": lambda a, b: a > b, "leq": lambda a, b: a <= b, "lt": lambda a, b: a < b}
_TRUE: tuple = ("const", 1.0)
_FALSE: tuple = ("const", 0.0)


@dataclass
class QualModel:
    """What an SBML-qual file holds, in the terms of :class:`~scagents.twin.rules.BooleanNetwork`.

    Attributes
    ----------
    genes
        Gene names in the order of ``listOfQualitativeSpecies``.
    asts
        ``{gene: rule AST}``; ``None`` for inputs.
    initial
        ``{gene: initialLevel}`` where the file gives one.
    constant
        ``{gene: level}`` of constant species that have an ``initialLevel`` (clamped inputs).
    aliases
        ``{other spelling: gene}`` (species ids when names are used, else usable names).
    """

    genes: list[str]
    asts: dict[str, tuple | None]
    initial: dict[str, float] = field(default_factory=dict)
    constant: dict[str, float] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)


def _local(tag: str) -> str:
    """``'{namespace}name'`` → ``'name'``."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _attr(el: ET.Element, name: str) -> str | None:
    """An attribute by local name, with or without a namespace prefix (``qual:id`` or ``id``)."""
    plain = None
    for key, value in el.attrib.items():
        if key == name:
            plain = value
        elif _local(key) == name:
            return value.strip()
    return plain.strip() if plain is not None else None


def _children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if _local(c.tag) == name]


def _child(el: ET.Element, name: str) -> ET.Element | None:
    found = _children(el, name)
    return found[0] if found else None


def _int_level(text: str | None, what: str, fail) -> int | None:
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise fail(f"{what} is {text!r}, not a number") from None
    if value != int(value):
        raise fail(f"{what} is {text!r}, not a whole level")
    return int(value)


# --------------------------------------------------------------------------------------------------
# Boolean AST helpers (the tuple AST of scagents.twin.rules)
# --------------------------------------------------------------------------------------------------


def _and(nodes: list[tuple]) -> tuple:
    out = []
    for n in nodes:
        if n == _FALSE:
            return _FALSE
        if n != _TRUE:
            out.extend(n[1] if n[0] == "and" else [n])
    return _TRUE if not out else out[0] if len(out) == 1 else ("and", out)


def _or(nodes: list[tuple]) -> tuple:
    out = []
    for n in nodes:
        if n == _TRUE:
            return _TRUE
        if n != _FALSE:
            out.extend(n[1] if n[0] == "or" else [n])
    return _FALSE if not out else out[0] if len(out) == 1 else ("or", out)


def _not(node: tuple) -> tuple:
    if node[0] == "const":
        return _FALSE if node[1] else _TRUE
    if node[0] == "not":
        return node[1]
    return ("not", node)


def _xor(a: tuple, b: tuple) -> tuple:
    return _or([_and([a, _not(b)]), _and([_not(a), b])])


# --------------------------------------------------------------------------------------------------
# MathML
# --------------------------------------------------------------------------------------------------


class _MathError(ValueError):
    """Unsupported or malformed MathML (the caller names the transition)."""


def _leaf(el: ET.Element, species: dict[str, str], thresholds: dict[str, float]) -> tuple:
    """A MathML token (``ci``, ``cn``, ``true``, ``false``) as a typed value."""
    tag = _local(el.tag)
    if tag == "ci":
        ident = (el.text or "").strip()
        if ident in thresholds:
            return ("num", thresholds[ident])
        if ident in species:
            return ("level", species[ident])
        raise _MathError(f"<ci>{ident}</ci> names neither a species nor an input of the transition")
    if tag == "cn":
        if len(el):
            raise _MathError("<cn> with parts (rational or e-notation) is not read; write the number")
        try:
            return ("num", float((el.text or "").strip()))
        except ValueError:
            raise _MathError(f"<cn>{(el.text or '').strip()[:20]}</cn> is not a number") from None
    if tag in ("true", "false"):
        return ("bool", _TRUE if tag == "true" else _FALSE)
    raise _MathError(f"MathML <{tag}> is not supported")


def _convert(root: ET.Element, species: dict[str, str], thresholds: dict[str, float]) -> tuple:
    """A MathML element as a typed value: ``("bool", ast)``, ``("num", x)`` or ``("level", gene)``.

    Iterative (an explicit stack), so machine-written conditions nested hundreds deep are read.
    """
    values: dict[int, tuple] = {}
    stack: list[tuple[ET.Element, bool]] = [(root, False)]
    while stack:
        el, ready = stack.pop()
        if _local(el.tag) != "apply":
            values[id(el)] = _leaf(el, species, thresholds)
            continue
        parts = list(el)
        if not parts:
            raise _MathError("an empty <apply>")
        # <apply><apply>...</apply></apply>: a bracket around one expression (written by some tools)
        grouping = len(parts) == 1 and _local(parts[0].tag) in ("apply", "ci", "cn", "true", "false")
        operands = parts if grouping else parts[1:]
        if not ready:
            stack.append((el, True))
            stack.extend((c, False) for c in operands)
            continue
        if grouping:
            values[id(el)] = values.pop(id(parts[0]))
        else:
            values[id(el)] = _apply(_local(parts[0].tag), [values.pop(id(c)) for c in operands])
    return values[id(root)]


def _apply(op: str, args: list[tuple]) -> tuple:
    """``<apply><op/> args...</apply>`` on converted operands."""
    if op in ("and", "or"):
        if not args:
            raise _MathError(f"<{op}/> without operands")
        nodes = [_as_bool(a) for a in args]
        return ("bool", _and(nodes) if op == "and" else _or(nodes))
    if op == "not":
        if len(args) != 1:
            raise _MathError(f"<not/> takes one operand, not {len(args)}")
        return ("bool", _not(_as_bool(args[0])))
    if op == "xor":
        if not args:
            raise _MathError("<xor/> without operands")
        node = _as_bool(args[0])
        for a in args[1:]:
            node = _xor(node, _as_bool(a))
        return ("bool", node)
    if op == "implies":
        if len(args) != 2:
            raise _MathError(f"<implies/> takes two operands, not {len(args)}")
        return ("bool", _or([_not(_as_bool(args[0])), _as_bool(args[1])]))
    if op in _RELATIONS:
        if len(args) != 2:
            raise _MathError(f"<{op}/> takes two operands here, not {len(args)}")
        return ("bool", _compare(op, args[0], args[1]))
    raise _MathError(f"MathML <{op}/> is not supported")


def _as_bool(value: tuple) -> tuple:
    kind, x = value
    if kind == "bool":
        return x
    if kind == "level":
        return ("var", x)
    if x in (0.0, 1.0):
        return _TRUE if x else _FALSE
    raise _MathError(f"the number {x:g} is used as a Boolean value")


def _compare(op: str, left: tuple, right: tuple) -> tuple:
    """The comparison of two levels as a Boolean AST, by enumerating the levels (0, 1) of the species."""
    for side in (left, right):
        if side[0] == "bool":
            if side[1][0] != "const":
                raise _MathError(f"<{op}/> compares a Boolean expression; compare a species with a number")
    genes = [s[1] for s in (left, right) if s[0] == "level"]
    genes = list(dict.fromkeys(genes))
    relation = _RELATIONS[op]

    def value(side: tuple, levels: dict[str, int]) -> float:
        if side[0] == "level":
            return float(levels[side[1]])
        if side[0] == "bool":
            return float(side[1][1])
        return float(side[1])

    terms = []
    for combo in itertools.product((0, 1), repeat=len(genes)):
        levels = dict(zip(genes, combo, strict=True))
        if relation(value(left, levels), value(right, levels)):
            terms.append(_and([("var", g) if v else _not(("var", g)) for g, v in levels.items()]))
    if len(terms) == 2 ** len(genes):
        return _TRUE
    return _or(terms)


# --------------------------------------------------------------------------------------------------
# The document
# --------------------------------------------------------------------------------------------------


def parse_sbml_qual(text: str, origin: str) -> QualModel:
    """Read a Boolean SBML-qual document.

    Parameters
    ----------
    text
        The XML text.
    origin
        The file (or ``"<model text>"``) named in error messages.

    Returns
    -------
    QualModel
        Genes, rule ASTs (``None`` for inputs), initial and constant levels, aliases.

    Raises
    ------
    ModelFileError
        In one line: a DOCTYPE/ENTITY declaration, XML that is not well formed, an SBML file without
        qualitative species, a multi-valued species, a result level other than 0/1, unsupported
        MathML, or a transition setting a species another one sets too.
    """

    def fail(message: str) -> ModelFileError:
        return ModelFileError(f"{origin}: {message}")

    if re.search(r"<!\s*(DOCTYPE|ENTITY)", text, re.I):
        raise fail("the XML file declares a DOCTYPE or ENTITY; such declarations are not read (no entity "
                   "of a model file is expanded). Remove the declaration, or export the model again as "
                   "SBML-qual or .bnet.")
    text = text.lstrip("\ufeff \t\r\n")  # a byte-order mark or blank lines before '<?xml'
    try:
        # safe here: entity expansion and external entities need a DOCTYPE, refused above
        root = ET.fromstring(text)  # noqa: S314
    except ET.ParseError as err:
        line, col = getattr(err, "position", (None, None))
        raise fail(f"not well-formed XML (line {line}, column {col}); give an SBML-qual or .bnet "
                   "model file.") from None
    if _local(root.tag) != "sbml":
        raise fail(f"an XML file whose root is <{_local(root.tag)}>, not <sbml>; scagents reads "
                   "SBML-qual, not other XML formats (GINsim's GINML: export SBML-qual or .bnet).")
    model = _child(root, "model")
    species_list = None if model is None else _child(model, "listOfQualitativeSpecies")
    if model is None or species_list is None:
        raise fail("an SBML file without qualitative species (the SBML-qual package): a reaction or "
                   "kinetic model is not a logical model; give a Boolean SBML-qual or .bnet file.")

    # species
    ids: list[str] = []
    names: dict[str, str | None] = {}
    constant: set[str] = set()
    initial_by_id: dict[str, int] = {}
    for sp in _children(species_list, "qualitativeSpecies"):
        sid = _attr(sp, "id")
        if not sid:
            raise fail("a qualitativeSpecies has no id")
        if sid in names:
            raise fail(f"species id {sid!r} is declared twice")
        ids.append(sid)
        names[sid] = _attr(sp, "name") or None

        def sfail(msg: str, sid: str = sid) -> ModelFileError:
            return fail(f"species {sid!r}: {msg}")

        max_level = _int_level(_attr(sp, "maxLevel"), "maxLevel", sfail)
        if max_level is not None and max_level > 1:
            raise fail(f"species {sid!r} has maxLevel {max_level}: this is a multi-valued model; scagents "
                       "reads Boolean SBML-qual models (every species maxLevel 1). Give a Boolean "
                       "version of the model (maxLevel 1) as SBML-qual or .bnet.")
        level = _int_level(_attr(sp, "initialLevel"), "initialLevel", sfail)
        if level is not None:
            if level not in (0, 1):
                raise sfail(f"initialLevel {level} is not 0 or 1 (Boolean models only)")
            initial_by_id[sid] = level
        if (_attr(sp, "constant") or "false").lower() == "true":
            constant.add(sid)
    if not ids:
        raise fail("the model has no qualitative species.")

    gene_of = _gene_names(ids, names)

    # transitions
    asts_by_id: dict[str, tuple | None] = {}
    set_by: dict[str, str] = {}
    transitions = _child(model, "listOfTransitions")
    for number, tr in enumerate([] if transitions is None else _children(transitions, "transition"), 1):
        tid = _attr(tr, "id") or f"#{number}"

        def tfail(msg: str, tid: str = tid) -> ModelFileError:
            return fail(f"transition {tid!r}: {msg}")

        thresholds: dict[str, float] = {}
        inputs_el = _child(tr, "listOfInputs")
        for inp in [] if inputs_el is None else _children(inputs_el, "input"):
            src = _attr(inp, "qualitativeSpecies")
            if src not in gene_of:
                raise tfail(f"an input names unknown species {src!r}")
            effect = (_attr(inp, "transitionEffect") or "none")
            if effect != "none":
                raise tfail(f"input {src!r} has transitionEffect {effect!r}; logical models use 'none'")
            iid, thr = _attr(inp, "id"), _attr(inp, "thresholdLevel")
            if iid and thr not in (None, ""):
                try:
                    thresholds[iid] = float(thr)
                except ValueError:
                    raise tfail(f"input {iid!r} has thresholdLevel {thr!r}, not a number") from None
        outputs_el = _child(tr, "listOfOutputs")
        outputs = []
        for out in [] if outputs_el is None else _children(outputs_el, "output"):
            dst = _attr(out, "qualitativeSpecies")
            if dst not in gene_of:
                raise tfail(f"an output names unknown species {dst!r}")
            effect = _attr(out, "transitionEffect") or "assignmentLevel"
            if effect != "assignmentLevel":
                raise tfail(f"output {dst!r} has transitionEffect {effect!r}; scagents reads "
                            "'assignmentLevel' (logical models), not Petri-net 'production'")
            if dst in set_by:
                raise tfail(f"species {dst!r} is also set by transition {set_by[dst]!r}; one transition "
                            "per species is supported (merge their function terms)")
            if dst in constant:
                raise tfail(f"species {dst!r} is constant but is the output of a transition; make it "
                            "non-constant or remove the transition")
            set_by[dst] = tid
            outputs.append(dst)
        if not outputs:
            continue
        terms_el = _child(tr, "listOfFunctionTerms")
        if terms_el is None or not len(terms_el):
            node = None  # no function: a free input (biodivine exports inputs this way)
        else:
            node = _transition_rule(terms_el, gene_of, thresholds, tfail)
        for dst in outputs:
            asts_by_id[dst] = node

    genes = [gene_of[s] for s in ids]
    asts = {gene_of[s]: asts_by_id.get(s) for s in ids}
    initial = {gene_of[s]: float(v) for s, v in initial_by_id.items()}
    clamped = {gene_of[s]: float(initial_by_id[s]) for s in ids if s in constant and s in initial_by_id}
    aliases = _aliases(ids, names, gene_of)
    return QualModel(genes=genes, asts=asts, initial=initial, constant=clamped, aliases=aliases)


def _transition_rule(terms_el: ET.Element, gene_of: dict[str, str], thresholds: dict[str, float],
                     tfail) -> tuple:
    default = None
    by_result: dict[int, list[tuple]] = {0: [], 1: []}
    for term in terms_el:
        kind = _local(term.tag)
        if kind not in ("defaultTerm", "functionTerm"):
            continue
        result = _int_level(_attr(term, "resultLevel"), f"{kind} resultLevel", tfail)
        if result is None:
            raise tfail(f"a {kind} has no resultLevel")
        if result not in (0, 1):
            raise tfail(f"a {kind} has resultLevel {result}; Boolean models use 0 or 1 (multi-valued "
                        "models are not read)")
        if kind == "defaultTerm":
            default = result
            continue
        math = _child(term, "math")
        if math is None or not len(math):
            raise tfail("a functionTerm has no MathML <math> condition")
        try:
            node = _as_bool(_convert(math[0], gene_of, thresholds))
        except _MathError as err:
            raise tfail(f"{err}; supported MathML: {SUPPORTED_MATHML}") from None
        by_result[result].append(node)
    if default is None:
        raise tfail("no defaultTerm (SBML-qual requires one: the level when no functionTerm holds)")
    return _or(by_result[1]) if default == 0 else _not(_or(by_result[0]))


def valid_name(name: str) -> str:
    """A species name as a gene name: every character other than letters, digits and ``_ . : -``
    becomes ``_`` (``"APC/C"`` → ``"APC_C"``, ``"Retinoic acid"`` → ``"Retinoic_acid"``), as a leading
    ``. : -`` does."""
    out = re.sub(r"[^A-Za-z0-9_.:\-]", "_", name.strip())
    return "_" + out[1:] if out[:1] in (".", ":", "-") else out


def _gene_names(ids: list[str], names: dict[str, str | None]) -> dict[str, str]:
    """``{species id: gene name}``: each species' name made valid by :func:`valid_name` (its id
    where it has no name) when these are all different, else the ids."""
    chosen = {s: (valid_name(names[s]) if names[s] and valid_name(names[s]) else s) for s in ids}  # type: ignore[arg-type]
    if len(set(chosen.values())) < len(ids):
        return {s: s for s in ids}
    return chosen


def _aliases(ids: list[str], names: dict[str, str | None], gene_of: dict[str, str]) -> dict[str, str]:
    """The spellings not used for each gene (its id, its name as written), where they name no other gene."""
    genes = {g.lower() for g in gene_of.values()}
    out: dict[str, str] = {}
    for s in ids:
        gene = gene_of[s]
        for other in (s, names[s]):
            if other and other != gene and other.lower() not in genes:
                out[other] = gene
    seen: dict[str, int] = {}
    for alias in out:
        key = alias.lower()
        seen[key] = seen.get(key, 0) + 1
    return {a: g for a, g in out.items() if seen[a.lower()] == 1}
