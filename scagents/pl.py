"""Plots, in scanpy's style: ``scagents.pl.prediction(adata)`` after ``scagents.run(adata, goal=...)``.

=========================  ========================================================================
``prediction``             bar chart of the strongest predicted changes of a run (AnnData / result)
``effects``                the same from gene rows (``[{"gene", "delta"}, …]``)
``fate_shift``             fraction of simulated cells reaching each fate, control vs perturbed
``cells``                  cells in two dimensions, one panel per colouring (condition, cluster, …)
``embedding``              cells in two dimensions coloured by a label
``embedding_values``       cells in two dimensions coloured by a value (e.g. predicted effect)
``network``                a gene's neighbourhood in the inferred network
``training``               training curves of the policy
``campaign``               a closed-loop campaign's progress
=========================  ========================================================================

Every function writes a PNG and returns its path (matplotlib's Agg backend: no display needed).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scagents._lazy import lazy_exports

_WHERE = {
    "effects": "scagents.report:plot_effects",
    "cells": "scagents.report:plot_cells",
    "fate_shift": "scagents.report:plot_fate_shift",
    "embedding": "scagents.report:plot_embedding",
    "embedding_values": "scagents.report:plot_embedding_values",
    "network": "scagents.report:plot_network",
    "training": "scagents.report:plot_training",
    "campaign": "scagents.campaign:plot_campaign",
}
__all__ = sorted([*_WHERE, "prediction"])
_getattr, _dir = lazy_exports(__name__, _WHERE)


def __getattr__(name: str) -> Any:
    return _getattr(name)


def __dir__() -> list[str]:
    return sorted([*_dir(), "prediction"])


def prediction(data: Any, *, key: str = "scagents", path: str | os.PathLike = "prediction.png",
               n_top: int = 12, inputs: Sequence[str] = ()) -> Path:
    """Bar chart of a run's strongest predicted changes from control.

    Parameters
    ----------
    data
        An AnnData / MuData that :func:`scagents.run` wrote into (``.varm[key]``, ``.uns[key]``) or
        a :class:`scagents.RunResult`.
    key
        The run's ``key_added``.
    path
        PNG to write.
    n_top
        Genes shown (largest ``|delta|``).
    inputs
        Genes held fixed by the model (a twin's milieu inputs): not drawn as responding genes.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from scagents.errors import ScagentsError
    from scagents.report import plot_effects

    if hasattr(data, "predicted"):  # a RunResult
        table, label, method = data.predicted, data.perturbation, data.method
    else:
        rna = data
        if hasattr(data, "mod"):
            from scagents.data import rna_modality

            rna = rna_modality(data)[1]
        if key not in rna.varm or key not in data.uns:
            raise ScagentsError(f"No scagents result under key {key!r}: run scagents.run(data, "
                                f"goal=..., key_added={key!r}) first.")
        table, label, method = rna.varm[key], data.uns[key]["perturbation"], data.uns[key]["method"]
    table = table.dropna(subset=["delta"])
    genes = [{"gene": str(g), "delta": float(d)} for g, d in table["delta"].items()]
    return plot_effects(genes, Path(path), title=f"Predicted response to {label} ({method})",
                        n_top=n_top, inputs=inputs)
