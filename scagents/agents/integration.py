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

__all__ = ["integration_agent", "INTEGRATED_FILE"]

INTEGRATED_FILE = "integrated.h5mu"


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
                mdata = md.read_h5mu(out / data.path)
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
                s = IntegrationSummary(
                    status="done", path=INTEGRATED_FILE, embedding_key=key,
                    n_clusters=int(mdata.obs[clusters].nunique()) if clusters else None)
            except Exception as exc:  # noqa: BLE001 - reported, the run continues without it
                step.close()
                s = IntegrationSummary(status="failed",
                                       reason=f"integration failed: {type(exc).__name__}: {exc}")
    rec = AgentRecord(agent="integration", status=s.status,
                      summary=s.reason or f"joint embedding {s.embedding_key}, "
                                          f"{s.n_clusters} clusters",
                      figures={"n_clusters": s.n_clusters} if s.n_clusters else {})
    return {"integration": s.model_dump(), "log": [rec.model_dump()]}
