"""scagents from Python, in scanpy's style: the agent graph on an AnnData in memory.

Run from the repository root (or with scagents installed)::

    python examples/python_api.py                          # a small screen simulated on the twin
    python examples/python_api.py --data my_screen.h5ad --goal "predict STAT1 knockout"

Without ``--data`` the screen is simulated on the embedded digital twin (T-helper model: control
cells and eight knockouts, 60 cells each) and stripped to what a user's file holds — counts and one
``.obs`` column naming the perturbation. ``scagents.run`` then runs the same agents as
``python -m scagents run`` and writes its answer back into the object: ``adata.varm["scagents"]``
(predicted change per gene) and ``adata.uns["scagents"]`` (goal, method, validation, check, run id,
seed, version). Nothing needs a network connection or an API key.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import scagents  # noqa: E402

KNOCKOUTS = ["IFNG", "STAT1", "GATA3", "TBX21", "STAT4", "SOCS1", "JAK1", "IL4R"]


def twin_screen(n_cells: int, seed: int = 0):
    """Control cells and eight knockouts on the twin, as a user's AnnData would hold them."""
    import anndata as ad
    import pandas as pd

    net = scagents.tl.load_model("th")
    mdata = scagents.tl.simulate(
        net, perturbations=[None, *[scagents.Perturbation((g,)) for g in KNOCKOUTS]],
        n_cells=n_cells, seed=seed)
    rna = mdata["rna"]
    obs = pd.DataFrame({"perturbation": rna.obs["perturbation"].astype(str).to_numpy()},
                       index=rna.obs_names)
    return ad.AnnData(X=rna.X.copy(), obs=obs, var=pd.DataFrame(index=rna.var_names))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help=".h5ad file (default: a twin screen)")
    parser.add_argument("--goal", default="predict STAT1 knockout")
    parser.add_argument("--out", default=None, help="run folder (default: under ./scagents_runs)")
    parser.add_argument("--n-cells", type=int, default=60, help="cells per twin condition")
    parser.add_argument("--policy-steps", type=int, default=12_000,
                        help="environment steps of the policy's first training")
    args = parser.parse_args(argv)

    adata = scagents.pp.read(args.data) if args.data else twin_screen(args.n_cells)
    print(adata)
    res = scagents.run(adata, goal=args.goal, out=args.out, policy_steps=args.policy_steps,
                       quiet=False)
    print(res)
    print(res.headline)
    table = adata.varm["scagents"].dropna(subset=["delta"]).sort_values("delta")
    print("strongest predicted decreases:\n", table.head(5).round(3).to_string())
    print("strongest predicted increases:\n", table.tail(5).round(3).to_string())
    info = adata.uns["scagents"]
    print(f"answered by {info['method']} ({info['status']}); check: "
          + ", ".join(f"{k} {v:.3f}" for k, v in info["check"].get("metrics", {}).items()))
    png = scagents.pl.prediction(adata, path=res.out / "prediction_from_python.png")
    print(f"plot: {png}")
    again = scagents.RunResult.load(res.out)  # any finished run, later, from its folder
    print(f"reloaded {again.run_id}: {len(again.predicted)} genes, report {again.files['markdown']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
