"""Data with no genetic perturbation (control + one stimulation): a gene knockout is answered by
in-silico perturbation through the inferred network, marked not validated; without a network
the run stops with one clear line (in-process CLI)."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scagents.cli import main

N_GENES = 300


@pytest.fixture(scope="module")
def stimulated(tmp_path_factory):
    """300 genes x 2,100 cells of Poisson counts: 1,050 control and 1,050 stimulated cells (genes
    50-69 up); genes 0-39 share a latent factor so the network has edges among them. 300 genes x
    1,050 control cells (the network is fitted on them) is above the tree ensemble's size rule,
    so the network is the (fast) ridge fit; the trees are tested in tests/grn."""
    rng = np.random.default_rng(0)
    n = 2100
    mu = rng.normal(0.0, 1.0, N_GENES)
    factor = rng.normal(0.0, 0.6, (n, 1))
    log_lam = np.tile(mu, (n, 1)) + factor * (np.arange(N_GENES) < 40)
    log_lam[n // 2:, 50:70] += 1.0
    X = sp.csr_matrix(rng.poisson(np.exp(log_lam)).astype(np.float32))
    adata = ad.AnnData(X, obs=pd.DataFrame({"condition": ["ctrl"] * (n // 2) + ["stim"] * (n // 2)},
                                           index=[f"c{i}" for i in range(n)]))
    adata.var_names = [f"G{i:03d}" for i in range(N_GENES)]
    path = tmp_path_factory.mktemp("data") / "stim.h5ad"
    adata.write_h5ad(path)
    return path


def test_knockout_answered_through_the_network_not_validated(stimulated, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["run", "--data", str(stimulated), "--goal", "predict G005 knockout", "--quick",
               "--quiet", "--out", str(out)])
    stdout, err = capsys.readouterr()
    assert rc == 0, err
    assert "[network propagation, unchecked]" in stdout and "not validated" in stdout
    report = json.loads((out / "report.json").read_text())
    assert report["method"]["name"] == "network propagation"
    assert "not validated: no measured perturbation could be held out" in \
        report["method"]["description"]
    decision = report["validation"]["decision"]
    assert "measured besides the goal: stim" in decision and report["validation"]["scores"] == {}
    assert report["proposals"] == []  # nothing measured to check a ranking against
    pred = pd.read_csv(out / "prediction.csv", index_col="gene")
    assert pred.at["G005", "delta"] < 0  # the knocked-out gene itself
    moved = pred["delta"].drop("G005").abs()
    assert (moved > 0.01).sum() >= 1  # and at least one gene downstream of it in the network
    # only genes with an incoming edge from the network can move
    edges = pd.read_csv(out / "network_edges.csv")
    assert set(moved.index[moved > 0]) <= set(edges["target"])
    md = (out / "report.md").read_text()
    assert "not validated" in md.split("## Which model answered")[0]  # in the headline block
    statuses = {r["agent"]: r["status"] for r in map(json.loads, (out / "agents.log")
                .read_text().splitlines()) if r["event"] == "finished"}
    assert statuses["policy"] == "skipped" and statuses["fallback"] == "unchecked"
    assert not (out / "training_log.csv").exists()  # no policy was trained


def test_without_network_no_prediction_is_one_clear_line(stimulated, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["run", "--data", str(stimulated), "--goal", "predict G005 knockout", "--quick",
               "--quiet", "--skip-network", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert "No prediction possible for G005 knockout" in err and "--skip-network" in err
    assert not (out / "prediction.csv").exists()


def test_goal_gene_without_edges_is_one_clear_line(stimulated, tmp_path, capsys, monkeypatch):
    import scagents.agents.policy as policy

    def isolated(state, ctx):  # a network in which the goal's gene reaches no other gene
        def predict(targets, kind):
            return np.where(np.isin(ctx.genes, targets), -1.0, 0.0)
        return predict

    monkeypatch.setattr(policy, "_propagation_predictor", isolated)
    rc = main(["run", "--data", str(stimulated), "--goal", "predict G005 knockout", "--quick",
               "--quiet", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip().count("\n") == 0
    assert "No prediction possible" in err and "G005 has no edges to other genes" in err
