"""Candidate-gene features computed from expression data, without internet.

Every gene of an expression matrix is treated as a point described by its expression across cells:

* ``svd_0 … svd_{k-1}``: a truncated SVD of the centred, scaled gene × cell log-normalised matrix
  (genes as points), i.e. a co-expression embedding — genes expressed in the same cells land close;
* ``mean``, ``frac``, ``var``: mean log-normalised expression, fraction of cells expressing, variance;
* per cell-type mean expression when a ``groupby`` column is given (Kang 2018: 13 PBMC types);
* ``logfc``: stimulated vs control log-fold change when a ``contrast`` is given (Kang 2018 IFN-β).

Features of several data sets are concatenated (columns prefixed by the data set name) and every
column is standardised over the genes that have it. A gene absent from a data set gets zeros in that
data set's columns and ``1`` in its ``<name>__missing`` indicator column, so genes that were never
measured stay candidates (they are only described by their missingness).

Computed features are cached as ``.parquet``/``.pkl`` under ``~/.cache/scagents`` (or
``$SCAGENTS_CACHE``); nothing is written inside the repository.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from scagents._atomic import atomic_path
from scagents.errors import DataError, DataFileError

__all__ = ["gene_embedding", "combine_features", "align_features", "pbmc_gene_features",
           "default_data_dir", "cache_dir", "PBMC_SOURCES", "expression_prior", "T_CELL_COLUMNS",
           "symbol_families", "write_frame_cache", "read_frame_cache"]

#: Kang 2018 cell types used by :func:`expression_prior` (T lymphocytes, the cells of the Schmidt screens).
T_CELL_COLUMNS = ("kang__type_CD4 Naive T", "kang__type_CD4 Memory T", "kang__type_CD8 T", "kang__type_T activated")

#: The shared PBMC expression sets used for the default features: (name, relative path, groupby, contrast)
PBMC_SOURCES: tuple[tuple[str, str, str | None, tuple[str, str, str] | None], ...] = (
    ("kang", "stimulation/kang2018_ifnb_pbmc.h5ad", "seurat_annotations", ("stim", "STIM", "CTRL")),
    ("mimitou", "multiome/mimitou2019_citeseq_pbmc.h5ad", None, None),
    ("pbmc5k", "multiome/pbmc5k_citeseq_small.h5ad", None, None),
)


def cache_dir() -> Path:
    """Folder for cached features: ``$SCAGENTS_CACHE`` or ``~/.cache/scagents``."""
    path = Path(os.environ.get("SCAGENTS_CACHE", Path.home() / ".cache" / "scagents"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_data_dir() -> Path | None:
    """The shared data folder: ``$SCAGENTS_DATA`` or ``../shared/data`` beside the checkout."""
    env = os.environ.get("SCAGENTS_DATA")
    if env:
        return Path(env)
    path = Path(__file__).resolve().parents[3] / "shared" / "data"
    return path if path.exists() else None


def _lognorm(adata) -> tuple[np.ndarray, list[str]]:
    import scipy.sparse as sp

    X = adata.X
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    X = X.astype(np.float64)
    if X.size == 0:
        raise DataError("The expression matrix is empty; give a data set with cells and genes.")
    if np.isnan(X).any():
        raise DataError("The expression matrix contains NaN; remove or impute them first.")
    if (X < 0).any():  # already log-normalised / scaled values: use as they are
        L = X
    else:
        tot = X.sum(axis=1, keepdims=True)
        tot[tot == 0] = 1.0
        L = np.log1p(X / tot * 1e4)
    names = [str(g).removeprefix("hg19_").removeprefix("GRCh38_").upper() for g in adata.var_names]
    return L, names


def gene_embedding(
    adata,
    *,
    n_components: int = 16,
    groupby: str | None = None,
    contrast: tuple[str, str, str] | None = None,
    min_cells: int = 3,
) -> pd.DataFrame:
    """Describe every gene of ``adata`` by its expression across cells.

    Parameters
    ----------
    adata
        AnnData with counts (log-normalised here: total 1e4 + ``log1p``) or log-normalised values.
    n_components
        Number of SVD components of the gene × cell matrix (genes as points).
    groupby
        Optional ``.obs`` column (e.g. cell type): adds the per-group mean expression of each gene.
    contrast
        Optional ``(obs column, treated label, control label)``: adds ``logfc`` = mean(treated) −
        mean(control) of the log-normalised expression.
    min_cells
        Genes expressed in fewer cells are left out (they become "missing").

    Returns
    -------
    pandas.DataFrame
        Genes (upper-case symbols, ``hg19_`` prefixes removed; duplicates keep the first) × features.
    """
    from sklearn.decomposition import TruncatedSVD

    L, names = _lognorm(adata)
    frac = (L > 0).mean(axis=0)
    keep = (L > 0).sum(axis=0) >= min_cells
    names_arr = np.asarray(names)
    _, first = np.unique(names_arr, return_index=True)
    uniq = np.zeros(len(names), bool)
    uniq[first] = True
    keep &= uniq
    if keep.sum() < 2:
        raise DataError(f"Only {int(keep.sum())} genes are expressed in ≥ {min_cells} cells; "
                        "give a larger data set or lower min_cells.")
    L = L[:, keep]
    G = L.T  # genes × cells
    Gc = G - G.mean(axis=1, keepdims=True)
    sd = Gc.std(axis=1, keepdims=True)
    sd[sd == 0] = 1.0
    Gc /= sd
    k = int(min(n_components, min(Gc.shape) - 1))
    emb = TruncatedSVD(n_components=max(k, 1), random_state=0).fit_transform(Gc)
    cols: dict[str, np.ndarray] = {f"svd_{i}": emb[:, i] for i in range(emb.shape[1])}
    cols["mean"] = G.mean(axis=1)
    cols["frac"] = frac[keep]
    cols["var"] = G.var(axis=1)
    obs = adata.obs
    if groupby is not None:
        if groupby not in obs:
            raise DataError(f"groupby column {groupby!r} is not in adata.obs ({list(obs.columns)}).")
        labels = obs[groupby].astype(str).to_numpy()
        for lab in sorted(set(labels)):
            cols[f"type_{lab}"] = G[:, labels == lab].mean(axis=1)
    if contrast is not None:
        col, treated, control = contrast
        if col not in obs:
            raise DataError(f"contrast column {col!r} is not in adata.obs ({list(obs.columns)}).")
        lab = obs[col].astype(str).to_numpy()
        if not (lab == treated).any() or not (lab == control).any():
            raise DataError(f"contrast {contrast}: no cells labelled {treated!r} or {control!r} in obs[{col!r}].")
        cols["logfc"] = G[:, lab == treated].mean(axis=1) - G[:, lab == control].mean(axis=1)
    return pd.DataFrame(cols, index=pd.Index(names_arr[keep], name="gene"))


def combine_features(parts: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Concatenate per-data-set features (outer join on genes) with missing indicators.

    Each column is standardised (mean 0, sd 1) over the genes that have it; a gene absent from a
    data set gets zeros in its columns and ``1`` in ``<name>__missing``.
    """
    blocks = []
    for name, df in parts.items():
        z = (df - df.mean()) / df.std(ddof=0).replace(0, 1.0)
        z.columns = [f"{name}__{c}" for c in df.columns]
        blocks.append(z)
    out = pd.concat(blocks, axis=1, join="outer")
    for name, df in parts.items():
        out[f"{name}__missing"] = (~out.index.isin(df.index)).astype(float)
    return out.fillna(0.0).astype(np.float64)


def align_features(features: pd.DataFrame, genes: Sequence[str]) -> pd.DataFrame:
    """Rows of ``features`` for ``genes`` (case-insensitive), with a fallback for unknown genes.

    Genes not in ``features`` get zeros and ``1`` in the ``missing`` column (added if absent).
    The returned index is ``genes`` exactly as given.
    """
    feats = features.copy()
    feats.index = [str(g).upper() for g in feats.index]
    feats = feats[~feats.index.duplicated()]
    up = [str(g).upper() for g in genes]
    out = feats.reindex(up)
    missing = out.isna().all(axis=1).to_numpy().astype(float)
    out = out.fillna(0.0)
    out["missing"] = missing
    out.index = pd.Index(list(genes), name="gene")
    return out.astype(np.float64)


def pbmc_gene_features(
    data_dir: str | Path | None = None,
    *,
    n_components: int = 16,
    sources: Sequence[tuple[str, str, str | None, tuple[str, str, str] | None]] = PBMC_SOURCES,
    use_cache: bool = True,
) -> pd.DataFrame:
    """Gene features from the shared real PBMC expression sets (Kang 2018, Mimitou 2019, pbmc5k).

    Parameters
    ----------
    data_dir
        Folder holding the shared data (default: :func:`default_data_dir`).
    n_components
        SVD components per data set.
    sources
        ``(name, relative path, groupby, contrast)`` per data set; missing files are skipped.
    use_cache
        Read/write the result in :func:`cache_dir`.

    Returns
    -------
    pandas.DataFrame
        ~23k genes × features (see the module docstring). Computing takes ~30 s; cached afterwards.

    Raises
    ------
    DataFileError
        If none of the data sets is found.
    """
    import anndata as ad

    root = Path(data_dir) if data_dir is not None else default_data_dir()
    if root is None:
        raise DataFileError("No shared data folder found: pass data_dir= or set SCAGENTS_DATA to the "
                            "folder holding stimulation/ and multiome/.")
    files = [(n, root / p, g, c) for n, p, g, c in sources if (root / p).exists()]
    if not files:
        raise DataFileError(f"None of the PBMC expression sets {[p for _, p, _, _ in sources]} is under {root}.")
    key = hashlib.sha256(repr([(n, str(p), p.stat().st_size, g, c) for n, p, g, c in files]
                              + [n_components, 1]).encode()).hexdigest()[:16]
    cpath = cache_dir() / f"campaign_features_{key}.npz"
    if use_cache and cpath.exists():
        return read_frame_cache(cpath)
    parts = {}
    for name, path, groupby, contrast in files:
        adata = ad.read_h5ad(path)
        parts[name] = gene_embedding(adata, n_components=n_components, groupby=groupby, contrast=contrast)
    out = combine_features(parts)
    if use_cache:
        write_frame_cache(out, cpath)
    return out


def write_frame_cache(df: pd.DataFrame, path: str | Path) -> Path:
    """Cache a numeric DataFrame as ``.npz`` (values, index, columns; no pickles), atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, values=df.to_numpy(np.float64), index=np.asarray(df.index.astype(str), dtype=str),
                 columns=np.asarray(df.columns.astype(str), dtype=str),
                 index_name=np.asarray(str(df.index.name or ""), dtype=str))
    return Path(path)


def read_frame_cache(path: str | Path) -> pd.DataFrame:
    """Read a cache written by :func:`write_frame_cache`, never unpickling anything.

    Raises
    ------
    DataFileError
        The file is not such a cache (truncated, or holding pickled objects); delete it and the
        features are computed again.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            values, index, columns = z["values"], z["index"], z["columns"]
            name = str(z["index_name"]) if "index_name" in z else ""
        return pd.DataFrame(values.astype(np.float64, copy=False),
                            index=pd.Index(index.astype(str), name=name or None),
                            columns=columns.astype(str))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        msg = " ".join(str(exc).split())[:120]
        raise DataFileError(f"The feature cache {str(path)!r} is not a valid scagents cache "
                            f"({type(exc).__name__}: {msg}); delete it and the features are "
                            "computed again.") from None


def expression_prior(features: pd.DataFrame, *, columns: Sequence[str] | None = None,
                     absent: float = -3.0) -> pd.Series:
    """Round-1 prior from expression alone: genes expressed highly in lymphocytes come first.

    A heuristic (never fitted to screen scores): a knockout can only change a read-out if the gene
    is expressed in the screened cells, and broadly, highly expressed genes (core machinery) are
    more often screen hits. The prior is the mean over ``columns`` of the standardised expression
    level, each column counted only for genes measured in its data set.

    Parameters
    ----------
    features
        Output of :func:`pbmc_gene_features` / :func:`combine_features` (optionally
        :func:`align_features`-ed): standardised columns plus ``<name>__missing`` indicators.
    columns
        Expression-level columns to average; default: the Kang 2018 T-cell means
        (:data:`T_CELL_COLUMNS`) and the mean expression of every other data set
        (``<name>__mean``), those present.
    absent
        Prior of genes measured in none of the columns' data sets.

    Returns
    -------
    pandas.Series
        One value per row of ``features`` (same index), higher = more promising.

    Raises
    ------
    DataError
        If none of ``columns`` is in ``features``.
    """
    if columns is None:
        columns = [c for c in T_CELL_COLUMNS if c in features]
        tsets = {c.split("__")[0] for c in columns}
        columns += [c for c in features.columns
                    if str(c).endswith("__mean") and str(c).split("__")[0] not in tsets]
    cols = [c for c in columns if c in features]
    if not cols:
        raise DataError(f"None of the prior columns {list(columns)[:6]} is in the features; give columns= "
                        "naming expression-level columns.")
    Z = features[cols].astype(np.float64).copy()
    for c in cols:
        miss = f"{str(c).split('__')[0]}__missing"
        if miss in features:
            Z.loc[features[miss].to_numpy() > 0, c] = np.nan
    if "missing" in features:
        Z.loc[features["missing"].to_numpy() > 0] = np.nan
    return Z.mean(axis=1).fillna(absent).rename("expression_prior")


def symbol_families(genes: Sequence[str], *, min_size: int = 2, max_size: int = 200) -> np.ndarray:
    """Gene families from the gene symbols alone (HGNC nomenclature), e.g. RPL10A, RPL3 → ``RPL``.

    The family is the symbol without its trailing number and suffix (``MED12`` → ``MED``,
    ``NDUFA4`` → ``NDUFA``, ``CD3E`` → ``CD``); symbols of protein complexes and paralogue groups
    share it. Computed from the candidate names only — no screen data, no download.

    Parameters
    ----------
    genes
        Gene symbols (pairs ``"A+B"`` take the family of ``A``).
    min_size, max_size
        Families with fewer or more members among ``genes`` get no family (``-1``).

    Returns
    -------
    numpy.ndarray
        Integer family id per gene (``-1`` = none).
    """
    import re

    names = [str(g).split("+")[0].strip().upper() for g in genes]
    fam = pd.Series([re.sub(r"\d+[A-Z]*\d*$", "", g) or g for g in names])
    codes, _ = pd.factorize(fam)
    size = np.bincount(codes)[codes]
    out = codes.astype(np.int64)
    out[(size < min_size) | (size > max_size)] = -1
    keep = np.unique(out[out >= 0])
    remap = np.full(int(codes.max(initial=-1)) + 1, -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    out[out >= 0] = remap[out[out >= 0]]
    return out
