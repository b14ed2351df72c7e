"""The morning report opened in a real headless Chromium, from disk, with no server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from config.records import JobStatus
from config.store import batches as bs
from producer.batches.actions import batch_status, submit_batch
from producer.client import Client

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=5000",
]
CONSOLE_RE = re.compile(r":(?:INFO|WARNING|ERROR):CONSOLE[^\]]*\] (.*)")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs the Debian chromium package")


def chromium(tmp_path: Path, page: Path, *args: str, fragment: str = "") -> tuple[str, list[str]]:
    """Load page from file://; return the DOM after scripts ran and the console lines."""
    out = subprocess.run(
        [
            str(CHROMIUM),
            *FLAGS,
            f"--user-data-dir={tmp_path / 'chromium'}",
            *args,
            page.resolve().as_uri() + (f"#{fragment}" if fragment else ""),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.stdout, CONSOLE_RE.findall(out.stderr)


def test_the_console_check_catches_a_page_error(tmp_path) -> None:
    """Guards the guard: a page with a script error must be caught by the same check."""
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><body><script>undefinedThing();</script></body>")
    _, console = chromium(tmp_path, page, "--dump-dom")
    assert any("undefinedThing" in line for line in console)


def test_the_gallery_loads_from_disk_without_errors_and_shows_every_image(
    client: Client, settings, tmp_path, worker
) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(
        "name: gallery test\ndefaults: {steps: 2, width: 64, height: 64}\n"
        "prompts: ['a {red|blue} <b>fox</b> & hound', 'a lighthouse', will fail]\nseeds: [1, 2]\n"
    )
    done = submit_batch(client, path)
    folder = settings.results_path / "batches" / done.batch_id
    (folder / f"{done.batch_id}-00005-00.png").mkdir(parents=True)  # a real write failure
    deadline = time.monotonic() + 240
    while not (folder / "index.html").exists():
        assert time.monotonic() < deadline, "no report after the batch"
        time.sleep(0.2)
    assert batch_status(client, done.batch_id).counts[JobStatus.SUCCEEDED] == 5

    page = folder / "index.html"
    html = page.read_text()
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", html)  # no external assets
    assert "<b>fox</b>" not in html and "&lt;b&gt;fox&lt;/b&gt;" in html  # prompts escaped
    dom, console = chromium(tmp_path, page, "--dump-dom")
    assert console == [], console
    assert 'data-images-shown="5"' in dom, dom[:2000]
    assert dom.count("<img ") == 5
    assert "cannot write results" in dom  # the failure is listed with its reason
    assert dom.count('class="card failed"') == 1
    filtered, console = chromium(tmp_path, page, "--dump-dom", fragment="failed")
    assert console == [], console
    assert filtered.count('class="card succeeded hidden"') == 5
    assert filtered.count('class="card failed"') == 1

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "gallery.png"
    shot.unlink(missing_ok=True)
    chromium(tmp_path, page, f"--screenshot={shot}", "--window-size=1100,800")
    with Image.open(shot) as image:
        assert image.size == (1100, 800)
    shutil.copy(folder / "contact-sheet.png", ARTIFACTS / "contact-sheet.png")
    lines = (folder / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(line)["spec"]["id"] for line in lines] == bs.job_ids(
        client.store.redis, done.batch_id
    )


def test_batch_report_recreates_the_files_on_demand(client, settings, tmp_path, worker) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("defaults: {steps: 2, width: 64, height: 64}\nprompts: [one, two]\n")
    done = submit_batch(client, path)
    folder = settings.results_path / "batches" / done.batch_id
    deadline = time.monotonic() + 240
    while not (folder / "index.html").exists():
        assert time.monotonic() < deadline, "no report after the batch"
        time.sleep(0.2)
    for name in ("index.html", "contact-sheet.png", "manifest.jsonl"):
        (folder / name).unlink()

    out = subprocess.run(
        [sys.executable, "-m", "producer.cli", "batch", "report", done.batch_id],
        env=os.environ | settings.to_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(folder / "index.html")
    assert all((folder / n).exists() for n in ("index.html", "contact-sheet.png", "manifest.jsonl"))
    assert bs.report_count(client.store.redis, done.batch_id) == 1  # on demand is not counted
