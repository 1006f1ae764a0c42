"""A closed-loop campaign against the digital twin: propose, "measure", ingest, repeat.

Run from the repository root (or with scagents installed)::

    python examples/closed_loop_twin.py --rounds 4 --batch 3

The twin plays the laboratory. The campaign looks for the genes whose knockout lowers IFNG most
("decrease" makes the objective signed): each round the designer proposes ``--batch`` candidate
genes (``scagents next`` does the same from the command line), the twin simulates their knockouts,
the change of IFNG from control is written to a ``gene,score`` results file and ingested
(``scagents ingest``). Candidate features are each gene's mean and variance in simulated control
cells. The ledger (SQLite) keeps every round; the progress table and plot are written at the end
(``scagents campaign NAME``, ``scagents campaigns``). Runs offline, in well under a minute.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import scagents  # noqa: E402
from scagents.api import filter_dependency_warnings  # noqa: E402
from scagents.campaign import (  # noqa: E402
    campaign_summaries,
    create_campaign,
    history,
    ingest,
    plot_campaign,
    propose_round,
)

READOUT = "IFNG"


def lognorm(adata):
    scagents.pp.lognormalize(adata)
    x = adata.layers["lognorm"]
    return x.toarray() if hasattr(x, "toarray") else x


def measure(net, genes: list[str], *, n_cells: int, seed: int) -> dict[str, float]:
    """The 'experiment': change of IFNG from control after each knockout, on the twin."""
    mdata = scagents.tl.simulate(net, perturbations=[None, *[scagents.Perturbation((g,)) for g in genes]],
                                 n_cells=n_cells, seed=seed)
    rna = mdata["rna"].copy()
    x = lognorm(rna)
    labels = rna.obs["perturbation"].astype(str).to_numpy()
    j = list(rna.var_names).index(READOUT)
    control = x[labels == "control", j].mean()
    return {g: float(x[labels == g, j].mean() - control) for g in genes}


def main(argv: list[str] | None = None) -> int:
    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="scagents_closed_loop", help="ledger, results, plot")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batch", type=int, default=3)
    parser.add_argument("--designer", default="ridge_ucb", help="policy, ridge_ucb, gp_ucb, random")
    parser.add_argument("--n-cells", type=int, default=100, help="cells per simulated condition")
    args = parser.parse_args(argv)

    filter_dependency_warnings()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    db, name = work / "ledger.sqlite", "ifng_down"
    net = scagents.tl.load_model("th")
    candidates = [g for g in net.genes if g not in net.inputs and g != READOUT]
    control = scagents.tl.simulate(net, perturbations=[None], n_cells=args.n_cells, seed=0)["rna"].copy()
    x = lognorm(control)
    features = pd.DataFrame({"mean": x.mean(0), "var": x.var(0)}, index=control.var_names)
    if name not in {row["campaign"] for row in (campaign_summaries(db) if db.exists() else [])}:
        create_campaign(db, name, goal=f"decrease {READOUT}", candidates=candidates,
                        features=features.loc[candidates])
    for r in range(args.rounds):
        proposed = propose_round(db, name, batch=args.batch, designer=args.designer, seed=r,
                                 n_rounds=args.rounds)
        genes = proposed["gene"].tolist()
        if not genes:
            print("every candidate has been tested")
            break
        rnd = int(proposed["round"].iloc[0])  # the round as the ledger names it to users (1 for the first)
        scores = measure(net, genes, n_cells=args.n_cells, seed=100 + r)
        results = work / f"round{rnd}_results.csv"
        results.write_text("gene,score\n" + "".join(f"{g},{s:.4f}\n" for g, s in scores.items()))
        summary = ingest(db, name, results)
        print(f"round {rnd}: proposed {', '.join(genes)}; measured {READOUT} change "
              + ", ".join(f"{g} {s:+.2f}" for g, s in scores.items())
              + f" ({summary.n_new} new)")
    table = history(db, name)
    print(table[["round", "rank", "gene", "measured", "reward"]].round(3).to_string(index=False))
    best = table.dropna(subset=["measured"]).sort_values("measured").head(3)
    print(f"strongest {READOUT} decrease so far: "
          + ", ".join(f"{g} {v:+.2f}" for g, v in zip(best["gene"], best["measured"], strict=True)))
    print(f"plot: {plot_campaign(db, name, work / f'{name}_progress.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
