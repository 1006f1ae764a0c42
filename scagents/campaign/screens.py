"""Pooled CRISPR screen read-outs (``../shared/data/screens``) and the retrospective protocol.

Protocol (BioDiscoveryAgent / GeneDisco): per round a designer picks ``batch`` genes, sees the
scores of those genes only, and is scored by the hit ratio = hits found / all hits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from scagents.campaign.acquisition import Designer, hit_likeness
from scagents.campaign.features import default_data_dir
from scagents.data import read_hits
from scagents.errors import DataError, DataFileError

__all__ = ["Screen", "load_screen", "load_screen_file", "screen_hits", "SCREENS", "retrospective_picks",
           "run_retrospective"]

SCREENS = ("IFNG", "IL2", "Sanchez21", "Scharenberg22", "Steinhart_crispra_GD2_D22")


@dataclass
class Screen:
    """One screen: per-gene ``scores`` (index = upper-case gene), ``hits`` and the task text."""

    name: str
    scores: pd.Series
    hits: frozenset
    task: dict


def load_screen(name: str, data_dir: str | Path | None = None) -> Screen:
    """Load the shared screen ``name``: ``ground_truth_<name>.csv``, ``topmovers_<name>.npy`` and
    ``task_<name>.json`` under ``<data>/screens`` (see :func:`load_screen_file`).

    Raises
    ------
    DataFileError
        If a file is missing, or the hit list is not a plain string array (pickled object arrays
        are refused, see :func:`scagents.data.load_npy`).
    """
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    if root is None:
        raise DataFileError("No shared data folder found: pass data_dir= or set SCAGENTS_DATA.")
    sdir = root / "screens" if (root / "screens").exists() else root
    return load_screen_file(sdir / f"ground_truth_{name}.csv")


def load_screen_file(path: str | Path) -> Screen:
    """Load a screen in the shared format from its ``ground_truth_<NAME>.csv`` (columns gene, score).

    The hit list is ``topmovers_<NAME>.npy`` beside it (an array of gene symbols, read by
    :func:`scagents.data.read_hits`, which refuses pickled object arrays) and the task text ``task_<NAME>.json`` (optional). Duplicate gene rows keep the first;
    hits not among the scored genes are dropped.

    Raises
    ------
    DataFileError
        The score file or the hit list is missing, or the hit list is not a plain string array.
    DataError
        The score table has fewer than two columns or no numeric score.
    """
    import json

    gt = Path(path)
    stem = gt.stem.removeprefix("ground_truth_")
    tm = gt.with_name(f"topmovers_{stem}.npy")
    for p in (gt, tm):
        if not p.exists():
            raise DataFileError(f"Screen file {p} is absent; a screen needs ground_truth_<NAME>.csv (gene,score) "
                                f"and topmovers_<NAME>.npy (hit gene symbols) side by side (shared screens: {SCREENS}).")
    df = pd.read_csv(gt)
    if df.shape[1] < 2:
        raise DataError(f"Screen file {gt} needs two columns, gene and score; it has {list(df.columns)}.")
    genes = df.iloc[:, 0].astype(str).str.upper()
    scores = pd.Series(pd.to_numeric(df.iloc[:, 1], errors="coerce").to_numpy(), index=genes, name=stem)
    scores = scores[~scores.index.duplicated()].dropna()
    if scores.empty:
        raise DataError(f"Screen file {gt} has no numeric score in its second column.")
    hits = frozenset(g.upper() for g in read_hits(tm)) & set(scores.index)  # refuses pickled arrays
    tpath = gt.with_name(f"task_{stem}.json")
    task = json.loads(tpath.read_text()) if tpath.exists() else {}
    return Screen(stem, scores, hits, task)


def screen_hits(screen: Screen, objective: str = "either") -> np.ndarray:
    """Hit mask over ``screen.scores`` under an objective, defined as ``next`` defines rewards.

    ``"either"`` (or ``"abs"``): every gene of the hit list; ``"increase"``: hits whose score is
    above the screen's median (the read-out goes up); ``"decrease"``: below it.
    """
    hit = screen.scores.index.isin(list(screen.hits))
    if objective in ("either", "abs"):
        return hit
    med = float(np.median(screen.scores.to_numpy()))
    if objective == "increase":
        return hit & (screen.scores.to_numpy() > med)
    if objective == "decrease":
        return hit & (screen.scores.to_numpy() < med)
    raise DataError(f"Unknown objective {objective!r}; use increase, decrease or either.")


def retrospective_picks(designer: Designer, X: np.ndarray, scores: np.ndarray, *, n_rounds: int = 5,
                        batch: int = 128, objective: str = "either",
                        reference: tuple[float, float] | None = None) -> list[np.ndarray]:
    """Run the retrospective closed loop; the indices picked in each round, in pick order.

    The designer only ever sees the scores of the candidates it picked, in pick order, converted to
    :func:`hit_likeness` over the picked scores — exactly what ``scagents next`` gives it after
    those scores were ingested. With ``reference`` (centre, robust SD), hit-likeness is measured on that
    fixed scale (a screen's whole library) instead of the picked scores' own median and spread.
    """
    measured: list[int] = []
    out = []
    center, scale = reference if reference is not None else (None, None)
    for r in range(n_rounds):
        m = np.asarray(measured, dtype=np.int64)
        rewards = hit_likeness(scores[m], objective, center=center, scale=scale) if len(m) else np.zeros(0)
        picks = designer.propose(X, m, rewards, batch, round_index=r, n_rounds=n_rounds)
        idx = picks["index"].to_numpy(np.int64)
        measured.extend(int(i) for i in idx)
        out.append(idx)
    return out


def run_retrospective(designer: Designer, X: np.ndarray, scores: np.ndarray, is_hit: np.ndarray, *,
                      n_rounds: int = 5, batch: int = 128, objective: str = "either") -> list[float]:
    """Run the retrospective closed loop and return the cumulative hit ratio after each round
    (see :func:`retrospective_picks`)."""
    total = max(int(is_hit.sum()), 1)
    picks = retrospective_picks(designer, X, scores, n_rounds=n_rounds, batch=batch, objective=objective)
    seen = np.cumsum([int(is_hit[p].sum()) for p in picks])
    return [float(v) / total for v in seen]
