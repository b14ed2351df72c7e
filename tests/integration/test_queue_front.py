"""Moving a waiting job to the front, against a real Redis, worker and API: the job moved last
renders next, alone or from inside a group message; every job renders once, from its newest
message (its PNG carries the spec it was rendered from); every older message is acknowledged
without a render; a job that no longer waits cannot move."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from api_servers import api_running, made_tokens
from conftest import WorkerProcess
from helpers import nightshift, queued_count
from PIL import Image

from config import keys as names
from config.errors import JobNotQueued
from config.records import JobRecord, JobStatus
from config.schema import new_job
from producer import enqueue
from producer.client import Client, Job, submit_grouped

SMALL: dict[str, Any] = {"steps": 2, "width": 64, "height": 64}
LONG_STEPS = 500  # the most a job may ask: still running when asked to move, then cancelled


def rendered_from(record: JobRecord) -> dict[str, Any]:
    """The spec the worker rendered the job from, as its PNG's `nightshift` chunk holds it."""
    with Image.open(record.outputs[0]) as image:
        return dict(json.loads(image.info["nightshift"]))


def wait_running(job: Job, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while job.record().progress.get("step", 0) < 3:
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)


def wait_drained(client: Client, timeout_s: float = 60) -> None:
    """Until no message waits on the test's queues and none is delivered but unacknowledged."""
    deadline = time.monotonic() + timeout_s
    with redis.Redis.from_url(client.settings.redis_url) as r:
        while queued_count(client.settings) or r.hlen(names.KOMBU_UNACKED):
            assert time.monotonic() < deadline, "messages left behind"
            time.sleep(0.1)


def test_the_jobs_moved_to_the_front_render_first_and_every_job_once(
    client: Client, start_worker: Callable[..., WorkerProcess]
) -> None:
    a, b, c, d = (client.submit(p, **SMALL) for p in ("a", "b", "c", "d"))
    grouped = [new_job(f"grouped {n}", client.settings, **SMALL) for n in range(2)]
    submit_grouped(client, grouped, group_size=2)
    g1, g2 = (Job(client, spec.id) for spec in grouped)
    assert queued_count(client.settings) == 5  # four jobs alone, one group message
    # d: a mover that died after sending its message and before writing the record.
    d_spec = d.record().spec.model_copy(update={"moved": 1, "priority": 0})
    enqueue.send_front(client.app, client.store.redis, d_spec)
    moved = g2.move_to_front()  # from inside its group
    assert (moved.status, moved.spec.moved, moved.spec.priority) == (JobStatus.QUEUED, 1, 0)
    c_before = c.record().spec
    out = nightshift(client.settings, "front", c.id, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["spec"]["moved"] == 1
    # c's old message at the very head (where kombu puts back a redelivered one): stale.
    enqueue.push_front(client.store.redis, enqueue.envelope(client.app, c_before, "old c"))
    start_worker()

    jobs = [c, g2, d, a, b, g1]
    records = [job.wait(180) for job in jobs]
    assert all(r.status is JobStatus.SUCCEEDED for r in records), [r.error for r in records]
    assert [r.id for r in sorted(records, key=lambda r: r.started_at or 0)] == [j.id for j in jobs]
    assert [(r.attempts, len(r.outputs)) for r in records] == [(1, 1)] * len(jobs)
    assert len(list(client.settings.results_path.rglob("*.png"))) == len(jobs)
    sent = [(spec["moved"], spec["priority"]) for spec in map(rendered_from, records)]
    assert sent == [(1, 0)] * 3 + [(0, client.settings.default_priority)] * 3
    assert records[2].spec.moved == 1  # d: the worker wrote the move the mover could not
    wait_drained(client)


def test_a_job_that_no_longer_waits_cannot_move_and_one_that_waits_moves_over_http(
    client: Client, start_worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    tokens = made_tokens(client.settings, "front", ("read", "submit"))
    submit = {"Authorization": f"Bearer {tokens['submit']}"}
    read = {"Authorization": f"Bearer {tokens['read']}"}
    with (
        api_running(client.settings, tmp_path / "api.log") as api,
        httpx.Client(base_url=api.url, timeout=30) as http,
    ):
        done = client.submit("done", **SMALL)
        start_worker()
        assert done.wait(120).status is JobStatus.SUCCEEDED
        long = client.submit("long", steps=LONG_STEPS, width=64, height=64)
        waiting = client.submit("waiting", **SMALL)
        wait_running(long)
        refused = http.post(f"/v1/jobs/{long.id}/front", headers=submit)
        with pytest.raises(JobNotQueued, match="already started"):
            long.move_to_front()
        long.cancel()

        assert refused.status_code == 409, refused.text
        assert refused.json()["error"] == {
            "code": "not_queued",
            "field": None,
            "message": f"job {long.id}: already started: only a queued job moves to the front",
        }
        assert http.post(f"/v1/jobs/{done.id}/front", headers=submit).status_code == 409
        assert http.post("/v1/jobs/nope/front", headers=submit).status_code == 404
        assert http.post(f"/v1/jobs/{waiting.id}/front", headers=read).status_code == 403
        moved = http.post(f"/v1/jobs/{waiting.id}/front", headers=submit)
        assert moved.status_code == 200, moved.text
        assert moved.json()["status"] == "queued" and moved.json()["spec"]["moved"] == 1

    out = nightshift(client.settings, "front", done.id)
    assert out.returncode == 1
    assert out.stderr.strip() == (
        f"nightshift: job {done.id}: already succeeded: only a queued job moves to the front"
    )
    unknown = nightshift(client.settings, "front", "nope", "--json")
    assert unknown.returncode == 1 and "no such job" in unknown.stderr
    assert long.wait(60).status is JobStatus.CANCELLED
    record = waiting.wait(120)
    assert record.status is JobStatus.SUCCEEDED and record.attempts == 1
    assert rendered_from(record)["moved"] == 1
    wait_drained(client)
