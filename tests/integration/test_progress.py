"""Live progress: bars from the worker's step callback, `watch`, `cancel`, and what it costs.

How the bar draws on a terminal, which needs no service, is tests/unit/test_progress_bar.py.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

from helpers import nightshift

from config.records import JobRecord, JobStatus
from config.schema import new_job
from config.settings import Settings
from producer.client import Client, Job

ROOT = Path(__file__).resolve().parents[2]


def wait_until_rendering(job: Job, steps: int = 3, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while job.record().progress.get("step", 0) < steps:
        assert time.monotonic() < deadline, "the job never started rendering"
        time.sleep(0.05)


def test_wait_with_progress_draws_the_steps_the_worker_counted(client: Client, worker) -> None:
    out = io.StringIO()
    record = client.submit("a bar", steps=4, width=64, height=64).wait(120, True, out)

    lines = out.getvalue().splitlines()
    assert record.status is JobStatus.SUCCEEDED
    assert lines and all(line.startswith("image 1/1 [") for line in lines)
    # PNDM makes 5 UNet calls for 4 steps: the bar ends at the callback's count.
    assert lines[-1].endswith("5/5") and "#" * 30 in lines[-1]
    steps = [int(line.rsplit(" ", 1)[1].split("/")[0]) for line in lines]
    assert steps == sorted(steps)


def test_submit_wait_shows_the_bar_on_stderr_and_only_the_path_on_stdout(
    settings: Settings, worker
) -> None:
    out = nightshift(
        settings, "submit", "a fox", "--steps", "3", "--width", "64", "--height", "64", "--wait"
    )

    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).is_file()
    assert "image 1/1 [" in out.stderr and "4/4" in out.stderr


def test_progress_writes_are_throttled_to_the_interval(settings: Settings) -> None:
    """In-process, with the real hooks run_job uses, at the default 0.5 s interval.

    The cost is printed, not asserted (timings belong in BENCHMARKS.md); what is asserted
    is the throttle: at most one Redis write per interval, the last step left to the
    success record.
    """
    from worker import runtime
    from worker.jobs.run import CancelCheck, ProgressReporter

    settings = Settings(**settings.model_dump() | {"progress_interval_s": 0.5})
    ctx = runtime.start(settings)
    spec = new_job("cost", settings, steps=40, width=64, height=64)
    ctx.store.create(JobRecord(spec=spec, created_at=spec.created_at))
    report, check = Timed(ProgressReporter(ctx, spec)), Timed(CancelCheck(ctx, spec.id))
    writes = []
    update = ctx.store.update
    ctx.store.update = lambda job_id, mutate: writes.append(job_id) or update(job_id, mutate)
    try:
        result = ctx.renderer.render(spec, on_step=report, should_stop=check)
    finally:
        ctx.store.update = update

    hooks_s = report.seconds + check.seconds
    print(
        f"progress+cancel hooks: {hooks_s * 1000:.2f} ms of {result.render_s:.2f} s render "
        f"= {100 * hooks_s / result.render_s:.3f} %, {report.calls} step calls"
    )
    assert report.calls == result.unet_calls == 41
    assert len(writes) <= result.render_s / 0.5 + 1
    # The last step is left for the success record, which finish_job writes anyway.
    assert report.hook.final == {"image": 1, "images": 1, "step": 41, "steps": 41}


class Timed:
    def __init__(self, hook) -> None:
        self.hook, self.seconds, self.calls = hook, 0.0, 0

    def __call__(self, *args):
        begin = time.perf_counter()
        try:
            return self.hook(*args)
        finally:
            self.seconds += time.perf_counter() - begin
            self.calls += 1


def test_nightshift_cancel_stops_a_running_and_a_queued_job_and_spares_the_next(
    client: Client, settings: Settings, worker
) -> None:
    done = client.submit("done", steps=2, width=64, height=64)
    assert done.wait(120).status is JobStatus.SUCCEEDED
    running = client.submit("running", steps=400, width=64, height=64)
    queued = client.submit("queued", steps=2, width=64, height=64)
    wait_until_rendering(running)

    out = nightshift(settings, "cancel", running.id, queued.id, done.id)
    nxt = client.submit("next", steps=2, width=64, height=64)

    assert out.returncode == 0, out.stderr
    assert f"{running.id} cancelling" in out.stdout
    assert f"{queued.id} cancelled" in out.stdout
    assert f"{done.id} already succeeded" in out.stdout
    assert running.wait(60).status is JobStatus.CANCELLED
    assert queued.wait(60).status is JobStatus.CANCELLED
    assert nxt.wait(120).status is JobStatus.SUCCEEDED  # a late cancel never hits the next job


def test_watch_shows_the_running_bar_queued_counts_by_priority_and_finished_jobs(
    client: Client, settings: Settings, worker
) -> None:
    done = client.submit("finished one", steps=2, width=64, height=64).wait(120)
    running = client.submit("running one", steps=400, width=64, height=64)
    # A queue no worker consumes, so the counts cannot change while watch reads them.
    idle = f"{settings.default_queue}-idle"
    client.submit("urgent", steps=2, width=64, height=64, priority=0, queue=idle)
    client.submit("later", steps=2, width=64, height=64, priority=8, queue=idle)
    client.submit("later too", steps=2, width=64, height=64, priority=8, queue=idle)
    wait_until_rendering(running)

    watching = Settings(**settings.model_dump() | {"queues": f"{settings.queues},{idle}"})
    frame = nightshift(watching, "watch", "--once")
    running.cancel()

    assert frame.returncode == 0, frame.stderr
    text = frame.stdout
    assert f"{running.id}  running one" in text and "image 1/1 [" in text
    # Jobs wait on their queue and model (`q@model`, the catalog's one model: `default`).
    lines = text.splitlines()
    assert f"  {idle}@default priority 0: 1" in lines
    assert f"  {idle}@default priority 8: 2" in lines
    assert f"{done.id}  succeeded" in text
    assert "0.1 images/min over 10 min" in text
