"""The CUDA fast path, in the parts that need no model: when it is taken and the settings that
steer it. Its effect on a loaded pipeline is tests/render/test_fastpath.py."""

from __future__ import annotations

import pytest

from config.errors import InvalidSettings
from config.settings import Settings
from worker.render import fastpath
from worker.render.device import DevicePlan


def _plan(device: str) -> DevicePlan:
    """Plans for devices this machine lacks are written by hand: only .device is read."""
    return DevicePlan(device=device, dtype="float16", attention_slicing=False, batch_images=True)


def test_the_fast_path_is_for_cuda_only_and_a_setting_turns_it_off(
    offline_settings: Settings,
) -> None:
    assert fastpath.wanted(offline_settings, _plan("cuda"))[0] is True
    assert fastpath.wanted(offline_settings, _plan("mps")) == (
        False,
        "device is mps; the fast path is for cuda only",
    )
    assert fastpath.wanted(offline_settings, _plan("cpu"))[0] is False
    off = offline_settings.model_copy(update={"fast_path": False})
    assert fastpath.wanted(off, _plan("cuda")) == (False, "NIGHTSHIFT_FAST_PATH is false")


def test_group_sizes_always_include_one_and_stay_within_the_maximum() -> None:
    assert Settings(fast_path_group_sizes="16,4").group_sizes == (1, 4, 16)
    assert Settings(fast_path_group_sizes="32", max_group_size=8).group_sizes == (1, 8)


def test_a_bad_group_size_list_names_the_variable_and_the_value() -> None:
    with pytest.raises(InvalidSettings) as err:
        Settings.from_env(fast_path_group_sizes="1,sixteen")
    assert "NIGHTSHIFT_FAST_PATH_GROUP_SIZES" in str(err.value)
    assert "1,sixteen" in str(err.value)
