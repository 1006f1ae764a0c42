"""The regulatory-network agent: infer a gene regulatory network and the goal's neighbourhood."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from scagents._atomic import atomic_path
from scagents.agents.state import AgentRecord, DataSummary, NetworkSummary, RunState

__all__ = ["network_agent", "EDGES_FILE", "neighbourhood"]

EDGES_FILE = "network_edges.csv"
MATRIX_FILE = "network_matrix.csv"


def neighbourhood(edges: pd.DataFrame, targets: list[str], n: int = 12) -> list[dict]:
    """Edges touching ``targets``, strongest first.

    Parameters
    ----------
    edges
        Table with ``source``, ``target`` and ``weight`` columns.
    targets
        Genes at the centre of the neighbourhood.
    n
        Maximum number of edges returned.
    """
    if edges.empty:
        return []
    sel = edges[edges["source"].isin(targets) | edges["target"].isin(targets)].copy()
    sel = sel.reindex(sel["weight"].abs().sort_values(ascending=False).index).head(n)
    return [{"source": str(r.source), "target": str(r.target), "weight": float(r.weight)}
            for r in sel.itertuples()]


def _edges_table(obj) -> pd.DataFrame:
    """Normalise whatever edge table scagents.grn returns to source / target / weight."""
    df = pd.DataFrame(obj).copy()
    rename = {c: "source" for c in ("regulator", "tf", "TF") if c in df}
    rename.update({c: "target" for c in ("gene", "target_gene") if c in df})
    rename.update({c: "weight" for c in ("importance", "score", "coef") if c in df and "weight" not in df})
    df = df.rename(columns=rename)
    missing = {"source", "target", "weight"} - set(df.columns)
    if missing:
        raise ValueError(f"edge table lacks columns {sorted(missing)} (has {list(df.columns)})")
    return df[["source", "target", "weight", *[c for c in df.columns
                                               if c not in ("source", "target", "weight")]]]


def network_agent(state: RunState, *, method: str | None = None) -> dict:
    """Infer the regulatory network of the run's RNA data with :func:`scagents.grn.infer_network`.

    Writes ``<run>/network_edges.csv`` (``source``, ``target``, ``weight``, …) and keeps the edges
    around the goal's targets in the state. When :mod:`scagents.grn` does not provide
    ``infer_network`` the agent reports ``status="skipped"`` with the reason (nothing is invented).

    Returns
    -------
    dict
        State update: ``network`` (a :class:`NetworkSummary` dump) and a log record.
    """
    data = DataSummary.model_validate(state["data"])
    out = Path(state["out_dir"])
    targets = list(data.perturbation["targets"])
    try:
        from scagents import grn
    except ImportError as exc:  # pragma: no cover
        grn = None
        reason = f"scagents.grn cannot be imported: {exc}"
    if grn is not None and not hasattr(grn, "infer_network"):
        reason = "scagents.grn.infer_network is not available in this installation"
        grn = None
    if grn is None:
        s = NetworkSummary(status="skipped", reason=f"skipped: {reason}")
    else:
        try:
            import mudata as md

            from scagents.data import lognormalize

            rna = md.read_h5mu(out / data.path)["rna"]
            ctrl = rna[rna.obs["is_control"].astype(bool).to_numpy()].copy()
            if ctrl.n_obs < 20:
                ctrl = rna.copy()
            lognormalize(ctrl)
            if "lognorm" in ctrl.layers:
                ctrl.X = ctrl.layers["lognorm"]
            kwargs = {"method": method} if method else {}
            res = grn.infer_network(ctrl, **kwargs)
            if isinstance(res, pd.DataFrame):
                edges = res
            elif hasattr(grn, "network_edges"):
                edges = grn.network_edges(ctrl if res is None else res)
            else:
                raise ValueError("infer_network returned no edge table and grn.network_edges is missing")
            edges = _edges_table(edges)
            if hasattr(grn, "network_matrix"):
                with atomic_path(out / MATRIX_FILE) as tmp:
                    grn.network_matrix(ctrl).to_csv(tmp)
            with atomic_path(out / EDGES_FILE) as tmp:
                edges.to_csv(tmp, index=False)
            used = (ctrl.uns.get("scagents", {}).get("grn", {}).get("params", {}).get("method")
                    or method or "default")
            s = NetworkSummary(status="done", method=str(used), edges_path=EDGES_FILE,
                               n_edges=int(len(edges)), neighbourhood=neighbourhood(edges, targets))
        except Exception as exc:  # noqa: BLE001 - reported, the run continues without a network
            s = NetworkSummary(status="failed", reason=f"network inference failed: "
                                                       f"{type(exc).__name__}: {exc}")
    rec = AgentRecord(agent="network", status=s.status,
                      summary=s.reason or f"{s.n_edges} edges ({s.method}); "
                                          f"{len(s.neighbourhood)} around {'+'.join(targets)}",
                      figures={"n_edges": s.n_edges})
    return {"network": s.model_dump(), "log": [rec.model_dump()]}
