"""Job records (issue 10): one owner for each transition, failure reasons as codes.

The transitions, the codes and the settings checks need nothing but Python; the cancel
protocol is checked against the real redis-server of tests/conftest.py (`redis_url`).
"""

from __future__ import annotations

import ast
import json
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace
from typing import Any, get_args

import pytest
from PIL import Image

from config import records
from config.errors import ErrorCode, InvalidSettings, RenderFailed
from config.records import JobRecord, JobStatus, RenderInfo
from config.schema import JobSpec, Limits, SchedulerName, new_job
from config.settings import HARD_LIMIT_GRACE_S, Settings
from config.window import Window
from worker.render.device import DevicePlan
from worker.render.renderer import Renderer
from worker.render.samplers import SCHEDULERS

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_000.0
RENDER = RenderInfo(worker="w@host", pid=42, device="cpu", dtype="float32", model="tiny")


def a_record(**changes: Any) -> JobRecord:
    params = {"id": "job-1", "seed": 1, "steps": 2, "width": 64, "height": 64}
    spec = new_job("a lighthouse", Settings(), created_at=NOW - 10, **params)
    return JobRecord(spec=spec, created_at=NOW - 10).model_copy(update=changes)


def finished_with_everything() -> JobRecord:
    """A record that succeeded once and failed after: every field a retry must clear is set."""
    return a_record(
        status=JobStatus.FAILED,
        started_at=NOW - 5,
        finished_at=NOW,
        outputs=["/r/job-1.png"],
        progress={"image": 1, "images": 1, "step": 2, "steps": 2},
        error="time limit of 60 s exceeded",
        error_code="time_limit",
        attempts=2,
    )


# 1. Each transition's effect on the record.


def test_start_counts_an_attempt_times_the_wait_and_says_where_it_runs() -> None:
    record = a_record(error="earlier", error_code="internal", attempts=1)
    records.start(record, RENDER, NOW)
    assert record.status is JobStatus.STARTED
    assert (record.started_at, record.queue_wait_s, record.attempts) == (NOW, 10.0, 2)
    assert record.error is None and record.error_code is None
    assert record.render == RENDER


def test_succeed_keeps_the_files_and_the_last_progress() -> None:
    record = a_record(status=JobStatus.STARTED, error="x", error_code="internal")
    last = {"image": 1, "images": 1, "step": 2, "steps": 2}
    records.succeed(record, ["/r/a.png"], NOW, last)
    assert record.status is JobStatus.SUCCEEDED and record.finished_at == NOW
    assert record.outputs == ["/r/a.png"] and record.progress == last
    assert record.error is None and record.error_code is None


def test_succeed_without_progress_leaves_the_progress_written_so_far() -> None:
    record = a_record(status=JobStatus.STARTED, progress={"step": 1})
    records.succeed(record, [], NOW)
    assert record.progress == {"step": 1}


def test_fail_records_the_message_and_its_code() -> None:
    record = a_record(status=JobStatus.STARTED)
    records.fail(record, "cannot write results to /r: disk full", ErrorCode.RESULTS_DIR, NOW)
    assert record.status is JobStatus.FAILED and record.finished_at == NOW
    assert record.error == "cannot write results to /r: disk full"
    assert record.error_code == "results_dir"


def test_give_up_fails_with_the_attempts_and_the_dead_letter_code() -> None:
    record = a_record(status=JobStatus.STARTED, attempts=3)
    records.give_up(record, 3, NOW)
    assert record.status is JobStatus.FAILED and record.finished_at == NOW
    assert record.error_code == "dead_letter"
    assert "each of its 3 attempts (max_attempts 3)" in (record.error or "")


def test_cancel_ends_a_queued_job_with_its_reason_and_code() -> None:
    record = a_record()
    records.cancel(record, "expired: not started by 07:00", NOW, ErrorCode.EXPIRED)
    assert record.status is JobStatus.CANCELLED and record.finished_at == NOW
    assert (record.error, record.error_code) == ("expired: not started by 07:00", "expired")


@pytest.mark.parametrize("status", [s for s in JobStatus if s is not JobStatus.QUEUED])
def test_cancel_leaves_a_job_that_is_not_queued_alone(status: JobStatus) -> None:
    record = a_record(status=status)
    before = record.model_copy(deep=True)
    records.cancel(record, "cancelled before it started", NOW)
    assert record == before


def test_stop_ends_a_started_job_as_cancelled() -> None:
    record = a_record(status=JobStatus.STARTED)
    records.stop(record, "job job-1 cancelled at step 1", NOW)
    assert record.status is JobStatus.CANCELLED and record.finished_at == NOW
    assert (record.error, record.error_code) == ("job job-1 cancelled at step 1", "cancelled")


def test_requeue_clears_the_last_run_but_keeps_the_attempts() -> None:
    record = finished_with_everything()
    records.requeue(record)
    assert record.status is JobStatus.QUEUED
    assert record.started_at is None and record.finished_at is None
    assert record.outputs == [] and record.progress == {}
    assert record.error is None and record.error_code is None
    assert record.attempts == 2


def test_reset_is_a_requeue_with_a_fresh_attempt_budget() -> None:
    record, requeued = finished_with_everything(), finished_with_everything()
    records.reset(record)
    records.requeue(requeued)
    assert record.attempts == 0
    assert record == requeued.model_copy(update={"attempts": 0})


# 2. One cancel protocol, used by both sides, against a real Redis.


# 3. No status changes outside config/records.py.


def _status_assignments(tree: ast.AST) -> list[int]:
    """Lines that store into an attribute named `status` (`x.status = ...`, `x.status, y =
    ...`, `x.status += ...`, `setattr(x, "status", ...)`); reading one is fine."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "status":
            if isinstance(node.ctx, ast.Store):
                lines.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            args = node.args
            if node.func.id == "setattr" and len(args) > 1 and _is_status(args[1]):
                lines.append(node.lineno)
    return sorted(lines)


def _is_status(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value == "status"


def test_only_config_records_assigns_a_status() -> None:
    owner = ROOT / "config" / "records.py"
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for package in ("config", "worker", "producer")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != owner
        for line in _status_assignments(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert found == [], "status changes belong in config/records.py: " + ", ".join(found)


def test_the_status_check_would_see_an_assignment() -> None:
    source = """
record.status = "failed"
r.status, x = 1, 2
r.status += ""
setattr(r, "status", "queued")
counts[record.status] += 1
other.state = record.status.value
"""
    assert _status_assignments(ast.parse(source)) == [2, 3, 4, 5]


# 4. Failure reasons as codes: the renderer's, the record's, the metrics label.


class _Tensor:
    """Just enough of a tensor for the renderer's checks: all finite, or not."""

    def __init__(self, finite: bool) -> None:
        self.finite = finite

    def isfinite(self) -> _Tensor:
        return self

    def all(self) -> bool:
        return self.finite


def a_renderer(monkeypatch: pytest.MonkeyPatch, **parts: Any) -> Renderer:
    plan = DevicePlan(device="cpu", dtype="float32", attention_slicing=False, batch_images=True)
    renderer = Renderer(SimpleNamespace(scheduler=object()), plan, "tiny")
    for name, fake in parts.items():
        monkeypatch.setattr(renderer, name, fake)
    return renderer


def a_spec() -> JobSpec:
    return new_job("a test", Settings(), steps=2, width=64, height=64, seed=5)


def test_non_finite_latents_fail_with_the_non_finite_code(monkeypatch: pytest.MonkeyPatch) -> None:
    renderer = a_renderer(monkeypatch, _denoise=lambda run, stage, safer: _Tensor(False))
    with pytest.raises(RenderFailed, match="non-finite latents") as failed:
        renderer.render(a_spec())
    assert failed.value.code is ErrorCode.NON_FINITE


def test_non_finite_pixels_fail_with_the_non_finite_code(monkeypatch: pytest.MonkeyPatch) -> None:
    renderer = a_renderer(
        monkeypatch,
        _denoise=lambda run, stage, safer: _Tensor(True),
        _decode=lambda latents, float32: _Tensor(False),
    )
    with pytest.raises(RenderFailed, match="non-finite decoded pixels") as failed:
        renderer.render(a_spec())
    assert failed.value.code is ErrorCode.NON_FINITE


def test_an_all_black_picture_fails_with_the_black_image_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    renderer = a_renderer(
        monkeypatch,
        _denoise=lambda run, stage, safer: _Tensor(True),
        _decode=lambda latents, float32: _Tensor(True),
        _finish=lambda decoded: ([Image.new("RGB", (8, 8))], [False]),
    )
    with pytest.raises(RenderFailed, match="all-black image for seed 5") as failed:
        renderer.render(a_spec())
    assert failed.value.code is ErrorCode.BLACK_IMAGE


@pytest.mark.parametrize(
    "message", ["MPS backend out of memory (MPS allocated: 17 GB)", "CUDA out of memory."]
)
def test_running_out_of_memory_fails_at_once_with_its_code(
    monkeypatch: pytest.MonkeyPatch, message: str
) -> None:
    calls = []

    def denoise(run: Any, stage: Any, safer: bool) -> Any:
        calls.append(safer)
        raise RuntimeError(message)

    renderer = a_renderer(monkeypatch, _denoise=denoise)
    with pytest.raises(RenderFailed, match="out of memory") as failed:
        renderer.render(a_spec())
    assert failed.value.code is ErrorCode.OUT_OF_MEMORY
    assert len(calls) == 1  # no safer retry: it would need more memory, not less


def test_any_other_runtime_error_is_left_to_the_task(monkeypatch: pytest.MonkeyPatch) -> None:
    def denoise(run: Any, stage: Any, safer: bool) -> Any:
        raise RuntimeError("expected scalar type Half")

    with pytest.raises(RuntimeError, match="scalar type Half"):
        a_renderer(monkeypatch, _denoise=denoise).render(a_spec())


def test_every_error_carries_a_code_which_a_raise_may_override() -> None:
    assert RenderFailed("x").code is ErrorCode.INTERNAL
    assert RenderFailed("x", code=ErrorCode.RESULTS_DIR).code is ErrorCode.RESULTS_DIR
    assert InvalidSettings("NIGHTSHIFT_X", 1, "bad").code is ErrorCode.INVALID_SETTINGS
    assert str(InvalidSettings("NIGHTSHIFT_X", 1, "bad")) == "NIGHTSHIFT_X: bad (got 1)"


def test_a_record_written_before_error_codes_still_reads() -> None:
    failed = a_record(status=JobStatus.FAILED, error="time limit of 60 s exceeded")
    raw = json.loads(failed.to_json())
    del raw["error_code"]
    old = JobRecord.from_json(json.dumps(raw))
    assert old.error == "time limit of 60 s exceeded" and old.error_code is None


def test_the_failures_label_is_the_records_code_not_its_message() -> None:
    from worker.hooks.metrics import counter_fields

    coded = a_record()
    records.fail(coded, "anything at all", ErrorCode.TIME_LIMIT, NOW)
    legacy = a_record(status=JobStatus.FAILED, error="time limit of 60 s exceeded")
    assert counter_fields(coded)["failures:time_limit"] == 1
    assert counter_fields(legacy)["failures:other"] == 1


# 5. Settings and schema agree with each other.


def test_the_schedulers_a_job_may_name_are_the_ones_the_worker_has() -> None:
    assert set(get_args(SchedulerName)) == set(SCHEDULERS)


def test_the_default_limits_are_the_default_settings() -> None:
    settings_field = {
        "max_images": "max_images_per_job",
        "max_pixels": "max_pixels",
        "max_steps": "max_steps",
        "max_prompt_chars": "max_prompt_chars",
    }
    assert {f.name for f in fields(Limits)} == set(settings_field)
    for limit, setting in settings_field.items():
        assert getattr(Limits(), limit) == Settings.model_fields[setting].default, limit


def test_a_hard_time_limit_not_below_the_visibility_timeout_is_refused() -> None:
    visibility = 7200
    ok = Settings.from_env(job_time_limit_s=visibility - HARD_LIMIT_GRACE_S - 1)
    assert ok.hard_time_limit_s == visibility - 1
    with pytest.raises(InvalidSettings) as refused:
        Settings.from_env(job_time_limit_s=visibility - HARD_LIMIT_GRACE_S)
    message = str(refused.value)
    assert "NIGHTSHIFT_JOB_TIME_LIMIT_S" in message and "NIGHTSHIFT_VISIBILITY_TIMEOUT_S" in message
    assert f"{visibility - HARD_LIMIT_GRACE_S} + {HARD_LIMIT_GRACE_S} = {visibility}" in message


def test_a_bad_window_is_refused_at_construction_naming_the_variable() -> None:
    with pytest.raises(InvalidSettings, match=r"NIGHTSHIFT_WORKER_WINDOW: .*'25:00-07:00'"):
        Settings.from_env(worker_window="25:00-07:00")


def test_the_window_is_parsed_by_the_settings() -> None:
    assert Settings.from_env(worker_window="22:00-07:00").window == Window(22 * 60, 7 * 60)
    assert Settings.from_env(worker_window="").window is None
