"""The data agent: parse the goal, load (or simulate) the data and store it in the run folder."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from scagents._atomic import atomic_path
from scagents.agents.progress import Steps
from scagents.agents.state import AgentRecord, DataSummary, RunOptions, RunState
from scagents.data import write as write_data
from scagents.errors import ScagentsError

__all__ = ["data_agent", "resolve_goal", "stimulation_request", "DATA_FILE", "GENES_FILE", "TRUTH_FILE"]

DATA_FILE = "data.h5mu"
GENES_FILE = "genes_used.csv"
TRUTH_FILE = "twin_truth.csv"


def _select(rna, goal_targets, perturbed, opts: RunOptions, out: Path) -> tuple[list[str], dict]:
    """Choose the genes of the network and policy agents (:func:`scagents.data.select_genes`) and
    write them with the reason of each to ``<run>/genes_used.csv``."""
    from scagents.data.genes import select_genes

    table = select_genes(rna, goal_genes=list(goal_targets), regulators=sorted(perturbed),
                         n_genes=opts.n_genes, n_regulators=opts.n_regulators)
    with atomic_path(out / GENES_FILE) as tmp:
        table.to_csv(tmp)
    info = {"n_total": int(rna.n_vars), "cap": int(opts.n_genes), "n_selected": int(len(table)),
            "n_regulators": int(table["regulator"].sum()),
            "reasons": {str(k): int(v) for k, v in table["reason"].value_counts().items()},
            "rule": "the goal's genes, then the data's perturbation targets, then the most highly "
                    "variable genes (seurat dispersion) up to the cap; regulators: the same order "
                    f"up to {opts.n_regulators}"}
    return list(table.index), info


def _twin_conditions(net, goal, n_candidates: int, seed: int) -> tuple[list, list[str]]:
    """The perturbations simulated on the twin and the genes left untested as candidates.

    Every gene with a rule (not a milieu input) is knocked out and over-expressed (and perturbed
    with the goal's kind when that is a third kind), except ``n_candidates`` randomly chosen genes
    kept untested for the recommendations. The goal's perturbation is always simulated (to check
    the prediction) and listed first.
    """
    from scagents.perturbation import Perturbation

    genes = [g for g in net.genes if g not in net.inputs]
    rng = np.random.default_rng(seed)
    others = [g for g in genes if g not in goal.targets]
    others = [others[i] for i in rng.permutation(len(others))]
    candidates = sorted(others[:max(0, min(n_candidates, len(others) - 4))])
    kinds = list(dict.fromkeys(("knockout", "overexpression", goal.kind)))
    perts = [goal]
    for g in genes:
        if g in candidates:
            continue
        for kind in kinds:
            p = Perturbation((g,), kind=kind)
            if (p.targets, p.kind) != (goal.targets, goal.kind):
                perts.append(p)
    return perts, candidates


def _dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)


#: why a prediction goal's time cannot be honoured on the twin, and what to ask instead
TWIN_TIME_REASON = ("the twin's prediction applies the perturbation from t = 0 and answers for cells "
                    "sampled along the whole trajectory")
TWIN_TIME_INSTEAD = (', or ask a steering goal (e.g. "drive Th0 cells to Th1"), whose search picks '
                     "when to intervene")


def _twin(opts: RunOptions, out: Path) -> DataSummary:
    from scagents.data import gene_effects, lognormalize
    from scagents.goal import parse_goal
    from scagents.twin import load_model, simulate

    step = Steps("data", ["simulating the twin", "selecting genes", "writing"], enabled=opts.progress)
    net = load_model(opts.model)
    goal = parse_goal(opts.goal, net.genes, aliases=net.aliases, inputs=net.inputs,
                      time_reason=TWIN_TIME_REASON, time_instead=TWIN_TIME_INSTEAD)
    pert = goal.perturbation
    perts, candidates = _twin_conditions(net, pert, opts.n_candidates, opts.seed)
    step("simulating the twin")
    _check_twin_inputs(net, opts.inputs)
    with warnings.catch_warnings():  # the silent-model warning is kept in the summary instead
        warnings.simplefilter("ignore", UserWarning)
        mdata = simulate(net, perturbations=[None, *perts], n_cells=opts.n_cells, seed=opts.seed,
                         inputs=opts.inputs or None)
    twin_warnings = [str(w) for w in mdata.uns["twin"].get("warnings", [])]
    rna = mdata["rna"]
    labels = rna.obs["perturbation"].astype(str).to_numpy()
    goal_label = str(labels[opts.n_cells])  # the first perturbed condition is the goal
    # training perturbations keep only their first n_train_cells cells (i.i.d. draws): many
    # perturbations with modest cell numbers keep the run fast
    n_train = min(opts.n_train_cells, opts.n_cells)
    rank = rna.obs.groupby("perturbation", observed=True).cumcount().to_numpy()
    keep = (labels == "control") | (labels == goal_label) | (rank < n_train)
    if not keep.all():
        mdata = mdata[keep].copy()
        rna = mdata["rna"]
    # the twin's own answer, kept aside to check the prediction (never used in training)
    tmp = rna.copy()
    lognormalize(tmp)
    x = _dense(tmp.layers["lognorm"])
    act = _dense(tmp.layers["activity"])
    ctrl = tmp.obs["is_control"].to_numpy(bool)
    goal_cells = (tmp.obs["perturbation"].astype(str) == goal_label).to_numpy()
    truth = gene_effects(x[ctrl], x[goal_cells], tmp.var_names)
    truth["activity_delta"] = pd.Series(act[goal_cells].mean(0) - act[ctrl].mean(0),
                                        index=tmp.var_names)
    truth["is_input"] = [g in net.inputs for g in truth.index]
    truth["replicate_clears"] = _replicate_clears(net, pert, opts).reindex(truth.index)
    target_expr = _target_expression(net, pert, act[ctrl], list(tmp.var_names), opts)
    with atomic_path(out / TRUTH_FILE) as part:
        truth.round(8).to_csv(part)
    fates = tmp.obs["fate"].astype(str)
    fate_shift = {"control": _fractions(fates[ctrl]), pert.label: _fractions(fates[goal_cells])}
    mdata.uns.pop("twin_perturbations", None)
    step("selecting genes")
    _, selection = _select(rna, pert.targets, [g for p in perts for g in p.targets], opts, out)
    step("writing")
    write_data(mdata, out / DATA_FILE)
    step.close()
    measured = list(dict.fromkeys(labels[keep & ~(labels == "control")]))
    return DataSummary(
        source=f"twin:{net.name}", description=f"digital twin, model {net.name}",
        path=DATA_FILE, n_cells=int(mdata.n_obs), n_genes=int(rna.n_vars),
        modalities=list(mdata.mod), goal=goal.to_dict(), perturbation=pert.to_dict(),
        goal_measured=True, goal_label=goal_label, measured=measured, candidates=candidates,
        truth_path=TRUTH_FILE,
        truth_fates=fate_shift, inputs=list(net.inputs),
        cells_per_condition={"control": opts.n_cells, "goal": opts.n_cells, "training": n_train},
        warnings=twin_warnings, silent_model=bool(twin_warnings), target_expression=target_expr,
        genes_path=GENES_FILE, gene_selection=selection, is_counts=True)


def _target_expression(net, pert, control_activity: np.ndarray, genes: list[str],
                       opts: RunOptions) -> list[dict]:
    """Loss-of-function goal: is each target expressed in the control cells of this milieu, and
    if not, which milieu of the model's inputs expresses it
    (:func:`scagents.twin.milieu.target_expression`; the milieus are scanned once, only when a
    target is off)."""
    from scagents.twin.milieu import EXPRESSED_ACTIVITY, scan_milieus, target_expression

    if pert.kind not in ("knockout", "knockdown"):
        return []
    act = {g: float(control_activity[:, genes.index(g)].mean()) for g in pert.targets
           if g in genes}
    scan = (scan_milieus(net, inputs=opts.inputs or None, seed=opts.seed)
            if any(a < EXPRESSED_ACTIVITY for a in act.values()) and net.inputs else None)
    return [target_expression(net, g, control_activity=a, inputs=opts.inputs or None, scan=scan,
                              kind=pert.kind) for g, a in act.items()]


def _replicate_clears(net, pert, opts: RunOptions) -> pd.Series:
    """Whether each gene's change under the goal clears its noise floor in an independent
    replicate simulation of the control and the goal (seed ``seed + REPLICATE_SEED_OFFSET``)."""
    from scagents.data import lognormalize
    from scagents.evidence import REPLICATE_SEED_OFFSET, noise_floor
    from scagents.twin import simulate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        rep = simulate(net, perturbations=[None, pert], n_cells=opts.n_cells,
                       seed=opts.seed + REPLICATE_SEED_OFFSET, modalities=["rna"],
                       inputs=opts.inputs or None)["rna"]
    lognormalize(rep)
    x = _dense(rep.layers["lognorm"])
    ctrl = rep.obs["is_control"].to_numpy(bool)
    return noise_floor(x[ctrl], x[~ctrl], rep.var_names, min_effect=0.01,
                       seed=opts.seed)["clears"]


def _check_twin_inputs(net, inputs: dict[str, float]) -> None:
    """``--inputs`` must name input genes of the model, with activities in [0, 1]."""
    from scagents.errors import DataError, GeneNotFoundError

    for name, value in inputs.items():
        try:
            gene = net.resolve_gene(name)
        except GeneNotFoundError:
            raise DataError(f"--inputs {name}={value:g}: model {net.name!r} has no gene {name!r}; its "
                            f"inputs: {', '.join(net.inputs) or 'none'}.") from None
        if gene not in net.inputs:
            raise DataError(f"--inputs {name}={value:g}: {gene} is not an input of model "
                            f"{net.name!r} (its inputs: {', '.join(net.inputs) or 'none'}).")
        if not 0.0 <= float(value) <= 1.0:
            raise DataError(f"--inputs {name}={value:g}: input activities must lie in [0, 1].")


def _fractions(fates: pd.Series) -> dict[str, float]:
    return {str(k): round(float(v), 4) for k, v in
            fates.value_counts(normalize=True).sort_index().items()}


def resolve_goal(text: str, rna) -> tuple:
    """Parse a goal against standardised data and find the data's own cells of it.

    A goal may name a measured gene or a target of the data's perturbations (measured or not);
    :func:`scagents.goal.match_measured` then finds the perturbation label of its cells, whatever
    kind word the user wrote.

    Parameters
    ----------
    text
        The goal in plain words.
    rna
        Standardised AnnData (:func:`scagents.data.standardize`).

    Returns
    -------
    goal, perturbation, label, note
        The parsed :class:`~scagents.goal.Goal`; the perturbation to predict (the data's own,
        with the data's kind, when its cells were measured: the models learn the data's kinds);
        the ``obs["perturbation"]`` label of the goal's cells (``None`` when none); a one-line
        note naming a kind mismatch (``""`` when none).
    """
    from scagents.data import DEFAULT_TYPE_REASON
    from scagents.goal import match_measured, parse_goal
    from scagents.perturbation import Perturbation

    obs = rna.obs
    perturbed_cells = ~obs["is_control"].astype(bool) & (obs["target_genes"].astype(str) != "")
    firsts = obs.loc[perturbed_cells].drop_duplicates("perturbation")
    by_label = {str(r.perturbation): Perturbation.from_obs(r.target_genes, r.perturbation_type)
                for r in firsts.itertuples()}
    cells = obs.loc[perturbed_cells, "perturbation"].astype(str).value_counts()
    per_target: dict[str, int] = {}
    for label, p in by_label.items():
        for t in (p.targets if p is not None else ()):
            per_target[t] = per_target.get(t, 0) + int(cells.get(label, 0))
    # most measured first: an error message's examples are what the data can answer best
    targets = sorted(per_target, key=lambda t: (-per_target[t], t))
    goal = parse_goal(text, rna.var_names, targets=targets)
    rec = rna.uns.get("scagents", {}).get("data", {})
    label, note = match_measured(
        goal.perturbation, by_label,
        kinds_by_default=rec.get("perturbation_type_reason") == DEFAULT_TYPE_REASON)
    pert = by_label[label] if label is not None else goal.perturbation
    return goal, pert, label, note


def _h5mu_rna_modality(path: Path) -> tuple[str | None, list[str]]:
    """The RNA modality of an ``.h5mu`` file (:func:`scagents.data.rna_modality_name`) and all its
    modalities, read from the file's layout only; ``(None, [...])`` when it has none."""
    import h5py

    from scagents.data import rna_modality_name

    try:
        with h5py.File(path, "r") as f:
            mods = list(f["mod"].keys()) if "mod" in f else []
    except OSError:  # not HDF5: load() says so
        return None, []
    return rna_modality_name(mods), mods


def stimulation_request(opts: RunOptions):
    """The parsed :class:`~scagents.goal.StimulationGoal` when the goal asks about the data's
    treatment (an ``.h5ad`` — or the RNA modality of an ``.h5mu`` — whose ``obs`` has a condition
    or time-point column with a control level, and a goal naming a treatment, time point or
    treatment word rather than a genetic kind); ``None`` otherwise. Only ``obs`` and ``uns`` are
    read (backed mode).

    Raises
    ------
    GoalError
        The goal is about the treatment but names an unknown treatment, time point or cell type.
    """
    import anndata as ad
    import mudata as md

    from scagents.goal import find_stimulation_design, is_stimulation_goal, parse_stimulation_goal

    path = Path(opts.data)
    suffix = path.suffix.lower()
    if opts.perturbation_key or suffix not in (".h5ad", ".h5mu") or not path.is_file():
        return None
    try:
        if suffix == ".h5mu":
            rna, _ = _h5mu_rna_modality(path)
            if rna is None:
                return None
            backed = md.read_h5ad(path, rna, backed="r")
        else:
            backed = ad.read_h5ad(path, backed="r")
    except Exception:  # noqa: BLE001 - an unreadable file gets load()'s own error
        return None
    try:
        obs = backed.obs.copy()
        description = " ".join(str(backed.uns.get(k, "")) for k in
                               ("source", "title", "description", "treatment"))
    finally:
        backed.file.close()
    design = find_stimulation_design(obs, description)
    if not is_stimulation_goal(opts.goal, design):
        return None
    return parse_stimulation_goal(opts.goal, design)


def _stimulation_data(opts: RunOptions, out: Path, goal) -> DataSummary:
    """Load a treatment experiment for a stimulation goal: the condition column is the
    perturbation column, its control level the control cells."""
    import mudata as md

    from scagents.data import load
    from scagents.perturbation import Perturbation

    step = Steps("data", ["reading", "writing"], enabled=opts.progress)
    design = goal.design
    step(f"reading {Path(opts.data).name}")
    note = goal.reading
    modality = None
    if Path(opts.data).suffix.lower() == ".h5mu":  # the treatment is predicted from RNA alone
        modality, mods = _h5mu_rna_modality(Path(opts.data))
        if others := [m for m in mods if m != modality]:
            note += (f" The .h5mu's RNA modality {modality!r} is used; a treatment's response is "
                     f"predicted from RNA only, so {', '.join(repr(m) for m in others)} "
                     f"{'is' if len(others) == 1 else 'are'} not used.")
    rna = load(opts.data, perturbation_key=design.key, control_labels=[design.control],
               modality=modality)
    ctrl = rna.obs["is_control"].astype(bool).to_numpy()
    rna.obs["perturbation_type"] = pd.Categorical(np.where(ctrl, "control", "stimulation"))
    step(f"writing {DATA_FILE}")
    write_data(md.MuData({"rna": rna}), out / DATA_FILE)
    step.close()
    counts = rna.obs[design.key].astype(str).value_counts()
    return DataSummary(
        source=str(opts.data), description=_describe(opts.data, rna), path=DATA_FILE,
        n_cells=int(rna.n_obs), n_genes=int(rna.n_vars), modalities=["rna"],
        goal=goal.to_dict(), perturbation=Perturbation((goal.name,), kind="stimulation").to_dict(),
        goal_measured=goal.treatment in counts.index, goal_label=goal.treatment,
        goal_note=note, measured=list(design.treated), candidates=[],
        cells_per_condition={str(k): int(v) for k, v in counts.items()},
        stimulation=goal.to_dict(), is_counts=_is_counts(rna))


def control_line(rec: dict) -> str:
    """Which labels were taken as the control cells (``uns["scagents"]["data"]``); ``""`` when
    :func:`scagents.data.standardize` did not record them."""
    labels = [str(c) for c in rec.get("control_labels", [])]
    if not labels:
        return ""
    shown = ", ".join(repr(c) for c in labels[:3])
    more = f" and {len(labels) - 3} more" if len(labels) > 3 else ""
    return f"control: {rec.get('n_control', '?')} cells labelled {shown}{more}"


def _describe(path, rna) -> str:
    """The file's name, and where its counts and gene names came from when not ``X`` /
    ``var_names`` (:func:`scagents.data.load`)."""
    rec = (rna.uns.get("scagents") or {}).get("data") or {}
    how = [f"counts from {rec['counts_from']}"] if rec.get("counts_from") else []
    if rec.get("gene_names_from"):
        how.append(f"gene names from {rec['gene_names_from']}")
    if rec.get("genome"):
        from scagents.data import genome_line

        how.append(genome_line(rec["genome"]))
    elif rec.get("reference_prefix"):
        how.append(f"reference prefix {rec['reference_prefix']}_ removed from the gene names")
    return Path(path).name + (f": {'; '.join(how)}" if how else "")


def _record(rna) -> dict:
    """``uns["scagents"]["data"]`` of a loaded AnnData (``{}`` when absent)."""
    rec = (rna.uns.get("scagents") or {}).get("data") or {}
    return rec if hasattr(rec, "get") else {}


def _is_counts(rna) -> bool | None:
    """Whether ``standardize`` found counts in the RNA ``X`` (``None`` when it did not say)."""
    rec = (rna.uns.get("scagents") or {}).get("data") or {}
    value = rec.get("is_counts") if hasattr(rec, "get") else None
    return None if value is None else bool(value)


def canonical_modalities(obj) -> tuple:
    """A loaded MuData with its modalities named as the agents read them: the RNA modality
    (:func:`scagents.data.rna_modality`) ``rna``, ATAC ``atac`` and protein ``prot``
    (:func:`scagents.data.io.modality_kind`: ``gex``, ``peaks``, ``adt``, …); other names, and
    a name whose canonical one is taken, are kept. An AnnData is returned as is.

    Returns
    -------
    obj, renamed
        The MuData (a new one when a modality was renamed; its ``uns`` and own ``obs`` columns
        kept) and ``{old: new}`` of the renamed modalities.
    """

    from scagents.data import rna_modality
    from scagents.data.io import modality_kind, mudata_like
    from scagents.errors import ModalityError

    if not hasattr(obj, "mod"):
        return obj, {}
    rna_name, _ = rna_modality(obj)
    renamed: dict[str, str] = {}
    for name in obj.mod:
        try:
            kind = "rna" if name == rna_name else modality_kind(name)
        except ModalityError:
            continue
        if kind != name and kind not in obj.mod and kind not in renamed.values() and (
                kind != "rna" or name == rna_name):
            renamed[name] = kind
    if not renamed:
        return obj, {}
    return mudata_like({renamed.get(m, m): obj.mod[m] for m in obj.mod}, obj), renamed


def _unused_adt(obj) -> str:
    """``" (obsm['adt']: 49 proteins, not used …)"`` when an AnnData keeps CITE-seq protein counts
    in ``.obsm``, which the run does not read; ``""`` otherwise."""
    from scagents.integration import _ADT_OBSM_KEYS

    if hasattr(obj, "mod"):
        return ""
    key = next((k for k in _ADT_OBSM_KEYS if k in obj.obsm), None)
    if key is None:
        return ""
    return (f" (obsm[{key!r}]: {obj.obsm[key].shape[1]} proteins, not used: the run predicts RNA "
            "and integrates the modalities of an .h5mu; scagents.integration.adt_from_obsm makes "
            "them a 'prot' modality)")


def _rna(obj):
    """The RNA modality of a loaded AnnData / MuData (``rna``, else the first)."""
    if not hasattr(obj, "mod"):
        return obj
    return obj["rna"] if "rna" in obj.mod else obj[list(obj.mod)[0]]


def set_aside_line(aside: dict[str, int], targets, label: str | None) -> str:
    """One line: the combinations holding the goal's genes left out of the run (``""`` if none)."""
    if not aside:
        return ""
    genes = "+".join(targets)
    return (f"{sum(aside.values())} cells of combinations holding {genes} were left aside: "
            + ", ".join(f"{lab!r} ({n})" for lab, n in aside.items())
            + f". The goal asks for {genes} alone, so it is answered and checked on its own cells "
            f"({label!r}); the combinations' cells were used neither as the goal's cells nor for "
            f"fitting (they carry {genes}'s own effect into the check).")


def _user_data(opts: RunOptions, out: Path) -> DataSummary:
    import mudata as md

    from scagents.data import combinations_with, load

    stim = stimulation_request(opts)
    if stim is not None:
        return _stimulation_data(opts, out, stim)

    step = Steps("data", ["reading", "selecting genes", "writing"], enabled=opts.progress)
    step(f"reading {Path(opts.data).name}")
    obj = load(opts.data, perturbation_key=opts.perturbation_key,
               control_labels=opts.control_labels)
    obj, renamed = canonical_modalities(obj)  # the agents read modalities rna / atac / prot
    rna = _rna(obj)
    goal, pert, goal_label, goal_note = resolve_goal(opts.goal, rna)
    aside = combinations_with(rna.obs, pert.targets) if goal_label is not None else {}
    if aside:  # the goal's own cells were measured: combinations holding its genes stay out
        drop = rna.obs_names[rna.obs["perturbation"].astype(str).isin(list(aside)).to_numpy()]
        obj = obj[~obj.obs_names.isin(drop)].copy()
        rna = _rna(obj)
    obs = rna.obs
    perturbed_cells = ~obs["is_control"].astype(bool) & (obs["target_genes"].astype(str) != "")
    counts = obs.loc[perturbed_cells, "target_genes"].astype(str).value_counts()
    measured = sorted(str(g) for g in counts.index if g)
    perturbed = {t for m in measured for t in m.split("+")}
    excluded = obs.loc[obs["perturbation_type"].astype(str) == "excluded", "perturbation"]
    step("selecting genes")
    genes, selection = _select(rna, pert.targets, perturbed, opts, out)
    var = pd.Series(np.asarray(rna.X.mean(0)).ravel(), index=rna.var_names)[genes]
    candidates = [g for g in var.sort_values(ascending=False).index if g not in perturbed][:200]
    mods = list(obj.mod) if hasattr(obj, "mod") else ["rna"]
    path = out / DATA_FILE
    step(f"writing {DATA_FILE}")
    write_data(obj if hasattr(obj, "mod") else md.MuData({"rna": obj}), path)
    step.close()
    description = _describe(opts.data, rna) + (" (modality " + ", ".join(
        f"{old!r} read as {new}" for old, new in renamed.items()) + ")" if renamed else "")
    description += _unused_adt(obj)
    return DataSummary(
        source=str(opts.data), description=description, path=DATA_FILE,
        n_cells=int(rna.n_obs), n_genes=int(rna.n_vars), modalities=mods, goal=goal.to_dict(),
        perturbation=pert.to_dict(), goal_measured=goal_label is not None, goal_label=goal_label,
        goal_note=goal_note, excluded={str(k): int(v) for k, v in
                                       excluded.astype(str).value_counts().sort_index().items()},
        set_aside=aside, control=control_line(_record(rna)), measured=measured, candidates=sorted(candidates), genes_path=GENES_FILE,
        gene_selection=selection, is_counts=_is_counts(rna))


def _genes_line(sel: dict) -> str:
    if not sel:
        return "every gene used"
    why = ", ".join(f"{n} {r}" for r, n in sel["reasons"].items())
    return (f"{sel['n_selected']} of {sel['n_total']} genes used by the network and policy "
            f"(cap {sel['cap']}: {why}; {sel['n_regulators']} candidate regulators)")


def data_agent(state: RunState) -> dict:
    """Parse the goal and load the data (the twin by default) into ``<run>/data.h5mu``.

    Parameters
    ----------
    state
        The run state; reads ``options`` and ``out_dir``.

    Returns
    -------
    dict
        State update: ``data`` (a :class:`DataSummary` dump), or ``stop_reason`` when the goal
        cannot be met by the data (unknown gene, no perturbation named, unreadable file).
    """
    opts = RunOptions.model_validate(state["options"])
    out = Path(state["out_dir"])
    try:
        summary = _twin(opts, out) if opts.data is None else _user_data(opts, out)
    except (ScagentsError, FileNotFoundError) as exc:
        rec = AgentRecord(agent="data", status="failed", summary=str(exc))
        return {"data": None, "stop_reason": str(exc), "log": [rec.model_dump()]}
    rec = AgentRecord(
        agent="data", status="done",
        summary=f"{summary.description}: {summary.n_cells} cells × {summary.n_genes} genes, "
                f"modalities {', '.join(summary.modalities)}, {len(summary.measured)} perturbations"
                + (f", {summary.control}" if summary.control else "") + "; "
                + _genes_line(summary.gene_selection)
                + (f"; {sum(summary.set_aside.values())} cells of combinations holding "
                   f"{'+'.join(summary.perturbation['targets'])} left aside"
                   if summary.set_aside else "")
                + "".join(f"; WARNING: {w}" for w in summary.warnings),
        figures={"n_cells": summary.n_cells, "n_genes": summary.n_genes,
                 "gene_selection": summary.gene_selection,
                 "n_perturbations": len(summary.measured), "n_candidates": len(summary.candidates)})
    return {"data": summary.model_dump(), "log": [rec.model_dump()]}
