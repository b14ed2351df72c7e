"""Grouping on the tiny model (no Redis): a job rendered in a group matches the same job
rendered alone, and each job keeps its own seed."""

from __future__ import annotations

import numpy as np

from config.schema import new_job
from config.settings import Settings
from worker.render.device import HostFacts, plan_device
from worker.render.pipeline import load_pipeline
from worker.render.renderer import Renderer

# A job rendered inside a group may differ from the same job alone by batched-arithmetic
# rounding only: at most this much on any 8-bit channel (measured: 1 on CPU and on an H100).
GROUP_TOLERANCE_0_255 = 2


def _specs(settings: Settings, count: int, **params: object) -> list:
    base = {"width": 64, "height": 64, "steps": 2} | params
    return [new_job(f"prompt {i}", settings, seed=100 + i, **base) for i in range(count)]


def test_a_job_rendered_in_a_group_matches_the_same_job_rendered_alone(
    render_settings: Settings,
) -> None:
    plan = plan_device(render_settings, HostFacts.detect())
    renderer = Renderer(load_pipeline(render_settings, plan), plan, render_settings.model)
    other = new_job(
        "other", render_settings, seed=7, width=64, height=64, steps=2, negative_prompt="blur"
    )
    specs = [*_specs(render_settings, 3), other]
    grouped = renderer.render_group(specs)
    for spec, result in zip(specs, grouped, strict=True):
        alone = renderer.render(spec)
        assert result.seeds == alone.seeds == [spec.seed]
        a = np.asarray(result.images[0], dtype=np.int16)
        b = np.asarray(alone.images[0], dtype=np.int16)
        assert np.abs(a - b).max() <= GROUP_TOLERANCE_0_255
    first, second = (np.asarray(r.images[0]) for r in grouped[:2])
    assert not np.array_equal(first, second), "two seeds gave one picture"
