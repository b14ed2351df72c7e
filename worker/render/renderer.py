"""The renderer: one warmed pipeline, jobs in, checked images out. Never imports Celery.

render() follows the guide: CPU noise generators (a seed gives the same image on any
device), one image per pass on MPS, progress counted from the step callback, and no
silent garbage: non-finite latents or an all-black picture get one retry with safer
settings (no attention slicing, float32 VAE decode) and then fail the job; running out of
accelerator memory fails it at once. Each failure is a RenderFailed with its ErrorCode.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from config.errors import ErrorCode, JobCancelled, RenderFailed
from config.schema import JobSpec
from worker.render.device import DevicePlan
from worker.render.samplers import sampler_label, scheduler_for

logger = logging.getLogger(__name__)

# (image index, step done, steps in this pass): called from the denoising loop.
StepHook = Callable[[int, int, int], None]
StopCheck = Callable[[], bool]

# A decoded image whose brightest pixel is below this (in [-1, 1]) is black.
BLACK_LEVEL = -0.98


@dataclass
class RenderResult:
    images: list[Any]  # PIL images, one per seed
    seeds: list[int]
    nsfw: list[bool]
    sampler: str
    retried_safer: bool
    render_s: float
    unet_calls: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class _Pass:
    spec: JobSpec
    seeds: list[int]
    first_index: int
    on_step: StepHook | None
    should_stop: StopCheck | None
    steps_done: int = 0
    # A grouped pass (several jobs, one forward pass): one prompt per seed.
    prompts: list[str] | None = None
    negatives: list[str] | None = None


class Renderer:
    """Holds the warmed pipeline for the life of one worker process."""

    def __init__(self, pipe: Any, plan: DevicePlan, model_name: str) -> None:
        self.pipe = pipe
        self.plan = plan
        self.model_name = model_name
        self._default_scheduler = pipe.scheduler
        self._schedulers: dict[str, Any] = {}

    def warm_up(self) -> float:
        """One discarded one-step pass: MPS compiles its graphs on first use (guide rule 5)."""
        import torch

        start = time.perf_counter()
        size = self.default_size()
        with torch.inference_mode():
            self.pipe(
                "warm-up",
                num_inference_steps=1,
                height=size,
                width=size,
                generator=torch.Generator("cpu").manual_seed(0),
                output_type="latent",
            )
        self._sync()
        return time.perf_counter() - start

    def default_size(self) -> int:
        return int(self.pipe.unet.config.sample_size) * int(self.pipe.vae_scale_factor)

    def render(
        self,
        spec: JobSpec,
        on_step: StepHook | None = None,
        should_stop: StopCheck | None = None,
    ) -> RenderResult:
        start = time.perf_counter()
        self._use_scheduler(spec.scheduler)
        seeds = spec.seeds()
        groups = [seeds] if self.plan.batch_images else [[s] for s in seeds]
        images: list[Any] = []
        nsfw: list[bool] = []
        retried = False
        calls = 0
        for group in groups:
            run = _Pass(spec, group, len(images), on_step, should_stop)
            group_images, group_nsfw, group_retried = self._render_checked(run)
            images += group_images
            nsfw += group_nsfw
            retried = retried or group_retried
            calls += run.steps_done
        return RenderResult(
            images=images,
            seeds=seeds,
            nsfw=nsfw,
            sampler=sampler_label(self.pipe.scheduler),
            retried_safer=retried,
            render_s=time.perf_counter() - start,
            unet_calls=calls,
        )

    def render_group(
        self,
        specs: list[JobSpec],
        on_step: StepHook | None = None,
        should_stop: StopCheck | None = None,
    ) -> list[RenderResult]:
        """Compatible jobs (same size, steps, guidance, scheduler) in one forward pass.

        Each image keeps its own prompt and CPU-generator seed, so it matches the same
        job rendered alone up to batched-arithmetic rounding. Callers group only off mps.
        """
        start = time.perf_counter()
        self._use_scheduler(specs[0].scheduler)
        seeds = [seed for spec in specs for seed in spec.seeds()]
        prompts = [spec.prompt for spec in specs for _ in spec.seeds()]
        negatives = [spec.negative_prompt for spec in specs for _ in spec.seeds()]
        run = _Pass(specs[0], seeds, 0, on_step, should_stop, prompts=prompts, negatives=negatives)
        images, nsfw, retried = self._render_checked(run)
        elapsed = time.perf_counter() - start
        results, first = [], 0
        for spec in specs:
            last = first + spec.images
            results.append(
                RenderResult(
                    images=images[first:last],
                    seeds=seeds[first:last],
                    nsfw=nsfw[first:last],
                    sampler=sampler_label(self.pipe.scheduler),
                    retried_safer=retried,
                    render_s=elapsed,
                    unet_calls=run.steps_done,
                    notes=[f"grouped with {len(specs) - 1} other jobs"],
                )
            )
            first = last
        return results

    def _render_checked(self, run: _Pass) -> tuple[list[Any], list[bool], bool]:
        try:
            return self._render_retrying(run)
        except RuntimeError as exc:
            # torch.OutOfMemoryError (CUDA) and MPS's "MPS backend out of memory" are both
            # RuntimeErrors; a safer retry would need more memory, not less, so none is made.
            if "out of memory" not in str(exc):
                raise
            raise RenderFailed(str(exc), code=ErrorCode.OUT_OF_MEMORY) from exc

    def _render_retrying(self, run: _Pass) -> tuple[list[Any], list[bool], bool]:
        problem, code = "", ErrorCode.INTERNAL
        for safer in (False, True):
            run.steps_done = 0
            latents = self._denoise(run, slicing=self._slicing_for(run.spec) and not safer)
            if not bool(latents.isfinite().all()):
                problem, code = "non-finite latents (NaN/inf)", ErrorCode.NON_FINITE
            else:
                decoded = self._decode(latents, float32=safer)
                if not bool(decoded.isfinite().all()):
                    problem, code = "non-finite decoded pixels", ErrorCode.NON_FINITE
                else:
                    images, nsfw = self._finish(decoded)
                    black = [i for i, img in enumerate(images) if _is_black(img) and not nsfw[i]]
                    if not black:
                        return images, nsfw, safer
                    problem = f"all-black image for seed {run.seeds[black[0]]}"
                    code = ErrorCode.BLACK_IMAGE
            if not safer:
                logger.warning("job %s: %s; retrying with safer settings", run.spec.id, problem)
        raise RenderFailed(
            f"{problem}, also after a retry without attention slicing and with float32 VAE decode",
            code=code,
        )

    def _denoise(self, run: _Pass, *, slicing: bool) -> Any:
        import torch

        self._set_slicing(slicing)

        def callback(pipe: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            run.steps_done += 1
            if run.on_step is not None:
                # num_timesteps, not num_inference_steps: PNDM makes 51 calls for 50 steps.
                run.on_step(run.first_index, run.steps_done, int(pipe.num_timesteps))
            if run.should_stop is not None and run.should_stop():
                pipe._interrupt = True
            return kwargs

        spec = run.spec
        with torch.inference_mode():
            out = self.pipe(
                prompt=run.prompts or spec.prompt,
                negative_prompt=run.negatives or spec.negative_prompt or None,
                num_inference_steps=spec.steps,
                guidance_scale=spec.guidance,
                height=spec.height,
                width=spec.width,
                num_images_per_prompt=1 if run.prompts else len(run.seeds),
                # Noise from CPU generators: the same seed gives the same image on any device.
                generator=[torch.Generator("cpu").manual_seed(s) for s in run.seeds],
                # Latents only: the decode is ours (checked, float32 on retry), and an
                # interrupted job then skips the VAE entirely.
                output_type="latent",
                callback_on_step_end=callback,
            )
        if getattr(self.pipe, "_interrupt", False):
            self.pipe._interrupt = False
            raise JobCancelled(f"job {spec.id} cancelled at step {run.steps_done}")
        return out.images

    def _decode(self, latents: Any, *, float32: bool) -> Any:
        import torch

        vae = self.pipe.vae
        original = vae.dtype
        dtype = torch.float32 if float32 else original
        try:
            if dtype != original:
                vae.to(dtype)
            with torch.inference_mode():
                scaled = latents.to(dtype) / vae.config.scaling_factor
                return vae.decode(scaled, return_dict=False)[0]
        finally:
            if dtype != original:
                vae.to(original)

    def _finish(self, decoded: Any) -> tuple[list[Any], list[bool]]:
        """Safety check (it blacks out flagged images: we record that it fired), then to PIL."""
        image, flagged = decoded, None
        if getattr(self.pipe, "safety_checker", None) is not None:
            image, flagged = self.pipe.run_safety_checker(decoded, self.plan.device, decoded.dtype)
        nsfw = [bool(f) for f in flagged] if flagged is not None else [False] * len(image)
        pil = self.pipe.image_processor.postprocess(
            image.float(), output_type="pil", do_denormalize=[not f for f in nsfw]
        )
        return list(pil), nsfw

    def _slicing_for(self, spec: JobSpec) -> bool:
        # The guide also recommends slicing above 512x512 on MPS, whatever the RAM.
        big = spec.width * spec.height > 512 * 512
        return self.plan.attention_slicing or (self.plan.device == "mps" and big)

    def _set_slicing(self, on: bool) -> None:
        if on:
            self.pipe.enable_attention_slicing()
        else:
            self.pipe.disable_attention_slicing()

    def _use_scheduler(self, name: str | None) -> None:
        if name is None:
            self.pipe.scheduler = self._default_scheduler
            return
        if name not in self._schedulers:
            self._schedulers[name] = scheduler_for(name, self._default_scheduler.config)
        self.pipe.scheduler = self._schedulers[name]

    def _sync(self) -> None:
        import torch

        if self.plan.device == "cuda":
            torch.cuda.synchronize()
        elif self.plan.device == "mps":
            torch.mps.synchronize()


def _is_black(image: Any) -> bool:
    _, hi = image.convert("L").getextrema()
    return bool(hi <= 2)
