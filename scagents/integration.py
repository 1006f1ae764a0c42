"""Per-modality preprocessing, joint embedding, clusters and pseudotime.

:func:`integrate` takes an :class:`~anndata.AnnData` (one modality, treated as RNA) or a
:class:`~mudata.MuData` with any of the modalities below and runs, in scanpy / muon conventions:

=========  ==========================================================  ==========================
modality   preprocessing                                               representation
=========  ==========================================================  ==========================
RNA        normalise to 10,000 per cell (counts only), ``log1p``,      ``obsm["X_pca"]``
           highly variable genes, PCA
ATAC       TF-IDF (:func:`muon.atac.pp.tfidf`), LSI                    ``obsm["X_lsi"]``
           (as :func:`muon.atac.tl.lsi`, seeded); component 1,
           which tracks sequencing depth, is dropped
protein    CLR (:func:`muon.prot.pp.clr`), PCA                         ``obsm["X_pca"]``
=========  ==========================================================  ==========================

Each modality gets its own k-nearest-neighbour graph; with more than one modality they are combined
by muon's weighted nearest neighbours (WNN, :func:`muon.pp.neighbors`). On the joint graph (or the
single modality's graph) the function computes a UMAP, clusters (Leiden when ``leidenalg`` and
``igraph`` are installed, otherwise k-means on the diffusion map -- the method used is recorded) and
diffusion pseudotime (:func:`scanpy.tl.dpt`) from a root cell chosen as explained in
``uns["scagents"]["integration"]["root"]``.

ADT counts stored in ``.obsm`` of an RNA AnnData (CITE-seq files often do this) are split into a
``"prot"`` modality by :func:`adt_from_obsm`.
"""

from __future__ import annotations

import warnings
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
from mudata import MuData

from scagents._warnings import dependency_warnings_filtered
from scagents.data.io import modality_kind
from scagents.errors import DataError, ModalityError

_ADT_OBSM_KEYS = ("adt", "protein_expression", "protein", "prot", "ADT")
_TIME_COLUMNS = ("time", "timepoint", "time_point", "Time", "day", "hours")

__all__ = ["adt_from_obsm", "integrate", "modality_kind"]


def adt_from_obsm(adata: ad.AnnData, key: str | None = None, *, names: list[str] | None = None) -> MuData:
    """Split antibody-derived tag (ADT) counts kept in ``adata.obsm`` into a ``"prot"`` modality.

    Parameters
    ----------
    adata
        RNA AnnData whose ``.obsm[key]`` holds cells x proteins ADT counts (a DataFrame or an array).
    key
        The ``.obsm`` key. ``None`` looks for ``"adt"``, ``"protein_expression"``, ``"protein"``,
        ``"prot"``.
    names
        Protein names when ``.obsm[key]`` is an array; default ``adata.uns["protein_names"]`` when
        present, else ``"prot_0"``, ``"prot_1"``, ...

    Returns
    -------
    A MuData with modalities ``"rna"`` (a copy of ``adata`` without ``.obsm[key]``) and ``"prot"``
    (the ADT counts, also kept in ``layers["counts"]``).

    Raises
    ------
    ModalityError
        When no ADT matrix is found.
    """
    if key is None:
        key = next((k for k in _ADT_OBSM_KEYS if k in adata.obsm), None)
        if key is None:
            raise ModalityError(
                f"No ADT matrix in .obsm (keys: {list(adata.obsm)}); pass key= naming the obsm entry "
                f"that holds the protein counts."
            )
    elif key not in adata.obsm:
        raise ModalityError(f"adata.obsm has no {key!r}; available keys: {list(adata.obsm)}.")
    adt = adata.obsm[key]
    if isinstance(adt, pd.DataFrame):
        values = adt.to_numpy(dtype=np.float32)
        var_names = [str(c) for c in adt.columns]
    else:
        values = adt.toarray() if sp.issparse(adt) else np.asarray(adt)
        values = values.astype(np.float32)
        if names is None and "protein_names" in adata.uns:
            names = [str(n) for n in np.asarray(adata.uns["protein_names"]).ravel()]
        var_names = list(names) if names is not None else [f"prot_{i}" for i in range(values.shape[1])]
    if len(var_names) != values.shape[1]:
        raise DataError(f"{len(var_names)} protein names for {values.shape[1]} ADT columns.")
    prot = ad.AnnData(values, obs=pd.DataFrame(index=adata.obs_names.copy()))
    prot.var_names = pd.Index(var_names).astype(str)
    prot.var_names_make_unique()
    prot.layers["counts"] = prot.X.copy()
    rna = adata.copy()
    del rna.obsm[key]
    mdata = MuData({"rna": rna, "prot": prot})
    mdata.uns["scagents_adt_source"] = f"obsm[{key!r}]"
    return mdata


# --------------------------------------------------------------------------------------------- utils
def _sample_values(X, n: int = 20000) -> np.ndarray:
    data = X.data if sp.issparse(X) else np.asarray(X).ravel()
    if data.size > n:
        data = data[np.random.default_rng(0).choice(data.size, n, replace=False)]
    return np.asarray(data, dtype=np.float64)


def _looks_like_counts(X) -> bool:
    v = _sample_values(X)
    return v.size > 0 and bool(np.all(v >= 0)) and bool(np.allclose(v, np.round(v)))


#: layers holding a modality's values before TF-IDF (ATAC) or CLR (protein): counts, or other values
_INPUT_LAYERS = ("counts", "input")


def _restore_input(adata: ad.AnnData) -> str:
    """Put the values that ATAC / protein preprocessing transforms into ``X`` and keep them in a layer.

    A modality integrated before (or given with ``layers["counts"]``) starts again from
    ``layers["counts"]`` (or ``layers["input"]``), so that a second :func:`integrate` does not
    transform TF-IDF or CLR values again. Otherwise ``X`` is kept in ``layers["counts"]`` when it
    holds counts, else in ``layers["input"]``. Returns where the values came from.
    """
    for key in _INPUT_LAYERS:
        if key in adata.layers:
            adata.X = adata.layers[key].copy()
            return f"layers[{key!r}]"
    adata.layers["counts" if _looks_like_counts(adata.X) else "input"] = adata.X.copy()
    return "X"


def _n_comps(n_pcs: int, adata: ad.AnnData) -> int:
    return int(max(1, min(n_pcs, adata.n_obs - 1, adata.n_vars - 1)))


def _neighbors(adata: ad.AnnData, rep: str, n_neighbors: int) -> None:
    import scanpy as sc

    # cells with an identical representation (e.g. no ATAC fragment at all) give zero kNN bandwidths
    # and NaN WNN weights: separate them by a tiny deterministic jitter
    emb = np.asarray(adata.obsm[rep], dtype=np.float64)
    _, first, counts = np.unique(np.round(emb, 10), axis=0, return_index=True, return_counts=True)
    if (counts > 1).any():
        dup = np.ones(adata.n_obs, dtype=bool)
        dup[first] = False
        scale = 1e-3 * float(np.median(emb.std(axis=0)) or 1.0)
        emb[dup] += np.random.default_rng(0).normal(scale=scale, size=(int(dup.sum()), emb.shape[1]))
        adata.obsm[rep] = emb
        adata.uns.setdefault("scagents_jittered_cells", int(dup.sum()))
    k = int(min(n_neighbors, adata.n_obs - 1))
    sc.pp.neighbors(adata, n_neighbors=k, use_rep=rep, random_state=0)


def _prep_rna(adata: ad.AnnData, n_pcs: int, n_neighbors: int) -> dict[str, Any]:
    import scanpy as sc

    if np.any(_sample_values(adata.X) < 0):
        raise DataError("RNA values are negative (scaled data?); integrate() needs counts or log-normalised values.")
    steps: list[str] = []
    is_counts = _looks_like_counts(adata.X)
    if is_counts:
        adata.layers["counts"] = adata.X.copy()
        sc.pp.normalize_total(adata, target_sum=1e4)
        sc.pp.log1p(adata)
        steps += ["normalize_total(1e4)", "log1p"]
        rec = (adata.uns.get("scagents") or {}).get("data")
        if hasattr(rec, "get") and rec.get("is_counts"):  # scagents.data.standardize's record of X
            rec["is_counts"] = False  # X is log-normalised now; lognormalize() must not log it again
    elif _sample_values(adata.X).max(initial=0.0) > 30:
        sc.pp.log1p(adata)
        steps.append("log1p (values were normalised but not logged)")
    else:
        steps.append("values taken as log-normalised")
    n_top = int(min(2000, adata.n_vars))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.pp.highly_variable_genes(adata, n_top_genes=n_top, flavor="seurat")
    steps.append(f"highly_variable_genes(n_top_genes={n_top}, flavor='seurat')")
    hvg = adata.var["highly_variable"].to_numpy()
    use_hvg = hvg.sum() > 2
    comps = int(max(1, min(n_pcs, adata.n_obs - 1, (int(hvg.sum()) if use_hvg else adata.n_vars) - 1)))
    sc.tl.pca(adata, n_comps=comps, mask_var="highly_variable" if use_hvg else None, random_state=0)
    steps.append(f"pca(n_comps={comps})")
    _neighbors(adata, "X_pca", n_neighbors)
    return {"kind": "rna", "is_counts": bool(is_counts), "steps": steps, "n_hvg": int(hvg.sum()),
            "rep": "X_pca", "n_comps": comps}


def _lsi(adata: ad.AnnData, n_comps: int) -> None:
    """:func:`muon.atac.tl.lsi` (scaled embeddings) with a seeded start vector: muon's call of
    :func:`scipy.sparse.linalg.svds` starts from numpy's global random state, so the same data gave
    other components (and clusters) from run to run."""
    from scipy.sparse.linalg import svds

    cells, values, loadings = svds(adata.X, k=n_comps, random_state=0)
    order = np.argsort(-values)
    cells, values, loadings = cells[:, order], values[order], loadings[order, :]
    adata.obsm["X_lsi"] = (cells - cells.mean(axis=0)) / cells.std(axis=0)
    adata.uns["lsi"] = {"stdev": values / np.sqrt(adata.n_obs - 1)}
    adata.varm["LSI"] = loadings.T


def _prep_atac(adata: ad.AnnData, n_pcs: int, n_neighbors: int) -> dict[str, Any]:
    import muon as mu

    source = _restore_input(adata)
    if np.any(_sample_values(adata.X) < 0):
        raise DataError("ATAC values are negative; integrate() needs peak counts or non-negative accessibility.")
    is_counts = _looks_like_counts(adata.X)
    if not sp.issparse(adata.X):
        adata.X = sp.csr_matrix(adata.X)
    # drop peaks seen in no cell: they make TF-IDF divide by zero
    seen = np.asarray((adata.X > 0).sum(axis=0)).ravel() > 0
    if not seen.all():
        adata._inplace_subset_var(seen)
    adata.X = adata.X.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mu.atac.pp.tfidf(adata, log_tf=True, log_idf=True)
    # cells with no accessible peak give 0/0 in the term frequency: set them to 0
    X = adata.X if sp.issparse(adata.X) else sp.csr_matrix(adata.X)
    X.data[~np.isfinite(X.data)] = 0.0
    X.eliminate_zeros()
    adata.X = X
    comps = int(max(2, min(n_pcs + 1, adata.n_obs - 1, adata.n_vars - 1)))
    _lsi(adata, comps)
    # LSI component 1 follows sequencing depth: drop it (Signac / muon tutorials do the same)
    adata.obsm["X_lsi"] = np.ascontiguousarray(adata.obsm["X_lsi"][:, 1:])
    adata.varm["LSI"] = np.ascontiguousarray(adata.varm["LSI"][:, 1:])
    adata.uns["lsi"]["stdev"] = np.asarray(adata.uns["lsi"]["stdev"])[1:]
    _neighbors(adata, "X_lsi", n_neighbors)
    return {"kind": "atac", "is_counts": bool(is_counts), "n_peaks_used": int(adata.n_vars),
            "steps": [f"values from {source}", "drop empty peaks", "tfidf(log_tf=True, log_idf=True)", f"lsi(n_comps={comps})",
                      "drop LSI component 1 (depth)"],
            "rep": "X_lsi", "n_comps": comps - 1}


def _prep_prot(adata: ad.AnnData, n_pcs: int, n_neighbors: int) -> dict[str, Any]:
    import muon as mu
    import scanpy as sc

    source = _restore_input(adata)
    if sp.issparse(adata.X):
        adata.X = adata.X.toarray()
    adata.X = np.asarray(adata.X, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mu.prot.pp.clr(adata)
    comps = _n_comps(n_pcs, adata)
    sc.tl.pca(adata, n_comps=comps, random_state=0)
    _neighbors(adata, "X_pca", n_neighbors)
    return {"kind": "prot", "steps": [f"values from {source}", "clr(axis=0)", f"pca(n_comps={comps})"], "rep": "X_pca",
            "n_comps": comps}


_PREP = {"rna": _prep_rna, "atac": _prep_atac, "prot": _prep_prot}


# ----------------------------------------------------------------------------------- joint analyses
def _concat_graph(mods: dict[str, ad.AnnData], n_neighbors: int) -> tuple[ad.AnnData, dict]:
    """Joint graph on the concatenated per-modality representations, each scaled to unit total variance."""
    blocks = []
    for m in mods.values():
        rep = np.asarray(m.obsm[m.uns["neighbors"]["params"].get("use_rep", "X_pca")], dtype=np.float64)
        rep = rep - rep.mean(axis=0)
        blocks.append(rep / np.sqrt(max(float((rep**2).sum(axis=1).mean()), 1e-12)))
    proxy = ad.AnnData(obs=pd.DataFrame(index=next(iter(mods.values())).obs_names.copy()))
    proxy.obsm["X_rep"] = np.hstack(blocks)
    _neighbors(proxy, "X_rep", n_neighbors)
    return proxy, {"method": "concatenation of per-modality representations (unit total variance each)",
                   "modalities": list(mods)}


def _joint_graph(mods: dict[str, ad.AnnData], mdata: MuData | None, n_neighbors: int,
                 joint: str = "wnn") -> tuple[ad.AnnData, dict]:
    """An AnnData proxy (no features) holding the graph the joint analyses run on."""
    if mdata is None or len(mods) == 1:
        name, only = next(iter(mods.items()))
        proxy = ad.AnnData(obs=pd.DataFrame(index=only.obs_names.copy()))
        proxy.obsp["connectivities"] = only.obsp["connectivities"]
        proxy.obsp["distances"] = only.obsp["distances"]
        proxy.uns["neighbors"] = dict(only.uns["neighbors"])
        rep = only.uns["neighbors"]["params"].get("use_rep", "X_pca")
        proxy.obsm["X_rep"] = only.obsm[rep]
        proxy.uns["neighbors"]["params"] = dict(only.uns["neighbors"]["params"], use_rep="X_rep")
        return proxy, {"method": "single modality", "modality": name}
    if joint == "concat":
        return _concat_graph(mods, n_neighbors)
    import muon as mu

    k = int(min(n_neighbors, mdata.n_obs - 1))
    mu.pp.neighbors(mdata, n_neighbors=k, n_bandwidth_neighbors=min(20, k),
                    n_multineighbors=min(200, mdata.n_obs - 1), key_added="wnn",
                    add_weights_to_modalities=True, random_state=0)
    for key in ("wnn_connectivities", "wnn_distances"):
        graph = mdata.obsp[key]
        graph.data[~np.isfinite(graph.data)] = 0.0
        graph.eliminate_zeros()
    proxy = ad.AnnData(obs=pd.DataFrame(index=mdata.obs_names.copy()))
    proxy.obsp["connectivities"] = mdata.obsp["wnn_connectivities"]
    proxy.obsp["distances"] = mdata.obsp["wnn_distances"]
    params = {"n_neighbors": k, "method": "umap", "metric": "euclidean", "use_rep": "X_rep",
              "random_state": 0}
    proxy.uns["neighbors"] = {"params": params, "connectivities_key": "connectivities",
                              "distances_key": "distances"}
    # a concatenation of the per-modality representations, used only to lay out disconnected parts
    reps = [m.obsm[m.uns["neighbors"]["params"].get("use_rep", "X_pca")] for m in mods.values()]
    proxy.obsm["X_rep"] = np.hstack([np.asarray(r) for r in reps])
    return proxy, {"method": "wnn (muon.pp.neighbors)", "modalities": list(mods),
                   "n_neighbors": k, "weights": "obs['<mod>:mod_weight']"}


def _cluster(proxy: ad.AnnData, resolution: float) -> dict[str, Any]:
    import scanpy as sc

    try:
        import igraph  # noqa: F401
        import leidenalg  # noqa: F401

        sc.tl.leiden(proxy, resolution=resolution, key_added="cluster", random_state=0,
                     flavor="igraph", n_iterations=2, directed=False)
        return {"method": "leiden", "resolution": resolution}
    except ImportError:
        from sklearn.cluster import KMeans

        emb = proxy.obsm["X_diffmap"][:, 1:]
        k = int(np.clip(round(4 * resolution * np.log10(max(proxy.n_obs, 10))), 2, max(2, proxy.n_obs // 10)))
        labels = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(emb)
        proxy.obs["cluster"] = pd.Categorical(labels.astype(str))
        return {"method": "kmeans on diffusion map (leidenalg/igraph not installed)",
                "n_clusters_rule": "round(4 * resolution * log10(n_cells))", "resolution": resolution}


def _time_column(obs: pd.DataFrame) -> str | None:
    candidates = [c for name in _TIME_COLUMNS for c in obs.columns if c == name or c.endswith(f":{name}")]
    for col in candidates:
        if obs[col].nunique() > 1:
            values = pd.to_numeric(obs[col].astype(str).str.extract(r"(-?\d+\.?\d*)")[0], errors="coerce")
            if values.notna().mean() > 0.9:
                return col
    return None


def _medoid(emb: np.ndarray, idx: np.ndarray) -> int:
    sub = emb[idx]
    centre = np.median(sub, axis=0)
    return int(idx[np.argmin(((sub - centre) ** 2).sum(axis=1))])


def _choose_root(proxy: ad.AnnData, obs: pd.DataFrame, root, n_genes: np.ndarray | None) -> dict[str, Any]:
    emb = proxy.obsm["X_diffmap"][:, 1:]
    names = proxy.obs_names
    if root is not None:
        if isinstance(root, (int, np.integer)):
            if not 0 <= int(root) < proxy.n_obs:
                raise DataError(f"root={root} is out of range for {proxy.n_obs} cells.")
            i = int(root)
        else:
            if str(root) not in names:
                raise DataError(f"root={root!r} is not a cell name (obs_names); pass an index or a cell name.")
            i = int(names.get_loc(str(root)))
        return {"index": i, "obs_name": str(names[i]), "rule": "user",
                "explanation": "root cell given by the caller"}
    if "is_control" in obs and obs["is_control"].astype(bool).any():
        idx = np.flatnonzero(obs["is_control"].astype(bool).to_numpy())
        i = _medoid(emb, idx)
        return {"index": i, "obs_name": str(names[i]), "rule": "control medoid",
                "explanation": f"the most central of the {idx.size} control cells (obs['is_control']) in "
                               f"diffusion-map space: pseudotime measures distance from the unperturbed state"}
    col = _time_column(obs)
    if col is not None:
        t = pd.to_numeric(obs[col].astype(str).str.extract(r"(-?\d+\.?\d*)")[0], errors="coerce").to_numpy()
        idx = np.flatnonzero(t == np.nanmin(t))
        i = _medoid(emb, idx)
        return {"index": i, "obs_name": str(names[i]), "rule": f"earliest obs['{col}']",
                "explanation": f"no control cells; the most central of the {idx.size} cells at the earliest "
                               f"time point {col}={np.nanmin(t):g}"}
    dc1 = emb[:, 0]
    lo, hi = int(np.argmin(dc1)), int(np.argmax(dc1))
    if n_genes is not None:
        q = max(1, int(0.05 * proxy.n_obs))
        order = np.argsort(dc1)
        low_side, high_side = float(np.mean(n_genes[order[:q]])), float(np.mean(n_genes[order[-q:]]))
        i = lo if low_side >= high_side else hi
        why = (f"no control cells or time column; of the two ends of diffusion component 1, the end whose "
               f"5% most extreme cells express more genes ({max(low_side, high_side):.0f} vs "
               f"{min(low_side, high_side):.0f} on average) -- progenitors express more genes (CytoTRACE)")
        return {"index": i, "obs_name": str(names[i]), "rule": "progenitor heuristic", "explanation": why}
    return {"index": lo, "obs_name": str(names[lo]), "rule": "diffusion component 1 minimum",
            "explanation": "no control cells, time column or RNA; the cell at the minimum of diffusion "
                           "component 1 (scanpy's customary choice)"}


@dependency_warnings_filtered()  # mudata's future warnings on every .update(): not the user's concern
def integrate(
    data: ad.AnnData | MuData,
    *,
    n_pcs: int = 30,
    n_neighbors: int = 15,
    resolution: float = 1.0,
    root: int | str | None = None,
    umap: bool = True,
    joint: str = "wnn",
    copy: bool = False,
) -> ad.AnnData | MuData | None:
    """Preprocess every modality, build a joint neighbour graph, cluster and order cells in pseudotime.

    Parameters
    ----------
    data
        An AnnData (one modality, preprocessed as RNA) or a MuData whose modalities are named
        ``rna``/``gex``, ``atac``/``peaks`` and/or ``prot``/``adt``. CITE-seq files with ADT counts in
        ``.obsm`` should first go through :func:`adt_from_obsm`.
    n_pcs
        Components of the PCA (RNA, protein) and LSI (ATAC) representations, capped by the data size.
    n_neighbors
        Neighbours of the per-modality and joint (WNN) graphs.
    resolution
        Leiden resolution (also sets the number of k-means clusters in the fallback).
    root
        Root cell of the pseudotime (index or obs name). ``None`` picks, in order: the medoid of the
        control cells (``obs["is_control"]``), the medoid of the earliest time point (an ``obs`` column
        named ``time``/``Time``/``timepoint``/``day``), or the end of diffusion component 1 whose cells
        express more genes (progenitor heuristic).
    umap
        Compute a UMAP of the joint graph.
    joint
        How several modalities are combined: ``"wnn"`` (muon's weighted nearest neighbours; its
        numba kernels compile on first use, which costs tens of seconds per Python process) or
        ``"concat"`` (one kNN graph on the concatenated per-modality representations, each scaled to
        unit total variance; fast, no per-cell modality weights).
    copy
        Return a modified copy instead of writing into ``data``.

    Returns
    -------
    ``data`` (a copy) when ``copy=True``, else ``None``. Written:

    - per modality: RNA ``X`` log-normalised (counts kept in ``layers["counts"]``),
      ``var["highly_variable"]``, ``obsm["X_pca"]``; ATAC ``X`` TF-IDF, ``obsm["X_lsi"]``,
      ``varm["LSI"]``; protein ``X`` CLR, ``obsm["X_pca"]``; each with ``obsp["connectivities"]``.
      The ATAC and protein values before TF-IDF / CLR are kept in ``layers["counts"]`` (counts) or
      ``layers["input"]`` (other values), and a second call starts from them;
    - ``obsp["wnn_connectivities"]`` / ``obsp["wnn_distances"]`` and ``obs["<mod>:mod_weight"]``
      (MuData with several modalities and ``joint="wnn"``);
    - ``obsm["X_wnn_umap"]`` (several modalities, WNN), ``obsm["X_joint_umap"]`` (``joint="concat"``)
      or ``obsm["X_umap"]`` (one modality) when ``umap``;
    - ``obsm["X_diffmap"]``, ``obs["cluster"]`` (categorical), ``obs["dpt_pseudotime"]`` in [0, 1]
      (also copied into each modality's ``obs``);
    - ``uns["scagents"]["integration"]``: parameters, per-modality steps, the joint method, the
      clustering method and ``"root"`` (index, obs name, rule, explanation).

    Raises
    ------
    ModalityError
        Unknown modality name.
    DataError
        Too few cells, an empty modality, modalities holding different cells, negative values,
        bad root.
    """
    import scanpy as sc

    if copy:
        data = data.copy()
    if joint not in ("wnn", "concat"):
        raise ValueError(f"joint must be 'wnn' or 'concat', got {joint!r}.")
    if data.n_obs < 10:
        raise DataError(f"integrate() needs at least 10 cells, got {data.n_obs}.")
    if isinstance(data, MuData):
        data.update()
        mods = {name: data.mod[name] for name in data.mod}
        kinds = {name: modality_kind(name) for name in mods}
        for name, a in mods.items():
            if a.n_obs == 0 or a.n_vars == 0:
                raise DataError(f"Modality {name!r} holds {a.n_obs} cells × {a.n_vars} features: "
                                f"nothing to integrate; drop it first (del mdata.mod[{name!r}]; "
                                "mdata.update()).")
        if len(set(mods[m].n_obs for m in mods)) > 1 or any(
            not mods[m].obs_names.equals(data.obs_names) for m in mods
        ):
            raise DataError(
                "The modalities of the MuData do not hold the same cells in the same order; subset them to "
                "the shared cells first (muon.pp.intersect_obs(mdata))."
            )
        mdata: MuData | None = data
    else:
        mods = {"rna": data}
        kinds = {"rna": "rna"}
        mdata = None
    records = {}
    for name, adata in mods.items():
        records[name] = _PREP[kinds[name]](adata, n_pcs, n_neighbors)
    if mdata is not None:
        mdata.update()
    proxy, joint_record = _joint_graph(mods, mdata, n_neighbors, joint)

    sc.tl.diffmap(proxy, n_comps=int(min(15, proxy.n_obs - 2)))
    clustering = _cluster(proxy, resolution)
    clustering["n_clusters"] = int(proxy.obs["cluster"].nunique())

    rna_name = next((m for m, k in kinds.items() if k == "rna"), None)
    n_genes = None
    if rna_name is not None:
        X = mods[rna_name].X
        n_genes = np.asarray((X > 0).sum(axis=1)).ravel().astype(float)
    root_info = _choose_root(proxy, data.obs, root, n_genes)
    proxy.uns["iroot"] = root_info["index"]
    sc.tl.dpt(proxy, n_dcs=int(min(10, proxy.obsm["X_diffmap"].shape[1])))
    pt = proxy.obs["dpt_pseudotime"].to_numpy(dtype=float)
    unreachable = ~np.isfinite(pt)
    if unreachable.any():
        pt[unreachable] = 1.0
    if pt.max() > 0:
        pt = pt / pt.max()
    root_info["n_unreachable_set_to_1"] = int(unreachable.sum())

    umap_key = None
    if umap:
        sc.tl.umap(proxy, random_state=0)
        umap_key = "X_umap" if len(mods) == 1 else ("X_wnn_umap" if joint == "wnn" else "X_joint_umap")
        data.obsm[umap_key] = proxy.obsm["X_umap"]

    data.obsm["X_diffmap"] = proxy.obsm["X_diffmap"]
    data.obs["cluster"] = pd.Categorical(proxy.obs["cluster"].astype(str).to_numpy())
    data.obs["dpt_pseudotime"] = pt
    if mdata is not None:
        for adata in mods.values():
            adata.obs["cluster"] = data.obs["cluster"].to_numpy()
            adata.obs["dpt_pseudotime"] = pt
    record = {
        "params": {"n_pcs": n_pcs, "n_neighbors": n_neighbors, "resolution": resolution,
                   "root": "auto" if root is None else str(root), "umap": umap,
                   "joint": joint},
        "modalities": records,
        "joint": joint_record,
        "umap_key": umap_key or "",
        "clustering": clustering,
        "pseudotime": {"method": "scanpy.tl.dpt on the joint graph", "key": "dpt_pseudotime",
                       "normalised": "divided by its maximum"},
        "root": root_info,
    }
    data.uns.setdefault("scagents", {})
    data.uns["scagents"]["integration"] = record
    return data if copy else None
