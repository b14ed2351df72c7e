"""One job, start to finish: record it started, render, save, record the outcome.

Celery-free, so the whole path can be driven from a test or a benchmark directly. Every date
comes from the Redis server's clock (JobStore.now), and every write after the start is fenced
by the attempt (worker/jobs/fencing.py): a worker that slept past its lease writes nothing.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import redis
from PIL.PngImagePlugin import PngInfo

from config import keys as names
from config import records
from config.errors import (
    BrokerUnavailable,
    ErrorCode,
    InputMissing,
    InvalidJob,
    JobCancelled,
    JobNotFound,
    LoraUnavailable,
    ModelUnavailable,
    NightshiftError,
    RenderFailed,
    Superseded,
)
from config.models import check_job
from config.records import JobRecord, JobStatus, RenderInfo
from config.schema import JobSpec, Limits, parse_job
from config.store import previews
from worker.jobs import deadletter, fencing, writebehind
from worker.jobs.outputs import output_paths, outputs_complete, png_info, save_png
from worker.render import preview
from worker.render.renderer import Draw, Inputs, Renderer, RenderResult
from worker.runtime import WorkerContext

logger = logging.getLogger(__name__)

Progress = dict[str, int]  # image, images, step, steps: what a progress bar draws


def decode_job(payload: object, ctx: WorkerContext) -> JobSpec:
    """Validate a message again on this side: anyone who can reach Redis can write one."""
    return parse_job(payload, Limits.from_settings(ctx.settings))


def run_job(spec: JobSpec, ctx: WorkerContext, delivery_tag: str | None = None) -> JobRecord | None:
    """Run one job; None when its file is being written behind the task (delivery_tag: its
    message's, which makes that possible: worker/jobs/writebehind.py)."""
    done = start_job(spec, ctx)
    if done is not None:
        return done
    rendered = render_pass(spec, ctx)
    if isinstance(rendered, JobRecord):
        return rendered
    result, progress = rendered
    tag = delivery_tag if writebehind.enabled(ctx.settings.write_behind, ctx.plan.device) else None
    if tag and writebehind.hand_over(
        ctx, spec, tag, lambda: write_outcome(spec, ctx, result, progress)
    ):
        return None
    return finish_job(spec, ctx, result, progress)


def write_outcome(
    spec: JobSpec, ctx: WorkerContext, result: RenderResult, progress: Progress | None
) -> bool:
    """finish_job behind the task (worker/jobs/writebehind.py), where nothing may raise: True
    once the job's outcome is recorded, or is another attempt's to record."""
    try:
        finish_job(spec, ctx, result, progress)
    except Superseded as exc:  # a newer attempt owns the job, and its own message
        logger.warning("%s; its file was not written", exc)
    except BrokerUnavailable as exc:
        # Not recorded: the copy of its message stays; once its lease is gone the sweep puts
        # it back, and the next attempt finds the file (or renders it again).
        logger.warning("job %s: Redis unavailable after its render: %s", spec.id, exc)
        return False
    except NightshiftError:
        pass  # recorded already (the results folder refused the file)
    except Exception as exc:
        logger.exception("job %s: writing its result failed", spec.id)
        reason = f"internal error: {type(exc).__name__}: {exc}"
        try:
            fail_job(spec.id, ctx, reason, ErrorCode.INTERNAL)
        except NightshiftError:
            return False
    return True


def render_started(spec: JobSpec, ctx: WorkerContext) -> JobRecord:
    """Render a job already recorded as started, save it, and record the outcome."""
    rendered = render_pass(spec, ctx)
    if isinstance(rendered, JobRecord):
        return rendered
    return finish_job(spec, ctx, *rendered)


def render_pass(
    spec: JobSpec, ctx: WorkerContext
) -> JobRecord | tuple[RenderResult, Progress | None]:
    """Render a started job: its result and last step, or its record when it ended without
    one (cancelled). A failure is recorded and raised."""
    reporter = ProgressReporter(ctx, spec)
    try:
        renderer, load_s = pick_renderer([spec], ctx)
        inputs = Inputs(*ctx.inputs.images(spec)) if spec.init_image else None
        stop = CancelCheck(ctx, spec.id)
        writebehind.next_render()
        result = renderer.render(spec, on_step=reporter, should_stop=stop, inputs=inputs)
    except JobCancelled as exc:
        return record_cancelled(ctx, spec.id, str(exc))
    except (RenderFailed, ModelUnavailable, LoraUnavailable, InputMissing, InvalidJob) as exc:
        # A model, LoRA or input that is not there fails this job only: the worker goes on.
        fail_job(spec.id, ctx, str(exc), exc.code)
        raise
    result.model_load_s = None if load_s is None else round(load_s, 3)
    return result, reporter.final


def model_name(spec: JobSpec, ctx: WorkerContext) -> str:
    """The catalog name a job renders with: its own, else the worker's default."""
    return spec.model or ctx.catalog.default


def pick_renderer(specs: list[JobSpec], ctx: WorkerContext) -> tuple[Renderer, float | None]:
    """The renderer for jobs of one model, loaded if need be (the seconds that took, or None).

    Raises ModelUnavailable for a model this worker's catalog lacks or cannot load, and
    InvalidJob for a job its model cannot render (another family's fields).
    """
    name = model_name(specs[0], ctx)
    entry = ctx.catalog.entries.get(name)
    if entry is None:
        known = ", ".join(ctx.catalog.names)
        raise ModelUnavailable(f"model {name!r}: not in this worker's catalog ({known})")
    for spec in specs:
        check_job(spec, entry)  # the producer checked too, but anyone can write to Redis
    return ctx.models.get(name)


def start_job(spec: JobSpec, ctx: WorkerContext) -> JobRecord | None:
    """Record the job started; returns its final record instead when there is nothing to do."""
    store = ctx.store
    writebehind.wait_for(spec.id)
    try:
        # With the server's clock, which created_at and expires_at were stamped with: one
        # round trip, and the start's write below needs no read of its own.
        snapshot = store.read(spec.id)
    except JobNotFound:  # a message pushed straight into Redis has no record yet; give it one
        store.create(JobRecord(spec=spec, created_at=spec.created_at))
        snapshot = store.read(spec.id)
    record, now = snapshot.record, snapshot.now
    if record.status.finished:
        logger.info("job %s is already %s; nothing to do", spec.id, record.status.value)
        return record
    if _stale(spec, record):
        return _skip_stale(spec, record)
    if record.status is JobStatus.QUEUED and spec.expires_at and now > spec.expires_at:
        return _expire(ctx, spec, now)
    paths = output_paths(ctx.settings.results_path, spec)
    if record.status is JobStatus.STARTED and outputs_complete(paths):
        # Crashed after writing the images but before the ack: do not render again.
        return store.update(spec.id, lambda r: _succeed(r, paths, None, now), snapshot)
    if deadletter.exhausted(record, ctx.settings.max_attempts):
        # Every earlier attempt killed its worker: stop here instead of crash-looping.
        return deadletter.give_up(store, record, ctx.settings.max_attempts)
    render = _render_info(ctx, spec)
    family = _family(spec, ctx)
    try:
        started = store.update(spec.id, lambda r: _start(r, spec, render, family, now), snapshot)
    except _StaleMessage as stale:
        return _skip_stale(spec, stale.record)
    fencing.hold(started)
    return None


def finish_job(
    spec: JobSpec, ctx: WorkerContext, result: RenderResult, progress: Progress | None = None
) -> JobRecord:
    """Save the job's images with their metadata and record it succeeded (with progress,
    the last step's, which the reporter left for this write)."""
    paths = output_paths(ctx.settings.results_path, spec)
    # One round trip for the first file's fencing check, the clock and the success write's
    # compare-and-set (which still refuses a record changed since: JobStore.update).
    snapshot = ctx.store.read(spec.id)
    fencing.verify(snapshot.record)
    try:
        for i, (image, seed, path) in enumerate(
            zip(result.images, result.seeds, paths, strict=True)
        ):
            if i:  # checked before each file: a superseded attempt never replaces the newer one's
                fencing.check(ctx.store, spec.id)
            save_png(image, path, _png_info(spec, seed, result, ctx))
            logger.info("job %s: wrote %s (pid %d)", spec.id, path, ctx.pid)
    except OSError as exc:
        reason = f"cannot write results to {paths[0].parent}: {exc.strerror or exc}"
        fail_job(spec.id, ctx, reason, ErrorCode.RESULTS_DIR)
        raise RenderFailed(reason, code=ErrorCode.RESULTS_DIR) from exc
    now = snapshot.clock()  # once the files are durable
    return fencing.record_outcome(
        ctx.store, spec.id, lambda r: _succeed(r, paths, result, now, progress), snapshot
    )


def record_cancelled(ctx: WorkerContext, job_id: str, reason: str) -> JobRecord:
    now = ctx.store.now()
    stopped = fencing.record_outcome(ctx.store, job_id, lambda r: records.stop(r, reason, now))
    # Only once stopped: the key of a job another attempt holds now is that attempt's to see.
    ctx.store.redis.delete(names.cancel_key(job_id))
    return stopped


def fail_job(job_id: str, ctx: WorkerContext, reason: str, code: ErrorCode) -> JobRecord:
    """Record a failure: the renderer's, the results folder's, or one from outside run_job
    (time limit, unexpected error)."""
    now = ctx.store.now()
    return fencing.record_outcome(ctx.store, job_id, lambda r: records.fail(r, reason, code, now))


def _expire(ctx: WorkerContext, spec: JobSpec, now: float) -> JobRecord:
    # Not started in time: dropped, with the reason, instead of rendering too late.
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(spec.expires_at))
    reason = f"expired: not started by {when}"
    return ctx.store.update(spec.id, lambda r: records.cancel(r, reason, now, ErrorCode.EXPIRED))


def _render_info(ctx: WorkerContext, spec: JobSpec) -> RenderInfo:
    return RenderInfo(
        worker=ctx.hostname,
        pid=ctx.pid,
        device=ctx.plan.device,
        dtype=ctx.plan.dtype,
        # What was loaded (hub id or folder), as before models had names: the catalog name
        # the job asked for is spec.model.
        model=_source(spec, ctx),
        attention_slicing=ctx.plan.attention_slicing,
    )


def _source(spec: JobSpec, ctx: WorkerContext) -> str:
    entry = ctx.catalog.entries.get(model_name(spec, ctx))
    return entry.source if entry is not None else model_name(spec, ctx)


def _family(spec: JobSpec, ctx: WorkerContext) -> str | None:
    entry = ctx.catalog.entries.get(model_name(spec, ctx))
    return entry.family if entry is not None else None


class _StaleMessage(Exception):
    def __init__(self, record: JobRecord) -> None:
        self.record = record


def _stale(spec: JobSpec, record: JobRecord) -> bool:
    """Is this message an old one of a job moved to the front (producer/queue_front.py)?

    Each move sends a new message carrying one more `moved`, then writes that count into the
    record while the job is still queued. Fewer moves than the record: an old message. More:
    the new message of a move whose record write has not happened (or never will: the mover
    died), adopted while the job waits, stale once another message started it.
    """
    if spec.moved < record.spec.moved:
        return True
    return spec.moved > record.spec.moved and record.status is not JobStatus.QUEUED


def _skip_stale(spec: JobSpec, record: JobRecord) -> JobRecord:
    logger.info(
        "job %s: message with %d moves skipped, the record has %d (%s): moved to the front",
        spec.id,
        spec.moved,
        record.spec.moved,
        record.status.value,
    )
    return record


def _start(
    record: JobRecord, spec: JobSpec, render: RenderInfo, family: str | None, now: float
) -> None:
    # Asked again inside the compare-and-set: a move may have landed since the first read.
    if _stale(spec, record):
        raise _StaleMessage(record)
    if spec.moved > record.spec.moved:  # adopt the move's message (see _stale)
        record.spec = spec
    records.start(record, render, now)
    if family is not None:  # a job without a model: its family is the default model's
        record.model_family = family


def _png_info(spec: JobSpec, seed: int, result: RenderResult, ctx: WorkerContext) -> PngInfo:
    return png_info(
        spec,
        seed,
        result.sampler,
        result.model or model_name(spec, ctx),
        model_hash=result.model_hash,
        family=result.family,
        conditioning=result.conditioning,
        lora_hashes=result.lora_hashes,
    )


def _succeed(
    record: JobRecord,
    paths: list[Path],
    result: RenderResult | None,
    now: float,
    progress: Progress | None = None,
) -> None:
    records.succeed(record, [str(p) for p in paths], now, progress)
    if result is not None:
        record.render_s = round(result.render_s, 3)
        record.render.sampler = result.sampler
        record.render.retried_safer = result.retried_safer
        record.render.nsfw = result.nsfw
        record.render.model_load_s = result.model_load_s


class ProgressReporter:
    """Step hook that writes progress into the record, at most once per interval, and with
    it, at most once per preview interval, a live preview (config/store/previews.py).

    The first write comes one interval after the start (the record already says
    "started"), and the very last step is not written here but kept in `final` for the
    success record: a short job costs no progress writes, and no preview, at all. A
    preview is stored before the progress that names its step (`preview`), so whoever
    reads that step finds the picture.
    """

    def __init__(
        self,
        ctx: WorkerContext,
        spec: JobSpec,
        clock: Callable[[], float] = time.monotonic,
        first_image: int = 0,
    ):
        self.ctx, self.spec, self.clock = ctx, spec, clock
        self.last = clock()
        self.final: Progress | None = None
        self.first_image = first_image  # the job's first image in its pass (a grouped pass)
        self._draw: Draw | None = None  # this step's, from the renderer (PreviewHook)
        self._preview_at = -math.inf
        self._preview_step: int | None = None
        self._preview_warned = False

    def preview(self, draw: Draw) -> None:
        self._draw = draw

    def __call__(self, image_index: int, step: int, steps: int) -> None:
        draw, self._draw = self._draw, None
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
        if draw is not None:
            self._publish_preview(draw, step, steps, now)
        if self._preview_step is not None:
            progress["preview"] = self._preview_step

        def set_progress(record: JobRecord) -> None:
            record.progress = progress

        try:  # fenced: a superseded attempt stops here (Superseded out of the step callback)
            self.ctx.store.update(self.spec.id, fencing.fenced(set_progress))
        except BrokerUnavailable as exc:  # progress is a courtesy: never fail a render for it
            logger.warning("job %s: progress not recorded: %s", self.spec.id, exc)

    def _publish_preview(self, draw: Draw, step: int, steps: int, now: float) -> None:
        interval = self.ctx.settings.preview_interval_s
        if not interval or now - self._preview_at < interval:
            return
        self._preview_at = now
        try:
            image = preview.encode(draw(self.first_image))
            previews.put(self.ctx.store.redis, self.spec.id, previews.Preview(image, step, steps))
        except Exception as exc:  # a preview is a courtesy too: whatever broke, render on
            if not self._preview_warned:
                logger.warning("job %s: no live preview: %s", self.spec.id, exc)
                self._preview_warned = True
            return
        self._preview_step = step


class GroupReporter:
    """The step hook of a grouped pass: each job's reporter, its preview its own slice."""

    def __init__(self, reporters: list[ProgressReporter]) -> None:
        self.reporters = reporters

    def preview(self, draw: Draw) -> None:
        for report in self.reporters:
            report.preview(draw)

    def __call__(self, image: int, step: int, steps: int) -> None:
        for report in self.reporters:
            report(0, step, steps)


class CancelCheck:
    """Asked at every denoising step; reads Redis at most once per progress interval.

    True when the job was cancelled; raises Superseded (out of the renderer's step callback,
    which ends the pass) when another worker's attempt took the job over.
    """

    def __init__(
        self, ctx: WorkerContext, job_id: str, clock: Callable[[], float] = time.monotonic
    ):
        self.ctx, self.key, self.clock = ctx, names.cancel_key(job_id), clock
        self.record_key = names.job_key(job_id)
        self.last = clock()  # a cancel before the start was seen by start_job

    def __call__(self) -> bool:
        now = self.clock()
        if now - self.last < self.ctx.settings.progress_interval_s:
            return False
        self.last = now
        try:  # the cancel key and the record in one round trip
            pipe = self.ctx.store.redis.pipeline(transaction=False)
            pipe.exists(self.key)
            pipe.get(self.record_key)
            cancelled, raw = pipe.execute()
        except redis.RedisError as exc:  # Redis away: keep rendering, ask again next time
            logger.warning("cancel check skipped: %s", exc)
            return False
        if raw is not None:
            fencing.verify(JobRecord.from_json(raw))
        return bool(cancelled)
