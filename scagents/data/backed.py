"""Atlas-sized data in bounded memory: stream a backed ``.h5ad`` in row chunks.

A backed AnnData keeps ``X`` on disk; only ``obs`` and ``var`` (small) are in memory. The functions
here read ``X`` a block of rows at a time, so their memory use is set by ``chunk_size`` (and by the
small outputs: groups × genes), not by the number of cells:

* :func:`open_backed` — open a ``.h5ad`` read-only without loading ``X``;
* :func:`iter_chunks` — ``(rows, csr chunk)`` blocks of ``X`` or a layer;
* :func:`standardize_backed` — the standard ``.obs`` columns of :func:`~scagents.data.standardize`,
  computed from ``obs`` alone (the value checks stream over ``X``);
* :func:`pseudobulk_backed` / :func:`perturbation_summary` — per-group means and cell / UMI counts;
* :func:`highly_variable_backed` — streaming mean / variance / dispersion per gene;
* :class:`CellMinibatchSampler` — random minibatches of cells (sorted row reads);
* :func:`write_synthetic_atlas` — a realistically sparse synthetic screen written chunk by chunk;
* :func:`response_arrays_backed` — control mean, perturbation deltas and start cells, from which
  :meth:`scagents.envs.ResponseTask.from_backed` builds the same task as ``from_anndata`` does on
  the data loaded in memory.

Counts are normalised per chunk exactly as :func:`~scagents.data.lognormalize` does (each cell
scaled to ``target_sum`` total counts, then ``log1p``); rows are complete in a row chunk, so the
result does not depend on ``chunk_size``.

Row chunks need a CSR matrix (the usual ``.h5ad`` layout); a CSC file is rejected with advice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scagents.errors import DataError, DataFileError, GeneNotFoundError, PerturbationError

from .io import read
from .validate import (
    STANDARD_COLUMNS,
    _check_names,
    _check_values,
    find_perturbation_key,
    gene_names,
    standardize,
)

__all__ = [
    "CellMinibatchSampler",
    "highly_variable_backed",
    "iter_chunks",
    "open_backed",
    "perturbation_summary",
    "pseudobulk_backed",
    "BackedResponse",
    "response_arrays_backed",
    "standardize_backed",
    "write_synthetic_atlas",
]

DEFAULT_CHUNK_SIZE = 50_000
"""Rows read per chunk (50k cells × 2k genes at 7 % density ≈ 56 MB of CSR arrays)."""

Source = str | os.PathLike | ad.AnnData


# ============================================================================ opening and chunks
def open_backed(path: str | os.PathLike) -> ad.AnnData:
    """Open a ``.h5ad`` file read-only with ``X`` (and layers) left on disk.

    Parameters
    ----------
    path
        Path to an ``.h5ad`` file.

    Returns
    -------
    A backed AnnData (``adata.isbacked``; ``adata.X`` reads from the file on indexing). ``obs`` and
    ``var`` are in memory and may be modified (the file is not).

    Raises
    ------
    DataFileNotFoundError, DataFileError
        Missing, corrupt or non-``.h5ad`` file.
    """
    if Path(path).suffix.lower() != ".h5ad":
        raise DataFileError(
            f"open_backed() reads .h5ad files, got {str(path)!r}. For .h5mu use "
            "scagents.data.read(path, modality='rna', backed=True); convert other formats with "
            "scagents.data.read(path).write_h5ad(...)."
        )
    adata = read(path, backed=True)
    if not isinstance(adata, ad.AnnData):  # pragma: no cover - read() returns AnnData for .h5ad
        raise DataFileError(f"{str(path)!r} did not open as an AnnData.")
    return adata


def _as_adata(source: Source) -> ad.AnnData:
    if isinstance(source, ad.AnnData):
        return source
    if isinstance(source, str | os.PathLike):
        return open_backed(source)
    raise TypeError(f"Expected a path to a .h5ad file or an AnnData, got {type(source).__name__}.")


def _matrix(adata: ad.AnnData, layer: str | None) -> Any:
    if layer is None:
        X = adata.X
    elif layer in adata.layers:
        X = adata.layers[layer]
    else:
        raise DataError(f"adata.layers has no {layer!r} (layers: {list(adata.layers) or 'none'}); pass "
                        "layer=None to use X, or the name of an existing layer.")
    if X is None:
        raise DataError("The AnnData has no X matrix; pass layer= naming a layer that holds the counts.")
    if sp.issparse(X) and X.format == "csc":  # in memory already: one conversion, no disk reads
        return sp.csr_matrix(X)
    if getattr(X, "format", None) == "csc":
        raise DataError(
            "X is stored as a CSC (column-compressed) matrix, so reading a block of cells needs the "
            "whole matrix. Convert the file once to CSR: adata = anndata.read_h5ad(path); "
            "adata.X = scipy.sparse.csr_matrix(adata.X); adata.write_h5ad(path)."
        )
    return X


def _to_csr(block: Any) -> sp.csr_matrix:
    if sp.issparse(block):
        return sp.csr_matrix(block)
    return sp.csr_matrix(np.asarray(block))


def iter_chunks(
    adata: ad.AnnData,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    layer: str | None = None,
) -> Iterator[tuple[slice, sp.csr_matrix]]:
    """Blocks of consecutive rows of ``X`` (or a layer), read one at a time.

    Parameters
    ----------
    adata
        A backed (or in-memory) AnnData whose matrix is CSR or dense.
    chunk_size
        Rows per block.
    layer
        Layer to read; ``None`` reads ``X``.

    Yields
    ------
    rows, chunk
        ``slice(start, stop)`` of the rows and the block as a :class:`scipy.sparse.csr_matrix`.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}.")
    X = _matrix(adata, layer)
    n = adata.n_obs
    for start in range(0, n, int(chunk_size)):
        stop = min(start + int(chunk_size), n)
        yield slice(start, stop), _to_csr(X[start:stop])


def _lognorm(chunk: sp.csr_matrix, target_sum: float) -> sp.csr_matrix:
    """``log1p`` of counts scaled to ``target_sum`` per cell, as :func:`~scagents.data.lognormalize`."""
    totals = np.asarray(chunk.sum(axis=1), dtype=np.float64).ravel()
    scale = np.divide(float(target_sum), totals, out=np.zeros_like(totals), where=totals > 0)
    out = sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ sp.csr_matrix(chunk, dtype=np.float32))
    np.log1p(out.data, out=out.data)
    return out


def _is_counts(adata: ad.AnnData) -> bool | None:
    rec = adata.uns.get("scagents", {})
    rec = rec.get("data", {}) if hasattr(rec, "get") else {}
    value = rec.get("is_counts") if hasattr(rec, "get") else None
    return None if value is None else bool(value)


def _normaliser(adata: ad.AnnData, normalize: bool, target_sum: float):
    """The per-chunk transform: lognorm for counts, identity for already normalised values."""
    if not normalize:
        return lambda c: sp.csr_matrix(c, dtype=np.float32)
    is_counts = _is_counts(adata)
    if is_counts is False:
        return lambda c: sp.csr_matrix(c, dtype=np.float32)
    return lambda c: _lognorm(c, target_sum)


# ============================================================================ standardisation
def standardize_backed(
    adata: ad.AnnData,
    *,
    perturbation_key: str | None = None,
    control_labels: str | Sequence[str] | None = None,
    perturbation_type: str | dict[str, str] | None = None,
    check_values: bool = True,
) -> None:
    """Write the standard ``.obs`` columns of a backed AnnData without loading ``X``.

    The perturbation logic is :func:`~scagents.data.standardize` itself, run on an obs-only copy
    (an empty sparse ``X`` of the same shape); the value checks (NaN, inf, negative counts, counts
    or not) stream over the on-disk ``X`` in row chunks.

    Parameters
    ----------
    adata
        Backed (or in-memory) AnnData; only its in-memory ``obs`` / ``uns`` are modified, never the file.
    perturbation_key, control_labels, perturbation_type
        As in :func:`~scagents.data.standardize`.
    check_values
        Stream over ``X`` to reject NaN / inf / negative counts and to record whether ``X`` holds
        counts. ``False`` skips the pass and assumes counts.

    Returns
    -------
    ``None``. Writes ``obs["perturbation"]``, ``obs["target_genes"]``, ``obs["perturbation_type"]``,
    ``obs["is_control"]`` and ``uns["scagents"]["data"]`` exactly as :func:`~scagents.data.standardize`,
    and, as it does, gene symbols as ``var_names`` when these are Ensembl IDs with a symbol column
    (the IDs kept in ``var["gene_ids"]``; the file keeps its IDs).

    Raises
    ------
    DataError, PerturbationError
        As :func:`~scagents.data.standardize`.
    """
    if not isinstance(adata, ad.AnnData):
        raise TypeError(f"standardize_backed() takes an AnnData, got {type(adata).__name__}.")
    is_counts = True
    if check_values:
        is_counts = _check_values(adata, _matrix(adata, None), "X", expression=True).is_counts
    uns = {"scagents": dict(adata.uns["scagents"])} if "scagents" in adata.uns else {}
    key = find_perturbation_key(adata, perturbation_key)
    combo = _label_combinations(adata.obs, key)
    if combo is None:  # missing labels: let standardize() report them with the per-cell counts
        shell_obs, combo = adata.obs.copy(), None
    else:
        # the outputs depend on a cell only through its label (and any given perturbation_type), so
        # standardise one representative row per distinct combination (first occurrence, which keeps
        # the label order of standardize()) and expand by integer codes: no per-cell strings
        _check_names(_Names(adata))
        _, first = np.unique(combo, return_index=True)
        cols = [c for c in (key, "perturbation_type") if c in adata.obs]
        shell_obs = adata.obs.iloc[first][cols].copy()
        shell_obs.index = pd.Index([str(i) for i in range(len(first))])
    # var is small and in memory: the shell gets all of it, so that standardize() names the genes
    # (symbols for Ensembl var_names) and resolves the targets against those names
    shell = ad.AnnData(X=sp.csr_matrix((len(shell_obs), adata.n_vars), dtype=np.float32), obs=shell_obs,
                       var=adata.var.copy(), uns=uns)
    standardize(shell, perturbation_key=key, control_labels=control_labels,
                perturbation_type=perturbation_type, check_values=False, copy=False)
    if not shell.var_names.equals(adata.var_names):  # symbols replaced the IDs (kept in var["gene_ids"])
        adata.var = shell.var
    original = adata.obs[key]
    for col in shell.obs.columns:
        if combo is not None and col == f"{key}_original":
            adata.obs[col] = original
            continue
        if combo is not None and col not in STANDARD_COLUMNS:
            continue  # an input column, unchanged
        value = shell.obs[col]
        if combo is not None:
            value = _expand(value, combo)
        elif col in adata.obs and value.equals(adata.obs[col]):
            continue
        adata.obs[col] = value.to_numpy() if col == "is_control" else value.values
    scag = dict(shell.uns["scagents"])
    scag["data"] = {**dict(scag["data"]), "is_counts": bool(is_counts)}
    if combo is not None:
        scag["data"]["n_control"] = int(adata.obs["is_control"].to_numpy(dtype=bool).sum())
    adata.uns["scagents"] = scag


class _Names:
    """The name fields ``_check_names`` reads; the cell names get a fresh Index whose hash table is
    freed afterwards (``Index.is_unique`` would otherwise cache it on ``adata.obs_names``)."""

    def __init__(self, adata: ad.AnnData):
        self.n_obs, self.n_vars = adata.n_obs, adata.n_vars
        self.obs_names = pd.Index(adata.obs_names.to_numpy(), copy=False)
        self.var_names = adata.var_names


def _codes(column: pd.Series) -> np.ndarray:
    """Integer code per cell (-1 = missing), from the categorical codes when there are any."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.array.codes.astype(np.int64)
    return pd.factorize(column, use_na_sentinel=True)[0].astype(np.int64)


def _label_combinations(obs: pd.DataFrame, key: str) -> np.ndarray | None:
    """Code per cell of its (label, given perturbation_type) pair; ``None`` when a label is missing."""
    codes = _codes(obs[key])
    if (codes < 0).any():
        return None
    if "perturbation_type" in obs and key != "perturbation_type":
        kinds = _codes(obs["perturbation_type"]) + 1  # 0 = missing
        codes = codes * (int(kinds.max()) + 1) + kinds
    return pd.factorize(codes)[0].astype(np.int64)


def _expand(value: pd.Series, combo: np.ndarray) -> pd.Series:
    """Per-combination values → per-cell values (categoricals by their codes)."""
    if isinstance(value.dtype, pd.CategoricalDtype):
        cat = pd.Categorical.from_codes(value.array.codes[combo], dtype=value.dtype)
        return pd.Series(cat)
    return pd.Series(value.to_numpy()[combo])


# ============================================================================ streaming statistics
def _group_codes(adata: ad.AnnData, by: str, control: str | None) -> tuple[np.ndarray, list[str]]:
    """Group code per cell (-1 = left out) and group names, ordered as :func:`pseudobulk` does."""
    if by not in adata.obs:
        raise PerturbationError(
            f"obs has no column {by!r} (obs columns: {list(adata.obs.columns)}). Run "
            "scagents.data.backed.standardize_backed(adata) first, or pass by= an existing column."
        )
    # work on integer codes and one string per distinct label (no per-cell strings)
    cat_codes, names = _codes_and_names(adata.obs[by])
    keep = cat_codes < len(names) - 1  # the last name stands for missing labels
    if control is not None and "is_control" in adata.obs:
        is_ctrl = adata.obs["is_control"].fillna(False).to_numpy(dtype=bool)
    else:
        is_ctrl = np.zeros(adata.n_obs, dtype=bool)
    others = sorted(set(names[np.unique(cat_codes[keep & ~is_ctrl])]))
    order = ([control] if is_ctrl[keep].any() else []) + [g for g in others if g != control]
    if not order:
        raise DataError(f"No cells to average: every label in obs[{by!r}] is missing.")
    position = {g: i for i, g in enumerate(order)}
    codes = np.array([position.get(n, -1) for n in names], dtype=np.int64)[cat_codes]
    if control is not None and control in position:
        codes[is_ctrl] = position[control]
    codes[~keep] = -1
    return codes, order


def _codes_and_names(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell codes into ``names`` = the distinct labels as ``str`` then ``"nan"`` (missing labels),
    so that ``names[codes]`` equals ``column.astype(str)`` without building a string per cell."""
    cat = column if isinstance(column.dtype, pd.CategoricalDtype) else column.astype("category")
    names = np.asarray([*map(str, cat.cat.categories), "nan"], dtype=object)
    codes = cat.array.codes.astype(np.int64)
    codes[codes < 0] = len(names) - 1
    return codes, names


class _Stats:
    """Sums accumulated over row chunks (float64)."""

    def __init__(self, n_groups: int, n_genes: int, with_groups: bool):
        self.n = 0
        self.sum = np.zeros(n_genes)
        self.sumsq = np.zeros(n_genes)
        self.absmax = np.zeros(n_genes)
        self.group_sum = np.zeros((n_groups, n_genes)) if with_groups else None
        self.group_n = np.zeros(n_groups)
        self.group_umis = np.zeros(n_groups)
        self.group_genes = np.zeros(n_groups)


def _stream(adata: ad.AnnData, *, codes: np.ndarray | None, n_groups: int, normalize: bool,
            target_sum: float, chunk_size: int, layer: str | None = None, moments: bool = True,
            group_means: bool = True, transform=None) -> _Stats:
    norm = _normaliser(adata, normalize, target_sum)
    stats = _Stats(n_groups, adata.n_vars, group_means and codes is not None)
    for rows, raw in iter_chunks(adata, chunk_size=chunk_size, layer=layer):
        x = norm(raw)
        if transform is not None:
            x = transform(x)
        x = x.astype(np.float64)  # accumulate in float64 (scipy sums float32 in float32)
        stats.n += x.shape[0]
        if moments:
            stats.sum += np.asarray(x.sum(axis=0)).ravel()
            sq = x.copy()
            sq.data **= 2
            stats.sumsq += np.asarray(sq.sum(axis=0)).ravel()
            del sq
            if x.nnz:
                stats.absmax = np.maximum(stats.absmax, np.asarray(abs(x).max(axis=0).todense()).ravel())
        if codes is None:
            continue
        c = codes[rows]
        cells = np.flatnonzero(c >= 0)
        if not len(cells):
            continue
        cc = c[cells]
        stats.group_n += np.bincount(cc, minlength=n_groups)
        stats.group_umis += np.bincount(cc, weights=np.asarray(raw.sum(axis=1)).ravel()[cells],
                                        minlength=n_groups)
        stats.group_genes += np.bincount(cc, weights=np.diff(raw.indptr)[cells], minlength=n_groups)
        if stats.group_sum is not None:
            ind = sp.csr_matrix((np.ones(len(cells)), (cc, cells)), shape=(n_groups, x.shape[0]))
            stats.group_sum += (ind @ x).toarray()
    return stats


def pseudobulk_backed(
    source: Source,
    *,
    by: str = "target_genes",
    normalize: bool = True,
    target_sum: float = 1e4,
    control: str | None = "control",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    layer: str | None = None,
) -> pd.DataFrame:
    """Mean (log-normalised) expression of each group of cells, streamed in row chunks.

    The streaming counterpart of :func:`~scagents.data.pseudobulk` on the ``lognorm`` layer.

    Parameters
    ----------
    source
        Path to a ``.h5ad`` file or a (backed) AnnData with the grouping column in ``obs``
        (run :func:`standardize_backed` first for the standard columns).
    by
        obs column defining the groups; cells with a missing label are left out.
    normalize
        Average ``log1p`` of counts scaled to ``target_sum`` per cell (as
        :func:`~scagents.data.lognormalize`; values already normalised — ``uns["scagents"]["data"]
        ["is_counts"]`` false — are used as they are). ``False`` averages the stored values.
    target_sum
        Counts per cell after scaling.
    control
        Name of the group of control cells (``obs["is_control"]``), listed first; ``None`` keeps them
        under their own label.
    chunk_size
        Rows read per chunk (memory ∝ ``chunk_size``, not the number of cells).
    layer
        Read this layer instead of ``X``.

    Returns
    -------
    DataFrame of groups × genes (float64), index named ``by``; ``df.attrs["n_cells"]`` maps each
    group to its number of cells — the same layout as :func:`~scagents.data.pseudobulk`.
    """
    adata = _as_adata(source)
    codes, order = _group_codes(adata, by, control)
    stats = _stream(adata, codes=codes, n_groups=len(order), normalize=normalize, target_sum=target_sum,
                    chunk_size=chunk_size, layer=layer, moments=False)
    means = stats.group_sum / np.maximum(stats.group_n, 1)[:, None]
    df = pd.DataFrame(means, index=pd.Index(order, name=by), columns=adata.var_names.copy())
    df.attrs["n_cells"] = {g: int(n) for g, n in zip(order, stats.group_n, strict=True)}
    return df


def perturbation_summary(
    source: Source,
    *,
    by: str = "perturbation",
    control: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    layer: str | None = None,
) -> pd.DataFrame:
    """Cells, mean UMIs and mean detected genes per perturbation, streamed in row chunks.

    Parameters
    ----------
    source
        Path to a ``.h5ad`` file or a (backed) AnnData.
    by
        obs column with the groups (default the label column ``perturbation``).
    control
        Pool the control cells under this name (``None`` keeps each control label).
    chunk_size, layer
        As in :func:`pseudobulk_backed` (``layer`` should hold raw counts).

    Returns
    -------
    DataFrame indexed by group (named ``by``) with columns ``n_cells``, ``mean_umis`` (mean total
    counts per cell) and ``mean_genes`` (mean number of non-zero genes per cell).
    """
    adata = _as_adata(source)
    codes, order = _group_codes(adata, by, control)
    stats = _stream(adata, codes=codes, n_groups=len(order), normalize=False, target_sum=1.0,
                    chunk_size=chunk_size, layer=layer, moments=False, group_means=False)
    n = np.maximum(stats.group_n, 1)
    return pd.DataFrame({"n_cells": stats.group_n.astype(np.int64), "mean_umis": stats.group_umis / n,
                         "mean_genes": stats.group_genes / n}, index=pd.Index(order, name=by))


def _mean_var(stats: _Stats, ddof: int) -> tuple[np.ndarray, np.ndarray]:
    mean = stats.sum / stats.n
    var = (stats.sumsq - stats.n * mean**2) / max(stats.n - ddof, 1)
    return mean, np.maximum(var, 0.0)


def highly_variable_backed(
    source: Source,
    *,
    n_top_genes: int = 2000,
    flavor: Literal["seurat", "variance"] = "seurat",
    normalize: bool = True,
    target_sum: float = 1e4,
    n_bins: int = 20,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    layer: str | None = None,
) -> pd.DataFrame:
    """Highly variable genes from one streaming pass of per-gene sums and sums of squares.

    Parameters
    ----------
    source
        Path to a ``.h5ad`` file or a (backed) AnnData.
    n_top_genes
        Genes flagged ``highly_variable`` (all of them when there are fewer genes).
    flavor
        ``"seurat"``: scanpy's ``highly_variable_genes(flavor="seurat")`` statistics on the
        log-normalised data (mean and variance of ``expm1``, log dispersion, normalised within
        ``n_bins`` bins of mean expression). ``"variance"``: rank by the variance of the
        log-normalised values (what :meth:`ResponseTask.from_anndata` uses for ``n_top_features``).
    normalize, target_sum, chunk_size, layer
        As in :func:`pseudobulk_backed`.

    Returns
    -------
    DataFrame indexed by gene with ``means``, ``variances``, ``dispersions``, ``dispersions_norm``
    (``seurat``; NaN for ``variance``) and the bool ``highly_variable``.
    """
    if flavor not in ("seurat", "variance"):
        raise ValueError(f"flavor must be 'seurat' or 'variance', got {flavor!r}.")
    adata = _as_adata(source)
    n_top = min(int(n_top_genes), adata.n_vars)
    transform = None
    if flavor == "seurat":
        def transform(x: sp.csr_matrix) -> sp.csr_matrix:
            y = x.astype(np.float64)
            np.expm1(y.data, out=y.data)
            return y
    stats = _stream(adata, codes=None, n_groups=0, normalize=normalize, target_sum=target_sum,
                    chunk_size=chunk_size, layer=layer, transform=transform)
    df = pd.DataFrame(index=adata.var_names.copy())
    if flavor == "variance":
        mean, var = _mean_var(stats, ddof=0)
        df["means"], df["variances"] = mean, var
        df["dispersions"] = df["dispersions_norm"] = np.nan
        top = np.argsort(-var, kind="stable")[:n_top]
    else:
        mean, var = _mean_var(stats, ddof=1)
        df["variances"] = var
        mean = np.where(mean == 0, 1e-12, mean)
        disp = var / mean
        disp[disp == 0] = np.nan
        df["dispersions"] = np.log(disp)
        df["means"] = np.log1p(mean)
        df["dispersions_norm"] = _normalised_dispersion(df["means"], df["dispersions"], n_bins)
        score = df["dispersions_norm"].to_numpy()
        score = np.where(np.isnan(score), -np.inf, score)
        top = np.argsort(-score, kind="stable")[:n_top]
    flag = np.zeros(adata.n_vars, dtype=bool)
    flag[top] = True
    df["highly_variable"] = flag
    return df


def _normalised_dispersion(means: pd.Series, disp: pd.Series, n_bins: int) -> np.ndarray:
    """Dispersion z-scored within bins of mean expression (scanpy's ``seurat`` flavour)."""
    bins = pd.cut(means, bins=n_bins)
    grouped = disp.groupby(bins, observed=False)
    mu, sd = grouped.mean(), grouped.std(ddof=1)
    # bins with a single gene: scanpy sets mean 0 / std 1 after moving the value to the mean
    single = sd.isna()
    mu_gene = mu.loc[bins].to_numpy()
    sd_gene = sd.loc[bins].to_numpy()
    one = single.loc[bins].to_numpy()
    sd_gene = np.where(one, mu_gene, sd_gene)
    mu_gene = np.where(one, 0.0, mu_gene)
    return (disp.to_numpy() - mu_gene) / sd_gene


# ============================================================================ cell minibatches
class CellMinibatchSampler:
    """Random minibatches of cells from a backed ``.h5ad``, read as sorted row sets.

    Each batch draws ``batch_size`` cells (without replacement within an epoch), reads exactly those
    rows (sorted, so the HDF5 reads go forward) and returns them densified for the chosen genes.
    Memory is ``O(batch_size × genes)``.

    Parameters
    ----------
    source
        Path to a ``.h5ad`` file or a (backed) AnnData.
    batch_size
        Cells per batch.
    genes
        Gene names (columns, in this order) to return; ``None`` returns all genes.
    cells
        Restrict sampling to these row indices (e.g. ``np.flatnonzero(adata.obs["is_control"])``)
        or a boolean mask; ``None`` samples all cells.
    normalize, target_sum
        Log-normalise as in :func:`pseudobulk_backed` (on the full rows, before selecting genes).
    seed
        Seed of the cell order.
    layer
        Read this layer instead of ``X``.

    Examples
    --------
    >>> sampler = CellMinibatchSampler("atlas.h5ad", batch_size=256, genes=hvg, seed=0)  # doctest: +SKIP
    >>> rows, batch = sampler.sample()         # one random batch: (256,), (256, len(hvg)) float32
    >>> for rows, batch in sampler: ...       # one epoch over all cells
    """

    def __init__(self, source: Source, *, batch_size: int = 256, genes: Sequence[str] | None = None,
                 cells: np.ndarray | Sequence[int] | None = None, normalize: bool = True,
                 target_sum: float = 1e4, seed: int = 0, layer: str | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
        self.adata = _as_adata(source)
        self.batch_size = int(batch_size)
        self._X = _matrix(self.adata, layer)
        self._norm = _normaliser(self.adata, normalize, target_sum)
        if genes is None:
            self.genes = list(map(str, self.adata.var_names))
            self._cols = None
        else:
            idx = self.adata.var_names.get_indexer(list(genes))
            missing = [g for g, i in zip(genes, idx, strict=True) if i < 0]
            if missing:
                raise GeneNotFoundError(f"{len(missing)} gene(s) are not in var_names, e.g. {missing[:5]}; "
                                        "pick genes from adata.var_names.")
            self.genes, self._cols = list(genes), idx
        if cells is None:
            self.cells = np.arange(self.adata.n_obs)
        else:
            arr = np.asarray(cells)
            self.cells = np.flatnonzero(arr) if arr.dtype == bool else arr.astype(np.int64)
        if not len(self.cells):
            raise DataError("CellMinibatchSampler has no cells to sample (cells= selects none).")
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        """Batches per epoch."""
        return -(-len(self.cells) // self.batch_size)

    def read(self, rows: np.ndarray) -> np.ndarray:
        """The (normalised, gene-selected) dense rows ``rows`` as float32, in the order given."""
        rows = np.asarray(rows, dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        sorted_rows = rows[order]
        uniq, inverse = np.unique(sorted_rows, return_inverse=True)
        block = self._norm(_to_csr(self._X[uniq]))
        if self._cols is not None:
            block = block[:, self._cols]
        dense = block.toarray().astype(np.float32, copy=False)[inverse]
        out = np.empty_like(dense)
        out[order] = dense
        return out

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """One random batch: sorted row indices ``(b,)`` and values ``(b, n_genes)`` float32."""
        size = min(self.batch_size, len(self.cells))
        rows = np.sort(self.rng.choice(self.cells, size, replace=False))
        return rows, self.read(rows)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """One epoch: every cell once, in random batches (rows sorted within a batch)."""
        perm = self.rng.permutation(self.cells)
        for start in range(0, len(perm), self.batch_size):
            rows = np.sort(perm[start:start + self.batch_size])
            yield rows, self.read(rows)


# ============================================================================ response arrays
@dataclass
class BackedResponse:
    """What a static response task needs, streamed from a backed file (see :func:`response_arrays_backed`).

    Attributes
    ----------
    genes
        Names of the kept genes (``G``).
    labels, perturbations
        One per perturbation with enough cells (``P``).
    control_mean
        ``(1, G)`` mean log-normalised expression of the control cells.
    deltas
        ``(P, 1, G)`` perturbation mean minus control mean.
    start_states
        ``(n, G)`` log-normalised expression of ``n`` random control cells.
    pseudotime
        ``(n, 1)`` their ``obs["pseudotime"]`` (zeros when absent).
    absmax
        Largest absolute log-normalised value of the kept genes.
    """

    genes: list[str]
    labels: list[str]
    perturbations: list
    control_mean: np.ndarray
    deltas: np.ndarray
    start_states: np.ndarray
    pseudotime: np.ndarray
    absmax: float


def response_arrays_backed(
    source: Source,
    *,
    n_top_genes: int | None = None,
    max_control_cells: int = 2000,
    min_cells: int = 5,
    target_sum: float = 1e4,
    seed: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    standardize_kwargs: dict[str, Any] | None = None,
) -> BackedResponse:
    """Control mean, perturbation deltas and start cells of a backed file, in one streaming pass.

    The arrays of ``ResponseTask.from_anndata(adata, n_top_features=n_top_genes, ...)`` on the same
    data in memory (``lognorm`` layer): the most variable genes, the control mean, each
    perturbation's mean minus the control mean and a random subset of control cells as episode
    starts — but ``X`` is never loaded whole. :meth:`scagents.envs.ResponseTask.from_backed` builds
    the environment task from them.

    Parameters
    ----------
    source
        Path to a ``.h5ad`` file or a (backed) AnnData; the standard obs columns are computed with
        :func:`standardize_backed` when missing (on the AnnData, not the file).
    n_top_genes
        Keep the genes with the largest variance of the log-normalised values (``None``: all).
    max_control_cells
        Control cells kept as start states (at most).
    min_cells
        Perturbations with fewer cells are left out.
    target_sum
        Counts per cell after scaling (``lognorm``).
    seed
        Seed of the choice of start cells.
    chunk_size
        Rows read per chunk.
    standardize_kwargs
        Options for :func:`standardize_backed` (``perturbation_key``, ``control_labels``, …).

    Returns
    -------
    BackedResponse
    """
    from scagents.perturbation import Perturbation

    adata = _as_adata(source)
    if "is_control" not in adata.obs or "target_genes" not in adata.obs:
        standardize_backed(adata, **(standardize_kwargs or {}))
    obs = adata.obs
    is_ctrl = obs["is_control"].fillna(False).to_numpy(dtype=bool)
    if not is_ctrl.any():
        raise PerturbationError("No control cells (obs['is_control'] is all False); run "
                                "standardize_backed(adata, control_labels=[...]).")
    # group 0 = control, then each perturbation label
    label_codes, label_names = _codes_and_names(obs["perturbation"])
    uniq = sorted(set(label_names[np.unique(label_codes[~is_ctrl])]))
    code_of = {lab: i + 1 for i, lab in enumerate(uniq)}
    codes = np.array([code_of.get(lab, 0) for lab in label_names], dtype=np.int64)[label_codes]
    del label_codes
    codes[is_ctrl] = 0
    stats = _stream(adata, codes=codes, n_groups=len(uniq) + 1, normalize=True, target_sum=target_sum,
                    chunk_size=chunk_size)
    _, var = _mean_var(stats, ddof=0)
    genes = np.arange(adata.n_vars)
    if n_top_genes is not None and n_top_genes < adata.n_vars:
        genes = np.sort(np.argsort(-var, kind="stable")[:n_top_genes])
    # the names standardize() gives (symbols for Ensembl var_names, also when obs was standardised
    # before); the sampler reads by the AnnData's own var_names
    names = gene_names(adata)[genes].tolist()

    group_ids, first_cells = np.unique(codes, return_index=True)
    first = dict(zip(group_ids.tolist(), first_cells.tolist(), strict=True))
    perts, labels, rows = [], [], []
    for lab in uniq:
        g = code_of[lab]
        cell = first[g]
        pert = Perturbation.from_obs(obs["target_genes"].iloc[cell], obs["perturbation_type"].iloc[cell])
        if stats.group_n[g] < min_cells or pert is None:
            continue
        perts.append(pert)
        labels.append(lab)
        rows.append(g)
    if not perts:
        raise PerturbationError(f"No perturbation has at least {min_cells} cells.")
    means = stats.group_sum[:, genes] / np.maximum(stats.group_n, 1)[:, None]
    control_mean = means[0][None]
    deltas = means[rows][:, None, :] - control_mean[None]
    ctrl_idx = np.flatnonzero(is_ctrl)
    rng = np.random.default_rng(seed)
    start_idx = np.sort(rng.choice(ctrl_idx, min(max_control_cells, len(ctrl_idx)), replace=False))
    sampler = CellMinibatchSampler(adata, genes=adata.var_names.astype(str)[genes].tolist(),
                                   target_sum=target_sum, cells=ctrl_idx)
    states = np.concatenate([sampler.read(start_idx[i:i + 4096]) for i in range(0, len(start_idx), 4096)])
    if "pseudotime" in obs:
        pt = obs["pseudotime"].to_numpy(dtype=np.float32)[start_idx][:, None]
    else:
        pt = np.zeros((len(start_idx), 1), np.float32)
    return BackedResponse(genes=names, labels=labels, perturbations=perts,
                          control_mean=control_mean.astype(np.float32),
                          deltas=deltas.astype(np.float32),
                          start_states=np.ascontiguousarray(states, dtype=np.float32),
                          pseudotime=np.ascontiguousarray(pt, dtype=np.float32),
                          absmax=float(max(stats.absmax[genes].max(), 1e-3)))


# ============================================================================ synthetic atlas
def write_synthetic_atlas(
    path: str | os.PathLike,
    *,
    n_cells: int,
    n_genes: int = 2000,
    n_perturbations: int = 2000,
    control_fraction: float = 0.1,
    density: float = 0.07,
    n_affected: int = 10,
    chunk_size: int = 20_000,
    seed: int = 0,
) -> Path:
    """Write a realistically sparse synthetic perturbation screen to ``.h5ad`` chunk by chunk.

    The count matrix is never built in memory: rows are generated ``chunk_size`` cells at a time and
    appended to resizable HDF5 datasets in anndata's on-disk CSR layout (``X`` group with
    ``encoding-type="csr_matrix"``, ``data`` / ``indices`` / ``indptr``); ``obs`` and ``var`` are
    written by anndata. Gene ``j`` is detected in a cell with a gene-specific probability (mean
    ``density``, heavy-tailed across genes) scaled by the cell's library size; a detected gene has
    ``1 + NegBin`` counts. Each perturbation knocks its target gene down to 10 % and shifts
    ``n_affected`` other genes up or down by a factor 2.

    Parameters
    ----------
    path
        Output ``.h5ad`` path (overwritten).
    n_cells, n_genes
        Matrix shape.
    n_perturbations
        Distinct perturbations (targets are the first genes, ``G00000`` …); must be ``<= n_genes``.
    control_fraction
        Share of cells labelled ``non-targeting``.
    density
        Expected fraction of non-zero entries.
    n_affected
        Genes shifted by each perturbation besides its target.
    chunk_size
        Cells generated and written per step (memory ∝ ``chunk_size × n_genes``).
    seed
        Random seed (the file is a deterministic function of the arguments).

    Returns
    -------
    The path. ``obs["perturbation"]`` holds the labels; ``obs["library_size"]`` the cell's size factor.
    """
    import h5py

    if n_perturbations > n_genes:
        raise ValueError(f"n_perturbations ({n_perturbations}) must not exceed n_genes ({n_genes}).")
    path = Path(path)
    rng = np.random.default_rng(seed)
    genes = [f"G{j:05d}" for j in range(n_genes)]
    p_gene = rng.gamma(0.6, density / 0.6, n_genes).clip(1e-4, 0.95).astype(np.float32)
    mu_gene = rng.gamma(1.0, 1.5, n_genes).astype(np.float32)
    effect = np.ones((n_perturbations + 1, n_genes), np.float32)  # row 0 = control
    for k in range(n_perturbations):
        effect[k + 1, k] = 0.1
        hit = rng.choice(n_genes, n_affected, replace=False)
        effect[k + 1, hit] *= np.where(rng.random(n_affected) < 0.5, 0.5, 2.0).astype(np.float32)
    codes = np.where(rng.random(n_cells) < control_fraction, 0, rng.integers(1, n_perturbations + 1, n_cells))
    labels = np.array(["non-targeting"] + genes[:n_perturbations], dtype=object)
    lib = rng.lognormal(0.0, 0.3, n_cells).astype(np.float32)
    obs = pd.DataFrame({"perturbation": pd.Categorical.from_codes(codes, categories=labels),
                        "library_size": lib}, index=pd.Index([f"c{i}" for i in range(n_cells)]))
    ad.AnnData(obs=obs, var=pd.DataFrame(index=genes)).write_h5ad(path)
    del obs
    with h5py.File(path, "a") as f:
        if "X" in f:
            del f["X"]
        g = f.create_group("X")
        g.attrs["encoding-type"] = "csr_matrix"
        g.attrs["encoding-version"] = "0.1.0"
        g.attrs["shape"] = np.array([n_cells, n_genes], dtype=np.int64)
        data = g.create_dataset("data", shape=(0,), maxshape=(None,), dtype=np.float32, chunks=(1 << 18,))
        indices = g.create_dataset("indices", shape=(0,), maxshape=(None,), dtype=np.int32, chunks=(1 << 18,))
        indptr = g.create_dataset("indptr", shape=(n_cells + 1,), dtype=np.int64)
        indptr[0] = 0
        nnz = 0
        for start in range(0, n_cells, chunk_size):
            stop = min(start + chunk_size, n_cells)
            eff = effect[codes[start:stop]]
            prob = np.minimum(p_gene[None, :] * lib[start:stop, None] * np.sqrt(eff), 0.99)
            mask = rng.random(prob.shape, dtype=np.float32) < prob
            r, c = np.nonzero(mask)
            mean = mu_gene[c] * lib[start + r] * eff[r, c]
            counts = 1 + rng.negative_binomial(2.0, 2.0 / (2.0 + mean))
            m = len(c)
            data.resize((nnz + m,))
            indices.resize((nnz + m,))
            data[nnz:nnz + m] = counts.astype(np.float32)
            indices[nnz:nnz + m] = c.astype(np.int32)
            row_nnz = np.bincount(r, minlength=stop - start)
            indptr[start + 1:stop + 1] = nnz + np.cumsum(row_nnz)
            nnz += m
    return path
