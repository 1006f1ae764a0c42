"""Ledger: rounds, ingest, idempotence, malformed files, and SIGKILL mid-transaction."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scagents.campaign import (
    CampaignError,
    IngestError,
    create_campaign,
    history,
    ingest,
    plot_campaign,
    propose_round,
)
from scagents.errors import GeneNotFoundError

ROOT = Path(__file__).resolve().parents[2]
GENES = [f"G{i}" for i in range(60)]


def _features(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(len(GENES), 5)), index=GENES)


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "ledger.sqlite"
    create_campaign(path, "c1", goal="largest change in IFNG", candidates=GENES, features=_features())
    return path


def _snapshot(path: Path) -> dict:
    con = sqlite3.connect(path)
    try:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
                for t in ("campaigns", "rounds", "proposals", "ingests", "measurements")}
    finally:
        con.close()


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_round_ingest_history(db, tmp_path):
    p0 = propose_round(db, "c1", batch=8, designer="random", seed=1)
    assert len(p0) == 8 and p0["gene"].is_unique and set(p0["round"]) == {0}
    res = _write(tmp_path / "r0.csv", "gene,score\n" + "".join(f"{g},{i * 0.5}\n" for i, g in enumerate(p0["gene"])))
    s = ingest(db, "c1", res)
    assert s.n_new == 8 and not s.duplicate_file and s.rounds == [0]
    again = ingest(db, "c1", res)
    assert again.duplicate_file and again.n_new == 0
    p1 = propose_round(db, "c1", batch=8, designer="ridge_ucb", seed=1)
    assert set(p1["round"]) == {1} and not set(p1["gene"]) & set(p0["gene"])
    h = history(db, "c1")
    assert len(h) == 16 and h["measured"].notna().sum() == 8
    assert (h.loc[h["round"] == 0, "measured"].to_numpy() == np.arange(8) * 0.5).all()
    out = plot_campaign(db, "c1", tmp_path / "c1.png")
    assert out.stat().st_size > 1000


def test_ingest_matches_genes_spelled_in_another_case(db, tmp_path):
    """A results file writing the proposed genes in lower case (g3 for G3) is ingested under the
    candidates' names; the same gene twice in two cases is refused, the ledger untouched."""
    p0 = propose_round(db, "c1", batch=4, designer="random", seed=1)
    genes = list(p0["gene"])
    before = _snapshot(db)
    twice = _write(tmp_path / "twice.csv", f"gene,score\n{genes[0]},1\n{genes[0].lower()},2\n")
    with pytest.raises(IngestError, match="different cases"):
        ingest(db, "c1", twice)
    assert _snapshot(db) == before
    res = _write(tmp_path / "lower.csv",
                 "gene,score\n" + "".join(f"{g.lower()},{i}\n" for i, g in enumerate(genes)))
    assert ingest(db, "c1", res).n_new == 4
    h = history(db, "c1").set_index("gene")
    assert h.loc[genes, "measured"].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_campaign_plot_integer_rounds_and_labelled_hits(db, tmp_path):
    from scagents.campaign.ledger import HIT_THRESHOLD, _campaign_figure

    for rnd in range(3):
        p = propose_round(db, "c1", batch=6, designer="random", seed=rnd)
        vals = [10.0 * (rnd + 1) if i == 0 else 0.1 * i for i in range(len(p))]  # one clear hit
        ingest(db, "c1", _write(tmp_path / f"r{rnd}.csv", "gene,score\n" + "".join(
            f"{g},{v}\n" for g, v in zip(p["gene"], vals, strict=True))))
    h = history(db, "c1")
    fig = _campaign_figure(h, "c1", "abs", n_labels=4)
    scatter, hits, best = fig.axes
    for ax in fig.axes:
        assert list(ax.get_xticks()) == [0, 1, 2] and ax.get_xlabel() == "round"
    top = h.sort_values("reward", ascending=False)["gene"].head(4).tolist()
    assert sorted(t.get_text() for t in scatter.texts) == sorted(top)
    assert "robust SDs" in scatter.get_ylabel()
    # one hit per round: the count of hits so far reads 1, 2, 3
    n_hits = (h.groupby("round")["reward"].apply(lambda r: int((r >= HIT_THRESHOLD).sum()))
              .cumsum().tolist())
    assert list(hits.lines[0].get_ydata()) == n_hits == [1, 2, 3]
    # the best-so-far panel names the gene of each new best
    assert len(best.texts) == 3
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_unknown_campaign_and_goal_mismatch(db):
    with pytest.raises(CampaignError, match="No campaign"):
        propose_round(db, "nope", batch=4, designer="random")
    with pytest.raises(CampaignError, match="goal"):
        propose_round(db, "c1", batch=4, goal="something else", designer="random")
    with pytest.raises(CampaignError, match="already exists"):
        create_campaign(db, "c1", goal="x", candidates=GENES, features=None)


def test_new_campaign_via_propose(tmp_path):
    path = tmp_path / "l.sqlite"
    out = propose_round(path, "new", batch=5, goal="increase IL2", candidates=["A", "B", "C", "D", "E", "F"],
                        designer="random")
    assert len(out) == 5


MALFORMED = {
    "missing_file": None,
    "empty": "",
    "binary": b"\x00\x01\x02gene,score\x00",
    "no_gene_column": "name,score\nG0,1\n",
    "no_score_column": "gene,foo\nG0,1\n",
    "header_only": "gene,score\n",
    "non_numeric": "gene,score\nG0,abc\n",
    "nan_score": "gene,score\nG0,\n",
    "inf_score": "gene,score\nG0,inf\n",
    "empty_gene": "gene,score\n,1.0\n",
    "conflicting_duplicates": "gene,score\nG0,1\nG0,2\n",
    "wrong_round": "gene,score,round\nG0,1,3\n",
    "unknown_gene": "gene,score\nNOT_A_GENE,1\n",
    "never_proposed": "gene,score\n{unproposed},1\n",
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_malformed_results_leave_ledger_unchanged(db, tmp_path, kind):
    p0 = propose_round(db, "c1", batch=4, designer="random", seed=0)
    first = p0["gene"].iloc[0]
    text = MALFORMED[kind]
    unproposed = next(g for g in GENES if g not in set(p0["gene"]))
    path = tmp_path / f"{kind}.csv"
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text.replace("G0", first).format(unproposed=unproposed))
    before = _snapshot(db)
    err = GeneNotFoundError if kind in ("unknown_gene", "never_proposed") else IngestError
    with pytest.raises(err) as info:
        ingest(db, "c1", path)
    assert len(str(info.value)) > 20  # a message that explains
    assert _snapshot(db) == before


def test_conflicting_remeasurement_rejected(db, tmp_path):
    p0 = propose_round(db, "c1", batch=2, designer="random")
    g = p0["gene"].iloc[0]
    ingest(db, "c1", _write(tmp_path / "a.csv", f"gene,score\n{g},1.0\n"))
    before = _snapshot(db)
    with pytest.raises(IngestError, match="different measurement"):
        ingest(db, "c1", _write(tmp_path / "b.csv", f"gene,score\n{g},2.0\n"))
    assert _snapshot(db) == before


def _kill_mid_txn(db: Path, tmp_path: Path, code: str) -> None:
    marker = tmp_path / "marker"
    env = dict(os.environ, SCAGENTS_TEST_PAUSE_IN_TXN="60", SCAGENTS_TEST_PAUSE_MARKER=str(marker),
               PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT)
    try:
        deadline = time.time() + 40
        while not marker.exists():
            assert proc.poll() is None, "the subprocess ended before reaching the transaction"
            assert time.time() < deadline, "the subprocess never reached the transaction"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL


def _integrity(db: Path) -> str:
    con = sqlite3.connect(db)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def test_sigkill_during_next_leaves_no_partial_round(db, tmp_path):
    propose_round(db, "c1", batch=6, designer="random", seed=0)
    before = _snapshot(db)
    code = f"from scagents.campaign import propose_round; propose_round({str(db)!r}, 'c1', batch=10, designer='random', seed=3)"
    _kill_mid_txn(db, tmp_path, code)
    assert _integrity(db) == "ok"
    assert _snapshot(db) == before
    nxt = propose_round(db, "c1", batch=10, designer="random", seed=3)
    assert set(nxt["round"]) == {1} and len(nxt) == 10
    assert len(history(db, "c1")) == 16


def test_sigkill_during_ingest_leaves_no_partial_measurements(db, tmp_path):
    p0 = propose_round(db, "c1", batch=10, designer="random", seed=0)
    res = _write(tmp_path / "r.csv", "gene,score\n" + "".join(f"{g},{i}\n" for i, g in enumerate(p0["gene"])))
    before = _snapshot(db)
    code = f"from scagents.campaign import ingest; ingest({str(db)!r}, 'c1', {str(res)!r})"
    _kill_mid_txn(db, tmp_path, code)
    assert _integrity(db) == "ok"
    assert _snapshot(db) == before
    s = ingest(db, "c1", res)
    assert s.n_new == 10 and not s.duplicate_file
    assert history(db, "c1")["measured"].notna().sum() == 10


def test_readers_of_a_missing_or_foreign_ledger_write_nothing(tmp_path):
    from scagents.campaign import list_campaigns

    missing = tmp_path / "none.sqlite"
    for call in (lambda: history(missing, "c1"), lambda: ingest(missing, "c1", tmp_path / "r.csv"),
                 lambda: propose_round(missing, "c1", batch=2)):
        with pytest.raises(CampaignError, match="no ledger"):
            call()
    assert list_campaigns(missing) == [] and not missing.exists()
    foreign = _write(tmp_path / "notes.sqlite", "not a database\n")
    with pytest.raises(CampaignError, match="not a usable campaign ledger"):
        history(foreign, "c1")
    assert foreign.read_text() == "not a database\n"
    with pytest.raises(CampaignError, match="does not exist"):
        create_campaign(tmp_path / "no" / "l.sqlite", "c", goal="x", candidates=GENES, features=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.sqlite"]


@pytest.mark.parametrize("name", ["../escaped", "a/b", ".hidden", "", "-x", "a b", "x" * 101])
def test_campaign_names_that_could_name_other_files_are_refused(tmp_path, name):
    with pytest.raises(CampaignError, match="not allowed"):
        create_campaign(tmp_path / "l.sqlite", name, goal="x", candidates=GENES, features=None)
    assert not (tmp_path / "l.sqlite").exists()


def test_results_file_checked_for_size_and_columns_before_rows(db, tmp_path, monkeypatch):
    import scagents.campaign.ledger as ledger

    propose_round(db, "c1", batch=2, designer="random")
    monkeypatch.setattr(ledger, "MAX_RESULTS_BYTES", 1000)
    big = _write(tmp_path / "big.csv", "gene,score\n" + "G1,1\n" * 400)
    with pytest.raises(IngestError, match="MiB limit"):
        ingest(db, "c1", big)
    # a header without a score column is refused whatever the rows hold
    monkeypatch.setattr(ledger, "_check_rows", lambda *a: pytest.fail("rows parsed before the header check"))
    with pytest.raises(IngestError, match="no score column"):
        ingest(db, "c1", _write(tmp_path / "h.csv", "gene,foo\n" + "G1,1\n" * 100))


def test_a_stored_configuration_from_before_graph_mode_keeps_the_summed_graph():
    from scagents.campaign.acquisition import designer_config
    from scagents.campaign.ledger import _resolve_config

    old = designer_config("bayes_prior", graph="coexpression+ligand_receptor")
    del old["options"]["graph_mode"]  # as ledgers written before the option existed store it
    assert _resolve_config(old, None, None, None, {})["options"]["graph_mode"] == "sum"
    new = designer_config("bayes_prior")
    assert _resolve_config(new, None, None, None, {})["options"]["graph_mode"] == new["options"]["graph_mode"]
    assert _resolve_config(old, None, None, None, {"graph_mode": "per_source"})["options"]["graph_mode"] == "per_source"
