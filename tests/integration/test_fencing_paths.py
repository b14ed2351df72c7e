"""Every fenced write of a superseded attempt (issue 11), driven through worker/jobs directly.

The job path is Celery-free and torch-free, so these run it in the test process against the
real redis-server, with a stand-in renderer that lets "another worker" start the job again at
a chosen moment (records.start under compare-and-set, as that worker's start_job does). The
whole story with real workers and SIGSTOP is tests/integration/test_sleeping_worker.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

from config import records
from config.errors import ErrorCode, Superseded
from config.records import JobRecord, JobStatus, RenderInfo
from config.schema import JobSpec, new_job
from config.settings import Settings
from config.store import JobStore
from worker.jobs.grouping import run_group
from worker.jobs.run import fail_job, run_job
from worker.render.device import DevicePlan
from worker.render.renderer import RenderResult
from worker.runtime import WorkerContext

OTHER = RenderInfo(worker="linux", pid=77, device="cuda")
PARAMS = {"width": 64, "height": 64, "steps": 6}


class TakenOverRenderer:
    """Renders blank images; at step `at` (None: after the last) another worker starts the
    jobs, then the steps go on, each followed by the stop check, as diffusers' callback does."""

    def __init__(self, store: JobStore, at: int | None) -> None:
        self.store, self.at = store, at
        self.steps_after_takeover = 0

    def take_over(self, specs: list[JobSpec]) -> None:
        now = self.store.now()
        for spec in specs:
            self.store.update(spec.id, lambda r: records.start(r, OTHER, now))

    def render(
        self, spec: JobSpec, on_step: Callable[..., None], should_stop: Any, inputs: Any = None
    ) -> Any:
        return self.render_group([spec], on_step, should_stop)[0]

    def render_group(self, specs: list[JobSpec], on_step: Any, should_stop: Any) -> Any:
        for step in range(1, spec_steps(specs) + 1):
            if step == self.at:
                self.take_over(specs)
            if self.at is not None and step >= self.at:
                self.steps_after_takeover += 1
            time.sleep(0.01)  # past the progress interval: every step writes and checks
            on_step(0, step, spec_steps(specs))
            if should_stop():
                raise AssertionError("no job here is ever cancelled")
        if self.at is None:
            self.take_over(specs)
        return [blank_result(spec) for spec in specs]


def spec_steps(specs: list[JobSpec]) -> int:
    return specs[0].steps


def blank_result(spec: JobSpec) -> RenderResult:
    images = [Image.new("RGB", (spec.width, spec.height)) for _ in spec.seeds()]
    return RenderResult(images, spec.seeds(), [False] * len(images), "PNDM", False, 1.0)


@pytest.fixture
def sleeper(settings: Settings) -> Callable[[int | None], WorkerContext]:
    """The worker context of the process that sleeps; `at` is when the other takes over."""
    fast = settings.model_copy(update={"progress_interval_s": 0.001})
    store = JobStore.from_settings(fast)

    def make(at: int | None) -> WorkerContext:
        plan = DevicePlan("cpu", "float32", attention_slicing=False, batch_images=True)
        return WorkerContext(fast, store, TakenOverRenderer(store, at), plan, "mac", 41)

    return make


def submitted(store: JobStore, settings: Settings, n: int = 1) -> list[JobSpec]:
    specs = [new_job(f"a lighthouse {i}", settings, seed=i, **PARAMS) for i in range(n)]
    for spec in specs:
        store.create(JobRecord(spec=spec, created_at=store.now()))
    return specs


def assert_left_to_the_other(store: JobStore, settings: Settings, specs: list[JobSpec]) -> None:
    for spec in specs:
        record = store.get(spec.id)
        assert record.status is JobStatus.STARTED and record.attempts == 2
        assert (record.render.worker, record.render.pid) == ("linux", 77)
        assert record.progress == {}  # the sleeper's progress never landed on this attempt
    assert not list(settings.results_path.rglob("*.png"))


def test_a_job_taken_over_mid_render_stops_at_the_next_step(sleeper, settings) -> None:
    ctx = sleeper(3)
    [spec] = submitted(ctx.store, settings)
    with pytest.raises(Superseded, match="superseded by attempt 2 on linux pid 77, now started"):
        run_job(spec, ctx)
    assert ctx.renderer.steps_after_takeover == 1
    assert_left_to_the_other(ctx.store, settings, [spec])


def test_a_job_taken_over_after_its_render_writes_neither_png_nor_record(sleeper, settings):
    ctx = sleeper(None)
    [spec] = submitted(ctx.store, settings)
    with pytest.raises(Superseded):
        run_job(spec, ctx)
    assert_left_to_the_other(ctx.store, settings, [spec])


def test_a_failure_after_the_take_over_is_not_recorded_either(sleeper, settings) -> None:
    ctx = sleeper(None)
    [spec] = submitted(ctx.store, settings)
    with pytest.raises(Superseded):
        run_job(spec, ctx)
    with pytest.raises(Superseded):  # the task's time-limit path, say
        fail_job(spec.id, ctx, "time limit of 60 s exceeded", ErrorCode.TIME_LIMIT)
    assert_left_to_the_other(ctx.store, settings, [spec])


def test_a_group_taken_over_is_left_whole_to_the_other_worker(sleeper, settings) -> None:
    ctx = sleeper(3)
    specs = submitted(ctx.store, settings, n=3)
    with pytest.raises(Superseded):
        run_group(specs, ctx)  # one pass: no job of it is rendered alone afterwards
    assert ctx.renderer.steps_after_takeover == 1
    assert_left_to_the_other(ctx.store, settings, specs)


def test_an_attempt_that_holds_its_job_writes_as_before(sleeper, settings) -> None:
    ctx = sleeper(99)  # never taken over
    [spec] = submitted(ctx.store, settings)
    record = run_job(spec, ctx)
    assert record.status is JobStatus.SUCCEEDED and record.attempts == 1
    assert record.render.pid == 41
    assert [p.name for p in settings.results_path.rglob("*.png")] == [f"{spec.id}-00.png"]
