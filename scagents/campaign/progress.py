"""Hits of a campaign on a fixed scale, and what random batches would have found.

A results file that holds more genes than the campaign proposed (a screen's whole library, e.g. a
MAGeCK gene summary of ~19,000 genes) gives the distribution the proposals are drawn from. Its
median and robust SD (``1.4826·MAD``) of the score are stored per file at ingest
(:class:`LibraryStats`), with the number of its genes whose hit-likeness under the campaign's
objective reaches :data:`HIT_THRESHOLD`. Then:

* **Scale rule (one per value):** a measurement is scored on the library scale of the file it was
  ingested from; a measurement from a file without a library is scored on the scale of the
  measured proposals only (their median and robust SD, which moves as rounds are added). With one
  library file every value shares one fixed scale, so a gene's hit status does not change when
  later rounds are ingested.
* **Random reference:** a random batch of the same size, drawn from the candidates, is expected to
  hold ``batch × share`` hits, ``share`` = the file's candidates that are hits / its candidates
  (for a campaign whose candidates are the library, library hits / library genes). A round's
  expectation is the sum of ``share`` over its measured genes (each with the share of its file);
  it is unknown when one of them comes from a file without a library.

The functions here compute from tables; :mod:`scagents.campaign.ledger` stores and reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from scagents.campaign.acquisition import hit_likeness, robust_scale

__all__ = ["HIT_THRESHOLD", "LIBRARY_MIN_GENES", "LibraryStats", "library_stats", "score_measurements",
           "round_progress", "scale_line", "reference_line", "round_lines"]

HIT_THRESHOLD = 2.0
"""Hit-likeness (robust SDs from the median) at which a measured gene counts as a hit."""

LIBRARY_MIN_GENES = 100
"""Fewest genes (with a finite score) a results file must hold, beyond the proposals it measures,
for its distribution to be taken as the library's (a smaller file: the measured proposals' scale)."""


@dataclass(frozen=True)
class LibraryStats:
    """The score distribution of one ingested results file that holds a library.

    Attributes
    ----------
    sha256, path
        The file's content hash and its path as ingested.
    n_genes
        Genes of the file with a finite score.
    median, scale
        Median and robust SD (``1.4826·MAD``; the SD where the MAD is 0) of their scores.
    n_hits
        Genes of the library whose hit-likeness under the campaign's objective, on this scale, is
        at least ``threshold``.
    n_candidates, n_candidate_hits
        The same two counts restricted to the campaign's candidates (the genes a random batch is
        drawn from).
    objective, threshold
        The objective and hit threshold the hits were counted with.
    """

    sha256: str
    path: str
    n_genes: int
    median: float
    scale: float
    n_hits: int
    n_candidates: int
    n_candidate_hits: int
    objective: str
    threshold: float = HIT_THRESHOLD

    @property
    def share(self) -> float | None:
        """Share of hits among the candidates in the file (``None`` when it was counted with
        another threshold than :data:`HIT_THRESHOLD` or holds no candidate)."""
        if self.threshold != HIT_THRESHOLD or self.n_candidates == 0:
            return None
        return self.n_candidate_hits / self.n_candidates

    @property
    def name(self) -> str:
        """The file name (without its folder)."""
        return Path(self.path).name


def library_stats(genes: pd.Series, values: pd.Series, *, objective: str, candidates: set[str],
                  n_proposed_in_file: int, sha256: str = "", path: str = "") -> LibraryStats | None:
    """The library distribution of a results file, or ``None`` when the file is no library.

    Parameters
    ----------
    genes, values
        The file's rows: gene symbols and signed scores (NaN where not a finite number). Genes are
        compared case-insensitively; a gene listed twice counts once (its first finite score).
    objective
        The campaign's objective (``"increase"``, ``"decrease"`` or ``"abs"``).
    candidates
        The campaign's candidates.
    n_proposed_in_file
        How many of the file's genes the campaign has proposed.
    sha256, path
        Stored with the result.

    Returns
    -------
    LibraryStats or None
        ``None`` unless the file holds at least :data:`LIBRARY_MIN_GENES` genes with a finite score
        and more than the proposed genes it measures.
    """
    v = pd.to_numeric(pd.Series(values).reset_index(drop=True), errors="coerce").astype(float)
    g = pd.Series(genes).reset_index(drop=True).astype(str).str.upper()
    ok = np.isfinite(v.to_numpy())
    t = pd.DataFrame({"gene": g[ok], "value": v[ok]}).drop_duplicates("gene")
    if len(t) < LIBRARY_MIN_GENES or len(t) <= n_proposed_in_file:
        return None
    x = t["value"].to_numpy(np.float64)
    med = float(np.median(x))
    scale = robust_scale(x, med)
    hit = hit_likeness(x, objective, center=med, scale=scale) >= HIT_THRESHOLD
    cand = t["gene"].isin({c.upper() for c in candidates}).to_numpy()
    return LibraryStats(sha256, path, len(t), med, scale, int(hit.sum()), int(cand.sum()), int(hit[cand].sum()),
                        objective, HIT_THRESHOLD)


def score_measurements(values: np.ndarray, shas: pd.Series, libraries: dict[str, LibraryStats],
                       objective: str) -> tuple[np.ndarray, np.ndarray]:
    """Hit-likeness of measured values by the scale rule of the module docstring.

    Parameters
    ----------
    values
        Measured values.
    shas
        For each value, the sha256 of the file it was ingested from.
    libraries
        Library statistics by file sha256 (files without a library absent).
    objective
        The campaign's objective.

    Returns
    -------
    tuple[numpy.ndarray, numpy.ndarray]
        The hit-likeness of every value and, for each, its file's share of hits among the
        candidates (NaN for values scored on the measured proposals' scale).
    """
    v = np.asarray(values, dtype=np.float64)
    shas = pd.Series(shas).reset_index(drop=True)
    reward = np.full(len(v), np.nan)
    share = np.full(len(v), np.nan)
    own = np.array([s in libraries for s in shas], dtype=bool)
    for sha, idx in shas[own].groupby(shas[own]).groups.items():
        lib = libraries[sha]
        rows = np.asarray(idx, dtype=np.int64)
        reward[rows] = hit_likeness(v[rows], objective, center=lib.median, scale=lib.scale)
        share[rows] = np.nan if lib.share is None else lib.share
    if (~own).any():
        reward[~own] = hit_likeness(v, objective)[~own]  # the measured proposals' median and robust SD
    return reward, share


def round_progress(h: pd.DataFrame) -> pd.DataFrame:
    """Per round: proposals, measurements, hits and the random expectation.

    Parameters
    ----------
    h
        A :func:`~scagents.campaign.ledger.history` table (``round``, ``gene``, ``measured``,
        ``reward``, ``random_share``).

    Returns
    -------
    pandas.DataFrame
        ``round``, ``proposed``, ``measured``, ``hits`` (measured genes with hit-likeness ≥
        :data:`HIT_THRESHOLD`), ``hits_so_far``, ``expected_random`` (sum of the measured genes'
        random share; NaN when one of them has none, or nothing is measured), ``expected_random_so_far``
        (NaN from the first round without an expectation on), ``mean_reward`` and ``best_reward``.
        Rounds without any measurement count no hits and add nothing to the sums.
    """
    m = h["measured"].notna()
    t = pd.DataFrame({"round": h["round"].astype(int), "measured": m,
                      "hit": m & (h["reward"] >= HIT_THRESHOLD), "reward": h["reward"],
                      "share": h["random_share"].where(m, 0.0), "no_share": m & h["random_share"].isna()})
    per = t.groupby("round").agg(proposed=("round", "size"), measured=("measured", "sum"), hits=("hit", "sum"),
                                 expected_random=("share", "sum"), unknown=("no_share", "any"),
                                 mean_reward=("reward", "mean"), best_reward=("reward", "max")).reset_index()
    per["measured"] = per["measured"].astype(int)
    per["hits"] = per["hits"].astype(int)
    per["hits_so_far"] = per["hits"].cumsum()
    per.loc[per["unknown"] | (per["measured"] == 0), "expected_random"] = np.nan
    so_far = per["expected_random"].fillna(0.0).cumsum()
    broken = (per["unknown"]).cumsum() > 0  # a round without an expectation leaves every later sum unknown
    per["expected_random_so_far"] = so_far.where(~broken)
    return per.drop(columns="unknown")


def _genes(n: int) -> str:
    return f"{n:,} gene{'s' if n != 1 else ''}"


def scale_line(libraries: dict[str, LibraryStats], used: pd.Series, measured: np.ndarray,
               score_name: str = "score") -> str:
    """One line saying which scale the hit-likeness of the measured proposals is on.

    Parameters
    ----------
    libraries
        Library statistics by file sha256.
    used
        For each measured value, the sha256 of its file.
    measured
        The measured values (for the measured-only scale).
    score_name
        What the score is (e.g. ``"neg|lfc"``), for the line.
    """
    used = pd.Series(used).reset_index(drop=True)
    if len(used) == 0:
        return "scale: nothing measured yet."
    counts = used.value_counts(sort=False)
    libs = [(libraries[s], int(n)) for s, n in counts.items() if s in libraries]
    n_own = int(sum(n for s, n in counts.items() if s not in libraries))
    if not libs:
        v = np.asarray(measured, dtype=np.float64)
        med = float(np.median(v))
        return (f"scale: measured proposals only (median {med:.3g}, robust SD {robust_scale(v, med):.3g} of the "
                f"{len(v)} measured {score_name} values; it moves as rounds are added): no ingested file held a "
                f"library (≥ {LIBRARY_MIN_GENES} genes beyond the proposals); ingest the screen's whole gene "
                "summary for a fixed scale and a random reference.")
    if len(libs) == 1 and not n_own:
        lib = libs[0][0]
        return (f"scale: library of {_genes(lib.n_genes)} ({lib.name}): median {lib.median:.3g}, robust SD "
                f"{lib.scale:.3g} (1.4826·MAD) of {score_name}; fixed across rounds.")
    parts = [f"library of {_genes(lib.n_genes)} ({lib.name}; median {lib.median:.3g}, robust SD {lib.scale:.3g}) "
             f"for {n} value{'s' if n != 1 else ''}" for lib, n in libs]
    if n_own:
        parts.append(f"measured proposals only for {n_own} value{'s' if n_own != 1 else ''} (from files without a "
                     "library)")
    return "scale: per results file (each value on the scale of the file it came from): " + "; ".join(parts) + "."


def reference_line(libraries: dict[str, LibraryStats], used: pd.Series) -> str:
    """One line saying what a random batch is expected to find, or why there is no such reference."""
    used = pd.Series(used).reset_index(drop=True)
    libs = [libraries[s] for s in pd.unique(used) if s in libraries]
    if not libs:
        return "no random reference: no ingested file held a library to count hits in."
    lines = []
    for lib in libs:
        if lib.share is None:
            lines.append(f"{lib.name}: hits counted with threshold {lib.threshold:g}, not {HIT_THRESHOLD:g}")
            continue
        if lib.n_candidates == lib.n_genes:
            lines.append(f"{lib.n_hits:,} of the {_genes(lib.n_genes)} of {lib.name} are hits "
                         f"(share {100 * lib.share:.2f}%)")
        else:
            lines.append(f"{lib.n_candidate_hits:,} of the {_genes(lib.n_candidates)} of {lib.name} that are "
                         f"candidates are hits (share {100 * lib.share:.2f}%; the whole library: {lib.n_hits:,} "
                         f"of {lib.n_genes:,})")
    missing = used[~used.isin(libraries.keys())]
    tail = (f"; {len(missing)} value(s) come from files without a library, so rounds holding them have no "
            "random expectation" if len(missing) else "")
    return ("random reference: a random batch of the same size drawn from the candidates is expected to hold "
            f"batch × share hits (hit-likeness ≥ {HIT_THRESHOLD:g}); " + "; ".join(lines) + tail + ".")


def round_lines(per: pd.DataFrame) -> list[str]:
    """One sentence per round of a :func:`round_progress` table: hits found and the random expectation."""
    out = []
    for r in per.itertuples():
        if r.measured == 0:
            out.append(f"round {r.round}: {r.proposed} proposed, not measured yet.")
            continue
        line = (f"round {r.round}: {r.measured} of {r.proposed} measured, {r.hits} hit{'s' if r.hits != 1 else ''}")
        if np.isfinite(r.expected_random):
            line += f" (random batch of {r.measured}: {r.expected_random:.2f} expected)"
        line += f"; so far {r.hits_so_far} hit{'s' if r.hits_so_far != 1 else ''}"
        if np.isfinite(r.expected_random_so_far):
            ratio = (f", {r.hits_so_far / r.expected_random_so_far:.1f}× random"
                     if r.expected_random_so_far > 0 else "")
            line += f" vs {r.expected_random_so_far:.2f} expected of random batches{ratio}."
        else:
            line += " (no random reference)."
        out.append(line)
    return out
