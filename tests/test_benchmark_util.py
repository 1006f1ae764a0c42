"""The benchmarks' machine sentence: measured at run time, stored, re-rendered as stored (benchmarks/_util.py)."""

from __future__ import annotations

import os

from tests.conftest import load_benchmark


def test_load_record_stores_the_run_conditions():
    util = load_benchmark("_util")
    rec = util.load_record(0.5)
    assert rec["start"] == 0.5 and rec["end"] >= 0.0
    assert rec["nice"] == os.nice(0) and rec["cpus"] == (os.cpu_count() or 1)


def test_stored_niceness_not_the_renderers():
    util = load_benchmark("_util")
    line = util.machine_line_of({"start": 0.1, "end": 0.2, "nice": 10, "cpus": 64})
    assert line.startswith("Machine: 64 cores, run under nice 10; 1-min load average 0.1 at the start, 0.2 at the end")
    assert line.endswith("(no other heavy job).")
    assert "nice" not in util.machine_line_of({"start": 0.1, "end": 0.2, "nice": 0, "cpus": 64})
    assert util.machine_line(0.1, 0.2, nice=7, cpus=8) == util.machine_line_of({"start": 0.1, "end": 0.2, "nice": 7,
                                                                               "cpus": 8})


def test_old_records_say_niceness_not_recorded():
    util = load_benchmark("_util")
    for old in ({"start": 3.0, "end": 2.5}, [3.0, 2.5]):
        line = util.machine_line_of(old, cpus=2)
        assert "2 cores, niceness not recorded" in line
        assert line.endswith("(other jobs shared the machine, so the times are upper bounds).")
