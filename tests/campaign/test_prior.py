"""The round-1 expression prior stored in the ledger: `next` proposes its top, in any process."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scagents.campaign import campaign_info, create_campaign, history, propose_round
from scagents.campaign.ledger import read_feature_file
from scagents.errors import DataError, DataFileError
from tests.conftest import shared_file

ROOT = Path(__file__).resolve().parents[2]
GENES = [f"G{i}" for i in range(40)]


def _table(tmp_path: Path) -> tuple[Path, pd.Series]:
    """A tiny feature table: an expression-level column ``x__mean`` (the prior) and two others."""
    rng = np.random.default_rng(3)
    level = pd.Series(rng.permutation(len(GENES)).astype(float), index=GENES)
    df = pd.DataFrame({"x__mean": level, "x__svd_0": rng.normal(size=len(GENES)),
                       "x__svd_1": rng.normal(size=len(GENES))}, index=pd.Index(GENES, name="gene"))
    path = tmp_path / "features.csv"
    df.to_csv(path)
    return path, level


def _cli(*args: str, env: dict | None = None) -> str:
    full = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    res = subprocess.run([sys.executable, "-m", "scagents", *args], cwd=ROOT, env=full, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_next_round_one_takes_top_of_stored_prior(tmp_path):
    feats, level = _table(tmp_path)
    cands = tmp_path / "genes.txt"
    cands.write_text("\n".join(GENES))
    db = tmp_path / "l.sqlite"
    _cli("next", "--db", str(db), "--campaign", "c", "--goal", "find regulators of IFNG", "--candidates",
         str(cands), "--features", str(feats), "--batch", "5", "--designer", "ridge_ucb")
    h = history(db, "c")
    top5 = set(level.sort_values(ascending=False).index[:5])
    assert set(h["gene"]) == top5
    assert h["rationale"].str.contains("expression prior").all()
    assert "expression_prior" in campaign_info(db, "c")["prior"]
    # later processes use the stored prior, not the (now removed) feature file: round 1 (nothing
    # measured yet) continues down the same prior
    feats.unlink()
    con = sqlite3.connect(db)
    stored = dict(con.execute("SELECT gene, value FROM priors").fetchall())
    con.close()
    assert len(stored) == len(GENES)
    assert np.corrcoef([stored[g] for g in GENES], level[GENES])[0, 1] > 0.999
    out = propose_round(db, "c", batch=5, designer="ridge_ucb")  # round 1: nothing measured yet
    nxt = set(level.sort_values(ascending=False).index[5:10])
    assert set(out["gene"]) == nxt and "expression prior" in out["rationale"].iloc[0]


def test_no_expression_data_round_one_random_with_reason(tmp_path):
    empty = tmp_path / "no_data"
    empty.mkdir()
    cands = tmp_path / "genes.txt"
    cands.write_text("\n".join(GENES))
    db = tmp_path / "l.sqlite"
    out = _cli("next", "--db", str(db), "--campaign", "c", "--goal", "largest change in IL2", "--candidates",
               str(cands), "--batch", "6", "--designer", "ridge_ucb", env={"SCAGENTS_DATA": str(empty)})
    h = history(db, "c")
    assert len(h) == 6 and campaign_info(db, "c")["prior"] is None
    assert h["rationale"].str.contains("no expression prior").all()
    assert "no expression prior" in out
    # two different seeds give different random picks (so it is not a hidden ordering)
    create_campaign(db, "d", goal="x", candidates=GENES, features=None)
    a = propose_round(db, "d", batch=6, designer="ridge_ucb", seed=1)
    assert "no expression prior" in a["rationale"].iloc[0]
    create_campaign(db, "e", goal="x", candidates=GENES, features=None)
    b = propose_round(db, "e", batch=6, designer="ridge_ucb", seed=2)
    assert set(a["gene"]) != set(b["gene"])


def test_prior_none_is_respected_and_user_series(tmp_path):
    feats, level = _table(tmp_path)
    db = tmp_path / "l.sqlite"
    info = create_campaign(db, "none", goal="x", candidates=GENES, features=feats, prior=None)
    assert info["prior"] is None
    out = propose_round(db, "none", batch=5, designer="ridge_ucb", seed=0)
    assert "no expression prior" in out["rationale"].iloc[0]
    user = pd.Series(np.arange(len(GENES), dtype=float), index=GENES)
    info = create_campaign(db, "user", goal="x", candidates=GENES + ["G0+G39"], features=feats, prior=user)
    assert info["prior"] == "user-supplied prior"
    out = propose_round(db, "user", batch=3, designer="policy", seed=0)
    assert list(out["gene"]) == ["G39", "G38", "G37"]
    with pytest.raises(Exception, match="NaN or infinite"):
        create_campaign(db, "bad", goal="x", candidates=GENES, features=feats,
                        prior=pd.Series([np.nan], index=["G0"]))


def test_ledger_without_prior_derives_it_on_first_next(tmp_path):
    feats, level = _table(tmp_path)
    db = tmp_path / "l.sqlite"
    create_campaign(db, "old", goal="x", candidates=GENES, features=feats)
    con = sqlite3.connect(db)
    con.execute("DELETE FROM priors")  # as a ledger written before priors were stored
    con.commit()
    con.close()
    out = propose_round(db, "old", batch=4, designer="ridge_ucb")
    assert set(out["gene"]) == set(level.sort_values(ascending=False).index[:4])
    assert campaign_info(db, "old")["prior"] is not None


def test_read_feature_file_errors(tmp_path):
    with pytest.raises(DataFileError, match="does not exist"):
        read_feature_file(tmp_path / "absent.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("gene,a\nG0,1\nG1,x\n")
    with pytest.raises(DataError, match="non-numeric"):
        read_feature_file(bad)


def test_real_pbmc_prior_round_one(tmp_path):
    shared_file("stimulation/kang2018_ifnb_pbmc.h5ad")
    from scagents.campaign.features import align_features, expression_prior, pbmc_gene_features

    genes = ["CD3E", "IFNG", "STAT1", "JAK1", "GAPDH", "ACTB", "IL2RA", "TBX21", "ZAP70", "LCK",
             "NOT_A_GENE_X", "MYOD1", "INS", "ALB"]
    db = tmp_path / "l.sqlite"
    out = propose_round(db, "pbmc", batch=4, goal="regulators of IFNG", candidates=genes, designer="ridge_ucb")
    expected = expression_prior(align_features(pbmc_gene_features(), genes)).sort_values(ascending=False)
    assert set(out["gene"]) == set(expected.index[:4])
    assert not set(out["gene"]) & {"NOT_A_GENE_X", "MYOD1", "INS", "ALB"}
