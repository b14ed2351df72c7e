"""Grouping through Redis and a real worker: each job of a group message keeps its own record,
seed and file, and a resubmitted group runs nothing twice. How jobs are cut into passes is
tests/unit/test_grouping_plan.py; a job in a group against the same job alone is
tests/render/test_grouping_render.py."""

from __future__ import annotations

from PIL import Image

from config.records import JobStatus
from config.schema import new_job
from config.settings import Settings
from producer.client import Client, Job, submit_grouped


def _specs(settings: Settings, count: int, **params: object) -> list:
    base = {"width": 64, "height": 64, "steps": 2} | params
    return [new_job(f"prompt {i}", settings, seed=100 + i, **base) for i in range(count)]


def test_a_group_message_gives_every_job_its_own_record_seed_and_file(
    client: Client, start_worker
) -> None:
    specs = _specs(client.settings, 5)
    cancelled = specs[2]
    submit_grouped(client, specs[:2], group_size=4)  # records and messages for the first two
    ids = submit_grouped(client, specs[2:], group_size=4)
    assert ids == [s.id for s in specs[2:]]
    client.cancel(cancelled.id)
    start_worker()

    records = [Job(client, s.id).wait(180) for s in specs]
    assert records[2].status is JobStatus.CANCELLED and records[2].outputs == []
    done = [r for r in records if r.id != cancelled.id]
    assert all(r.status is JobStatus.SUCCEEDED for r in done)
    assert len({r.outputs[0] for r in done}) == 4
    for record in done:
        with Image.open(record.outputs[0]) as image:
            assert f"Seed: {record.spec.seed}," in image.info["parameters"]
            assert record.spec.prompt in image.info["parameters"]
        assert record.attempts == 1


def test_resubmitting_a_group_runs_nothing_twice(client: Client, start_worker) -> None:
    specs = _specs(client.settings, 3)
    assert len(submit_grouped(client, specs)) == 3
    assert submit_grouped(client, specs) == []
    start_worker()
    records = [Job(client, s.id).wait(180) for s in specs]
    assert all(r.status is JobStatus.SUCCEEDED and r.attempts == 1 for r in records)
