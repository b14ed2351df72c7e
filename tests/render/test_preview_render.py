"""Live previews from a real denoising loop (the tiny model on the CPU, no Redis): a step hook
with a `preview` method is offered each step's picture, and one without is called as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from config.schema import JobSpec, new_job
from config.settings import Settings
from worker.render.device import DevicePlan
from worker.render.pipeline import load_pipeline
from worker.render.renderer import Draw, Renderer

CPU = DevicePlan(device="cpu", dtype="float32", attention_slicing=False, batch_images=True)


@pytest.fixture(scope="module")
def renderer(tiny_model: Path) -> Renderer:
    pipe = load_pipeline(Settings(model=str(tiny_model), device="cpu"), CPU)
    return Renderer(pipe, CPU, "tiny")


def job(prompt: str = "a preview", **params: Any) -> JobSpec:
    params = {"steps": 4, "width": 64, "height": 64, "seed": 5} | params
    return new_job(prompt, Settings(), **params)


class Drawing:
    """A PreviewHook that draws image `index` of the pass at every step."""

    def __init__(self, index: int = 0) -> None:
        self.index = index
        self.steps: list[int] = []
        self.pictures: list[Any] = []
        self._draw: Draw | None = None

    def preview(self, draw: Draw) -> None:
        self._draw = draw

    def __call__(self, image: int, step: int, steps: int) -> None:
        assert self._draw is not None  # offered before every step's call
        self.pictures.append(self._draw(self.index))
        self.steps.append(step)
        self._draw = None


def test_a_previewing_hook_gets_a_picture_at_each_step(renderer: Renderer) -> None:
    hook = Drawing()
    result = renderer.render(job(), on_step=hook)
    assert hook.steps == list(range(1, result.unet_calls + 1))
    assert all(p.mode == "RGB" and p.size == (64, 64) for p in hook.pictures)
    assert hook.pictures[0].tobytes() != hook.pictures[-1].tobytes()  # it follows the steps


def test_the_preview_has_the_jobs_shape(renderer: Renderer) -> None:
    hook = Drawing()
    renderer.render(job(width=96, height=64, steps=2), on_step=hook)
    assert hook.pictures[-1].size == (96, 64)


def test_a_grouped_pass_offers_every_jobs_image(renderer: Renderer) -> None:
    first, second = Drawing(0), Drawing(1)

    class Both:
        def preview(self, draw: Draw) -> None:
            first.preview(draw)
            second.preview(draw)

        def __call__(self, image: int, step: int, steps: int) -> None:
            first(image, step, steps)
            second(image, step, steps)

    specs = [job(seed=1, steps=2), job(seed=2, steps=2, prompt="another")]
    renderer.render_group(specs, on_step=Both())
    assert first.pictures[-1].tobytes() != second.pictures[-1].tobytes()


def test_a_plain_hook_is_called_as_before(renderer: Renderer) -> None:
    seen: list[tuple[int, ...]] = []
    renderer.render(job(steps=2), on_step=lambda *a: seen.append(a))
    assert seen and all(len(call) == 3 for call in seen)
