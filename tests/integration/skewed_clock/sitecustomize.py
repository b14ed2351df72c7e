"""Test-only clock skew, loaded into one subprocess by the test that starts it.

A test cannot change the machine's clock, so the skew is simulated: a test puts this folder
on a subprocess's PYTHONPATH (and nowhere else), Python imports this file at start-up, and
that process's `time.time()` / `time.time_ns()` run SKEWED_CLOCK_S seconds off the real clock,
as on a machine whose clock drifted or was set wrong. Monotonic clocks are left alone (they
measure intervals, not dates), and so is the redis-server's clock: the one reference.
"""

from __future__ import annotations

import os
import time

SKEW_S = float(os.environ.get("SKEWED_CLOCK_S", "0"))
_real_time, _real_time_ns = time.time, time.time_ns


def _skewed_time() -> float:
    return _real_time() + SKEW_S


def _skewed_time_ns() -> int:
    return _real_time_ns() + int(SKEW_S * 1e9)


time.time = _skewed_time
time.time_ns = _skewed_time_ns
