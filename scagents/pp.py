"""Preprocessing, in scanpy's style: ``scagents.pp.load(path)``, ``scagents.pp.lognormalize(adata)``.

========================  ========================================================================
``load``                  read + standardise a file or an in-memory AnnData / MuData
``read`` / ``write``      read any supported format / write ``.h5ad`` / ``.h5mu`` atomically
``standardize``           the standard ``.obs`` columns (perturbation, target_genes, is_control, …)
``lognormalize``          ``.layers["lognorm"]`` (counts scaled to 10⁴ per cell, ``log1p``)
``pseudobulk``            mean profile per group
``perturbation_effects``  each perturbation's mean minus the control mean
``gene_effects``          per-gene change and Welch-test adjusted p-values, control vs perturbed cells
========================  ========================================================================
"""

from scagents._lazy import lazy_exports

_WHERE = {
    "load": "scagents.data:load",
    "read": "scagents.data:read",
    "write": "scagents.data:write",
    "standardize": "scagents.data:standardize",
    "lognormalize": "scagents.data:lognormalize",
    "pseudobulk": "scagents.data:pseudobulk",
    "perturbation_effects": "scagents.data:perturbation_effects",
    "gene_effects": "scagents.data:gene_effects",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
