"""The regulatory-network agent: infer a gene regulatory network and the goal's neighbourhood."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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

__all__ = ["network_agent", "EDGES_FILE", "PROPAGATION_FILE", "coef_sign_counts", "method_label", "neighbourhood",
           "propagation_sign_note"]

EDGES_FILE = "network_edges.csv"
PROPAGATION_FILE = "network_propagation.csv"


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


def coef_sign_counts(edges: pd.DataFrame) -> dict[str, int]:
    """How many drawn edges the propagation coefficients contradict.

    Parameters
    ----------
    edges
        The run's edge table: ``weight`` (the drawn, signed edge) and ``coef`` (the regression
        coefficient in expression units that in-silico propagation uses; 0 where it has none).

    Returns
    -------
    dict
        ``n_edges``, ``n_with_coef`` (edges with a non-zero coefficient) and ``n_opposite`` (those whose
        coefficient's sign is opposite to the edge's weight); ``{}`` without a ``coef`` column.
    """
    from scagents.grn import sign_counts

    if "coef" not in edges or "weight" not in edges:
        return {}
    return sign_counts(edges["coef"].fillna(0.0).to_numpy(), edges["weight"].to_numpy())


def propagation_sign_note(counts: dict, edges_file: str = EDGES_FILE, candidate: dict | None = None) -> str:
    """The report's sentence on what network propagation propagates, from :func:`coef_sign_counts` of the
    run's edge table ('' without counts) and, when given, ``candidate``: :func:`scagents.grn.sign_agreement`
    of the network-propagation candidate's own network (:attr:`PolicySummary.network_signs`)."""
    if not counts:
        return ""
    n, k, opp = counts["n_edges"], counts["n_with_coef"], counts["n_opposite"]
    share = f" ({opp / k:.0%})" if k else ""
    return (f"Network propagation moves genes along regression coefficients (partial effects: a regulator's "
            f"effect with the other regulators held fixed), not along the drawn signs: of the {n} drawn edges, "
            f"{k} carry a coefficient (column coef of {edges_file}"
            + (f"; {n - k} carry none and propagate nothing" if n > k else "") + ") and "
            f"{opp} of those{share} have a coefficient of the opposite sign, so a perturbation propagates "
            f"along such an edge against its drawn arrow. The network-propagation candidate (alone and "
            f"inside the combination) refits a ridge network on the control cells and the training perturbations' cells and "
            f"propagates its coefficients the same way"
            + (f" (in this run {candidate['n_opposite']} of its {candidate['n_with_coef']} edges with a "
               f"coefficient, {candidate['n_opposite'] / max(candidate['n_with_coef'], 1):.0%}, have a "
               f"coefficient of the sign opposite to the sign of its own edge)" if candidate else "")
            + ". Propagating the drawn signs instead was tested on "
            "held-out perturbations and not adopted (benchmarks/results/propagation_sign.md: higher error on "
            "the twin).")


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


def _cells(rna, goal: list[str]) -> tuple[np.ndarray, bool]:
    """Cells to fit and whether they hold a usable knockout screen.

    Control cells always; the perturbed cells too when single-gene perturbations of measured genes
    other than the goal's have at least 5 cells each beside at least 20 control cells. The goal's own cells are never
    used: the network must not have seen the answer it helps to predict.
    """
    obs = rna.obs
    ctrl = obs["is_control"].astype(bool).to_numpy()
    if ctrl.sum() < 20:
        return np.ones(rna.n_obs, dtype=bool), False
    if "target_genes" not in obs:
        return ctrl, False
    lab = obs["target_genes"].astype(str).to_numpy()
    goal = "+".join(goal)
    usable = (~ctrl & (lab != "") & (lab != goal) & (np.char.find(lab.astype(str), "+") < 0)
              & np.isin(lab, rna.var_names.astype(str)))  # a perturbed gene that is measured
    counts = pd.Series(lab[usable]).value_counts()
    ok = set(counts[counts >= 5].index)
    pert = usable & np.isin(lab, list(ok))
    return (ctrl | pert, True) if pert.any() else (ctrl, False)


def _atac_prior(atac, cells: np.ndarray, genes) -> object | None:
    """The ATAC modality of the fitted cells when its peaks link to some of the genes, else ``None``."""
    if atac is None or atac.n_obs != len(cells):
        return None
    from scagents.grn import peak_gene_links

    sub = atac[cells].copy()
    return sub if len(peak_gene_links(sub, list(map(str, genes)))) else None


def _json_safe(d):
    if isinstance(d, dict):
        return {str(k): _json_safe(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_json_safe(v) for v in d]
    if isinstance(d, np.generic):
        return d.item()
    return d


def _sources_line(src: dict) -> str:
    if not src or "n_perturbation_supported" not in src:
        return ""
    unsupported = src["n_from_perturbed_regulators"] - src["n_perturbation_supported"]
    return (f"; evidence: {src['n_perturbation_supported']} edges supported by the knockout screen "
            f"({src.get('n_perturbed_regulators', 0)} regulators perturbed; {unsupported} more edges of "
            f"theirs without screen support), {src['n_regression_only']} from unperturbed regulators "
            f"(regression alone){', ATAC prior applied' if 'atac_prior' in src else ''}")


def method_label(params: dict) -> str:
    """What ``infer_network`` actually fitted, in words (``uns["grn"]["params"]``): the ``"ensemble"``
    method is a tree importance (extra trees, random forest, or the mean of both) signed by ``sign_from`` (Spearman by default), a
    rank average of the two, or ridge alone above the tree size rule; the cell time when it was one more
    feature (``time_key``)."""
    label = _method_label(params)
    tp = params.get("time") or {}
    return f"{label}, with the cell time obs[{tp.get('key')!r}] as one more feature" if tp.get("used") else label


def _method_label(params: dict) -> str:
    method = str(params.get("method") or "")
    trees = params.get("trees") or {}
    if method != "ensemble" or not trees:
        return method
    if not trees.get("fitted"):
        return "ridge (above the ensemble's tree size rule)"
    kind = {"extra": "extra-trees", "rf": "random-forest", "both": "extra-trees + random-forest"}.get(
        str(trees.get("kind", "extra")), "tree")
    weight = float(trees.get("weight", 1.0))
    if weight == float("inf"):
        by = SIGN_LABELS.get(str(params.get("sign_from") or "ridge"), str(params.get("sign_from")))
        return f"{kind} importance signed by {by}"
    return f"rank average of ridge and {kind} importance (trees weighted {weight:g}:1)"


SIGN_LABELS = {"ridge": "ridge", "correlation": "Pearson correlation", "spearman": "Spearman correlation",
               "partial_correlation": "partial correlation", "sum": "ridge + Pearson correlation",
               "vote": "a ridge / Pearson / Spearman vote"}
"""Short names of the sign sources for the method label."""

SIGN_WORDS = {
    "ridge": "the ridge coefficient's sign (conditional on the other regulators)",
    "correlation": "the sign of the regulator's Pearson correlation with the target",
    "spearman": "the sign of the regulator's Spearman correlation with the target",
    "partial_correlation": "the sign of the partial correlation given every other gene",
    "sum": "the sign of ridge coefficient + Pearson correlation",
    "vote": "the majority of the ridge, Pearson and Spearman signs",
}
"""Where an edge's sign came from (``infer_network(sign_from=...)``, ``uns["grn"]["params"]["sign_from"]``), in words."""


def weight_scale(params: dict) -> str:
    """What an edge's ``weight`` means for the fit that ranked the network (``uns["grn"]["params"]``),
    in one sentence for the report: its sign is the direction, its size a ranking score whose scale
    depends on the method (a percentile rank, a coefficient, or log-odds-like evidence units)."""
    method = str(params.get("method") or "")
    trees = params.get("trees") or {}
    sign = "weight: + activates, − represses"
    source = SIGN_WORDS.get(str(params.get("sign_from") or "ridge"), "the ridge coefficient's sign")
    if params.get("perturbations") and params.get("combine") == "odds":
        min_t, w = float(params.get("min_t", 0.0)), float(params.get("evidence_weight", 0.0))
        n = max(int(params.get("n_regulators", 1)) * max(int(params.get("n_genes", 1)) - 1, 1), 1)
        extra = []
        if float(params.get("regulator_prior", 0.0)):
            extra.append(f"+{float(params['regulator_prior']):g} on every edge of a knocked-out gene "
                         "that moves some gene")
        if float(params.get("orient", 1.0)) != 1.0:
            extra.append(f"×{float(params['orient']):g} on an edge into a knocked-out gene that moves "
                         "its source (the knockout shows the other direction)")
        return (f"{sign} (the knockout's direction where the regulator was knocked out and moved the "
                f"target, else {source}); size = evidence in log-odds-like units, not an effect "
                f"size: −log(1 − u + 1/N) for the edge's regression percentile u (the best of N ≈ {n:,} "
                f"candidate edges scores about {np.log(n + 1):.1f}, the median about {np.log(2):.1f}), "
                f"plus {w:g}·log(1 + max(|t| − {min_t:g}, 0)) for the knocked-out regulator's direct "
                f"effect |t| on the target" + "".join(f", {e}" for e in extra) + ".")
    if params.get("perturbations"):
        return (f"{sign}; size = a percentile-rank score of the regression and the knockout evidence "
                f"(combined by {params.get('combine')!s}), not an effect size.")
    if method == "ensemble" and trees.get("fitted"):
        return (f"{sign} ({source}); size = the edge's percentile rank among all "
                "candidate edges (0–1, 1 = strongest), not an effect size.")
    if method in ("ridge", "ensemble"):
        return f"{sign}; size = the ridge coefficient on z-scored expression."
    if method in ("correlation", "partial_correlation"):
        return f"{sign}; size = the {method.replace('_', ' ')} (−1 to 1)."
    return ""


def network_agent(state: RunState, *, method: str | None = None) -> dict:
    """Infer the regulatory network of the run's RNA data with :func:`scagents.grn.infer_network`.

    The network is fitted on the genes chosen by the data agent
    (``genes_used.csv``: the goal's genes, the perturbation targets and the most variable genes, at
    most ``options.n_genes``); every chosen gene is a target, the ``regulator`` genes of that table
    (at most ``options.n_regulators``) are the candidate regulators, and the
    ``options.network_top_k`` strongest regulators of each target are kept, so memory stays bounded
    whatever the number of genes in the file. The method is ``infer_network``'s default (``"ensemble"``: the
    mean extra-trees and random-forest importances, signed by the Spearman correlation, α by held-out R², while the problem is small,
    plain ridge above the size rule of :mod:`scagents.grn.ensemble`), the default
    ``benchmarks/grn.py`` and ``benchmarks/grn_select.py`` score.

    When the data hold a knockout screen (single-gene perturbations other than the goal's, ≥ 5 cells
    each), the edge ranking (``weight``) uses the perturbed cells too:
    ``infer_network(..., perturbations="target_genes")`` merges the perturbed regulators' direct
    effects with the regression (:mod:`scagents.grn.interventional`); ``evidence`` says which edges
    the screen supports and ``NetworkSummary.sources`` counts them. In-silico propagation always uses
    the fit on control cells only (``<run>/network_propagation.csv``, ``NetworkSummary.propagation_path``;
    its coefficient is also the ``coef`` column of the edge table, 0 where that fit kept no such edge),
    so no perturbation's cells shape the propagation the policy agent validates on held-out
    perturbations. When the run has an ATAC modality
    whose peaks link to the genes, its accessibility prior constrains both fits
    (``unlinked="keep"``: targets without a linked peak stay regulatable).

    Writes ``<run>/network_edges.csv`` (``source``, ``target``, ``weight`` — standardised, a signed rank
    score with the ensemble, or with perturbed cells a signed log-odds-like score (``combine="odds"``) —,
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
            mdata = md.read_h5mu(out / data.path)
            rna = mdata["rna"]
            atac = mdata.mod.get("atac")
            del mdata
            cells, screen = _cells(rna, targets)
            fit = rna[cells].copy()
            del rna
            lognormalize(fit)  # on every gene: library sizes are whole-transcriptome totals
            if "lognorm" in fit.layers:
                fit.X = fit.layers["lognorm"]
            table = _genes(state, data)
            regulators = None
            if table is not None:
                fit = fit[:, [g for g in fit.var_names if g in table.index]].copy()
                regulators = [g for g in fit.var_names if bool(table.at[g, "regulator"])]
                if len(regulators) == fit.n_vars:
                    regulators = None  # every gene: the unrestricted fit
            fit.layers.clear()
            prior = _atac_prior(atac, cells, fit.var_names)
            is_ctrl = fit.obs["is_control"].astype(bool).to_numpy()
            ctrl = fit[is_ctrl].copy() if screen else fit
            figures = {"n_genes": int(fit.n_vars), "n_cells": int(fit.n_obs),
                       "n_control_cells": int(ctrl.n_obs),
                       "n_perturbed_cells": int(fit.n_obs - ctrl.n_obs) if screen else 0,
                       "n_regulators": int(fit.n_vars if regulators is None else len(regulators)),
                       "top_k": int(opts.network_top_k), "atac_prior": prior is not None}
            step(f"inferring ({fit.n_obs} cells x {fit.n_vars} genes, "
                 f"{figures['n_regulators']} regulators{', knockout screen' if screen else ''})")
            kwargs = {"method": method} if method else {}
            common = {"regulators": regulators, "top_k": opts.network_top_k, "progress": opts.progress,
                      **({"atac": prior, "unlinked": "keep"} if prior is not None else {}), **kwargs}
            if screen:  # the ranking uses the perturbed cells (see the docstring for coef)
                grn.infer_network(fit, perturbations="target_genes", **common)
                sources = dict(fit.uns["grn"].get("sources", {}))
                edges = _edges_table(grn.network_edges(fit))
                if prior is not None:
                    common["atac"] = prior[is_ctrl].copy()
            grn.infer_network(ctrl, **common)
            step("writing")
            ctrl_edges = _edges_table(grn.network_edges(ctrl))
            W = grn.network_matrix(ctrl)
            rows = W.index.get_indexer(ctrl_edges["source"])
            cols = W.columns.get_indexer(ctrl_edges["target"])
            ctrl_edges["coef"] = W.to_numpy()[rows, cols]
            prop_path = None
            if screen:  # coef: the control fit's coefficient of the edge (0 where it kept none)
                edges = edges.merge(ctrl_edges[["source", "target", "coef"]], on=["source", "target"],
                                    how="left")
                edges["coef"] = edges["coef"].fillna(0.0)
                if "evidence" not in edges:  # no perturbation had enough cells among the genes
                    edges["evidence"] = "regression"
                prop_path = PROPAGATION_FILE
                with atomic_path(out / PROPAGATION_FILE) as tmp:
                    ctrl_edges.to_csv(tmp, index=False)
            else:
                edges = ctrl_edges
                sources = {"n_edges": int(len(edges)), "n_regression_only": int(len(edges))}
            if prior is not None:
                sources["atac_prior"] = _json_safe(ctrl.uns["grn"]["prior"].get("atac", {}))
            with atomic_path(out / EDGES_FILE) as tmp:
                edges.to_csv(tmp, index=False)
            step.close()
            used = method_label(ctrl.uns.get("grn", {}).get("params", {})) or method or "default"
            if screen:
                used += " + knockout screen"
            ranked = fit if screen else ctrl
            s = NetworkSummary(status="done", method=str(used), edges_path=EDGES_FILE,
                               weight_note=weight_scale(ranked.uns.get("grn", {}).get("params", {})),
                               propagation_path=prop_path, n_edges=int(len(edges)), neighbourhood=neighbourhood(edges, targets),
                               sources=_json_safe(sources), coef_signs=coef_sign_counts(edges))
        except Exception as exc:  # noqa: BLE001 - reported, the run continues without a network
            step.close()
            s = NetworkSummary(status="failed", reason=f"network inference failed: "
                                                       f"{type(exc).__name__}: {exc}")
    rec = AgentRecord(agent="network", status=s.status,
                      summary=s.reason or f"{s.n_edges} edges ({s.method}) among "
                                          f"{figures.get('n_genes')} genes "
                                          f"({figures.get('n_regulators')} candidate regulators); "
                                          f"{len(s.neighbourhood)} around {'+'.join(targets)}"
                                          f"{_sources_line(s.sources)}",
                      figures={"n_edges": s.n_edges, **figures})
    return {"network": s.model_dump(), "log": [rec.model_dump()]}
