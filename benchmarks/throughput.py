"""Throughput race: scagents' PPO / TRPO against Stable-Baselines3 PPO and sb3-contrib TRPO.

Task: the twin perturbation-response task (``ResponseTask.from_twin("th")``: obs 62, action 48,
one-step episodes). Every measurement runs in a fresh subprocess with ``torch.set_num_threads(1)``
and ``OMP_NUM_THREADS=MKL_NUM_THREADS=OPENBLAS_NUM_THREADS=1``. For each seed the rows run one after
the other (A, B, C, A, B, C, …) so that the drifting load of a shared machine hits every library.

Every run trains for a wall-time budget (``--budget``, evaluation time excluded) and evaluates
its deterministic policy every ``--eval-every`` training seconds with one function used for every
library: the task's weighted MSE (``-reward``) on a fixed set of (cell, perturbation) pairs. The
report gives

* env-steps per second over the whole ``learn()`` / ``train()`` call, updates included;
* wall time (training only) to first reach the target error, where the target is the median final
  error of SB3 PPO with its defaults (and, second, half of the "no change" error).

Networks: SB3 gets ``net_arch=dict(pi=[NET], vf=[NET])`` with tanh, and scagents' rows get
``hidden_sizes=NET`` with ``modality_slices={"obs": slice(0, 62)}`` (one observation block, so no
modality branch). Each run records the layers and parameter counts of the network it actually
trained (:func:`network_record`), and the report's sentence on the networks is built from these
records; ``--describe-networks`` adds them to a results file written before runs recorded them, by
building each row's network with the same code as the runs (one update for scagents' rows, no
training for SB3's).

Usage::

    python benchmarks/throughput.py            # 3 seeds × 13 rows, 15 s each: ~20 min on 2 cores
    python benchmarks/throughput.py --quick    # 1 seed, short budgets (~1 min smoke run)
    python benchmarks/throughput.py --describe-networks  # add the network records to the saved .json
    python benchmarks/throughput.py --render   # rewrite the .md from the saved .json

Writes ``benchmarks/results/throughput.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._util import load_record, machine, machine_line_of, median, write_results  # noqa: E402

N_EVAL_CELLS = 64
NET = (256, 256)

# ---------------------------------------------------------------------------------- the rows
# "defaults": each library with its own recommended settings; "matched": identical settings.
MATCHED_PPO = {"n_envs": 64, "n_steps": 64, "n_epochs": 4, "batch_size": 1024}
MATCHED_TRPO = {"n_envs": 64, "n_steps": 64, "n_critic_updates": 5, "batch_size": 1024, "cg_iters": 10}
ROWS: list[dict] = [
    # PPO: SB3 defaults (rollout 2048 = 8 envs × 256, minibatch 64, 10 epochs) vs our defaults
    {"name": "sb3_ppo/defaults", "lib": "sb3", "algo": "ppo", "vec": "dummy",
     "n_envs": 8, "n_steps": 256, "n_epochs": 10, "batch_size": 64},
    {"name": "ours_ppo/defaults", "lib": "ours", "algo": "ppo", "vec": "batched", "n_envs": 256},
    # our settings for response tasks (scagents.evaluation.default_train_config: per-gene rewards,
    # small initial σ, γ = 0), once as they are and once with one scalar reward like SB3's
    {"name": "ours_ppo/response", "lib": "ours", "algo": "ppo", "vec": "batched", "n_envs": 256,
     "preset": "response"},
    {"name": "ours_ppo/response_scalar", "lib": "ours", "algo": "ppo", "vec": "batched", "n_envs": 256,
     "preset": "response", "overrides": {"reward_components": False}},
    # the same with one PPO epoch over 16 minibatches: chosen among (epochs, minibatches) = (2, 16),
    # (2, 8), (2, 4), (1, 16), (1, 8) on one 8 s probe (seed 0) of this task before this run
    {"name": "ours_ppo/response_fast", "lib": "ours", "algo": "ppo", "vec": "batched", "n_envs": 256,
     "preset": "response", "overrides": {"ppo_epochs": 1, "n_minibatches": 16}},
    # SB3 PPO defaults given the same initial σ and γ as our response settings
    {"name": "sb3_ppo/defaults+sigma", "lib": "sb3", "algo": "ppo", "vec": "dummy",
     "n_envs": 8, "n_steps": 256, "n_epochs": 10, "batch_size": 64, "log_std_init": -2.0, "gamma": 0.0,
     "gae_lambda": 0.0},
    # PPO with identical settings; SB3 once through DummyVecEnv, once through our batched env
    {"name": "sb3_ppo/matched", "lib": "sb3", "algo": "ppo", "vec": "dummy", **MATCHED_PPO},
    {"name": "sb3_ppo/matched+batched_env", "lib": "sb3", "algo": "ppo", "vec": "batched", **MATCHED_PPO},
    {"name": "ours_ppo/matched", "lib": "ours", "algo": "ppo", "vec": "batched", **MATCHED_PPO},
    # TRPO: sb3-contrib defaults (rollout 2048, critic minibatch 128, 10 critic epochs, 15 CG)
    {"name": "sb3_trpo/defaults", "lib": "sb3", "algo": "trpo", "vec": "dummy", "n_envs": 8, "n_steps": 256},
    {"name": "ours_trpo/defaults", "lib": "ours", "algo": "trpo", "vec": "batched", "n_envs": 256},
    {"name": "sb3_trpo/matched", "lib": "sb3", "algo": "trpo", "vec": "dummy", **MATCHED_TRPO},
    {"name": "ours_trpo/matched", "lib": "ours", "algo": "trpo", "vec": "batched", **MATCHED_TRPO},
]
RATIOS = [  # (ours, reference)
    ("ours_ppo/response", "sb3_ppo/defaults"),
    ("ours_ppo/response_fast", "sb3_ppo/defaults"),
    ("ours_ppo/response_fast", "sb3_ppo/defaults+sigma"),
    ("ours_ppo/response", "sb3_ppo/defaults+sigma"),
    ("ours_ppo/response_scalar", "sb3_ppo/defaults"),
    ("ours_ppo/defaults", "sb3_ppo/defaults"),
    ("ours_ppo/matched", "sb3_ppo/matched"),
    ("ours_ppo/matched", "sb3_ppo/matched+batched_env"),
    ("ours_ppo/defaults", "sb3_ppo/matched+batched_env"),
    ("ours_trpo/defaults", "sb3_trpo/defaults"),
    ("ours_trpo/matched", "sb3_trpo/matched"),
]


# ---------------------------------------------------------------------------------- evaluation
class Evaluator:
    """The one evaluation used for every library: weighted MSE of the deterministic action."""

    def __init__(self, task):
        from scagents.envs.response import _ResponseCore

        core = _ResponseCore(task)
        n_p, n_c = task.n_perturbations, min(N_EVAL_CELLS, task.n_cells)
        pi = np.repeat(np.arange(n_p), n_c)
        ci = np.tile(np.arange(n_c), n_p)
        self.obs = core.observe(ci, pi, 0)
        self.core, self.pi = core, pi
        self.no_change = self(lambda obs: np.zeros((len(obs), core.act_dim), np.float32))

    def __call__(self, act_fn) -> float:
        actions = np.asarray(act_fn(self.obs), dtype=np.float32)
        return float(-self.core.reward(actions, self.pi, 0).mean())


class Clock:
    """Training wall time with evaluation time taken out; evaluates every ``every`` seconds."""

    def __init__(self, evaluator: Evaluator, every: float, budget: float, max_steps: int):
        self.evaluator, self.every, self.budget, self.max_steps = evaluator, every, budget, max_steps
        self.start = time.perf_counter()
        self.eval_s = 0.0
        self.next_eval = 0.0
        self.curve: list[tuple[float, int, float]] = []

    def train_time(self) -> float:
        return time.perf_counter() - self.start - self.eval_s

    def tick(self, steps: int, act_fn) -> bool:
        """Evaluate when due; return ``False`` when the budget is spent."""
        t = self.train_time()
        if t >= self.next_eval:
            t0 = time.perf_counter()
            self.curve.append((t, steps, self.evaluator(act_fn)))
            self.eval_s += time.perf_counter() - t0
            self.next_eval = t + self.every
        return t < self.budget and steps < self.max_steps


# ---------------------------------------------------------------------------------- SB3 adapter
def sb3_batched_adapter(venv):
    """A thin SB3 ``VecEnv`` over a gymnasium ``VectorEnv`` with SAME_STEP autoreset.

    It does what SB3's ``DummyVecEnv`` does per step (reset obs on done, ``terminal_observation``
    and ``TimeLimit.truncated`` in each env's info dict), but with one batched ``step`` call.
    """
    from stable_baselines3.common.vec_env import VecEnv

    class BatchedVecEnv(VecEnv):
        def __init__(self):
            super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
            self._actions = None
            self._seed = None

        def reset(self):
            obs, _ = venv.reset(seed=self._seed)
            self._seed = None
            return obs

        def step_async(self, actions):
            self._actions = actions

        def step_wait(self):
            obs, rew, term, trunc, info = venv.step(self._actions)
            dones = term | trunc
            infos = [{} for _ in range(self.num_envs)]
            if dones.any():
                final = info.get("final_obs")
                for i in np.flatnonzero(dones):
                    infos[i]["terminal_observation"] = final[i]
                    infos[i]["TimeLimit.truncated"] = bool(trunc[i] and not term[i])
            return obs, rew.astype(np.float32), dones, infos

        def seed(self, seed=None):
            self._seed = seed
            return [seed] * self.num_envs

        def close(self):
            pass

        def get_attr(self, attr_name, indices=None):
            return [getattr(venv, attr_name)] * len(self._get_indices(indices))

        def set_attr(self, attr_name, value, indices=None):
            setattr(venv, attr_name, value)

        def env_method(self, method_name, *args, indices=None, **kwargs):
            return [getattr(venv, method_name)(*args, **kwargs)]

        def env_is_wrapped(self, wrapper_class, indices=None):
            return [False] * len(self._get_indices(indices))

    return BatchedVecEnv()


# ---------------------------------------------------------------------------------- one run
def run_one(row: dict, seed: int, task_path: str, budget: float, eval_every: float, max_steps: int) -> dict:
    import torch

    torch.set_num_threads(1)
    # one-time process costs (the first optimizer builds torch's compile machinery, ~seconds) are
    # paid here, before any clock starts, for every library alike
    w = torch.nn.Parameter(torch.zeros(4))
    torch.nn.functional.tanh(w).sum().backward()
    torch.optim.Adam([w], fused=True).step()
    torch.optim.Adam([w]).step()
    import tqdm.auto  # noqa: F401  (scagents' progress bar; imported by train())

    from scagents.envs.response import PerturbationResponseVecEnv

    with open(task_path, "rb") as fh:
        task = pickle.load(fh)  # noqa: S301 - the parent process wrote this temporary file
    evaluator = Evaluator(task)
    n_envs = row["n_envs"]
    if row["lib"] == "ours":
        from scagents.policies import train

        env = PerturbationResponseVecEnv(task, num_envs=n_envs)
        cfg = our_config(row, seed, max_steps)
        clock = None
        start_steps = [0]

        def callback(r, policy):
            return clock.tick(int(r["step"]), policy.predict)

        clock = Clock(evaluator, eval_every, budget, max_steps)
        clock.tick(0, lambda o: np.zeros((len(o), evaluator.core.act_dim), np.float32))
        policy, log = train(env, cfg, progress=False, callback=callback, modality_slices=our_slices(env))
        train_s = clock.train_time()
        network = our_network_record(policy)
        steps = int(log.rows[-1]["step"]) - start_steps[0]
        settings = {k: getattr(cfg, k) for k in ("n_steps", "ppo_epochs", "n_minibatches", "vf_epochs",
                                                 "cg_iters", "fvp_fraction", "lr", "init_log_std", "gamma",
                                                 "reward_components", "critic_init_gain")}
        settings["n_envs"] = n_envs
        final_fn = policy.predict
    else:
        from stable_baselines3.common.callbacks import BaseCallback

        model, pk = sb3_model(row, task, seed)
        network = sb3_network_record(model)
        act_fn = lambda obs: model.predict(obs, deterministic=True)[0]  # noqa: E731

        class Tick(BaseCallback):
            def _on_step(self) -> bool:
                return clock.tick(int(self.model.num_timesteps), act_fn)

        clock = Clock(evaluator, eval_every, budget, max_steps)
        clock.tick(0, act_fn)
        model.learn(total_timesteps=max_steps, callback=Tick())
        train_s = clock.train_time()
        steps = int(model.num_timesteps)
        settings = {k: getattr(model, k, None) for k in ("n_steps", "batch_size", "n_epochs", "n_critic_updates",
                                                          "cg_max_steps", "learning_rate", "gamma")}
        settings["log_std_init"] = pk.get("log_std_init", 0.0)
        settings["n_envs"] = n_envs
        final_fn = act_fn
    final = evaluator(final_fn)
    return {"row": row["name"], "seed": seed, "steps": steps, "train_s": train_s, "sps": steps / train_s,
            "final_mse": final, "no_change_mse": evaluator.no_change, "curve": clock.curve,
            "settings": settings, "network": network}


# ---------------------------------------------------------------------------------- the networks
def our_slices(env) -> dict:
    """One observation block: scagents' rows run without modality branches."""
    return {"obs": slice(0, env.single_observation_space.shape[0])}


def our_config(row: dict, seed: int, max_steps: int):
    """The :class:`~scagents.policies.TrainConfig` of one of scagents' rows."""
    from scagents.policies import TrainConfig

    kw = {"algo": row["algo"], "seed": seed, "total_steps": max_steps, "hidden_sizes": NET, "torch_threads": 1}
    if row.get("preset") == "response":  # scagents' settings for response tasks (the ablation's)
        from scagents.evaluation import default_train_config

        return default_train_config(**kw, **row.get("overrides", {}))
    if "n_steps" in row:  # matched settings; otherwise TrainConfig's defaults
        kw["n_steps"] = row["n_steps"]
        kw["n_minibatches"] = row["n_envs"] * row["n_steps"] // row["batch_size"]
        if row["algo"] == "ppo":
            kw["ppo_epochs"] = row["n_epochs"]
        else:
            kw.update(vf_epochs=row["n_critic_updates"], cg_iters=row["cg_iters"], fvp_fraction=1.0,
                      backtrack_coeff=0.8)
    return TrainConfig(**kw)


def sb3_model(row: dict, task, seed: int):
    """The SB3 / sb3-contrib model of one of SB3's rows and its ``policy_kwargs``."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    from scagents.envs.response import PerturbationResponseEnv, PerturbationResponseVecEnv

    n_envs = row["n_envs"]
    if row["vec"] == "dummy":
        venv = make_vec_env(lambda: PerturbationResponseEnv(task), n_envs=n_envs, seed=seed)
    else:
        venv = sb3_batched_adapter(PerturbationResponseVecEnv(task, num_envs=n_envs))
    pk = {"net_arch": {"pi": list(NET), "vf": list(NET)}, "activation_fn": torch.nn.Tanh}
    if "log_std_init" in row:
        pk["log_std_init"] = row["log_std_init"]
    if row["algo"] == "ppo":
        extra = {k: row[k] for k in ("gamma", "gae_lambda") if k in row}
        return PPO("MlpPolicy", venv, n_steps=row["n_steps"], batch_size=row["batch_size"],
                   n_epochs=row["n_epochs"], policy_kwargs=pk, device="cpu", seed=seed, **extra), pk
    from sb3_contrib import TRPO

    kw = {}
    if "batch_size" in row:
        kw = {"batch_size": row["batch_size"], "n_critic_updates": row["n_critic_updates"],
              "cg_max_steps": row["cg_iters"]}
    return TRPO("MlpPolicy", venv, n_steps=row["n_steps"], policy_kwargs=pk, device="cpu", seed=seed, **kw), pk


def network_record(actor: list, critic: list, n_params: int, extra: dict | None = None) -> dict:
    """Layers and parameter count of an actor-critic, read from its modules.

    Parameters
    ----------
    actor, critic
        The modules on the path from the observation to the action mean / the value, in order.
    n_params
        Number of parameters of the whole network (log-std included).
    extra
        Other fields to record.

    Returns
    -------
    dict
        ``actor`` / ``critic`` (``"62→256→256→48"`` for a chain of linear layers, else the layers
        ``"in→out"`` joined by ``", "``), ``activations`` (names of the activation modules on
        both paths) and ``params``.
    """
    import torch

    def path(mods: list) -> tuple[str, set[str]]:
        lin, acts = [], set()
        for mod in mods:
            for m in mod.modules():
                if isinstance(m, torch.nn.Linear):
                    lin.append((m.in_features, m.out_features))
                elif not list(m.children()) and not isinstance(m, (torch.nn.Identity, torch.nn.Flatten)):
                    acts.add(type(m).__name__)
        chain = all(a[1] == b[0] for a, b in zip(lin, lin[1:], strict=False))
        text = "→".join([str(lin[0][0])] + [str(o) for _, o in lin]) if chain and lin else \
            ", ".join(f"{i}→{o}" for i, o in lin)
        return text, acts

    a, acts_a = path(actor)
    c, acts_c = path(critic)
    return {"actor": a, "critic": c, "activations": sorted(acts_a | acts_c), "params": int(n_params), **(extra or {})}


def our_network_record(policy) -> dict:
    """:func:`network_record` of a scagents ``ActorCritic``."""
    import torch

    branches = sum(not isinstance(b, torch.nn.Identity) for b in policy.actor_body.branches.values())
    return network_record([policy.actor_body, policy.actor_head], [policy.critic_body, policy.critic_head],
                          sum(p.numel() for p in policy.parameters()),
                          {"modality_branches": int(branches), "value_outputs": int(policy.value_dim)})


def sb3_network_record(model) -> dict:
    """:func:`network_record` of an SB3 ``ActorCriticPolicy`` (features extractor: flatten)."""
    pol = model.policy
    return network_record([pol.mlp_extractor.policy_net, pol.action_net], [pol.mlp_extractor.value_net, pol.value_net],
                          sum(p.numel() for p in pol.parameters()),
                          {"modality_branches": 0, "value_outputs": int(pol.value_net.out_features)})


def describe_networks(rows: list[dict], task) -> dict:
    """Build each row's network as its run does, without the run: one update for scagents' rows
    (``train`` builds the network inside), none for SB3's; return ``{row name: network_record}``."""
    import dataclasses

    from scagents.envs.response import PerturbationResponseVecEnv
    from scagents.policies import train

    out = {}
    for row in rows:
        if row["lib"] == "ours":
            env = PerturbationResponseVecEnv(task, num_envs=row["n_envs"])
            cfg = dataclasses.replace(our_config(row, 0, 1), total_steps=1)
            policy, _ = train(env, cfg, progress=False, modality_slices=our_slices(env))
            out[row["name"]] = our_network_record(policy)
        else:
            out[row["name"]] = sb3_network_record(sb3_model(row, task, 0)[0])
    return out


def networks_text(summary: dict) -> str:
    """The report's sentence on the networks, from each row's network record."""
    recs = {name: s.get("network") for name, s in summary.items()}
    if not all(recs.values()):
        return "Network shapes not recorded (run with --describe-networks)."
    groups: dict[str, list[str]] = {}
    for name, r in recs.items():
        desc = (f"actor {r['actor']}, critic {r['critic']}"
                + (" (one value per reward component)" if r["value_outputs"] > 1 else "")
                + (f", {r['modality_branches']} modality branches" if r["modality_branches"] else "")
                + f", {'/'.join(a.lower() for a in r['activations'])}; {r['params']:,} parameters")
        groups.setdefault(desc, []).append(name)
    after = any(r.get("source") for r in recs.values())
    return ("Networks (read from the modules " + ("built by `--describe-networks` with this script's code after "
            "the run, which did not record them" if after else "each run trained") + "): "
            + "; ".join(f"{', '.join(names)}: {desc}" for desc, names in groups.items()) + ".")


def _worker(args) -> None:
    spec = json.loads(args.worker)
    row = next(r for r in ROWS if r["name"] == spec["row"])
    res = run_one(row, spec["seed"], spec["task"], spec["budget"], spec["eval_every"], spec["max_steps"])
    print("RESULT " + json.dumps(res))


# ---------------------------------------------------------------------------------- driver
def time_to(curve: list, target: float) -> float | None:
    for t, _, err in curve:
        if err <= target:
            return t
    return None


def run_subprocess(spec: dict) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
                         capture_output=True, text=True, env=env, cwd=str(ROOT))
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"run {spec} failed:\n{out.stderr[-3000:]}")


def censored_median(times: list) -> float | None:
    """Median time to a target over seeds, a run that never reached it counting as +∞;
    ``None`` when the median itself is not reached (most runs never got there)."""
    v = median([float("inf") if t is None else t for t in times])
    return None if v == float("inf") else v


def speedup_text(r: dict, key: str) -> str:
    """``12.3×``, ``≥ 13.5×`` (reference never reached it within the budget) or ``n/a``."""
    if r.get(f"time_to_{key}_speedup") is not None:
        return f"{r[f'time_to_{key}_speedup']:.3g}×"
    if r.get(f"time_to_{key}_speedup_at_least") is not None:
        return f"≥ {r[f'time_to_{key}_speedup_at_least']:.3g}×"
    return "n/a"


def fmt(x, spec=".3g"):
    return "n/a" if x is None else format(x, spec)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--budget", type=float, default=15.0, help="training seconds per run (evaluation excluded)")
    p.add_argument("--eval-every", type=float, default=0.25)
    p.add_argument("--max-steps", type=int, default=20_000_000)
    p.add_argument("--rows", default="", help="comma-separated row names (default: all)")
    p.add_argument("--quick", action="store_true", help="1 seed, 3 s per run")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--render", action="store_true", help="rewrite the .md from the saved .json and exit")
    p.add_argument("--describe-networks", action="store_true",
                   help="build each row's network (no run), add its record to the saved .json, rewrite the .md")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _worker(args)
        return {}
    if args.describe_networks:
        from benchmarks._util import RESULTS
        from scagents._atomic import write_json, write_text
        from scagents.envs.response import ResponseTask

        payload = json.loads((RESULTS / "throughput.json").read_text())
        rows = [r for r in ROWS if r["name"] in payload["summary"]]
        for name, rec in describe_networks(rows, ResponseTask.from_twin("th", seed=0)).items():
            payload["summary"][name]["network"] = {**rec, "source": "--describe-networks (built after the run)"}
        write_json(RESULTS / "throughput.json", payload, indent=2)
        md = render_markdown(payload, list(payload["summary"]))
        write_text(RESULTS / "throughput.md", md)
        print(md)
        return payload
    if args.render:
        from benchmarks._util import RESULTS

        payload = json.loads((RESULTS / "throughput.json").read_text())
        md = render_markdown(payload, list(payload["summary"]))
        (RESULTS / "throughput.md").write_text(md)
        print(md)
        return payload
    if args.quick:
        args.seeds, args.budget, args.eval_every = 1, 3.0, 0.5
    rows = [r for r in ROWS if not args.rows or r["name"] in args.rows.split(",")]

    from scagents.envs.response import ResponseTask

    task = ResponseTask.from_twin("th", seed=0)
    results: list[dict] = []
    t_start = time.perf_counter()
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        task_path = os.path.join(tmp, "task.pkl")
        with open(task_path, "wb") as fh:
            pickle.dump(task, fh)
        for seed in range(args.seeds):
            for row in rows:  # interleaved: A, B, C, ... for every seed
                spec = {"row": row["name"], "seed": seed, "task": task_path, "budget": args.budget,
                        "eval_every": args.eval_every, "max_steps": args.max_steps}
                res = run_subprocess(spec)
                print(f"seed {seed} {row['name']:<30} {res['sps']:>10.0f} steps/s  "
                      f"final mse {res['final_mse']:.4g}  ({res['train_s']:.1f} s)", flush=True)
                results.append(res)
    total_s = time.perf_counter() - t_start
    load = load_record(load0)

    no_change = results[0]["no_change_mse"]
    names = [r["name"] for r in rows]
    sb3_ref = [r["final_mse"] for r in results if r["row"] == "sb3_ppo/defaults"]
    targets = {"sb3_ppo_defaults_final": median(sb3_ref) if sb3_ref else None, "half_no_change": 0.5 * no_change}
    for r in results:
        r["time_to_target"] = {k: (None if v is None else time_to(r["curve"], v)) for k, v in targets.items()}
    summary = {}
    for name in names:
        rs = [r for r in results if r["row"] == name]
        s = {"sps_median": median([r["sps"] for r in rs]), "final_mse_median": median([r["final_mse"] for r in rs]),
             "sps": [r["sps"] for r in rs], "settings": rs[0]["settings"], "network": rs[0]["network"]}
        for k in targets:
            ts = [r["time_to_target"][k] for r in rs]
            s[f"time_to_{k}"] = ts
            s[f"time_to_{k}_median"] = censored_median(ts)
            s[f"reached_{k}"] = sum(t is not None for t in ts)
        summary[name] = s
    ratios = []
    for ours, ref in RATIOS:
        if ours not in summary or ref not in summary:
            continue
        per_seed = [a["sps"] / b["sps"] for a, b in zip([r for r in results if r["row"] == ours],
                                                         [r for r in results if r["row"] == ref], strict=True)]
        entry = {"ours": ours, "reference": ref, "sps_ratio_median": median(per_seed), "sps_ratio_per_seed": per_seed}
        for k in targets:
            a, b = summary[ours][f"time_to_{k}_median"], summary[ref][f"time_to_{k}_median"]
            entry[f"time_to_{k}_speedup"] = (b / a) if (a and b) else None
            # the reference never got there in most runs: its time exceeds the budget, so the
            # budget gives a lower bound on the speed-up
            entry[f"time_to_{k}_speedup_at_least"] = (args.budget / a) if (a and b is None) else None
        ratios.append(entry)

    payload = {"benchmark": "throughput", "task": repr(task), "seeds": args.seeds, "budget_s": args.budget,
               "eval_every_s": args.eval_every, "no_change_mse": no_change, "targets": targets,
               "total_wall_s": total_s, "load_average_1min": load,
               "summary": summary, "ratios": ratios, "runs": results}
    md = render_markdown(payload, names)
    print(md)
    if not args.no_write:
        js, mdp = write_results("throughput", payload, md)
        print(f"wrote {js} and {mdp}")
    return payload


def render_markdown(payload: dict, names: list[str]) -> str:
    m = payload.get("machine") or machine()  # the run's machine (written by write_results)
    t = payload["targets"]
    lines = [
        "# Throughput: scagents PPO/TRPO vs Stable-Baselines3 PPO / sb3-contrib TRPO", "",
        f"Task: {payload['task']}; "
        f"1 torch thread; fresh subprocess per run; {payload['seeds']} seed(s), rows interleaved per seed; "
        f"{payload['budget_s']:.0f} s training budget per run, evaluation every {payload['eval_every_s']} s "
        "(evaluation time excluded).", "",
        networks_text({name: payload["summary"][name] for name in names}), "",
        f"Platform: {m['platform']}, Python {m['python']}; total wall {payload['total_wall_s']:.0f} s. "
        + (machine_line_of(load, m.get("cpus")) if (load := payload.get("load_average_1min"))
           else f"Machine: {m['cpus']} CPUs; load average not recorded."), "",
        f"Errors are the task's weighted MSE on {N_EVAL_CELLS} cells × every perturbation; 'no change' scores "
        f"{payload['no_change_mse']:.4g}. Target A = median final error of SB3 PPO (defaults) = "
        f"{fmt(t['sb3_ppo_defaults_final'], '.4g')}; target B = half the no-change error = {t['half_no_change']:.4g}.",
        "",
        "Times to a target are medians over seeds with a run that never reached it counted as +∞ "
        "(n/a: most runs never reached it within the budget; the count of runs that did is in brackets).",
        "",
        "| row | settings | steps/s (median) | per seed | final MSE | time to A (s) | time to B (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        s = payload["summary"][name]
        st = ", ".join(f"{k}={v}" for k, v in s["settings"].items() if v is not None)
        lines.append(f"| {name} | {st} | {s['sps_median']:.0f} | {', '.join(f'{x:.0f}' for x in s['sps'])} | "
                     f"{s['final_mse_median']:.4g} | {fmt(s['time_to_sb3_ppo_defaults_final_median'])} "
                     f"({s['reached_sb3_ppo_defaults_final']}/{len(s['sps'])}) | "
                     f"{fmt(s['time_to_half_no_change_median'])} ({s['reached_half_no_change']}/{len(s['sps'])}) |")
    lines += ["", "## Ratios (ours / reference, same run)", "",
              "| ours | reference | steps/s ratio (median of per-seed) | time-to-A speed-up | time-to-B speed-up |",
              "|---|---|---|---|---|"]
    for r in payload["ratios"]:
        lines.append(f"| {r['ours']} | {r['reference']} | {r['sps_ratio_median']:.2f}× | "
                     f"{speedup_text(r, 'sb3_ppo_defaults_final')} | {speedup_text(r, 'half_no_change')} |")
    lines += ["", "## Goal: ≥ 10× stable-baselines3 PPO", ""] + verdict(payload)
    return "\n".join(lines) + "\n"


def verdict(payload: dict) -> list[str]:
    """Plain statements on the ≥ 10× goal (steps/s and time to targets A and B, ours vs SB3 PPO)."""
    out = []
    for r in payload["ratios"]:
        if r["reference"] not in ("sb3_ppo/defaults", "sb3_ppo/defaults+sigma", "sb3_ppo/matched"):
            continue
        sps = r["sps_ratio_median"]
        parts = [f"steps/s {sps:.1f}× — " + ("**reached**" if sps >= 10 else f"**not reached** ({10 / sps:.1f}× short)")]
        for key, label in (("sb3_ppo_defaults_final", "A"), ("half_no_change", "B")):
            exact, low = r.get(f"time_to_{key}_speedup"), r.get(f"time_to_{key}_speedup_at_least")
            if exact is not None:
                parts.append(f"time to target {label} {exact:.1f}× — "
                             + ("**reached**" if exact >= 10 else f"**not reached** ({10 / exact:.1f}× short)"))
            elif low is not None:
                parts.append(f"time to target {label} ≥ {low:.1f}× (the reference did not reach it within "
                             f"{payload['budget_s']:.0f} s in most runs) — "
                             + ("**reached**" if low >= 10 else "not decided (lower bound under 10×)"))
            else:
                parts.append(f"time to target {label} n/a (not reached by ours)")
        out.append(f"- {r['ours']} vs {r['reference']}: " + "; ".join(parts) + ".")
    return out


if __name__ == "__main__":
    main()
