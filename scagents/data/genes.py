"""Which genes an analysis works on: named genes first, then the most highly variable, up to a cap.

Whole-transcriptome files (10,000–30,000 genes) are reduced to the genes that matter before network
inference and policy training, so that their memory and time stay bounded whatever the gene count:

1. the goal's genes (always kept, even beyond the cap);
2. known regulators — genes that are perturbation targets in the data (the most variable first when
   there are more than the cap allows);
3. the most highly variable genes (scanpy's ``seurat`` dispersion, computed in one streaming pass by
   :func:`scagents.data.backed.highly_variable_backed`) until ``n_genes`` are chosen.

No transcription-factor list ships inside the installed dependencies, so "known regulators" are the
data's own perturbation targets.
"""

from __future__ import annotations

from collections.abc import Sequence

import anndata as ad
import numpy as np
import pandas as pd

__all__ = ["select_genes", "DEFAULT_N_GENES", "DEFAULT_N_REGULATORS", "REASONS"]

DEFAULT_N_GENES = 2000
"""Default cap on the genes the network and policy agents work on."""
DEFAULT_N_REGULATORS = 500
"""Default number of candidate regulators of the network (named genes first, then by variability)."""
REASONS: tuple[str, ...] = ("goal", "perturbation target", "highly variable")


def _variability(adata: ad.AnnData) -> pd.Series:
    """Normalised dispersion per gene (higher = more variable; NaN → -inf)."""
    from scagents.data.backed import highly_variable_backed

    if "lognorm" in adata.layers:
        layer, normalize = "lognorm", False
    else:
        rec = adata.uns.get("scagents", {}).get("data", {}) if isinstance(adata.uns.get("scagents"), dict) else {}
        layer, normalize = None, bool(rec.get("is_counts", True))
    df = highly_variable_backed(adata, n_top_genes=min(DEFAULT_N_GENES, adata.n_vars), flavor="seurat",
                                normalize=normalize, layer=layer)
    score = df["dispersions_norm"].to_numpy(dtype=float)
    return pd.Series(np.where(np.isnan(score), -np.inf, score), index=adata.var_names.astype(str))


def select_genes(
    adata: ad.AnnData,
    *,
    goal_genes: Sequence[str] = (),
    regulators: Sequence[str] = (),
    n_genes: int = DEFAULT_N_GENES,
    n_regulators: int = DEFAULT_N_REGULATORS,
) -> pd.DataFrame:
    """Choose at most ``n_genes`` genes (plus the goal's) and the candidate regulators among them.

    Parameters
    ----------
    adata
        Cells x genes (counts in ``X``, or a ``"lognorm"`` layer).
    goal_genes
        Genes the question is about; always kept. Names not in ``adata`` are ignored.
    regulators
        Known regulators (e.g. the data's perturbation targets); kept before the variable genes.
    n_genes
        Cap on the number of genes (the goal's genes may exceed it).
    n_regulators
        Candidate regulators: the named genes first, then the most variable ones.

    Returns
    -------
    DataFrame indexed by gene in ``adata.var_names`` order with columns ``reason`` (one of
    :data:`REASONS`), ``variability_rank`` (0 = most variable) and ``regulator`` (bool).

    Raises
    ------
    ValueError
        ``n_genes`` or ``n_regulators`` below 1.
    """
    if n_genes < 1 or n_regulators < 1:
        raise ValueError(f"n_genes and n_regulators must be at least 1, got {n_genes} and {n_regulators}.")
    names = pd.Index(adata.var_names.astype(str))
    present = set(names)
    # small data (every gene kept, every gene a regulator) need no ranking: data order
    need_rank = adata.n_vars > min(n_genes, n_regulators)
    score = _variability(adata) if need_rank else pd.Series(0.0, index=names)
    order = score.sort_values(ascending=False, kind="stable").index
    rank = pd.Series(np.arange(len(order)), index=order)

    chosen: dict[str, str] = {}
    for g in dict.fromkeys(str(x) for x in goal_genes):
        if g in present:
            chosen[g] = "goal"
    known = [str(g) for g in dict.fromkeys(regulators) if str(g) in present and str(g) not in chosen]
    for g in sorted(known, key=lambda x: rank[x]):
        if len(chosen) >= n_genes:
            break
        chosen[g] = "perturbation target"
    for g in order:
        if len(chosen) >= n_genes:
            break
        chosen.setdefault(g, "highly variable")
    table = pd.DataFrame({"reason": pd.Series(chosen)})
    table["variability_rank"] = rank.reindex(table.index).to_numpy(int)
    priority = table["reason"].map({r: i for i, r in enumerate(REASONS)})
    by_priority = table.assign(p=priority).sort_values(["p", "variability_rank"], kind="stable")
    table["regulator"] = table.index.isin(by_priority.index[:n_regulators])
    table = table.reindex([g for g in names if g in chosen])
    table.index.name = "gene"
    return table
