"""The renderer alone (no Celery): the guide's guards, driven with faults injected by the test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from config.errors import RenderFailed
from config.schema import JobSpec, new_job
from config.settings import Settings
from worker.render.device import DevicePlan
from worker.render.pipeline import load_pipeline
from worker.render.renderer import Renderer

CPU = DevicePlan(device="cpu", dtype="float32", attention_slicing=False, batch_images=True)


@pytest.fixture(scope="module")
def pipe(tiny_model: Path) -> Any:
    return load_pipeline(Settings(model=str(tiny_model), device="cpu"), CPU)


@pytest.fixture
def renderer(pipe: Any) -> Iterator[Renderer]:
    renderer = Renderer(pipe, CPU, "tiny")
    yield renderer
    pipe.safety_checker = None


def job(**params: Any) -> JobSpec:
    params = {"steps": 2, "width": 64, "height": 64, "seed": 5} | params
    return new_job("a test", Settings(), **params)


def poison_unet(pipe: Any, passes: int) -> Any:
    """Make the UNet return NaN for its first `passes` calls (as sliced attention on MPS can)."""
    calls = {"n": 0}

    def hook(module: Any, args: Any, output: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= passes:
            return (torch.full_like(output[0], float("nan")),)
        return output

    return pipe.unet.register_forward_hook(hook)


def test_nan_latents_are_retried_once_with_safer_settings(renderer: Renderer, pipe: Any) -> None:
    handle = poison_unet(pipe, passes=1)
    try:
        result = renderer.render(job())
    finally:
        handle.remove()
    assert result.retried_safer is True
    assert len(result.images) == 1
    assert result.images[0].convert("L").getextrema()[1] > 2


def test_nan_latents_after_the_retry_fail_the_job_with_the_reason(
    renderer: Renderer, pipe: Any
) -> None:
    handle = poison_unet(pipe, passes=10_000)
    try:
        with pytest.raises(RenderFailed, match=r"non-finite latents .* after a retry"):
            renderer.render(job())
    finally:
        handle.remove()


def test_an_all_black_picture_is_not_saved_silently(renderer: Renderer, pipe: Any) -> None:
    handle = pipe.vae.decoder.register_forward_hook(lambda m, a, out: torch.full_like(out, -1.0))
    try:
        with pytest.raises(RenderFailed, match="all-black image for seed 5"):
            renderer.render(job())
    finally:
        handle.remove()


def test_a_safety_checker_that_fires_is_recorded_not_failed(renderer: Renderer, pipe: Any) -> None:
    # Faked: no safety-checker weights exist offline. This one flags every image and blacks
    # it out, as the real one does.
    pipe.safety_checker = object()
    pipe.run_safety_checker = lambda image, device, dtype: (torch.zeros_like(image), [True])
    try:
        result = renderer.render(job())
    finally:
        del pipe.run_safety_checker
    assert result.nsfw == [True]
    assert result.images[0].convert("L").getextrema() == (0, 0)


def test_progress_counts_unet_calls_not_requested_steps(renderer: Renderer) -> None:
    seen: list[tuple[int, int, int]] = []
    renderer.render(job(steps=5), on_step=lambda i, k, n: seen.append((i, k, n)))
    # PNDM: 5 steps make 6 UNet calls; progress ends at 6 of 6.
    assert seen[-1] == (0, 6, 6)
    assert [k for _, k, _ in seen] == [1, 2, 3, 4, 5, 6]


def test_on_mps_images_are_rendered_one_pass_each(pipe: Any) -> None:
    # Faked MPS plan on the CPU: only the batching policy is under test here.
    mps_like = DevicePlan(
        device="cpu", dtype="float32", attention_slicing=False, batch_images=False
    )
    batch_sizes: list[int] = []
    handle = pipe.unet.register_forward_hook(lambda m, a, out: batch_sizes.append(out[0].shape[0]))
    try:
        iterated = Renderer(pipe, mps_like, "tiny").render(job(images=3, seed=100))
        per_pass = set(batch_sizes)
        batch_sizes.clear()
        batched = Renderer(pipe, CPU, "tiny").render(job(images=3, seed=100))
    finally:
        handle.remove()
    assert per_pass == {2}  # one image (with its unconditional twin) per UNet call
    assert set(batch_sizes) == {6}
    assert iterated.seeds == batched.seeds == [100, 101, 102]
    for a, b in zip(iterated.images, batched.images, strict=True):
        diff = max(abs(x - y) for x, y in zip(a.tobytes(), b.tobytes(), strict=True))
        assert diff <= 2  # same CPU noise per seed, whichever way it is rendered


def test_a_cancel_stops_before_the_vae_runs(renderer: Renderer, pipe: Any) -> None:
    from config.errors import JobCancelled

    decodes: list[int] = []
    handle = pipe.vae.decoder.register_forward_hook(lambda m, a, out: decodes.append(1))
    try:
        with pytest.raises(JobCancelled, match="cancelled at step 2"):
            steps = iter(range(100))
            renderer.render(job(steps=50), should_stop=lambda: next(steps) >= 1)
    finally:
        handle.remove()
    assert decodes == []


def test_warm_up_is_one_discarded_one_step_pass(renderer: Renderer, pipe: Any) -> None:
    calls: list[float] = []
    handle = pipe.unet.register_forward_hook(lambda m, a, out: calls.append(time.time()))
    try:
        renderer.warm_up()
    finally:
        handle.remove()
    assert len(calls) == len(pipe.scheduler.timesteps) == 1


def test_half_precision_loads_the_fp16_variant(tiny_model: Path) -> None:
    half = DevicePlan(device="cpu", dtype="float16", attention_slicing=True, batch_images=True)
    pipe16 = load_pipeline(Settings(model=str(tiny_model), device="cpu"), half)
    assert pipe16.unet.dtype == torch.float16
    assert pipe16.vae.dtype == torch.float16
