"""The Ray-scaling report is rendered from its payload only (benchmarks/ray_scaling.py)."""

from __future__ import annotations

from tests.conftest import load_benchmark


def _payload(**extra) -> dict:
    rollouts = {"response_env (cheap)": {"steps": 200, "ms_per_step_in_process": 0.4, "ms_per_step_ray": 3.0,
                                         "speedup": 0.13, "identical": True},
                "expensive_env (CPU-bound step)": {"steps": 40, "ms_per_step_in_process": 22.0,
                                                   "ms_per_step_ray": 15.0, "speedup": 1.47, "identical": True}}
    return {"seeds": [0, 1], "total_steps": 256, "repeats": 1, "median_s": {"in_process": 1.0},
            "speedup_1_to_2_workers": 1.1, "identical_results": True, "actor_rollouts": rollouts,
            "load_average_before": "3.10 3.34 3.84", "load_average_after": "0.50 3.62 3.89",
            "machine": {"cpus": 8}, **extra}


def test_machine_sentence_from_the_stored_load():
    bench = load_benchmark("ray_scaling")
    old = bench.render_markdown(_payload())
    assert "Machine: 8 cores, niceness not recorded; 1-min load average 3.1 at the start, 0.5 at the end" in old
    assert "shared" not in old
    new = bench.render_markdown(_payload(load_average_1min={"start": 0.2, "end": 0.3, "nice": 10, "cpus": 4}))
    assert "Machine: 4 cores, run under nice 10; 1-min load average 0.2 at the start, 0.3 at the end" in new


def test_actor_sentence_follows_the_speedups():
    bench = load_benchmark("ray_scaling")
    p = _payload()
    assert "Actors paid off only for the CPU-bound step" in bench.render_markdown(p)
    p["actor_rollouts"]["response_env (cheap)"]["speedup"] = 1.2
    text = bench.render_markdown(p)
    assert "paid off only" not in text
    assert "Faster on 2 Ray actors: response_env (cheap), expensive_env (CPU-bound step); faster in-process: none." in text
