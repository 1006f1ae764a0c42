"""`run` on a whole-transcriptome-like file: --genes, --skip-network, --quick (in-process)."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scagents.cli import main

N_GENES = 3000
TARGETS = [f"G{i:04d}" for i in (3, 17, 42, 77, 105, 230, 512, 901)]


@pytest.fixture(scope="module")
def screen(tmp_path_factory):
    """3,000 genes x 1,280 cells of Poisson counts: 1,040 control cells and 30 cells for each of 8
    knockouts (the target drops to 10 %, 20 random genes move). With 300 genes kept, both network
    fits (all cells; control cells) are above the tree ensemble's size rule, so they are ridge fits
    (the trees are tested in tests/grn and on the twin)."""
    rng = np.random.default_rng(0)
    genes = np.array([f"G{i:04d}" for i in range(N_GENES)])
    mu = rng.normal(-0.5, 1.2, N_GENES)
    mu[[int(t[1:]) for t in TARGETS]] = 1.5
    labels = ["non-targeting"] * 1040 + [t for t in TARGETS for _ in range(30)]
    log_lam = np.tile(mu, (len(labels), 1)) + rng.normal(0, 0.2, (len(labels), 1))
    for t in TARGETS:
        rows = [i for i, lab in enumerate(labels) if lab == t]
        moved = rng.choice(N_GENES, 20, replace=False)
        log_lam[np.ix_(rows, moved)] += rng.choice([-1.0, 1.0], 20)
        log_lam[rows, int(t[1:])] += np.log(0.1)
    X = sp.csr_matrix(rng.poisson(np.exp(log_lam)).astype(np.float32))
    adata = ad.AnnData(X, obs=pd.DataFrame({"perturbation": labels},
                                           index=[f"c{i}" for i in range(len(labels))]))
    adata.var_names = genes
    path = tmp_path_factory.mktemp("data") / "screen3k.h5ad"
    adata.write_h5ad(path)
    return path


def _finished(out) -> dict:
    rows = [json.loads(line) for line in (out / "agents.log").read_text().splitlines()]
    return {r["agent"]: r for r in rows if r["event"] == "finished"}


def test_genes_cap_bounds_network_and_policy(screen, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["run", "--data", str(screen), "--goal", "predict G0042 knockout", "--genes", "300",
               "--quick", "--quiet", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    used = pd.read_csv(out / "genes_used.csv", index_col="gene")
    assert len(used) == 300
    assert used.at["G0042", "reason"] == "goal"
    assert set(TARGETS) - {"G0042"} <= set(used.index[used["reason"] == "perturbation target"])
    assert used["regulator"].sum() == 250  # --quick: 250 candidate regulators
    log = _finished(out)
    assert log["data"]["figures"]["gene_selection"]["n_selected"] == 300
    net = log["network"]["figures"]
    assert (net["n_genes"], net["n_regulators"], net["top_k"]) == (300, 250, 20)
    edges = pd.read_csv(out / "network_edges.csv")
    assert set(edges["source"]) | set(edges["target"]) <= set(used.index)
    assert edges.groupby("target").size().max() <= 20
    assert {"weight", "coef"} <= set(edges.columns)
    pred = pd.read_csv(out / "prediction.csv", index_col="gene")
    assert set(pred.index) <= set(used.index) and "G0042" in pred.index
    assert log["policy"]["figures"]["steps"] == 4000  # --quick budget: no retrain
    assert log["policy"]["figures"]["attempts"] == 1


def test_skip_network_with_progress_and_no_dependency_warnings(screen, tmp_path, capsys, recwarn):
    out = tmp_path / "run"
    rc = main(["run", "--data", str(screen), "--goal", "predict G0017 knockout", "--skip-network",
               "--quick", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err
    # progress: the agents' step bars and their summary lines (not --quiet)
    assert "data: " in err and "selecting genes" in err and "[network] skipped" in err
    assert "trpo_ppo" in err  # the policy training bar
    assert not [w for w in recwarn if issubclass(w.category, FutureWarning)
                and "mudata" in str(w.filename)]
    net = _finished(out)["network"]
    assert net["status"] == "skipped" and "--skip-network" in net["summary"]
    assert not (out / "network_edges.csv").exists()
    assert len(pd.read_csv(out / "genes_used.csv")) == 1000  # --quick cap


def test_genes_below_minimum_is_one_clear_line(tmp_path, capsys):
    rc = main(["run", "--goal", "predict IFNG knockout", "--genes", "5", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip().count("\n") == 0 and "--genes" in err
    assert not (tmp_path / "o").exists()
