"""`nightshift metrics`: a real exporter process scraped over HTTP after real jobs.

How a failure is labelled, which needs no service, is tests/unit/test_metrics_labels.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from config.records import JobStatus
from config.settings import Settings
from producer.client import Client
from producer.local_redis import free_port

ROOT = Path(__file__).resolve().parents[2]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def exporter(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, Settings]]:
    """The exporter, watching the worker's queue and a second one that no worker consumes."""
    idle = f"{settings.default_queue}-idle"
    port = free_port()
    watched = Settings(**settings.model_dump() | {"queues": f"{settings.queues},{idle}"})
    env = os.environ | watched.to_env() | {"PYTHONWARNINGS": "ignore"}
    env["NIGHTSHIFT_METRICS_PORT"] = str(port)
    with (tmp_path / "metrics.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "producer.cli", "metrics"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield f"http://127.0.0.1:{port}/metrics", watched
        finally:
            process.terminate()
            process.wait(30)


def scrape(url: str, timeout_s: float = 60) -> Samples:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            text = requests.get(url, timeout=10).text
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline, "the exporter never answered"
            time.sleep(0.2)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_exporter_counts_jobs_images_wait_failures_queue_depth_and_memory(
    client: Client, settings: Settings, start_worker, exporter
) -> None:
    url, watched = exporter
    short_limit = Settings(**settings.model_dump() | {"job_time_limit_s": 40})
    start_worker(settings_=short_limit)
    ok = [
        client.submit("one", steps=2, width=64, height=64),
        client.submit("two", steps=2, width=64, height=64, images=2),
    ]
    # 500 steps at 256x256 take minutes on any CPU: the 40 s limit always ends it first.
    slow = client.submit("too slow", steps=500, width=256, height=256)
    assert all(job.wait(120).status is JobStatus.SUCCEEDED for job in ok)
    failed = slow.wait(300)
    assert failed.status is JobStatus.FAILED and "time limit" in (failed.error or "")
    idle = watched.queue_list[1]
    for priority in (0, 8, 8):
        client.submit("waiting", steps=2, width=64, height=64, priority=priority, queue=idle)

    m = wait_for_counts(url)

    assert m[("nightshift_images_total", ())] == 3
    assert m[("nightshift_jobs_finished_total", (("status", "succeeded"),))] == 2
    assert m[("nightshift_jobs_finished_total", (("status", "failed"),))] == 1
    assert m[("nightshift_failures_total", (("reason", "time_limit"),))] == 1
    assert m[("nightshift_started_total", ())] == 3
    assert m[("nightshift_queue_wait_seconds_total", ())] > 0
    assert m[("nightshift_render_seconds_total", ())] > 0
    assert m[("nightshift_queue_depth", (("priority", "0"), ("queue", idle)))] == 1
    assert m[("nightshift_queue_depth", (("priority", "8"), ("queue", idle)))] == 2
    assert m[("nightshift_jobs", (("status", "queued"),))] == 3
    (rss,) = [v for (name, _), v in m.items() if name == "nightshift_worker_rss_bytes"]
    assert rss > 50 * 2**20  # a process holding torch and a pipeline


def wait_for_counts(url: str, timeout_s: float = 60) -> Samples:
    """The failed job is counted right after its task ends, a moment after its record."""
    deadline = time.monotonic() + timeout_s
    while True:
        m = scrape(url)
        if m.get(("nightshift_failures_total", (("reason", "time_limit"),))) == 1:
            return m
        assert time.monotonic() < deadline, m
        time.sleep(0.2)
