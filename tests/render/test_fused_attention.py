"""The fast path's fused QKV projections survive renders, with and without attention slicing.

diffusers' disable_attention_slicing puts a plain AttnProcessor2_0 in every attention module;
called before each pass, it undid the fusion before torch.compile traced the first job. The
compile needs a GPU; the processors it would trace are the same on the CPU.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from diffusers.models.attention_processor import FusedAttnProcessor2_0

from config.schema import JobSpec, new_job
from config.settings import Settings
from worker.render import fastpath
from worker.render.device import DevicePlan
from worker.render.pipeline import load_pipeline
from worker.render.renderer import Renderer

CPU = DevicePlan(device="cpu", dtype="float32", attention_slicing=False, batch_images=True)


def processor_kinds(pipe: Any) -> set[str]:
    processors = [*pipe.unet.attn_processors.values(), *pipe.vae.attn_processors.values()]
    return {type(p).__name__ for p in processors}


def render(renderer: Renderer, spec: JobSpec) -> tuple[np.ndarray, set[str]]:
    """The picture, and the kinds of processor the UNet ran with (seen from the step hook)."""
    seen: set[str] = set()

    def on_step(index: int, done: int, total: int) -> None:
        seen.update(type(p).__name__ for p in renderer.pipe.unet.attn_processors.values())

    result = renderer.render(spec, on_step=on_step)
    return np.asarray(result.images[0]), seen


def test_fused_processors_survive_a_round_trip_through_attention_slicing(
    render_settings: Settings,
) -> None:
    renderer = Renderer(load_pipeline(render_settings, CPU), CPU, render_settings.model)
    assert "fused_qkv" in fastpath.prepare_modules(renderer.pipe)
    fused = {FusedAttnProcessor2_0.__name__}
    spec = new_job("a lighthouse", render_settings, seed=3, width=64, height=64, steps=2)

    before, ran_with = render(renderer, spec)
    assert ran_with == fused and processor_kinds(renderer.pipe) == fused

    renderer.plan = replace(CPU, attention_slicing=True)
    _, ran_with = render(renderer, spec)
    assert ran_with == {"SlicedAttnProcessor"}
    renderer.plan = CPU

    after, ran_with = render(renderer, spec)
    assert ran_with == fused and processor_kinds(renderer.pipe) == fused
    assert np.array_equal(before, after)
