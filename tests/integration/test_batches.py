"""Batches against a real Redis and real `nightshift worker` processes (tiny model, CPU)."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from helpers import nightshift

from config.records import JobRecord, JobStatus
from config.store import batches as bs
from config.store.broker import queue_depths, queue_names
from producer.batches.actions import batch_status, submit_batch
from producer.client import Client

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SMALL = "defaults: {steps: 2, width: 64, height: 64}\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def records(client: Client, batch_id: str) -> list[JobRecord]:
    r = client.store.redis
    return list(bs.job_records(r, bs.job_ids(r, batch_id)))


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.1)


def stays(what: str, check: Callable[[], bool], seconds: float) -> None:
    """Assert check() holds during the whole period (a bounded watch, not a blind sleep)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert check(), f"no longer true: {what}"
        time.sleep(0.1)


def batch_ended(client: Client, batch_id: str) -> Callable[[], bool]:
    return lambda: batch_status(client, batch_id).done


def queued_messages(client: Client) -> int:
    r, queues = client.store.redis, [client.settings.default_queue]
    # every model's lists too: mps, mps@sd15, ...
    return sum(queue_depths(r, queue_names(r, queues, client.catalog.names)).values())


def test_ten_thousand_jobs_are_enqueued_with_records_and_messages(client, tmp_path) -> None:
    path = write(tmp_path, "big.yaml", SMALL + "prompts: ['a {red|blue} fox']\nseeds: 1-10000\n")
    begin = time.perf_counter()
    done = submit_batch(client, path)
    took = time.perf_counter() - begin

    assert (done.total, done.enqueued, done.existing) == (10_000, 10_000, False)
    assert queued_messages(client) == 10_000
    assert int(client.store.redis.zcard(f"nightshift:jobs:{JobStatus.QUEUED.value}")) == 10_000
    assert len(bs.job_ids(client.store.redis, done.batch_id)) == 10_000
    ARTIFACTS.mkdir(exist_ok=True)
    figure = (
        f"10,000 jobs: enqueue {done.enqueue_s:.2f} s ({10_000 / done.enqueue_s:,.0f} jobs/s), "
        f"whole submit with parsing and validation {took:.2f} s, on {os.cpu_count()} cores\n"
    )
    (ARTIFACTS / "enqueue-10000.txt").write_text(figure)
    print(figure)


def test_the_same_file_twice_makes_no_duplicates_unless_asked(client, settings, tmp_path) -> None:
    path = write(tmp_path, "twice.yaml", SMALL + "prompts: [one, two, three]\n")
    first = nightshift(settings, "batch", "submit", str(path))
    again = nightshift(settings, "batch", "submit", str(path))
    forced = nightshift(settings, "batch", "submit", str(path), "--new")

    assert first.returncode == again.returncode == forced.returncode == 0, first.stderr
    assert first.stdout == again.stdout
    assert "already submitted" in again.stderr
    assert forced.stdout != first.stdout
    assert queued_messages(client) == 6
    listing = nightshift(settings, "batch", "list").stdout
    assert first.stdout.strip() in listing and forced.stdout.strip() in listing


def test_an_idempotency_key_on_a_single_submit_works_the_same_way(client, settings) -> None:
    args = ("submit", "a fox", "--id", "my-key-1", "--steps", "2", "--width", "64")
    assert nightshift(settings, *args).stdout == nightshift(settings, *args).stdout
    assert queued_messages(client) == 1


def test_a_single_submit_is_rendered_right_after_the_job_in_progress_of_a_batch(
    client, settings, tmp_path, worker
) -> None:
    path = write(tmp_path, "k.yaml", SMALL + "prompts: ['batch {a|b}']\nseeds: 1-1000\n")
    batch_id = submit_batch(client, path).batch_id
    wait_for("a batch job runs", lambda: batch_status(client, batch_id).counts[JobStatus.STARTED])
    started_before = sum(1 for r in records(client, batch_id) if r.started_at is not None)

    single = nightshift(
        settings, "submit", "me first", "--steps", "2", "--width", "64", "--height", "64", "--wait"
    )
    assert single.returncode == 0, single.stderr
    mine = client.jobs(JobStatus.SUCCEEDED, 2000)
    me = next(r for r in mine if r.spec.prompt == "me first")
    ahead = [r for r in records(client, batch_id) if r.started_at and r.started_at < me.started_at]
    # The CLI takes a second or two to start: a few batch jobs may end meanwhile, but once
    # the message is in Redis only the job then in progress may run before it.
    after_submit = [r for r in ahead if r.created_at and r.started_at > me.created_at]
    assert len(after_submit) <= 1, [r.id for r in after_submit]
    assert len(ahead) >= started_before
    assert batch_status(client, batch_id).counts[JobStatus.QUEUED] > 900


def test_cancelling_a_batch_stops_it_and_the_report_is_written_exactly_once(
    client, settings, tmp_path, worker
) -> None:
    path = write(tmp_path, "c.yaml", SMALL + "prompts: ['c {a|b}']\nseeds: 1-300\n")
    batch_id = submit_batch(client, path).batch_id
    wait_for(
        "two batch jobs succeed",
        lambda: batch_status(client, batch_id).counts[JobStatus.SUCCEEDED] >= 2,
    )

    out = nightshift(settings, "batch", "cancel", batch_id)
    assert out.returncode == 0 and "cancelled" in out.stdout, out.stderr
    wait_for("every job has ended", batch_ended(client, batch_id))
    folder = settings.results_path / "batches" / batch_id
    wait_for("the report is written", lambda: (folder / "index.html").exists())

    status = batch_status(client, batch_id)
    assert status.counts[JobStatus.CANCELLED] >= 250
    assert status.reports == 1
    manifest = (folder / "manifest.jsonl").read_text().splitlines()
    assert len(manifest) == 300
    assert {json.loads(line)["status"] for line in manifest} <= {"succeeded", "cancelled"}


def test_a_grouped_batch_travels_as_group_messages_and_each_job_still_ends_on_its_own(
    client, settings, tmp_path, start_worker
) -> None:
    path = write(tmp_path, "g.yaml", SMALL + "prompts: ['g {a|b}']\nseeds: 1-20\n")
    out = nightshift(
        settings, "batch", "submit", str(path), "--grouped", NIGHTSHIFT_MAX_GROUP_SIZE="8"
    )
    assert out.returncode == 0, out.stderr
    batch_id = out.stdout.strip()
    assert queued_messages(client) == 3  # 20 jobs: groups of 8, 8 and 4

    start_worker()
    wait_for("the batch ends", batch_ended(client, batch_id))
    done = records(client, batch_id)
    assert len(done) == 20
    assert all(r.status is JobStatus.SUCCEEDED and r.attempts == 1 for r in done)
    assert len({r.outputs[0] for r in done}) == 20
    assert all(Path(r.outputs[0]).is_file() for r in done)
    folder = settings.results_path / "batches" / batch_id
    wait_for("the report is written", lambda: (folder / "index.html").exists())
    assert len((folder / "manifest.jsonl").read_text().splitlines()) == 20
    assert batch_status(client, batch_id).reports == 1


def test_the_report_runs_once_whatever_the_outcomes_and_again_after_a_retry(
    client, settings, tmp_path, worker
) -> None:
    path = write(
        tmp_path,
        "mixed.yaml",
        SMALL + "prompts: [ok one, ok two, will fail, {prompt: too late, expires: '2000-01-01'}]\n"
        "seeds: [7]\n",
    )
    done = submit_batch(client, path)
    folder = settings.results_path / "batches" / done.batch_id
    # A directory where the third image must go: a real write failure, nothing faked.
    blocker = folder / f"{done.batch_id}-00003-00.png"
    blocker.mkdir(parents=True)
    start = client.store.redis  # the worker is already running: jobs flow at once
    wait_for("every job has ended", batch_ended(client, done.batch_id))
    wait_for("the report is written", lambda: (folder / "index.html").exists())

    by_prompt = {r.spec.prompt: r for r in records(client, done.batch_id)}
    assert by_prompt["ok one"].status is JobStatus.SUCCEEDED
    assert by_prompt["will fail"].status is JobStatus.FAILED
    assert "cannot write results" in (by_prompt["will fail"].error or "")
    assert by_prompt["too late"].status is JobStatus.CANCELLED
    assert (by_prompt["too late"].error or "").startswith("expired: not started by 2000-01-01")
    assert bs.report_count(start, done.batch_id) == 1
    assert (folder / "contact-sheet.png").stat().st_size > 0
    assert len((folder / "manifest.jsonl").read_text().splitlines()) == 4
    status = nightshift(settings, "batch", "status", done.batch_id).stdout
    assert "succeeded 2" in status and "failed 1" in status and "cancelled 1" in status
    assert "report    written" in status

    blocker.rmdir()
    out = nightshift(settings, "batch", "retry", done.batch_id, "--failed")
    assert out.stdout.strip() == "1 jobs queued again", out.stderr
    wait_for(
        "the retried job succeeds",
        lambda: client.store.get(by_prompt["will fail"].id).status is JobStatus.SUCCEEDED,
    )
    wait_for("the report is written again", lambda: bs.report_count(start, done.batch_id) == 2)
    assert client.store.get(by_prompt["too late"].id).status is JobStatus.CANCELLED

    # Now there is history: the dry run estimates from the seconds workers recorded.
    dry = nightshift(settings, "batch", "submit", str(path), "--dry-run").stdout
    assert "4 jobs (nothing enqueued)" in dry
    assert re.search(r"estimate: \d+ min \d\d s at the speed workers have recorded", dry), dry


def test_pause_lets_the_current_job_finish_and_survives_a_worker_restart(
    client, settings, start_worker
) -> None:
    worker = start_worker(NIGHTSHIFT_GATE_POLL_S="0.2")
    long = client.submit("long", steps=40, width=64, height=64)
    nxt = client.submit("next", steps=2, width=64, height=64)
    wait_for("the long job runs", lambda: long.record().progress.get("step", 0) >= 2)
    assert nightshift(settings, "pause").returncode == 0

    assert long.wait(600).status is JobStatus.SUCCEEDED
    stays("the next job waits", lambda: nxt.record().status is JobStatus.QUEUED, 4)
    worker.stop()
    start_worker(NIGHTSHIFT_GATE_POLL_S="0.2")
    stays("the next job still waits", lambda: nxt.record().status is JobStatus.QUEUED, 4)

    assert nightshift(settings, "resume").stdout.strip() == "resumed"
    assert nxt.wait(120).status is JobStatus.SUCCEEDED


def test_a_worker_outside_its_window_takes_nothing_and_expired_jobs_are_dropped(
    client, settings, start_worker
) -> None:
    now = time.localtime()
    window = f"{(now.tm_hour + 2) % 24:02d}:00-{(now.tm_hour + 3) % 24:02d}:00"
    closed = start_worker(NIGHTSHIFT_WORKER_WINDOW=window, NIGHTSHIFT_GATE_POLL_S="0.2")
    soon = nightshift(
        settings,
        "submit",
        "soon",
        "--steps",
        "2",
        "--width",
        "64",
        "--height",
        "64",
        "--expires",
        "2s",
    )
    later = client.submit("later", steps=2, width=64, height=64)
    expiring = client.job(soon.stdout.strip())
    stays(
        "nothing is taken outside the window",
        lambda: (
            later.record().status is JobStatus.QUEUED
            and expiring.record().status is JobStatus.QUEUED
        ),
        4,
    )
    closed.stop()

    start_worker()  # no window: always open
    assert later.wait(120).status is JobStatus.SUCCEEDED
    dropped = expiring.wait(60)
    assert dropped.status is JobStatus.CANCELLED
    assert (dropped.error or "").startswith("expired: not started by")
    assert dropped.attempts == 0 and dropped.outputs == []


def test_a_bad_window_is_refused_naming_the_flag_value(settings) -> None:
    out = nightshift(settings, "worker", "--window", "25:00-07:00")
    assert out.returncode == 2
    assert "NIGHTSHIFT_WORKER_WINDOW" in out.stderr and "25:00-07:00" in out.stderr


def test_bulk_messages_are_exactly_what_celery_and_kombu_would_write(client, settings) -> None:
    """The fast path must not drift from the real one: same envelope, field for field."""
    from config.schema import new_job
    from config.tasks import RENDER_TASK
    from producer import enqueue as bulk
    from producer.enqueue import task_summary

    spec = new_job("same", settings, id="env-1", steps=2, width=64, height=64, priority=7)
    key, ours = bulk.envelope(client.app, spec, task_summary(spec))
    client.app.send_task(
        RENDER_TASK,
        args=[spec.model_dump(mode="json")],
        task_id=spec.id,
        queue=bulk.route(spec),
        priority=spec.priority,
        argsrepr=task_summary(spec),
        kwargsrepr="",
        ignore_result=True,
    )
    theirs = json.loads(client.store.redis.rpop(key))
    mine = json.loads(ours)
    for message in (mine, theirs):
        message["properties"].pop("delivery_tag")
    assert key == f"{spec.queue}@{spec.model}:7"
    assert mine == theirs
