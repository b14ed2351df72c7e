"""Grouping as planning (no Redis, no model): compatible jobs are cut into the largest allowed
forward passes, incompatible ones never share one, and mps never groups."""

from __future__ import annotations

from types import SimpleNamespace

from config.schema import new_job
from config.settings import Settings
from worker.jobs.grouping import allowed_sizes, group_key, plan_batches


def _specs(settings: Settings, count: int, **params: object) -> list:
    base = {"width": 64, "height": 64, "steps": 2} | params
    return [new_job(f"prompt {i}", settings, seed=100 + i, **base) for i in range(count)]


def test_compatible_jobs_are_cut_into_the_largest_allowed_passes(
    offline_settings: Settings,
) -> None:
    specs = _specs(offline_settings, 20)
    batches = plan_batches(specs, (1, 16))
    assert [len(b) for b in batches] == [16, 1, 1, 1, 1]
    assert [s.id for b in batches for s in b] == [s.id for s in specs]


def test_jobs_that_differ_in_size_steps_guidance_or_images_never_share_a_pass(
    offline_settings: Settings,
) -> None:
    plain = _specs(offline_settings, 2)
    bigger = _specs(offline_settings, 2, width=128)
    longer = _specs(offline_settings, 2, steps=3)
    several = _specs(offline_settings, 2, images=2)
    batches = plan_batches(plain + bigger + longer + several, (1, 2, 3, 4))
    for batch in batches:
        assert len({group_key(s) for s in batch}) == 1
    assert [len(b) for b in batches] == [2, 2, 2, 1, 1]
    assert group_key(several[0]) is None


def test_mps_never_groups(offline_settings: Settings) -> None:
    """The mps context is faked (no Apple GPU here): only its plan's device is read."""
    mps = SimpleNamespace(
        plan=SimpleNamespace(device="mps"), group_sizes=(1, 16), settings=offline_settings
    )
    cpu = SimpleNamespace(
        plan=SimpleNamespace(device="cpu"), group_sizes=(), settings=offline_settings
    )
    cuda = SimpleNamespace(
        plan=SimpleNamespace(device="cuda"), group_sizes=(1, 8), settings=offline_settings
    )
    assert allowed_sizes(mps) == (1,)
    assert allowed_sizes(cuda) == (1, 8)
    assert allowed_sizes(cpu) == tuple(range(1, offline_settings.max_group_size + 1))
