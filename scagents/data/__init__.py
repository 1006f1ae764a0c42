"""Reading, validating and standardising single-cell perturbation data.

Typical use::

    from scagents import data

    adata = data.load("papalexi2021.h5ad")          # read + standardize
    data.lognormalize(adata)                         # layers["lognorm"]
    effects = data.perturbation_effects(adata)       # perturbations x genes
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import anndata as ad
import mudata as md

from scagents._warnings import dependency_warnings_filtered

from .io import (
    RNA_MODALITY_NAMES,
    DataFileNotFoundError,
    load_npy,
    read,
    read_beeline,
    read_csv_expression,
    read_hits,
    read_network,
    read_screen,
    rna_modality,
    rna_modality_name,
    write,
)
from .pseudobulk import MAX_PADJ, MIN_EFFECT, gene_effects, perturbation_effects, pseudobulk
from .validate import (
    CONTROL_TOKENS,
    DEFAULT_TYPE_REASON,
    EXCLUDED_TOKENS,
    PERTURBATION_KEYS,
    STANDARD_COLUMNS,
    combinations_with,
    counts_as_x,
    find_perturbation_key,
    gene_names,
    genome_line,
    is_control_label,
    is_excluded_label,
    library_target,
    lognormalize,
    mirror_obs,
    one_genome,
    reference_prefixes,
    scan_values,
    split_targets,
    standardize,
)

__all__ = [
    "CONTROL_TOKENS",
    "DEFAULT_TYPE_REASON",
    "EXCLUDED_TOKENS",
    "PERTURBATION_KEYS",
    "RNA_MODALITY_NAMES",
    "STANDARD_COLUMNS",
    "DataFileNotFoundError",
    "MAX_PADJ",
    "MIN_EFFECT",
    "combinations_with",
    "counts_as_x",
    "find_perturbation_key",
    "gene_names",
    "genome_line",
    "gene_effects",
    "is_control_label",
    "is_excluded_label",
    "library_target",
    "load",
    "lognormalize",
    "mirror_obs",
    "one_genome",
    "reference_prefixes",
    "perturbation_effects",
    "pseudobulk",
    "read",
    "read_beeline",
    "read_csv_expression",
    "load_npy",
    "read_hits",
    "read_network",
    "read_screen",
    "rna_modality",
    "rna_modality_name",
    "scan_values",
    "split_targets",
    "write",
    "standardize",
]


@dependency_warnings_filtered()  # mudata's notes while standardising: not the user's concern
def load(
    source: str | os.PathLike | ad.AnnData | md.MuData,
    *,
    perturbation_key: str | None = None,
    control_labels: str | Sequence[str] | None = None,
    perturbation_type: str | Mapping[str, str] | None = None,
    modality: str | None = None,
) -> ad.AnnData | md.MuData:
    """Read and standardise perturbation data in one step.

    Parameters
    ----------
    source
        Anything :func:`read` accepts. An in-memory AnnData/MuData is copied, never modified.
    perturbation_key, control_labels, perturbation_type
        Passed to :func:`standardize`.
    modality
        For MuData input: standardise and return only this modality. ``None`` standardises the RNA
        modality (``rna``, else the first) and mirrors the standard columns to ``mdata.obs``.

    Returns
    -------
    The standardised AnnData or MuData (see :func:`standardize` for the columns written). When
    ``X`` does not hold counts but ``layers["counts"]`` or ``.raw`` does, the counts become ``X``
    (:func:`counts_as_x`; ``uns["scagents"]["data"]["counts_from"]`` says where they came from).
    Genes of a multi-genome (barnyard) reference (``GRCh38_STAT1`` and ``mm10_Stat1``): the
    reference with the most counts and the cells drawing most of their counts from it are kept
    (:func:`one_genome`; ``uns["scagents"]["data"]["genome"]`` says what was kept and left out);
    a single reference's prefix is removed from the gene names (:func:`standardize`).
    """
    obj = read(source, modality=modality)
    options = dict(perturbation_key=perturbation_key, control_labels=control_labels,
                   perturbation_type=perturbation_type)
    if isinstance(source, ad.AnnData | md.MuData):  # never modify the caller's object
        obj = obj.copy()
    name, rna = rna_modality(obj)
    counts_from = counts_as_x(rna)
    rna, genome = one_genome(rna)
    if genome is not None:
        if isinstance(obj, md.MuData):  # the other species' cells leave every modality
            obj.mod[name] = rna
            obj.update()
            obj = obj[obj.obs_names.isin(rna.obs_names)].copy()
            rna = obj.mod[name]
        else:
            obj = rna
    if (counts_from or genome) and isinstance(obj, md.MuData):
        obj.update()
    standardize(obj, **options, copy=False)  # a copy, or freshly read from disk: safe to modify
    extra = {k: v for k, v in (("counts_from", counts_from), ("genome", genome)) if v}
    if extra:
        rna.uns["scagents"]["data"].update(extra)
        if isinstance(obj, md.MuData):
            obj.uns["scagents"]["data"].update(extra)
    return obj
