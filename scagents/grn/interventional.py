"""Interventional evidence for network edges: what a perturbed regulator's cells change.

A knocked-out (or knocked-down / overexpressed) regulator's downstream changes are direct evidence of
its out-edges and their sign. :func:`perturbation_effects` turns the single-target perturbed cells
of a screen into Welch t statistics (perturbed vs control, per gene); :func:`combine_evidence`
merges them with the observational regression scores by ranks, so the regulators that were perturbed
get both kinds of evidence and the others keep the regression alone.

``how="odds"`` (session 8 of ``benchmarks/grn_select.py``) adds the two kinds of evidence on a
log-odds-like scale instead of adding percentiles: on the training networks the precision of an edge
rose with the observational percentile ``u`` roughly as ``log((1 - u)⁻¹)``, and a knockout's direct
``|t|`` multiplied the odds of an edge by a factor that grew smoothly with ``|t|`` (about 2 at
``|t|`` 3–4, 5 beyond 8) whatever ``u`` was — evidence that multiplies odds, where the percentile
sum let a strong knockout shift with a weak regression score outrank the best regression edges.
:func:`regulator_prior` adds the evidence that a knocked-out gene is a regulator at all (its knockout
moves some gene).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scagents.errors import DataError

__all__ = ["COMBINE", "ancestor_gate", "combine_evidence", "control_mask", "direct_effects", "indirect_penalty",
           "orient_by_knockouts", "perturbation_effects", "regulator_prior", "transitive_reduction"]

COMBINE: tuple[str, ...] = ("sum", "mean", "product", "perturbation", "odds")
"""How :func:`combine_evidence` merges the two percentiles of a perturbed regulator's edges."""
_UP_KINDS = ("overexpression", "stimulation", "activation", "crispra")


def control_mask(obs: pd.DataFrame, key: str) -> np.ndarray:
    """Control cells: ``obs["is_control"]`` when present, else an empty / ``"control"`` ``obs[key]``."""
    if "is_control" in obs:
        return obs["is_control"].fillna(False).to_numpy(bool)
    lab = obs[key].astype(str).str.strip().str.lower()
    return lab.isin(["", "control", "non-targeting", "nan", "none"]).to_numpy()


def _moments(X, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    sub = X[rows]
    n = sub.shape[0]
    if sp.issparse(sub):
        mean = np.asarray(sub.mean(axis=0)).ravel()
        sq = np.asarray(sub.multiply(sub).mean(axis=0)).ravel()
    else:
        sub = np.asarray(sub, dtype=np.float64)
        mean = sub.mean(axis=0)
        sq = (sub**2).mean(axis=0)
    var = np.maximum(sq - mean**2, 0.0) * n / max(n - 1, 1)
    return mean, var, n


def perturbation_effects(adata, key: str = "target_genes", *, layer: str | None = None,
                         min_cells: int = 5) -> tuple[pd.DataFrame, dict[str, int]]:
    """Welch t statistics of every gene between each perturbed regulator's cells and the controls.

    Parameters
    ----------
    adata
        Cells x genes (log-normalised expression expected), control and perturbed cells together.
    key
        ``obs`` column naming the perturbed gene(s) of each cell (``"A+B"`` for combinations, which
        are skipped); control cells by :func:`control_mask`.
    layer
        Expression layer; ``None`` = ``.X``.
    min_cells
        Perturbations with fewer cells (and screens with fewer controls) are skipped.

    Returns
    -------
    (DataFrame, dict)
        Perturbed regulators x genes signed *edge* evidence: the t statistic, sign-flipped for
        loss-of-function perturbations (``obs["perturbation_type"]`` not overexpression /
        stimulation), so a positive value means "activates" and a negative one "represses"; the
        regulator's own column is 0. A gene perturbed in several ways (knocked out and
        overexpressed) gets the mean of its sign-flipped shifts over the combined standard error.
        ``attrs["delta"]`` and ``attrs["se"]`` hold those shifts and standard errors. And ``{regulator: cells}`` of the perturbations used.
    """
    if key not in adata.obs:
        raise DataError(f"No obs column {key!r} naming the perturbed genes; pass perturbations=None "
                        f"or the column that names them (obs has {list(adata.obs.columns)[:10]}).")
    genes = pd.Index(adata.var_names.astype(str))
    X = adata.layers[layer] if layer is not None else adata.X
    ctrl = control_mask(adata.obs, key)
    if ctrl.sum() < min_cells:
        return pd.DataFrame(index=pd.Index([], dtype=str), columns=genes, dtype=float), {}
    mc, vc, nc = _moments(X, np.flatnonzero(ctrl))
    lab = adata.obs[key].astype(str).to_numpy()
    kinds = (adata.obs["perturbation_type"].astype(str).str.lower().to_numpy()
             if "perturbation_type" in adata.obs else np.full(adata.n_obs, "knockout"))
    rows, deltas, ses, names, cells = [], [], [], [], {}
    for g in pd.unique(lab[~ctrl]):
        if "+" in g or g not in genes:
            continue
        parts = []  # one per perturbation kind of g (a knockout and an overexpression are separate)
        for kind in pd.unique(kinds[(lab == g) & ~ctrl]):
            idx = np.flatnonzero((lab == g) & ~ctrl & (kinds == kind))
            if idx.size < min_cells:
                continue
            mp, vp, n_p = _moments(X, idx)
            flip = 1.0 if any(k in kind for k in _UP_KINDS) else -1.0
            parts.append((flip * (mp - mc), vp / n_p + vc / nc, idx.size))
        if not parts:
            continue
        delta = np.mean([d for d, _, _ in parts], axis=0)
        se = np.sqrt(np.sum([v for _, v, _ in parts], axis=0)) / len(parts)
        t = np.where(se > 0, delta / np.where(se > 0, se, 1.0), 0.0)
        t[genes.get_loc(g)] = 0.0
        rows.append(t)
        deltas.append(delta)
        ses.append(se)
        names.append(g)
        cells[g] = int(sum(n for _, _, n in parts))
    shape = (len(rows), len(genes))
    P = pd.DataFrame(np.array(rows).reshape(shape), index=pd.Index(names), columns=genes)
    P.attrs["delta"] = np.array(deltas).reshape(shape)
    P.attrs["se"] = np.array(ses).reshape(shape)
    return P, cells


def direct_effects(P: pd.DataFrame, B: np.ndarray, regs: pd.Index, sd: np.ndarray) -> pd.DataFrame:
    """Perturbation t statistics of the shifts *not* mediated by the other regulators' shifts.

    A knockout of ``r`` shifts its direct targets and, through them, genes further down. With the
    regression ``B`` (standardised, regulators x genes) the part of gene ``g``'s shift explained by
    the shifts of its other regulators is ``Σ_{p≠r} B_pg Δ_p``; what is left, over its standard
    error, scores ``r → g`` as a direct edge.

    Parameters
    ----------
    P
        Output of :func:`perturbation_effects` (with ``attrs["delta"]`` and ``attrs["se"]``).
    B
        Standardised regression coefficients, regulators x genes (columns as ``P``).
    regs
        Names of the rows of ``B``.
    sd
        Standard deviation of every gene (the scale ``B`` is standardised with).
    """
    sd_safe = np.where(sd > 0, sd, 1.0)
    dz = P.attrs["delta"] / sd_safe[None, :]
    se = P.attrs["se"] / sd_safe[None, :]
    genes = pd.Index(P.columns)
    reg_cols = genes.get_indexer(regs)
    M = dz[:, reg_cols]
    own = regs.get_indexer(P.index)
    for i, r in enumerate(own):
        if r >= 0:
            M[i, r] = 0.0
    D = dz - M @ B
    T = np.where(se > 0, D / np.where(se > 0, se, 1.0), 0.0)
    T[np.arange(len(P)), genes.get_indexer(P.index)] = 0.0
    return pd.DataFrame(T, index=P.index, columns=genes)


def _percentile(a: np.ndarray) -> np.ndarray:
    """Percentile ranks in (0, 1] of ``a`` (ties averaged); zeros stay 0."""
    from scipy.stats import rankdata

    out = np.zeros(a.shape)
    nz = a > 0
    if nz.any():
        out[nz] = rankdata(a[nz]) / nz.sum()
    return out


def combine_evidence(B: np.ndarray, regs: pd.Index, P: pd.DataFrame, *, how: str = "sum",
                     min_t: float = 0.0, allowed: np.ndarray | None = None,
                     weight: float = 2.0) -> tuple[np.ndarray, dict[str, Any]]:
    """Merge regression coefficients with perturbation evidence by ranks.

    Every regression edge gets its percentile ``u_R`` of ``|B|`` (over all edges); every edge of a
    perturbed regulator its percentile ``u_P`` of ``|t|`` (over those edges). Perturbed regulators'
    edges then score ``u_R + u_P`` (``how="sum"``: both kinds of evidence rank them above regression
    alone), ``(u_R + u_P) / 2`` (``"mean"``), ``sqrt(u_R u_P)`` (``"product"``) or ``u_P``
    (``"perturbation"``); the other regulators keep ``u_R``. The sign comes from the perturbation
    where its evidence counts (``|t| ≥ min_t``), else from the regression.

    ``how="odds"`` scores every non-zero regression edge ``L = -log(1 - u_R + 1/N)`` (``N`` non-zero
    edges; the best edge scores ``log N``, the median about ``log 2``) and adds, for perturbed
    regulators, ``weight * log(1 + max(|t| - min_t, 0))``: additive log-odds-like evidence, so the
    knockout multiplies the odds of an edge instead of lifting it above every regression-only edge,
    and ``|t|`` counts continuously above ``min_t``.

    Parameters
    ----------
    B
        Regulators x genes regression coefficients (0 = no edge).
    regs
        Names of the rows of ``B``.
    P
        Output of :func:`perturbation_effects` (columns = the genes of ``B``).
    how
        One of :data:`COMBINE`.
    min_t
        Perturbation evidence counts only where ``|t| ≥ min_t`` (``u_P`` is 0 elsewhere; with
        ``"odds"`` the offset below which ``|t|`` adds nothing).
    allowed
        Optional regulators x genes mask (a prior); edges outside stay 0.
    weight
        With ``how="odds"``: weight of the perturbation evidence (``log(1 + |t| - min_t)`` units)
        against the regression's ``L``.

    Returns
    -------
    (ndarray, dict)
        Signed combined scores (regulators x genes) and a summary of each source's contribution.
    """
    if how not in COMBINE:
        raise ValueError(f"Unknown combination {how!r}; use one of {', '.join(COMBINE)}.")
    uR = _percentile(np.abs(B))
    S = uR.copy()
    sign = np.sign(B)
    rows = regs.get_indexer(P.index)
    ok = rows >= 0
    rows = rows[ok]
    T = P.to_numpy()[ok]
    if allowed is not None:
        T = np.where(allowed[rows], T, 0.0)
    if how == "odds":
        n_nz = max(int((uR > 0).sum()), 1)
        S = np.where(uR > 0, -np.log(1.0 - uR + 1.0 / n_nz), 0.0)
        uP = float(weight) * np.log1p(np.maximum(np.abs(T) - min_t, 0.0))
        S[rows] = S[rows] + uP
    else:
        uP = _percentile(np.abs(T)) * (np.abs(T) >= min_t)
    r_part = uR[rows]
    if how == "sum":
        S[rows] = r_part + uP
    elif how == "mean":
        S[rows] = (r_part + uP) / 2
    elif how == "product":
        S[rows] = np.sqrt(r_part * uP)
    elif how == "perturbation":
        S[rows] = uP
    sign[rows] = np.where(uP > 0, np.sign(T), sign[rows])  # the sign a counted knockout shows
    S = S * sign
    if allowed is not None:
        S = np.where(allowed, S, 0.0)
    info = {"combine": how, "min_t": float(min_t), "n_perturbed_regulators": int(len(rows)),
            "perturbed_regulators": [str(regs[r]) for r in rows]}
    if how == "odds":
        info["weight"] = float(weight)
    return S, info


def regulator_prior(S: np.ndarray, regs: pd.Index, P: pd.DataFrame, *, boost: float = 1.0,
                    moved_t: float = 3.0) -> np.ndarray:
    """Raise every edge of a perturbed regulator whose perturbation moves at least one gene.

    A knockout of ``r`` that moves some gene (total ``|t| ≥ moved_t``) shows that ``r`` regulates
    something, which raises the odds of each of its edges; on the log-odds-like scale of
    ``combine_evidence(how="odds")`` that is a constant added to the row. ``|S|`` of the row's
    non-zero edges grows by ``boost`` (the sign is kept; zero edges stay 0).

    Parameters
    ----------
    S
        Signed edge scores, regulators x genes (columns as ``P``), on the ``"odds"`` scale.
    regs
        Names of the rows of ``S``.
    P
        Total perturbation t statistics (:func:`perturbation_effects`).
    boost, moved_t
        What the row's edges gain, and the threshold above which a gene counts as moved.

    Returns
    -------
    ndarray
        A copy of ``S`` with the rows of the regulators whose perturbation moves a gene raised.
    """
    S, rows, cols, T = _perturbed_rows(S, regs, P)
    T[np.arange(len(rows)), cols] = 0.0
    moves = rows[(T >= moved_t).any(axis=1)]
    if moves.size:
        sub = S[moves]
        S[moves] = np.where(sub != 0, np.sign(sub) * (np.abs(sub) + boost), 0.0)
    return S


def indirect_penalty(S: np.ndarray, regs: pd.Index, P: pd.DataFrame, *, weight: float = 0.5,
                     still: float = 0.0, still_t: float = 1.0) -> np.ndarray:
    """Lower the edges of perturbed regulators by their *total* shift (session 9 of ``grn_select.py``).

    With the direct shift already counted (:func:`combine_evidence` on :func:`direct_effects`), a
    large total shift at a given direct one is the mark of an indirect effect (a descendant, or a
    shift of the fate mix): ``|S|`` of a perturbed regulator's non-zero edge loses
    ``weight * log(1 + |t_total|)``, and ``still`` more where the target is unmoved
    (``|t_total| < still_t``). Meant for the ``"odds"`` scale; ``|S|`` is kept above 0 and its sign.

    Parameters
    ----------
    S
        Signed edge scores, regulators x genes (columns as ``P``).
    regs
        Names of the rows of ``S``.
    P
        Total perturbation t statistics (:func:`perturbation_effects`).
    weight, still, still_t
        Weight of ``log(1 + |t_total|)``, the extra penalty of an unmoved target, and its threshold.

    Returns
    -------
    ndarray
        A copy of ``S`` with the perturbed regulators' rows lowered.
    """
    S, rows, _, T = _perturbed_rows(S, regs, P)
    sub = S[rows]
    low = np.abs(sub) - weight * np.log1p(T) - still * (T < still_t)
    floor = 1e-9 * np.abs(sub).max(initial=0.0)
    S[rows] = np.where(sub != 0, np.sign(sub) * np.maximum(low, floor), 0.0)
    return S


def _rows_cols(P: pd.DataFrame, regs: pd.Index, genes: pd.Index) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of ``P`` whose regulator is in ``regs``: (index into P, row in regs, column in genes)."""
    rows = regs.get_indexer(pd.Index(P.index.astype(str)))
    ok = np.flatnonzero(rows >= 0)
    return ok, rows[ok], genes.get_indexer(pd.Index(P.index.astype(str))[ok])


def _perturbed_rows(S: np.ndarray, regs: pd.Index, P: pd.DataFrame
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A float copy of ``S`` and, for the perturbed regulators among ``regs``: their rows in ``S``,
    their own columns and ``|P|`` (their rows of the t statistics)."""
    ok, rows, cols = _rows_cols(P, regs, pd.Index(P.columns.astype(str)))
    return np.array(S, dtype=float, copy=True), rows, cols, np.abs(P.to_numpy()[ok])


def ancestor_gate(S: np.ndarray, regs: pd.Index, P: pd.DataFrame, *, still_t: float = 1.0,
                  factor: float = 0.6) -> np.ndarray:
    """Push down the edges of perturbed regulators whose knockout does not move the target.

    A regulator is an ancestor of each of its targets, so a knockout of ``r`` that leaves ``g``
    unmoved (``|t| < still_t`` of the *total* shift) argues against ``r → g``: those edges are
    multiplied by ``factor`` (``S`` keeps its sign).

    Parameters
    ----------
    S
        Signed edge scores, regulators x genes (columns as ``P``).
    regs
        Names of the rows of ``S``.
    P
        Total perturbation t statistics (:func:`perturbation_effects`).
    still_t, factor
        Threshold below which a gene counts as unmoved, and the factor its edge is scaled by.

    Returns
    -------
    ndarray
        A gated copy of ``S``.
    """
    S, rows, cols, T = _perturbed_rows(S, regs, P)
    still = T < still_t
    still[np.arange(len(rows)), cols] = False
    S[rows] = np.where(still, factor * S[rows], S[rows])
    return S


def orient_by_knockouts(S: np.ndarray, regs: pd.Index, P: pd.DataFrame, *, moved_t: float = 3.0,
                        factor: float = 0.5) -> np.ndarray:
    """Use a knockout's direction for the edges *into* the knocked-out regulator.

    A knockout of ``r`` that moves ``g`` (``|t| ≥ moved_t``) makes ``r`` an ancestor of ``g``; the
    reverse edge ``g → r`` then needs a feedback loop, and observational scores (largely symmetric)
    cannot tell the two directions apart. ``g → r`` is multiplied by ``factor`` unless ``g`` was
    knocked out too and its knockout moves ``r`` (a loop both screens show).

    Parameters
    ----------
    S
        Signed edge scores, regulators x genes (columns as ``P``).
    regs
        Names of the rows of ``S``.
    P
        Total perturbation t statistics (:func:`perturbation_effects`).
    moved_t, factor
        Threshold above which a gene counts as moved, and the factor the reverse edge is scaled by.

    Returns
    -------
    ndarray
        A copy of ``S`` with the reverse edges scaled.
    """
    S = np.array(S, dtype=float, copy=True)
    genes = pd.Index(P.columns.astype(str))
    names = pd.Index(P.index.astype(str))
    Tabs = np.abs(P.to_numpy())
    reg_of_gene = regs.get_indexer(genes)  # row of S of every gene as a regulator (-1: not one)
    for i, r_name in enumerate(names):
        r_col = genes.get_loc(r_name)
        moved = np.flatnonzero(Tabs[i] >= moved_t)
        moved = moved[(moved != r_col) & (reg_of_gene[moved] >= 0)]
        if moved.size == 0:
            continue
        back = names.get_indexer(genes[moved])  # the moved gene's own knockout, if any
        loop = np.zeros(moved.size, bool)
        has = back >= 0
        loop[has] = Tabs[back[has], r_col] >= moved_t
        g_rows = reg_of_gene[moved[~loop]]
        S[g_rows, r_col] *= factor
    return S


def transitive_reduction(P: pd.DataFrame, *, moved_t: float = 3.0, k: float = 1.0) -> pd.DataFrame:
    """TRANSWESD-like reduction of the signed knockout graph (Klamt et al. 2010).

    ``r → g`` (``|t_rg| ≥ moved_t``) is dropped (set to 0) when another knocked-out regulator
    ``a`` explains it: ``r`` moves ``a`` and ``a`` moves ``g`` (both ``≥ moved_t``), the path's sign
    ``sign(t_ra) sign(t_ag)`` equals ``sign(t_rg)``, and its weakest link is stronger than
    ``k |t_rg|``. Cost: knockouts² x genes (meant for screens of up to a few hundred knockouts;
    ``infer_network`` leaves it off by default).

    Parameters
    ----------
    P
        Perturbation t statistics, perturbed regulators x genes (:func:`perturbation_effects` or
        :func:`direct_effects`).
    moved_t, k
        Threshold of a counted edge, and how much stronger than the edge the path must be.

    Returns
    -------
    DataFrame
        ``P`` with the explained edges set to 0.
    """
    genes = pd.Index(P.columns.astype(str))
    names = pd.Index(P.index.astype(str))
    cols = genes.get_indexer(names)
    T = P.to_numpy()
    A = np.abs(T)
    out = T.copy()
    for i in range(len(names)):
        for j in range(len(names)):
            if j == i or cols[j] < 0 or A[i, cols[j]] < moved_t:
                continue
            via = np.minimum(A[i, cols[j]], A[j])
            drop = ((A[j] >= moved_t) & (A[i] >= moved_t) & (via > k * A[i])
                    & (np.sign(T[i, cols[j]]) * np.sign(T[j]) == np.sign(T[i])))
            drop[cols[i]] = False
            out[i, drop] = 0.0
    R = pd.DataFrame(out, index=P.index, columns=P.columns)
    R.attrs.update(P.attrs)
    return R
