"""Grouped rendering: compatible jobs (one model, one size...) from one group message share
one forward pass.

The producer queues an overnight batch as group messages (`nightshift.render_group`,
at most max_group_size jobs each); the worker decides how many share a pass. On mps
the answer is always one (the guide: batching is unreliable there, iterate instead);
on cuda with the fast path, groups are cut into the sizes compiled at start-up, so no
job ever triggers a compile. Every job keeps its own record, seed, metadata and file;
the message is acknowledged only after every job in it is recorded (late acks), and a
redelivered message skips the jobs that already finished. A group message over
max_group_size, or naming one job twice, is refused before any job in it is decoded
(`check_group`: the worker's inbound guard and the task both ask it).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait

from config.errors import (
    InvalidInput,
    InvalidJob,
    JobCancelled,
    ModelUnavailable,
    NightshiftError,
    Superseded,
)
from config.records import JobRecord
from config.schema import JobSpec
from worker.jobs import writebehind
from worker.jobs.run import (
    CancelCheck,
    GroupReporter,
    Progress,
    ProgressReporter,
    fail_job,
    finish_job,
    pick_renderer,
    record_cancelled,
    render_started,
    start_job,
)
from worker.render.renderer import RenderResult
from worker.runtime import WorkerContext

logger = logging.getLogger(__name__)

GroupKey = tuple[str, int, int, int, float, str, bool, tuple[tuple[str, float], ...]]
SAVE_THREADS = 8


def check_group(payloads: object, max_size: int) -> list[object]:
    """A group message's job payloads, refused when they are not a list of 1..max_size jobs
    with distinct ids. Counts only: no payload is validated here (decode_job does that)."""
    if not isinstance(payloads, list) or not payloads:
        raise InvalidInput("group", payloads, "must be a non-empty list of job payloads")
    if len(payloads) > max_size:
        reason = f"holds {len(payloads)} jobs, more than NIGHTSHIFT_MAX_GROUP_SIZE ({max_size})"
        raise InvalidInput("group", len(payloads), reason)
    ids = Counter(p["id"] for p in payloads if isinstance(p, dict) and isinstance(p.get("id"), str))
    twice = sorted(i for i, n in ids.items() if n > 1)
    if twice:
        raise InvalidInput("group", twice, "names the same job more than once")
    return payloads


def group_key(spec: JobSpec) -> GroupKey | None:
    """Jobs with equal keys can share a pass; None: this job always renders alone.

    One pass is one model with one set of LoRAs at the same weights (adapters are the model's
    state, not an image's). Jobs with and without a negative prompt never share one: SDXL
    encodes an empty negative prompt as zeros, which a pass can do for all its images or none.
    img2img, inpainting and hires jobs render alone: each has its own input or second pass.
    """
    if spec.images != 1 or spec.mode != "txt2img" or spec.hires is not None:
        return None
    no_negative = not (spec.negative_prompt or spec.negative_prompt_2)
    size_steps = (spec.width, spec.height, spec.steps, spec.guidance)
    loras = tuple((lora.name, lora.weight) for lora in spec.loras)
    return (spec.model or "", *size_steps, spec.scheduler or "", no_negative, loras)


def allowed_sizes(ctx: WorkerContext) -> tuple[int, ...]:
    """Group sizes this worker may render in one pass: (1,) on mps, as the guide demands."""
    if ctx.plan.device == "mps":
        return (1,)
    if ctx.group_sizes:
        return ctx.group_sizes  # the compiled sizes: anything else would compile in a job
    return tuple(range(1, ctx.settings.max_group_size + 1))


def plan_batches(specs: Sequence[JobSpec], sizes: Sequence[int]) -> list[list[JobSpec]]:
    """Cut jobs into passes: compatible jobs together, each pass the largest allowed size."""
    buckets: dict[GroupKey | None, list[JobSpec]] = {}
    for spec in specs:
        buckets.setdefault(group_key(spec), []).append(spec)
    batches: list[list[JobSpec]] = []
    for key, members in buckets.items():
        if key is None:
            batches += [[spec] for spec in members]
            continue
        while members:
            size = max(s for s in sizes if s <= len(members))
            batches.append(members[:size])
            members = members[size:]
    return batches


def run_group(specs: Sequence[JobSpec], ctx: WorkerContext) -> list[JobRecord]:
    """Render every job of a group message; one job's failure never fails the others."""
    # By id, in one pass: comparing JobSpec models (`spec in live`) made this quadratic.
    finished = {}
    for spec in specs:
        record = ctx.store.get(spec.id)
        if record.status.finished:
            finished[spec.id] = record
    live = [spec for spec in specs if spec.id not in finished]
    records = list(finished.values())
    for batch in plan_batches(live, allowed_sizes(ctx)):
        records += _run_batch(batch, ctx)
    return records


def _run_batch(batch: list[JobSpec], ctx: WorkerContext) -> list[JobRecord]:
    records: list[JobRecord] = []
    started: list[JobSpec] = []
    for spec in batch:
        done = start_job(spec, ctx)
        if done is None:
            started.append(spec)
        else:
            records.append(done)
    if len(started) == 1:
        return [*records, *_alone(started, ctx)]
    if started:
        records += _together(started, ctx)
    return records


def _together(specs: list[JobSpec], ctx: WorkerContext) -> list[JobRecord]:
    checks = [CancelCheck(ctx, spec.id) for spec in specs]
    # Each job's images follow the previous jobs' in the pass: its preview is its own slice.
    firsts = [sum(spec.images for spec in specs[:n]) for n in range(len(specs))]
    reporters = [
        ProgressReporter(ctx, spec, first_image=first)
        for spec, first in zip(specs, firsts, strict=True)
    ]
    on_step = GroupReporter(reporters)

    def should_stop() -> bool:
        # Stop the shared pass only when every job in it was cancelled.
        return all([check() for check in checks])

    try:
        renderer, load_s = pick_renderer(specs, ctx)
    except ModelUnavailable as exc:  # fail each job with the reason; no load tried again
        return [fail_job(spec.id, ctx, str(exc), exc.code) for spec in specs]
    except InvalidJob:
        return _alone(specs, ctx)  # the job at fault fails alone; the others render
    try:
        writebehind.next_render()
        results = renderer.render_group(specs, on_step, should_stop)
    except JobCancelled as exc:
        return [record_cancelled(ctx, spec.id, str(exc)) for spec in specs]
    except Superseded:
        raise  # the group's message is another worker's now (worker/jobs/fencing.py)
    except NightshiftError as exc:
        # Redo each job alone: the renderer's retry then fails only the job at fault.
        logger.warning("group of %d failed (%s); rendering each job alone", len(specs), exc)
        return _alone(specs, ctx)
    for result in results:
        result.model_load_s = None if load_s is None else round(load_s, 3)
    # PNG encoding (zlib) releases the GIL: saving a group's files side by side takes about
    # the time of one, where one after another it was a fifth of a CUDA group's time.
    pool = _save_pool()
    futures = [
        pool.submit(_finish, spec, ctx, result, check.key, report.final)
        for spec, check, report, result in zip(specs, checks, reporters, results, strict=True)
    ]
    wait(futures)  # every file settled before any failure is raised, as each job's own pass
    return [future.result() for future in futures]


_pool: ThreadPoolExecutor | None = None


def _save_pool() -> ThreadPoolExecutor:
    # One pool for the process's life, made in the rendering child at its first group: eight
    # new threads a group, night after night, is thread churn the allocator pays for.
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=SAVE_THREADS, thread_name_prefix="nightshift-png")
    return _pool


def _finish(
    spec: JobSpec,
    ctx: WorkerContext,
    result: RenderResult,
    cancel_key: str,
    progress: Progress | None,
) -> JobRecord:
    if ctx.store.redis.exists(cancel_key):
        return record_cancelled(ctx, spec.id, "cancelled while its group rendered")
    try:
        return finish_job(spec, ctx, result, progress)
    except Superseded:
        raise
    except NightshiftError:
        return ctx.store.get(spec.id)  # the failure is recorded already


def _alone(specs: list[JobSpec], ctx: WorkerContext) -> list[JobRecord]:
    records = []
    for spec in specs:
        try:
            records.append(render_started(spec, ctx))
        except Superseded:
            raise
        except NightshiftError:
            records.append(ctx.store.get(spec.id))  # the failure is recorded already
    return records
