"""The CUDA fast path on the tiny model (no Redis): on the CPU it leaves the pipeline alone,
and its layout changes leave the pictures unchanged. The compile itself runs only on a GPU
(bench/gpu_run.sh); here no CUDA device exists. When it is taken, and the settings that steer
it, are tests/unit/test_fastpath_policy.py."""

from __future__ import annotations

import numpy as np

from config.schema import new_job
from config.settings import Settings
from worker.render import fastpath
from worker.render.device import HostFacts, plan_device
from worker.render.pipeline import load_pipeline
from worker.render.renderer import Renderer


def test_on_the_cpu_the_fast_path_leaves_the_pipeline_untouched(render_settings: Settings) -> None:
    plan = plan_device(render_settings, HostFacts.detect())
    renderer = Renderer(load_pipeline(render_settings, plan), plan, render_settings.model)
    unet = renderer.pipe.unet
    report = fastpath.apply(renderer, render_settings, plan)
    assert report.enabled is False and report.group_sizes == ()
    assert renderer.pipe.unet is unet


def test_channels_last_and_fused_qkv_do_not_change_the_picture(render_settings: Settings) -> None:
    plan = plan_device(render_settings, HostFacts.detect())
    renderer = Renderer(load_pipeline(render_settings, plan), plan, render_settings.model)
    spec = new_job("a lighthouse", render_settings, seed=3, width=64, height=64, steps=2)
    before = np.asarray(renderer.render(spec).images[0], dtype=np.int16)
    done = fastpath.prepare_modules(renderer.pipe)
    after = np.asarray(renderer.render(spec).images[0], dtype=np.int16)
    assert "channels_last" in done
    assert np.abs(before - after).max() <= 2
