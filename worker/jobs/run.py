"""One job, start to finish: record it started, render, save, record the outcome.

Celery-free, so the whole path can be driven from a test or a benchmark directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import redis

from config import keys as names
from config.errors import BrokerUnavailable, JobCancelled, JobNotFound, RenderFailed
from config.records import JobRecord, JobStatus, RenderInfo
from config.schema import JobSpec, Limits, parse_job
from worker.jobs import deadletter
from worker.jobs.outputs import output_paths, outputs_complete, png_info, save_png
from worker.render.renderer import RenderResult
from worker.runtime import WorkerContext

logger = logging.getLogger(__name__)

Progress = dict[str, int]  # image, images, step, steps: what a progress bar draws


def decode_job(payload: object, ctx: WorkerContext) -> JobSpec:
    """Validate a message again on this side: anyone who can reach Redis can write one."""
    return parse_job(payload, Limits.from_settings(ctx.settings))


def run_job(spec: JobSpec, ctx: WorkerContext) -> JobRecord:
    done = start_job(spec, ctx)
    return done if done is not None else render_started(spec, ctx)


def render_started(spec: JobSpec, ctx: WorkerContext) -> JobRecord:
    """Render a job already recorded as started, save it, and record the outcome."""
    reporter = ProgressReporter(ctx, spec)
    try:
        result = ctx.renderer.render(spec, on_step=reporter, should_stop=CancelCheck(ctx, spec.id))
    except JobCancelled as exc:
        return record_cancelled(ctx, spec.id, str(exc))
    except RenderFailed as exc:
        _record_end(ctx, spec.id, JobStatus.FAILED, str(exc))
        raise
    return finish_job(spec, ctx, result, reporter.final)


def start_job(spec: JobSpec, ctx: WorkerContext) -> JobRecord | None:
    """Record the job started; returns its final record instead when there is nothing to do."""
    store = ctx.store
    try:
        record = store.get(spec.id)
    except JobNotFound:  # a message pushed straight into Redis has no record yet; give it one
        store.create(JobRecord(spec=spec, created_at=spec.created_at))
        record = store.get(spec.id)
    if record.status.finished:
        logger.info("job %s is already %s; nothing to do", spec.id, record.status.value)
        return record
    if record.status is JobStatus.QUEUED and spec.expires_at and time.time() > spec.expires_at:
        # Not started in time: dropped, with the reason, instead of rendering too late.
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(spec.expires_at))
        return _record_end(ctx, spec.id, JobStatus.CANCELLED, f"expired: not started by {when}")
    paths = output_paths(ctx.settings.results_path, spec)
    if record.status is JobStatus.STARTED and outputs_complete(paths):
        # Crashed after writing the images but before the ack: do not render again.
        return store.update(spec.id, lambda r: _succeed(r, paths, None))
    if deadletter.exhausted(record, ctx.settings.max_attempts):
        # Every earlier attempt killed its worker: stop here instead of crash-looping.
        return deadletter.give_up(store, record, ctx.settings.max_attempts)
    store.update(spec.id, lambda r: _start(r, ctx))
    return None


def finish_job(
    spec: JobSpec, ctx: WorkerContext, result: RenderResult, progress: Progress | None = None
) -> JobRecord:
    """Save the job's images with their metadata and record it succeeded (with progress,
    the last step's, which the reporter left for this write)."""
    paths = output_paths(ctx.settings.results_path, spec)
    try:
        for image, seed, path in zip(result.images, result.seeds, paths, strict=True):
            save_png(image, path, png_info(spec, seed, result.sampler, ctx.settings.model))
    except OSError as exc:
        reason = f"cannot write results to {paths[0].parent}: {exc.strerror or exc}"
        _record_end(ctx, spec.id, JobStatus.FAILED, reason)
        raise RenderFailed(reason) from exc
    return ctx.store.update(spec.id, lambda r: _succeed(r, paths, result, progress))


def record_cancelled(ctx: WorkerContext, job_id: str, reason: str) -> JobRecord:
    ctx.store.redis.delete(names.cancel_key(job_id))
    return _record_end(ctx, job_id, JobStatus.CANCELLED, reason)


def fail_job(job_id: str, ctx: WorkerContext, reason: str) -> None:
    """Record a failure that happened outside run_job (time limit, unexpected error)."""
    _record_end(ctx, job_id, JobStatus.FAILED, reason)


def _record_end(ctx: WorkerContext, job_id: str, status: JobStatus, error: str) -> JobRecord:
    return ctx.store.update(job_id, lambda r: _end(r, status, error))


def _start(record: JobRecord, ctx: WorkerContext) -> None:
    now = time.time()
    record.status = JobStatus.STARTED
    record.started_at = now
    record.queue_wait_s = round(now - record.created_at, 3)
    record.attempts += 1
    record.error = None
    record.render = RenderInfo(
        worker=ctx.hostname,
        pid=ctx.pid,
        device=ctx.plan.device,
        dtype=ctx.plan.dtype,
        model=ctx.settings.model,
        attention_slicing=ctx.plan.attention_slicing,
    )


def _succeed(
    record: JobRecord,
    paths: list[Path],
    result: RenderResult | None,
    progress: Progress | None = None,
) -> None:
    _end(record, JobStatus.SUCCEEDED, None)
    record.outputs = [str(p) for p in paths]
    if progress:
        record.progress = progress
    if result is not None:
        record.render_s = round(result.render_s, 3)
        record.render.sampler = result.sampler
        record.render.retried_safer = result.retried_safer
        record.render.nsfw = result.nsfw


def _end(record: JobRecord, status: JobStatus, error: str | None) -> None:
    record.status = status
    record.error = error
    record.finished_at = time.time()


class ProgressReporter:
    """Step hook that writes progress into the record, at most once per interval.

    The first write comes one interval after the start (the record already says
    "started"), and the very last step is not written here but kept in `final` for the
    success record: a short job costs no progress writes at all.
    """

    def __init__(
        self, ctx: WorkerContext, spec: JobSpec, clock: Callable[[], float] = time.monotonic
    ):
        self.ctx, self.spec, self.clock = ctx, spec, clock
        self.last = clock()
        self.final: Progress | None = None

    def __call__(self, image_index: int, step: int, steps: int) -> None:
        now = self.clock()
        if step < steps and now - self.last < self.ctx.settings.progress_interval_s:
            return
        self.last = now
        progress = {
            "image": image_index + 1,
            "images": self.spec.images,
            "step": step,
            "steps": steps,
        }
        if step >= steps and image_index + 1 >= self.spec.images:
            self.final = progress
            return

        def set_progress(record: JobRecord) -> None:
            record.progress = progress

        try:
            self.ctx.store.update(self.spec.id, set_progress)
        except BrokerUnavailable as exc:  # progress is a courtesy: never fail a render for it
            logger.warning("job %s: progress not recorded: %s", self.spec.id, exc)


class CancelCheck:
    """Asked at every denoising step; reads Redis at most once per progress interval."""

    def __init__(
        self, ctx: WorkerContext, job_id: str, clock: Callable[[], float] = time.monotonic
    ):
        self.ctx, self.key, self.clock = ctx, names.cancel_key(job_id), clock
        self.last = clock()  # a cancel before the start was seen by start_job

    def __call__(self) -> bool:
        now = self.clock()
        if now - self.last < self.ctx.settings.progress_interval_s:
            return False
        self.last = now
        try:
            return bool(self.ctx.store.redis.exists(self.key))
        except redis.RedisError as exc:  # Redis away: keep rendering, ask again next time
            logger.warning("cancel check skipped: %s", exc)
            return False
