"""The integration agent: joint embedding, clusters and pseudotime of multi-modal data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scagents.agents.progress import Steps
from scagents.agents.state import (
    AgentRecord,
    DataSummary,
    IntegrationSummary,
    RunOptions,
    RunState,
)
from scagents.data import write as write_data
from scagents.data.io import mudata_like

__all__ = ["integration_agent", "integrable", "INTEGRATED_FILE"]

INTEGRATED_FILE = "integrated.h5mu"


class _NothingToIntegrate(Exception):
    """Fewer than two usable modalities, or too few cells in all of them (the message says why)."""


def integrable(mdata):
    """The part of a MuData :func:`scagents.integration.integrate` can use, and why the rest is not.

    Modalities with no cell or no feature are left out; when the others hold different cells (an
    ATAC file filtered apart from the RNA), the cells present in every one are kept, in the
    MuData's order, with the MuData's own ``obs`` columns.

    Returns
    -------
    mdata, notes
        The MuData to integrate (``None`` when fewer than two modalities, or fewer than 10 cells
        in all of them, are left) and one sentence per thing left out.
    """

    notes = []
    empty = [m for m, a in mdata.mod.items() if a.n_obs == 0 or a.n_vars == 0]
    for m in empty:
        a = mdata.mod[m]
        notes.append(f"modality {m!r} left out: it holds {a.n_obs} cells × {a.n_vars} features")
    keep = [m for m in mdata.mod if m not in empty]
    if len(keep) < 2:
        return None, notes
    shared = mdata.obs_names
    for m in keep:
        shared = shared[shared.isin(mdata.mod[m].obs_names)]
    if len(keep) == len(mdata.mod) and all(mdata.mod[m].obs_names.equals(shared) for m in keep):
        return mdata, notes
    sizes = ", ".join(f"{m} {mdata.mod[m].n_obs}" for m in keep)
    if len(shared) < 10:
        notes.append(f"only {len(shared)} cells are in every modality ({sizes} cells): check that "
                     "the modalities' cell names (obs_names) are the same barcodes")
        return None, notes
    if any(mdata.mod[m].n_obs != len(shared) for m in keep):
        notes.append(f"{len(shared)} cells are in every modality ({sizes} cells): only they are "
                     "integrated")
    return mudata_like({m: mdata.mod[m][shared].copy() for m in keep}, mdata), notes


def integration_agent(state: RunState, *, max_cells: int | None = None, umap: bool = True,
                      joint: str = "concat") -> dict:
    """Integrate the modalities of the run's data with :func:`scagents.integration.integrate`.

    At most ``max_cells`` cells (default ``options.integration_cells``, 2,000; a seeded random
    subset) are integrated so that the run stays fast. ``joint="concat"`` (default) builds one
    neighbour graph on the stacked per-modality embeddings, which takes seconds; ``joint="wnn"`` uses muon's weighted nearest neighbours, whose
    numba compilation costs minutes on the first call in a process.
    Single-modality data are skipped (the planner normally does not route them here). A failure of
    the integration is reported as ``status="failed"`` with its reason; the run goes on without a
    joint embedding.

    Returns
    -------
    dict
        State update: ``integration`` (an :class:`IntegrationSummary` dump) and a log record.
    """
    data = DataSummary.model_validate(state["data"])
    out = Path(state["out_dir"])
    if len(data.modalities) < 2:
        s = IntegrationSummary(status="skipped", reason="single-modality data: nothing to integrate")
    else:
        try:
            import mudata as md

            from scagents.integration import integrate
        except ImportError as exc:  # pragma: no cover - depends on another package
            s = IntegrationSummary(status="skipped", reason=f"scagents.integration unavailable: {exc}")
        else:
            opts = RunOptions.model_validate(state["options"])
            cap = opts.integration_cells if max_cells is None else max_cells
            step = Steps("integration", ["reading", "integrating", "writing"], enabled=opts.progress)
            try:
                step("reading")
                mdata, notes = integrable(md.read_h5mu(out / data.path))
                if mdata is None:
                    raise _NothingToIntegrate("; ".join(notes))
                n_all = mdata.n_obs
                if mdata.n_obs > cap:  # WNN + UMAP cost grows quickly with cells
                    rng = np.random.default_rng(opts.seed)
                    keep = np.sort(rng.choice(mdata.n_obs, cap, replace=False))
                    mdata = mdata[keep].copy()
                step(f"integrating {mdata.n_obs} cells ({', '.join(mdata.mod)}: PCA/LSI, joint graph, "
                     "clusters, pseudotime" + (", UMAP)" if umap else ")"))
                integrate(mdata, umap=umap, joint=joint)
                step("writing")
                key = next((k for k in ("X_umap", "X_joint_umap", "X_wnn_umap", "X_diffmap",
                                        "X_pca")
                            if k in mdata.obsm), None)
                clusters = next((c for c in mdata.obs.columns if c in ("leiden", "cluster",
                                                                       "clusters")), None)
                write_data(mdata, out / INTEGRATED_FILE)
                step.close()
                cells = (f"{mdata.n_obs} cells" if mdata.n_obs == n_all else
                         f"{mdata.n_obs} of {n_all} cells (a seeded random subset)")
                how = mdata.uns["scagents"]["integration"]["joint"]["method"].split(" (")[0]
                s = IntegrationSummary(
                    status="done", path=INTEGRATED_FILE, embedding_key=key,
                    n_clusters=int(mdata.obs[clusters].nunique()) if clusters else None,
                    modalities=list(mdata.mod), n_cells=int(mdata.n_obs),
                    note=f"{' + '.join(mdata.mod)} on {cells}, joined by {how}"
                         + "".join(f"; {n}" for n in notes))
            except _NothingToIntegrate as exc:
                step.close()
                s = IntegrationSummary(status="skipped", reason=f"{exc}: fewer than two modalities "
                                                                "to integrate")
            except Exception as exc:  # noqa: BLE001 - reported, the run continues without it
                step.close()
                s = IntegrationSummary(status="failed",
                                       reason=f"{type(exc).__name__}: {exc}")
    rec = AgentRecord(agent="integration", status=s.status,
                      summary=s.reason or f"joint embedding {s.embedding_key} and "
                                          f"{s.n_clusters} clusters of {s.note}; the prediction "
                                          "itself is made from RNA",
                      figures={"n_clusters": s.n_clusters} if s.n_clusters else {})
    return {"integration": s.model_dump(), "log": [rec.model_dump()]}
