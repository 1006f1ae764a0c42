"""Durable experiment ledger (SQLite, standard library) and the campaign functions built on it.

Tables: ``campaigns`` (name, goal, objective, kind), ``candidates`` (gene + feature vector),
``priors`` (the round-1 expression prior of every candidate and where it came from), ``settings``,
``rounds``, ``proposals`` (round, gene, rank, score, uncertainty, rationale; a gene is proposed at
most once per campaign), ``designers`` (the designer configuration of
:func:`~scagents.campaign.acquisition.designer_config` as JSON and its state after the last round,
e.g. the policy weights as a ``torch.save``-d dict of tensors read back with ``weights_only=True``;
added by ``CREATE TABLE IF NOT EXISTS``, so older ledgers gain it at their next open), ``ingests`` (sha256 of every ingested file),
``ingest_scores`` (per ingested file: its format, gene and score columns, the score's sign and the
rule line, and the rows ignored; added the same way), ``ingest_library`` (per ingested file that holds
a library, i.e. more genes than the proposals it measures: its number of genes, median and robust SD
of the score and its hits; see :mod:`scagents.campaign.progress`; added the same way) and
``measurements`` (unique per campaign, gene and round).

Durability: every round (``propose_round``) and every ingest is one ``BEGIN IMMEDIATE …
COMMIT`` transaction, so a process killed at any point leaves either all of it or none of it
(SQLite rolls a hot journal back at the next open). Re-ingesting a file with the same content is a
no-op. A malformed results file raises :class:`IngestError` and changes nothing. Results files are
read as MAGeCK (RRA, MLE), BAGEL2 and generic tables write them (see :func:`ingest`).

Test hook: the environment variable ``SCAGENTS_TEST_PAUSE_IN_TXN`` (seconds) makes
``propose_round`` and ``ingest`` sleep in the middle of their open transaction, after part of the
rows are written, so tests can kill them there. Do not set it otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scagents.campaign.acquisition import (
    DesignerError,
    build_designer,
    designer_config,
    hit_likeness,
)
from scagents.campaign.progress import (
    HIT_THRESHOLD,
    LIBRARY_MIN_GENES,
    LibraryStats,
    library_stats,
    reference_line,
    round_lines,
    round_progress,
    scale_line,
    score_measurements,
)
from scagents.errors import DataError, DataFileError, GeneNotFoundError, ScagentsError

__all__ = ["CampaignError", "IngestError", "IngestSummary", "MAX_RESULTS_BYTES", "check_campaign_name",
           "create_campaign", "propose_round", "ingest", "history", "campaign_info", "campaign_progress",
           "plot_campaign", "HIT_THRESHOLD", "FIRST_ROUND",
           "list_campaigns", "parse_objective", "read_feature_file", "OBJECTIVES", "objective_name"]

#: The number users read for a campaign's first round (``next``, ``ingest``, ``campaign``, its plot,
#: the tools, :func:`propose_round` and :func:`history`). The ledger's tables store rounds from 0
#: (unchanged, so existing ledgers need no migration); every value shown is the stored one + this.
FIRST_ROUND = 1

#: Objectives a campaign can have (``--objective``); ``"either"`` is stored as ``"abs"``.
OBJECTIVES = ("increase", "decrease", "either")


def objective_name(objective: str) -> str:
    """The user-facing name of a stored objective (``"abs"`` → ``"either"``)."""
    return "either" if objective == "abs" else objective


def _stored_objective(objective: str | None, goal: str) -> str:
    """The objective to store: the one given (``increase|decrease|either``) or the goal's."""
    if objective is None:
        return parse_objective(goal)
    if objective not in OBJECTIVES and objective != "abs":
        raise CampaignError(f"Unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}.")
    return "abs" if objective == "either" else objective

KINDS = ("knockout", "knockdown", "overexpression")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS campaigns (
    id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, goal TEXT NOT NULL, objective TEXT NOT NULL,
    kind TEXT NOT NULL, feature_names TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS candidates (
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id), gene TEXT NOT NULL, features BLOB NOT NULL,
    PRIMARY KEY (campaign_id, gene));
CREATE TABLE IF NOT EXISTS priors (
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id), gene TEXT NOT NULL, value REAL NOT NULL,
    source TEXT NOT NULL, PRIMARY KEY (campaign_id, gene));
CREATE TABLE IF NOT EXISTS settings (
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id), key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (campaign_id, key));
CREATE TABLE IF NOT EXISTS rounds (
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id), round INTEGER NOT NULL, designer TEXT NOT NULL,
    seed INTEGER NOT NULL, batch INTEGER NOT NULL, created REAL NOT NULL, PRIMARY KEY (campaign_id, round));
CREATE TABLE IF NOT EXISTS proposals (
    campaign_id INTEGER NOT NULL, round INTEGER NOT NULL, gene TEXT NOT NULL, rank INTEGER NOT NULL,
    score REAL, uncertainty REAL, rationale TEXT, PRIMARY KEY (campaign_id, gene),
    FOREIGN KEY (campaign_id, round) REFERENCES rounds(campaign_id, round));
CREATE TABLE IF NOT EXISTS ingests (
    campaign_id INTEGER NOT NULL, sha256 TEXT NOT NULL, path TEXT NOT NULL, n_rows INTEGER NOT NULL,
    created REAL NOT NULL, PRIMARY KEY (campaign_id, sha256));
CREATE TABLE IF NOT EXISTS ingest_scores (
    campaign_id INTEGER NOT NULL, sha256 TEXT NOT NULL, format TEXT NOT NULL, gene_column TEXT NOT NULL,
    score_column TEXT NOT NULL, sign REAL NOT NULL, rule TEXT NOT NULL, n_ignored INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, sha256));
CREATE TABLE IF NOT EXISTS ingest_library (
    campaign_id INTEGER NOT NULL, sha256 TEXT NOT NULL, n_genes INTEGER NOT NULL, median REAL NOT NULL,
    scale REAL NOT NULL, n_hits INTEGER NOT NULL, n_candidates INTEGER NOT NULL, n_candidate_hits INTEGER NOT NULL,
    objective TEXT NOT NULL, threshold REAL NOT NULL, PRIMARY KEY (campaign_id, sha256));
CREATE TABLE IF NOT EXISTS designers (
    campaign_id INTEGER PRIMARY KEY REFERENCES campaigns(id), config TEXT NOT NULL, state BLOB,
    round INTEGER NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS measurements (
    campaign_id INTEGER NOT NULL, gene TEXT NOT NULL, round INTEGER NOT NULL, value REAL NOT NULL,
    ingest_sha TEXT NOT NULL, PRIMARY KEY (campaign_id, gene, round));
"""


class CampaignError(ScagentsError, ValueError):
    """A campaign is unknown, already exists, or its options are invalid."""


class IngestError(DataError):
    """A results file cannot be ingested (malformed, unknown or never-proposed genes, conflicts)."""


@dataclass
class IngestSummary:
    """What :func:`ingest` did.

    Attributes
    ----------
    campaign, path, sha256
        The campaign, the file and its content hash.
    n_new
        Measurements added.
    n_already
        Rows identical to measurements already stored (skipped).
    duplicate_file
        ``True`` when this exact file content had been ingested before and holds no gene proposed
        since (nothing added). The same file ingested again after a later round (a whole-library
        summary) adds the rows of the genes proposed since.
    rounds
        Rounds the new measurements belong to (counted from :data:`FIRST_ROUND`).
    score_rule
        The one line saying which column is the score and what it means (e.g. ``"score = MAGeCK
        RRA neg|lfc (gene-level log2 fold change)"``); for a duplicate file, the rule it was
        ingested with (empty for files ingested before rules were stored).
    source_format
        ``"MAGeCK RRA"``, ``"MAGeCK MLE"``, ``"BAGEL2 BF"`` or ``"table"``.
    n_unproposed, n_unknown
        Rows ignored: candidates not proposed (yet), and genes that are not candidates.
    unknown
        A few of the genes that are not candidates.
    n_unmeasured
        Proposed genes of the campaign still without a measurement after this ingest.
    unmeasured
        A few of them (proposal order), with their round: ``"GENE (round R)"``.
    note
        A line when earlier ingests of the campaign used another score rule or the same file was
        ingested before, else ``None``.
    library
        One line on the file's library: its genes, median and robust SD (the scale of the values
        from this file) and hits; or why its values are on the measured proposals' scale.
    """

    campaign: str
    path: str
    sha256: str
    n_new: int
    n_already: int
    duplicate_file: bool
    rounds: list[int]
    score_rule: str = ""
    source_format: str = ""
    n_unproposed: int = 0
    n_unknown: int = 0
    unknown: list[str] = field(default_factory=list)
    n_unmeasured: int = 0
    note: str | None = None
    unmeasured: list[str] = field(default_factory=list)
    library: str = ""


def _pause(where: str) -> None:
    val = os.environ.get("SCAGENTS_TEST_PAUSE_IN_TXN")
    if val:
        marker = os.environ.get("SCAGENTS_TEST_PAUSE_MARKER")
        if marker:
            Path(marker).write_text(where)
        time.sleep(float(val))


def _connect(db_path: str | Path, campaign: str | None = None) -> sqlite3.Connection:
    """Open (and, unless ``campaign`` is given, create) the ledger at ``db_path``.

    Readers pass the ``campaign`` they look for: a missing (or empty) ledger is then a :class:`CampaignError`
    naming it, and no file is created. Any path that is not a ledger (a folder, a missing folder,
    a file that is not SQLite) is a :class:`CampaignError` too, and the file is left untouched.
    """
    path = Path(db_path)
    if path.is_dir():
        raise CampaignError(f"The ledger path {path} is a folder; point --db at a ledger file "
                            "(e.g. scagents_campaigns.sqlite).")
    if not path.parent.is_dir():
        raise CampaignError(f"The folder of the ledger {path} does not exist; create it or point --db elsewhere.")
    if campaign is not None and (not path.exists() or path.stat().st_size == 0):
        raise CampaignError(f"No campaign named {campaign!r}: there is no ledger at {path} yet. Create the "
                            "campaign first: give goal= and candidates= (CLI: `scagents next --campaign NAME "
                            "--goal ... --candidates FILE`), or point --db at the existing ledger.")
    con = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
    try:
        con.execute("PRAGMA foreign_keys = ON")
        con.execute("PRAGMA synchronous = FULL")
        con.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # fails on a non-SQLite file
        try:
            con.executescript(_SCHEMA)
        except sqlite3.OperationalError as exc:  # an older read-only ledger: read it as it is
            if _read_only(con, exc) is None:
                raise
    except sqlite3.DatabaseError as exc:
        con.close()
        raise CampaignError(f"{path} is not a usable campaign ledger ({exc}); point --db at the ledger "
                            "file, or at a new path to start one.") from exc
    return con


def _read_only(con: sqlite3.Connection, exc: sqlite3.OperationalError) -> CampaignError | None:
    """The error to raise when ``exc`` says the ledger cannot be written (a read-only file or folder)."""
    if "readonly" not in str(exc) and "read-only" not in str(exc):
        return None
    path = con.execute("PRAGMA database_list").fetchone()[2]
    return CampaignError(f"The ledger {path} is read-only ({exc}); nothing was written. Reading works "
                         "(`scagents campaign`, `campaigns`); to propose or ingest, make the file and its folder "
                         "writable or copy the ledger elsewhere and point --db at the copy.")


@contextmanager
def _transaction(con: sqlite3.Connection):
    try:
        con.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise (_read_only(con, exc) or exc) from None
    try:
        yield con
    except sqlite3.OperationalError as exc:
        con.execute("ROLLBACK")
        raise (_read_only(con, exc) or exc) from None
    except BaseException:
        con.execute("ROLLBACK")
        raise
    else:
        con.execute("COMMIT")


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_campaign_name(name: str) -> str:
    """Return ``name`` if it can name a campaign: letters, digits, ``-``, ``_`` and ``.``, starting
    with a letter or digit, at most 100 characters (no path separators: names become file names).

    Raises
    ------
    CampaignError
        Otherwise.
    """
    if not _NAME.fullmatch(str(name)):
        raise CampaignError(f"Campaign name {str(name)[:120]!r} is not allowed: use letters, digits, '-', '_' "
                            "and '.', starting with a letter or digit (at most 100 characters, no '/').")
    return name


def parse_objective(goal: str) -> str:
    """Default objective of a goal text: ``"increase"``, ``"decrease"`` or ``"abs"`` (largest change
    either way / regulators). Only a default: ``next --objective`` states it explicitly."""
    g = goal.lower()
    if any(w in g for w in ("increase", "raise", "higher", "up-regulat", "upregulat", "boost")):
        return "increase"
    if any(w in g for w in ("decrease", "reduce", "lower", "down-regulat", "downregulat", "suppress")):
        return "decrease"
    return "abs"


def _campaign_row(con: sqlite3.Connection, name: str) -> tuple:
    row = con.execute("SELECT id, name, goal, objective, kind, feature_names FROM campaigns WHERE name = ?",
                      (name,)).fetchone()
    if row is None:
        known = [r[0] for r in con.execute("SELECT name FROM campaigns ORDER BY name")]
        raise CampaignError(f"No campaign named {name!r} in the ledger; known: {known or 'none'}. "
                            "Create it with create_campaign(...) or `scagents next --campaign NAME "
                            "--goal ... --candidates FILE`.")
    return row


def create_campaign(db_path: str | Path, name: str, *, goal: str, candidates: Sequence[str],
                    kind: str = "knockout", features: pd.DataFrame | str | Path | None = "auto",
                    prior: pd.Series | str | None = "auto", objective: str | None = None) -> dict:
    """Create a campaign in the ledger at ``db_path`` (the file is created if needed).

    Parameters
    ----------
    db_path
        SQLite file of the ledger.
    name
        Campaign name (unique in the ledger).
    goal
        What the campaign looks for, e.g. ``"find regulators of IFNG production"``; ``increase`` /
        ``decrease`` words make the objective signed, otherwise the largest change either way counts.
    candidates
        Gene symbols (or pairs written ``"A+B"``) that may be proposed.
    kind
        ``"knockout"``, ``"knockdown"`` or ``"overexpression"``.
    features
        Candidate features: a DataFrame (index = genes), a path to an ``.h5ad`` expression file
        (features from :func:`~scagents.campaign.features.gene_embedding`) or to a ``.csv``/``.tsv``
        table (first column = gene, other columns numeric), ``"auto"`` (the shared PBMC expression
        features when present) or ``None`` (no features: the model-based designers then behave like
        random). Pairs get the mean of their genes' features; unknown genes get zeros + a
        ``missing`` indicator.
    prior
        Round-1 prior per candidate (higher = propose first), stored in the ledger's ``priors``
        table so that every later process uses the same one. ``"auto"``: the expression prior of
        the features (:func:`~scagents.campaign.features.expression_prior`: mean standardised
        expression level, from the T-cell / ``*__mean`` columns, else a ``mean`` column) when
        they have expression-level columns; a Series (index = genes) gives it directly; ``None``
        stores none (round 1 is then random, and its rationale says why).
    objective
        ``"increase"``, ``"decrease"`` or ``"either"`` (largest change either way); default: from
        the goal's words (:func:`parse_objective`).

    Returns
    -------
    dict
        ``{"name", "goal", "objective", "kind", "n_candidates", "n_features", "prior",
        "without_features"}`` — ``prior`` is the stored prior's source, or ``None``;
        ``without_features`` the candidates without a row in the feature data (zero features, the
        ``missing`` column set; empty when no feature data was given).

    Raises
    ------
    CampaignError
        The name exists or is not allowed (:func:`check_campaign_name`), the candidate list is
        empty or has duplicates, or ``kind`` is unknown.
    """
    from scagents.campaign.features import align_features, pbmc_gene_features

    check_campaign_name(name)

    if kind not in KINDS:
        raise CampaignError(f"Unknown kind {kind!r}; use one of {', '.join(KINDS)}.")
    genes = [str(g).strip() for g in candidates]
    if not genes or any(not g for g in genes):
        raise CampaignError("The candidate list is empty or contains empty names; give gene symbols.")
    dup = pd.Index(genes)[pd.Index(genes).duplicated()].unique().tolist()
    if dup:
        raise CampaignError(f"Duplicate candidates {dup[:10]}; list each gene once.")
    spellings: dict[str, list[str]] = {}
    for g in genes:
        spellings.setdefault(g.upper(), []).append(g)
    cased = [" / ".join(v) for v in spellings.values() if len(v) > 1]
    if cased:  # one gene in two cases would be two candidates with the same features, measured twice
        raise CampaignError(f"Duplicate candidates in different cases: {', '.join(cased[:10])}; list each gene "
                            "once, in one spelling.")
    if not str(goal).strip():
        raise CampaignError("The goal is empty; say what the campaign looks for.")
    obj = _stored_objective(objective, goal)
    if isinstance(features, str) and features == "auto":
        try:
            feats = pbmc_gene_features()
        except DataFileError:
            feats = None
    elif isinstance(features, str | Path):
        feats = read_feature_file(features)
    else:
        feats = features
    if feats is None:
        feats = pd.DataFrame(index=pd.Index([], dtype=str))
    singles = sorted({p for g in genes for p in g.split("+")})
    F = align_features(feats, singles)
    pos = {g: i for i, g in enumerate(F.index)}
    V = F.to_numpy(np.float64)
    # one row per candidate; a pair "A+B" gets the mean of its genes' rows (vectorised: 18k genes in ms)
    M = np.asarray([V[pos[g]] if "+" not in g else V[[pos[p] for p in g.split("+")]].mean(0) for g in genes],
                   dtype=np.float64).reshape(len(genes), V.shape[1])
    pvals, psource = _candidate_prior(prior, F, genes, feats_given=len(feats.columns) > 0)
    con = _connect(db_path)
    try:
        with _transaction(con):
            if con.execute("SELECT 1 FROM campaigns WHERE name = ?", (name,)).fetchone():
                raise CampaignError(f"A campaign named {name!r} already exists in {db_path}; pick another name.")
            cur = con.execute(
                "INSERT INTO campaigns(name, goal, objective, kind, feature_names, created) VALUES (?,?,?,?,?,?)",
                (name, goal, obj, kind, json.dumps(list(F.columns)), time.time()))
            cid = cur.lastrowid
            con.executemany("INSERT INTO candidates(campaign_id, gene, features) VALUES (?,?,?)",
                            [(cid, g, M[i].tobytes()) for i, g in enumerate(genes)])
            if pvals is not None:
                _store_prior(con, cid, genes, pvals, psource)
            else:  # remember that this campaign has no prior (so `next` does not derive one)
                con.execute("INSERT INTO settings(campaign_id, key, value) VALUES (?, 'prior', 'none')", (cid,))
    finally:
        con.close()
    absent = [g for g in genes if any(F.at[p, "missing"] for p in g.split("+"))] if len(feats.columns) else []
    return {"name": name, "goal": goal, "objective": objective_name(obj), "kind": kind,
            "n_candidates": len(genes), "n_features": M.shape[1], "prior": psource, "without_features": absent}


def candidates_line(info: dict, source: str | None = None, header: str | None = None) -> str:
    """What a new campaign's candidates are: how many, the header skipped, those without features."""
    line = f"candidates: {info['n']} gene(s)" + (f" read from {source}" if source else "")
    if header is not None:
        line += f" (first line {header!r} taken as a header and skipped)"
    absent = info.get("without_features") or []
    if absent:
        eg = ", ".join(absent[:5]) + (", …" if len(absent) > 5 else "")
        line += (f"; {len(absent)} without a row in {info['features']} ({eg}): they have no expression features "
                 "(zeros, flagged 'missing')")
    return line + "."


def read_candidates_file(path: str | Path) -> tuple[list[str], str | None]:
    """The genes of a candidates file: one gene per line (or whitespace-separated), blank lines
    skipped, and a first line that is a column name (``gene``, ``symbol``, ``id``, … as in
    :data:`_GENE_COLS`) skipped as a header.

    Returns
    -------
    tuple[list[str], str | None]
        The genes in file order (duplicates kept: :func:`create_campaign` refuses them) and the
        header line skipped, if any.

    Raises
    ------
    DataFileError
        The file is not UTF-8 text.
    FileNotFoundError, IsADirectoryError
        No such file.
    """
    try:
        genes = [g.strip() for g in Path(path).read_text(encoding="utf-8-sig").split() if g.strip()]
    except UnicodeDecodeError:
        raise DataFileError(f"Candidates file {path} is not UTF-8 text; write one gene symbol per line.") from None
    if genes and genes[0].lower() in _GENE_COLS:
        return genes[1:], genes[0]
    return genes, None


def read_feature_file(path: str | Path) -> pd.DataFrame:
    """Candidate features from a file: ``.h5ad`` expression data (a gene embedding, see
    :func:`~scagents.campaign.features.gene_embedding`) or a ``.csv``/``.tsv`` table whose first
    column is the gene and whose other columns are numbers.

    Raises
    ------
    DataFileError
        The file does not exist.
    DataError
        The table has no numeric feature column or non-numeric values.
    """
    from scagents.campaign.features import gene_embedding

    path = Path(path)
    if not path.exists():
        raise DataFileError(f"Feature file {path} does not exist; give an .h5ad expression file or a "
                            "CSV/TSV table (gene, feature columns).")
    if path.suffix.lower() == ".h5ad":
        import anndata as ad

        return gene_embedding(ad.read_h5ad(path))
    sep = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
    df = pd.read_csv(path, sep=sep, index_col=0)
    if df.shape[1] == 0:
        raise DataError(f"Feature table {path} has no feature columns; write gene,feature1,feature2,...")
    num = df.apply(pd.to_numeric, errors="coerce")
    bad = [c for c in df.columns if num[c].isna().any()]
    if bad:
        raise DataError(f"Feature table {path}: columns {bad[:5]} hold non-numeric or empty values; "
                        "every feature must be a number.")
    num.index = num.index.astype(str)
    return num.astype(np.float64)


def _candidate_prior(prior, F: pd.DataFrame, genes: list[str], *, feats_given: bool
                     ) -> tuple[np.ndarray | None, str | None]:
    """Per-candidate prior values and their source (``None, None`` when there is none)."""
    from scagents.campaign.features import expression_prior

    if prior is None or not feats_given and isinstance(prior, str):
        return None, None
    if isinstance(prior, str):
        if prior != "auto":
            raise CampaignError(f"prior must be 'auto', a pandas Series (gene -> value) or None, got {prior!r}.")
        try:
            single = expression_prior(F)
            source = "expression_prior (mean standardised expression level in the feature data)"
        except DataError:
            if "mean" not in F:
                return None, None
            single = expression_prior(F, columns=["mean"])
            source = "expression_prior (mean expression column of the feature data)"
    else:
        ser = pd.Series(prior, dtype=np.float64)
        ser.index = [str(g).upper() for g in ser.index]
        ser = ser[~ser.index.duplicated()]
        if not np.isfinite(ser.to_numpy()).all():
            raise CampaignError("The prior holds NaN or infinite values; give a finite number per gene.")
        single = pd.Series([ser.get(str(g).upper(), np.nan) for g in F.index], index=F.index)
        fill = float(ser.min()) - 1.0 if len(ser) else 0.0
        single = single.fillna(fill)
        source = "user-supplied prior"
    vals = np.array([float(np.mean([single[p] for p in g.split("+")])) for g in genes])
    return vals, source


def _store_prior(con: sqlite3.Connection, cid: int, genes: Sequence[str], values: np.ndarray, source: str) -> None:
    con.executemany("INSERT OR REPLACE INTO priors(campaign_id, gene, value, source) VALUES (?,?,?,?)",
                    [(cid, g, float(v), source) for g, v in zip(genes, values, strict=True)])


def _load_prior(con: sqlite3.Connection, cid: int, genes: Sequence[str]) -> tuple[np.ndarray | None, str | None]:
    rows = con.execute("SELECT gene, value, source FROM priors WHERE campaign_id = ?", (cid,)).fetchall()
    if not rows:
        return None, None
    d = {g: v for g, v, _ in rows}
    lo = min(d.values()) - 1.0
    return np.array([d.get(g, lo) for g in genes], dtype=np.float64), rows[0][2]


def _prior_from_stored_features(con: sqlite3.Connection, cid: int, genes: Sequence[str], X: np.ndarray
                                ) -> tuple[np.ndarray | None, str | None]:
    """Prior of a campaign created without one (older ledgers): from its stored feature columns."""
    names = json.loads(con.execute("SELECT feature_names FROM campaigns WHERE id = ?", (cid,)).fetchone()[0])
    if X.shape[1] != len(names) or not any(n != "missing" for n in names):
        return None, None
    F = pd.DataFrame(X, index=list(genes), columns=names)
    return _candidate_prior("auto", F, [str(g) for g in genes], feats_given=True)


def _load(con: sqlite3.Connection, cid: int):
    rows = con.execute("SELECT gene, features FROM candidates WHERE campaign_id = ? ORDER BY rowid", (cid,)).fetchall()
    genes = [r[0] for r in rows]
    X = np.vstack([np.frombuffer(r[1], dtype=np.float64) for r in rows])
    meas = pd.read_sql_query("SELECT gene, round, value FROM measurements WHERE campaign_id = ?", con, params=(cid,))
    prop = pd.read_sql_query("SELECT gene, round FROM proposals WHERE campaign_id = ?", con, params=(cid,))
    return genes, X, meas, prop


def _load_designer(con: sqlite3.Connection, cid: int) -> tuple[dict | None, bytes | None]:
    row = con.execute("SELECT config, state FROM designers WHERE campaign_id = ?", (cid,)).fetchone()
    if row is None:
        return None, None
    try:
        return json.loads(row[0]), row[1]
    except json.JSONDecodeError as exc:
        raise CampaignError(f"The stored designer configuration is not valid JSON ({exc}); the ledger is damaged: "
                            "give --designer NAME to start a new designer.") from exc


def _resolve_config(stored: dict | None, designer: str | None, seed: int | None, n_rounds: int | None,
                    options: dict) -> dict:
    """The designer configuration of this round: the stored one, changed by what is given explicitly.

    A different designer name starts from that designer's defaults; the same (or no) name keeps the
    stored options and overrides only those given.
    """
    try:
        if stored is None or (designer is not None and designer != stored["designer"]):
            return designer_config(designer, seed=0 if seed is None else seed,
                                   n_rounds=5 if n_rounds is None else n_rounds, **options)
        kept = dict(stored.get("options", {}))
        if stored["designer"] == "bayes_prior" and "graph_mode" not in kept:
            kept["graph_mode"] = "sum"  # stored before graph_mode existed: continue the summed graph it ran with
        return designer_config(stored["designer"], seed=stored["seed"] if seed is None else seed,
                               groups=stored.get("groups", "symbol_families"), graph=stored.get("graph", "none"),
                               n_rounds=stored.get("n_rounds", 5) if n_rounds is None else n_rounds,
                               **{**kept, **options})
    except DesignerError as exc:
        raise CampaignError(str(exc)) from exc


def _check_kept(campaign: str, genes: list[str], n_features: int, candidates: Sequence[str] | None,
                features: pd.DataFrame | str | Path | None) -> None:
    """Refuse candidates or features given for an existing campaign that would not be used.

    A campaign's candidates and their features are stored when it is created and every later round
    proposes from them; a different set given later was silently ignored. The same candidates (any
    order, surrounding spaces) are accepted: nothing is ignored.

    Raises
    ------
    CampaignError
        One line naming what differs and the fix (drop it, or start a new campaign).
    """
    if candidates is not None:
        given = [str(g).strip() for g in candidates]
        new = [g for g in dict.fromkeys(given) if g not in set(genes)]
        absent = sorted(set(genes) - set(given))
        if new or absent:
            what = "; ".join(part for part in (
                f"{len(new)} not among them ({', '.join(new[:3])}{', …' if len(new) > 3 else ''})" if new else "",
                f"{len(absent)} of them missing ({', '.join(absent[:3])}{', …' if len(absent) > 3 else ''})"
                if absent else "") if part)
            raise CampaignError(
                f"Campaign {campaign!r} keeps the {len(genes)} candidates it was created with and the candidates "
                f"given differ ({what}); they would not be used: give none to continue it (CLI: drop --candidates), "
                "or start a new campaign name for a new candidate set.")
    if not (isinstance(features, str) and features == "auto"):
        shown = f"{str(features)!r}" if isinstance(features, str | Path) else "given"
        raise CampaignError(
            f"Campaign {campaign!r} keeps the features stored when it was created ({n_features} per candidate); "
            f"the features {shown} would not be used: give none to continue it (CLI: drop --features), or start "
            "a new campaign name to use other features.")


def propose_round(db_path: str | Path, campaign: str, *, batch: int = 16, goal: str | None = None,
                  candidates: Sequence[str] | None = None, designer: str | None = None, seed: int | None = None,
                  n_rounds: int | None = None, features: pd.DataFrame | str | Path | None = "auto",
                  objective: str | None = None, **designer_options) -> pd.DataFrame:
    """Propose the next round of a campaign and record it (one transaction).

    The designer is built by :func:`~scagents.campaign.acquisition.build_designer` from a
    :func:`~scagents.campaign.acquisition.designer_config` — the same function and defaults as
    ``benchmarks/closed_loop.py`` — and its configuration and state (the policy's weights) are
    stored in the ledger with the round, so every later call, in any process, continues the same
    designer. What is not given (``designer``, ``seed``, ``n_rounds``, options) comes from the
    stored configuration, else from the defaults. Measurements are given to the designer in
    proposal order (round, rank), as the benchmark does.

    Parameters
    ----------
    db_path
        SQLite ledger.
    campaign
        Campaign name. If it does not exist and ``goal`` and ``candidates`` are given, it is created.
    batch
        Number of candidates to propose.
    goal
        Goal of a new campaign; for an existing one it must match (or be ``None``).
    candidates
        Candidates of a new campaign. An existing campaign keeps the candidates it was created
        with: the same set is accepted (in any order), another set is refused (never ignored).
    features
        Features of a new campaign (see :func:`create_campaign`). An existing campaign keeps its
        stored features: anything but the default ``"auto"`` is refused (never ignored).
    designer
        ``"policy"`` (TRPO→PPO policy on the design environment), ``"ridge_ucb"``, ``"gp_ucb"``,
        ``"prior_only"`` or ``"random"``; default: the stored one, else
        :data:`~scagents.campaign.acquisition.DEFAULT_DESIGNER`. A different name than the stored
        one starts that designer afresh (its defaults, no stored state).
    seed
        Random seed (combined with the round number); default: the stored one, else 0.
    n_rounds
        Planned number of rounds (the policy sees the progress round / n_rounds); default: the
        stored one, else 5.
    objective
        ``"increase"``, ``"decrease"`` or ``"either"``: of a new campaign (default: from the goal);
        for an existing one it must match (or be ``None``).
    **designer_options
        Designer options (see :func:`~scagents.campaign.acquisition.designer_options`, e.g.
        ``total_timesteps`` for the policy), stored with the configuration. ``prior=`` overrides
        the prior stored in the ledger for this call (not stored). Otherwise the stored prior is
        used (round 1 proposes its top; a campaign stored without one but with expression-level
        features gets it derived and stored with its first round). Without any prior, round 1 is
        random and its rationale says why.

    Returns
    -------
    pandas.DataFrame
        The proposals: ``round`` (the round users read: :data:`FIRST_ROUND` for the first), ``rank``, ``gene``, ``score``, ``uncertainty``, ``rationale``;
        ``.attrs`` holds ``objective`` (``increase|decrease|either``) and ``designer`` (the
        configuration used).

    Raises
    ------
    CampaignError
        Unknown campaign (without goal + candidates), a different goal, objective or candidate set,
        features given for an existing campaign, an unknown designer or option, or ``batch < 1``.
    """
    if int(batch) < 1:
        raise CampaignError(f"batch must be ≥ 1, got {batch}.")
    if objective is not None:
        _stored_objective(objective, goal or "")  # validate before anything is written
    creating = goal is not None and candidates is not None
    exists = None
    if Path(db_path).exists() or not creating:  # a new ledger is made by create_campaign, once all is checked
        con = _connect(db_path, None if creating else campaign)
        try:
            exists = con.execute("SELECT 1 FROM campaigns WHERE name = ?", (campaign,)).fetchone()
        finally:
            con.close()
    user_prior = designer_options.pop("prior", None)
    if not exists:
        if goal is None or candidates is None:
            raise CampaignError(f"No campaign named {campaign!r} in {db_path}: give goal= and candidates= "
                                "to create it (CLI: --goal and --candidates FILE).")
        _resolve_config(None, designer, seed, n_rounds, designer_options)  # bad options: nothing created
        made = create_campaign(db_path, campaign, goal=goal, candidates=candidates, features=features,
                               objective=objective)
    con = _connect(db_path, campaign)
    try:
        cid, _, cgoal, cobjective, _, _ = _campaign_row(con, campaign)
        if goal is not None and exists and goal.strip() != cgoal.strip():
            raise CampaignError(f"Campaign {campaign!r} has the goal {cgoal!r}, not {goal!r}; "
                                "start a new campaign for a new goal.")
        if objective is not None and exists and _stored_objective(objective, cgoal) != cobjective:
            raise CampaignError(f"Campaign {campaign!r} has the objective {objective_name(cobjective)!r}, not "
                                f"{objective!r}; start a new campaign for a new objective.")
        genes, X, meas, prop = _load(con, cid)
        if exists:
            _check_kept(campaign, genes, X.shape[1], candidates, features)
        idx = {g: i for i, g in enumerate(genes)}
        last = con.execute("SELECT MAX(round) FROM rounds WHERE campaign_id = ?", (cid,)).fetchone()[0]
        rnd = 0 if last is None else int(last) + 1
        prior, psource = _load_prior(con, cid, genes)
        new_prior = None
        no_prior = con.execute("SELECT 1 FROM settings WHERE campaign_id = ? AND key = 'prior' AND value = 'none'",
                               (cid,)).fetchone()
        if prior is None and last is None and not no_prior:  # older ledgers: derive the prior once, store it
            prior, psource = _prior_from_stored_features(con, cid, genes, X)
            new_prior = prior
        if user_prior is not None:
            prior = np.asarray(user_prior, dtype=np.float64)
        stored, state = _load_designer(con, cid)
        config = _resolve_config(stored, designer, seed, n_rounds, designer_options)
        if stored is not None and config != stored:
            state = None  # another designer or other settings: start it afresh
        # measurements in proposal order (round, rank): the order the benchmark gives them in
        order = [r[0] for r in con.execute("SELECT gene FROM proposals WHERE campaign_id = ? ORDER BY round, rank",
                                           (cid,))]
        m = meas.groupby("gene")["value"].mean()
        m = m.reindex([g for g in order if g in m.index])
        measured = np.array([idx[g] for g in m.index], dtype=np.int64)
        rewards = hit_likeness(m.to_numpy(), cobjective) if len(m) else np.zeros(0)
        exclude = np.array([idx[g] for g in prop["gene"]], dtype=np.int64)
        try:
            des = build_designer(config, genes, prior=prior, state=state)
        except DesignerError as exc:
            raise CampaignError(str(exc)) from exc
        picks = des.propose(X, measured, rewards, batch, exclude=exclude, round_index=rnd,
                            n_rounds=config["n_rounds"])
        new_state = des.get_state()
        name = config["designer"]
        if prior is None and name != "random":
            picks["rationale"] = picks["rationale"].replace(
                "random pick (nothing measured yet)",
                "random pick: nothing measured yet and no expression prior stored for this campaign (it was "
                "created without expression data, or with prior=None; give features= an .h5ad / feature table "
                "or have the shared PBMC data present when creating it)")
        out = pd.DataFrame({"round": rnd + FIRST_ROUND, "rank": np.arange(1, len(picks) + 1),
                            "gene": [genes[i] for i in picks["index"]], "score": picks["score"].to_numpy(),
                            "uncertainty": picks["uncertainty"].to_numpy(), "rationale": picks["rationale"].to_numpy()})
        out.attrs["objective"] = objective_name(cobjective)
        out.attrs["designer"] = config
        out.attrs["feature_coverage"] = dict(getattr(des, "feature_coverage_", {}))
        out.attrs["created"] = not exists
        if not exists:
            out.attrs["candidates"] = {"n": len(genes), "without_features": made["without_features"],
                                       "features": "the shared PBMC expression data" if isinstance(features, str)
                                       and features == "auto" else str(features) if isinstance(features, str | Path)
                                       else "the given features"}
        waiting = prop[~prop["gene"].isin(meas["gene"])]  # proposed in earlier rounds, not measured yet
        out.attrs["unmeasured"] = {int(r) + FIRST_ROUND: int(n) for r, n in waiting.groupby("round").size().items()}
        with _transaction(con):
            # re-check inside the write lock: another process may have added a round meanwhile
            last2 = con.execute("SELECT MAX(round) FROM rounds WHERE campaign_id = ?", (cid,)).fetchone()[0]
            if last2 != last:
                raise CampaignError(f"Campaign {campaign!r} got a new round from another process; run again.")
            if new_prior is not None:
                _store_prior(con, cid, genes, new_prior, psource)
            con.execute("INSERT INTO rounds(campaign_id, round, designer, seed, batch, created) VALUES (?,?,?,?,?,?)",
                        (cid, rnd, name, int(config["seed"]), len(out), time.time()))
            con.execute("INSERT OR REPLACE INTO designers(campaign_id, config, state, round, updated) "
                        "VALUES (?,?,?,?,?)", (cid, json.dumps(config), new_state, rnd, time.time()))
            con.execute("INSERT OR REPLACE INTO settings(campaign_id, key, value) VALUES (?, 'feature_coverage', ?)",
                        (cid, json.dumps(out.attrs["feature_coverage"])))
            rows = [(cid, rnd, r.gene, int(r.rank), float(r.score), float(r.uncertainty), str(r.rationale))
                    for r in out.itertuples()]
            half = len(rows) // 2
            ins = ("INSERT INTO proposals(campaign_id, round, gene, rank, score, uncertainty, rationale) "
                   "VALUES (?,?,?,?,?,?,?)")
            con.executemany(ins, rows[:half])
            _pause("propose")
            con.executemany(ins, rows[half:])
    finally:
        con.close()
    return out


#: Gene columns of a generic results table, compared case-insensitively (MAGeCK and BAGEL2 files
#: have their own: ``id`` for MAGeCK RRA, ``Gene`` for MAGeCK MLE, ``GENE`` for BAGEL2).
_GENE_COLS = ("gene", "genes", "gene_symbol", "symbol", "gene_name", "id", "target", "target_gene", "perturbation")
#: Signed-effect columns of a generic results table, compared case-insensitively.
_VALUE_COLS = ("score", "value", "measurement", "effect", "lfc", "log_fold_change", "logfc", "log2fc", "log2_fc",
               "log2foldchange", "log2_fold_change", "z", "zscore", "z_score", "beta")
#: Columns (or the part after MAGeCK's ``|``) that hold no signed effect: never a score, even when named.
_NOT_EFFECT = {**dict.fromkeys(("p-value", "pvalue", "p_value", "pval", "p", "wald-p-value"), "p-values"),
               **dict.fromkeys(("fdr", "padj", "p_adj", "p.adj", "qvalue", "q-value", "q_value", "qval",
                                "wald-fdr"), "FDRs (adjusted p-values)"),
               "rank": "ranks", **dict.fromkeys(("num", "sgrna", "goodsgrna", "numobs"), "counts"),
               **dict.fromkeys(("std", "std_boostedbf"), "standard deviations"),
               **dict.fromkeys(("recall", "precision"), "precision-recall values"), "round": "round numbers"}
#: BAGEL2 Bayes-factor columns (positive = evidence that the knockout depletes the cells).
_BAGEL_BF = ("bf", "boostedbf", "normbf")

MAX_RESULTS_BYTES = 16 * 2**20
"""Largest results file :func:`ingest` reads (16 MiB: about half a million ``gene,score`` rows, or
several genome-wide MAGeCK gene summaries); a larger file is refused before it is parsed."""

_CHUNK_ROWS = 100_000


@dataclass(frozen=True)
class _Choice:
    """How a results file is read: its format, gene and score columns, the score's sign and the rule."""

    fmt: str
    gene: str
    score: str
    sign: float
    rule: str
    alt: str | None = None  # MAGeCK RRA pos|lfc, which must equal neg|lfc


def _results_format(low: set[str]) -> str:
    """The tool that wrote a results table, from its lower-cased column names."""
    if "gene" in low and any(c.endswith("|beta") for c in low):
        return "MAGeCK MLE"
    if "id" in low and any(c.startswith(("neg|", "pos|")) for c in low):
        return "MAGeCK RRA"
    if "gene" in low and "bf" in low:
        return "BAGEL2 BF"
    return "table"


def _score_rule(fmt: str, name: str) -> str:
    """The one line that says what the stored score is."""
    key = name.lower()
    if fmt == "MAGeCK RRA" and key.endswith("|lfc"):
        return f"score = MAGeCK RRA {name} (gene-level log2 fold change)"
    if fmt == "MAGeCK MLE" and key.endswith("|beta"):
        return (f"score = MAGeCK MLE {name} (gene beta of condition {name.rsplit('|', 1)[0]}: a log fold "
                "change-like selection effect)")
    if fmt == "MAGeCK MLE" and key.endswith("|z"):
        return f"score = MAGeCK MLE {name} (beta / its standard error of condition {name.rsplit('|', 1)[0]})"
    if fmt == "BAGEL2 BF" and key in _BAGEL_BF:
        return (f"score = −{name} of BAGEL2 (log2 Bayes factor of essentiality, sign flipped: negative = the "
                "knockout depletes the cells, as in a log fold change)")
    return f"score = column {name!r} as written, taken as a signed effect ({fmt if fmt != 'table' else 'generic table'})"


def _not_effect(key: str) -> str | None:
    """Why a (lower-cased) column cannot be a signed effect, or ``None``."""
    tail = key.rsplit("|", 1)[-1]
    if "|" in key and tail == "score":
        return "MAGeCK's RRA score (small for strong hits in either direction)"
    return _NOT_EFFECT.get(tail)


def _one_column(found: list[str], path: Path, what: str, option: str, none_hint: str, holds: str) -> str:
    """The one column of ``found`` (a results file's ``what`` column); none or several: one line naming ``option``."""
    if not found:
        raise IngestError(f"Results file {path} has no {what} column {none_hint} or give {option} NAME.")
    if len(found) > 1:
        raise IngestError(f"Results file {path} has several {what} columns ({', '.join(found)}); say which holds "
                          f"{holds} with {option} NAME (e.g. {option} {found[0]}).")
    return found[0]


def _choose_columns(header: Sequence, path: Path, score_column: str | None, gene_column: str | None) -> _Choice:
    """The gene and score columns of a results file (rules: see :func:`ingest`)."""
    cols: dict[str, str] = {}
    for c in header:
        cols.setdefault(str(c).strip().lower(), str(c))
    low = set(cols)
    fmt = _results_format(low)
    names = list(cols.values())
    shown = ", ".join(names[:20]) + (f", … ({len(names)} in all)" if len(names) > 20 else "")

    def named(name: str, option: str) -> str:
        key = str(name).strip().lower()
        if key not in cols:
            raise IngestError(f"Results file {path} has no column {name!r} (given by {option}); its columns: {shown}.")
        return cols[key]

    if gene_column is not None:
        gcol = named(gene_column, "--gene-column")
    elif fmt == "BAGEL2 BF" and "rna" in low:
        raise IngestError(f"Results file {path} is BAGEL2's sgRNA-level table (RNA, GENE, …, BF: one row per guide); "
                          "ingest its gene-level table (BAGEL.py bf without -r).")
    elif fmt in ("MAGeCK MLE", "BAGEL2 BF"):
        gcol = cols["gene"]
    elif fmt == "MAGeCK RRA":
        gcol = cols["id"]
    else:
        gcol = _one_column([cols[c] for c in _GENE_COLS if c in cols], path, "gene", "--gene-column",
                           f"(columns: {shown}); name it 'gene' (or id, symbol, target)", "the gene symbols")
    alt, sign = None, 1.0
    if score_column is not None:
        vcol = named(score_column, "--score-column")
        why = _not_effect(vcol.lower())
        if why is not None:
            raise IngestError(f"Results file {path}: column {vcol!r} holds {why}, not a signed effect; the campaign's "
                              "objective (increase / decrease / either) needs one (a log fold change, beta or z): "
                              "name such a column with --score-column.")
        if vcol == gcol:
            raise IngestError(f"Results file {path}: column {vcol!r} is the gene column; give another --score-column.")
        if fmt == "BAGEL2 BF" and vcol.lower() in _BAGEL_BF:
            sign = -1.0
    elif fmt == "MAGeCK MLE":
        betas = [n for k, n in cols.items() if k.endswith("|beta")]
        if len(betas) > 1:
            raise IngestError(f"Results file {path} is a MAGeCK MLE gene summary with {len(betas)} conditions "
                              f"({', '.join(betas)}); say which condition's beta is the score with --score-column "
                              f"NAME (e.g. --score-column '{betas[0]}').")
        vcol = betas[0]
    elif fmt == "MAGeCK RRA":
        if "neg|lfc" not in cols and "pos|lfc" not in cols:
            raise IngestError(f"Results file {path} is a MAGeCK RRA gene summary without neg|lfc / pos|lfc: its "
                              "score, p-value, FDR and rank columns are not signed effects (an RRA score is small "
                              "for strong hits in either direction); ingest a gene summary with the lfc columns "
                              "(mageck test writes them), or name a signed column with --score-column NAME.")
        vcol = cols.get("neg|lfc", cols.get("pos|lfc"))
        alt = cols.get("pos|lfc") if "neg|lfc" in cols else None
    elif fmt == "BAGEL2 BF":
        vcol, sign = cols["bf"], -1.0
    else:
        vcol = _one_column([cols[c] for c in _VALUE_COLS if c in cols and cols[c] != gcol], path, "score",
                           "--score-column", f"(columns: {shown}); name the signed effect 'score' (or lfc, log2FC, z, "
                           "beta)", "the measured signed effect")
    return _Choice(fmt, gcol, vcol, sign, _score_rule(fmt, vcol), alt)


def _read_results(path: Path, score_column: str | None = None, gene_column: str | None = None
                  ) -> tuple[pd.DataFrame, str, _Choice]:
    """Check and parse a results file: size first, then the header's columns (:func:`_choose_columns`),
    then the rows (in chunks, stopping at the first chunk with a malformed row). Returns the rows
    (``gene``, ``raw``, ``value`` — signed by the rule, NaN where not a finite number — and
    ``round`` when given), the file's sha256 and the column choice. Values are checked later, on
    the rows that are taken (:func:`_new_measurements`)."""
    if not path.exists():
        raise IngestError(f"Results file {path} does not exist.")
    if path.is_dir():
        raise IngestError(f"Results file {path} is a folder; give the CSV/TSV file (gene,score rows) inside it.")
    if not path.is_file():
        raise IngestError(f"Results file {path} is not a regular file; give a CSV/TSV file with gene,score rows.")
    size = path.stat().st_size
    if size > MAX_RESULTS_BYTES:
        raise IngestError(f"Results file {path} is {size / 2**20:.1f} MiB, over the {MAX_RESULTS_BYTES / 2**20:.0f} MiB "
                          "limit of a results file; keep only the proposed genes' rows.")
    with path.open("rb") as fh:
        head = fh.read(65536)
    if not head.strip():
        raise IngestError(f"Results file {path} is empty; it needs a header with 'gene' and 'score' columns and rows.")
    if b"\x00" in head[:4096]:
        raise IngestError(f"Results file {path} is binary, not a text CSV/TSV with 'gene' and 'score' columns.")
    sep = "\t" if path.suffix.lower() in (".tsv", ".txt") or (b"\t" in head.splitlines()[0]) else ","
    try:
        header = pd.read_csv(path, sep=sep, nrows=0).columns
        choice = _choose_columns(header, path, score_column, gene_column)
        rcol = next((str(c) for c in header if str(c).strip().lower() == "round"), None)
        use = [choice.gene, choice.score] + [c for c in (choice.alt, rcol) if c is not None]
        chunks = [_check_rows(chunk, path, start, choice.gene, choice.score, rcol, alt=choice.alt, sign=choice.sign)
                  for start, chunk in zip(range(0, 2**62, _CHUNK_ROWS),
                                          pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, usecols=use,
                                                      chunksize=_CHUNK_ROWS), strict=False)]
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        msg = " ".join(str(exc).split())[:300]
        raise IngestError(f"Results file {path} is not a readable CSV: {msg}. Write one row per gene: gene,score.") from exc
    out = pd.concat(chunks) if chunks else pd.DataFrame()
    if len(out) == 0:
        raise IngestError(f"Results file {path} has a header but no rows.")
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(2**20), b""):
            sha.update(block)
    return out, sha.hexdigest(), choice


def _check_rows(df: pd.DataFrame, path: Path, start: int, gcol: str, vcol: str, rcol: str | None, *,
                alt: str | None = None, sign: float = 1.0) -> pd.DataFrame:
    """One chunk of results rows (``start``: index of its first data row) → gene, raw, value[, round]."""
    out = pd.DataFrame({"gene": df[gcol].astype(str).str.strip(), "raw": df[vcol].astype(str).str.strip()})
    out.index = pd.RangeIndex(start, start + len(df))
    bad_gene = out.index[out["gene"] == ""].tolist()
    if bad_gene:
        raise IngestError(f"Results file {path}: empty gene name on data row(s) {[i + 1 for i in bad_gene[:10]]}.")
    val = pd.to_numeric(out["raw"], errors="coerce").astype(float)
    val = val.where(np.isfinite(val.fillna(np.inf)))
    if alt is not None:  # MAGeCK RRA writes one gene-level lfc twice; --gene-lfc-method alphamedian may not
        other = pd.to_numeric(df[alt].astype(str).str.strip(), errors="coerce").astype(float).to_numpy()
        v = val.to_numpy()
        differ = np.flatnonzero(np.isfinite(v) & np.isfinite(other) & ~np.isclose(v, other, rtol=1e-4, atol=1e-6))
        if len(differ):
            i = int(differ[0])
            raise IngestError(f"Results file {path}: {vcol} and {alt} differ ({len(differ)} gene(s), e.g. "
                              f"{out['gene'].iloc[i][:40]}: {v[i]:g} vs {other[i]:g}; MAGeCK's alphamedian lfc is "
                              f"computed per direction); say which is the score with --score-column '{vcol}' or "
                              f"--score-column '{alt}'.")
    res = out.assign(value=sign * val)
    if rcol is not None:
        r = pd.to_numeric(df[rcol].astype(str).str.strip(), errors="coerce")
        if r.isna().any() or (r != r.round()).any():
            raise IngestError(f"Results file {path}: the 'round' column must hold integers.")
        res["round"] = r.astype(int).to_numpy()
    return res


def _new_measurements(con: sqlite3.Connection, cid: int, campaign: str, path: Path, df: pd.DataFrame,
                      sha: str, rule: str = "") -> dict:
    """Check the results rows against the ledger (inside the ingest transaction).

    The rows of genes proposed in the campaign are taken and checked; the others are counted and
    ignored (a MAGeCK gene summary holds the whole library). Returns ``rows`` (to insert),
    ``n_taken``, ``n_unproposed`` (candidates not proposed yet), ``n_unknown`` (not candidates)
    and ``unknown`` (a few of them)."""
    cands = {r[0] for r in con.execute("SELECT gene FROM candidates WHERE campaign_id = ?", (cid,))}
    upper: dict[str, list[str]] = {}
    for g in cands:
        upper.setdefault(g.upper(), []).append(g)
    # a gene spelled in another case ("rpl34", "Stat1") is the candidate of that name when only one is
    df = df.assign(spelled=df["gene"],
                   gene=[g if g in cands or len(upper.get(g.upper(), [])) != 1 else upper[g.upper()][0]
                         for g in df["gene"]])
    prop = dict(con.execute("SELECT gene, round FROM proposals WHERE campaign_id = ?", (cid,)).fetchall())
    take = df["gene"].isin(prop.keys()).to_numpy()
    genes = pd.unique(df["gene"])
    unknown = [g[:40] for g in genes if g not in cands]
    if not take.any():
        if len(unknown) == len(genes):
            raise GeneNotFoundError(f"Genes {unknown[:10]} ({len(unknown)} in all) in {path} are not candidates of "
                                    f"campaign {campaign!r}; check the spelling or the campaign name.")
        never = [g[:40] for g in genes if g in cands]
        raise GeneNotFoundError(f"Genes {never[:10]} ({len(never)} in all) in {path} were never proposed in "
                                f"campaign {campaign!r}; only proposed genes can be ingested (run `scagents next` "
                                f"first){f'; {len(unknown)} other gene(s) are not candidates' if unknown else ''}.")
    other = df.loc[~take, "gene"]
    n_unknown = int((~other.isin(cands)).sum())
    df = df[take]
    cased = df.groupby("gene")["spelled"].nunique()
    twice = cased[cased > 1].index.tolist()
    if twice:
        raise IngestError(f"Results file {path}: genes {twice[:10]} appear more than once (spelled in "
                          "different cases); give one score per gene.")
    dups = df.loc[df["gene"].duplicated(keep=False)]
    if len(dups):
        conflicting = dups.groupby("gene")["value"].nunique(dropna=False)
        conflicting = conflicting[conflicting > 1].index.tolist()
        if conflicting:
            raise IngestError(f"Results file {path}: genes {conflicting[:10]} appear more than once with different "
                              "scores; give one score per gene (average replicates first).")
        df = df.drop_duplicates("gene")
    bad = df.index[df["value"].isna()].tolist()
    if bad:
        examples = [f"row {i + 1} ({df.at[i, 'gene'][:40]}: {df.at[i, 'raw'][:40]!r})" for i in bad[:5]]
        raise IngestError(f"Results file {path}: score is missing or not a finite number on {len(bad)} row(s) of "
                          f"proposed genes, e.g. {', '.join(examples)}. Give a number for every gene.")
    df = df.assign(prop_round=df["gene"].map(prop).astype(int))
    if "round" in df:  # the file's rounds are the ones users read (FIRST_ROUND for the first)
        df = df.assign(round=df["round"] - FIRST_ROUND)
        wrong = df.loc[df["round"] != df["prop_round"], ["gene", "round", "prop_round"]]
        if len(wrong):
            ex = ", ".join(f"{r.gene} (file {r.round + FIRST_ROUND}, proposed in {r.prop_round + FIRST_ROUND})"
                           for r in wrong.head(5).itertuples())
            raise IngestError(f"Results file {path}: round does not match the proposing round for {ex}.")
    old = dict(con.execute("SELECT gene, value FROM measurements WHERE campaign_id = ?", (cid,)).fetchall())
    conflict = [g for g, v in zip(df["gene"], df["value"], strict=True) if g in old and not np.isclose(old[g], v)]
    if conflict:
        clash = set(conflict)
        before = sorted({rl for g, rl in con.execute(
            "SELECT m.gene, s.rule FROM measurements m JOIN ingest_scores s ON s.campaign_id = m.campaign_id "
            "AND s.sha256 = m.ingest_sha WHERE m.campaign_id = ?", (cid,)) if g in clash})
        hint = ""
        if rule and before and before != [rule]:  # another score column than the measurements already stored
            hint = (f" They were stored with {'; '.join(before)}, this file gives {rule}: pass --score-column "
                    "(tool: score_column) naming the column used before.")
        raise IngestError(f"Genes {conflict[:10]} in {path} already have a different measurement in campaign "
                          f"{campaign!r}; the ledger keeps one measurement per gene and round.{hint}")
    new = df[~df["gene"].isin(old.keys())]
    return {"rows": [(cid, r.gene, int(r.prop_round), float(r.value), sha) for r in new.itertuples()],
            "n_taken": len(df), "n_unproposed": len(other) - n_unknown, "n_unknown": n_unknown,
            "unknown": [g[:40] for g in pd.unique(other[~other.isin(cands)])[:5]]}


def ingest(db_path: str | Path, campaign: str, results_path: str | Path, *, score_column: str | None = None,
           gene_column: str | None = None) -> IngestSummary:
    """Add measured results to a campaign (one transaction; idempotent per file content and proposals).

    Files are read as their tools write them (tab- or comma-separated; column names compared
    case-insensitively), and the score is a signed effect, so that the campaign's objective
    (increase / decrease / either) means what it says:

    * MAGeCK RRA gene summary (``mageck test``: ``id``, ``num``, ``neg|score`` … ``neg|lfc``,
      ``pos|…``): gene = ``id``, score = ``neg|lfc``, the gene-level log2 fold change (MAGeCK writes
      the same value as ``pos|lfc``; where they differ, it stops and asks for ``score_column``).
      A summary without lfc columns is refused: its RRA score, p-values, FDRs and ranks are not
      signed.
    * MAGeCK MLE gene summary (``mageck mle``: ``Gene``, ``sgRNA``, ``<condition>|beta``, ``|z``,
      ``|p-value``, ``|fdr``, ``|wald-p-value``, ``|wald-fdr``): gene = ``Gene``, score = the
      condition's ``|beta``; with several conditions it stops and asks for ``score_column``.
    * BAGEL2 gene-level BF table (``BAGEL.py bf``: ``GENE``, ``BF``, optionally ``STD``,
      ``NumObs``, …): gene = ``GENE``, score = −``BF`` (BF > 0 is evidence that the knockout
      depletes the cells, so the sign is flipped to read like a fold change).
    * Any other table: gene = the one column named ``gene``, ``genes``, ``gene_symbol``,
      ``symbol``, ``gene_name``, ``id``, ``target``, ``target_gene`` or ``perturbation``; score =
      the one column named ``score``, ``value``, ``measurement``, ``effect``, ``lfc``,
      ``log_fold_change``, ``logFC``, ``log2FC``, ``log2_fc``, ``log2FoldChange``,
      ``log2_fold_change``, ``z``, ``zscore``, ``z_score`` or ``beta``; with none or several it
      stops and asks for ``gene_column`` / ``score_column``. An optional ``round`` column is
      checked against the proposing round.

    ``score_column`` / ``gene_column`` name the columns explicitly; a column of p-values, FDRs,
    ranks, counts, standard deviations or a MAGeCK RRA score is refused even then. The rule used
    (:attr:`IngestSummary.score_rule`) is stored in the ledger's ``ingest_scores`` table with the
    file's hash, beside its measurements and their rounds.

    Rows of genes proposed in the campaign are taken (each stored under the round that proposed
    it); the other rows — a screen's whole library, candidates not proposed yet — are counted
    (:attr:`IngestSummary.n_unproposed`, :attr:`IngestSummary.n_unknown`) and ignored. A file
    without any proposed gene is refused.

    Parameters
    ----------
    db_path
        SQLite ledger.
    campaign
        Campaign name.
    results_path
        The results file (CSV/TSV, see above).
    score_column, gene_column
        Column names (case-insensitive) overriding the rules above.

    Returns
    -------
    IngestSummary

    Raises
    ------
    IngestError
        Missing/empty/binary file, no or several gene or score columns, a named column that is
        absent or not a signed effect, no rows, empty gene names, non-numeric/NaN/infinite scores
        of proposed genes, conflicting duplicates, a wrong round, or a gene that already has a
        different measurement. Nothing is written.
    GeneNotFoundError
        No gene of the file was proposed in the campaign (none is a candidate, or none was
        proposed yet). Nothing is written.
    CampaignError
        Unknown campaign.
    """
    path = Path(results_path)
    con = _connect(db_path, campaign)
    try:
        cid, objective = (lambda row: (row[0], row[3]))(_campaign_row(con, campaign))
        df, sha, choice = _read_results(path, score_column=score_column, gene_column=gene_column)
        # every check reads the ledger inside the write lock (BEGIN IMMEDIATE): a concurrent ingest
        # of the same file waits for this one to commit, then finds it already ingested
        with _transaction(con):
            seen = con.execute("SELECT 1 FROM ingests WHERE campaign_id = ? AND sha256 = ?", (cid, sha)).fetchone()
            stored = con.execute("SELECT rule FROM ingest_scores WHERE campaign_id = ? AND sha256 = ?",
                                 (cid, sha)).fetchone()
            if seen and stored and stored[0] != choice.rule:  # the same file read with another column
                waiting = {r[0].upper() for r in con.execute(
                    "SELECT p.gene FROM proposals p LEFT JOIN measurements m ON m.campaign_id = p.campaign_id AND "
                    "m.gene = p.gene WHERE p.campaign_id = ? AND m.gene IS NULL", (cid,))}
                if not df["gene"].str.upper().isin(waiting).any():
                    return IngestSummary(campaign, str(path), sha, 0, 0, True, [], score_rule=stored[0],
                                         source_format=choice.fmt)
                raise IngestError(f"Results file {path} was ingested before with {stored[0]}; ingest it again "
                                  f"with the same columns, not with {choice.rule}.")
            earlier = [r[0] for r in con.execute("SELECT DISTINCT rule FROM ingest_scores WHERE campaign_id = ? "
                                                 "AND rule != ?", (cid, choice.rule))]
            got = _new_measurements(con, cid, campaign, path, df, sha, choice.rule)
            rows = got["rows"]
            if seen and not rows:  # the same file again, and no gene of it was proposed since
                return IngestSummary(campaign, str(path), sha, 0, 0, True, [],
                                     score_rule=stored[0] if stored else "", source_format=choice.fmt)
            library = _store_library(con, cid, objective, path, df, sha, got["n_taken"])
            if seen:  # a whole-library file ingested again after a later round: take the genes proposed since
                con.execute("UPDATE ingests SET n_rows = ?, created = ? WHERE campaign_id = ? AND sha256 = ?",
                            (got["n_taken"], time.time(), cid, sha))
                con.execute("UPDATE ingest_scores SET n_ignored = ? WHERE campaign_id = ? AND sha256 = ?",
                            (got["n_unproposed"] + got["n_unknown"], cid, sha))
            else:
                con.execute("INSERT INTO ingests(campaign_id, sha256, path, n_rows, created) VALUES (?,?,?,?,?)",
                            (cid, sha, str(path.resolve()), got["n_taken"], time.time()))
                con.execute("INSERT INTO ingest_scores(campaign_id, sha256, format, gene_column, score_column, "
                            "sign, rule, n_ignored) VALUES (?,?,?,?,?,?,?,?)",
                            (cid, sha, choice.fmt, choice.gene, choice.score, choice.sign, choice.rule,
                             got["n_unproposed"] + got["n_unknown"]))
            half = len(rows) // 2
            ins = "INSERT INTO measurements(campaign_id, gene, round, value, ingest_sha) VALUES (?,?,?,?,?)"
            con.executemany(ins, rows[:half])
            _pause("ingest")
            con.executemany(ins, rows[half:])
            waiting = con.execute(
                "SELECT p.gene, p.round FROM proposals p LEFT JOIN measurements m ON m.campaign_id = p.campaign_id "
                "AND m.gene = p.gene AND m.round = p.round WHERE p.campaign_id = ? AND m.gene IS NULL "
                "ORDER BY p.round, p.rank", (cid,)).fetchall()
    finally:
        con.close()
    note = (f"earlier ingests of this campaign used another score ({'; '.join(earlier)}); the designer compares "
            "all measurements on one scale" if earlier else None)
    if seen:
        again = "this file was ingested before; its rows of the genes proposed since were added"
        note = f"{again}; {note}" if note else again
    return IngestSummary(campaign, str(path), sha, len(rows), got["n_taken"] - len(rows), False,
                         sorted({r[2] + FIRST_ROUND for r in rows}), score_rule=choice.rule, source_format=choice.fmt,
                         n_unproposed=got["n_unproposed"], n_unknown=got["n_unknown"], unknown=got["unknown"],
                         n_unmeasured=len(waiting), note=note,
                         unmeasured=[f"{g[:40]} (round {r + FIRST_ROUND})" for g, r in waiting[:5]], library=library)


def _libraries(con: sqlite3.Connection, cid: int) -> dict[str, LibraryStats]:
    """The stored library statistics of a campaign's ingested files, by sha256 (none in a ledger
    opened read-only from before the table existed)."""
    if not con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ingest_library'").fetchone():
        return {}
    rows = con.execute(
        "SELECT l.sha256, i.path, l.n_genes, l.median, l.scale, l.n_hits, l.n_candidates, l.n_candidate_hits, "
        "l.objective, l.threshold FROM ingest_library l JOIN ingests i ON i.campaign_id = l.campaign_id AND "
        "i.sha256 = l.sha256 WHERE l.campaign_id = ?", (cid,)).fetchall()
    return {r[0]: LibraryStats(*r) for r in rows}


def _library_line(lib: LibraryStats) -> str:
    whole = f"{lib.n_hits:,} of them are hits (hit-likeness ≥ {lib.threshold:g})"
    if lib.share is None:
        share = ""
    elif lib.n_candidates == lib.n_genes:
        share = f" ({100 * lib.share:.2f}%: the share of hits a random batch of candidates is expected to hold)"
    else:
        share = (f"; {lib.n_candidate_hits:,} of its {lib.n_candidates:,} genes that are candidates are hits "
                 f"({100 * lib.share:.2f}%: the share of hits a random batch of candidates is expected to hold)")
    return (f"library: {lib.n_genes:,} genes with a score in this file, median {lib.median:.3g}, robust SD "
            f"{lib.scale:.3g} (1.4826·MAD): the fixed scale of the hit-likeness of its values; {whole}{share}.")


def _store_library(con: sqlite3.Connection, cid: int, objective: str, path: Path, df: pd.DataFrame, sha: str,
                   n_taken: int) -> str:
    """Store the library statistics of a results file (inside the ingest transaction), once per
    file; returns the line that says what they are, or why the file has none."""
    stored = _libraries(con, cid).get(sha)
    if stored is not None:
        return _library_line(stored)
    cands = {r[0] for r in con.execute("SELECT gene FROM candidates WHERE campaign_id = ?", (cid,))}
    lib = library_stats(df["gene"], df["value"], objective=objective, candidates=cands, n_proposed_in_file=n_taken,
                        sha256=sha, path=str(path.resolve()))
    if lib is None:
        n = int(df.loc[np.isfinite(df["value"].to_numpy(float)), "gene"].str.upper().nunique())
        return (f"scale: this file holds {n:,} gene(s) with a score, {n_taken} of them proposed: no library "
                f"(a library needs ≥ {LIBRARY_MIN_GENES} genes and more than the proposals), so its values are "
                "scored on the measured proposals' scale (their median and robust SD, which change as more proposals are "
                "measured) and there is no random reference; ingest the screen's whole gene summary for both.")
    con.execute("INSERT INTO ingest_library(campaign_id, sha256, n_genes, median, scale, n_hits, n_candidates, "
                "n_candidate_hits, objective, threshold) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (cid, sha, lib.n_genes, lib.median, lib.scale, lib.n_hits, lib.n_candidates, lib.n_candidate_hits,
                 lib.objective, lib.threshold))
    return _library_line(lib)


def _scored_history(con: sqlite3.Connection, cid: int, objective: str) -> tuple[pd.DataFrame, dict]:
    """Every proposal of a campaign with its measurement scored by the scale rule of
    :mod:`scagents.campaign.progress` (``reward``, ``hit``, ``random_share``, ``ingest_sha``), and the
    campaign's library statistics by file sha256. One function for ``campaign``, its plot and the
    ``campaigns`` listing, so they never count hits differently."""
    df = pd.read_sql_query(
        "SELECT p.round, p.rank, p.gene, p.score, p.uncertainty, p.rationale, r.designer, m.value AS measured, "
        "m.ingest_sha FROM proposals p JOIN rounds r ON r.campaign_id = p.campaign_id AND r.round = p.round "
        "LEFT JOIN measurements m ON m.campaign_id = p.campaign_id AND m.gene = p.gene AND m.round = p.round "
        "WHERE p.campaign_id = ? ORDER BY p.round, p.rank", con, params=(cid,))
    df["round"] += FIRST_ROUND  # the round users read
    libraries = _libraries(con, cid)
    df["reward"] = np.nan
    df["hit"] = False
    df["random_share"] = np.nan
    ok = df["measured"].notna()
    if ok.any():
        reward, share = score_measurements(df.loc[ok, "measured"].to_numpy(float), df.loc[ok, "ingest_sha"],
                                           libraries, objective)
        df.loc[ok, "reward"] = reward
        df.loc[ok, "random_share"] = share
        df.loc[ok, "hit"] = reward >= HIT_THRESHOLD
    return df, libraries


def _history(db_path: str | Path, campaign: str) -> tuple[pd.DataFrame, dict]:
    """The :func:`history` table with each measurement's file (``ingest_sha``) and random share
    (``random_share``), and what the progress lines need (objective, libraries, score names)."""
    con = _connect(db_path, campaign)
    try:
        cid, _, _, objective, _, _ = _campaign_row(con, campaign)
        df, libraries = _scored_history(con, cid, objective)
        has_scores = con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ingest_scores'"
                                 ).fetchone()
        columns = [r[0] for r in con.execute("SELECT DISTINCT score_column FROM ingest_scores WHERE campaign_id = ? "
                                             "ORDER BY score_column", (cid,))] if has_scores else []
    finally:
        con.close()
    return df, {"objective": objective, "libraries": libraries, "score_name": " / ".join(columns) or "score"}


def history(db_path: str | Path, campaign: str) -> pd.DataFrame:
    """All proposals of a campaign with their measurements.

    Returns
    -------
    pandas.DataFrame
        One row per proposal: ``round`` (from :data:`FIRST_ROUND`), ``rank``, ``gene``, ``score``, ``uncertainty``,
        ``rationale``, ``designer``, ``measured`` (value or NaN), ``reward`` (hit-likeness of the
        measured value under the campaign's objective: on the library scale of the file it came
        from when that file held a library, else on the scale of all measured proposals; see
        :mod:`scagents.campaign.progress`) and ``hit`` (``reward`` ≥ :data:`HIT_THRESHOLD`).
    """
    return _history(db_path, campaign)[0].drop(columns=["ingest_sha", "random_share"])


def _progress(h: pd.DataFrame, meta: dict) -> dict:
    m = h["measured"].notna()
    per = round_progress(h)
    return {"rounds": per, "scale": scale_line(meta["libraries"], h.loc[m, "ingest_sha"],
                                               h.loc[m, "measured"].to_numpy(float), meta["score_name"]),
            "random_reference": (reference_line(meta["libraries"], h.loc[m, "ingest_sha"]) if m.any() else
                                 "random reference: nothing measured yet."),
            "lines": round_lines(per)}


def campaign_progress(db_path: str | Path, campaign: str) -> dict:
    """Hits per round of a campaign and the random expectation (see :mod:`scagents.campaign.progress`).

    Returns
    -------
    dict
        ``rounds`` (a DataFrame: ``round``, ``proposed``, ``measured``, ``hits``, ``hits_so_far``,
        ``expected_random``, ``expected_random_so_far`` — NaN where no library gives a random
        reference — ``mean_reward``, ``best_reward``), ``scale`` (one line: the library scale of which
        file, or the measured proposals' scale), ``random_reference`` (one line) and ``lines`` (one
        sentence per round).
    """
    return _progress(*_history(db_path, campaign))


def campaign_info(db_path: str | Path, campaign: str) -> dict:
    """Summary of a campaign: goal, objective, kind, candidates, the stored prior's source
    (``"prior"``, ``None`` when none), per-round progress (``rounds``: proposed, measured, hits,
    hits so far, the random expectation — ``None`` when unknown — and mean and best hit-likeness)
    and the ``scale``, ``random_reference`` and per-round ``progress`` lines of
    :func:`campaign_progress`."""
    con = _connect(db_path, campaign)
    try:
        cid, name, goal, objective, kind, _ = _campaign_row(con, campaign)
        n_cand = con.execute("SELECT COUNT(*) FROM candidates WHERE campaign_id = ?", (cid,)).fetchone()[0]
        n_ing = con.execute("SELECT COUNT(*) FROM ingests WHERE campaign_id = ?", (cid,)).fetchone()[0]
        src = con.execute("SELECT source FROM priors WHERE campaign_id = ? LIMIT 1", (cid,)).fetchone()
    finally:
        con.close()
    prog = campaign_progress(db_path, campaign)
    per = prog["rounds"].astype(object).where(prog["rounds"].notna(), None)
    return {"name": name, "goal": goal, "objective": objective_name(objective), "kind": kind, "n_candidates": int(n_cand),
            "n_ingests": int(n_ing), "prior": src[0] if src else None, "rounds": per.to_dict("records"),
            "scale": prog["scale"], "random_reference": prog["random_reference"], "progress": prog["lines"]}


def list_campaigns(db_path: str | Path) -> list[str]:
    """Names of the campaigns in a ledger (none when the ledger does not exist yet)."""
    if not Path(db_path).exists():
        return []
    con = _connect(db_path)
    try:
        return [r[0] for r in con.execute("SELECT name FROM campaigns ORDER BY name")]
    finally:
        con.close()


def _summary_hits(h: pd.DataFrame) -> tuple[int, str, str]:
    """Measured genes, hits found (with the random expectation, as ``campaign`` counts them) and the
    best measured gene of a :func:`_scored_history` table, for :func:`campaign_summaries`."""
    m = h[h["measured"].notna()]
    if not len(m):
        return 0, "-", "-"
    last = round_progress(h).iloc[-1]
    exp = last["expected_random_so_far"]
    hits = f"{int(last['hits_so_far'])} " + (f"(random {exp:.2f})" if np.isfinite(exp) else "(no random ref.)")
    top = m.loc[m["reward"].idxmax()]  # best under the campaign's reward, on the scale ``campaign`` uses
    return len(m), hits, f"{top['gene']} ({top['measured']:+.3g})"


def campaign_summaries(db_path: str | Path) -> list[dict]:
    """One summary row per campaign of a ledger, read without modifying the file.

    Returns
    -------
    list[dict]
        ``campaign``, ``goal``, ``rounds``, ``proposed``, ``measured``, ``hits`` (measured genes with
        hit-likeness ≥ :data:`HIT_THRESHOLD` and, in brackets, the hits random batches of the same
        sizes are expected to hold, or ``no random ref.`` when no library gives one), ``best`` (the
        measured gene of highest hit-likeness, with its value) and ``updated`` (time of the last
        round or ingest), ordered by name. Hits and best are scored as :func:`campaign_progress`
        scores them: on the library scale of the file a value came from when it held a library, else
        on the measured proposals' scale.

    Raises
    ------
    CampaignError
        The file is not a campaign ledger.
    """
    from datetime import datetime

    try:
        con = sqlite3.connect(f"file:{Path(db_path).resolve()}?mode=ro", uri=True)
        try:
            camps = con.execute("SELECT id, name, goal, objective, created FROM campaigns "
                                "ORDER BY name").fetchall()
            rows = []
            for cid, name, goal, objective, created in camps:
                n_rounds, last_round = con.execute(
                    "SELECT COUNT(*), MAX(created) FROM rounds WHERE campaign_id = ?", (cid,)).fetchone()
                n_prop = con.execute("SELECT COUNT(*) FROM proposals WHERE campaign_id = ?",
                                     (cid,)).fetchone()[0]
                last_ingest = con.execute("SELECT MAX(created) FROM ingests WHERE campaign_id = ?",
                                          (cid,)).fetchone()[0]
                h, _ = _scored_history(con, cid, objective)
                n_meas, hits, best = _summary_hits(h)
                updated = max(t for t in (created, last_round, last_ingest) if t is not None)
                rows.append({"campaign": name, "goal": goal, "rounds": int(n_rounds),
                             "proposed": int(n_prop), "measured": n_meas, "hits": hits, "best": best,
                             "updated": datetime.fromtimestamp(updated).isoformat(
                                 sep=" ", timespec="seconds")})
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:  # not SQLite, or no campaigns table
        raise CampaignError(f"{str(db_path)!r} is not a campaign ledger ({exc}); pass the --db "
                            "file that `scagents next` wrote.") from None
    return rows


_OBJECTIVE_WORDS = {"abs": "|score − median|", "increase": "score above the median",
                    "decrease": "score below the median"}



def _campaign_figure(h: pd.DataFrame, campaign: str, objective: str, *, n_labels: int = 8,
                     score_rule: str | None = None, scale: str | None = None,
                     expected: pd.Series | None = None):
    """The campaign progress figure of a :func:`history` table (see :func:`plot_campaign`).

    ``scale`` is the short line saying which scale the hit-likeness is on (``None``: the measured
    proposals'); ``expected`` the cumulative hits expected of random batches by round (``None`` or
    all NaN: there is no random reference, and the hits panel says so).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 3, figsize=(13, 4.0), gridspec_kw={"width_ratios": [1.6, 1, 1]})
    m = h[h["measured"].notna()].reset_index(drop=True)
    rounds = sorted(int(r) for r in h["round"].unique()) or [FIRST_ROUND]
    if len(m):
        y = m["reward"].to_numpy(float)
        x = m["round"].to_numpy(float) + np.random.default_rng(0).uniform(-0.15, 0.15, len(m))
        axes[0].scatter(x, y, s=14, color="#5d6d7e", alpha=0.8, label="measured gene")
        top = np.argsort(-y, kind="stable")[:n_labels]
        axes[0].scatter(x[top], y[top], s=22, color="#c0392b", label=f"top {len(top)} (labelled)")
        span = float(np.ptp(y)) or 1.0
        placed: dict[int, list[float]] = {}
        for i in sorted(top, key=lambda i: -y[i]):  # push a label down while it would overlap
            r = int(m["round"].iloc[i])
            ty = float(y[i])
            while any(abs(ty - p) < 0.06 * span for p in placed.get(r, [])):
                ty -= 0.06 * span
            placed.setdefault(r, []).append(ty)
            axes[0].annotate(str(m["gene"].iloc[i]), (x[i], y[i]), xytext=(r + 0.22, ty),
                             fontsize=7, va="center",
                             arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "#7f8c8d",
                                         "shrinkA": 0, "shrinkB": 3})
        axes[0].axhline(HIT_THRESHOLD, color="#c0392b", ls="--", lw=0.8,
                        label=f"hit threshold ({HIT_THRESHOLD:g})")
        axes[0].legend(frameon=False, fontsize=7, loc="best")
        done = sorted(int(r) for r in m["round"].unique())  # rounds with results: a waiting round is no zero
        hits = (m.assign(hit=y >= HIT_THRESHOLD).groupby("round")["hit"].sum()
                .reindex(done, fill_value=0).cumsum())
        axes[1].step(hits.index, hits.to_numpy(), where="mid", color="#c0392b", marker="o", label="this campaign")
        top_y = float(hits.max())
        exp = expected.reindex(done) if expected is not None else None
        if exp is not None and exp.notna().any():
            exp = exp.dropna()
            axes[1].plot(exp.index, exp.to_numpy(), ls="--", color="#95a5a6", marker=".",
                         label="random batches (expected)")
            top_y = max(top_y, float(exp.max()))
        axes[1].legend(frameon=False, fontsize=7, loc="upper left")
        axes[1].yaxis.set_major_locator(MaxNLocator(integer=True))
        axes[1].set_ylim(0, max(1.0, top_y) * 1.15)  # a count: whole ticks even with no hit yet
        per = m.loc[m.groupby("round")["reward"].idxmax(), ["round", "gene", "reward"]]
        best = per.set_index("round")["reward"].cummax()
        axes[2].plot(best.index, best.to_numpy(), marker="o", color="#c0392b")
        axes[2].set_ylim(0, max(float(best.max()), HIT_THRESHOLD) * 1.15)
        prev = -np.inf
        for r, row in per.set_index("round").iterrows():
            if best[r] > prev:  # this round set a new best: name the gene
                prev = best[r]
                axes[2].annotate(str(row["gene"]), (r, best[r]), xytext=(4, -10),
                                 textcoords="offset points", fontsize=7)
    else:
        axes[0].text(0.5, 0.5, "no measurements yet", ha="center", transform=axes[0].transAxes)
    ylabel = (f"hit-likeness: {_OBJECTIVE_WORDS.get(objective, objective)}\n"
              + ("in robust SDs (median, SD of the measured genes)" if scale is None else
                 "in robust SDs (median, SD of the screen's library)"))
    title = "\n".join([f"{campaign}: every measured proposal"] + [t for t in (score_rule, scale) if t]
                      + ([] if scale else ["scale: measured proposals only"]))
    axes[0].set_title(title, fontsize=9)
    axes[0].set(xlabel="round", ylabel=ylabel)
    known = expected is not None and expected.notna().any()
    axes[1].set(xlabel="round", ylabel=f"hits so far (hit-likeness ≥ {HIT_THRESHOLD:g})")
    if known or not len(m):
        axes[1].set_title("hits found")
    else:
        axes[1].set_title("hits found\n(no random reference: no library file ingested)", fontsize=9)
    axes[2].set(xlabel="round", ylabel="best hit-likeness so far",
                title="best so far (label: the gene)")
    measured_rounds = set(m["round"].astype(int))
    waiting = [r for r in rounds if r not in measured_rounds and r in set(h["round"].astype(int))]
    for ax in axes:
        for r in waiting:  # proposed, results not ingested yet: say so where the round's points would be
            ax.axvspan(r - 0.5, r + 0.5, color="#ecf0f1", zorder=0)
            ax.text(r, 0.5, "not measured yet", transform=ax.get_xaxis_transform(), rotation=90,
                    ha="center", va="center", fontsize=7, color="#7f8c8d")
        ax.set_xlim(rounds[0] - 0.5, rounds[-1] + 0.5)
        ax.set_xticks(rounds if len(rounds) <= 12 else
                      [int(t) for t in MaxNLocator(integer=True).tick_values(rounds[0], rounds[-1])])
    fig.tight_layout()
    return fig


def plot_campaign(db_path: str | Path, campaign: str, path: str | Path) -> Path:
    """Plot a campaign's progress to ``path`` (PNG), rounds as integers: hit-likeness of every
    measured proposal by round (the 8 best labelled with their gene, the hit threshold
    :data:`HIT_THRESHOLD` dashed; the title names the scale: the library's or the measured
    proposals'), the number of hits found so far with the hits random batches of the same sizes are
    expected to find (dashed grey; only when a library file was ingested, else the panel says there
    is no random reference), and the best hit-likeness so far (labelled with the gene that set it).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    con = _connect(db_path, campaign)
    try:
        cid, objective = (lambda row: (row[0], row[3]))(_campaign_row(con, campaign))
        rules = [r[0] for r in con.execute("SELECT DISTINCT rule FROM ingest_scores WHERE campaign_id = ? AND "
                                           "rule != '' ORDER BY rule", (cid,))]
    finally:
        con.close()
    rule = rules[0] if len(rules) == 1 else ("scores from several rules: " + "; ".join(rules) if rules else None)
    h, meta = _history(db_path, campaign)
    used = h.loc[h["measured"].notna(), "ingest_sha"]
    libs = [meta["libraries"][s] for s in pd.unique(used) if s in meta["libraries"]]
    n_own = int((~used.isin(meta["libraries"].keys())).sum())
    if len(libs) == 1 and not n_own:
        scale = f"scale: library of {libs[0].n_genes:,} genes ({libs[0].name})"
    elif libs:
        scale = (f"scale: per file: {', '.join(f'library of {lib.n_genes:,} genes ({lib.name})' for lib in libs)}"
                 + (f"; measured proposals only for {n_own} values" if n_own else ""))
    else:
        scale = None
    per = round_progress(h).set_index("round")
    fig = _campaign_figure(h, campaign, objective, score_rule=rule, scale=scale,
                           expected=per["expected_random_so_far"])
    import matplotlib.pyplot as plt

    out = Path(path)
    from scagents._atomic import atomic_path

    with atomic_path(out) as tmp:  # a killed process never leaves half a plot
        fig.savefig(tmp, dpi=110, format=out.suffix.lstrip(".") or "png")
    plt.close(fig)
    return out
