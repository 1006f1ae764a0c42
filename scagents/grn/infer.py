"""Gene regulatory network inference from single-cell expression, optionally constrained by chromatin.

Methods (``infer_network(method=...)``):

``"ridge"``
    Per-target ridge regression of every target gene on all regulators, solved for all targets at once.
    Genes are z-scored, so ``G = Z_R^T Z_R / n`` is the regulator correlation matrix. With
    ``Θ = (G + αI)^{-1}`` the coefficients of a target outside the regulator set are ``Θ Z_R^T z / n``,
    and those of a target that is itself a regulator (regressed on the *other* regulators) are exactly
    ``-Θ[:, j] / Θ[j, j]`` (block inversion: the ridge penalty sits on the diagonal only). One
    ``r x r`` inverse therefore fits every target. ``alpha="auto"`` picks α from a grid by held-out R²
    on 20 % of the cells (at most 1,000; scored on the regulators and at most 2,000 other targets).
    Only the regulators' columns are held in memory; the other genes are processed in blocks of
    columns, so memory is ``O(cells x regulators + regulators x genes)``.
``"ensemble"``
    Tree importances per target (GENIE3's idea; :mod:`scagents.grn.ensemble`; by default the mean
    of an extra-trees and a random-forest importance, ``trees="both"``) ranked and signed by the
    ridge fit (default ``tree_weight=inf``, chosen on the training networks of
    ``benchmarks/grn_select.py``); a finite ``tree_weight`` gives DREAM5's community ranking, the
    weighted mean percentile rank of the ridge coefficient and the tree importance. Edge weights are
    then rank scores in [-1, 1]; the coefficient matrix (propagation) is the ridge one.
    The trees are fitted only up to a size (``n_genes x min(n_cells, 2000)`` ≤
    300,000, cells subsampled to 2,000); above it the method is plain ridge, and
    ``uns["grn"]["params"]["trees"]`` says which happened. When ``obs["pseudotime"]`` holds a cell time
    (``time_key``) and there is no perturbation screen, the time is one more feature of the trees and
    of the signing ridge fit (chosen on the training networks, session 9).
``"correlation"``
    Pearson correlation between regulator and target (the baseline of BEELINE).
``"partial_correlation"``
    Partial correlation from a Ledoit-Wolf-shrunk precision matrix of all genes,
    ``ρ_ij = -Θ_ij / sqrt(Θ_ii Θ_jj)``.

Expression transform (``infer_network(transform=...)``):

``"none"`` (default)
    Each method works on the z-scored expression.
``"rank"``
    Nonparanormal / Gaussian-copula transform (Liu, Lafferty & Wasserman 2009): every gene is
    replaced by ``Φ⁻¹(rank / (n + 1))`` (average ranks for ties) before z-scoring, so monotone but
    non-linear dose-responses (Hill curves, saturation, log vs linear scale) become linear and outlier
    cells lose their leverage. Recommended for network *ranking* (it is the setting of the GRN
    benchmark, ``benchmarks/results/grn.md``); the coefficient matrix used for propagation is then a
    linearisation (copula-scale coefficients converted with the expression standard deviations).

Edge signs (``infer_network(sign_from=...)``, methods ``"ridge"`` and ``"ensemble"``; the correlation
methods are signed by their own value). The ranking, ``|weight|``, is the same whatever the source; only
the sign of each edge changes. Every source is computed over the cells the regression fits (a perturbed
target without its own perturbed cells):

``"ridge"``
    the sign of the ridge coefficient (conditional on every other regulator; it flips when regulators
    are collinear);
``"correlation"``
    the sign of the marginal Pearson correlation of regulator and target;
``"spearman"``
    the sign of their Spearman correlation;
``"partial_correlation"``
    the sign of their partial correlation given every other gene (Ledoit-Wolf-shrunk precision);
``"sum"``
    the sign of ridge coefficient + Pearson correlation (both on the standardised scale: the larger one
    decides where they disagree);
``"vote"``
    the majority of the ridge, Pearson and Spearman signs.

A source that is 0 for an edge falls back to the ridge sign. With a knockout screen the knockout's
direction still overrides the sign where it counts (:func:`scagents.grn.interventional.combine_evidence`).
The coefficient matrix used for propagation stays the ridge fit, with the coefficients' own signs (partial
effects), which can differ from the edge's: :func:`sign_agreement` counts the edges where they do, and
``network_matrix(signs="edges")`` gives ``|coefficient|`` x the edge's sign instead — propagating that was
tested on held-out perturbations by ``benchmarks/propagation_sign.py`` and not adopted (its pre-registered
rule: lower MSE on the twin and on Papalexi; the twin's MSE was higher). The default is chosen on the training
networks by ``benchmarks/grn_sign.py`` (its pre-registered rule).

Edge weights are signed and in standardised units (comparable across genes); the coefficient matrix
used for in-silico perturbation (:mod:`scagents.grn.propagate`) is converted to expression units
(``β_raw = β_std · sd_target / sd_regulator``).

Chromatin prior (CellOracle in spirit, without motifs): each target gene is linked to peaks, either
by a ``links`` table (columns ``peak``, ``gene``), by ``atac.uns["atac"]["peak_annotation"]`` (muon's
format: index ``gene``, column ``peak``), or by peak names that contain the gene name as a token
(``"chr1:100-200_GATA1"``, ``"GATA1_enh1"``). A target may be regulated only if at least one linked
peak is accessible (count > 0) in at least ``min_accessible`` of the cells; edges into other targets
are removed (targets with no linked peak at all are removed too unless ``unlinked="keep"``).
"""

from __future__ import annotations

import difflib
import re
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scagents.errors import DataError, GeneNotFoundError, ModalityError

__all__ = ["COEF_SIGNS", "METHODS", "SIGN_SOURCES", "TRANSFORMS", "infer_network", "network_edges", "network_matrix", "sign_counts",
           "peak_gene_links", "sign_agreement"]

METHODS: tuple[str, ...] = ("ridge", "ensemble", "correlation", "partial_correlation")
TRANSFORMS: tuple[str, ...] = ("none", "rank")
SIGN_SOURCES: tuple[str, ...] = ("ridge", "correlation", "spearman", "partial_correlation", "sum", "vote")
"""Where the sign of a ``"ridge"`` / ``"ensemble"`` edge comes from (``infer_network(sign_from=...)``, see the
module docstring); the ranking (``|weight|``) never depends on it."""
_ALPHA_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
MAX_PARTIAL_GENES = 5000
"""Most genes ``"partial_correlation"`` (method or sign source) accepts: it inverts a dense genes x genes
covariance (5,000 genes: 0.2 GB per copy)."""


def _missing_genes(names, available: pd.Index, what: str = "gene") -> GeneNotFoundError:
    names = list(names)
    hints = []
    for name in names[:5]:
        close = difflib.get_close_matches(str(name), [str(g) for g in available], n=3, cutoff=0.6)
        hints.append(f"{name!r} (closest: {', '.join(close) if close else 'none'})")
    return GeneNotFoundError(
        f"{len(names)} {what}(s) not in the data: {'; '.join(hints)}. Check the spelling against "
        f"adata.var_names."
    )


def _dense(X) -> np.ndarray:
    return np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)


def _rank_gauss(X: np.ndarray) -> np.ndarray:
    """Gaussian-copula scores ``Φ⁻¹(rank / (n + 1))`` per column (average ranks for ties)."""
    from scipy.special import ndtri
    from scipy.stats import rankdata

    R = rankdata(X, axis=0, method="average")
    return ndtri(R / (X.shape[0] + 1.0))


def _standardise(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = X.mean(axis=0)
    sd = X.std(axis=0)
    sd_safe = np.where(sd > 0, sd, 1.0)
    Z = X - mean
    Z /= sd_safe
    return Z, mean, sd


_BLOCK_BYTES = 64 * 2**20
"""Size of one dense float64 block of gene columns: the expression matrix is never densified whole."""
_ALPHA_MAX_TARGETS = 2000
"""Targets besides the regulators whose held-out error chooses α (a seeded random sample beyond that)."""


def _z_block(Xb: np.ndarray, transform: str) -> tuple[np.ndarray, np.ndarray]:
    """Standardised columns (copula scores with ``transform="rank"``) and their raw standard deviations."""
    if not np.isfinite(Xb).all():
        raise DataError("The expression matrix has NaN or infinite values; remove or impute them first.")
    Z, _, sd = _standardise(Xb)
    if transform == "rank":
        # fit on copula scores; sd (raw expression) still converts coefficients to expression units
        Z = np.where(sd > 0, _standardise(_rank_gauss(Xb))[0], 0.0)
    return Z, sd


def _blocks(n_cols: int, n_cells: int) -> list[slice]:
    width = max(1, int(_BLOCK_BYTES // (8 * max(n_cells, 1))))
    return [slice(s, min(s + width, n_cols)) for s in range(0, n_cols, width)]


def _one_thread():
    """Run a LAPACK factorisation of a regulators x regulators matrix on one BLAS thread.

    These are latency-bound; with two threads on a busy 2-core machine ``eigh`` of 1,000 x 1,000 took
    28.9 s against 0.57 s on one (the large products keep every thread).
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _product(A: np.ndarray, B: np.ndarray, float64: bool) -> np.ndarray:
    """``Aᵀ B``: float32 products with a float64 result unless ``float64``."""
    if float64:
        return A.T @ B
    A32 = A.astype(np.float32, copy=False)
    B32 = A32 if B is A else B.astype(np.float32, copy=False)  # Aᵀ A: one operand (symmetric BLAS path)
    return (A32.T @ B32).astype(np.float64)


class _Stats:
    """Everything the regression methods need, from one pass over blocks of gene columns.

    ``ZR`` (cells x regulators, standardised) is held in memory; every other gene is standardised one
    block at a time (about ``_BLOCK_BYTES``), multiplied into ``C = Z_Rᵀ Z / n`` (regulators x genes)
    and, for ``alpha="auto"``, into the held-out errors of every α of the grid (see
    :func:`_alpha_scores`). Peak memory is therefore ``O(cells x regulators + regulators x genes)``
    whatever the number of genes.
    """

    def __init__(self, X, reg_idx: np.ndarray, transform: str, *, float64: bool = False,
                 choose_alpha: bool = False, seed: int = 0, progress: bool = False) -> None:
        from tqdm.auto import tqdm

        n, g = X.shape
        Xc = X.tocsc() if sp.issparse(X) else X
        r = len(reg_idx)
        self.n, self.reg_idx = n, reg_idx
        self.all_regs = r == g and np.array_equal(reg_idx, np.arange(g))
        self.sd = np.zeros(g)
        reg_blocks = _blocks(r, n)
        gene_blocks = [] if self.all_regs else _blocks(g, n)
        bar = tqdm(total=r + (0 if self.all_regs else g), disable=not progress, unit="gene",
                   desc="network: regulators", leave=False, mininterval=0.5)
        ZR = np.empty((n, r))
        for b in reg_blocks:
            ZR[:, b], self.sd[reg_idx[b]] = _z_block(_dense(Xc[:, reg_idx[b]]), transform)
            bar.update(b.stop - b.start)
        self.ZR = ZR
        # held-out split for α (at most 4,000 training and 1,000 test cells)
        self.alpha_scores: dict[str, float] = {}
        sel = None
        is_reg = np.zeros(g, dtype=bool)
        is_reg[reg_idx] = True
        scored = is_reg.copy()  # targets whose held-out error scores α
        if choose_alpha:
            rng = np.random.default_rng(seed)
            perm = rng.permutation(n)
            n_te = int(min(1000, max(5, 0.2 * n)))
            te, tr = perm[:n_te], perm[n_te:n_te + 4000]
            others = np.flatnonzero(~is_reg)
            if others.size > _ALPHA_MAX_TARGETS:  # a random sample of the other targets is enough
                others = np.random.default_rng(seed + 1).choice(others, _ALPHA_MAX_TARGETS, replace=False)
            scored[others] = True
            if tr.size >= 5:
                sel = _AlphaSelection(ZR, te, tr, float64)
        if self.all_regs:
            self.C = _product(ZR, ZR, float64) / n
            self.G = self.C
            if sel is not None:
                sel.add_total(ZR)
        else:
            bar.set_description("network: targets")
            self.C = np.empty((r, g))
            ZR_p = ZR if float64 else ZR.astype(np.float32)
            for b in gene_blocks:
                Zb, self.sd[b] = _z_block(_dense(Xc[:, b]), transform)
                self.C[:, b] = _product(ZR_p, Zb, float64) / n
                if sel is not None:
                    sel.add_block(Zb[:, scored[b]], ~is_reg[b][scored[b]])
                bar.update(b.stop - b.start)
            self.G = self.C[:, reg_idx].copy()
        bar.close()
        self.alpha = None
        if sel is not None:
            self.alpha_scores = sel.scores()
            self.alpha = float(max(self.alpha_scores, key=self.alpha_scores.get))
        elif choose_alpha:
            self.alpha = 1.0


class _AlphaSelection:
    """Held-out R² of the ridge fit for every α of the grid, accumulated over blocks of targets.

    One eigendecomposition ``G = U S Uᵀ`` of the training Gram serves every α. Targets that are
    regulators have held-out residuals ``(Z Θ)_j / Θ_jj`` (the leave-self-out identity); other
    targets ``z - Z_R Θ C``.
    """

    def __init__(self, ZR: np.ndarray, te: np.ndarray, tr: np.ndarray, float64: bool) -> None:
        self.te, self.tr, self.float64 = te, tr, float64
        self.ZRtr = _standardise(ZR[tr])[0]
        G = _product(self.ZRtr, self.ZRtr, float64) / len(tr)
        with _one_thread():
            self.s, self.U = np.linalg.eigh(G)
        self.ZU = ZR[te] @ self.U
        self.sse = {a: 0.0 for a in _ALPHA_GRID}
        self.total = 0.0
        for a in _ALPHA_GRID:  # targets that are regulators
            inv = 1.0 / (self.s + a)
            d = (self.U**2) @ inv
            resid = ((self.ZU * inv) @ self.U.T) / d
            self.sse[a] += float((resid**2).sum())

    def add_total(self, Zb: np.ndarray) -> None:
        self.total += float((Zb[self.te] ** 2).sum())

    def add_block(self, Zb: np.ndarray, others: np.ndarray) -> None:
        self.add_total(Zb)
        if not others.any():
            return
        Zo = Zb[:, others]
        Ctr = _product(self.ZRtr, _standardise(Zo[self.tr])[0], self.float64) / len(self.tr)
        UC = self.U.T @ Ctr
        Zte = Zo[self.te]
        for a in _ALPHA_GRID:
            inv = 1.0 / (self.s + a)
            pred = (self.ZU * inv) @ UC
            self.sse[a] += float(((Zte - pred) ** 2).sum())

    def scores(self) -> dict[str, float]:
        total = max(self.total, 1e-12)
        return {str(a): 1.0 - sse / total for a, sse in self.sse.items()}


def _ridge_all(G: np.ndarray, C: np.ndarray, reg_idx: np.ndarray, alpha: float, all_regs: bool
               ) -> np.ndarray:
    """Standardised ridge coefficients, regulators x genes, every target fitted without itself."""
    with _one_thread():
        theta = np.linalg.inv(G + alpha * np.eye(len(reg_idx)))
    B = np.eye(len(reg_idx)) if all_regs else theta @ C
    # targets that are regulators: exact leave-self-out coefficients from the inverse
    d = np.diag(theta)
    B[:, reg_idx] = -theta / d[None, :]
    B[np.arange(len(reg_idx)), reg_idx] = 0.0
    return B


def _ridge_masked(G: np.ndarray, C: np.ndarray, reg_idx: np.ndarray, alpha: float,
                  allowed: np.ndarray) -> np.ndarray:
    """Ridge fitted per target on its allowed regulators only (``allowed``: regulators x genes)."""
    B = np.zeros((len(reg_idx), C.shape[1]))
    for j in range(C.shape[1]):
        s = np.flatnonzero(allowed[:, j] & (reg_idx != j))
        if s.size == 0:
            continue
        B[s, j] = np.linalg.solve(G[np.ix_(s, s)] + alpha * np.eye(s.size), C[s, j])
    return B


def _refit_without(stats: _Stats, j: int, z_drop: np.ndarray, drop: np.ndarray, j_reg: int, alpha: float,
                   allowed_col: np.ndarray | None = None) -> np.ndarray:
    """Ridge coefficients of target ``j`` refitted without the cells ``drop`` (invariant prediction).

    A target gene's own perturbed cells do not follow its regulatory mechanism (its activity is set
    by the perturbation), so its regression leaves them out; every other target keeps them (they
    add interventional variation of the regulators). The kept cells' correlations are obtained from
    the full ones by removing the dropped cells' contribution (``O(dropped x regulators²)``), so
    nothing of size cells x regulators is copied. ``z_drop``: the target's standardised values on the
    dropped cells; ``j_reg``: its position among the regulators (-1 if it is not one).
    """
    n, nk = stats.n, int(drop.sum())
    keep_n = n - nk
    beta = np.zeros(len(stats.reg_idx))
    if keep_n < 3:
        return beta
    Zd = stats.ZR[drop]
    m = -Zd.sum(axis=0) / keep_n  # globally centred columns: the kept cells' mean
    cov = (n * stats.G - Zd.T @ Zd) / keep_n - np.outer(m, m)
    my = -z_drop.sum() / keep_n
    cy = (n * stats.C[:, j] - Zd.T @ z_drop) / keep_n - m * my
    vy = (n - float(z_drop @ z_drop)) / keep_n - my**2  # z has unit variance over all cells
    sd = np.sqrt(np.clip(np.diag(cov), 1e-12, None))
    G = cov / sd[:, None] / sd[None, :]
    c = cy / sd / np.sqrt(max(vy, 1e-12))
    use = np.ones(len(beta), dtype=bool)
    if j_reg >= 0:
        use[j_reg] = False
    if allowed_col is not None:
        use &= allowed_col
    if use.any():
        with _one_thread():
            beta[use] = np.linalg.solve(G[np.ix_(use, use)] + alpha * np.eye(use.sum()), c[use])
    return beta


def _corr(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of every column of ``A`` with ``b`` (0 for a constant column)."""
    Za, _, sa = _standardise(A)
    zb, _, sb = _standardise(b[:, None])
    r = (Za.T @ zb[:, 0]) / len(b)
    return np.where((sa > 0) & (sb[0] > 0), r, 0.0)


def _marginal(X, reg_idx: np.ndarray, rank: bool, dropped: dict[int, np.ndarray],
              full: np.ndarray | None = None) -> np.ndarray:
    """Pearson (``rank=False``) or Spearman correlation of every regulator with every gene, regulators x genes,
    each target over the cells its regression fits (``dropped[j]``: cells left out for target ``j``).
    ``full``: the correlations over all cells when already known (only the ``dropped`` columns are redone)."""
    from scipy.stats import rankdata

    n, g = X.shape
    Xc = X.tocsc() if sp.issparse(X) else X

    def cols(idx, rows=None) -> np.ndarray:
        D = _dense(Xc[:, idx] if rows is None else Xc[rows][:, idx])
        return rankdata(D, axis=0) if rank else D

    if full is None:
        ZR = _standardise(cols(reg_idx))[0]
        R = np.zeros((len(reg_idx), g))
        for b in _blocks(g, n):
            Zb, _, sd = _standardise(cols(np.arange(b.start, b.stop)))
            R[:, b] = np.where(sd[None, :] > 0, ZR.T @ Zb / n, 0.0)
    else:
        R = full.copy()
    for j, drop in dropped.items():
        keep = np.flatnonzero(~drop)
        if keep.size >= 3:
            R[:, j] = _corr(cols(reg_idx, keep), cols([j], keep)[:, 0])
    return R


def _partial_matrix(Z: np.ndarray, const: np.ndarray) -> tuple[np.ndarray, float]:
    """Partial correlations of every pair of columns of the standardised ``Z`` (genes x genes, 0 on the
    diagonal and for the ``const`` columns) from the Ledoit-Wolf-shrunk precision, and the shrinkage."""
    from sklearn.covariance import LedoitWolf

    g = Z.shape[1]
    keep = np.flatnonzero(~const)
    P, shrinkage = np.zeros((g, g)), float("nan")
    if keep.size:
        lw = LedoitWolf(assume_centered=True).fit(Z[:, keep])
        P[np.ix_(keep, keep)] = lw.precision_
        shrinkage = float(lw.shrinkage_)
    d = np.sqrt(np.clip(np.diag(P), 1e-12, None))
    pc = -P / d[:, None] / d[None, :]
    np.fill_diagonal(pc, 0.0)
    return pc, shrinkage


def _partial(X, reg_idx: np.ndarray, transform: str, dropped: dict[int, np.ndarray]) -> np.ndarray:
    """Partial correlation (Ledoit-Wolf precision of every gene) of every regulator with every gene, each
    target over the cells its regression fits. Dense in genes x genes: meant for networks of at most a few
    thousand genes."""
    def pcor(Xd: np.ndarray) -> np.ndarray:
        Z, sd = _z_block(Xd, transform)
        return _partial_matrix(Z, sd == 0)[0][reg_idx]

    D = _dense(X)
    R = pcor(D)
    for j, drop in dropped.items():
        if (~drop).sum() >= 3:
            R[:, j] = pcor(D[~drop])[:, j]
    return R


def _edge_signs(source: str, B: np.ndarray, X, stats: _Stats, transform: str,
                dropped: dict[int, np.ndarray]) -> np.ndarray:
    """Sign of every edge (regulators x genes) from ``source`` (:data:`SIGN_SOURCES`; see the module
    docstring), the ridge sign where the source is 0. ``X``: the fitted cells; ``stats``: their
    correlations (``stats.C`` is the Pearson correlation over all of them, in the ``transform``'s scale)."""
    ridge = np.sign(B)
    reg_idx = stats.reg_idx

    def pearson() -> np.ndarray:  # with transform="rank" the perturbed targets' columns use plain ranks
        return _marginal(X, reg_idx, transform == "rank", dropped, full=stats.C) if dropped else stats.C

    if source == "correlation":
        s = np.sign(pearson())
    elif source == "spearman":
        s = np.sign(_marginal(X, reg_idx, True, dropped))
    elif source == "partial_correlation":
        s = np.sign(_partial(X, reg_idx, transform, dropped))
    elif source == "sum":
        s = np.sign(B + pearson())
    elif source == "vote":
        s = np.sign(ridge + np.sign(pearson()) + np.sign(_marginal(X, reg_idx, True, dropped)))
    else:
        s = ridge
    return np.where(s != 0, s, ridge)


def _token_re(gene: str) -> re.Pattern:
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(gene)}(?![A-Za-z0-9])")


def peak_gene_links(atac: ad.AnnData, genes, *, links: pd.DataFrame | None = None) -> pd.DataFrame:
    """Peak→gene links used by the chromatin prior.

    Parameters
    ----------
    atac
        Cells x peaks accessibility.
    genes
        Genes to link.
    links
        Explicit links (columns ``peak``, ``gene``); takes precedence.

    Returns
    -------
    DataFrame with columns ``peak``, ``gene`` (only peaks present in ``atac`` and genes in ``genes``).
    """
    genes = [str(g) for g in genes]
    peaks = pd.Index(atac.var_names.astype(str))
    if links is not None:
        if not {"peak", "gene"} <= set(links.columns):
            raise DataError("links needs columns 'peak' and 'gene'.")
        table = links[["peak", "gene"]].astype(str)
    else:
        ann = atac.uns.get("atac", {}).get("peak_annotation") if isinstance(atac.uns.get("atac"), dict) else None
        if isinstance(ann, pd.DataFrame) and "peak" in ann.columns:
            table = pd.DataFrame({"peak": ann["peak"].astype(str).to_numpy(),
                                  "gene": ann.index.astype(str).to_numpy()})
        else:
            rows = []
            for g in genes:
                pat = _token_re(g)
                rows += [(p, g) for p in peaks if pat.search(p)]
            table = pd.DataFrame(rows, columns=["peak", "gene"])
    table = table[table["peak"].isin(peaks) & table["gene"].isin(genes)]
    return table.drop_duplicates().reset_index(drop=True)


def _atac_mask(atac: ad.AnnData, genes: pd.Index, links: pd.DataFrame | None, min_accessible: float,
               unlinked: str) -> tuple[np.ndarray, dict[str, Any]]:
    table = peak_gene_links(atac, genes, links=links)
    X = atac.X
    frac = np.asarray((X > 0).mean(axis=0)).ravel()
    acc = pd.Series(frac, index=atac.var_names.astype(str))
    table = table.assign(frac=acc.reindex(table["peak"]).to_numpy())
    best = table.groupby("gene")["frac"].max()
    linked = genes.isin(best.index)
    open_ = np.array([best.get(g, 0.0) >= min_accessible for g in genes])
    allowed = open_ | (~linked if unlinked == "keep" else np.zeros(len(genes), dtype=bool))
    info = {"n_links": int(len(table)), "n_targets_linked": int(linked.sum()),
            "n_targets_accessible": int(open_.sum()), "n_targets_allowed": int(allowed.sum()),
            "min_accessible": float(min_accessible), "unlinked": unlinked}
    return allowed, info


def _prior_mask(prior: pd.DataFrame, regs: pd.Index, genes: pd.Index) -> np.ndarray:
    if not {"source", "target"} <= set(prior.columns):
        raise DataError("prior needs columns 'source' and 'target' (the allowed edges).")
    mask = np.zeros((len(regs), len(genes)), dtype=bool)
    r = regs.get_indexer(prior["source"].astype(str))
    t = genes.get_indexer(prior["target"].astype(str))
    ok = (r >= 0) & (t >= 0)
    mask[r[ok], t[ok]] = True
    return mask


def _edge_table(B: np.ndarray, regs: pd.Index, genes: pd.Index, top_k: int | None
                ) -> tuple[pd.DataFrame, np.ndarray]:
    """The non-zero edges (the ``top_k`` strongest regulators of every target), strongest first, and
    the mask of kept entries of ``B``."""
    W = B
    keep = W != 0
    if top_k is not None:
        # keep the top_k strongest regulators of every target
        k = int(min(top_k, W.shape[0]))
        A = np.abs(W)
        order = np.argpartition(-A, k - 1, axis=0)[:k] if 0 < k < W.shape[0] else np.argsort(-A, axis=0)[:k]
        top = np.zeros_like(keep)
        np.put_along_axis(top, order, True, axis=0)
        keep &= top
    r, t = np.nonzero(keep)
    w = W[r, t]

    def codes(index: pd.Index, pos: np.ndarray) -> pd.Categorical:
        if index.is_unique:
            return pd.Categorical.from_codes(pos, categories=index)
        return pd.Categorical(index[pos].to_numpy(), categories=index.unique())

    edges = pd.DataFrame({
        "source": codes(regs, r),
        "target": codes(genes, t),
        "weight": w.astype(np.float64),
        "sign": np.sign(w).astype(np.int8),
    })
    order = np.argsort(-np.abs(w), kind="stable")
    return edges.iloc[order].reset_index(drop=True), keep


def infer_network(
    adata,
    *,
    method: str = "ensemble",
    regulators=None,
    layer: str | None = None,
    atac: ad.AnnData | None = None,
    links: pd.DataFrame | None = None,
    prior: pd.DataFrame | None = None,
    top_k: int | None = None,
    alpha: float | str = "auto",
    transform: str = "none",
    min_accessible: float = 0.05,
    unlinked: str = "drop",
    perturbations: str | None = None,
    fit_cells: str = "all",
    combine: str = "odds",
    direct: bool = True,
    min_t: float = 1.5,
    reduce: bool = False,
    gate: float = 1.0,
    orient: float = 0.7,
    evidence_weight: float = 2.0,
    regulator_prior: float = 1.0,
    indirect: float = 0.0,
    trees: str = "both",
    n_trees: int = 50,
    tree_weight: float = np.inf,
    time_key: str | None = "pseudotime",
    sign_from: str = "spearman",
    progress: bool = False,
    copy: bool = False,
):
    """Infer a signed, weighted regulator→target network.

    Parameters
    ----------
    adata
        Cells x genes AnnData (log-normalised expression is expected), or a MuData whose ``"rna"``
        modality is used (and its ``"atac"`` modality as ``atac`` when present).
    method
        ``"ridge"``, ``"ensemble"``, ``"correlation"`` or ``"partial_correlation"`` (see the module
        docstring).
    regulators
        Genes allowed as regulators (e.g. transcription factors); ``None`` = every gene. Any listed
        gene absent from the data raises :class:`~scagents.errors.GeneNotFoundError`.
    layer
        Expression layer; ``None`` = ``.X``.
    atac
        Cells x peaks accessibility of the same cells; enables the chromatin prior.
    links
        Peak→gene links (columns ``peak``, ``gene``) for the chromatin prior.
    prior
        Allowed edges (columns ``source``, ``target``); with ``"ridge"`` each target is then fitted on
        its allowed regulators only, other methods just mask.
    top_k
        Keep at most ``top_k`` regulators per target (the strongest); ``None`` keeps every non-zero edge.
    alpha
        Ridge penalty on the correlation scale, or ``"auto"`` (held-out R² over a grid).
    transform
        ``"none"`` or ``"rank"`` (Gaussian-copula scores per gene, see the module docstring; the
        recommended setting for ranking edges).
    min_accessible
        Fraction of cells in which a linked peak must be accessible for its target to be regulatable.
    unlinked
        ``"drop"`` (default) removes edges into targets without any linked peak; ``"keep"`` leaves them.
    perturbations
        ``obs`` column naming each cell's perturbed gene(s) (e.g. ``"target_genes"`` of a screen or of
        :func:`scagents.twin.simulate`); ``None`` (default) = observational inference only. When given
        and some single-gene perturbation has ≥ 5 cells besides ≥ 5 controls (``obs["is_control"]``),
        the perturbed regulators' Welch t statistics (:func:`scagents.grn.interventional.perturbation_effects`)
        are merged with the regression by ranks (:func:`~scagents.grn.interventional.combine_evidence`);
        edge weights are then signed combined scores (with the default ``combine="odds"`` a
        log-odds-like score ≥ 0: ``-log(1 - percentile + 1/N)`` of the regression plus the knockout's
        evidence; with the percentile combinations 0–2) and each edge's ``evidence`` says
        where it came from (``"perturbation"`` when its regulator was perturbed and ``|t| ≥ 3``,
        else ``"regression"``); ``uns["grn"]["sources"]`` counts them.
    fit_cells
        With ``perturbations``: fit the regression on ``"all"`` cells (perturbed cells add
        interventional variation) or on the ``"control"`` cells only.
    combine
        How perturbation and regression ranks merge (``"sum"``, ``"mean"``, ``"product"``,
        ``"perturbation"``, ``"odds"``; see :func:`~scagents.grn.interventional.combine_evidence`).
    direct
        Score perturbations by their shifts not mediated by the other regulators' shifts
        (:func:`~scagents.grn.interventional.direct_effects`) instead of the total shifts.
    min_t
        Perturbation evidence counts only where ``|t| ≥ min_t`` (with ``combine="odds"``: ``|t|`` adds
        ``evidence_weight * log(1 + |t| - min_t)`` above it).
    reduce
        Drop knockout edges explained by a path through another knocked-out regulator
        (:func:`~scagents.grn.interventional.transitive_reduction`) before combining.
    gate
        Factor for the edges of knocked-out regulators whose knockout leaves the target unmoved
        (total ``|t| < 1``, :func:`~scagents.grn.interventional.ancestor_gate`); 1 = off.
    orient
        Factor for the reverse edge ``g → r`` of a knockout of ``r`` that moves ``g`` (total
        ``|t| ≥ 3``, :func:`~scagents.grn.interventional.orient_by_knockouts`); 1 = off.
    evidence_weight
        With ``combine="odds"``: weight of the perturbation evidence ``log(1 + max(|t| - min_t, 0))``
        against the regression's log-odds-like score (see
        :func:`~scagents.grn.interventional.combine_evidence`).
    regulator_prior
        Added to the (``"odds"``-scale) scores of every edge of a perturbed regulator whose
        perturbation moves some gene (total ``|t| ≥ 3``,
        :func:`~scagents.grn.interventional.regulator_prior`); 0 = off.
    indirect
        Weight of ``log(1 + |t_total|)`` subtracted from the (``"odds"``-scale) scores of a perturbed
        regulator's edges: at a given direct shift, a large total shift marks an indirect effect
        (:func:`~scagents.grn.interventional.indirect_penalty`); 0 = off.
    trees
        With ``method="ensemble"``: the tree regressor, ``"extra"`` (extremely randomised trees),
        ``"rf"`` (GENIE3's random forest, ``max_features="sqrt"``) or ``"both"`` (both forests, their
        importances averaged); see :mod:`scagents.grn.ensemble`.
    n_trees
        With ``method="ensemble"``: trees per target (the size rule is the same for every count).
    tree_weight
        With ``method="ensemble"``: weight of the tree ranks against the ridge ranks' 1 in the rank
        average; ``float("inf")`` = the tree ranks alone, signed by the ridge coefficients.

    time_key
        ``obs`` column of a per-cell time (a pseudotime, or the twin's simulation time ``"pseudotime"``).
        When it is present (numeric, finite, not constant), ``method="ensemble"`` fits its trees, there is
        no ``perturbations`` screen, no ``atac`` and no ``prior``, the time is one more feature of every
        target's trees and of the ridge fit that signs them (a regulator's importance is then measured
        beside the common time trend; no edge from or to the time is reported); ``None`` = never.
        ``uns["grn"]["params"]["time"]`` says whether it was used.
    sign_from
        Source of each edge's sign with ``method="ridge"`` / ``"ensemble"``: one of :data:`SIGN_SOURCES`
        (see the module docstring). Only signs change, never ``|weight|`` (the ranking); a knockout that
        counts still overrides the sign; the propagation coefficients stay the ridge fit's. The default is the
        decision of ``benchmarks/grn_sign.py``'s rules on the training networks (session 10: no candidate beat
        ridge significantly on the top-k sign accuracy; on all ranked true edges Spearman's sign was right more
        often than ridge's on 31 training data sets, less often on 16, p = 0.02, so ``"spearman"``; reported on
        fresh networks in ``benchmarks/results/grn_sign.md``).

    The defaults of ``method``, ``transform``, ``fit_cells``, ``combine``, ``direct``, ``min_t``, ``reduce``,
    ``gate``, ``orient``, ``evidence_weight``, ``regulator_prior``, ``indirect``, ``trees``, ``n_trees``,
    ``tree_weight`` and ``time_key`` were chosen on training networks and reported on disjoint ones
    (``benchmarks/grn_select.py``; ``time_key``: the candidate ``pseudotime_feature``, session 9).

    progress
        Show a progress bar (tqdm, on stderr) over the blocks of genes.
    copy
        Return a copy instead of writing into ``adata``.

    Returns
    -------
    ``adata`` (a copy) when ``copy=True``, else ``None``. Written (to the RNA AnnData):

    - ``uns["grn"]["edges"]``: DataFrame ``source``, ``target``, ``weight`` (signed, standardised),
      ``sign`` (+1/-1), sorted by ``|weight|``; also returned by :func:`network_edges`;
    - ``uns["grn"]["params"]``, ``uns["grn"]["regulators"]``, ``uns["grn"]["prior"]`` (mask stats);
    - the coefficient matrix in expression units, source x target: ``varm["grn_coef"]`` (row = the
      gene as regulator, column = target, in ``var_names`` order) when every gene is a regulator,
      else ``uns["grn"]["coef"]`` (DataFrame regulators x genes). :func:`network_matrix` reads either.

    Raises
    ------
    ValueError
        Unknown method or transform.
    GeneNotFoundError
        A regulator is not in the data.
    DataError
        Fewer than 3 cells, non-finite values, mismatching ATAC cells.
    """
    from mudata import MuData

    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; use one of {', '.join(METHODS)}.")
    from scagents.grn.ensemble import TREE_KINDS

    if trees not in TREE_KINDS:
        raise ValueError(f"Unknown trees {trees!r}; use one of {', '.join(TREE_KINDS)}.")
    if int(n_trees) < 1:
        raise ValueError(f"n_trees must be >= 1, got {n_trees}.")
    if not tree_weight >= 0:
        raise ValueError(f"tree_weight must be >= 0 (inf = trees alone), got {tree_weight}.")
    if unlinked not in ("drop", "keep"):
        raise ValueError(f"unlinked must be 'drop' or 'keep', got {unlinked!r}.")
    if transform not in TRANSFORMS:
        raise ValueError(f"Unknown transform {transform!r}; use one of {', '.join(TRANSFORMS)}.")
    if sign_from not in SIGN_SOURCES:
        raise ValueError(f"Unknown sign_from {sign_from!r}; use one of {', '.join(SIGN_SOURCES)}.")
    if copy:
        adata = adata.copy()
    target = adata
    if isinstance(adata, MuData):
        if "rna" not in adata.mod:
            raise ModalityError(f"The MuData has no 'rna' modality (has {list(adata.mod)}).")
        target = adata.mod["rna"]
        if atac is None and "atac" in adata.mod:
            atac = adata.mod["atac"]
    genes = pd.Index(target.var_names.astype(str))
    if target.n_obs < 3:
        raise DataError(f"Network inference needs at least 3 cells, got {target.n_obs}.")
    if layer is not None and layer not in target.layers:
        raise DataError(f"No layer {layer!r}; available layers: {list(target.layers)}.")
    X = target.layers[layer] if layer is not None else target.X
    if not sp.issparse(X):
        X = np.asarray(X)
    t_cells = _cell_time(target, time_key)
    use_time = (t_cells is not None and method == "ensemble" and perturbations is None and atac is None
                and prior is None)
    if use_time:
        from scagents.grn import ensemble as _ens

        use_time = _ens.trees_fit(int(X.shape[0]), len(genes) + 1)
    if use_time:
        _with_time(target, X, t_cells, time_key, regulators=regulators, top_k=top_k, alpha=alpha,
                   transform=transform, trees=trees, n_trees=n_trees, tree_weight=tree_weight,
                   sign_from=sign_from, progress=progress)
        return adata if copy else None
    P_eff = None
    if perturbations is not None:
        from scagents.grn.interventional import COMBINE, control_mask, perturbation_effects

        if fit_cells not in ("all", "control"):
            raise ValueError(f"fit_cells must be 'all' or 'control', got {fit_cells!r}.")
        if combine not in COMBINE:
            raise ValueError(f"Unknown combine {combine!r}; use one of {', '.join(COMBINE)}.")
        if not (evidence_weight >= 0 and np.isfinite(regulator_prior)):
            raise ValueError(f"evidence_weight must be >= 0 and regulator_prior finite, got {evidence_weight} "
                             f"and {regulator_prior}.")
        P_eff, p_cells = perturbation_effects(target, perturbations, layer=layer)
        if P_eff.empty:
            P_eff = None
        elif fit_cells == "control":
            ctrl = control_mask(target.obs, perturbations)
            X = X[ctrl] if ctrl.sum() >= 3 else X

    if regulators is None:
        reg_idx = np.arange(len(genes))
    else:
        regulators = [regulators] if isinstance(regulators, str) else [str(g) for g in regulators]
        missing = [g for g in regulators if g not in genes]
        if missing:
            raise _missing_genes(missing, genes, "regulator")
        reg_idx = genes.get_indexer(pd.Index(regulators).unique())
    regs = genes[reg_idx]
    if "partial_correlation" in (method, sign_from) and len(genes) > MAX_PARTIAL_GENES:
        what = "method" if method == "partial_correlation" else "sign_from"
        raise ValueError(
            f"{what}='partial_correlation' needs a dense genes x genes matrix: {len(genes):,} genes would take "
            f"{len(genes) ** 2 * 8 / 2**30:.1f} GB per copy. Use at most {MAX_PARTIAL_GENES:,} genes (subset the "
            f"AnnData to the genes of interest) or the default ({what}="
            f"{'ensemble' if what == 'method' else 'spearman'!r}).")
    if method == "partial_correlation":  # needs every gene's column at once
        Z, sd = _z_block(_dense(X), transform)
    else:
        stats = _Stats(X, reg_idx, transform, float64=method == "correlation",
                       choose_alpha=method in ("ridge", "ensemble") and alpha == "auto", progress=progress)
        sd = stats.sd
    const = sd == 0

    allowed = None
    prior_info: dict[str, Any] = {}
    if prior is not None:
        allowed = _prior_mask(prior, regs, genes)
        prior_info["prior_edges_allowed"] = int(allowed.sum())
    if atac is not None:
        if atac.n_obs != target.n_obs:
            raise DataError(f"atac has {atac.n_obs} cells but the expression has {target.n_obs}; "
                            f"pass ATAC for the same cells.")
        target_ok, atac_info = _atac_mask(atac, genes, links, min_accessible, unlinked)
        prior_info["atac"] = atac_info
        col_mask = np.broadcast_to(target_ok[None, :], (len(regs), len(genes)))
        allowed = col_mask.copy() if allowed is None else allowed & col_mask

    params: dict[str, Any] = {"method": method, "layer": layer or "X", "top_k": -1 if top_k is None else int(top_k),
                              "n_cells": int(X.shape[0]), "n_genes": int(len(genes)),
                              "n_regulators": int(len(regs)), "transform": transform}
    dropped: dict[int, np.ndarray] = {}  # perturbed targets fitted without their own cells
    if method in ("ridge", "ensemble"):
        if alpha == "auto":
            alpha_val = float(stats.alpha)
            params["alpha_scores"] = stats.alpha_scores
        else:
            alpha_val = float(alpha)
        params["alpha"] = alpha_val
        B = (_ridge_all(stats.G, stats.C, reg_idx, alpha_val, stats.all_regs) if prior is None
             else _ridge_masked(stats.G, stats.C, reg_idx, alpha_val, allowed))
        if P_eff is not None and fit_cells == "all":  # perturbed targets: refit without their own cells
            lab = target.obs[perturbations].astype(str).to_numpy()
            pos = {g: i for i, g in enumerate(map(str, regs))}
            for g in P_eff.index:
                j = genes.get_loc(g)
                drop = lab == g
                dropped[j] = drop
                z = stats.ZR[drop, pos[g]] if g in pos else _z_block(_dense(X[:, [j]]), transform)[0][drop, 0]
                B[:, j] = _refit_without(stats, j, z, drop, pos.get(g, -1), alpha_val,
                                         None if allowed is None else allowed[:, j])
            params["invariant_targets"] = int(len(P_eff.index))
    elif method == "correlation":
        B = stats.C.copy()
        B[np.arange(len(reg_idx)), reg_idx] = 0.0
    else:
        pc, params["shrinkage"] = _partial_matrix(Z, const)
        B = pc[reg_idx]
    B[:, const] = 0.0
    B[const[reg_idx], :] = 0.0
    if allowed is not None:
        B = np.where(allowed, B, 0.0)

    signs = None
    if method in ("ridge", "ensemble") and sign_from != "ridge":
        signs = _edge_signs(sign_from, B, X, stats, transform, dropped)
        params["sign_from"] = sign_from
    elif method in ("ridge", "ensemble"):
        params["sign_from"] = "ridge"
    if method != "partial_correlation":
        del stats
    S_obs = B
    if method == "ensemble":  # tree importances, alone or rank-averaged with ridge (scagents.grn.ensemble)
        from scagents.grn import ensemble as _ens

        if _ens.trees_fit(int(X.shape[0]), len(genes)):
            lab = (target.obs[perturbations].astype(str).to_numpy()
                   if P_eff is not None and fit_cells == "all" else None)
            W = _ens.tree_importance(X, reg_idx, labels=lab, genes=genes, allowed=allowed,
                                     n_trees=int(n_trees), kind=trees)
            W[:, const] = 0.0
            W[const[reg_idx], :] = 0.0
            S_obs = _ens.rank_average(B, W, weight=float(tree_weight))
            params["trees"] = {"fitted": True, "kind": trees, "n_trees": int(n_trees),
                               "weight": float(tree_weight),
                               "n_cells": int(min(X.shape[0], _ens.TREE_MAX_CELLS)),
                               "invariant": lab is not None}
        else:
            params["trees"] = {"fitted": False, "reason": (
                f"{len(genes)} genes x {min(int(X.shape[0]), _ens.TREE_MAX_CELLS)} cells is above the "
                f"size rule ({_ens.TREE_BUDGET:,}); ridge alone")}
    if signs is not None:  # only the sign changes, never |weight| (the ranking)
        S_obs = np.abs(S_obs) * signs
    sources: dict[str, Any] = {}
    S = S_obs
    if P_eff is not None:
        from scagents.grn.interventional import combine_evidence

        P_eff = P_eff.reindex(columns=genes, fill_value=0.0)
        P_total = P_eff
        if direct:
            from scagents.grn.interventional import direct_effects

            P_eff = direct_effects(P_eff, B, regs, sd)
        if reduce:
            from scagents.grn.interventional import transitive_reduction

            P_eff = transitive_reduction(P_eff)
        S, sources = combine_evidence(S_obs, regs, P_eff, how=combine, min_t=min_t, allowed=allowed,
                                      weight=evidence_weight)
        if indirect != 0.0:
            from scagents.grn.interventional import indirect_penalty

            S = indirect_penalty(S, regs, P_total, weight=indirect)
        if regulator_prior != 0.0:
            from scagents.grn.interventional import regulator_prior as _row_prior

            S = _row_prior(S, regs, P_total, boost=regulator_prior)
        if gate != 1.0:
            from scagents.grn.interventional import ancestor_gate

            S = ancestor_gate(S, regs, P_total, factor=gate)
        if orient != 1.0:
            from scagents.grn.interventional import orient_by_knockouts

            S = orient_by_knockouts(S, regs, P_total, factor=orient)
        S[:, const] = 0.0
        params.update(perturbations=perturbations, fit_cells=fit_cells, combine=combine, direct=bool(direct),
                      min_t=float(min_t), reduce=bool(reduce), gate=float(gate), orient=float(orient),
                      evidence_weight=float(evidence_weight), regulator_prior=float(regulator_prior),
                      indirect=float(indirect))
        sources["cells_per_perturbation"] = p_cells
    edges, kept = _edge_table(S, regs, genes, top_k)
    if P_eff is not None:
        t = np.zeros(len(edges))
        prow = P_eff.index.get_indexer(edges["source"].astype(str))
        has = prow >= 0
        t[has] = P_eff.to_numpy()[prow[has], genes.get_indexer(edges["target"].astype(str)[has])]
        edges["perturbation_t"] = np.where(has, t, np.nan)
        edges["evidence"] = np.where(has & (np.abs(t) >= 3.0), "perturbation", "regression")
        sources.update(n_edges=int(len(edges)), n_from_perturbed_regulators=int(has.sum()),
                       n_perturbation_supported=int((edges["evidence"] == "perturbation").sum()),
                       n_regression_only=int((~has).sum()))
    if prior_info:
        sources["prior"] = {"applied": sorted(k if k == "atac" else "prior" for k in prior_info
                                              if k in ("atac", "prior_edges_allowed")),
                            "n_edges_within_prior": int(len(edges))}
    # keep only the retained edges in the coefficient matrix too
    sd_safe = np.where(sd > 0, sd, 1.0)
    coef = np.where(kept, B, 0.0) * sd_safe[None, :] / sd_safe[reg_idx][:, None]

    record: dict[str, Any] = {"edges": edges, "params": params, "regulators": list(map(str, regs)),
                              "prior": prior_info, "sources": sources}
    if len(reg_idx) == len(genes) and np.array_equal(reg_idx, np.arange(len(genes))):
        target.varm["grn_coef"] = coef
        record["coef_key"] = "varm/grn_coef"
    else:
        record["coef"] = pd.DataFrame(coef, index=list(map(str, regs)), columns=list(map(str, genes)))
        record["coef_key"] = "uns/grn/coef"
        target.varm.pop("grn_coef", None)
    params["time"] = {"used": False, "key": time_key, "reason": (
        "time_key=None" if time_key is None else f"no usable obs[{time_key!r}]" if t_cells is None else
        "only with method='ensemble' fitting its trees, no perturbations, atac or prior")}
    target.uns["grn"] = record
    return adata if copy else None


TIME_FEATURE = "__time__"
"""Name of the time feature inside :func:`infer_network` (never reported as a gene)."""


def _cell_time(adata: ad.AnnData, key: str | None) -> np.ndarray | None:
    """``obs[key]`` as float when it is a usable time (numeric, finite, not constant), else ``None``."""
    if key is None or key not in adata.obs:
        return None
    col = adata.obs[key]
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return None
    t = col.to_numpy(dtype=float)
    if not np.isfinite(t).all() or np.ptp(t) == 0:
        return None
    return t


def _with_time(target: ad.AnnData, X, t: np.ndarray, key: str, *, regulators, **kwargs) -> None:
    """:func:`infer_network` (``method="ensemble"``) with the cell time as one more feature, written to
    ``target`` without any edge or coefficient of the time."""
    genes = list(map(str, target.var_names))
    tcol = t.astype(np.float32)[:, None]  # sparse input stays sparse (memory: O(non-zeros))
    aug = ad.AnnData(sp.hstack([sp.csr_matrix(X, dtype=np.float32), sp.csr_matrix(tcol)], format="csr")
                     if sp.issparse(X) else np.c_[np.asarray(X, dtype=np.float32), tcol])
    aug.var_names = [*genes, TIME_FEATURE]
    regs = None
    if regulators is not None:
        regs = [regulators] if isinstance(regulators, str) else [str(g) for g in regulators]
        missing = [g for g in regs if g not in genes]
        if missing:
            raise _missing_genes(missing, pd.Index(genes), "regulator")
        regs = [*dict.fromkeys(regs), TIME_FEATURE]
    infer_network(aug, method="ensemble", regulators=regs, time_key=None, **kwargs)
    rec = dict(aug.uns["grn"])
    e = rec["edges"]
    rec["edges"] = e[(e["source"] != TIME_FEATURE) & (e["target"] != TIME_FEATURE)].reset_index(drop=True)
    rec["regulators"] = [g for g in rec["regulators"] if g != TIME_FEATURE]
    rec["params"] = {**rec["params"], "n_genes": len(genes), "n_regulators": len(rec["regulators"]),
                     "time": {"used": True, "key": key}}
    if rec.get("coef_key") == "uns/grn/coef":
        rec["coef"] = rec["coef"].drop(index=TIME_FEATURE, columns=TIME_FEATURE)
        target.varm.pop("grn_coef", None)
    else:
        target.varm["grn_coef"] = np.asarray(aug.varm["grn_coef"])[:-1, :-1]
    target.uns["grn"] = rec


def _grn_adata(adata) -> ad.AnnData:
    from mudata import MuData

    if isinstance(adata, MuData):
        adata = adata.mod["rna"]
    if "grn" not in adata.uns or "edges" not in adata.uns["grn"]:
        raise DataError("No network in adata.uns['grn']; run scagents.grn.infer_network(adata) first.")
    return adata


def network_edges(adata, *, min_abs_weight: float = 0.0, top: int | None = None) -> pd.DataFrame:
    """The inferred edge table.

    Parameters
    ----------
    adata
        AnnData (or MuData with ``"rna"``) after :func:`infer_network`.
    min_abs_weight
        Drop edges with ``|weight|`` below this.
    top
        Keep the ``top`` strongest edges.

    Returns
    -------
    DataFrame with columns ``source``, ``target``, ``weight``, ``sign`` sorted by ``|weight|``
    (``.to_csv(path)`` exports it).
    """
    a = _grn_adata(adata)
    edges = pd.DataFrame(a.uns["grn"]["edges"]).copy()
    edges["source"] = edges["source"].astype(str)
    edges["target"] = edges["target"].astype(str)
    edges = edges[edges["weight"].abs() >= min_abs_weight]
    edges = edges.iloc[np.argsort(-edges["weight"].abs().to_numpy(), kind="stable")]
    if top is not None:
        edges = edges.head(int(top))
    return edges.reset_index(drop=True)


COEF_SIGNS: tuple[str, ...] = ("coef", "edges")
"""Signs :func:`network_matrix` can give the coefficients: their own (``"coef"``, the ridge fit's partial
effects) or the edge table's (``"edges"``, ``|coefficient|`` x the drawn edge's sign)."""


def _edge_signs_matrix(a: ad.AnnData, genes: pd.Index) -> np.ndarray:
    """The edge table's sign at (source, target), genes x genes; 0 where there is no edge."""
    edges = pd.DataFrame(a.uns["grn"]["edges"])
    S = np.zeros((len(genes), len(genes)))
    r = genes.get_indexer(edges["source"].astype(str))
    t = genes.get_indexer(edges["target"].astype(str))
    ok = (r >= 0) & (t >= 0)
    S[r[ok], t[ok]] = np.sign(edges["weight"].to_numpy(dtype=np.float64)[ok])
    return S


def network_matrix(adata, *, signs: str = "coef") -> pd.DataFrame:
    """The coefficient matrix in expression units as a genes x genes DataFrame (source x target).

    Rows of genes that are not regulators are zero.

    Parameters
    ----------
    adata
        AnnData (or MuData with ``"rna"``) after :func:`infer_network`.
    signs
        ``"coef"`` (default): the regression coefficients as fitted (partial effects: a regulator's
        effect with the other regulators held fixed; their sign can differ from the edge table's, which
        comes from ``sign_from``); ``"edges"``: ``|coefficient|`` with the sign of the edge table's
        ``weight`` (0 where the table has no edge).

    Returns
    -------
    DataFrame genes x genes (rows = regulators, columns = targets).
    """
    if signs not in COEF_SIGNS:
        raise ValueError(f"Unknown signs {signs!r}; use one of {', '.join(COEF_SIGNS)}.")
    a = _grn_adata(adata)
    genes = pd.Index(a.var_names.astype(str))
    if "grn_coef" in a.varm:
        W = pd.DataFrame(np.asarray(a.varm["grn_coef"]), index=genes, columns=genes)
    else:
        W = pd.DataFrame(a.uns["grn"]["coef"]).reindex(index=genes, columns=genes, fill_value=0.0)
    if signs == "edges":
        W = pd.DataFrame(np.abs(W.to_numpy(dtype=np.float64)) * _edge_signs_matrix(a, genes),
                         index=genes, columns=genes)
    return W


def sign_agreement(adata) -> dict[str, int]:
    """How often the propagation coefficients' sign differs from the edge table's sign.

    Parameters
    ----------
    adata
        AnnData (or MuData with ``"rna"``) after :func:`infer_network`.

    Returns
    -------
    dict
        ``n_edges`` (rows of the edge table), ``n_with_coef`` (those with a non-zero coefficient in
        :func:`network_matrix`) and ``n_opposite`` (those whose coefficient's sign is opposite to the
        edge's ``weight``).
    """
    a = _grn_adata(adata)
    genes = pd.Index(a.var_names.astype(str))
    edges = a.uns["grn"]["edges"]  # read column by column: no copy of a whole-transcriptome table
    # the coefficients as stored (network_matrix's "coef" values without a dense float64 copy)
    W = np.asarray(a.varm["grn_coef"]) if "grn_coef" in a.varm else network_matrix(a).to_numpy()
    r = genes.get_indexer(pd.Series(edges["source"]).astype(str))
    t = genes.get_indexer(pd.Series(edges["target"]).astype(str))
    ok = (r >= 0) & (t >= 0)
    c = np.zeros(len(r))
    c[ok] = W[r[ok], t[ok]]
    return sign_counts(c, np.asarray(edges["weight"], dtype=np.float64))


def sign_counts(coef: np.ndarray, weight: np.ndarray) -> dict[str, int]:
    """``n_edges``, ``n_with_coef`` (non-zero ``coef``) and ``n_opposite`` (those whose ``coef`` has the sign
    opposite to ``weight``) of edges given as two aligned arrays (coefficient 0 where an edge has none)."""
    c = np.nan_to_num(np.asarray(coef, dtype=np.float64))
    w = np.asarray(weight, dtype=np.float64)
    return {"n_edges": int(len(c)), "n_with_coef": int((c != 0).sum()),
            "n_opposite": int(((c != 0) & (np.sign(c) != np.sign(w))).sum())}
