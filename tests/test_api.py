"""``scagents.run(adata, goal=...)``: the agent graph from Python, results written into the object."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import scagents
from scagents.api import RunResult, RunStoppedError, list_runs, write_result
from scagents.errors import DataFileNotFoundError

ROOT = Path(__file__).resolve().parents[1]
FAST = {"policy_steps": 256, "max_policy_attempts": 1, "n_validation": 2, "n_proposals": 3}


def _user_adata() -> ad.AnnData:
    """A small screen as a user has it: counts and one obs column naming the perturbation."""
    from scagents.perturbation import Perturbation
    from scagents.twin import load_model, simulate

    genes = ["IFNG", "STAT1", "GATA3", "TBX21", "STAT4", "SOCS1"]
    m = simulate(load_model("th"), perturbations=[None, *[Perturbation((g,)) for g in genes]],
                 n_cells=300, seed=0)  # enough cells for the knockouts to be detectable
    rna = m["rna"]
    obs = pd.DataFrame({"perturbation": rna.obs["perturbation"].astype(str).to_numpy()},
                       index=rna.obs_names)
    return ad.AnnData(X=rna.X.copy(), obs=obs, var=pd.DataFrame(index=rna.var_names))


@pytest.fixture(scope="module")
def answered(tmp_path_factory):
    adata = _user_adata()
    before = adata.copy()
    root = tmp_path_factory.mktemp("runs")
    res = scagents.run(adata, goal="predict STAT1 knockout", out=root / "stat1", seed=2, **FAST)
    return adata, before, res, root


def test_run_writes_results_into_the_object(answered, tmp_path):
    adata, before, res, _ = answered
    pred = pd.read_csv(res.out / "prediction.csv", index_col="gene")
    table = adata.varm["scagents"]
    assert list(table.index) == list(adata.var_names)
    np.testing.assert_allclose(table["delta"].to_numpy(), pred["delta"].reindex(adata.var_names))
    assert table["delta"].notna().all()  # every gene of this small screen was predicted
    np.testing.assert_allclose(table["perturbed_mean"] - table["control_mean"], table["delta"],
                               atol=1e-6)
    uns = adata.uns["scagents"]
    report = json.loads((res.out / "report.json").read_text())
    assert uns["goal"] == "predict STAT1 knockout" and uns["perturbation"] == "STAT1 knockout"
    assert uns["run_id"] == "stat1" and uns["seed"] == 2 and uns["version"] == scagents.__version__
    assert uns["method"] == report["method"]["name"] == report["validation"]["answered_by"]
    assert uns["validation"]["scores"].keys() == report["validation"]["scores"].keys()
    assert uns["proposals"] == [p["perturbation"] for p in report["proposals"]]
    # STAT1 was measured: the check compares the prediction with its (held-out) observed cells
    assert "held out" in uns["check"]["description"] and "mse" in uns["check"]["metrics"]
    # every predicted change has its calibrated interval; the evidence check travels along
    assert (table["delta_lower"] <= table["delta"] + 1e-9).all()
    assert (table["delta"] <= table["delta_upper"] + 1e-9).all()
    assert uns["intervals"]["level"] == report["intervals"]["level"] == 0.8
    assert uns["evidence"]["kind"] == "observed"
    assert uns["evidence"]["detectable"] == report["evidence"]["detectable"]
    # the data themselves are untouched
    x, x0 = (m.toarray() if hasattr(m, "toarray") else m for m in (adata.X, before.X))
    assert np.array_equal(x, x0)
    assert adata.obs.equals(before.obs)
    # scverse-writable: the object with the results round-trips through .h5ad
    adata.write_h5ad(tmp_path / "back.h5ad")
    back = ad.read_h5ad(tmp_path / "back.h5ad")
    np.testing.assert_allclose(back.varm["scagents"]["delta"], table["delta"])
    assert back.uns["scagents"]["run_id"] == "stat1"


def test_result_load_round_trips(answered):
    _, _, res, _ = answered
    assert res.wall_time_s is not None and res.wall_time_s > 0
    loaded = RunResult.load(res.out)
    assert loaded.wall_time_s is None
    for name in ("run_id", "goal", "perturbation", "headline", "method", "status", "top_up",
                 "top_down", "validation", "check", "proposals", "files", "seed", "version"):
        assert getattr(loaded, name) == getattr(res, name), name
    pd.testing.assert_frame_equal(loaded.predicted, res.predicted)
    assert RunResult.load(res.out / "report.json").run_id == res.run_id
    assert res.status in {"validated", "fallback"}
    assert set(res.files) >= {"markdown", "html", "json", "prediction", "effects"}
    assert all(p.is_file() for p in res.files.values())
    assert res.delta.equals(res.predicted["delta"])
    assert res.perturbation in res.headline and res.method in res.headline


def test_write_result_into_a_mudata(answered):
    import mudata as md

    _, _, res, _ = answered
    mdata = md.MuData({"rna": _user_adata()})
    write_result(mdata, res, key_added="stat1")
    assert mdata.uns["stat1"]["run_id"] == res.run_id
    assert mdata["rna"].varm["stat1"]["delta"].equals(
        res.predicted["delta"].reindex(mdata["rna"].var_names).rename_axis(None))


def test_write_result_into_a_mudata_whose_rna_is_gex(answered, tmp_path):
    """A MuData whose RNA modality is "gex" and not first: the answer goes onto the genes (it went
    onto the first modality, the ATAC peaks, as all-NaN rows) and pl.prediction finds it there."""
    import mudata as md

    _, _, res, _ = answered
    rna = _user_adata()
    peaks = ad.AnnData(np.ones((rna.n_obs, 3), dtype=np.float32), obs=pd.DataFrame(index=rna.obs_names))
    peaks.var_names = ["chr1:1-9", "chr1:20-29", "chr2:5-15"]
    mdata = md.MuData({"atac": peaks, "gex": rna})
    write_result(mdata, res, key_added="stat1")
    assert "stat1" not in mdata["atac"].varm
    assert mdata["gex"].varm["stat1"]["delta"].notna().sum() == res.predicted["delta"].notna().sum()
    scagents.pl.prediction(mdata, key="stat1", path=tmp_path / "p.png")
    assert (tmp_path / "p.png").is_file()


def test_write_result_keeps_the_integration_record(answered):
    """tl.integrate's uns["scagents"]["integration"] survives scagents.run's answer in the same
    uns["scagents"] (it was replaced)."""
    import mudata as md

    _, _, res, _ = answered
    mdata = md.MuData({"rna": _user_adata()})
    mdata.uns["scagents"] = {"integration": {"umap_key": "X_umap"}, "goal": "an older run"}
    write_result(mdata, res)
    assert mdata.uns["scagents"]["integration"] == {"umap_key": "X_umap"}
    assert mdata.uns["scagents"]["goal"] == res.goal


def test_write_result_onto_ensembl_var_names(answered):
    """Ensembl IDs as var_names, symbols in var["gene_symbols"]: the run names genes by symbol and
    the answer lands on the user's own rows (by ID), not as all-NaN."""
    _, _, res, _ = answered
    adata = _user_adata()
    symbols = list(adata.var_names)
    adata.var = pd.DataFrame({"gene_symbols": symbols},
                             index=[f"ENSG{i:011d}" for i in range(adata.n_vars)])
    write_result(adata, res, key_added="stat1")
    got = adata.varm["stat1"]["delta"]
    assert list(got.index) == list(adata.var_names)
    np.testing.assert_allclose(got.to_numpy(), res.predicted["delta"].reindex(symbols).to_numpy())
    assert got.notna().any()


def test_backed_anndata_is_read_from_its_file(answered, monkeypatch, tmp_path):
    """A backed AnnData is not copied into the run folder: the data agent reads its file."""
    from scagents.api import INPUT_FILES

    _, _, res, _ = answered
    backed = ad.read_h5ad(res.out / INPUT_FILES["anndata"], backed="r")
    seen = {}

    def fake_run_graph(opts, **kw):  # stop right after the options are built
        seen["data"] = opts.data
        return {"out_dir": str(res.out), "policy": {"prediction_path": "prediction.csv"}}

    monkeypatch.setattr("scagents.agents.graph.run_graph", fake_run_graph)
    got = scagents.run(backed, goal="predict STAT1 knockout", out=tmp_path / "b", **FAST)
    assert seen["data"] == str(backed.filename) and not (tmp_path / "b").exists()
    assert backed.uns["scagents"]["run_id"] == got.run_id == res.run_id
    assert backed.varm["scagents"]["delta"].notna().all()


def test_write_result_onto_a_backed_ensembl_file_keeps_its_ids(answered, tmp_path):
    """A backed file with Ensembl var_names: the answer lands on its rows by ID; after
    standardize_backed (symbols as var_names, as standardize) on the rows by symbol, the IDs kept."""
    from scagents.data.backed import standardize_backed

    _, _, res, _ = answered
    adata = _user_adata()
    symbols = list(adata.var_names)
    ids = [f"ENSG{i:011d}" for i in range(adata.n_vars)]
    adata.var = pd.DataFrame({"gene_symbols": symbols}, index=ids)
    adata.write_h5ad(tmp_path / "ens.h5ad")
    want = res.predicted["delta"].reindex(symbols).to_numpy()
    for standardised in (False, True):
        backed = ad.read_h5ad(tmp_path / "ens.h5ad", backed="r")
        if standardised:
            standardize_backed(backed)
            assert list(backed.var_names) == symbols and list(backed.var["gene_ids"]) == ids
        else:
            assert list(backed.var_names) == ids
        write_result(backed, res, key_added="stat1")
        got = backed.varm["stat1"]["delta"]
        assert list(got.index) == list(backed.var_names)
        np.testing.assert_allclose(got.to_numpy(), want)
        assert got.notna().any()


def test_namespaces_resolve_and_plot(answered, tmp_path):
    adata, _, res, _ = answered
    for ns in (scagents.pp, scagents.tl, scagents.pl):
        for name in ns.__all__:
            assert callable(getattr(ns, name)), f"{ns.__name__}.{name}"
    from scagents.data import lognormalize
    from scagents.errors import ScagentsError
    from scagents.twin import simulate

    assert scagents.tl.simulate is simulate and scagents.pp.lognormalize is lognormalize
    png = scagents.pl.prediction(adata, path=tmp_path / "p.png")
    assert png.stat().st_size > 0
    assert scagents.pl.prediction(res, path=tmp_path / "q.png").stat().st_size > 0
    with pytest.raises(ScagentsError, match="key 'other'"):
        scagents.pl.prediction(adata, key="other", path=tmp_path / "r.png")


def test_list_runs_finished_and_rejected(answered):
    adata, _, res, root = answered
    with pytest.raises(RunStoppedError, match="Closest gene names"):
        scagents.run(adata.copy(), goal="predict STAT1Q knockout", out=root / "typo", **FAST)
    rows = {r["run_id"]: r for r in list_runs(root)}
    assert rows["stat1"]["state"] == "finished" and rows["stat1"]["goal"] == res.goal
    assert res.method in rows["stat1"]["answer"]
    assert "typo" not in rows and not (root / "typo").exists()  # a rejected run leaves nothing
    with pytest.raises(RunStoppedError, match="No runs folder"):
        list_runs(root / "nope")


def test_bad_calls_fail_fast_with_one_clear_line(tmp_path):
    with pytest.raises(RunStoppedError, match="Give a goal"):
        scagents.run(None)
    with pytest.raises(DataFileNotFoundError, match="missing.h5ad"):
        scagents.run(str(tmp_path / "missing.h5ad"), goal="predict IFNG knockout",
                     out=tmp_path / "run")
    with pytest.raises(RunStoppedError, match="Invalid n_cells=3"):
        scagents.run(goal="predict IFNG knockout", n_cells=3, out=tmp_path / "run")
    with pytest.raises(RunStoppedError, match="must be an AnnData"):
        scagents.run([1, 2], goal="predict IFNG knockout", out=tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing was written
    with pytest.raises(RunStoppedError, match="no report.json"):
        RunResult.load(tmp_path)


def test_import_is_lazy():
    """``import scagents`` loads none of the scientific stack (what makes --help fast)."""
    code = ("import sys, scagents, scagents.cli; scagents.cli.build_parser(); "
            "print(sorted(m for m in ('anndata', 'mudata', 'torch', 'langgraph', 'pandas', "
            "'matplotlib', 'scanpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout.strip()
    assert out == "[]"


def test_run_with_a_steering_goal_says_where_it_is_answered(tmp_path):
    from scagents.errors import GoalError

    with pytest.raises(GoalError, match="fate-steering goal.*answer_steering_goal"):
        scagents.run(None, goal="block the erythroid fate", out=tmp_path / "r", quiet=True)
    assert not (tmp_path / "r").exists()


def test_dependency_warnings_are_silenced_narrowly():
    """mudata's "var_names are intersecting" and future warnings are dropped; the same text from
    another module, mudata's other notes and scagents' own warnings still show."""
    import warnings

    from scagents.api import filter_dependency_warnings
    from scagents.twin.rules import UndefinedInputWarning

    intersecting = "Cannot join columns with the same name because var_names are intersecting."
    cases = [  # (message, category, module, shown)
        (intersecting, UserWarning, "mudata._core.mudata", False),
        ("From 0.4 .update() will not pull obs/var columns", FutureWarning, "mudata._core.mudata", False),
        (intersecting, UserWarning, "scagents.data.io", True),
        ("Duplicated var_names should not be present in different modalities", UserWarning,
         "mudata._core.mudata", True),
        ("model.bnet: 2 genes have no rule", UndefinedInputWarning, "scagents.twin.models", True),
        ("X does not have valid feature names", UserWarning, "sklearn.base", True),
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        filter_dependency_warnings()
        for message, category, module, _ in cases:
            warnings.warn_explicit(message, category, f"{module}.py", 1, module=module)
    assert [str(w.message) for w in caught] == [m for m, *_, shown in cases if shown]


def test_run_on_a_mudata_whose_protein_names_collide_with_gene_names(tmp_path):
    """Proteins named as genes (CD4, STAT1): mudata's "var_names are intersecting" note about its
    global .var is dependency noise, not shown by scagents.run (it was, after the answer)."""
    import warnings

    import mudata as md

    rna = _user_adata()
    prot = ad.AnnData(np.random.default_rng(0).poisson(5, (rna.n_obs, 3)).astype(np.float32),
                      obs=pd.DataFrame(index=rna.obs_names), var=pd.DataFrame(index=["STAT1", "GATA3", "CD4"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata = md.MuData({"rna": rna, "prot": prot})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = scagents.run(mdata, goal="predict STAT1 knockout", out=tmp_path / "run", seed=0,
                           quiet=True, **FAST)
    assert res.perturbation == "STAT1 knockout"
    assert not [str(w.message) for w in caught if "intersecting" in str(w.message)]
    assert not [w for w in caught if issubclass(w.category, FutureWarning)]
