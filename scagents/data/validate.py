"""Validation and standardisation of single-cell perturbation data.

:func:`standardize` checks the expression values and names, finds the perturbation column and the
control cells, and writes the standard ``.obs`` columns documented in ``docs/architecture.md``:
``perturbation``, ``target_genes``, ``perturbation_type`` and ``is_control``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scagents.errors import DataError, PerturbationError
from scagents.perturbation import KINDS

from .io import rna_modality

__all__ = [
    "CONTROL_TOKENS",
    "DEFAULT_TYPE_REASON",
    "EXCLUDED_TOKENS",
    "PERTURBATION_KEYS",
    "STANDARD_COLUMNS",
    "ValueSummary",
    "combinations_with",
    "counts_as_x",
    "find_perturbation_key",
    "gene_names",
    "genome_line",
    "is_control_label",
    "is_excluded_label",
    "library_target",
    "lognormalize",
    "mirror_obs",
    "one_genome",
    "reference_prefixes",
    "scan_values",
    "split_targets",
    "standardize",
]

#: The obs columns :func:`standardize` writes.
STANDARD_COLUMNS: tuple[str, ...] = ("perturbation", "target_genes", "perturbation_type", "is_control")

#: obs column names recognised (case-insensitively, in this order) as the perturbation label.
PERTURBATION_KEYS: tuple[str, ...] = (
    "perturbation", "perturbations", "perturbation_name", "perturbation_label",
    "target_genes", "target_gene", "targets", "target", "gene_target", "gene_targets",
    "guide_target", "gene", "genes", "guide_identity", "guide_ids", "guide_id", "sgrna",
    "grna", "guide", "guides", "guide_name", "sgrna_id", "grna_id", "feature_call",
    "gene_transcript", "sgid_ab",
    "condition", "stim", "stimulation", "treatment",
)

#: var columns recognised (in this order) as gene symbols when ``var_names`` are Ensembl IDs.
SYMBOL_COLUMNS: tuple[str, ...] = (
    "gene_symbols", "gene_symbol", "feature_name", "gene_name", "gene_names", "symbol", "symbols",
    "gene_short_name", "features", "feature", "name", "gene",
)
_ENSEMBL_RE = re.compile(r"^ENS[A-Z]*G\d{6,}(?:\.\d+)?$")

#: Normalised (lower-case, alphanumeric) control labels; a trailing number is allowed (``NTC_12``)
#: and so is a guide prefix or suffix (``sgNTC``, ``sgCtrl_2``, ``gRNA-NT``, ``NTg10``). Cutting and vector controls
#: count too: intergenic and safe-harbour guides (``AAVS1``), an empty vector (``EV``), guides
#: against a reporter absent from the genome (``GFP``, ``LacZ``, ``luciferase``). A label whose
#: every piece is a control (``NegCtrl0_NegCtrl0__NegCtrl0_NegCtrl0``, ``ctrl+ctrl``) is a control.
#: ``WT`` is left out on purpose: ``WT1`` is a gene.
CONTROL_TOKENS: tuple[str, ...] = (
    "control", "ctrl", "ctl", "nt", "ntc", "nc", "neg", "negative", "negativecontrol", "negctrl",
    "nontargeting", "nontarget", "nontargetingcontrol", "safetargeting", "safe", "unperturbed",
    "untreated", "unstimulated", "scramble", "scrambled", "mock", "vehicle", "dmso", "none",
    "wildtype", "baseline", "noguide", "nogrna", "intergenic", "safeharbor", "safeharbour",
    "aavs1", "empty", "emptyvector", "ev", "gfp", "egfp", "lacz", "luciferase",
)
_CONTROL_PREFIXES = ("nontargeting", "safetargeting", "negativecontrol", "scrambl", "intergenic",
                     "safeharbo", "emptyvector")
_GUIDE_PREFIX = r"(?:sgrna|grna|sg|guide)?"

#: Normalised labels of cells that carry no usable perturbation (no guide assigned, several guides,
#: a doublet): left out of every analysis, never read as a knockout of a gene of that name.
#: ``negative`` and ``none`` stay control labels (:data:`CONTROL_TOKENS`). A label with no letter
#: or digit at all (``""``, ``"*"``, ``"-"``) is excluded too: it names nothing.
EXCLUDED_TOKENS: tuple[str, ...] = (
    "unassigned", "notassigned", "noassignment", "unknown", "undetermined", "ambiguous", "multi",
    "multiple", "multiplet", "multiplets", "doublet", "doublets", "unmapped", "lowquality", "nan",
    "na", "null", "nocall", "noguidecall", "blank", "invalid", "multipleguides", "multiguide",
    "multigrna", "multisgrna",
)
_EXCLUDED_RE = re.compile(
    r"^$|^(?:" + "|".join(sorted(EXCLUDED_TOKENS, key=len, reverse=True)) + r")$"
    r"|^(?:unassign|multiplet|doublet|nocall)|or(?:multi|multiplet|multiple|doublet)s?$")
_CONTROL_RE = re.compile(_GUIDE_PREFIX + r"(?:"
                         + "|".join(sorted(CONTROL_TOKENS, key=len, reverse=True))
                         + r")(?:sgrna|grna|sg|g|guide)?\d*$")  # a guide suffix: NTg10, NT_sg2
_PIECES_RE = re.compile(r"[\s_+,;|&/-]+")
#: ``uns["scagents"]["data"]["perturbation_type_reason"]`` when the kinds were not given but assumed
DEFAULT_TYPE_REASON = "default for CRISPR-like data"
_STIM_KEYS = {"stim", "stimulation", "stimulated", "treatment", "cytokine"}
_SPLIT_RE = re.compile(r"\s*(?:\+|,|;|\||&)\s*")
# a guide-level label: the target and a guide number ("STAT1g2", "STAT1sg2" with a lower-case guide
# word and no separator; "STAT1_g1", "STAT1-sgRNA2", "STAT1_2" with one)
_GUIDE_WORD_RE = re.compile(r"^(.*?[^_.\s-])(?:sgrna|grna|guide|sg|g)[_.-]?\d+$")
_GUIDE_SEP_RE = re.compile(r"^(.+?)[_.-](sgrna|grna|guide|sg|g)?[_.-]?\d+$", re.IGNORECASE)
# CRISPRi library labels (Horlbeck et al. 2016 hCRISPRi-v2, Replogle et al. 2022): a target and
# the transcription start site(s) its guides aim at ("AARS_P1P2", "AARS_P1"); Replogle's
# ``gene_transcript``, "{row}_{gene}_{TSS}_{Ensembl ID}" ("1_AARS_P1P2_ENSG00000090861", controls
# "10748_non-targeting_non-targeting_non-targeting"); a guide ID, "{gene}_{strand}_{position}-{TSS}"
# ("AARS_+_70323216.23-P1P2"; a dual-guide pair joins two with "|")
_TSS = r"P\d+(?:P\d+)*"
_TSS_RE = re.compile(rf"^(.+?)_{_TSS}$")
_GENE_TRANSCRIPT_RE = re.compile(r"^\d+_([^_]+)_([^_]+)_([^_]+)$")
_GUIDE_ID_RE = re.compile(rf"([^\s_+,;|&]+)_[+-]_\d+(?:\.\d+)?-{_TSS}")
_CHUNK_ROWS = 4096
#: Above this, non-negative non-integer expression values cannot be on a log scale (log1p of
#: counts per million stays below 14, log2(TPM + 1) below 20): they are refused as unlogged.
LOG_SCALE_MAX = 30.0


def _norm(label: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(label).lower())


def library_target(label: str) -> str | None:
    """The target named by a CRISPRi library label; ``None`` for any other label.

    Recognises the target and its transcription start site(s) (``AARS_P1P2``, ``AARS_P1``,
    ``AARS_P2`` → ``AARS``; Horlbeck et al. 2016, Replogle et al. 2022), Replogle's
    ``gene_transcript`` (``1_AARS_P1P2_ENSG00000090861`` → ``AARS``;
    ``10748_non-targeting_non-targeting_non-targeting`` → ``non-targeting``) and a guide ID
    (``AARS_+_70323216.23-P1P2`` → ``AARS``).

    Parameters
    ----------
    label
        One perturbation label (not a combination).

    Returns
    -------
    str or None
        The target (or control) name the label carries.
    """
    label = str(label).strip()
    m = _GENE_TRANSCRIPT_RE.fullmatch(label)
    if m and (m[2] == m[1] or re.fullmatch(_TSS, m[2])) and (
            m[3] == m[1] or _ENSEMBL_RE.match(m[3])):
        return m[1]
    m = _GUIDE_ID_RE.fullmatch(label)
    if m:
        return m[1]
    m = _TSS_RE.fullmatch(label)
    return m[1] if m else None


def _unwrap(label: str) -> str:
    """``label`` with every CRISPRi library label in it replaced by its target
    (:func:`library_target`); other labels unchanged."""
    label = _GUIDE_ID_RE.sub(lambda m: m[1], str(label).strip())
    return library_target(label) or label


def is_control_label(label: str, control_labels: Sequence[str] | None = None) -> bool:
    """Whether ``label`` names control cells.

    Parameters
    ----------
    label
        A perturbation label such as ``"non-targeting"``, ``"NTC_3"`` or ``"STAT1"``.
    control_labels
        Labels given by the user; when set, only these count (compared case-insensitively, ignoring
        punctuation). ``None`` uses the built-in vocabulary (:data:`CONTROL_TOKENS`).
    """
    key = _norm(label)
    inner = _unwrap(label)
    if control_labels is not None:
        return bool({key, _norm(inner)} & {_norm(c) for c in control_labels})
    if inner != str(label).strip():  # a library label: its target decides
        return is_control_label(inner)
    if not key:
        return False
    if _CONTROL_RE.fullmatch(key) or re.sub("^" + _GUIDE_PREFIX, "", key).startswith(
            _CONTROL_PREFIXES):
        return True
    # a combination of control pieces only ("NegCtrl0_NegCtrl0__NegCtrl0_NegCtrl0", "ctrl+ctrl")
    pieces = [_norm(p) for p in _PIECES_RE.split(str(label)) if _norm(p)]
    return len(pieces) > 1 and all(
        _CONTROL_RE.fullmatch(p) or p.startswith(_CONTROL_PREFIXES) for p in pieces)


def is_excluded_label(label: str, control_labels: Sequence[str] | None = None) -> bool:
    """Whether ``label`` marks cells without a usable perturbation (``"unassigned"``,
    ``"multiplet"``, ``"doublet"``, ``"unassigned_or_multi"``, …; see :data:`EXCLUDED_TOKENS`).

    A label the user names in ``control_labels`` is a control, never excluded.
    """
    if control_labels is not None and is_control_label(label, control_labels):
        return False
    return bool(_EXCLUDED_RE.search(_norm(label)))


def _unambiguous(names) -> tuple[set[str], dict[str, str]]:
    """The names, and their lower-case spellings that belong to one name only."""
    names = set(names)
    lower: dict[str, list[str]] = {}
    for name in names:
        lower.setdefault(name.lower(), []).append(name)
    return names, {k: v[0] for k, v in lower.items() if len(v) == 1}


class _Targets:
    """Resolves the pieces of perturbation labels to target names.

    ``genes`` are the measured gene names; ``known`` are further target names (other labels of the
    same data naming a target that is not measured).
    """

    def __init__(self, genes: set[str] | None = None, known: set[str] | None = None) -> None:
        self.genes = _unambiguous(genes or ())
        self.known = _unambiguous(n for n in (known or ()) if n.lower() not in self.genes[1])

    def name(self, piece: str) -> str | None:
        """``piece`` spelled as a measured gene, else as a known target (exactly, else ignoring
        case when that is unambiguous: ``"stat1"`` → ``STAT1``); ``None`` if neither."""
        for exact, lower in (self.genes, self.known):
            if piece in exact:
                return piece
            if (name := lower.get(piece.lower())) is not None:
                return name
        return None

    def target(self, piece: str) -> str:
        """The target of one piece: itself, its known spelling, or the target of a guide-level
        label (``STAT1g2``, ``STAT1_g1``, ``STAT1_2`` → ``STAT1`` when STAT1 is a known target)."""
        if (name := self.name(piece)) is not None:
            return name
        for pattern in (_GUIDE_WORD_RE, _GUIDE_SEP_RE):
            m = pattern.fullmatch(piece)
            if m and (name := self.name(m.group(1))) is not None:
                return name
        return piece


def guide_stem(label: str) -> str | None:
    """The target part of a guide-level label: a guide word and number (``STAT1g2``,
    ``STAT1_sg1``, ``STAT1-guide3``) or an underscore / dot and a number (``STAT1_2``) →
    ``STAT1``; ``None`` for any other label. A hyphen and a bare number is not enough (``NKX2-1``
    is a gene; gene symbols never hold ``_`` or ``.``)."""
    m = _GUIDE_WORD_RE.fullmatch(label)
    if m:
        return m.group(1)
    m = _GUIDE_SEP_RE.fullmatch(label)
    if m and (m.group(2) or re.fullmatch(r".+?[_.]\d+", label)):
        return m.group(1)
    return None


def _split(text: str, resolve: _Targets, control_labels: Sequence[str] | None) -> tuple[str, ...]:
    if is_control_label(text, control_labels):
        return ()
    text = _GUIDE_ID_RE.sub(lambda m: m[1], text)  # guide IDs hold "+" (the strand)
    out: list[str] = []
    for part in _SPLIT_RE.split(text):
        part = _unwrap(part)
        if not part or is_control_label(part, control_labels):
            continue
        pieces = [p for p in part.split("_") if p]
        named = [resolve.name(p) for p in pieces]
        if (
            "_" in part and resolve.name(part) is None and len(pieces) > 1
            and all(n is not None or is_control_label(p, control_labels)
                    for p, n in zip(pieces, named, strict=True))
        ):
            out.extend(n for p, n in zip(pieces, named, strict=True)
                       if n is not None and not is_control_label(p, control_labels))
        else:
            out.append(resolve.target(part))
    return tuple(dict.fromkeys(out))


def split_targets(
    label: str, *, genes: set[str] | None = None, control_labels: Sequence[str] | None = None,
    known: set[str] | None = None,
) -> tuple[str, ...]:
    """The target genes of a perturbation label; ``()`` for a control label.

    ``"STAT1+IRF1"``, ``"STAT1,IRF1"``, ``"STAT1|IRF1"``, ``"STAT1 & IRF1"`` and ``"STAT1;IRF1"``
    are split. An underscore splits only when every piece is a gene in ``genes`` or a name in
    ``known`` (``"CBL_UBASH3B"``); a CRISPRi library label names its target (``"AARS_P1P2"``,
    ``"1_AARS_P1P2_ENSG00000090861"``, ``"AARS_+_70323216.23-P1P2|AARS_-_70323296.23-P1P2"`` →
    ``AARS``; :func:`library_target`).
    Control pieces (``"STAT1+ctrl"``) are dropped. A piece is spelled as the gene it names when
    it differs only in case (``"stat1"`` → ``STAT1``), and a guide-level label names its target
    (``"STAT1g2"``, ``"STAT1_g1"``, ``"STAT1_2"`` → ``STAT1``) when that target is a gene in
    ``genes`` or a name in ``known``.
    """
    return _split(str(label).strip(), _Targets(genes, known), control_labels)


# ----------------------------------------------------------------------------------------------
# value checks
# ----------------------------------------------------------------------------------------------


@dataclass
class ValueSummary:
    """What :func:`scan_values` found in a matrix."""

    n_nan: int = 0
    n_inf: int = 0
    n_negative: int = 0
    n_nonzero: int = 0
    all_integer: bool = True
    first_nan: tuple[int, int] | None = None
    first_inf: tuple[int, int] | None = None
    first_negative: tuple[int, int] | None = None
    max_value: float = float("-inf")

    @property
    def is_counts(self) -> bool:
        """Integer-valued, finite and non-negative."""
        return self.all_integer and self.n_nan == 0 and self.n_inf == 0 and self.n_negative == 0


def _row_chunks(X, n_rows: int) -> Iterator[tuple[int, object]]:
    if sp.issparse(X) and not sp.isspmatrix_csr(X) and not isinstance(X, sp.csr_array):
        X = sp.csr_matrix(X)
    for start in range(0, n_rows, _CHUNK_ROWS):
        yield start, X[start:start + _CHUNK_ROWS]


def _first_pos(chunk, mask: np.ndarray, start: int) -> tuple[int, int]:
    if sp.issparse(chunk):
        pos = int(np.flatnonzero(mask)[0])
        row = int(np.searchsorted(chunk.indptr, pos, side="right") - 1)
        return start + row, int(chunk.indices[pos])
    r, c = np.argwhere(mask)[0]
    return start + int(r), int(c)


def scan_values(X, n_rows: int | None = None) -> ValueSummary:
    """Count NaN, infinite and negative values and test integrality, chunk by chunk.

    Works on dense arrays, SciPy sparse matrices and backed (on-disk) matrices without densifying
    a whole sparse matrix.
    """
    n_rows = X.shape[0] if n_rows is None else n_rows
    s = ValueSummary()
    for start, chunk in _row_chunks(X, n_rows):
        if sp.issparse(chunk):
            chunk = sp.csr_matrix(chunk)
            vals = chunk.data
        else:
            chunk = np.asarray(chunk)
            vals = chunk
        if vals.size == 0:
            continue
        s.n_nonzero += int(np.count_nonzero(vals))
        if np.issubdtype(vals.dtype, np.integer) or vals.dtype == bool:
            s.max_value = max(s.max_value, float(vals.max()))
            neg = vals < 0
            nneg = int(neg.sum())
            if nneg and s.first_negative is None:
                s.first_negative = _first_pos(chunk, neg, start)
            s.n_negative += nneg
            continue
        nan = np.isnan(vals)
        inf = np.isinf(vals)
        n_nan, n_inf = int(nan.sum()), int(inf.sum())
        if n_nan and s.first_nan is None:
            s.first_nan = _first_pos(chunk, nan, start)
        if n_inf and s.first_inf is None:
            s.first_inf = _first_pos(chunk, inf, start)
        s.n_nan += n_nan
        s.n_inf += n_inf
        finite = np.where(nan | inf, 0, vals)
        neg = finite < 0
        nneg = int(neg.sum())
        if nneg and s.first_negative is None:
            s.first_negative = _first_pos(chunk, neg, start)
        s.n_negative += nneg
        s.max_value = max(s.max_value, float(finite.max()))
        if s.all_integer and not np.array_equal(finite, np.round(finite)):
            s.all_integer = False
    return s


def _where(adata: ad.AnnData, pos: tuple[int, int]) -> str:
    return f"cell {adata.obs_names[pos[0]]!r}, gene {adata.var_names[pos[1]]!r}"


def _check_values(adata: ad.AnnData, X, what: str, *, expression: bool = False) -> ValueSummary:
    """Refuse NaN, infinite, negative whole-number and all-zero values; with ``expression``, also
    unlogged non-integer values (:data:`LOG_SCALE_MAX`: the RNA ``X`` an analysis reads)."""
    s = scan_values(X, adata.n_obs)
    if s.n_nan:
        raise DataError(
            f"{what} contains {s.n_nan} NaN value(s) (first at {_where(adata, s.first_nan)}). "
            "Expression values must be numbers: remove those cells/genes or replace NaN by 0 "
            "(e.g. X[np.isnan(X)] = 0) before loading."
        )
    if s.n_inf:
        raise DataError(
            f"{what} contains {s.n_inf} infinite value(s) (first at {_where(adata, s.first_inf)}), "
            "typically from log(0) or a division by zero. Recompute the values from the raw counts "
            "or replace inf by a finite number."
        )
    if s.all_integer and s.n_negative:
        raise DataError(
            f"{what} looks like counts (all values are whole numbers) but {s.n_negative} value(s) are "
            f"negative (first at {_where(adata, s.first_negative)}). Counts cannot be negative: check "
            "how the matrix was produced, or provide normalised (non-integer) values."
        )
    if expression and not s.all_integer and not s.n_negative and s.max_value > LOG_SCALE_MAX:
        raise DataError(
            f"{what} holds non-negative values that are not whole numbers and reach "
            f"{s.max_value:.4g}: neither counts nor log-scale values (log-normalised expression "
            f"stays below {LOG_SCALE_MAX:g}). They look like normalised or corrected counts (CPM, "
            "TPM, ambient-corrected): give the raw counts (in X or layers['counts']), round "
            "fractional counts to whole numbers (e.g. adata.X = np.rint(adata.X)), or "
            "log-transform the values first (e.g. scanpy.pp.log1p(adata))."
        )
    if s.n_nonzero == 0:
        raise DataError(
            f"{what} holds only zeros ({adata.n_obs} cells × {adata.n_vars} genes): no gene is "
            "expressed in any cell, so there is nothing to analyse. Check that the file holds the "
            "expression values (not an empty placeholder matrix) and what filtering emptied it."
        )
    return s


def _check_names(adata: ad.AnnData) -> None:
    if adata.n_obs == 0:
        raise DataError(
            f"The data have 0 cells (shape {adata.shape}). Check the file and any filtering/subsetting "
            "applied before loading."
        )
    if adata.n_vars == 0:
        raise DataError(
            f"The data have 0 genes (shape {adata.shape}). Check the file and any gene filtering "
            "applied before loading."
        )
    for axis, names, fix in (("cell", adata.obs_names, "adata.obs_names_make_unique()"),
                             ("gene", adata.var_names, "adata.var_names_make_unique()")):
        if not names.is_unique:
            dup = names[names.duplicated()].unique()
            raise DataError(
                f"{len(dup)} {axis} name(s) occur more than once (e.g. {list(dup[:5])}). {axis.capitalize()} "
                f"names must be unique: call {fix} or remove the duplicated {axis}s."
            )


# ----------------------------------------------------------------------------------------------
# perturbation metadata
# ----------------------------------------------------------------------------------------------


def _recorded(adata: ad.AnnData) -> dict:
    scag = adata.uns.get("scagents", {})
    return dict(scag.get("data", {})) if isinstance(scag, Mapping) else {}


def find_perturbation_key(adata: ad.AnnData, perturbation_key: str | None = None) -> str:
    """The obs column holding the perturbation labels.

    Parameters
    ----------
    adata
        The data.
    perturbation_key
        Column named by the user; must exist. ``None`` looks for a previously recorded column, then
        for the names in :data:`PERTURBATION_KEYS` (case-insensitive).

    Raises
    ------
    PerturbationError
        The named column is missing or no known column is found; the message lists the obs columns.
    """
    cols = list(adata.obs.columns)
    if perturbation_key is not None:
        if perturbation_key not in adata.obs:
            raise PerturbationError(
                f"perturbation_key={perturbation_key!r} is not an obs column. The obs columns are: "
                f"{cols or 'none'}. Pass the column that holds each cell's perturbation label "
                "(CLI: --perturbation-key COLUMN)."
            )
        return perturbation_key
    recorded = _recorded(adata).get("perturbation_key")
    if recorded and recorded in adata.obs:
        return str(recorded)
    lower = {str(c).lower(): c for c in cols}
    for name in PERTURBATION_KEYS:
        col = lower.get(name)
        if col is not None and not pd.api.types.is_bool_dtype(adata.obs[col]):
            return str(col)
    if not cols:
        raise PerturbationError(
            "No perturbation labels: obs has no columns, so these cells look unperturbed. Predicting a "
            "perturbation needs perturbed and control cells with a column naming each cell's perturbation "
            "(perturbation_key='<column>'; CLI: --perturbation-key COLUMN); without data, the digital twin "
            "predicts knockouts of its model's genes (`python -m scagents run --goal ...` without --data)."
        )
    raise PerturbationError(
        "No perturbation column found in obs (looked for "
        f"{', '.join(PERTURBATION_KEYS[:12])}, ...). The obs columns are: {cols}. "
        "Pass perturbation_key='<column>' (CLI: --perturbation-key COLUMN) naming the column that holds "
        "each cell's perturbation (e.g. the guide target or the stimulation condition)."
    )


def _infer_type(adata: ad.AnnData, key: str, labels: Sequence[str], targets: Mapping[str, tuple],
                genes: set[str]) -> tuple[str, str]:
    """Default perturbation type for non-control labels and the reason for it."""
    k = _norm(key)
    if k in _STIM_KEYS:
        return "stimulation", f"the perturbation column is named {key!r}"
    if k == "condition":
        named = [t for lab in labels for t in targets[lab]]
        if named and not any(t in genes for t in named):
            return "stimulation", f"column {key!r} holds conditions, not measured genes"
    return "knockout", DEFAULT_TYPE_REASON


def _validate_type(kind: str) -> str:
    if kind not in KINDS:
        raise PerturbationError(
            f"Unknown perturbation_type {kind!r}; use one of {', '.join(KINDS)} (control cells get "
            "'control' automatically)."
        )
    return kind


def _known_targets(labels: Sequence[str]) -> set[str]:
    """Target names the labels of one data set vouch for beyond the measured genes: a plain label
    (``IRF1``, no separator or guide number), and the target part of guide-level labels when two
    or more labels share it or it is a plain label too (``IRF1g1``, ``IRF1g2`` → ``IRF1``); a
    CRISPRi library label names its target (``AARS_P1P2`` → ``AARS``, :func:`library_target`)."""
    labels = [_unwrap(lab) for lab in labels]
    plain = {lab for lab in labels if not re.search(r"[\s_+,;|&/]", lab) and guide_stem(lab) is None}
    plain |= {t for lab in labels for piece in _SPLIT_RE.split(lab)
              if (t := library_target(piece)) is not None}
    stems = pd.Series([s for lab in labels if (s := guide_stem(lab)) is not None], dtype=object)
    counts = stems.value_counts()
    return plain | {str(s) for s, n in counts.items() if n >= 2 or s in plain}


#: A reference (genome) name as Cell Ranger writes it before each gene of a multi-genome
#: reference: letters and a version number, optionally a build tag (``GRCh38``, ``hg19``, ``mm10``,
#: ``GRCm39``, ``GRCh38-2020-A``); chromosome names (``chr1``) are not references.
_GENOME_RE = re.compile(r"^(?!chr|ENS[A-Z]*G\d)[A-Za-z][A-Za-z]*\d+[A-Za-z0-9]*(?:[-.][A-Za-z0-9]+)*$", re.IGNORECASE)
#: Most references one file combines (a barnyard has two, rarely three).
MAX_REFERENCES = 3
#: Share of the gene names that must carry a reference prefix (all references together).
GENOME_PREFIX_SHARE = 0.95
#: Share of its counts a cell must draw from the kept reference (:func:`one_genome`): ambient
#: reads of the other species stay below it, mixed-species multiplets (about half) do not reach it.
GENOME_CELL_SHARE = 0.8
_PREFIXED_RE = r"^([^_]+)_+(.+)$"


def reference_prefixes(names: Sequence[str] | pd.Index) -> dict[str, int]:
    """The reference (genome) prefixes of gene names written by a Cell Ranger multi-genome
    reference (``GRCh38_STAT1``, ``mm10_Stat1``, ``GRCh38-2020-A_STAT1``, padded
    ``GRCh38______STAT1``).

    Parameters
    ----------
    names
        Gene names (``var_names``, or a symbol column).

    Returns
    -------
    dict
        Reference name → number of genes carrying it, when (almost) every name
        (:data:`GENOME_PREFIX_SHARE`) carries one: one entry for a single reference, two or more for
        a barnyard (e.g. human and mouse); ``{}`` otherwise (also for more than
        :data:`MAX_REFERENCES` prefixes: those are not references). A reference carried by fewer
        than 1 % of the names is not counted; Ensembl IDs and chromosome names are no references.
    """
    names = pd.Index(names).astype(str)
    if len(names) == 0:
        return {}
    prefix = names.str.extract(_PREFIXED_RE)[0]
    counts = prefix[prefix.notna()].value_counts()
    refs = {str(p): int(n) for p, n in counts.items()
            if _GENOME_RE.fullmatch(str(p)) and n >= 0.01 * len(names)}
    enough = sum(refs.values()) >= GENOME_PREFIX_SHARE * len(names)
    return refs if enough and len(refs) <= MAX_REFERENCES else {}


def _strip_references(names: Sequence[str] | pd.Index, refs: Mapping[str, int]) -> pd.Index:
    """``names`` without the reference prefixes ``refs`` (names without one are kept)."""
    names = pd.Index(names).astype(str)
    parts = names.str.extract(_PREFIXED_RE)
    has = parts[0].isin(list(refs)).to_numpy()
    return pd.Index(np.where(has, parts[1].fillna("").to_numpy(dtype=object), names.to_numpy(dtype=object)),
                    dtype=str)


def _genome_error(refs: Mapping[str, int], counts: Mapping[str, float] | None = None) -> str:
    """One line: the genes come from several references; how to keep one."""
    def share(r: str) -> str:
        return f", {100 * counts[r] / max(sum(counts.values()), 1):.0f} % of counts" if counts else ""
    named = ", ".join(f"{r} ({n} genes{share(r)})" for r, n in refs.items())
    first = next(iter(refs))
    return (f"The genes come from {len(refs)} references ({named}; a multi-genome Cell Ranger "
            "reference, e.g. a human-mouse barnyard), and scagents analyses one species: load the "
            "file with scagents.data.load (or `python -m scagents run`), which keeps the reference "
            "with the most counts and its cells, or keep one yourself, e.g. "
            f"adata = adata[:, adata.var_names.str.startswith('{first}_')].copy().")


def one_genome(adata: ad.AnnData, share: float = GENOME_CELL_SHARE) -> tuple[ad.AnnData, dict | None]:
    """Keep one reference of data aligned to a multi-genome (barnyard) reference.

    The reference holding the most counts is kept: its genes, and the cells that draw at least
    ``share`` of their counts from it (cells of the other species and mixed-species multiplets are
    left out). The prefixes stay on the names (:func:`standardize` removes them).

    Parameters
    ----------
    adata
        In-memory AnnData; not modified.
    share
        Share of a cell's counts that must come from the kept reference.

    Returns
    -------
    adata, info
        ``adata`` itself and ``None`` when its genes carry fewer than two references; else a new
        AnnData (one reference) and ``{"kept", "references", "counts", "n_cells_kept",
        "n_cells_left_out"}``.

    Raises
    ------
    DataError
        No cell draws ``share`` of its counts from the kept reference.
    """
    refs = reference_prefixes(adata.var_names)
    if len(refs) < 2:
        return adata, None
    prefix = pd.Index(adata.var_names).astype(str).str.extract(_PREFIXED_RE)[0]
    onehot = np.stack([(prefix == r).to_numpy(float) for r in refs], axis=1)
    # counts per cell and reference: cells x references, chunk by chunk (no dense copy of X)
    per_cell = np.zeros((adata.n_obs, len(refs)))
    for start, chunk in _row_chunks(adata.X, adata.n_obs):
        block = chunk @ onehot if sp.issparse(chunk) else np.asarray(chunk, dtype=float) @ onehot
        per_cell[start:start + block.shape[0]] = np.asarray(block)
    totals = per_cell.sum(axis=0)
    counts = {r: float(t) for r, t in zip(refs, totals, strict=True)}
    k = int(np.argmax(totals))
    kept = list(refs)[k]
    cell_total = per_cell.sum(axis=1)
    cells = (cell_total > 0) & (per_cell[:, k] >= share * cell_total)
    if not cells.any():
        raise DataError(_genome_error(refs, counts) + f" (No cell draws {100 * share:.0f} % of its "
                                                       f"counts from {kept}.)")
    out = adata[cells][:, (prefix == kept).to_numpy()].copy()
    return out, {"kept": kept, "references": dict(refs), "counts": counts,
                 "n_cells_kept": int(cells.sum()), "n_cells_left_out": int((~cells).sum()),
                 "share": float(share)}


def genome_line(info: Mapping) -> str:
    """One line saying which reference :func:`one_genome` kept and what was left out."""
    total = max(sum(info["counts"].values()), 1.0)
    others = [r for r in info["references"] if r != info["kept"]]
    return (f"the genes come from {len(info['references'])} references ("
            + ", ".join(f"{r}: {info['references'][r]} genes, {100 * info['counts'][r] / total:.0f} % "
                        "of counts" for r in info["references"])
            + f"); kept {info['kept']} (most counts) and the {info['n_cells_kept']} cells drawing "
            f"≥ {100 * info['share']:.0f} % of their counts from it; {info['n_cells_left_out']} "
            f"cells ({', '.join(others)} cells and mixed-species multiplets) left out. To analyse "
            f"{others[0]} instead, subset its genes and cells before the run")


def _symbol_names(adata: ad.AnnData) -> tuple[str, pd.Index, int] | None:
    """Gene symbols to use as ``var_names`` when these are Ensembl IDs (``ENSG…``).

    The first of :data:`SYMBOL_COLUMNS` in ``var`` that holds symbols (most values not IDs) gives
    the names; a gene without a symbol keeps its ID, and a symbol shared by several IDs is made
    unique the AnnData way (``TBCE``, ``TBCE-1``). ``None`` when the names are not mostly IDs or no
    symbol column exists; else the column, the names and how many symbols were duplicates.
    """
    ids = adata.var_names.astype(str)
    if refs := reference_prefixes(ids):  # GRCh38_ENSG00000115415
        ids = _strip_references(ids, refs)
    if len(ids) == 0 or np.mean([bool(_ENSEMBL_RE.match(i)) for i in ids]) < 0.9:
        return None
    lower = {str(c).lower(): c for c in adata.var.columns}
    for name in SYMBOL_COLUMNS:
        col = lower.get(name)
        if col is None:
            continue
        values = adata.var[col]
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)
                or isinstance(values.dtype, pd.CategoricalDtype)):
            continue
        text = values.astype(object).where(values.notna(), "").astype(str).str.strip()
        if refs := reference_prefixes(text[text != ""]):  # GRCh38_STAT1
            text = pd.Series(_strip_references(text, refs), index=text.index)
        usable = (text != "") & ~text.str.match(_ENSEMBL_RE.pattern)
        if usable.mean() < 0.5:
            continue
        names = pd.Index(np.where(usable, text, ids), dtype=str)
        return str(col), ad.utils.make_index_unique(names), int(names.duplicated().sum())
    return None


def counts_as_x(adata: ad.AnnData) -> str | None:
    """Make the counts ``X`` when ``X`` holds something else (log-normalised or scaled values) and
    ``layers["counts"]`` or ``.raw`` holds counts (whole, non-negative numbers).

    The counts of ``layers["counts"]``, else those of ``.raw`` for ``X``'s genes, replace ``X``
    (the layer, or ``.raw``, is dropped: it is ``X`` now). ``X``'s own values are dropped: every
    analysis normalises the counts itself. Modifies ``adata`` in place; call it on a copy.

    Returns
    -------
    ``"layers['counts']"`` or ``".raw"`` when counts were moved into ``X``, else ``None`` (``X``
    holds counts already, or no counts are found; backed data are left alone).
    """
    if adata.isbacked or adata.n_obs == 0 or adata.n_vars == 0:
        return None
    candidates = []
    if "counts" in adata.layers:
        candidates.append(("layers['counts']", lambda: adata.layers["counts"]))
    raw = adata.raw
    if raw is not None and adata.var_names.isin(raw.var_names).all():
        candidates.append((".raw", lambda: raw[:, adata.var_names].X))
    if not candidates or scan_values(adata.X).is_counts:
        return None
    for name, get in candidates:
        X = get()
        s = scan_values(X, adata.n_obs)
        if not s.is_counts or s.n_nonzero == 0:
            continue
        adata.X = X
        if name == ".raw":
            adata.raw = None
        else:
            del adata.layers["counts"]
        return name
    return None


def gene_names(adata: ad.AnnData) -> pd.Index:
    """The gene names :func:`standardize` gives ``adata``'s genes, in ``var`` order: the symbols
    when ``var_names`` are Ensembl IDs with a symbol column (:data:`SYMBOL_COLUMNS`), without the
    reference prefix of a Cell Ranger multi-genome reference (``GRCh38_STAT1`` → ``STAT1``; with
    several references each gene loses its own, :func:`reference_prefixes`), else ``var_names``
    themselves. Maps a result indexed by those names back onto the user's genes."""
    names = _run_names(adata)
    return adata.var_names.astype(str) if names is None else names[1]


def _run_names(adata: ad.AnnData) -> tuple[dict, pd.Index] | None:
    """The gene names :func:`standardize` gives when they are not ``var_names`` as they are: the
    symbols of Ensembl IDs, and names without a reference prefix (``GRCh38_STAT1`` → ``STAT1``;
    with several references each loses its own). ``None`` when ``var_names`` stay; else what to
    record (``gene_names_from``, ``n_duplicate_symbols``, ``reference_prefix``) and the names."""
    symbols = _symbol_names(adata)
    refs = reference_prefixes(adata.var_names)
    if symbols is not None:
        column, names, n_dup = symbols
        how = {"gene_names_from": f"var[{column!r}]", "n_duplicate_symbols": n_dup}
        return ({**how, "reference_prefix": ", ".join(refs)} if refs else how), names
    if not refs:
        return None
    names = _strip_references(adata.var_names, refs)
    return ({"reference_prefix": ", ".join(refs), "n_duplicate_symbols": int(names.duplicated().sum())},
            ad.utils.make_index_unique(names))


def standardize(
    adata: ad.AnnData | md.MuData,
    *,
    perturbation_key: str | None = None,
    control_labels: str | Sequence[str] | None = None,
    perturbation_type: str | Mapping[str, str] | None = None,
    check_values: bool = True,
    copy: bool = False,
) -> ad.AnnData | md.MuData | None:
    """Validate single-cell perturbation data and write the standard obs columns.

    Checks, in order: cells and genes present, unique cell and gene names, no NaN or infinite values,
    no negative counts; then finds the perturbation column and the control cells. Nothing is written
    unless every check passes. The original perturbation column is kept unchanged (when it has one
    of the standard names other than ``perturbation``, it is first copied to ``<name>_original``).

    Parameters
    ----------
    adata
        AnnData, or MuData (its RNA modality, see :func:`~scagents.data.io.rna_modality`, is
        standardised and the standard columns are mirrored to ``mdata.obs``).
    perturbation_key
        obs column with the perturbation labels; ``None`` auto-detects one of
        :data:`PERTURBATION_KEYS` (``perturbation``, ``gene``, ``target_gene``, ``guide_identity``,
        ``condition``, ``stim``, ...).
    control_labels
        Label(s) of the control cells; ``None`` recognises the usual ones case-insensitively
        (``non-targeting``, ``control``, ``ctrl``, ``NT``, ``NTC``, ``safe-targeting``,
        ``negative control``, ``unperturbed``, ...).
    perturbation_type
        ``"knockout"``, ``"knockdown"``, ``"overexpression"`` or ``"stimulation"`` for all
        non-control cells, or a mapping label → type (unlisted labels get the inferred type).
        ``None`` infers it: ``stimulation`` when the column is ``stim``/``stimulation``/``treatment``
        (or ``condition`` whose labels are not measured genes), an existing valid
        ``obs["perturbation_type"]`` is kept, else ``knockout``.
    check_values
        Check the expression values (NaN, inf, negative counts, all zeros); ``False`` only for a
        caller that checked them already (the backed path standardises a label-only shell).
    copy
        Return a standardised copy instead of modifying ``adata`` in place.

    Returns
    -------
    The standardised copy if ``copy=True``, else ``None``. Writes

    - ``obs["perturbation"]`` (categorical): the label as given;
    - ``obs["target_genes"]`` (categorical): targets joined by ``+``, ``""`` for controls;
    - ``obs["perturbation_type"]`` (categorical): knockout/knockdown/overexpression/stimulation/control,
      or ``excluded`` for cells without a usable perturbation (:func:`is_excluded_label`:
      unassigned, multiplets, doublets, ``*_or_multi``; empty ``target_genes``, not controls);
    - ``obs["is_control"]`` (bool);
    - ``var_names`` without a Cell Ranger reference prefix (``GRCh38_STAT1`` → ``STAT1``,
      :func:`reference_prefixes`; recorded as ``reference_prefix``; genes of two or more
      references are refused: :func:`one_genome`, which :func:`~scagents.data.load` applies,
      keeps one);
    - ``var_names``: when they are Ensembl IDs and a var column holds the symbols
      (:data:`SYMBOL_COLUMNS`: ``gene_symbols``, ``feature_name``, ``gene_name``, …), the symbols
      (made unique; a gene without one keeps its ID), the IDs kept in ``var["gene_ids"]``
      (:func:`gene_names`);
    - ``uns["scagents"]["data"]``: ``is_counts``, ``perturbation_key``, ``control_labels`` (the
      control labels found), ``n_control``, ``n_perturbations``, ``perturbation_type_reason``,
      ``excluded_labels`` and ``n_excluded``; with symbols taken from ``var``,
      ``gene_names_from`` and ``n_duplicate_symbols``.

    Perturbation labels are read as other tools write them: ``+``, ``,``, ``;``, ``|`` and ``&``
    join combinations (``_`` too when every piece is a measured gene or another label's target);
    a label differing from a measured gene only in case names that gene; guide-level labels
    (``STAT1g2``, ``STAT1_g1``, ``STAT1_2``) name their target (see :func:`split_targets`).

    Raises
    ------
    DataError
        Empty data, duplicate names, NaN/inf values, negative counts, an all-zero matrix, genes
        of several references (a barnyard: use :func:`one_genome` or :func:`~scagents.data.load`).
    PerturbationError
        Missing perturbation column, missing labels, no control cells, unknown type.
    """
    if isinstance(adata, md.MuData):
        mdata = adata.copy() if copy else adata
        name, rna = rna_modality(mdata)
        try:
            standardize(rna, perturbation_key=perturbation_key, control_labels=control_labels,
                        perturbation_type=perturbation_type, check_values=check_values,
                        copy=False)
        except DataError as exc:
            raise type(exc)(f"In MuData modality {name!r}: {exc}") from exc
        if not mdata.var_names[mdata.varmap[name].ravel() > 0].equals(rna.var_names):
            mdata.update()  # the modality's Ensembl IDs became gene symbols
        mirror_obs(mdata, name)
        return mdata if copy else None
    if not isinstance(adata, ad.AnnData):
        raise TypeError(f"standardize() takes an AnnData or MuData, got {type(adata).__name__}.")

    if isinstance(control_labels, str):
        control_labels = [control_labels]

    # --- checks (nothing is written before all pass) ---
    _check_names(adata)
    summary = (_check_values(adata, adata.X, "X", expression=True) if check_values
               else ValueSummary())
    if check_values and "counts" in adata.layers:
        _check_values(adata, adata.layers["counts"], "layers['counts']")

    key = find_perturbation_key(adata, perturbation_key)
    raw = adata.obs[key]
    missing = raw.isna()
    if missing.all():
        raise PerturbationError(
            f"obs[{key!r}] has no labels (all {adata.n_obs} values are missing). Pass "
            f"perturbation_key= naming the column with the perturbation labels."
        )
    if missing.any():
        raise PerturbationError(
            f"{int(missing.sum())} of {adata.n_obs} cells have no label in obs[{key!r}]. Fill them "
            "(e.g. with the control label) or drop those cells before standardising."
        )
    labels = raw.astype(str).str.strip()
    uniq = list(pd.unique(labels))
    if len(refs := reference_prefixes(adata.var_names)) > 1:
        raise DataError(_genome_error(refs))
    renamed = _run_names(adata)
    genes = set(map(str, adata.var_names if renamed is None else renamed[1]))
    excluded = [lab for lab in uniq if is_excluded_label(lab, control_labels)]
    resolve = _Targets(genes, _known_targets(
        [lab for lab in uniq if lab not in excluded and not is_control_label(lab, control_labels)]))
    targets = {lab: () if lab in excluded else _split(lab, resolve, control_labels) for lab in uniq}
    controls = [lab for lab in uniq if not targets[lab] and lab not in excluded]
    if not controls:
        counts = labels.value_counts()
        seen = ", ".join(f"{lab!r} ({n})" for lab, n in counts.head(20).items())
        more = f" and {len(counts) - 20} more" if len(counts) > 20 else ""
        how = (f"None of control_labels={list(control_labels)} occurs" if control_labels is not None
               else "No control label (non-targeting, control, ctrl, NT, safe-targeting, ...) was recognised")
        raise PerturbationError(
            f"{how} in obs[{key!r}]. Labels seen: {seen}{more}. Pass control_labels=[...] naming "
            "the label(s) of the control cells (CLI: --control LABEL)."
        )
    perturbed = [lab for lab in uniq if targets[lab]]

    default, reason = _infer_type(adata, key, perturbed, targets, genes)
    per_cell_types = None
    if isinstance(perturbation_type, str):
        default, reason = _validate_type(perturbation_type), "given by the user"
        type_of = dict.fromkeys(perturbed, default)
    elif isinstance(perturbation_type, Mapping):
        for v in perturbation_type.values():
            _validate_type(v)
        type_of = {lab: perturbation_type.get(lab, default) for lab in perturbed}
        reason = "given by the user per label"
    else:
        type_of = dict.fromkeys(perturbed, default)
        existing = adata.obs.get("perturbation_type")
        if existing is not None and key != "perturbation_type":
            ex = existing.astype(str)
            if (ex[~labels.isin(controls) & ~labels.isin(excluded)].isin(KINDS).all()
                    and default != "stimulation"):
                per_cell_types = ex
                reason = "kept from obs['perturbation_type']"

    # --- write ---
    if copy:
        adata = adata.to_memory() if adata.isbacked else adata.copy()
    is_control = labels.isin(controls).to_numpy()
    if key in STANDARD_COLUMNS[1:]:
        adata.obs[f"{key}_original"] = raw
        key = f"{key}_original"
    target_str = labels.map({lab: "+".join(t) for lab, t in targets.items()})
    if per_cell_types is not None:
        ptype = per_cell_types.where(~is_control, "control")
    else:
        ptype = labels.map(type_of).where(~is_control, "control")
    is_excluded = labels.isin(excluded).to_numpy()
    ptype = ptype.where(~is_excluded, "excluded")
    adata.obs["perturbation"] = pd.Categorical(labels.to_numpy(), categories=uniq)
    adata.obs["target_genes"] = pd.Categorical(target_str.to_numpy())
    present = [k for k in (*KINDS, "control", "excluded") if (ptype == k).any()]
    adata.obs["perturbation_type"] = pd.Categorical(ptype.to_numpy(), categories=present)
    adata.obs["is_control"] = is_control
    rec = _recorded(adata)
    if renamed is not None:
        how, names = renamed
        if "gene_ids" not in adata.var:
            adata.var["gene_ids"] = adata.var_names.astype(str)
        adata.var_names = names
        rec.update(how)
    rec.update(
        is_counts=bool(summary.is_counts),
        perturbation_key=str(key),
        control_labels=[str(c) for c in controls],
        n_control=int(is_control.sum()),
        n_perturbations=len(set(target_str[~is_control & ~is_excluded])),
        perturbation_type_reason=reason,
        excluded_labels=[str(c) for c in excluded],
        n_excluded=int(is_excluded.sum()),
    )
    scag = adata.uns.get("scagents")
    adata.uns["scagents"] = {**(dict(scag) if isinstance(scag, Mapping) else {}), "data": rec}
    return adata if copy else None


def combinations_with(obs: pd.DataFrame, targets: Sequence[str]) -> dict[str, int]:
    """The perturbations that hold every one of ``targets`` and more genes: the combinations a
    goal's cells must not be mixed with (``STAT1+IRF1``, ``STAT1_IRF1``, ``STAT1|IRF1`` for a
    STAT1 goal).

    Parameters
    ----------
    obs
        Standardised ``obs`` (:func:`standardize`: ``perturbation``, ``target_genes``,
        ``is_control``).
    targets
        The goal's target genes.

    Returns
    -------
    dict
        ``obs["perturbation"]`` label → number of cells, in label order; ``{}`` when none.
    """
    goal = set(map(str, targets))
    if not goal:
        return {}
    ctrl = obs["is_control"].fillna(False).to_numpy(bool)
    genes = obs["target_genes"].astype(str).to_numpy()
    labels = obs["perturbation"].astype(str).to_numpy()
    first = pd.DataFrame({"label": labels[~ctrl], "genes": genes[~ctrl]}).drop_duplicates("label")
    chosen = [lab for lab, t in zip(first["label"], first["genes"], strict=True)
              if goal < set(filter(None, t.split("+")))]
    counts = pd.Series(labels[~ctrl]).value_counts()
    return {str(lab): int(counts[lab]) for lab in sorted(chosen)}


def mirror_obs(mdata: md.MuData, modality: str, columns: Sequence[str] = STANDARD_COLUMNS) -> None:
    """Copy standard obs columns (and ``uns["scagents"]["data"]``) from a modality to ``mdata.obs``.

    Cells absent from the modality get missing values (``is_control`` becomes a nullable boolean).
    """
    mod = mdata.mod[modality]
    for col in columns:
        if col not in mod.obs:
            continue
        s = mod.obs[col]
        if mdata.obs_names.equals(mod.obs_names):
            mdata.obs[col] = s.to_numpy() if not isinstance(s.dtype, pd.CategoricalDtype) else s.values
        else:
            s = s.astype("boolean") if col == "is_control" else s
            mdata.obs[col] = s.reindex(mdata.obs_names).values
    rec = _recorded(mod)
    if rec:
        scag = mdata.uns.get("scagents")
        mdata.uns["scagents"] = {**(dict(scag) if isinstance(scag, Mapping) else {}),
                                 "data": {**rec, "modality": modality}}


# ----------------------------------------------------------------------------------------------
# normalisation
# ----------------------------------------------------------------------------------------------


def _dense_or_memory(X):
    """A backed matrix as an in-memory one; in-memory matrices are returned unchanged."""
    if isinstance(X, np.ndarray) or sp.issparse(X):
        return X
    return X[:]


def lognormalize(
    adata: ad.AnnData | md.MuData,
    *,
    target_sum: float = 1e4,
    layer: str = "lognorm",
    copy: bool = False,
) -> ad.AnnData | md.MuData | None:
    """Write ``log1p`` of library-size-normalised counts into a layer.

    When ``X`` holds counts (``uns["scagents"]["data"]["is_counts"]``, or detected), each cell is
    scaled to ``target_sum`` total counts and ``log1p`` is applied (sparse stays sparse). When ``X``
    already holds normalised values it is copied unchanged.

    Parameters
    ----------
    adata
        AnnData, or MuData (its RNA modality is used).
    target_sum
        Total counts per cell after scaling (cells with 0 counts stay 0).
    layer
        Layer to write; an existing layer of that name is replaced.
    copy
        Return a modified copy instead of writing in place.

    Returns
    -------
    The copy if ``copy=True``, else ``None``. Writes ``layers[layer]`` (float32) and
    ``uns["scagents"]["data"]["lognorm"] = {"layer", "target_sum", "from_counts"}``.
    """
    if isinstance(adata, md.MuData):
        mdata = adata.copy() if copy else adata
        _, rna = rna_modality(mdata)
        lognormalize(rna, target_sum=target_sum, layer=layer, copy=False)
        return mdata if copy else None
    if not isinstance(adata, ad.AnnData):
        raise TypeError(f"lognormalize() takes an AnnData or MuData, got {type(adata).__name__}.")
    if target_sum <= 0:
        raise ValueError(f"target_sum must be positive, got {target_sum}.")
    if copy:
        adata = adata.to_memory() if adata.isbacked else adata.copy()
    X = _dense_or_memory(adata.X)
    rec = _recorded(adata)
    is_counts = rec.get("is_counts")
    if is_counts is None:
        is_counts = _check_values(adata, X, "X").is_counts
    if is_counts:
        totals = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
        scale = np.divide(float(target_sum), totals, out=np.zeros_like(totals), where=totals > 0)
        if sp.issparse(X):
            out = sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ sp.csr_matrix(X, dtype=np.float32))
            np.log1p(out.data, out=out.data)
        else:
            out = np.log1p(np.asarray(X, dtype=np.float32) * scale.astype(np.float32)[:, None])
    else:
        out = X.astype(np.float32, copy=True)
    adata.layers[layer] = out
    rec.update(is_counts=bool(is_counts),
               lognorm={"layer": layer, "target_sum": float(target_sum), "from_counts": bool(is_counts)})
    scag = adata.uns.get("scagents")
    adata.uns["scagents"] = {**(dict(scag) if isinstance(scag, Mapping) else {}), "data": rec}
    return adata if copy else None
