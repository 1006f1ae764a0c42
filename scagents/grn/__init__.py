"""scagents.grn — regulatory network inference and in-silico perturbation through the network.

>>> from scagents.grn import infer_network, network_edges, perturb
>>> infer_network(adata)                            # writes adata.uns["grn"], adata.varm["grn_coef"]
>>> network_edges(adata).to_csv("edges.csv")
>>> perturb(adata, Perturbation(("GATA1",)))         # writes adata.layers["perturb_delta"]
"""

from scagents.grn.infer import (
    COEF_SIGNS,
    METHODS,
    SIGN_SOURCES,
    TRANSFORMS,
    infer_network,
    network_edges,
    network_matrix,
    peak_gene_links,
    sign_agreement,
    sign_counts,
)
from scagents.grn.propagate import perturb, propagate_delta, propagator

__all__ = [
    "COEF_SIGNS",
    "METHODS",
    "SIGN_SOURCES",
    "TRANSFORMS",
    "infer_network",
    "network_edges",
    "network_matrix",
    "peak_gene_links",
    "perturb",
    "propagate_delta",
    "propagator",
    "sign_agreement",
    "sign_counts",
]
