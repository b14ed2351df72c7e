"""The worker's time window, as a pure check (no Redis): windows may wrap past midnight.

The window against real workers and Redis is in tests/integration/test_batches.py.
"""

from __future__ import annotations

import time

import pytest


@pytest.mark.parametrize(
    ("window", "hour", "inside"),
    [
        ("22:00-07:00", 23, True),
        ("22:00-07:00", 3, True),
        ("22:00-07:00", 12, False),
        ("09:00-17:30", 17, True),
        ("09:00-17:30", 8, False),
    ],
)
def test_windows_may_wrap_past_midnight(window, hour, inside) -> None:
    from worker.hooks.gate import Window

    local = time.struct_time((2026, 1, 1, hour, 0, 0, 0, 1, 0))
    parsed = Window.parse(window)
    assert parsed is not None and parsed.contains(local) is inside
