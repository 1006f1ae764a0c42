"""Evidence before effect: can a change be told from noise, and how far can a predicted change be trusted?

Two questions, answered for every prediction scagents makes:

**Is there an effect at all?** :func:`noise_floor` bootstraps the cells of an observed perturbation
and of the control (resampled with replacement, each group on its own) and returns, per gene, the
standard error of the change of the mean and a *noise floor*: that standard error times the
two-sided normal quantile of the Benjamini–Hochberg cut-off at false-discovery rate ``alpha`` over
the genes (the Bonferroni cut-off ``alpha / n_genes`` when no gene passes), and never below
``min_effect``. A gene's change *clears* the floor when ``|delta| ≥ floor`` (and
``> min_effect``), i.e. when its bootstrap z-test is significant after BH correction. When no
gene clears it, the honest answer is "no detectable effect" (:func:`evidence_check`). On the digital twin the
whole experiment can be repeated: a gene then clears only when it clears both in the run's cells
and in an independent replicate simulation (seed ``seed + REPLICATE_SEED_OFFSET``), so a false
call needs two independent false discoveries.

**How wide is a predicted change?** Every predicted gene change gets an interval
``prediction ± q · scale`` (:func:`interval_scale`, :func:`conformal_quantile`). ``scale`` is the
spread of the candidate predictors' predictions for that perturbation and gene, combined with the
spread of the gene's change across the training perturbations; ``q`` is the split-conformal
quantile of ``|observed − predicted| / scale`` over the calibration (validation) perturbations'
genes, the labels of one perturbation (per promoter or per guide) averaged into one unit first
(``groups``; Lei et al. 2018, "Distribution-free predictive inference for regression", normalised
residual scores), so that the intervals cover the observed change with the nominal probability
over perturbations exchangeable with the calibration ones. When the goal's perturbation was not
measured, a gene clears when its interval excludes 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["noise_floor", "REPLICATE_SEED_OFFSET", "interval_scale", "conformal_quantile", "conformal_intervals",
           "evidence_check", "cells_needed", "INTERVAL_LEVEL", "EVIDENCE_ALPHA", "N_BOOT"]

INTERVAL_LEVEL = 0.8
"""Nominal coverage of the predicted-change intervals."""
EVIDENCE_ALPHA = 0.05
"""False-discovery rate of the noise floor (Benjamini–Hochberg over genes)."""
REPLICATE_SEED_OFFSET = 10_007
"""Seed offset of the twin's replicate simulation of the control and the goal's perturbation."""
N_BOOT = 200
"""Bootstrap resamples of the noise floor."""
MAX_BOOT_CELLS = 2000
"""Cells per group used by the bootstrap (a random subset of larger groups)."""


def noise_floor(control: np.ndarray, perturbed: np.ndarray, genes: Sequence[str], *,
                n_boot: int = N_BOOT, alpha: float = EVIDENCE_ALPHA, min_effect: float = 0.01,
                seed: int = 0) -> pd.DataFrame:
    """Per-gene noise floor of an observed change, by bootstrap over cells.

    Parameters
    ----------
    control, perturbed
        Cells × genes expression (log-normalised) of the control and the perturbed cells.
    genes
        Gene names (columns).
    n_boot
        Bootstrap resamples.
    alpha
        False-discovery rate; the floor is ``z* · se`` with ``z*`` the two-sided normal quantile
        of the Benjamini–Hochberg p-value cut-off (Bonferroni's when nothing passes).
    min_effect
        Smallest change that can clear the floor.
    seed
        Seed of the resampling.

    Returns
    -------
    pandas.DataFrame
        Indexed by gene: ``observed_delta`` (perturbed − control mean), ``se`` (its standard
        error: the bootstrap variances of the two means added, the perturbed mean's never below
        the control cells' variance over the number of perturbed cells, the spread those cells
        would have with no effect), ``noise_floor`` and ``clears`` (``|observed_delta| ≥
        noise_floor``).
    """
    rng = np.random.default_rng(seed)
    c = np.asarray(control, dtype=np.float64)
    p = np.asarray(perturbed, dtype=np.float64)
    if len(c) < 2 or len(p) < 2:
        raise ValueError("the noise floor needs at least 2 control and 2 perturbed cells")
    c = c[rng.choice(len(c), MAX_BOOT_CELLS, replace=False)] if len(c) > MAX_BOOT_CELLS else c
    p = p[rng.choice(len(p), MAX_BOOT_CELLS, replace=False)] if len(p) > MAX_BOOT_CELLS else p
    delta = p.mean(0) - c.mean(0)
    # the resampled means as one product of resampling counts with the cells (the same draws as
    # indexing the cells resample by resample, without copying them 2 · n_boot times)
    w_p, w_c = np.empty((n_boot, len(p))), np.empty((n_boot, len(c)))
    for b in range(n_boot):
        w_p[b] = np.bincount(rng.integers(0, len(p), len(p)), minlength=len(p))
        w_c[b] = np.bincount(rng.integers(0, len(c), len(c)), minlength=len(c))
    var_p = (w_p @ p / len(p)).var(axis=0, ddof=1)
    var_c = (w_c @ c / len(c)).var(axis=0, ddof=1)
    # under "no effect" the perturbed cells share the control's spread: a few perturbed cells that
    # happen to agree (5 cells all at 0 of a sparse gene) must not make their mean look exact, so
    # their mean's variance is never taken below the control cells' variance over their number
    var_p = np.maximum(var_p, c.var(axis=0, ddof=1) / len(p))
    se = np.sqrt(var_p + var_c)
    m = max(len(genes), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pvals = np.where(se > 0, 2 * stats.norm.sf(np.abs(delta) / se), 1.0)
    ranked = np.sort(pvals)
    passing = np.flatnonzero(ranked <= alpha * np.arange(1, m + 1) / m)
    cutoff = ranked[passing[-1]] if passing.size else alpha / m
    z = float(stats.norm.isf(cutoff / 2))
    floor = np.maximum(z * se, min_effect)
    # BH rejections (p at most the cut-off), i.e. |delta| >= z* · se, above the minimal effect
    clears = (pvals <= cutoff) & bool(passing.size) & (np.abs(delta) > min_effect)
    return pd.DataFrame({"observed_delta": delta, "se": se, "noise_floor": floor,
                         "clears": clears}, index=pd.Index(list(genes), name="gene"))


def cells_needed(floor: pd.DataFrame, n_cells: int) -> int | None:
    """Cells per condition at which the gene closest to clearing its floor would clear it.

    The standard error shrinks as ``1 / sqrt(n)``, so ``n · (floor / |delta|)²`` cells are needed;
    ``None`` when no gene changes at all (more cells cannot help).
    """
    ratio = (floor["observed_delta"].abs() / floor["noise_floor"].clip(lower=1e-12)).max()
    if not np.isfinite(ratio) or ratio < 1e-3:
        return None
    return int(math.ceil(n_cells / ratio**2 * 1.1))


def interval_scale(candidates: np.ndarray, gene_sd: np.ndarray, *, eps: float = 1e-6
                   ) -> np.ndarray:
    """Scale of the predicted-change interval of each gene.

    Parameters
    ----------
    candidates
        ``(n_models, ..., n_genes)`` predictions of the candidate predictors.
    gene_sd
        ``(n_genes,)`` standard deviation of each gene's change across the training
        perturbations.

    Returns
    -------
    numpy.ndarray
        ``sqrt(var_models + gene_sd²) + eps``, shape ``candidates.shape[1:]``.
    """
    cand = np.asarray(candidates, dtype=np.float64)
    return np.sqrt(cand.var(axis=0) + np.asarray(gene_sd, float) ** 2) + eps


def conformal_quantile(residuals: np.ndarray, scales: np.ndarray, *,
                       level: float = INTERVAL_LEVEL,
                       groups: Sequence[Sequence[int]] | None = None) -> float:
    """Split-conformal quantile of the normalised absolute residuals ``|r| / scale``.

    Parameters
    ----------
    residuals
        ``(n_rows, ...)`` observed − predicted change of each calibration row (a validation
        label) and gene.
    scales
        The interval scale of each residual (same shape).
    level
        Nominal coverage.
    groups
        Row positions of each exchangeable calibration unit (e.g. every label of one target gene
        set and kind, :func:`scagents.perturbation.target_groups`); the scores ``|r| / scale`` of a
        unit's rows are averaged (gene by gene) into one row before ranking, so correlated labels
        of one perturbation count once. Must partition the rows. ``None``: every row is its own
        unit (with one row per group the result is the same).

    Returns
    -------
    float
        The ``ceil((n + 1) · level)``-th smallest of the ``n`` finite calibration scores (one per
        unit and gene), ``inf`` when there are too few to reach ``level``.

    Raises
    ------
    ValueError
        ``groups`` does not use every row exactly once.
    """
    s = np.abs(np.asarray(residuals, float)) / np.asarray(scales, float)
    if groups is not None:
        flat = sorted(int(i) for g in groups for i in g)
        if flat != list(range(len(s))) or any(len(g) == 0 for g in groups):
            raise ValueError(f"groups must use each of the {len(s)} calibration rows exactly once, "
                             f"got {[list(g) for g in groups]}.")
        s = np.stack([s[list(g)].mean(axis=0) for g in groups]) if len(s) else s
    s = np.sort(s.ravel())
    s = s[np.isfinite(s)]
    k = int(math.ceil((len(s) + 1) * level))
    return float(s[k - 1]) if 1 <= k <= len(s) else float("inf")


def conformal_intervals(prediction: np.ndarray, scale: np.ndarray, q: float
                        ) -> tuple[np.ndarray, np.ndarray]:
    """``(lower, upper) = prediction ∓ q · scale``."""
    pred = np.asarray(prediction, float)
    half = q * np.asarray(scale, float)
    return pred - half, pred + half


def evidence_check(table: pd.DataFrame, *, kind: str, n_cells: int | None = None,
                   inputs: Sequence[str] = (), silent_model: bool = False,
                   level: float = INTERVAL_LEVEL, alpha: float = EVIDENCE_ALPHA,
                   n_boot: int = N_BOOT, replicated: bool = False) -> dict:
    """Summarise whether any gene's change clears the noise.

    Parameters
    ----------
    table
        Indexed by gene. ``kind="observed"``: the output of :func:`noise_floor`.
        ``kind="interval"``: columns ``delta``, ``lower``, ``upper`` (a gene clears when its
        interval excludes 0).
    kind
        ``"observed"`` (the goal's perturbation was measured or simulated) or ``"interval"``.
    n_cells
        Cells per condition behind an observed floor (for the "what would be needed" sentence).
    inputs
        Milieu inputs of a twin model (named when more cells cannot help).
    silent_model
        The twin model simulated to a single all-off state.
    replicated
        ``clears`` already requires the gene to clear in an independent replicate too (twin).

    Returns
    -------
    dict
        ``kind``, ``method`` (how the floor was computed), ``detectable``, ``n_clear``,
        ``n_genes``, ``cleared`` (genes that clear, strongest first), ``needed`` (a sentence
        saying what would be needed when nothing clears, else ``""``) and ``cells_needed``.
    """
    if kind == "observed":
        clears = table["clears"].astype(bool)
        strength = (table["observed_delta"].abs() / table["noise_floor"]).where(clears, 0.0)
        method = (f"bootstrap over cells ({n_boot} resamples of the control and the perturbed "
                  f"cells): a gene's observed change clears the noise floor when |change| > "
                  f"z · s.e., z at the Benjamini–Hochberg cut-off (false-discovery rate "
                  f"{100 * alpha:.0f} % over {len(table)} genes)"
                  + ("; on the twin the gene must clear it again in an independent replicate "
                     "simulation (another seed)" if replicated else ""))
    elif kind == "interval":
        clears = (table["lower"] > 0) | (table["upper"] < 0)
        strength = table["delta"].abs().where(clears, 0.0)
        method = (f"the goal's perturbation was not measured: a gene's predicted change clears "
                  f"the noise when its calibrated {100 * level:.0f} % interval excludes 0")
    else:
        raise ValueError(f"kind must be 'observed' or 'interval', got {kind!r}")
    cleared = [str(g) for g in strength[clears].sort_values(ascending=False).index]
    needed, n_more = "", None
    if not cleared:
        if kind == "observed":
            n_more = cells_needed(table, n_cells) if n_cells else None
            parts = []
            if silent_model:
                parts.append("the model simulates every cell to one all-off state: set its milieu "
                             f"inputs ({', '.join(inputs) or 'none declared'}) with --inputs "
                             "GENE=VALUE or in the model file, or give initial states")
            if n_more is not None and not silent_model:
                parts.append(f"about {n_more} cells per condition (now {n_cells}) for the "
                             "largest change to clear the floor")
            if n_more is None and not silent_model:
                parts.append("no gene changes at all: more cells cannot help; another milieu "
                             + (f"(inputs {', '.join(inputs)}) " if inputs else "")
                             + "or another cell state where the target is active")
            elif inputs and not silent_model:
                parts.append(f"or another milieu (inputs {', '.join(inputs)}) in which the "
                             "target is active")
            needed = "To detect an effect: " + "; ".join(parts) + "."
        else:
            needed = ("To detect an effect: measure the perturbation (cells of it), or more "
                      "training perturbations related to it so that the intervals narrow.")
    return {"kind": kind, "method": method, "detectable": bool(cleared),
            "n_clear": len(cleared), "n_genes": int(len(table)), "cleared": cleared[:50],
            "needed": needed, "cells_needed": n_more}
