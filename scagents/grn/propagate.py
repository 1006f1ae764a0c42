"""In-silico perturbation propagated through an inferred network (CellOracle-style).

For every cell, the perturbed genes get a forced change ``δ₀`` (knockout: to 0; knockdown: a
``strength`` fraction of their expression removed; overexpression / stimulation: raised to the gene's
maximum over the cells). The shift then travels along the network's coefficients ``W`` (source x
target, expression units) for ``n_steps`` steps::

    δ_{t+1} = δ_t · W,   δ_{t+1}[perturbed] = δ₀[perturbed],   x + δ_{t+1} clipped at 0

so after ``n_steps`` the shift has reached genes up to ``n_steps`` edges away. The result is the
predicted expression shift, not a new steady state (as in CellOracle).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scagents.errors import DataError
from scagents.grn.infer import _grn_adata, _missing_genes, network_matrix
from scagents.perturbation import Perturbation

__all__ = ["perturb", "propagate_delta", "propagator"]


def _as_perturbation(perturbation) -> Perturbation:
    if isinstance(perturbation, Perturbation):
        return perturbation
    if isinstance(perturbation, (str, list, tuple)):
        return Perturbation(perturbation)
    if isinstance(perturbation, dict):
        return Perturbation.from_dict(perturbation)
    raise TypeError(f"perturbation must be a scagents.perturbation.Perturbation, got {type(perturbation).__name__}.")


def _forced_delta(X: np.ndarray, idx: np.ndarray, p: Perturbation, gene_max: np.ndarray) -> np.ndarray:
    """δ₀ for the perturbed columns ``idx`` of ``X`` (cells x genes)."""
    x = X[:, idx]
    if p.kind == "knockout":
        return -x
    if p.kind == "knockdown":
        return -p.strength * x
    # overexpression / stimulation: raise to the maximum observed level
    return np.maximum(gene_max[idx][None, :] - x, 0.0)


def _propagate(X: np.ndarray, W: np.ndarray, idx: np.ndarray, delta0: np.ndarray, n_steps: int,
               rows: np.ndarray | None = None) -> np.ndarray:
    """``n_steps`` of the update in the module docstring. With ``rows`` (the regulators: the non-zero
    rows of the network), ``W`` holds only those rows — the only entries of ``δ`` that travel on."""
    delta = np.zeros_like(X)
    delta[:, idx] = delta0
    for _ in range(n_steps):
        nxt = delta @ W if rows is None else delta[:, rows] @ W
        nxt[:, idx] = delta0
        # predicted expression cannot go below zero
        nxt = np.maximum(nxt, -X)
        delta = nxt
    return delta


def _check_targets(p: Perturbation, genes: pd.Index) -> np.ndarray:
    missing = [g for g in p.targets if g not in genes]
    if missing:
        raise _missing_genes(missing, genes)
    return genes.get_indexer(list(p.targets))


def propagator(W: pd.DataFrame, baseline: pd.Series, n_steps: int = 3, *,
               gene_max: pd.Series | None = None) -> Callable[[Any], np.ndarray]:
    """Prepare :func:`propagate_delta` for many perturbations of the same network and profile.

    The network is aligned to ``baseline``'s genes once (a dense ``genes x genes`` matrix), so each
    call costs ``n_steps`` vector–matrix products instead of a copy and re-indexing of ``W``.

    Parameters
    ----------
    W, baseline, n_steps, gene_max
        As in :func:`propagate_delta`.

    Returns
    -------
    Callable
        ``shift(perturbation) -> ndarray`` (the predicted shift per gene, ``baseline``'s order);
        raises :class:`~scagents.errors.GeneNotFoundError` for a perturbed gene not in ``baseline``.
    """
    genes = pd.Index(baseline.index.astype(str))
    Wg = W.copy()
    Wg.index = Wg.index.astype(str)
    Wg.columns = Wg.columns.astype(str)
    Wm = Wg.reindex(index=genes, columns=genes, fill_value=0.0).to_numpy(dtype=np.float64)
    del Wg
    nz = np.flatnonzero(np.any(Wm != 0, axis=1))
    rows = None if nz.size > 0.8 * len(genes) else nz
    if rows is not None:  # only the regulators' rows carry a shift on: keep those
        Wm = np.ascontiguousarray(Wm[rows])
    x = baseline.to_numpy(dtype=np.float64)[None, :]
    gmax = (np.maximum(2 * x[0], 1.0) if gene_max is None
            else gene_max.reindex(genes).fillna(0).to_numpy(dtype=np.float64))
    steps = int(n_steps)

    def shift(perturbation) -> np.ndarray:
        p = _as_perturbation(perturbation)
        idx = _check_targets(p, genes)
        return _propagate(x, Wm, idx, _forced_delta(x, idx, p, gmax), steps, rows)[0]

    return shift


def propagate_delta(W: pd.DataFrame, baseline: pd.Series, perturbation, n_steps: int = 3,
                    *, gene_max: pd.Series | None = None) -> pd.Series:
    """Propagate a perturbation from one expression profile (e.g. a pseudobulk) through ``W``.

    Parameters
    ----------
    W
        Coefficients, source x target (rows = regulators, columns = targets), in the units of
        ``baseline``; genes absent from either axis have no edges. :func:`~scagents.grn.network_matrix`
        gives it from an AnnData.
    baseline
        Expression per gene (index = gene names).
    perturbation
        A :class:`~scagents.perturbation.Perturbation` (or a gene name / list of names = knockout).
    n_steps
        Propagation steps.
    gene_max
        Level an overexpressed gene is raised to (default: twice its baseline, at least 1).

    Returns
    -------
    Predicted shift per gene (index = ``baseline.index``).

    Raises
    ------
    GeneNotFoundError
        A perturbed gene is not in ``baseline``.

    See Also
    --------
    propagator : the same for many perturbations, with ``W`` aligned once.
    """
    p = _as_perturbation(perturbation)
    shift = propagator(W, baseline, n_steps, gene_max=gene_max)(p)
    return pd.Series(shift, index=baseline.index, name=p.label)


def perturb(
    adata,
    perturbation,
    *,
    n_steps: int = 3,
    groupby: str | None = None,
    groups=None,
    layer: str | None = None,
    key_added: str = "perturb_delta",
    copy: bool = False,
):
    """Predict the expression shift of every cell under a perturbation, through the inferred network.

    Parameters
    ----------
    adata
        AnnData (or MuData with ``"rna"``) after :func:`scagents.grn.infer_network`.
    perturbation
        A :class:`~scagents.perturbation.Perturbation` of one or several genes (any gene, not only
        regulators); a gene name or list of names means a knockout.
    n_steps
        Propagation steps (edges travelled).
    groupby, groups
        Restrict the perturbation to cells whose ``obs[groupby]`` is in ``groups``; other cells get a
        zero shift.
    layer
        Expression the shift is computed from; ``None`` = the layer the network was inferred on.
    key_added
        Layer that receives the shift.
    copy
        Return a copy instead of writing into ``adata``.

    Returns
    -------
    ``adata`` (a copy) when ``copy=True``, else ``None``. Written:

    - ``layers[key_added]`` (default ``"perturb_delta"``): predicted shift, cells x genes;
    - ``uns["perturb"][key_added]``: the perturbation (``to_dict()``), ``label``, ``n_steps``,
      ``groupby``, ``groups``, ``n_cells_perturbed`` and ``mean_delta`` (mean shift over the perturbed
      cells, an array in ``var_names`` order).

    Raises
    ------
    GeneNotFoundError
        A perturbed gene is not in the data.
    DataError
        No network, unknown groupby column or group.
    """
    from mudata import MuData

    p = _as_perturbation(perturbation)
    if copy:
        adata = adata.copy()
    a = adata.mod["rna"] if isinstance(adata, MuData) else adata
    _grn_adata(a)
    genes = pd.Index(a.var_names.astype(str))
    idx = _check_targets(p, genes)
    if layer is None:
        layer = a.uns["grn"]["params"].get("layer", "X")
    if layer != "X" and layer not in a.layers:
        raise DataError(f"No layer {layer!r}; available layers: {list(a.layers)}.")
    Xs = a.X if layer == "X" else a.layers[layer]
    X = np.asarray(Xs.toarray() if sp.issparse(Xs) else Xs, dtype=np.float64)

    cells = np.ones(a.n_obs, dtype=bool)
    if groupby is not None:
        if groupby not in a.obs:
            raise DataError(f"No obs column {groupby!r}; available: {list(a.obs.columns)}.")
        if groups is None:
            raise DataError("groupby needs groups= naming the groups to perturb.")
        groups = [groups] if isinstance(groups, str) else list(groups)
        labels = a.obs[groupby].astype(str)
        unknown = [g for g in map(str, groups) if g not in set(labels)]
        if unknown:
            raise DataError(f"Groups {unknown} not in obs[{groupby!r}]; present: {sorted(set(labels))[:20]}.")
        cells = labels.isin(list(map(str, groups))).to_numpy()

    W = network_matrix(a).to_numpy(dtype=np.float64)
    gene_max = X.max(axis=0)
    delta = np.zeros_like(X)
    if cells.any():
        Xc = X[cells]
        delta0 = _forced_delta(Xc, idx, p, gene_max)
        delta[cells] = _propagate(Xc, W, idx, delta0, int(n_steps))
    a.layers[key_added] = delta.astype(np.float32)
    record: dict[str, Any] = {
        "perturbation": p.to_dict(), "label": p.label, "n_steps": int(n_steps), "layer": layer,
        "groupby": groupby or "", "groups": [] if groups is None else list(map(str, groups)),
        "n_cells_perturbed": int(cells.sum()),
        "mean_delta": (delta[cells].mean(axis=0) if cells.any() else np.zeros(len(genes))).astype(np.float64),
    }
    a.uns.setdefault("perturb", {})
    a.uns["perturb"][key_added] = record
    return adata if copy else None
