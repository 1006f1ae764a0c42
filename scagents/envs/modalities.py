"""Per-modality views of a :class:`~scagents.envs.ResponseTask` (RNA only, ATAC only, joint).

The paper's Tables I–III (arXiv:2510.13018) evaluate RNA, ATAC and joint RNA + ATAC separately.
:func:`modality_task` cuts one multi-modal task into those views, so the same held-out evaluation
(:func:`scagents.evaluation.heldout_scores`) runs on each::

    from scagents.envs import ResponseTask
    from scagents.envs.modalities import modality_task, twin_feature_genes

    full = ResponseTask.from_twin("th", modalities=("rna", "atac", "prot"), keep_cells=True)
    genes = twin_feature_genes(full)
    rna = modality_task(full, ("rna",))
    atac = modality_task(full, ("atac",), feature_genes=genes)        # gene-level accessibility
    joint = modality_task(full, ("rna", "atac"), feature_genes=genes)

The perturbation encoding and the linear baseline are keyed by *gene* names (a target is looked
up among the features of the task's gene modality, :attr:`ResponseTask.embedding_modality`). An
ATAC-only task whose features are peak or promoter names would therefore see every target as
unknown; ``feature_genes`` renames such features to the gene each one is linked to (on the twin,
the promoter of each regulated gene; on real data, a gene-activity aggregate), which is what
"ATAC at gene level" means here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import pandas as pd

from scagents.envs.response import ResponseTask
from scagents.errors import DataError, ModalityError

__all__ = ["modality_task", "twin_feature_genes"]

_TWIN_NAMING = {"atac": ("", "_prom"), "prot": ("ADT_", "")}
"""Prefix and suffix around the gene name of each twin feature (:meth:`ResponseTask.from_twin`)."""


def twin_feature_genes(task: ResponseTask) -> dict[str, list[str]]:
    """The gene of each ATAC and protein feature of a twin task.

    Parameters
    ----------
    task
        A task built by :meth:`ResponseTask.from_twin` (``source`` starts with ``"twin:"``).

    Returns
    -------
    dict
        ``{modality: [gene of each feature]}`` for the task's ``"atac"`` (``"<gene>_prom"``, the
        promoter of a regulated gene) and ``"prot"`` (``"ADT_<gene>"``) modalities.

    Raises
    ------
    DataError
        The task is not a twin task, or a feature does not follow the twin's naming.
    """
    if not task.source.startswith("twin:"):
        raise DataError(f"twin_feature_genes needs a twin task (source 'twin:…'), got source "
                        f"{task.source!r}; pass feature_genes yourself for real data.")
    out: dict[str, list[str]] = {}
    for mod, (prefix, suffix) in _TWIN_NAMING.items():
        if mod not in task.modalities:
            continue
        names = [str(f) for f in task.features[mod]]
        bad = [f for f in names if not (f.startswith(prefix) and f.endswith(suffix))]
        if bad:
            raise DataError(f"Twin {mod} features {bad[:3]} do not look like "
                            f"'{prefix}<gene>{suffix}'.")
        out[mod] = [f[len(prefix): len(f) - len(suffix)] for f in names]
    return out


def modality_task(task: ResponseTask, modalities: Sequence[str], *,
                  feature_genes: Mapping[str, Sequence[str]] | None = None) -> ResponseTask:
    """A task restricted to some of its modalities, optionally with gene-named features.

    Parameters
    ----------
    task
        The multi-modal task.
    modalities
        Modalities to keep, in observation/action order (e.g. ``("atac",)`` or
        ``("rna", "atac")``).
    feature_genes
        ``{modality: gene of each feature}`` (same length and order as ``task.features[m]``);
        the features of those kept modalities are renamed to their genes. Needed when the gene
        modality of the result (``"rna"`` if kept, else the first) does not already use gene
        names, so that the perturbation encoding and the linear baseline find the targets.

    Returns
    -------
    ResponseTask
        Same control cells, perturbations and splits; the gene embedding is refitted from the
        kept gene modality (unless the task carries fixed ``gene_features``). Per-cell states of
        the perturbed cells (:attr:`ResponseTask.cell_states`, for the network baseline) are kept
        only when the gene modality is unchanged, since they hold that modality's values.

    Raises
    ------
    ModalityError
        No modality, a repeated one, or one that the task lacks.
    DataError
        A ``feature_genes`` list of the wrong length, or with repeated genes.
    """
    mods = tuple(modalities)
    if not mods:
        raise ModalityError("modality_task needs at least one modality.")
    if len(set(mods)) != len(mods):
        raise ModalityError(f"Modalities {mods} repeat one; name each once.")
    for m in mods:
        task._check_modality(m)
    features = {m: list(task.features[m]) for m in mods}
    for m, genes in (feature_genes or {}).items():
        if m not in mods:
            continue
        genes = [str(g) for g in genes]
        if len(genes) != len(features[m]):
            raise DataError(f"feature_genes[{m!r}] has {len(genes)} names for "
                            f"{len(features[m])} features; give one gene per feature.")
        if len(set(genes)) != len(genes):
            dup = pd.Index(genes)[pd.Index(genes).duplicated()].unique().tolist()
            raise DataError(f"feature_genes[{m!r}] repeats {dup[:5]}; aggregate the features "
                            "linked to one gene (e.g. sum of its peaks) before renaming.")
        features[m] = genes
    gene_mod = "rna" if "rna" in mods else mods[0]
    same_cells = gene_mod == task.embedding_modality
    return replace(task, modalities=mods, features=features,
                   states={m: task.states[m] for m in mods},
                   deltas={m: task.deltas[m] for m in mods},
                   control_mean={m: task.control_mean[m] for m in mods},
                   action_bounds={m: task.action_bounds[m] for m in mods},
                   embedding=pd.DataFrame(),
                   cell_states=task.cell_states if same_cells else None)
