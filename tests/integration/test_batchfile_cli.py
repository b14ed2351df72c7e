"""Batch files through the real `nightshift batch submit` against Redis: the dry run's count
and history line, and a bad file's one-line error. Parsing alone is tests/unit/test_batchfile.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_dry_run_counts_samples_and_says_when_there_is_no_history(tmp_path, redis_url) -> None:
    path = write(tmp_path, "d.yaml", "prompts: ['a {x|y}']\nseeds: 1-12\n")
    out = subprocess.run(
        [sys.executable, "-m", "producer.cli", "batch", "submit", str(path), "--dry-run"],
        env={"NIGHTSHIFT_REDIS_URL": redis_url, "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "12 jobs (nothing enqueued)" in out.stdout
    assert "… and 7 more" in out.stdout
    assert "no history yet" in out.stdout


def test_a_bad_file_exits_2_with_one_line_naming_row_and_field(tmp_path, redis_url) -> None:
    path = write(tmp_path, "e.yaml", "prompts: [fine, {prompt: x, guidance: -3}]\n")
    out = subprocess.run(
        [sys.executable, "-m", "producer.cli", "batch", "submit", str(path)],
        env={"NIGHTSHIFT_REDIS_URL": redis_url, "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "nightshift: e.yaml, row 2, guidance: must be a finite number between 0 and 50 (got -3.0)"
    )
