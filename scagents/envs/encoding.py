"""Perturbation encodings shared by the response and design environments.

A perturbation is described to a policy by *what* is perturbed and *how*:

``[ Σ_{g ∈ targets} G[g] (k values) | one-hot kind (4 values) | unknown-target flag (1 value) ]``

``G`` is a genes × ``k`` gene embedding. :func:`gene_embedding_from_effects` computes it as in the
linear baseline of Ahlmann-Eltze et al. (2025), by reusing
:class:`scagents.baselines.LinearGeneEmbedding`: a PCA over genes of the *training* pseudobulk
profiles. Because a gene's row of ``G`` is known for every measured gene, a perturbation held out of
training still gets a meaningful encoding (its targets' rows), computed without its own data.
:func:`network_gene_embedding` describes the genes of a Boolean model by its signed wiring instead
(useful for design candidates on the twin). Any genes × features table can be used as ``G``.

A target missing from ``G`` contributes zeros and sets the unknown-target flag, so a policy can tell
"no information" from "no effect".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from scagents.baselines import LinearGeneEmbedding
from scagents.errors import DataError
from scagents.perturbation import KINDS, Perturbation

__all__ = [
    "encoding_size",
    "gene_embedding_from_effects",
    "network_gene_embedding",
    "encode_perturbations",
    "as_perturbation",
]


def encoding_size(k: int) -> int:
    """Length of :func:`encode_perturbations` rows for a ``k``-column gene embedding."""
    return int(k) + len(KINDS) + 1


def as_perturbation(p: Perturbation | str | Sequence[str], kind: str = "knockout") -> Perturbation:
    """Coerce a label (``"STAT1+IRF1"``, ``"IFNG overexpression"``) or gene list to a Perturbation.

    Parameters
    ----------
    p
        A :class:`~scagents.perturbation.Perturbation` (returned as is), a label whose last word
        may name the kind, or a sequence of gene symbols.
    kind
        Kind used when the label does not name one.

    Returns
    -------
    Perturbation
    """
    if isinstance(p, Perturbation):
        return p
    if isinstance(p, str):
        words = p.split()
        if len(words) >= 2 and words[-1] in KINDS:
            kind, words = words[-1], words[:-1]
        genes = tuple(g.strip() for g in " ".join(words).split("+") if g.strip())
        return Perturbation(genes, kind=kind)
    return Perturbation(tuple(str(g) for g in p), kind=kind)


def _normalise(g: np.ndarray) -> np.ndarray:
    scale = float(np.sqrt(np.mean(np.sum(g**2, axis=1)))) if g.size else 0.0
    return g / scale if scale > 0 else g


def gene_embedding_from_effects(control: pd.Series, effects: pd.DataFrame, *, k: int = 8,
                                normalise: bool = True) -> pd.DataFrame:
    """Gene embedding ``G`` from a PCA of training pseudobulk profiles.

    Uses :class:`scagents.baselines.LinearGeneEmbedding` (``scale_embedding=True``) fitted on
    ``control`` and ``effects``; pass the *training* perturbations only, so held-out ones never
    shape the embedding.

    Parameters
    ----------
    control
        Mean control profile, indexed by gene.
    effects
        Training perturbations × genes deltas (index = target labels).
    k
        Number of columns; the PCA rank may be lower, missing columns are zero-padded so the
        encoding length does not depend on the training set.
    normalise
        Divide by the root-mean-square row norm, so a typical gene's row has norm 1.

    Returns
    -------
    pandas.DataFrame
        Genes × ``k`` (columns ``PC1`` … ``PCk``).
    """
    if k < 1:
        raise DataError(f"k must be a positive number of embedding columns, got {k}.")
    model = LinearGeneEmbedding(k=k, ridge=0.1, scale_embedding=True).fit(control, effects)
    g = model.gene_embedding_.to_numpy(dtype=np.float64)
    out = np.zeros((g.shape[0], k))
    out[:, : g.shape[1]] = g[:, :k]
    if normalise:
        out = _normalise(out)
    return pd.DataFrame(out, index=control.index.astype(str),
                        columns=[f"PC{i + 1}" for i in range(k)])


def network_gene_embedding(network, *, k: int = 8) -> pd.DataFrame:
    """Gene embedding from the signed wiring of a Boolean model (no expression data needed).

    Each gene is described by its signed outgoing and incoming edges (``[A | Aᵀ]`` with ``A[i, j]``
    the sign of ``i → j``) and the description is reduced to ``k`` columns by an SVD; genes wired
    alike land close.

    Parameters
    ----------
    network
        A :class:`scagents.twin.BooleanNetwork`.
    k
        Number of columns (zero-padded when the network has fewer genes).

    Returns
    -------
    pandas.DataFrame
        Genes × ``k``, rows normalised to RMS norm 1.
    """
    genes = list(network.genes)
    pos = {g: i for i, g in enumerate(genes)}
    a = np.zeros((len(genes), len(genes)))
    for s, t, sign in network.edges[["source", "target", "sign"]].itertuples(index=False):
        a[pos[s], pos[t]] = float(sign)
    desc = np.hstack([a, a.T])
    desc = desc - desc.mean(axis=0, keepdims=True)
    u, s, _ = np.linalg.svd(desc, full_matrices=False)
    m = min(k, int(np.sum(s > 1e-10)))
    out = np.zeros((len(genes), k))
    out[:, :m] = u[:, :m] * s[:m]
    return pd.DataFrame(_normalise(out), index=genes, columns=[f"W{i + 1}" for i in range(k)])


def encode_perturbations(perturbations: Sequence[Perturbation | str], embedding: pd.DataFrame
                         ) -> np.ndarray:
    """Encode perturbations as ``[summed target embedding | one-hot kind | unknown flag]``.

    Parameters
    ----------
    perturbations
        Perturbations or labels (see :func:`as_perturbation`).
    embedding
        Genes × ``k`` gene embedding; targets are matched by name, then case-insensitively.

    Returns
    -------
    numpy.ndarray
        ``(n, k + 5)`` float32 (see the module docstring).
    """
    g = embedding.to_numpy(dtype=np.float64)
    k = g.shape[1]
    exact = {str(name): i for i, name in enumerate(embedding.index)}
    upper = {str(name).upper(): i for i, name in enumerate(embedding.index)}
    out = np.zeros((len(perturbations), encoding_size(k)), dtype=np.float32)
    for row, p in enumerate(perturbations):
        p = as_perturbation(p)
        for target in p.targets:
            i = exact.get(target, upper.get(target.upper()))
            if i is None:
                out[row, -1] = 1.0
            else:
                out[row, :k] += g[i]
        out[row, k + KINDS.index(p.kind)] = 1.0
    return out
