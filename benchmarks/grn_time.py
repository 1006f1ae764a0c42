"""Time-aware network-inference candidates (issue #18, session 9), scored by ``benchmarks/grn_select.py``.

Each uses a cell time (``obs["pseudotime"]``: the twin's simulation time of the sampled step, or a
pseudotime such as BEELINE's ``PseudoTime.csv``) the way SCRIBE / SINCERITIES / SCODE use time: a
regulator's level predicts a target's change. They are candidates only for data that carry a time
(every twin simulation does). The Hill dynamics of the twin, ``dx_g/dt = (f_g(x) - x_g) / tau``, imply
that the derivative of a target, corrected for its own decay, is a function of its regulators.

- ``velocity`` (``time_velocity``): each cell's derivative of every gene estimated from its ``k``
  nearest cells in expression (z-scored genes): the least-squares slope of ``x_j - x_i`` on
  ``t_j - t_i``; then each target's derivative regressed (ridge, or trees) on every gene's level,
  the target's own level included as a covariate (its decay) and left out of the edges.
- ``mean_derivative`` (``time_mean_derivative``, SCODE / SINCERITIES-like): cells binned into
  ``n_bins`` equal-count windows of time; the derivative of each gene's window mean regressed (ridge)
  on the window means of every gene.
- ``time_feature`` (``time_feature``): the default's trees with the time as one more feature, so that
  a regulator's importance is measured beside the common time trend.

``time_feature`` won the selection by a hair (see ``benchmarks/results/grn_select.md``) and is now
``infer_network(time_key="pseudotime")`` (the same computation); the others lost on the training networks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["cell_velocity", "mean_derivative", "time_edges"]


def _dense(adata) -> np.ndarray:
    X = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    return np.asarray(X, dtype=np.float64)


def _z(X: np.ndarray) -> np.ndarray:
    sd = X.std(0)
    return (X - X.mean(0)) / np.where(sd > 0, sd, 1.0)


def cell_velocity(X: np.ndarray, t: np.ndarray, k: int = 15) -> np.ndarray:
    """Per-cell time derivative of every gene from the ``k`` nearest cells in (z-scored) expression.

    Parameters
    ----------
    X
        Cells x genes expression.
    t
        Cell times.
    k
        Neighbours per cell.

    Returns
    -------
    ndarray
        Cells x genes: ``sum_j (x_j - x_i)(t_j - t_i) / sum_j (t_j - t_i)^2`` over the neighbours ``j``.
    """
    from sklearn.neighbors import NearestNeighbors

    k = int(min(k, len(X) - 1))
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(_z(X)).kneighbors(_z(X))
    idx = idx[:, 1:]
    dt = t[idx] - t[:, None]
    num = np.einsum("nk,nkg->ng", dt, X[idx] - X[:, None, :])
    return num / ((dt ** 2).sum(1) + 1e-12)[:, None]


def mean_derivative(X: np.ndarray, t: np.ndarray, n_bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Window means of every gene over ``n_bins`` equal-count windows of time, and their time derivative."""
    order = np.argsort(t, kind="stable")
    bins = np.array_split(order, int(n_bins))
    M = np.array([X[b].mean(0) for b in bins])
    T = np.array([t[b].mean() for b in bins])
    return M, np.gradient(M, T, axis=0)


def _ridge_with_self(F: np.ndarray, Y: np.ndarray, lam: float) -> np.ndarray:
    """Regulators x targets ridge coefficients of every column of ``Y`` on every (z-scored) column of
    ``F`` (the target's own level included as a covariate), diagonal set to 0."""
    Z = _z(F)
    C = np.linalg.solve(Z.T @ Z + lam * len(Z) * np.eye(Z.shape[1]), Z.T @ (Y - Y.mean(0)))
    np.fill_diagonal(C, 0.0)
    return C


def _tree_with_self(F: np.ndarray, Y: np.ndarray, n_trees: int = 50) -> np.ndarray:
    """Extra-trees importance of every column of ``F`` (the target's own level included) for every column
    of ``Y``, diagonal set to 0."""
    from sklearn.ensemble import ExtraTreesRegressor

    g = F.shape[1]
    W = np.zeros((g, Y.shape[1]))
    for j in range(Y.shape[1]):
        if np.ptp(Y[:, j]) == 0:
            continue
        W[:, j] = ExtraTreesRegressor(n_estimators=n_trees, max_features="sqrt", random_state=0,
                                      n_jobs=1).fit(F, Y[:, j]).feature_importances_
    np.fill_diagonal(W, 0.0)
    return W


def _table(S: np.ndarray, genes: np.ndarray) -> pd.DataFrame:
    r, c = np.nonzero(~np.eye(len(genes), dtype=bool))
    e = pd.DataFrame({"source": genes[r], "target": genes[c], "weight": S[r, c]})
    return e.reindex(e["weight"].abs().sort_values(ascending=False, kind="stable").index).reset_index(drop=True)


def time_edges(adata, how: str, *, key: str = "pseudotime", k: int = 15, n_bins: int = 10,
               lam: float = 0.1, base: dict | None = None) -> pd.DataFrame:
    """Signed edge table (``source``, ``target``, ``weight``) of a time-aware candidate.

    Parameters
    ----------
    adata
        Cells x genes log-normalised expression with ``obs[key]``.
    how
        ``"velocity_ridge"``, ``"velocity_trees"``, ``"mean_derivative"`` or ``"time_feature"``.
    key
        The time column.
    k, n_bins, lam
        Neighbours of the velocity, windows of the mean derivative, ridge penalty (correlation scale).
    base
        ``infer_network`` keyword arguments of the default the ``time_feature`` candidate adds the time to.

    Returns
    -------
    pandas.DataFrame
        Every ordered pair of distinct genes, sorted by ``|weight|``.
    """
    genes = np.asarray(adata.var_names.astype(str))
    X = _dense(adata)
    t = adata.obs[key].to_numpy(dtype=float)
    if how in ("velocity_ridge", "velocity_trees"):
        V = cell_velocity(X, t, k)
        B = _ridge_with_self(X, V, lam)
        if how == "velocity_ridge":
            return _table(B, genes)
        return _table(np.sign(B) * _tree_with_self(X, V), genes)
    if how == "mean_derivative":
        M, D = mean_derivative(X, t, n_bins)
        return _table(_ridge_with_self(M, D, lam), genes)
    if how == "time_feature":
        import anndata as ad

        from scagents.grn import infer_network, network_edges

        name = "__time__"
        a = ad.AnnData(np.c_[X, t].astype(np.float32))
        a.var_names = [*genes, name]
        infer_network(a, **(base or {}))
        e = network_edges(a)
        return e[(e["source"] != name) & (e["target"] != name)].reset_index(drop=True)
    raise ValueError(f"Unknown time-aware candidate {how!r}.")
