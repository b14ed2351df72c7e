"""Grouping: compatible jobs of one group message share a forward pass, each keeps its own
record, seed and file, and a job rendered in a group matches the same job rendered alone."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from PIL import Image

from config.records import JobStatus
from config.schema import new_job
from config.settings import Settings
from producer.client import Client, Job
from producer.grouped import submit_grouped
from worker.jobs.grouping import allowed_sizes, group_key, plan_batches
from worker.render.device import HostFacts, plan_device
from worker.render.pipeline import load_pipeline
from worker.render.renderer import Renderer

# A job rendered inside a group may differ from the same job alone by batched-arithmetic
# rounding only: at most this much on any 8-bit channel (measured: 1 on CPU and on an H100).
GROUP_TOLERANCE_0_255 = 2


def _specs(settings: Settings, count: int, **params: object) -> list:
    base = {"width": 64, "height": 64, "steps": 2} | params
    return [new_job(f"prompt {i}", settings, seed=100 + i, **base) for i in range(count)]


def test_compatible_jobs_are_cut_into_the_largest_allowed_passes(settings: Settings) -> None:
    specs = _specs(settings, 20)
    batches = plan_batches(specs, (1, 16))
    assert [len(b) for b in batches] == [16, 1, 1, 1, 1]
    assert [s.id for b in batches for s in b] == [s.id for s in specs]


def test_jobs_that_differ_in_size_steps_guidance_or_images_never_share_a_pass(
    settings: Settings,
) -> None:
    plain = _specs(settings, 2)
    bigger = _specs(settings, 2, width=128)
    longer = _specs(settings, 2, steps=3)
    several = _specs(settings, 2, images=2)
    batches = plan_batches(plain + bigger + longer + several, (1, 2, 3, 4))
    for batch in batches:
        assert len({group_key(s) for s in batch}) == 1
    assert [len(b) for b in batches] == [2, 2, 2, 1, 1]
    assert group_key(several[0]) is None


def test_mps_never_groups(settings: Settings) -> None:
    """The mps context is faked (no Apple GPU here): only its plan's device is read."""
    mps = SimpleNamespace(
        plan=SimpleNamespace(device="mps"), group_sizes=(1, 16), settings=settings
    )
    cpu = SimpleNamespace(plan=SimpleNamespace(device="cpu"), group_sizes=(), settings=settings)
    cuda = SimpleNamespace(
        plan=SimpleNamespace(device="cuda"), group_sizes=(1, 8), settings=settings
    )
    assert allowed_sizes(mps) == (1,)
    assert allowed_sizes(cuda) == (1, 8)
    assert allowed_sizes(cpu) == tuple(range(1, settings.max_group_size + 1))


def test_a_job_rendered_in_a_group_matches_the_same_job_rendered_alone(settings: Settings) -> None:
    plan = plan_device(settings, HostFacts.detect())
    renderer = Renderer(load_pipeline(settings, plan), plan, settings.model)
    other = new_job("other", settings, seed=7, width=64, height=64, steps=2, negative_prompt="blur")
    specs = [*_specs(settings, 3), other]
    grouped = renderer.render_group(specs)
    for spec, result in zip(specs, grouped, strict=True):
        alone = renderer.render(spec)
        assert result.seeds == alone.seeds == [spec.seed]
        a = np.asarray(result.images[0], dtype=np.int16)
        b = np.asarray(alone.images[0], dtype=np.int16)
        assert np.abs(a - b).max() <= GROUP_TOLERANCE_0_255
    first, second = (np.asarray(r.images[0]) for r in grouped[:2])
    assert not np.array_equal(first, second), "two seeds gave one picture"


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
