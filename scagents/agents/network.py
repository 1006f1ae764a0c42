"""The regulatory-network agent: infer a gene regulatory network and the goal's neighbourhood."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from scagents._atomic import atomic_path
from scagents.agents.progress import Steps
from scagents.agents.state import (
    AgentRecord,
    DataSummary,
    NetworkSummary,
    RunOptions,
    RunState,
    run_path,
)

__all__ = ["network_agent", "EDGES_FILE", "neighbourhood"]

EDGES_FILE = "network_edges.csv"


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


def _genes(state: RunState, data: DataSummary) -> pd.DataFrame | None:
    """The data agent's gene selection (``genes_used.csv``); ``None`` for runs that predate it."""
    path = run_path(state, data.genes_path)
    if path is None or not path.exists():
        return None
    return pd.read_csv(path, index_col="gene")


def network_agent(state: RunState, *, method: str | None = None) -> dict:
    """Infer the regulatory network of the run's RNA data with :func:`scagents.grn.infer_network`.

    The network is fitted on the control cells and on the genes chosen by the data agent
    (``genes_used.csv``: the goal's genes, the perturbation targets and the most variable genes, at
    most ``options.n_genes``); every chosen gene is a target, the ``regulator`` genes of that table
    (at most ``options.n_regulators``) are the candidate regulators, and the
    ``options.network_top_k`` strongest regulators of each target are kept, so memory stays bounded
    whatever the number of genes in the file. The method is ``infer_network``'s default (plain
    ridge, α by held-out R²), the default of ``benchmarks/grn.py`` too.

    Writes ``<run>/network_edges.csv`` (``source``, ``target``, ``weight`` — standardised —,
    ``sign``, ``coef`` — in expression units, used for propagation) and keeps the edges around the
    goal's targets in the state. ``options.skip_network`` (``run --skip-network``) skips it. When
    :mod:`scagents.grn` does not provide ``infer_network`` the agent reports ``status="skipped"``
    with the reason (nothing is invented).

    Returns
    -------
    dict
        State update: ``network`` (a :class:`NetworkSummary` dump) and a log record.
    """
    data = DataSummary.model_validate(state["data"])
    opts = RunOptions.model_validate(state["options"])
    out = Path(state["out_dir"])
    targets = list(data.perturbation["targets"])
    grn, reason = None, ""
    figures: dict = {}
    if opts.skip_network:
        reason = "not requested (--skip-network)"
    else:
        try:
            from scagents import grn
        except ImportError as exc:  # pragma: no cover
            reason = f"scagents.grn cannot be imported: {exc}"
        if grn is not None and not hasattr(grn, "infer_network"):
            reason = "scagents.grn.infer_network is not available in this installation"
            grn = None
    if grn is None:
        s = NetworkSummary(status="skipped", reason=f"skipped: {reason}")
    else:
        step = Steps("network", ["reading", "inferring", "writing"], enabled=opts.progress)
        try:
            import mudata as md

            from scagents.data import lognormalize

            step("reading")
            rna = md.read_h5mu(out / data.path)["rna"]
            ctrl = rna[rna.obs["is_control"].astype(bool).to_numpy()].copy()
            if ctrl.n_obs < 20:
                ctrl = rna.copy()
            del rna
            lognormalize(ctrl)  # on every gene: library sizes are whole-transcriptome totals
            if "lognorm" in ctrl.layers:
                ctrl.X = ctrl.layers["lognorm"]
            table = _genes(state, data)
            regulators = None
            if table is not None:
                ctrl = ctrl[:, [g for g in ctrl.var_names if g in table.index]].copy()
                regulators = [g for g in ctrl.var_names if bool(table.at[g, "regulator"])]
                if len(regulators) == ctrl.n_vars:
                    regulators = None  # every gene: the unrestricted fit
            ctrl.layers.clear()
            figures = {"n_genes": int(ctrl.n_vars), "n_cells": int(ctrl.n_obs),
                       "n_regulators": int(ctrl.n_vars if regulators is None else len(regulators)),
                       "top_k": int(opts.network_top_k)}
            step(f"inferring ({ctrl.n_obs} cells x {ctrl.n_vars} genes, "
                 f"{figures['n_regulators']} regulators)")
            kwargs = {"method": method} if method else {}
            grn.infer_network(ctrl, regulators=regulators, top_k=opts.network_top_k,
                              progress=opts.progress, **kwargs)
            step("writing")
            edges = _edges_table(grn.network_edges(ctrl))
            W = grn.network_matrix(ctrl)
            rows = W.index.get_indexer(edges["source"])
            cols = W.columns.get_indexer(edges["target"])
            edges["coef"] = W.to_numpy()[rows, cols]
            with atomic_path(out / EDGES_FILE) as tmp:
                edges.to_csv(tmp, index=False)
            step.close()
            used = (ctrl.uns.get("grn", {}).get("params", {}).get("method") or method or "default")
            s = NetworkSummary(status="done", method=str(used), edges_path=EDGES_FILE,
                               n_edges=int(len(edges)), neighbourhood=neighbourhood(edges, targets))
        except Exception as exc:  # noqa: BLE001 - reported, the run continues without a network
            step.close()
            s = NetworkSummary(status="failed", reason=f"network inference failed: "
                                                       f"{type(exc).__name__}: {exc}")
    rec = AgentRecord(agent="network", status=s.status,
                      summary=s.reason or f"{s.n_edges} edges ({s.method}) among "
                                          f"{figures.get('n_genes')} genes "
                                          f"({figures.get('n_regulators')} candidate regulators); "
                                          f"{len(s.neighbourhood)} around {'+'.join(targets)}",
                      figures={"n_edges": s.n_edges, **figures})
    return {"network": s.model_dump(), "log": [rec.model_dump()]}
