"""Helpers shared by test modules (import as `from helpers import ...`; pytest puts tests/ on
sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from config.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def nightshift(
    settings: Settings | None, *args: str, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the real `nightshift` command line against this test's Redis and queue.

    settings=None runs it with only the environment given (and the process's own).
    """
    full_env = os.environ | (settings.to_env() if settings else {}) | env
    return subprocess.run(
        [sys.executable, "-m", "producer.cli", *args],
        env=full_env | {"PYTHONWARNINGS": "ignore"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
