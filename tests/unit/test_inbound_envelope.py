"""The inbound guard's checks, without a service: which messages may run, and why not.

The messages are built as the producer builds them (producer/enqueue.py), then spoiled one
way at a time. The integration test (tests/integration/test_inbound_guard.py) pushes them
through a real worker.
"""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace
from typing import Any

import pytest

from config.celery_conf import make_celery
from config.errors import InvalidInput
from config.records import JobRecord, JobStatus
from config.schema import JobSpec, new_job
from config.settings import Settings
from config.store.malformed import RAW_CHARS, raw_text
from config.tasks import RENDER_GROUP_TASK
from producer.enqueue import envelope
from worker.jobs import envelope as door
from worker.jobs import grouping
from worker.jobs.grouping import check_group, run_group


def produced(settings: Settings, **params: Any) -> dict[str, Any]:
    spec = new_job("a lighthouse", settings, width=64, height=64, steps=2, **params)
    _, text = envelope(make_celery(settings), spec, "summary")
    return dict(json.loads(text))


def with_body(message: dict[str, Any], body: object) -> dict[str, Any]:
    message["body"] = base64.b64encode(json.dumps(body).encode()).decode()
    return message


def grouped(settings: Settings, payloads: list[Any]) -> dict[str, Any]:
    message = produced(settings)
    message["headers"] |= {"task": RENDER_GROUP_TASK, "id": "group-1"}
    return with_body(message, [[payloads], {}, {}])


def payload(settings: Settings, **params: Any) -> dict[str, Any]:
    spec = new_job("p", settings, width=64, height=64, steps=2, **params)
    return spec.model_dump(mode="json")


def refusal(message: object, settings: Settings) -> str:
    with pytest.raises(door.Malformed) as refused:
        door.check(message, settings)
    return str(refused.value)


def test_a_message_the_producer_wrote_passes(offline_settings: Settings) -> None:
    message = produced(offline_settings)
    assert door.check(message, offline_settings) is message
    door.check(grouped(offline_settings, [payload(offline_settings)] * 1), offline_settings)


SPOILED: list[tuple[str, Any, str]] = [
    ("a list", lambda m: [m], "the message: must be a JSON object (got list)"),
    ("no properties", lambda m: m.pop("properties") and m, "properties: must be a JSON object"),
    ("no body", lambda m: m.pop("body") and m, "body: missing or not a string"),
    ("body not base64", lambda m: m | {"body": "%%%"}, "body: not base64 of UTF-8 JSON"),
    ("headers a list", lambda m: m | {"headers": []}, "headers: must be a JSON object"),
    (
        "pickle",
        lambda m: m | {"content-type": "application/x-python-serialize"},
        "content-type: only application/json is accepted",
    ),
    ("another task", lambda m: m["headers"].update(task="os.system") or m, "headers.task"),
    ("kwargs", lambda m: with_body(m, [[{}], {"x": 1}, {}]), "body kwargs: must be empty"),
    ("two args", lambda m: with_body(m, [[{}, {}], {}, {}]), "exactly one argument"),
    (
        "a callback",
        lambda m: with_body(m, [[{}], {}, {"callbacks": [{"task": "x"}]}]),
        "callbacks, errbacks, chains and chords are not accepted",
    ),
    ("not a job", lambda m: with_body(m, [["a string"], {}, {}]), "job: job: must be a JSON"),
    ("task id", lambda m: m["headers"].update(id="other") or m, "headers.id: must be the job's"),
    (
        "deep body",
        lambda m: m | {"body": base64.b64encode(b"[" * 100_000).decode()},
        "body: JSON nested too deep",
    ),
]


@pytest.mark.parametrize(("case", "spoil", "reason"), SPOILED, ids=[c for c, _, _ in SPOILED])
def test_a_spoiled_message_is_refused_with_its_reason(
    offline_settings: Settings, case: str, spoil: Any, reason: str
) -> None:
    assert reason in refusal(spoil(produced(offline_settings)), offline_settings)


def test_a_job_over_this_worker_s_limits_is_refused_as_an_invalid_job(
    offline_settings: Settings,
) -> None:
    message = produced(offline_settings)
    body = json.loads(base64.b64decode(message["body"]))
    body[0][0]["steps"] = offline_settings.max_steps + 1
    with pytest.raises(door.Malformed) as refused:
        door.check(with_body(message, body), offline_settings)
    assert refused.value.code.value == "invalid_job"
    assert "steps" in str(refused.value)


def test_a_group_is_counted_and_its_ids_checked_before_any_job_is_decoded(
    offline_settings: Settings,
) -> None:
    cap = offline_settings.max_group_size
    one = payload(offline_settings)
    too_many = [{"not": "decoded"}] * (cap + 1)
    assert refusal(grouped(offline_settings, too_many), offline_settings) == (
        f"group: holds {cap + 1} jobs, more than NIGHTSHIFT_MAX_GROUP_SIZE ({cap}) (got {cap + 1})"
    )
    assert "names the same job more than once" in refusal(
        grouped(offline_settings, [one, one]), offline_settings
    )
    with pytest.raises(InvalidInput, match="non-empty list"):
        check_group([], cap)


def test_the_headers_that_set_a_message_s_own_limits_are_dropped(
    offline_settings: Settings,
) -> None:
    message = produced(offline_settings)
    assert door.neutralise(message) == []  # Celery writes them empty: nothing to report
    message["headers"] |= {"timelimit": [9999, 9999], "eta": "2999-01-01T00:00:00", "expires": 1}
    assert door.neutralise(message) == ["timelimit", "eta", "expires"]
    assert not {"timelimit", "eta", "expires"} & set(message["headers"])
    door.check(message, offline_settings)


def test_the_job_ids_a_message_names_are_read_from_any_wreck() -> None:
    for wreck in (None, [], "x", {"headers": 3}, {"headers": {"id": 5}, "body": "%%"}):
        assert door.named_job_ids(wreck) == []
    assert door.named_job_ids({"headers": {"id": "a"}}) == ["a"]
    deep = {"headers": {"id": "a"}, "properties": {"body_encoding": "base64"}}
    deep |= {"content-type": "application/json", "content-encoding": "utf-8"}
    deep["body"] = base64.b64encode(b"[" * 100_000).decode()
    assert door.named_job_ids(deep) == ["a"]


def test_the_raw_text_kept_is_cut_and_shows_bytes_that_are_not_utf8() -> None:
    assert raw_text(b"\xff ok") == ("\\xff ok", 4)
    text, size = raw_text("é" * (RAW_CHARS + 10))
    assert len(text) == RAW_CHARS and size == 2 * (RAW_CHARS + 10)


def test_group_bookkeeping_goes_by_id_and_never_compares_jobs(
    offline_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs = [new_job(f"p{i}", offline_settings) for i in range(50)]
    ended = {s.id for s in specs[::2]}  # every other job finished in an earlier delivery
    records = {
        s.id: JobRecord(
            spec=s,
            created_at=1.0,
            status=JobStatus.SUCCEEDED if s.id in ended else JobStatus.QUEUED,
        )
        for s in specs
    }
    ctx = SimpleNamespace(
        store=SimpleNamespace(get=records.__getitem__),
        plan=SimpleNamespace(device="cpu"),
        group_sizes=(1,),
    )
    rendered: list[str] = []

    def render(batch: list[JobSpec], _: object) -> list[JobRecord]:
        rendered.extend(s.id for s in batch)
        return [records[s.id] for s in batch]

    def no_equality(self: JobSpec, other: object) -> bool:
        raise AssertionError("JobSpec compared by value: quadratic in the group's size")

    monkeypatch.setattr(grouping, "_run_batch", render)
    monkeypatch.setattr(JobSpec, "__eq__", no_equality)
    result = run_group(specs, ctx)  # type: ignore[arg-type]
    assert sorted(r.id for r in result) == sorted(s.id for s in specs)
    assert rendered == [s.id for s in specs if s.id not in ended]
