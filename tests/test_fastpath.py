"""The CUDA fast path, in the parts a CPU can check: when it is taken, the settings that
steer it, and that its layout changes leave the pictures unchanged. The compile itself
runs only on a GPU (bench/gpu_run.sh); here no CUDA device exists."""

from __future__ import annotations

import numpy as np
import pytest

from config.errors import InvalidSettings
from config.schema import new_job
from config.settings import Settings
from worker.render import fastpath
from worker.render.device import DevicePlan, HostFacts, plan_device
from worker.render.pipeline import load_pipeline
from worker.render.renderer import Renderer


def _plan(device: str) -> DevicePlan:
    """Plans for devices this machine lacks are written by hand: only .device is read."""
    return DevicePlan(device=device, dtype="float16", attention_slicing=False, batch_images=True)


def test_the_fast_path_is_for_cuda_only_and_a_setting_turns_it_off(settings: Settings) -> None:
    assert fastpath.wanted(settings, _plan("cuda"))[0] is True
    assert fastpath.wanted(settings, _plan("mps")) == (
        False,
        "device is mps; the fast path is for cuda only",
    )
    assert fastpath.wanted(settings, _plan("cpu"))[0] is False
    off = settings.model_copy(update={"fast_path": False})
    assert fastpath.wanted(off, _plan("cuda")) == (False, "NIGHTSHIFT_FAST_PATH is false")


def test_group_sizes_always_include_one_and_stay_within_the_maximum() -> None:
    assert Settings(fast_path_group_sizes="16,4").group_sizes == (1, 4, 16)
    assert Settings(fast_path_group_sizes="32", max_group_size=8).group_sizes == (1, 8)


def test_a_bad_group_size_list_names_the_variable_and_the_value() -> None:
    with pytest.raises(InvalidSettings) as err:
        Settings.from_env(fast_path_group_sizes="1,sixteen")
    assert "NIGHTSHIFT_FAST_PATH_GROUP_SIZES" in str(err.value)
    assert "1,sixteen" in str(err.value)


def test_on_the_cpu_the_fast_path_leaves_the_pipeline_untouched(settings: Settings) -> None:
    plan = plan_device(settings, HostFacts.detect())
    renderer = Renderer(load_pipeline(settings, plan), plan, settings.model)
    unet = renderer.pipe.unet
    report = fastpath.apply(renderer, settings, plan)
    assert report.enabled is False and report.group_sizes == ()
    assert renderer.pipe.unet is unet


def test_channels_last_and_fused_qkv_do_not_change_the_picture(settings: Settings) -> None:
    plan = plan_device(settings, HostFacts.detect())
    renderer = Renderer(load_pipeline(settings, plan), plan, settings.model)
    spec = new_job("a lighthouse", settings, seed=3, width=64, height=64, steps=2)
    before = np.asarray(renderer.render(spec).images[0], dtype=np.int16)
    done = fastpath.prepare_modules(renderer.pipe)
    after = np.asarray(renderer.render(spec).images[0], dtype=np.int16)
    assert "channels_last" in done
    assert np.abs(before - after).max() <= 2
