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
from scagents.errors import DataFileError

__all__ = ["Screen", "load_screen", "SCREENS", "run_retrospective"]

SCREENS = ("IFNG", "IL2", "Sanchez21", "Scharenberg22", "Steinhart_crispra_GD2_D22")


@dataclass
class Screen:
    """One screen: per-gene ``scores`` (index = upper-case gene), ``hits`` and the task text."""

    name: str
    scores: pd.Series
    hits: frozenset
    task: dict


def load_screen(name: str, data_dir: str | Path | None = None) -> Screen:
    """Load ``ground_truth_<name>.csv``, ``topmovers_<name>.npy`` and ``task_<name>.json``.

    Duplicate gene rows keep the first; hits not among the scored genes are dropped.

    Raises
    ------
    DataFileError
        If a file is missing, or the hit list is not a plain string array (pickled object arrays
        are refused, see :func:`scagents.data.load_npy`).
    """
    import json

    root = Path(data_dir) if data_dir is not None else default_data_dir()
    if root is None:
        raise DataFileError("No shared data folder found: pass data_dir= or set SCAGENTS_DATA.")
    sdir = root / "screens" if (root / "screens").exists() else root
    gt, tm = sdir / f"ground_truth_{name}.csv", sdir / f"topmovers_{name}.npy"
    for p in (gt, tm):
        if not p.exists():
            raise DataFileError(f"Screen file {p} is absent; screens available: {SCREENS}.")
    df = pd.read_csv(gt)
    genes = df.iloc[:, 0].astype(str).str.upper()
    scores = pd.Series(pd.to_numeric(df.iloc[:, 1], errors="coerce").to_numpy(), index=genes, name=name)
    scores = scores[~scores.index.duplicated()].dropna()
    hits = frozenset(g.upper() for g in read_hits(tm)) & set(scores.index)
    tpath = sdir / f"task_{name}.json"
    task = json.loads(tpath.read_text()) if tpath.exists() else {}
    return Screen(name, scores, hits, task)


def run_retrospective(designer: Designer, X: np.ndarray, scores: np.ndarray, is_hit: np.ndarray, *,
                      n_rounds: int = 5, batch: int = 128, objective: str = "abs") -> list[float]:
    """Run the retrospective closed loop and return the cumulative hit ratio after each round.

    The designer only ever sees the scores of the candidates it picked (converted to
    :func:`hit_likeness` over the picked scores).
    """
    measured: list[int] = []
    total = max(int(is_hit.sum()), 1)
    out = []
    for r in range(n_rounds):
        m = np.asarray(measured, dtype=np.int64)
        rewards = hit_likeness(scores[m], objective) if len(m) else np.zeros(0)
        picks = designer.propose(X, m, rewards, batch, round_index=r, n_rounds=n_rounds)
        measured.extend(int(i) for i in picks["index"])
        out.append(float(is_hit[np.asarray(measured)].sum()) / total)
    return out
