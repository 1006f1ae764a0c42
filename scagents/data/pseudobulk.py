"""Pseudobulk profiles and perturbation effects (group mean minus control mean)."""

from __future__ import annotations

from collections.abc import Sequence

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scagents.errors import DataError, PerturbationError

from .io import rna_modality

__all__ = ["MAX_PADJ", "MIN_EFFECT", "gene_effects", "perturbation_effects", "pseudobulk"]

MIN_EFFECT = 0.05
"""Smallest ``|delta|`` (log-normalised expression) for a gene to be listed as up / down."""
MAX_PADJ = 0.05
"""Largest Benjamini–Hochberg adjusted p-value for a gene to be listed as up / down."""


def _matrix(adata: ad.AnnData, layer: str | None):
    if layer is None:
        X = adata.X
    elif layer in adata.layers:
        X = adata.layers[layer]
    else:
        hint = (" Run scagents.data.lognormalize(adata) first," if layer == "lognorm" else "")
        raise DataError(
            f"adata.layers has no {layer!r} (layers: {list(adata.layers) or 'none'}).{hint} "
            "or pass layer=None to use adata.X, or the name of an existing layer."
        )
    if not (isinstance(X, np.ndarray) or sp.issparse(X)):
        X = X[:]  # backed matrix
    return X


def pseudobulk(
    adata: ad.AnnData | md.MuData,
    *,
    by: str = "target_genes",
    layer: str | None = "lognorm",
    control: str | None = "control",
) -> pd.DataFrame:
    """Mean expression of each group of cells.

    Parameters
    ----------
    adata
        Standardised AnnData (see :func:`~scagents.data.standardize`), or a MuData (RNA modality).
    by
        obs column defining the groups (default the standard ``target_genes``). Cells with a missing
        label are left out.
    layer
        Layer to average (default ``"lognorm"``, written by :func:`~scagents.data.lognormalize`);
        ``None`` uses ``X``.
    control
        Name of the group of control cells (``obs["is_control"]``), listed first. ``None`` keeps the
        control cells under their own ``by`` label.

    Returns
    -------
    DataFrame of groups x genes (float64), index named ``by``; ``df.attrs["n_cells"]`` maps each
    group to its number of cells. Sparse matrices stay sparse until the (small) group means.
    """
    _, adata = rna_modality(adata)
    if by not in adata.obs:
        raise PerturbationError(
            f"obs has no column {by!r} (obs columns: {list(adata.obs.columns)}). Run "
            "scagents.data.standardize(adata) first to write the standard columns, or pass by= an "
            "existing column."
        )
    labels = adata.obs[by].astype(object)
    keep = labels.notna().to_numpy()
    labels = labels.astype(str)
    if control is not None and "is_control" in adata.obs:
        is_ctrl = adata.obs["is_control"].fillna(False).to_numpy(dtype=bool)
        labels = labels.where(~is_ctrl, control)
    else:
        is_ctrl = np.zeros(adata.n_obs, dtype=bool)
    others = sorted(set(labels[keep & ~is_ctrl]))
    order = ([control] if is_ctrl[keep].any() else []) + [g for g in others if g != control]
    if not order:
        raise DataError(f"No cells to average: every label in obs[{by!r}] is missing.")
    codes = pd.Categorical(labels, categories=order).codes
    cells = np.flatnonzero(keep & (codes >= 0))
    k, n = len(order), adata.n_obs
    indicator = sp.csr_matrix((np.ones(len(cells)), (codes[cells], cells)), shape=(k, n))
    n_cells = np.bincount(codes[cells], minlength=k).astype(np.float64)
    X = _matrix(adata, layer)
    sums = indicator @ X
    sums = sums.toarray() if sp.issparse(sums) else np.asarray(sums)
    means = sums.astype(np.float64) / n_cells[:, None]
    df = pd.DataFrame(means, index=pd.Index(order, name=by), columns=adata.var_names.copy())
    df.attrs["n_cells"] = {g: int(c) for g, c in zip(order, n_cells, strict=True)}
    return df


def perturbation_effects(
    adata: ad.AnnData | md.MuData,
    *,
    by: str = "target_genes",
    layer: str | None = "lognorm",
    control: str = "control",
) -> pd.DataFrame:
    """Mean expression change of each perturbation relative to the control cells.

    Parameters
    ----------
    adata
        Standardised AnnData (needs ``obs["is_control"]``), or a MuData (RNA modality).
    by, layer, control
        As in :func:`pseudobulk`.

    Returns
    -------
    DataFrame of perturbations x genes: ``pseudobulk(group) - pseudobulk(control)`` (the control row
    is not included); ``df.attrs["n_cells"]`` as in :func:`pseudobulk` (control included).

    Raises
    ------
    PerturbationError
        No control cells (run :func:`~scagents.data.standardize`, or check ``control_labels``).
    """
    _, rna = rna_modality(adata)
    if "is_control" not in rna.obs or not rna.obs["is_control"].fillna(False).astype(bool).any():
        raise PerturbationError(
            "No control cells (obs['is_control'] is missing or all False), so effects cannot be "
            "computed. Run scagents.data.standardize(adata, control_labels=[...]) first."
        )
    pb = pseudobulk(rna, by=by, layer=layer, control=control)
    effects = pb.drop(index=control) - pb.loc[control]
    effects.attrs["n_cells"] = dict(pb.attrs["n_cells"])
    return effects


def gene_effects(control: np.ndarray, perturbed: np.ndarray, genes: Sequence[str]) -> pd.DataFrame:
    """Per-gene change of mean expression from control, with Welch-test adjusted p-values.

    Parameters
    ----------
    control, perturbed
        Cells × genes log-normalised expression of control and perturbed cells.
    genes
        Gene names.

    Returns
    -------
    pandas.DataFrame
        Indexed by gene with ``control_mean``, ``perturbed_mean``, ``delta`` and ``padj``
        (Benjamini–Hochberg), sorted by decreasing ``|delta|``.
    """
    from scipy import stats

    c_mean, p_mean = control.mean(0), perturbed.mean(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        pvals = stats.ttest_ind(perturbed, control, axis=0, equal_var=False).pvalue
    pvals = np.where(np.isfinite(pvals), pvals, 1.0)
    padj = stats.false_discovery_control(pvals, method="bh")
    df = pd.DataFrame(
        {"control_mean": c_mean, "perturbed_mean": p_mean, "delta": p_mean - c_mean, "padj": padj},
        index=pd.Index(list(genes), name="gene"),
    )
    return df.reindex(df["delta"].abs().sort_values(ascending=False).index)
