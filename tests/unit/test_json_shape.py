"""One JSON shape for every --json (issue "Fit the ecosystem"): the fields people reach for
first at the top, the whole record under them, and a JSON Schema that holds for the output.

No services: records, batch status and the models view are built in memory; the real
commands' output is checked against the same schemas in tests/integration/test_json_output.py.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

from config import records
from config.errors import ErrorCode
from config.models import default_catalog
from config.records import JobRecord, JobStatus, RecordView, RenderInfo, view_schema
from config.schema import new_job
from config.settings import Settings
from config.store.batches import BatchRecord
from config.store.models import ModelLoad, WorkerModels
from producer import cli
from producer.batches.actions import BatchStatus
from producer.commands import models as models_command
from producer.commands.batch import BatchView, status_schema

NOW = 1_700_000_000.0
# The order a person reads them in, and the order `jq .` shows them.
TOP_FIELDS = [
    "id",
    "status",
    "prompt",
    "negative_prompt",
    "model",
    "model_family",
    "seed",
    "images",
    "width",
    "height",
    "batch_id",
    "outputs",
    "error",
    "error_code",
    "created_at",
    "started_at",
    "finished_at",
    "queue_wait_s",
    "render_s",
    "attempts",
    "progress",
]
RENDER = RenderInfo(worker="w@host", pid=42, device="cpu", dtype="float32", model="tiny")


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema)  # a schema a validator accepts at all
    return Draft202012Validator(schema)


def a_record(settings: Settings, **params: Any) -> JobRecord:
    base: dict[str, Any] = {"id": "job-1", "seed": 7, "steps": 2, "width": 64, "height": 64}
    prompt = params.pop("prompt", "a lighthouse")
    spec = new_job(prompt, settings, created_at=NOW, **base | params)
    return JobRecord(spec=spec, created_at=NOW, model_family="sd15")


def every_kind_of_record(settings: Settings) -> list[JobRecord]:
    """Queued, running, done with a hires pass, failed with a code, cancelled in a batch."""
    queued = a_record(settings)
    running = a_record(settings, id="job-2", images=2)
    records.start(running, RENDER, NOW + 1)
    running.progress = {"image": 1, "images": 2, "step": 1, "steps": 2}
    done = a_record(
        settings, id="job-3", hires={"scale": 2.0, "steps": 4}, loras=[{"name": "detail"}]
    )
    records.start(done, RENDER, NOW + 1)
    records.succeed(done, ["/r/job-3-00.png"], NOW + 3)
    done.render_s = 1.5
    failed = a_record(settings, id="job-4", prompt="灯台、夕暮れ", negative_prompt="blur")
    records.start(failed, RENDER, NOW + 1)
    records.fail(failed, "ran out of memory", ErrorCode.OUT_OF_MEMORY, NOW + 2)
    cancelled = a_record(settings, id="job-5", batch_id="night-1", expires_at=NOW + 60)
    records.cancel(cancelled, "not started in time", NOW + 61, ErrorCode.EXPIRED)
    return [queued, running, done, failed, cancelled]


def test_every_kind_of_record_prints_a_line_the_published_schema_accepts(
    offline_settings: Settings,
) -> None:
    check = validator(view_schema())
    for record in every_kind_of_record(offline_settings):
        line = record.to_json_line()
        assert "\n" not in line
        check.validate(json.loads(line))


def test_the_top_level_comes_first_then_the_whole_record(offline_settings: Settings) -> None:
    for record in every_kind_of_record(offline_settings):
        printed = json.loads(record.to_json_line())
        assert list(printed) == [*TOP_FIELDS, "spec", "render"]
        assert printed["spec"] == record.spec.model_dump(mode="json")
        assert printed["render"] == record.render.model_dump(mode="json")
        stored = json.loads(record.to_json())  # Redis's format: no view fields in it
        for field in set(stored) & set(printed):
            assert printed[field] == stored[field], field


def test_the_top_level_says_what_people_look_for(offline_settings: Settings) -> None:
    queued, running, done, failed, cancelled = (
        json.loads(r.to_json_line()) for r in every_kind_of_record(offline_settings)
    )
    assert (queued["id"], queued["status"], queued["prompt"]) == ("job-1", "queued", "a lighthouse")
    assert queued["model_family"] == "sd15" and queued["model"] == done["spec"]["model"]
    assert queued["started_at"] is None and queued["outputs"] == [] and queued["progress"] == {}
    assert running["progress"]["step"] == 1 and running["attempts"] == 1
    assert (done["width"], done["height"]) == (128, 128)  # the images' size: the hires pass's
    assert (done["spec"]["width"], done["spec"]["height"]) == (64, 64)
    assert done["outputs"] == ["/r/job-3-00.png"] and done["render_s"] == 1.5
    assert (failed["error"], failed["error_code"]) == ("ran out of memory", "out_of_memory")
    assert failed["negative_prompt"] == "blur"
    assert (cancelled["batch_id"], cancelled["error_code"]) == ("night-1", "expired")


def test_a_prompt_in_any_script_stays_readable_on_its_line(offline_settings: Settings) -> None:
    failed = every_kind_of_record(offline_settings)[3]
    assert '"prompt": "灯台、夕暮れ"' in failed.to_json_line()


def test_redis_keeps_the_record_as_it_was(offline_settings: Settings) -> None:
    # The view is for people and tools only: the stored JSON (every reader of Redis, old
    # workers included) holds the record's own fields and reads back the same.
    for record in every_kind_of_record(offline_settings):
        stored = record.to_json()
        assert list(json.loads(stored)) == list(JobRecord.model_fields)
        assert JobRecord.from_json(stored) == record
        assert RecordView.of(JobRecord.from_json(stored)) == RecordView.of(record)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda line: line.pop("error_code"), "a field left out"),
        (lambda line: line.update(mood="sunny"), "a field the schema does not list"),
        (lambda line: line.update(status="done"), "a status that does not exist"),
        (lambda line: line.update(outputs="/r/a.png"), "outputs not a list"),
        (lambda line: line["spec"].pop("seed"), "a spec field left out"),
        (lambda line: line["render"].pop("device"), "a render field left out"),
    ],
)
def test_the_schema_refuses_a_line_of_another_shape(
    offline_settings: Settings, change: Any, why: str
) -> None:
    line = json.loads(every_kind_of_record(offline_settings)[2].to_json_line())
    change(line)
    with pytest.raises(ValidationError):
        validator(view_schema()).validate(line)


def test_every_field_of_every_printed_object_is_required() -> None:
    # A script may rely on a key being there (null when unknown): the schema says so.
    for schema in (view_schema(), status_schema(), models_command.models_schema()):
        objects = [schema, *schema.get("$defs", {}).values()]
        for obj in (o for o in objects if "properties" in o):
            assert sorted(obj.get("required", [])) == sorted(obj["properties"]), obj.get("title")


def test_the_schema_command_prints_each_published_schema(
    capsys: pytest.CaptureFixture[str],
) -> None:
    expected = {
        "record": view_schema(),
        "batch": status_schema(),
        "models": models_command.models_schema(),
    }
    for name, schema in expected.items():
        assert cli.main(["schema", name]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed == schema
        assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert printed["title"].startswith("Nightshift ") and printed["description"]


def a_batch_status(**changes: Any) -> BatchStatus:
    batch = BatchRecord(
        id="night-20240101-220000-ab12",
        name="night",
        source="/home/me/night.yaml",
        digest="d" * 64,
        created_at=NOW,
        total=4,
        priority=3,
        queue="mps",
    )
    counts = Counter({JobStatus.SUCCEEDED: 2, JobStatus.FAILED: 1, JobStatus.QUEUED: 1})
    status = BatchStatus(batch, counts, images_done=3, first_start=NOW + 10, last_end=NOW + 70)
    for name, value in changes.items():
        setattr(status, name, value)
    return status


def test_batch_status_prints_the_batch_then_where_it_stands() -> None:
    check = validator(status_schema())
    printed = json.loads(records.json_line(BatchView.of(a_batch_status())))
    check.validate(printed)
    assert list(printed)[: len(BatchRecord.model_fields)] == list(BatchRecord.model_fields)
    assert printed["id"] == "night-20240101-220000-ab12" and printed["total"] == 4
    assert printed["counts"] == {
        "queued": 1,
        "started": 0,
        "succeeded": 2,
        "failed": 1,
        "cancelled": 0,
    }
    assert (printed["ended"], printed["done"], printed["images_done"]) == (3, False, 3)
    assert printed["images_per_minute"] == pytest.approx(3.0)  # 3 images in 60 s
    assert printed["eta_s"] == pytest.approx(20.0)  # 60 s for 3 jobs: 20 s for the last
    assert (printed["first_started_at"], printed["last_finished_at"]) == (NOW + 10, NOW + 70)


def test_a_batch_not_started_has_nulls_and_a_finished_one_an_eta_of_zero() -> None:
    check = validator(status_schema())
    waiting = a_batch_status(counts=Counter({JobStatus.QUEUED: 4}), images_done=0)
    waiting.first_start = waiting.last_end = None
    printed = json.loads(records.json_line(BatchView.of(waiting)))
    check.validate(printed)
    assert printed["images_per_minute"] is None and printed["eta_s"] is None
    ended = a_batch_status(counts=Counter({JobStatus.SUCCEEDED: 4}), reports=1)
    printed = json.loads(records.json_line(BatchView.of(ended)))
    check.validate(printed)
    assert printed["done"] is True and printed["eta_s"] == 0.0 and printed["reports"] == 1


def test_the_models_view_keeps_its_keys_and_matches_its_schema(
    offline_settings: Settings,
) -> None:
    catalog = default_catalog(offline_settings)
    worker = WorkerModels(
        worker="w1@host",
        catalog={name: {} for name in catalog.names},
        held=[catalog.default],
        loads=[ModelLoad(model=catalog.default, load_s=2.5, at=NOW)],
    )
    view = models_command.ModelsView(
        default=catalog.default,
        models=[models_command._model(catalog, catalog, n, [worker], 2) for n in catalog.names],
        workers=[models_command._worker(worker)],
        queued_without_model=1,
    )
    printed = json.loads(records.json_line(view))
    validator(models_command.models_schema()).validate(printed)
    # The keys `nightshift models --json` printed before it had a schema, kept as they were.
    assert list(printed) == ["default", "models", "workers", "queued_without_model"]
    model = printed["models"][0]
    assert list(model) == [
        "name",
        "default",
        "family",
        "label",
        "prediction",
        "source",
        "local",
        "size_bytes",
        "defaults",
        "queued",
        "workers",
        "loaded_on",
        "loadable",
    ]
    assert model["loaded_on"] == ["w1@host"] and model["queued"] == 2 and model["loadable"]
    assert printed["workers"] == [
        {
            "worker": "w1@host",
            "models": sorted(catalog.names),
            "loaded": [catalog.default],
            "recent_loads": [{"model": catalog.default, "load_s": 2.5, "at": NOW}],
        }
    ]
    # The human table reads the same values.
    assert "w1@host*" in models_command.render(printed)
