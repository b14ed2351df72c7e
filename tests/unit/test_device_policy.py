"""The source guide's device rules, with the Apple GPU and RAM sizes faked (no Mac in CI)."""

from __future__ import annotations

import pytest

from config.errors import InvalidSettings
from config.settings import Settings
from worker.render.device import GB, HostFacts, plan_device

MAC_16GB = HostFacts(
    mps_available=True, cuda_available=False, ram_bytes=16 * GB, system="Darwin", machine="arm64"
)  # faked: an M-series Mac with 16 GB
MAC_128GB = HostFacts(
    mps_available=True, cuda_available=False, ram_bytes=128 * GB, system="Darwin", machine="arm64"
)  # faked: a Mac Studio
CUDA_BOX = HostFacts(
    mps_available=False, cuda_available=True, ram_bytes=64 * GB, system="Linux", machine="x86_64"
)  # faked: a Linux GPU box
LAPTOP = HostFacts(
    mps_available=False, cuda_available=False, ram_bytes=8 * GB, system="Linux", machine="x86_64"
)


def plan(facts: HostFacts, **overrides: object):
    return plan_device(Settings(**overrides), facts)  # type: ignore[arg-type]


def test_auto_prefers_mps_then_cuda_then_cpu() -> None:
    assert plan(MAC_16GB).device == "mps"
    assert plan(CUDA_BOX).device == "cuda"
    assert plan(LAPTOP).device == "cpu"


def test_half_precision_on_gpus_float32_on_cpu() -> None:
    assert plan(MAC_16GB).dtype == "float16"
    assert plan(CUDA_BOX).dtype == "float16"
    assert plan(LAPTOP).dtype == "float32"
    assert plan(CUDA_BOX, dtype="bfloat16").dtype == "bfloat16"


def test_attention_slicing_auto_follows_ram_on_mps_only() -> None:
    assert plan(MAC_16GB).attention_slicing is True
    assert plan(MAC_128GB).attention_slicing is False
    assert plan(CUDA_BOX).attention_slicing is False
    assert plan(MAC_128GB, attention_slicing="on").attention_slicing is True
    assert plan(MAC_16GB, attention_slicing="off").attention_slicing is False


def test_images_are_iterated_on_mps_and_batched_elsewhere() -> None:
    assert plan(MAC_128GB).batch_images is False
    assert plan(CUDA_BOX).batch_images is True
    assert plan(LAPTOP).batch_images is True


@pytest.mark.parametrize("device", ["mps", "cuda"])
def test_asking_for_a_missing_gpu_names_the_setting(device: str) -> None:
    with pytest.raises(InvalidSettings, match=rf"NIGHTSHIFT_DEVICE: .*got '{device}'"):
        plan(LAPTOP, device=device)


def test_time_limit_must_stay_below_the_visibility_timeout() -> None:
    with pytest.raises(InvalidSettings, match="NIGHTSHIFT_JOB_TIME_LIMIT_S must be below"):
        Settings.from_env(job_time_limit_s=7200, visibility_timeout_s=7200)


def test_a_bad_setting_names_the_variable_and_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIGHTSHIFT_DEVICE", "tpu")
    with pytest.raises(InvalidSettings, match=r"NIGHTSHIFT_DEVICE: .*'tpu'"):
        Settings.from_env()
