"""The campaign and report sub-commands: ``next``, ``ingest``, ``campaign``, ``report`` (and ``mcp``
argument checks)."""

from __future__ import annotations

import argparse
import re

import pandas as pd
import pytest

from scagents.cli import main

CANDIDATES = ["STAT1", "IRF1", "JAK2", "TBX21", "GATA3", "STAT4"]


def _table(text: str) -> pd.DataFrame:
    """The table at the top of ``next``'s output (it ends at the first blank line)."""
    lines = text.split("\n\n")[0].splitlines()
    header = lines[0].split()
    rows = [ln.split(None, len(header) - 1) for ln in lines[1:]]
    return pd.DataFrame(rows, columns=header)


@pytest.fixture
def campaign(tmp_path, capsys):
    """A campaign with one proposed round of 3 genes."""
    cands = tmp_path / "candidates.txt"
    cands.write_text("\n".join(CANDIDATES) + "\n")
    db = str(tmp_path / "ledger.sqlite")
    rc = main(["next", "--campaign", "ifng", "--goal", "find regulators of IFNG", "--candidates",
               str(cands), "--designer", "random", "--batch", "3", "--db", db])
    out = capsys.readouterr().out
    assert rc == 0
    return db, _table(out)


def test_next_creates_a_campaign_and_proposes(campaign, capsys):
    db, first = campaign
    assert list(first.columns[:3]) == ["round", "rank", "gene"]
    assert first["round"].tolist() == ["1"] * 3 and first["rank"].tolist() == ["1", "2", "3"]
    assert set(first["gene"]) <= set(CANDIDATES) and first["gene"].nunique() == 3
    assert main(["next", "--campaign", "ifng", "--designer", "random", "--batch", "3",
                 "--db", db]) == 0
    second = _table(capsys.readouterr().out)
    assert second["round"].tolist() == ["2"] * 3
    assert set(second["gene"]) == set(CANDIDATES) - set(first["gene"])  # never re-proposed


def test_next_unknown_campaign_is_a_clear_error(tmp_path, capsys):
    rc = main(["next", "--campaign", "nope", "--db", str(tmp_path / "l.sqlite")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: No campaign named 'nope'") and "--goal" in err


def test_ingest_and_campaign_history(campaign, tmp_path, capsys):
    db, first = campaign
    res = tmp_path / "results.csv"
    genes = first["gene"].tolist()
    res.write_text("gene,score\n" + "".join(f"{g},{v}\n" for g, v in zip(genes, (2.0, -1.0, 0.1), strict=True)))
    assert main(["ingest", "--campaign", "ifng", str(res), "--db", db]) == 0
    out = capsys.readouterr().out
    assert "3 new measurement(s) added" in out
    assert main(["ingest", "--campaign", "ifng", str(res), "--db", db]) == 0
    out = capsys.readouterr().out
    assert "already ingested" in out and "ingested before; nothing added" in out

    plot = tmp_path / "progress.png"
    assert main(["campaign", "ifng", "--db", db, "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert f"plot: {plot}" in out and plot.stat().st_size > 1000
    hist = out.split("plot:")[0]
    for g, v in zip(genes, ("2", "-1", "0.1"), strict=True):
        line = next(ln for ln in hist.splitlines() if f" {g} " in ln)
        assert v in line.split()  # the measured value is in the gene's row


def test_ingest_rejects_unproposed_genes(campaign, tmp_path, capsys):
    db, first = campaign
    never = sorted(set(CANDIDATES) - set(first["gene"]))[0]
    res = tmp_path / "bad.csv"
    res.write_text(f"gene,score\n{never},1.0\n")
    assert main(["ingest", "--campaign", "ifng", str(res), "--db", db]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "never proposed" in err and never in err


def _mageck_rra(path, genes):
    """A MAGeCK RRA gene summary (TSV) of a whole library: the proposed genes and others."""
    cols = ["id", "num", "neg|score", "neg|p-value", "neg|fdr", "neg|rank", "neg|goodsgrna", "neg|lfc",
            "pos|score", "pos|p-value", "pos|fdr", "pos|rank", "pos|goodsgrna", "pos|lfc"]
    rows = [[g, 4, 1e-5, 1e-4, 0.01, i + 1, 3, -1.5 + i, 1.0, 1.0, 1.0, len(genes) - i, 0, -1.5 + i]
            for i, g in enumerate(genes)]
    pd.DataFrame(rows, columns=cols).to_csv(path, sep="\t", index=False)
    return path


def test_ingest_a_mageck_summary_says_the_score_rule_and_what_it_ignored(campaign, tmp_path, capsys):
    db, first = campaign
    library = first["gene"].tolist() + sorted(set(CANDIDATES) - set(first["gene"])) + ["LIB1", "LIB2"]
    res = _mageck_rra(tmp_path / "round0.gene_summary.txt", library)
    assert main(["ingest", "--campaign", "ifng", str(res), "--db", db]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "score = MAGeCK RRA neg|lfc (gene-level log2 fold change)"
    assert "3 new measurement(s) added to campaign 'ifng' (round 1)" in out[1]
    assert out[2] == ("ignored: 5 other row(s): 3 candidate(s) not proposed yet; 2 gene(s) that are not "
                      "candidates of the campaign (e.g. LIB1, LIB2).")
    assert main(["campaign", "ifng", "--db", db, "--plot", str(tmp_path / "p.png")]) == 0
    hist = capsys.readouterr().out.split("plot:")[0]
    for g, v in zip(first["gene"], ("-1.5", "-0.5", "0.5"), strict=True):
        assert v in next(ln for ln in hist.splitlines() if f" {g} " in ln).split()


def test_ingest_asks_for_the_score_column_of_a_multi_condition_mle_summary(campaign, tmp_path, capsys):
    db, first = campaign
    genes = first["gene"].tolist()
    res = tmp_path / "mle.gene_summary.txt"
    res.write_text("Gene\tsgRNA\tday7|beta\tday7|z\tday7|p-value\tday14|beta\tday14|z\tday14|p-value\n" +
                   "".join(f"{g}\t4\t{i}\t{2 * i}\t0.1\t{-i}\t{-2 * i}\t0.1\n" for i, g in enumerate(genes)))
    assert main(["ingest", "--campaign", "ifng", str(res), "--db", db]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "day7|beta, day14|beta" in err[0]
    assert "--score-column" in err[0]
    assert main(["ingest", "--campaign", "ifng", str(res), "--db", db, "--score-column", "day14|beta"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("score = MAGeCK MLE day14|beta (gene beta of condition day14")
    assert main(["ingest", "--campaign", "ifng", str(res), "--db", db, "--score-column", "day7|beta"]) == 0
    assert "already ingested with score = MAGeCK MLE day14|beta" in capsys.readouterr().out  # same file: no-op


def test_ingest_refuses_a_p_value_as_the_score(campaign, tmp_path, capsys):
    db, first = campaign
    res = tmp_path / "de.csv"
    res.write_text("gene,pvalue\n" + "".join(f"{g},0.01\n" for g in first["gene"]))
    assert main(["ingest", "--campaign", "ifng", str(res), "--db", db]) == 2
    assert "no score column" in capsys.readouterr().err
    assert main(["ingest", "--campaign", "ifng", str(res), "--db", db, "--score-column", "pvalue"]) == 2
    err = capsys.readouterr().err
    assert "holds p-values, not a signed effect" in err and "--score-column" in err


def test_every_ingest_option_has_help(capsys):
    with pytest.raises(SystemExit):
        main(["ingest", "--help"])
    text = capsys.readouterr().out
    for opt in ("--campaign", "results", "--db", "--score-column", "--gene-column"):
        assert opt in text
    from scagents.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    ing = sub.choices["ingest"]
    assert all(a.help for a in ing._actions), [a.dest for a in ing._actions if not a.help]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from scagents.agents.graph import run_graph
    from scagents.agents.state import RunOptions

    out = tmp_path_factory.mktemp("runs") / "r1"
    state = run_graph(RunOptions(goal="predict IFNG knockout", n_cells=40, policy_steps=256,
                                 max_policy_attempts=1), out=out)
    assert state.get("policy"), state.get("stop_reason")
    return out


def test_report_rewrites_a_finished_run(finished_run, capsys):
    before = (finished_run / "report.md").read_text()
    (finished_run / "report.md").unlink()
    (finished_run / "report.json").unlink()
    assert main(["report", str(finished_run)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("report: ") and str(finished_run / "report.md") in out
    after = (finished_run / "report.md").read_text()
    # same goal, data, method and predicted genes (the agent table now also lists the report agent)
    assert after.splitlines()[:20] == before.splitlines()[:20]
    assert "| IFNG |" in after
    assert (finished_run / "report.json").is_file()
    # by run id under --root
    assert main(["report", finished_run.name, "--root", str(finished_run.parent)]) == 0
    # rewriting is idempotent: the report agent is listed once, however often it is rewritten
    import json

    agents = [a["agent"] for a in json.loads((finished_run / "report.json").read_text())["agents"]]
    assert agents.count("report") == 1
    assert (finished_run / "report.md").read_text() == after


def test_next_states_score_meaning_and_diversity_order():
    from scagents.cli import format_proposals

    df = pd.DataFrame({"round": 2, "rank": [1, 2, 3], "gene": ["A", "B", "C"],
                       "score": [2.0, 1.0, 1.5], "uncertainty": 0.1,
                       "rationale": "score = how strongly the policy favours the gene"})
    text = format_proposals(df)
    table, rest = text.split("\n\n")
    assert "rationale" not in table.splitlines()[0] and len(table.splitlines()) == 4
    assert "why: score = how strongly the policy favours the gene" in rest
    assert "C (rank 3, score 1.5) comes before" not in rest
    assert "B (rank 2, score 1) comes before C (rank 3, score 1.5)" in rest
    in_order = format_proposals(df.assign(score=[3.0, 2.0, 1.0]))
    assert "note:" not in in_order
    mixed = format_proposals(df.assign(rationale=["a", "b", "c"]))
    assert "rationale" in mixed.splitlines()[0] and "why:" not in mixed


def test_next_names_absent_knowledge_sources_and_how_to_get_them():
    from scagents.cli import format_proposals

    df = pd.DataFrame({"round": 0, "rank": [1, 2], "gene": ["A", "B"], "score": [2.0, 1.0], "uncertainty": 0.1,
                       "rationale": "prior"})
    df.attrs["feature_coverage"] = {"symbol_families": 0.5, "pathway": 0.6, "complex_family": None}
    text = format_proposals(df)
    assert "complex_family absent" in text
    line = next(x for x in text.splitlines() if x.startswith("absent knowledge sources"))
    assert "complex_family: pip install famplex" in line and "pathway" not in line
    df.attrs["feature_coverage"] = {"symbol_families": 0.5, "complex_family": 0.2}
    assert "absent knowledge sources" not in format_proposals(df)


def test_report_of_a_moved_run_writes_into_its_new_folder(finished_run, tmp_path, capsys):
    import hashlib
    import shutil

    def digests(folder):
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}

    moved = tmp_path / "moved_run"
    shutil.copytree(finished_run, moved)
    (moved / "report.md").unlink()
    original = digests(finished_run)
    assert main(["report", str(moved)]) == 0
    assert str(moved / "report.md") in capsys.readouterr().out and (moved / "report.md").is_file()
    assert digests(finished_run) == original  # nothing written at the run's old place


def test_resume_of_a_moved_run_is_refused_and_writes_nothing(finished_run, tmp_path, capsys):
    import hashlib
    import shutil

    def digests(folder):
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}

    moved = tmp_path / "elsewhere" / finished_run.name  # same run id, other place
    shutil.copytree(finished_run, moved)
    original, copy = digests(finished_run), digests(moved)
    assert main(["run", "--resume", str(moved), "--quiet"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "was started in" in err[0]
    assert digests(finished_run) == original and digests(moved) == copy


def test_report_unknown_run(tmp_path, capsys):
    assert main(["report", "nope", "--root", str(tmp_path)]) == 2
    assert "error: No run 'nope' to report" in capsys.readouterr().err


def test_mcp_rejects_bad_settings(capsys):
    assert main(["mcp", "--n-cells", "3"]) == 2
    assert "--n-cells must be at least 10" in capsys.readouterr().err


def test_campaigns_lists_the_ledger(campaign, tmp_path, capsys):
    db, first = campaign
    res = tmp_path / "r.csv"
    res.write_text(f"gene,score\n{first['gene'][0]},2.5\n{first['gene'][1]},-1.0\n")
    assert main(["ingest", "--campaign", "ifng", str(res), "--db", db]) == 0
    capsys.readouterr()
    assert main(["campaigns", "--db", db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["campaign", "goal", "rounds", "proposed", "measured", "hits", "best",
                                "updated"]
    assert len(lines) == 2
    row = dict(zip(lines[0].split(), re.split(r"\s{2,}", lines[1]), strict=True))
    # 1 round, 3 proposed, 2 measured; the objective of "find regulators" is the largest |score|
    assert row == {**row, "campaign": "ifng", "goal": "find regulators of IFNG", "rounds": "1",
                   "proposed": "3", "measured": "2", "hits": "0 (no random ref.)",
                   "best": f"{first['gene'][0]} (+2.5)"}


def test_campaigns_bad_ledger_is_a_clear_error(tmp_path, capsys):
    assert main(["campaigns", "--db", str(tmp_path / "none.sqlite")]) == 2
    assert capsys.readouterr().err.startswith("error: no campaign ledger at")
    notes = tmp_path / "notes.sqlite"
    notes.write_text("not a database\n")
    assert main(["campaigns", "--db", str(notes)]) == 2
    assert "is not a campaign ledger" in capsys.readouterr().err
    assert notes.read_text() == "not a database\n"


def test_next_help_names_the_default_designer():
    # the help said "else policy" while a new campaign gets DEFAULT_DESIGNER (bayes_prior)
    from scagents.campaign.acquisition import DEFAULT_DESIGNER
    from scagents.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    designer = next(a for a in sub.choices["next"]._actions if a.dest == "designer")
    assert f"else {DEFAULT_DESIGNER} " in designer.help


def test_campaigns_best_is_the_campaigns_own_reward(campaign, tmp_path, capsys):
    # objective "either" rewards the distance from the measured median (hit_likeness), not |score|:
    # of 10.0, 9.5 and 1.0 the 1.0 is farthest from the median 9.5
    db, first = campaign
    g = list(first["gene"][:3])
    res = tmp_path / "r.csv"
    res.write_text(f"gene,score\n{g[0]},10.0\n{g[1]},9.5\n{g[2]},1.0\n")
    assert main(["ingest", "--campaign", "ifng", str(res), "--db", db]) == 0
    assert "(round 1)" in capsys.readouterr().out
    again = tmp_path / "r2.csv"  # the same measurements in another file: nothing new, no round to name
    again.write_text(f"gene,score\n{g[2]},1.0\n{g[0]},10.0\n")
    assert main(["ingest", "--campaign", "ifng", str(again), "--db", db]) == 0
    out = capsys.readouterr().out
    assert "0 new measurement(s)" in out and "round" not in out
    assert main(["campaigns", "--db", db]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = dict(zip(lines[0].split(), re.split(r"\s{2,}", lines[1]), strict=True))
    assert row["best"] == f"{g[2]} (+1)"


def test_next_reads_a_candidates_file_with_a_header_and_blank_lines(tmp_path, capsys):
    """A library file as biologists keep it: a 'gene' header line and blank lines; the header is
    not a candidate, and the output says it was skipped."""
    cands = tmp_path / "library.txt"
    cands.write_text("gene\n\n" + "\n".join(CANDIDATES) + "\n  \n")
    db = str(tmp_path / "l.sqlite")
    assert main(["next", "--campaign", "c", "--goal", "find regulators of IFNG", "--candidates", str(cands),
                 "--designer", "random", "--batch", str(len(CANDIDATES)), "--db", db]) == 0
    out = capsys.readouterr().out
    assert set(_table(out)["gene"]) == set(CANDIDATES)
    assert f"candidates: {len(CANDIDATES)} gene(s) read from {cands} (first line 'gene' taken as a header" in out


def test_next_names_the_candidates_without_a_row_in_the_features(tmp_path, capsys):
    cands = tmp_path / "library.txt"
    cands.write_text("\n".join(CANDIDATES + ["NOTAGENE1"]) + "\n")
    feats = tmp_path / "feats.csv"
    feats.write_text("gene,f1,f2\n" + "".join(f"{g},{i},{-i}\n" for i, g in enumerate(CANDIDATES)))
    assert main(["next", "--campaign", "c", "--goal", "g", "--candidates", str(cands), "--features", str(feats),
                 "--designer", "random", "--batch", "2", "--db", str(tmp_path / "l.sqlite")]) == 0
    out = capsys.readouterr().out
    assert (f"candidates: {len(CANDIDATES) + 1} gene(s) read from {cands}; 1 without a row in {feats} "
            "(NOTAGENE1): they have no expression features (zeros, flagged 'missing').") in out
    assert main(["next", "--campaign", "c", "--batch", "2", "--db", str(tmp_path / "l.sqlite")]) == 0
    assert "candidates:" not in capsys.readouterr().out  # said once, when the campaign is made


def test_next_refuses_one_gene_in_two_cases(tmp_path, capsys):
    cands = tmp_path / "library.txt"
    cands.write_text("STAT1\nstat1\nIRF1\n")
    rc = main(["next", "--campaign", "c", "--goal", "g", "--candidates", str(cands),
               "--db", str(tmp_path / "l.sqlite")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: Duplicate candidates in different cases: STAT1 / stat1;")
    assert not (tmp_path / "l.sqlite").exists()


def test_next_says_when_earlier_rounds_are_not_measured(campaign, capsys):
    db, first = campaign
    assert main(["next", "--campaign", "ifng", "--batch", "2", "--db", db]) == 0
    out = capsys.readouterr().out
    assert ("note: 3 gene(s) proposed in round(s) 1 are not measured yet; this round was chosen without their "
            "results") in out


def test_ingest_of_the_same_library_file_after_the_next_round_adds_the_new_genes(campaign, tmp_path, capsys):
    db, first = campaign
    res = tmp_path / "screen.csv"
    res.write_text("gene,score\n" + "".join(f"{g},{i / 10}\n" for i, g in enumerate(CANDIDATES)))
    assert main(["ingest", "--campaign", "ifng", str(res), "--db", db]) == 0
    capsys.readouterr()
    assert main(["next", "--campaign", "ifng", "--batch", "2", "--db", db]) == 0
    assert "not measured yet" not in capsys.readouterr().out
    assert main(["ingest", "--campaign", "ifng", str(res), "--db", db]) == 0
    out = capsys.readouterr().out
    assert "2 new measurement(s) added to campaign 'ifng' (round 2); 3 already stored." in out
    assert "note: this file was ingested before; its rows of the genes proposed since were added." in out


def test_campaign_plot_that_cannot_be_written_is_one_line(campaign, tmp_path, capsys):
    db, _ = campaign
    (tmp_path / "afile").write_text("x")
    rc = main(["campaign", "ifng", "--db", db, "--plot", str(tmp_path / "afile" / "p.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0].startswith(f"error: Cannot write the plot {tmp_path / 'afile' / 'p.png'} (")
    assert err[0].endswith("); give --plot PATH in a writable folder.")


def test_ingest_names_the_proposed_genes_the_file_lacks(campaign, tmp_path, capsys):
    db, first = campaign
    genes = first["gene"].tolist()
    res = tmp_path / "partial.csv"
    res.write_text(f"gene,score\n{genes[0]},1.0\n")
    assert main(["ingest", "--campaign", "ifng", str(res), "--db", db]) == 0
    out = capsys.readouterr().out
    assert (f"still unmeasured: 2 proposed gene(s) of the campaign ({genes[1]} (round 1), {genes[2]} (round 1)): "
            "not in this file.") in out


@pytest.mark.parametrize(("args", "message"), [
    (["--candidates", "other.txt"], "1 not among them (NEW1)"),
    (["--features", "feats.csv"], "'feats.csv' would not be used"),
    (["--goal", "find regulators of IL2"], "start a new campaign for a new goal"),
])
def test_next_on_an_existing_campaign_never_ignores_what_it_cannot_use(campaign, tmp_path, capsys, args, message):
    # --candidates and --features of an existing campaign used to be ignored silently
    db, _ = campaign
    (tmp_path / "other.txt").write_text("\n".join([*CANDIDATES, "NEW1"]) + "\n")
    (tmp_path / "feats.csv").write_text("gene,a\n" + "".join(f"{g},1\n" for g in CANDIDATES))
    args = [str(tmp_path / a) if a.endswith((".txt", ".csv")) else a for a in args]
    message = message.replace("'feats.csv'", repr(str(tmp_path / "feats.csv")))
    rc = main(["next", "--campaign", "ifng", *args, "--designer", "random", "--batch", "2", "--db", db])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err
    # the campaign's own candidate file is its own set: the round is proposed
    assert main(["next", "--campaign", "ifng", "--candidates", str(tmp_path / "candidates.txt"),
                 "--designer", "random", "--batch", "2", "--db", db]) == 0


def test_campaign_states_hits_per_round_and_the_random_expectation_of_a_library(campaign, tmp_path, capsys):
    """A whole-library results file (the 6 candidates and 120 other genes): `ingest` says the library's
    scale, `campaign` says the scale, the random reference and per round the hits found vs expected."""
    import numpy as np

    db, first = campaign
    cand = {"STAT1": 5.0, "IRF1": -5.0, "JAK2": 0.1, "TBX21": 0.2, "GATA3": -0.1, "STAT4": 0.0}
    other = {f"LIB{i}": float(v) for i, v in enumerate(np.random.default_rng(0).normal(0, 1, 120))}
    res = tmp_path / "screen.csv"
    res.write_text("gene,score\n" + "".join(f"{g},{v}\n" for g, v in {**cand, **other}.items()))
    values = np.array(list(cand.values()) + list(other.values()))
    med = float(np.median(values))
    scale = 1.4826 * float(np.median(np.abs(values - med)))
    hit = {g: abs(v - med) / scale >= 2 for g, v in cand.items()}
    n_hits = int((np.abs(values - med) / scale >= 2).sum())
    share = sum(hit.values()) / 6
    assert main(["ingest", "--campaign", "ifng", str(res), "--db", db]) == 0
    out = capsys.readouterr().out
    assert f"library: 126 genes with a score in this file, median {med:.3g}, robust SD {scale:.3g}" in out
    assert main(["next", "--campaign", "ifng", "--designer", "random", "--batch", "2", "--db", db]) == 0
    second = _table(capsys.readouterr().out)["gene"].tolist()
    assert main(["ingest", "--campaign", "ifng", str(res), "--db", db]) == 0
    capsys.readouterr()
    assert main(["campaign", "ifng", "--db", db, "--plot", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"scale: library of 126 genes (screen.csv): median {med:.3g}, robust SD {scale:.3g} (1.4826·MAD) of " \
           "score; fixed across rounds." in out
    ref = next(ln for ln in out if ln.startswith("random reference:"))
    assert (f"{sum(hit.values())} of the 6 genes of screen.csv that are candidates are hits (share "
            f"{100 * share:.2f}%; the whole library: {n_hits} of 126)") in ref
    h0 = sum(hit[g] for g in first["gene"])
    h1 = sum(hit[g] for g in second)
    assert (f"round 1: 3 of 3 measured, {h0} hit{'s' if h0 != 1 else ''} (random batch of 3: {3 * share:.2f} "
            f"expected); so far {h0} hit{'s' if h0 != 1 else ''} vs {3 * share:.2f} expected") in "\n".join(out)
    assert (f"round 2: 2 of 2 measured, {h1} hit{'s' if h1 != 1 else ''} (random batch of 2: {2 * share:.2f} "
            f"expected); so far {h0 + h1} hit{'s' if h0 + h1 != 1 else ''} vs {5 * share:.2f} expected") \
        in "\n".join(out)


def test_a_file_of_only_the_proposed_genes_is_said_to_give_no_library(campaign, tmp_path, capsys, monkeypatch):
    """Results of the proposed genes only: `ingest` says there is no library, `campaign` that the scale is
    the measured proposals' and that there is no random reference, and so does the plot."""
    import scagents.campaign.ledger as L

    db, first = campaign
    res = tmp_path / "results.csv"
    res.write_text("gene,score\n" + "".join(f"{g},{v}\n" for g, v in zip(first["gene"], (2.0, -1.0, 0.1),
                                                                          strict=True)))
    assert main(["ingest", "--campaign", "ifng", str(res), "--db", db]) == 0
    assert ("scale: this file holds 3 gene(s) with a score, 3 of them proposed: no library"
            in capsys.readouterr().out)
    seen = {}
    real = L._campaign_figure
    monkeypatch.setattr(L, "_campaign_figure", lambda *a, **k: seen.setdefault("fig", real(*a, **k)))
    assert main(["campaign", "ifng", "--db", db, "--plot", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out
    assert "\nscale: measured proposals only (median 0.1, robust SD 1.63 of the 3 measured score values" in out
    assert "\nno random reference: no ingested file held a library to count hits in." in out
    assert "\nround 1: 3 of 3 measured, 0 hits; so far 0 hits (no random reference).\n" in out
    scatter, hits, _ = seen["fig"].axes
    assert "scale: measured proposals only" in scatter.get_title()
    assert "no random reference" in hits.get_title()
    assert not [ln for ln in hits.lines if ln.get_label() == "random batches (expected)"]


def test_campaigns_ranks_and_counts_on_the_scale_campaign_uses(campaign, tmp_path, capsys):
    """With a library file, `campaigns` ranks "best" and counts hits on the library scale, as `campaign`
    does: of the measured 10.0, 9.5 and 1.0 ("either"), 1.0 is farthest from the measured median (9.5)
    but 10.0 is farthest from the library's median (about 0), and both large values are hits there."""
    import numpy as np

    db, first = campaign
    g = list(first["gene"])
    other = {f"LIB{i}": float(v) for i, v in enumerate(np.random.default_rng(1).normal(0, 1, 150))}
    res = tmp_path / "screen.csv"
    res.write_text("gene,score\n" + "".join(f"{k},{v}\n" for k, v in {g[0]: 10.0, g[1]: 9.5, g[2]: 1.0,
                                                                      **other}.items()))
    assert main(["ingest", "--campaign", "ifng", str(res), "--db", db]) == 0
    capsys.readouterr()
    assert main(["campaign", "ifng", "--db", db, "--plot", str(tmp_path / "p.png")]) == 0
    text = capsys.readouterr().out
    so_far = re.search(r"so far (\d+) hits? vs ([0-9.]+) expected", text)
    assert so_far is not None and so_far.group(1) == "2"
    assert main(["campaigns", "--db", db]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = dict(zip(lines[0].split(), re.split(r"\s{2,}", lines[1]), strict=True))
    assert row["best"] == f"{g[0]} (+10)"
    assert row["hits"] == f"{so_far.group(1)} (random {so_far.group(2)})"


def test_every_output_names_the_first_round_1(campaign, tmp_path, capsys, monkeypatch):
    """`next`, `ingest`, `campaign` (text and plot) and a results file's round column all count rounds
    from 1, as a biologist reads them; the ledger keeps storing them from 0 (no migration)."""
    import sqlite3

    import scagents.campaign.ledger as L

    db, first = campaign
    assert first["round"].tolist() == ["1"] * 3
    res = tmp_path / "r.csv"
    res.write_text("gene,score,round\n" + "".join(f"{g},{v},1\n" for g, v in zip(first["gene"], (2.0, -1.0, 0.1),
                                                                                 strict=True)))
    assert main(["ingest", "--campaign", "ifng", str(res), "--db", db]) == 0
    assert "3 new measurement(s) added to campaign 'ifng' (round 1)" in capsys.readouterr().out
    assert main(["next", "--campaign", "ifng", "--designer", "random", "--batch", "2", "--db", db]) == 0
    second = _table(capsys.readouterr().out)
    assert second["round"].tolist() == ["2"] * 2
    assert main(["next", "--campaign", "ifng", "--designer", "random", "--batch", "1", "--db", db]) == 0
    assert "proposed in round(s) 2 are not measured yet" in capsys.readouterr().out
    wrong = tmp_path / "w.csv"  # a round-2 gene said to be of round 1
    wrong.write_text(f"gene,score,round\n{second['gene'][0]},1.0,1\n")
    assert main(["ingest", "--campaign", "ifng", str(wrong), "--db", db]) == 2
    assert f"{second['gene'][0]} (file 1, proposed in 2)" in capsys.readouterr().err
    seen = {}
    real = L._campaign_figure
    monkeypatch.setattr(L, "_campaign_figure", lambda *a, **k: seen.setdefault("fig", real(*a, **k)))
    assert main(["campaign", "ifng", "--db", db, "--plot", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out
    assert "\nround 1 (random): " in out and "\nround 3 (random): " in out and "round 0" not in out
    assert "\nround 1: 3 of 3 measured, " in out and "\nround 2: 2 proposed, not measured yet." in out
    table = _table(out)
    assert sorted(set(table["round"])) == ["1", "2", "3"]
    for ax in seen["fig"].axes:
        assert list(ax.get_xticks()) == [1, 2, 3]
    con = sqlite3.connect(db)
    assert sorted(r[0] for r in con.execute("SELECT DISTINCT round FROM proposals")) == [0, 1, 2]
    con.close()


def test_next_table_prints_floating_point_noise_as_zero():
    import pandas as pd

    from scagents.cli import format_proposals

    df = pd.DataFrame({"round": [1, 1], "rank": [1, 2], "gene": ["A", "B"], "score": [1.234567, 4.163336e-17],
                       "uncertainty": [0.0, 0.5], "rationale": ["x", "x"]})
    text = format_proposals(df)
    assert "e-17" not in text and "1.235" in text
    assert df["score"].iloc[1] == 4.163336e-17  # the data are untouched


def test_a_conflicting_file_scored_on_another_column_names_both_and_the_option(campaign, tmp_path, capsys):
    db, first = campaign
    genes = first["gene"].tolist()
    head = "Gene\tsgRNA\tday7|beta\tday7|z\tday7|p-value\tday14|beta\tday14|z\tday14|p-value\n"
    rows = "".join(f"{g}\t4\t{i}\t{2 * i}\t0.1\t{-i - 1}\t{-2 * i}\t0.1\n" for i, g in enumerate(genes))
    a, b = tmp_path / "a.gene_summary.txt", tmp_path / "b.gene_summary.txt"
    a.write_text(head + rows)
    b.write_text(head + rows + "NOTPROPOSED\t4\t0\t0\t0.1\t0\t0\t0.1\n")  # another file, same genes
    assert main(["ingest", "--campaign", "ifng", str(a), "--db", db, "--score-column", "day14|beta"]) == 0
    capsys.readouterr()
    assert main(["ingest", "--campaign", "ifng", str(b), "--db", db, "--score-column", "day7|beta"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already have a different measurement" in err[0]
    assert "day14|beta" in err[0] and "day7|beta" in err[0] and "--score-column" in err[0]
