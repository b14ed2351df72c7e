"""`nightshift run`, the README's first command, as a newcomer sees it: a line or two and the
PNG path; the worker's banner, its log and the libraries' output go to a file it names.

Real processes: the session's redis-server, a worker started by `run`, the tiny model.
"""

from __future__ import annotations

import re
from pathlib import Path

from helpers import nightshift

from config.settings import Settings

# What a newcomer used to get on stderr, about 40 lines of it.
NOISE = ("[queues]", "-------------- ", "WARNING", "it/s]", "Loading pipeline components")
LOG_LINE = re.compile(r"worker log: (\S+\.log)")


def test_run_prints_a_short_line_and_the_png_and_keeps_the_worker_log_in_a_file(
    settings: Settings,
) -> None:
    out = nightshift(
        settings, "run", "a lighthouse", "--steps", "2", "--width", "64", "--height", "64"
    )

    assert out.returncode == 0, out.stderr[-3000:]
    png = Path(out.stdout.strip())
    assert png.is_file() and png.suffix == ".png"
    lines = out.stderr.splitlines()
    assert len(lines) <= 2, out.stderr
    assert not [line for line in lines if any(noise in line for noise in NOISE)], out.stderr
    match = LOG_LINE.search(out.stderr)
    assert match, out.stderr
    log = Path(match[1])
    assert log.parent == settings.data_path / "logs"
    text = log.read_text(errors="replace")
    assert "[queues]" in text  # the worker's banner went there...
    assert "ready: loaded" in text and png.stem.split("-")[0] in text  # ...and its log


def test_run_says_when_the_worker_stops_and_shows_the_end_of_its_log(
    settings: Settings, tmp_path: Path
) -> None:
    # A model folder that is not there: the worker refuses to start. `run` must not wait
    # for the job until its timeout (an hour) but say so, with the reason from the log.
    missing = tmp_path / "no-such-model"
    out = nightshift(settings, "run", "a lighthouse", NIGHTSHIFT_MODEL=str(missing), timeout=180)

    assert out.returncode == 1
    assert out.stdout == ""
    assert "the worker stopped" in out.stderr
    assert str(missing) in out.stderr  # the log's last lines name the missing folder
