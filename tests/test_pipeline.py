"""The `run` pipeline on the embedded twin and on a real Perturb-seq screen."""

import json

import pytest

from scagents.errors import GeneNotFoundError
from scagents.pipeline import gene_effects, run
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def ifng_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ifng")
    return run("predict IFNG knockout", out=out, n_cells=400, seed=3, progress=False)


def test_run_writes_report(ifng_run):
    from pathlib import Path

    out = Path(ifng_run["out"])
    for name in ("report.md", "report.json", "effects.png", "fate_shift.png", "embedding.png"):
        assert (out / name).stat().st_size > 0, name
    data = json.loads((out / "report.json").read_text())
    assert data["perturbation"] == {"targets": ["IFNG"], "kind": "knockout", "strength": 0.7,
                                    "start_time": 0.0}
    md = (out / "report.md").read_text()
    assert "IFNG knockout" in md and "Fate shift" in md


def test_report_says_what_was_computed(ifng_run):
    """The report's claims are the numbers computed: IFNG itself goes down, Th1 share drops."""
    genes = {r["gene"]: r for r in ifng_run["genes"]}
    assert genes["IFNG"]["delta"] < 0
    assert any(r["gene"] == "IFNG" for r in ifng_run["top_down"])
    for r in ifng_run["top_up"]:
        assert r["delta"] > 0 and r["padj"] < 0.05
    fs = ifng_run["fate_shift"]
    assert fs["IFNG knockout"].get("Th1", 0.0) < fs["control"].get("Th1", 0.0)


def test_same_seed_same_report(tmp_path):
    a = run("predict GATA3 overexpression", out=tmp_path / "a", n_cells=200, seed=1, progress=False)
    run("predict GATA3 overexpression", out=tmp_path / "b", n_cells=200, seed=1, progress=False)
    assert (tmp_path / "a" / "report.json").read_bytes() == (tmp_path / "b" / "report.json").read_bytes()
    c = run("predict GATA3 overexpression", out=tmp_path / "c", n_cells=200, seed=2, progress=False)
    assert c["genes"] != a["genes"]


def test_unknown_gene_error(tmp_path):
    with pytest.raises(GeneNotFoundError, match="Closest gene names"):
        run("predict IFNGX knockout", out=tmp_path, n_cells=50, progress=False)


def test_gene_effects_hand_computed():
    import numpy as np

    ctrl = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.2]])
    pert = np.array([[1.0, 1.0], [1.2, 1.0], [0.8, 1.2]])
    df = gene_effects(ctrl, pert, ["a", "b"])
    assert list(df.index) == ["a", "b"]
    assert df.loc["a", "delta"] == pytest.approx(1.0)
    assert df.loc["b", "delta"] == pytest.approx(0.0)


def test_run_on_real_perturbseq(tmp_path):
    path = shared_file("perturbseq/papalexi2021_thp1_ifng_crispr.h5ad")
    res = run("predict STAT1 knockout", data=path, out=tmp_path, progress=False)
    assert res["method"]["description"].endswith("(STAT1 held out)")
    metrics = res["evaluation"]["metrics"]
    assert "pearson_delta_top20" in metrics or any("pearson" in k for k in metrics)
    assert (tmp_path / "report.md").exists()
