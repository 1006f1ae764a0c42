"""Ledger: rounds, ingest, idempotence, malformed files, and SIGKILL mid-transaction."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import zlib
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
from scagents.campaign.ledger import list_campaigns, read_candidates_file
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
                for t in ("campaigns", "rounds", "proposals", "ingests", "ingest_scores", "measurements")}
    finally:
        con.close()


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_round_ingest_history(db, tmp_path):
    p0 = propose_round(db, "c1", batch=8, designer="random", seed=1)
    assert len(p0) == 8 and p0["gene"].is_unique and set(p0["round"]) == {1}
    res = _write(tmp_path / "r0.csv", "gene,score\n" + "".join(f"{g},{i * 0.5}\n" for i, g in enumerate(p0["gene"])))
    s = ingest(db, "c1", res)
    assert s.n_new == 8 and not s.duplicate_file and s.rounds == [1]
    again = ingest(db, "c1", res)
    assert again.duplicate_file and again.n_new == 0
    p1 = propose_round(db, "c1", batch=8, designer="ridge_ucb", seed=1)
    assert set(p1["round"]) == {2} and not set(p1["gene"]) & set(p0["gene"])
    h = history(db, "c1")
    assert len(h) == 16 and h["measured"].notna().sum() == 8
    assert (h.loc[h["round"] == 1, "measured"].to_numpy() == np.arange(8) * 0.5).all()
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
        assert list(ax.get_xticks()) == [1, 2, 3] and ax.get_xlabel() == "round"
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


def test_campaign_plot_does_not_count_a_round_without_results(db, tmp_path):
    """A proposed round whose results are not ingested is no round with zero new hits: the hits
    line stops at the last measured round and the waiting round is marked 'not measured yet'."""
    from scagents.campaign.ledger import _campaign_figure

    p = propose_round(db, "c1", batch=6, designer="random", seed=0)
    ingest(db, "c1", _write(tmp_path / "r0.csv", "gene,score\n" + "".join(
        f"{g},{10.0 if i == 0 else 0.1 * i}\n" for i, g in enumerate(p["gene"]))))
    propose_round(db, "c1", batch=6, designer="random", seed=1)
    fig = _campaign_figure(history(db, "c1"), "c1", "abs")
    scatter, hits, best = fig.axes
    assert list(hits.lines[0].get_xdata()) == [1] and list(hits.lines[0].get_ydata()) == [1]
    for ax in fig.axes:
        assert list(ax.get_xticks()) == [1, 2]
        assert "not measured yet" in [t.get_text() for t in ax.texts]
    assert "median, SD of the measured genes" in scatter.get_ylabel()  # not the library's: say so
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_campaign_plot_names_the_score_column_of_the_results(db, tmp_path, monkeypatch):
    """The plot's reader learns which column of the results is the score (its unit)."""
    import scagents.campaign.ledger as L

    propose_round(db, "c1", batch=5, designer="random", seed=0)
    s = ingest(db, "c1", _rra(tmp_path / "screen.gene_summary.txt", GENES))
    seen = {}
    real = L._campaign_figure
    monkeypatch.setattr(L, "_campaign_figure", lambda *a, **k: seen.setdefault("fig", real(*a, **k)))
    plot_campaign(db, "c1", tmp_path / "p.png")
    assert s.score_rule in seen["fig"].axes[0].get_title()


def test_unknown_campaign_and_goal_mismatch(db):
    with pytest.raises(CampaignError, match="No campaign"):
        propose_round(db, "nope", batch=4, designer="random")
    with pytest.raises(CampaignError, match="goal"):
        propose_round(db, "c1", batch=4, goal="something else", designer="random")
    with pytest.raises(CampaignError, match="already exists"):
        create_campaign(db, "c1", goal="x", candidates=GENES, features=None)


def test_candidates_or_features_for_an_existing_campaign_are_refused_not_ignored(db, tmp_path):
    # they used to be ignored silently: the round came from the stored candidates and features
    before = _snapshot(db)
    with pytest.raises(CampaignError, match=r"keeps the .* candidates.*1 not among them \(NEW1\).*new campaign name"):
        propose_round(db, "c1", batch=2, candidates=[*GENES, "NEW1"], designer="random")
    with pytest.raises(CampaignError, match=rf"1 of them missing \({GENES[0]}\)"):
        propose_round(db, "c1", batch=2, candidates=GENES[1:], designer="random")
    with pytest.raises(CampaignError, match=r"keeps the features .*'other.csv' would not be used.*drop --features"):
        propose_round(db, "c1", batch=2, features="other.csv", designer="random")
    with pytest.raises(CampaignError, match="keeps the features"):
        propose_round(db, "c1", batch=2, features=_features(1), designer="random")
    assert _snapshot(db) == before  # nothing recorded
    # the same candidates (another order, spaces) are the campaign's own: nothing is ignored
    out = propose_round(db, "c1", batch=2, candidates=[f" {g}" for g in reversed(GENES)], designer="random")
    assert len(out) == 2


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
    assert set(nxt["round"]) == {2} and len(nxt) == 10
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


# ------------------------------------------------------------------ screen tools' result files
RRA_COLS = ["id", "num", "neg|score", "neg|p-value", "neg|fdr", "neg|rank", "neg|goodsgrna", "neg|lfc",
            "pos|score", "pos|p-value", "pos|fdr", "pos|rank", "pos|goodsgrna", "pos|lfc"]
LIBRARY = [f"LIB{i}" for i in range(100)]  # library genes that are not candidates of the campaign


def _lfc(gene: str) -> float:
    """A distinct signed log fold change per gene (reproducible from the name)."""
    return round(float(np.random.default_rng(zlib.crc32(gene.encode())).normal(0, 2)), 4)


def _rra(path: Path, genes, *, lfc=_lfc, pos_lfc=None, drop=()) -> Path:
    """A MAGeCK RRA gene summary as `mageck test` writes it (TSV; RRA score / p-value small for strong hits)."""
    rows = []
    for rank, g in enumerate(genes, 1):
        v = lfc(g)
        small = 10.0 ** -(abs(v) * 3)  # the RRA score and p-values are unsigned: small either way
        rows.append([g, 4, small, small, min(1.0, small * 10), rank, 3, v, 1 - small, 1.0, 1.0,
                     len(genes) - rank + 1, 0, v if pos_lfc is None else pos_lfc(g)])
    df = pd.DataFrame(rows, columns=RRA_COLS).drop(columns=list(drop))
    df.to_csv(path, sep="\t", index=False)
    return path


def _mle(path: Path, genes, conditions=("Rep1",)) -> Path:
    """A MAGeCK MLE gene summary (`mageck mle`): Gene, sgRNA, then per condition beta, z, p-value, fdr,
    wald-p-value, wald-fdr."""
    cols = {"Gene": list(genes), "sgRNA": [6] * len(genes)}
    for k, c in enumerate(conditions):
        beta = [_lfc(g) + k for g in genes]
        cols.update({f"{c}|beta": beta, f"{c}|z": [b * 3 for b in beta], f"{c}|p-value": [0.01] * len(genes),
                     f"{c}|fdr": [0.05] * len(genes), f"{c}|wald-p-value": [0.02] * len(genes),
                     f"{c}|wald-fdr": [0.9] * len(genes)})
    pd.DataFrame(cols).to_csv(path, sep="\t", index=False)
    return path


def _bagel(path: Path, genes) -> Path:
    """A BAGEL2 gene-level table (`BAGEL.py bf` with bootstrapping): GENE, BF, STD, NumObs."""
    lines = ["GENE\tBF\tSTD\tNumObs"] + [f"{g}\t{_lfc(g) * 10:4.3f}\t1.000\t10" for g in sorted(genes)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _measured(db: Path) -> dict:
    h = history(db, "c1")
    return dict(zip(h.loc[h["measured"].notna(), "gene"], h.loc[h["measured"].notna(), "measured"], strict=True))


def test_ingest_reads_a_mageck_rra_summary_of_the_whole_library(db, tmp_path):
    """Whole-library MAGeCK RRA output: the proposed genes' neg|lfc is stored (not the RRA score or
    p-value), the other rows are counted and ignored, and the rule is stored with the file's hash."""
    p0 = propose_round(db, "c1", batch=5, designer="random", seed=0)
    path = _rra(tmp_path / "screen.gene_summary.txt", GENES + LIBRARY)
    s = ingest(db, "c1", path)
    assert s.score_rule == "score = MAGeCK RRA neg|lfc (gene-level log2 fold change)"
    assert s.source_format == "MAGeCK RRA" and s.n_new == 5 and s.rounds == [1]
    assert (s.n_unproposed, s.n_unknown) == (55, 100) and s.unknown == LIBRARY[:5] and s.n_unmeasured == 0
    assert _measured(db) == {g: _lfc(g) for g in p0["gene"]}
    con = sqlite3.connect(db)
    stored = con.execute("SELECT format, gene_column, score_column, sign, rule, n_ignored FROM ingest_scores").fetchall()
    con.close()
    assert stored == [("MAGeCK RRA", "id", "neg|lfc", 1.0, s.score_rule, 155)]
    again = ingest(db, "c1", path)
    assert again.duplicate_file and again.score_rule == s.score_rule
    # next round: the same library file again holds the new proposals (a new file content: new rows)
    p1 = propose_round(db, "c1", batch=3, designer="random", seed=1)
    s1 = ingest(db, "c1", _rra(tmp_path / "round1.txt", list(reversed(GENES + LIBRARY))))
    assert s1.n_new == 3 and s1.n_already == 5 and s1.rounds == [2] and s1.note is None
    assert set(_measured(db)) == set(p0["gene"]) | set(p1["gene"])


def test_the_same_library_file_ingested_after_the_next_round_adds_the_new_proposals(db, tmp_path):
    """A biologist ingests the one whole-library MAGeCK summary after every round: the second time
    it must add the genes proposed since, not answer 'already ingested' and lose them."""
    p0 = propose_round(db, "c1", batch=5, designer="random", seed=0)
    path = _rra(tmp_path / "screen.gene_summary.txt", GENES + LIBRARY)
    assert ingest(db, "c1", path).n_new == 5
    p1 = propose_round(db, "c1", batch=3, designer="random", seed=1)
    s1 = ingest(db, "c1", path)
    assert not s1.duplicate_file and s1.n_new == 3 and s1.n_already == 5 and s1.rounds == [2]
    assert s1.note == "this file was ingested before; its rows of the genes proposed since were added"
    assert _measured(db) == {g: _lfc(g) for g in list(p0["gene"]) + list(p1["gene"])}
    assert ingest(db, "c1", path).duplicate_file  # nothing proposed since: nothing added
    propose_round(db, "c1", batch=2, designer="random", seed=2)
    before = _snapshot(db)
    with pytest.raises(IngestError, match="ingested before with score = MAGeCK RRA neg.lfc"):
        ingest(db, "c1", path, score_column="pos|lfc")  # another column of the same file: refused
    assert _snapshot(db) == before


def test_rra_without_a_signed_column_or_with_two_different_lfcs_is_refused(db, tmp_path):
    p0 = propose_round(db, "c1", batch=3, designer="random", seed=0)
    before = _snapshot(db)
    no_lfc = _rra(tmp_path / "no_lfc.txt", GENES, drop=("neg|lfc", "pos|lfc"))
    with pytest.raises(IngestError, match=r"without neg\|lfc / pos\|lfc.*not signed effects"):
        ingest(db, "c1", no_lfc)
    for col in ("neg|score", "pos|p-value", "neg|fdr", "neg|rank", "num"):  # named explicitly: still refused
        with pytest.raises(IngestError, match="not a signed effect"):
            ingest(db, "c1", no_lfc, score_column=col)
    two = _rra(tmp_path / "alphamedian.txt", GENES, pos_lfc=lambda g: _lfc(g) + 0.5)
    with pytest.raises(IngestError, match=r"neg\|lfc and pos\|lfc differ.*--score-column"):
        ingest(db, "c1", two)
    assert _snapshot(db) == before
    s = ingest(db, "c1", two, score_column="POS|LFC")  # case-insensitive
    assert s.score_rule == "score = MAGeCK RRA pos|lfc (gene-level log2 fold change)"
    assert _measured(db) == {g: pytest.approx(_lfc(g) + 0.5) for g in p0["gene"]}


def test_ingest_reads_mageck_mle_and_asks_which_condition(db, tmp_path):
    p0 = propose_round(db, "c1", batch=4, designer="random", seed=0)
    before = _snapshot(db)
    two = _mle(tmp_path / "mle2.gene_summary.txt", GENES + LIBRARY, conditions=("Rep1", "Rep2"))
    with pytest.raises(IngestError, match=r"2 conditions \(Rep1\|beta, Rep2\|beta\).*--score-column") as info:
        ingest(db, "c1", two)
    assert "\n" not in str(info.value)
    assert _snapshot(db) == before
    s = ingest(db, "c1", two, score_column="Rep2|beta")
    assert s.score_rule.startswith("score = MAGeCK MLE Rep2|beta (gene beta of condition Rep2")
    assert _measured(db) == {g: pytest.approx(_lfc(g) + 1) for g in p0["gene"]}
    p1 = propose_round(db, "c1", batch=2, designer="random", seed=1)
    # a later round's file (without round 1's genes, which Rep1 would re-measure differently: refused)
    one = ingest(db, "c1", _mle(tmp_path / "mle1.txt", [g for g in GENES if g not in set(p0["gene"])]))
    assert one.score_rule.startswith("score = MAGeCK MLE Rep1|beta") and one.n_new == 2
    assert one.note.startswith("earlier ingests of this campaign used another score (score = MAGeCK MLE Rep2|beta")
    assert {g: _measured(db)[g] for g in p1["gene"]} == {g: pytest.approx(_lfc(g)) for g in p1["gene"]}


def test_bagel2_bayes_factor_is_stored_with_its_sign_flipped(tmp_path):
    """BF > 0 = the knockout depletes the cells: with the sign flipped, a 'decrease' campaign
    rewards the gene with the largest BF most."""
    db = tmp_path / "l.sqlite"
    create_campaign(db, "c1", goal="genes whose knockout decrease growth", candidates=GENES, features=None)
    p0 = propose_round(db, "c1", batch=6, designer="random", seed=0)
    s = ingest(db, "c1", _bagel(tmp_path / "screen.bf", GENES + LIBRARY))
    assert s.source_format == "BAGEL2 BF" and "−BF of BAGEL2" in s.score_rule and "sign flipped" in s.score_rule
    assert _measured(db) == {g: pytest.approx(-_lfc(g) * 10, abs=1e-3) for g in p0["gene"]}
    h = history(db, "c1").dropna(subset=["measured"])
    top_bf = max(p0["gene"], key=lambda g: _lfc(g))
    assert h.loc[h["reward"].idxmax(), "gene"] == top_bf
    rna = _write(tmp_path / "guides.bf", "RNA\tGENE\tREP1\tBF\nsg1\tG0\t1.0\t2.0\n")
    with pytest.raises(IngestError, match="sgRNA-level"):
        ingest(db, "c1", rna)


def test_generic_tables_by_common_column_names_and_explicit_columns(db, tmp_path):
    p0 = propose_round(db, "c1", batch=3, designer="random", seed=0)
    genes = list(p0["gene"])
    before = _snapshot(db)
    several = _write(tmp_path / "de.csv", "Symbol,log2FC,Z,padj\n" + "".join(
        f"{g},{i},{10 * i},0.01\n" for i, g in enumerate(genes)))
    with pytest.raises(IngestError, match=r"several score columns \(log2FC, Z\).*--score-column"):
        ingest(db, "c1", several)
    both_genes = _write(tmp_path / "two_genes.tsv", "gene\tperturbation\tlfc\n" + "".join(
        f"{g}\t{g}_KO\t{i}\n" for i, g in enumerate(genes)))
    with pytest.raises(IngestError, match=r"several gene columns \(gene, perturbation\).*--gene-column"):
        ingest(db, "c1", both_genes)
    for bad, msg in (({"score_column": "padj"}, "FDRs"), ({"score_column": "nope"}, "no column 'nope'"),
                     ({"score_column": "Symbol"}, "is the gene column")):
        with pytest.raises(IngestError, match=msg):
            ingest(db, "c1", several, **bad)
    assert _snapshot(db) == before
    s = ingest(db, "c1", several, score_column="z")
    assert s.score_rule.startswith("score = column 'Z' as written") and s.n_new == 3
    assert _measured(db) == {g: 10.0 * i for i, g in enumerate(genes)}
    p1 = propose_round(db, "c1", batch=2, designer="random", seed=1)
    s1 = ingest(db, "c1", _write(
        tmp_path / "two_genes2.tsv", "GENE\tperturbation\tLFC\n" + "".join(
            f"{g}\t{g}_KO\t{-i}\n" for i, g in enumerate(p1["gene"]))), gene_column="GENE")
    assert s1.score_rule.startswith("score = column 'LFC'") and s1.n_new == 2


def test_rows_of_genes_not_proposed_are_ignored_and_only_taken_rows_checked(db, tmp_path):
    """A file mixing proposed genes, candidates not proposed, unknown genes (with a NaN score in an
    ignored row) adds the proposed ones; a file with no proposed gene is refused in one line."""
    p0 = propose_round(db, "c1", batch=2, designer="random", seed=0)
    a, b = p0["gene"]
    unproposed = [g for g in GENES if g not in (a, b)][:3]
    mixed = _write(tmp_path / "mixed.csv", f"gene,score\n{a},1.5\nTYPO1,nan\n{b},-2\n" +
                   "".join(f"{g},0.1\n" for g in unproposed))
    s = ingest(db, "c1", mixed)
    assert (s.n_new, s.n_unproposed, s.n_unknown, s.unknown) == (2, 3, 1, ["TYPO1"])
    assert _measured(db) == {a: 1.5, b: -2.0}
    before = _snapshot(db)
    with pytest.raises(GeneNotFoundError, match=r"never proposed.*1 other gene\(s\) are not candidates"):
        ingest(db, "c1", _write(tmp_path / "none.csv", f"gene,score\n{unproposed[0]},1\nTYPO2,1\n"))
    with pytest.raises(IngestError, match="not a finite number on 1 row"):
        ingest(db, "c1", _write(tmp_path / "nan.csv", f"gene,score\n{a},1.5\n{b},nan\n"))
    assert _snapshot(db) == before


def _genedisco_member(name: str, tmp_path: Path) -> Path:
    """A screen file from the cached genedisco wheel (benchmarks/closed_loop.py caches it), written to tmp_path."""
    import zipfile

    from scagents.campaign.features import cache_dir

    wheels = sorted((cache_dir() / "wheels").glob("genedisco-*.whl"))
    if not wheels:
        pytest.skip(f"no genedisco wheel in {cache_dir() / 'wheels'} (python benchmarks/closed_loop.py caches it)")
    with zipfile.ZipFile(wheels[-1]) as z:
        member = f"genedisco/datasets/screens/{name}"
        if member not in z.namelist():
            pytest.skip(f"{wheels[-1].name} has no {member}")
        out = tmp_path / name
        out.write_bytes(z.read(member))
    return out


def test_real_mageck_mle_and_rra_summaries_from_genedisco(tmp_path):
    """Zhuang 2019 (MAGeCK MLE, conditions Rep1 and Rep2) and Schmidt 2021 (MAGeCK RRA) as published."""
    mle = _genedisco_member("zhuang_2019_low_selection.gene_summary.txt", tmp_path)
    table = pd.read_csv(mle, sep="\t")
    cands = table["Gene"].iloc[:200].tolist()
    db = tmp_path / "l.sqlite"
    create_campaign(db, "c1", goal="NK resistance regulators", candidates=cands, features=None)
    p0 = propose_round(db, "c1", batch=8, designer="random", seed=0)
    with pytest.raises(IngestError, match=r"MAGeCK MLE gene summary with 2 conditions \(Rep1\|beta, Rep2\|beta\)"):
        ingest(db, "c1", mle)
    s = ingest(db, "c1", mle, score_column="Rep1|beta")
    assert s.n_new == 8 and s.n_unproposed == 192 and s.n_unknown == len(table) - 200
    want = table.set_index("Gene").loc[p0["gene"], "Rep1|beta"]
    assert _measured(db) == pytest.approx(want.to_dict())

    rra = _genedisco_member("schmidt_ifng_d1.gene_summary.txt", tmp_path)
    table = pd.read_csv(rra, sep="\t")
    assert (table["neg|lfc"] == table["pos|lfc"]).all()  # MAGeCK writes the gene lfc twice
    create_campaign(db, "c2", goal="IFNG regulators", candidates=table["id"].iloc[::50].tolist(), features=None)
    p1 = propose_round(db, "c2", batch=8, designer="random", seed=0)
    s = ingest(db, "c2", rra)
    assert s.score_rule == "score = MAGeCK RRA neg|lfc (gene-level log2 fold change)" and s.n_new == 8
    h = history(db, "c2")
    assert dict(zip(h["gene"], h["measured"], strict=True)) == pytest.approx(
        table.set_index("id").loc[p1["gene"], "neg|lfc"].to_dict())


def test_one_gene_in_two_cases_is_refused_as_a_duplicate_candidate(tmp_path):
    db = tmp_path / "l.sqlite"
    with pytest.raises(CampaignError, match="Duplicate candidates in different cases: IFIT1 / ifit1; list each"):
        create_campaign(db, "c", goal="g", candidates=["IFIT1", "STAT1", "ifit1"], features=None)
    assert not db.exists() or not list_campaigns(db)


def test_read_candidates_file_skips_a_header_and_blank_lines(tmp_path):
    path = tmp_path / "lib.txt"
    path.write_text("\ufeffGene\n\nSTAT1\n  \nIRF1\n")
    assert read_candidates_file(path) == (["STAT1", "IRF1"], "Gene")
    path.write_text("STAT1\nIRF1\n")
    assert read_candidates_file(path) == (["STAT1", "IRF1"], None)


def test_a_read_only_ledger_is_one_clear_error_and_stays_readable(db, monkeypatch):
    """A ledger the user may only read (shared read-only, a read-only mount): `next` says so in one
    sentence; reading the history still works."""
    import scagents.campaign.ledger as L

    propose_round(db, "c1", batch=3, designer="random", seed=0)
    before = _snapshot(db)
    real = sqlite3.connect
    monkeypatch.setattr(L.sqlite3, "connect", lambda path, *a, **k: real(
        path if str(path).startswith("file:") else f"file:{path}?mode=ro", *a, **{**k, "uri": True}))
    with pytest.raises(CampaignError, match=r"The ledger .*ledger\.sqlite is read-only \(attempt to write a readonly "
                                            r"database\); nothing was written"):
        propose_round(db, "c1", batch=3, designer="random", seed=1)
    assert len(history(db, "c1")) == 3
    monkeypatch.undo()
    assert _snapshot(db) == before


def test_campaign_plot_counts_hits_in_whole_numbers_before_the_first_hit(db, tmp_path):
    """No hit yet: the hits panel's ticks are whole numbers (a count), not 0.006, 0.012, …"""
    from scagents.campaign.ledger import _campaign_figure

    p = propose_round(db, "c1", batch=6, designer="random", seed=0)
    ingest(db, "c1", _write(tmp_path / "r0.csv", "gene,score\n" + "".join(
        f"{g},{0.1 * i}\n" for i, g in enumerate(p["gene"]))))
    fig = _campaign_figure(history(db, "c1"), "c1", "abs")
    hits = fig.axes[1]
    assert list(hits.lines[0].get_ydata()) == [0]
    ticks = [t for t in hits.get_yticks() if hits.get_ylim()[0] <= t <= hits.get_ylim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks) and max(ticks) >= 1
    import matplotlib.pyplot as plt

    plt.close(fig)


def _lib_stats(values: np.ndarray, objective: str = "abs") -> tuple[float, float, int]:
    """Median, 1.4826·MAD and hits (|v − median| / scale ≥ 2 for 'abs') of a library, computed here."""
    med = float(np.median(values))
    scale = 1.4826 * float(np.median(np.abs(values - med)))
    z = {"abs": np.abs(values - med), "increase": values - med, "decrease": med - values}[objective] / scale
    return med, scale, int((z >= 2.0).sum())


def test_a_library_file_stores_its_score_distribution(db, tmp_path):
    """A whole-library MAGeCK summary (60 candidates + 100 other genes): its number of genes, median,
    1.4826·MAD of neg|lfc and hits under the campaign's objective are stored with the file's hash."""
    propose_round(db, "c1", batch=5, designer="random", seed=0)
    path = _rra(tmp_path / "screen.gene_summary.txt", GENES + LIBRARY)
    s = ingest(db, "c1", path)
    values = np.array([_lfc(g) for g in GENES + LIBRARY])
    med, scale, hits = _lib_stats(values)
    cand_hits = int((np.abs(values[:60] - med) / scale >= 2.0).sum())
    con = sqlite3.connect(db)
    rows = con.execute("SELECT sha256, n_genes, median, scale, n_hits, n_candidates, n_candidate_hits, objective "
                       "FROM ingest_library").fetchall()
    con.close()
    assert len(rows) == 1
    sha, n, got_med, got_scale, n_hits, n_cand, n_cand_hits, objective = rows[0]
    assert (sha, n, n_hits, n_cand, n_cand_hits, objective) == (s.sha256, 160, hits, 60, cand_hits, "abs")
    assert got_med == pytest.approx(med) and got_scale == pytest.approx(scale)
    assert s.library.startswith(f"library: 160 genes with a score in this file, median {med:.3g}, robust SD "
                                f"{scale:.3g} (1.4826·MAD)")


def test_hit_status_does_not_move_when_later_rounds_are_ingested(db, tmp_path):
    """With a library file the scale is the library's: a gene called (or not called) a hit after round
    0 keeps that status after rounds 1 and 2 are ingested, although their values are far wider
    (on the measured proposals' scale alone, the round-0 gene at 1.0 would stop being a hit)."""
    from scagents.campaign.ledger import HIT_THRESHOLD

    p0 = propose_round(db, "c1", batch=8, designer="random", seed=0)
    first = list(p0["gene"])
    values = {g: 0.01 * i for i, g in enumerate(first)}
    values[first[0]] = 1.0
    rest = [g for g in GENES + LIBRARY if g not in values]
    values.update({g: (1 if i % 2 else -1) * (0.3 + 0.02 * i) for i, g in enumerate(rest)})
    path = tmp_path / "screen.csv"
    path.write_text("gene,score\n" + "".join(f"{g},{v}\n" for g, v in values.items()))
    ingest(db, "c1", path)
    after0 = history(db, "c1").set_index("gene")["reward"] >= HIT_THRESHOLD
    for rnd in (1, 2):
        propose_round(db, "c1", batch=8, designer="random", seed=rnd)
        ingest(db, "c1", path)
    after2 = history(db, "c1").set_index("gene")["reward"] >= HIT_THRESHOLD
    assert after2[first].tolist() == after0[first].tolist()
    assert (history(db, "c1").set_index("gene")["hit"] == after2).all()
    med, scale, _ = _lib_stats(np.array(list(values.values())))
    assert bool(after0[first[0]]) == (abs(1.0 - med) / scale >= 2.0)
    from scagents.campaign.ledger import campaign_progress

    per = campaign_progress(db, "c1")["rounds"].set_index("round")
    assert per.loc[1, "hits"] == int(after0[first].sum())


def test_random_expectation_is_batch_times_the_library_share(tmp_path, monkeypatch):
    """Candidates = the library: each round's random expectation is its batch × (library hits / library
    genes), summed over rounds, and the plot draws it dashed grey as 'random batches (expected)'."""
    import scagents.campaign.ledger as L
    from scagents.campaign.ledger import campaign_progress

    genes = GENES + LIBRARY
    db = tmp_path / "l.sqlite"
    create_campaign(db, "c1", goal="largest change in IFNG", candidates=genes, features=None)
    path = _rra(tmp_path / "screen.gene_summary.txt", genes)
    for rnd, batch in enumerate((5, 7, 4)):
        propose_round(db, "c1", batch=batch, designer="random", seed=rnd)
        ingest(db, "c1", path)
    _, _, hits = _lib_stats(np.array([_lfc(g) for g in genes]))
    share = hits / len(genes)
    prog = campaign_progress(db, "c1")
    per = prog["rounds"]
    assert per["expected_random"].tolist() == pytest.approx([5 * share, 7 * share, 4 * share])
    assert per["expected_random_so_far"].tolist() == pytest.approx([5 * share, 12 * share, 16 * share])
    assert prog["lines"][1].startswith(f"round 2: 7 of 7 measured, {per['hits'][1]} hit")
    assert f"(random batch of 7: {7 * share:.2f} expected)" in prog["lines"][1]
    assert prog["scale"].startswith("scale: library of 160 genes (screen.gene_summary.txt)")
    seen = {}
    real = L._campaign_figure
    monkeypatch.setattr(L, "_campaign_figure", lambda *a, **k: seen.setdefault("fig", real(*a, **k)))
    plot_campaign(db, "c1", tmp_path / "p.png")
    fig = seen["fig"]
    scatter, hits_ax, _ = fig.axes
    line = next(ln for ln in hits_ax.lines if ln.get_label() == "random batches (expected)")
    assert line.get_linestyle() == "--" and list(line.get_xdata()) == [1, 2, 3]
    assert list(line.get_ydata()) == pytest.approx([5 * share, 12 * share, 16 * share])
    assert "scale: library of 160 genes (screen.gene_summary.txt)" in scatter.get_title()
    assert "SD of the screen's library" in scatter.get_ylabel()
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_an_old_ledger_without_the_library_table_opens_and_gains_it(db, tmp_path, monkeypatch):
    """A ledger written before ingest_library existed: read as it is (the measured proposals' scale),
    also read-only; opened writable it gains the table, and the library file ingested again after the
    next round gives its values the library scale."""
    import scagents.campaign.ledger as L
    from scagents.campaign.ledger import campaign_progress

    propose_round(db, "c1", batch=5, designer="random", seed=0)
    path = _rra(tmp_path / "screen.gene_summary.txt", GENES + LIBRARY)
    ingest(db, "c1", path)
    con = sqlite3.connect(db)
    con.execute("DROP TABLE ingest_library")
    con.commit()
    con.close()
    real = sqlite3.connect
    monkeypatch.setattr(L.sqlite3, "connect", lambda p, *a, **k: real(
        p if str(p).startswith("file:") else f"file:{p}?mode=ro", *a, **{**k, "uri": True}))
    assert history(db, "c1")["measured"].notna().sum() == 5  # read-only and without the table: still read
    assert campaign_progress(db, "c1")["scale"].startswith("scale: measured proposals only")
    monkeypatch.undo()
    prog = campaign_progress(db, "c1")
    con = sqlite3.connect(db)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    con.close()
    assert "ingest_library" in tables
    assert prog["scale"].startswith("scale: measured proposals only")
    assert prog["random_reference"].startswith("no random reference")
    propose_round(db, "c1", batch=3, designer="random", seed=1)
    s = ingest(db, "c1", path)
    assert s.n_new == 3 and s.library.startswith("library: 160 genes")
    assert campaign_progress(db, "c1")["scale"].startswith("scale: library of 160 genes")


def test_a_file_of_only_the_proposed_genes_falls_back_to_the_measured_scale_and_says_so(db, tmp_path):
    from scagents.campaign.ledger import campaign_progress

    p = propose_round(db, "c1", batch=6, designer="random", seed=0)
    s = ingest(db, "c1", _write(tmp_path / "r0.csv", "gene,score\n" + "".join(
        f"{g},{0.5 * i}\n" for i, g in enumerate(p["gene"]))))
    assert s.library.startswith("scale: this file holds 6 gene(s) with a score, 6 of them proposed: no library")
    prog = campaign_progress(db, "c1")
    assert prog["scale"].startswith("scale: measured proposals only (median 1.25, robust SD 1.11 of the 6 "
                                    "measured score values")
    assert prog["random_reference"].startswith("no random reference")
    assert np.isnan(prog["rounds"]["expected_random"][0]) and prog["rounds"]["hits"][0] == 0  # |v − 1.25| ≤ 1.25
    assert prog["lines"] == ["round 1: 6 of 6 measured, 0 hits; so far 0 hits (no random reference)."]
