"""Device, precision and batching policy: the source guide's rules as pure functions.

Host facts are gathered in one place (`HostFacts.detect`) so that tests can fake an
Apple GPU or a RAM size that this machine does not have.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

import psutil

from config.errors import InvalidSettings
from config.settings import Settings

GB = 1024**3


@dataclass(frozen=True)
class HostFacts:
    mps_available: bool
    cuda_available: bool
    ram_bytes: int
    system: str  # platform.system(): Darwin, Linux, ...
    machine: str  # platform.machine(): arm64, x86_64, ...

    @classmethod
    def detect(cls) -> HostFacts:
        import torch

        mps = getattr(torch.backends, "mps", None)
        return cls(
            mps_available=bool(mps and mps.is_available()),
            cuda_available=torch.cuda.is_available(),
            ram_bytes=psutil.virtual_memory().total,
            system=platform.system(),
            machine=platform.machine(),
        )


@dataclass(frozen=True)
class DevicePlan:
    """How this worker renders: decided once at start-up, recorded in every job."""

    device: str
    dtype: str
    attention_slicing: bool
    # The guide: several prompts in one batch are unreliable on MPS, so iterate there.
    batch_images: bool

    @property
    def half(self) -> bool:
        return self.dtype in ("float16", "bfloat16")


def choose_device(requested: str, facts: HostFacts) -> str:
    if requested == "mps" and not facts.mps_available:
        raise InvalidSettings(
            "NIGHTSHIFT_DEVICE",
            requested,
            "MPS is not available here: it needs an Apple-silicon "
            "Mac, macOS 12.6+, arm64 Python and a PyTorch build with MPS (run `nightshift doctor`)",
        )
    if requested == "cuda" and not facts.cuda_available:
        raise InvalidSettings("NIGHTSHIFT_DEVICE", requested, "no CUDA device is available here")
    if requested != "auto":
        return requested
    if facts.mps_available:
        return "mps"
    return "cuda" if facts.cuda_available else "cpu"


def choose_dtype(requested: str, device: str) -> str:
    if requested != "auto":
        return requested
    # Half precision on GPUs (the guide's fp16 variant); CPUs are slow and inexact in fp16.
    return "float16" if device in ("mps", "cuda") else "float32"


def choose_slicing(requested: str, device: str, facts: HostFacts, threshold_gb: float) -> bool:
    if requested != "auto":
        return requested == "on"
    # The guide: on Macs with less than 64 GB, slicing keeps macOS out of swap.
    return device == "mps" and facts.ram_bytes < threshold_gb * GB


def plan_device(settings: Settings, facts: HostFacts) -> DevicePlan:
    device = choose_device(settings.device, facts)
    return DevicePlan(
        device=device,
        dtype=choose_dtype(settings.dtype, device),
        attention_slicing=choose_slicing(
            settings.attention_slicing, device, facts, settings.slicing_ram_threshold_gb
        ),
        batch_images=device != "mps",
    )
