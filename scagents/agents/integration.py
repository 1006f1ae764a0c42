"""The integration agent: joint embedding, clusters and pseudotime of multi-modal data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scagents.agents.state import (
    AgentRecord,
    DataSummary,
    IntegrationSummary,
    RunOptions,
    RunState,
)

__all__ = ["integration_agent", "INTEGRATED_FILE"]

INTEGRATED_FILE = "integrated.h5mu"


def _child(src: str, dst: str, umap: bool) -> None:  # pragma: no cover - runs in a subprocess
    import mudata as md

    from scagents.integration import integrate

    m = md.read_h5mu(src)
    integrate(m, umap=umap)
    m.write(dst)


def _integrate_with_budget(mdata, *, umap: bool, budget_s: float, out: Path):
    """Run :func:`scagents.integration.integrate` in a child process killed after ``budget_s``."""
    import multiprocessing as mp

    import mudata as md

    src, dst = out / "integration_input.h5mu.tmp", out / "integration_output.h5mu.tmp"
    mdata.write(str(src))
    proc = mp.get_context("spawn").Process(target=_child, args=(str(src), str(dst), umap))
    proc.start()
    proc.join(budget_s)
    if proc.is_alive():
        proc.kill()
        proc.join()
        src.unlink(missing_ok=True)
        raise TimeoutError(f"integration exceeded its {budget_s:.0f} s budget (raise it with "
                           "integration_agent(..., budget_s=...))")
    src.unlink(missing_ok=True)
    if proc.exitcode != 0 or not dst.exists():
        raise RuntimeError(f"integration process exited with code {proc.exitcode}")
    res = md.read_h5mu(dst)
    dst.unlink(missing_ok=True)
    return res


def integration_agent(state: RunState, *, max_cells: int = 600, umap: bool = False,
                      budget_s: float = 25.0) -> dict:
    """Integrate the modalities of the run's data with :func:`scagents.integration.integrate`.

    At most ``max_cells`` cells (a seeded random subset) are integrated so that the run stays
    fast, in a child process stopped after ``budget_s`` seconds (then ``status="skipped"`` with
    the reason); ``umap=False`` keeps the joint neighbour graph, clusters and pseudotime without UMAP.
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

            from scagents.integration import integrate  # noqa: F401 - availability check
        except ImportError as exc:  # pragma: no cover - depends on another package
            s = IntegrationSummary(status="skipped", reason=f"scagents.integration unavailable: {exc}")
        else:
            try:
                mdata = md.read_h5mu(out / data.path)
                opts = RunOptions.model_validate(state["options"])
                if mdata.n_obs > max_cells:  # WNN + UMAP cost grows quickly with cells
                    rng = np.random.default_rng(opts.seed)
                    keep = np.sort(rng.choice(mdata.n_obs, max_cells, replace=False))
                    mdata = mdata[keep].copy()
                mdata = _integrate_with_budget(mdata, umap=umap, budget_s=budget_s, out=out)
                key = next((k for k in ("X_umap", "X_wnn_umap", "X_diffmap", "X_pca")
                            if k in mdata.obsm), None)
                clusters = next((c for c in mdata.obs.columns if c in ("leiden", "cluster",
                                                                       "clusters")), None)
                tmp = out / (INTEGRATED_FILE + ".tmp")
                mdata.write(str(tmp))
                tmp.replace(out / INTEGRATED_FILE)
                s = IntegrationSummary(
                    status="done", path=INTEGRATED_FILE, embedding_key=key,
                    n_clusters=int(mdata.obs[clusters].nunique()) if clusters else None)
            except TimeoutError as exc:
                s = IntegrationSummary(status="skipped", reason=f"skipped: {exc}")
            except Exception as exc:  # noqa: BLE001 - reported, the run continues without it
                s = IntegrationSummary(status="failed",
                                       reason=f"integration failed: {type(exc).__name__}: {exc}")
    rec = AgentRecord(agent="integration", status=s.status,
                      summary=s.reason or f"joint embedding {s.embedding_key}, "
                                          f"{s.n_clusters} clusters",
                      figures={"n_clusters": s.n_clusters} if s.n_clusters else {})
    return {"integration": s.model_dump(), "log": [rec.model_dump()]}
