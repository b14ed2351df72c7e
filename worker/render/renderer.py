"""The renderer: one warmed pipeline of any family, jobs in, checked images out. No Celery.

render() follows the guide: CPU noise generators (a seed gives the same image on any
device), one image per pass on MPS, progress counted from the step callback, and no
silent garbage: non-finite latents or an all-black picture get one retry with safer
settings (no attention slicing, float32 VAE decode) and then fail the job; running out of
accelerator memory fails it at once. Each failure is a RenderFailed with its ErrorCode.

What differs between SD 1.5, SD 2.x and SDXL (extra call arguments, the latent decode, the
safety checker) comes from the model's family module (worker/render/families/); the steps
below are the same for all of them.
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
from worker.render.families import Family, of_pipeline
from worker.render.samplers import sampler_label, scheduler_for

logger = logging.getLogger(__name__)

# (image index, step done, steps in this pass): called from the denoising loop.
StepHook = Callable[[int, int, int], None]
StopCheck = Callable[[], bool]


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
    model: str = ""  # the catalog name of the model that rendered it
    family: str = ""
    model_hash: str | None = None  # A1111's short hash (worker/render/model_hash.py)
    # What the pass was conditioned on beyond the prompt (SDXL: its size conditioning).
    conditioning: dict[str, Any] = field(default_factory=dict)
    # Set by the job runner when this job waited for its model to load (worker/render/cache.py).
    model_load_s: float | None = None


@dataclass
class _Pass:
    spec: JobSpec
    seeds: list[int]
    first_index: int
    on_step: StepHook | None
    should_stop: StopCheck | None
    steps_done: int = 0
    # A grouped pass (several jobs, one forward pass): the job behind each image, in order.
    group: list[JobSpec] | None = None


class Renderer:
    """Holds one warmed pipeline; the model cache (worker/render/cache.py) holds renderers."""

    def __init__(
        self,
        pipe: Any,
        plan: DevicePlan,
        model_name: str,
        family: Family | None = None,
        model_hash: str | None = None,
    ) -> None:
        self.pipe = pipe
        self.plan = plan
        self.model_name = model_name
        self.family = family or of_pipeline(pipe)
        self.model_hash = model_hash
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
        # 1. The scheduler the job asks for (built once from the model's own config)
        self._use_scheduler(spec.scheduler)
        # 2. Passes: every image in one on cuda/cpu, one image each on mps (guide rule 4)
        seeds = spec.seeds()
        groups = [seeds] if self.plan.batch_images else [[s] for s in seeds]
        images: list[Any] = []
        nsfw: list[bool] = []
        retried = False
        calls = 0
        # 3. Each pass: denoise, decode, safety checker, checked, retried once safer
        for group in groups:
            run = _Pass(spec, group, len(images), on_step, should_stop)
            group_images, group_nsfw, group_retried = self._render_checked(run)
            images += group_images
            nsfw += group_nsfw
            retried = retried or group_retried
            calls += run.steps_done
        # 4. The result, with what the images need to carry
        return self._result(spec, images, seeds, nsfw, retried, start, calls)

    def render_group(
        self,
        specs: list[JobSpec],
        on_step: StepHook | None = None,
        should_stop: StopCheck | None = None,
    ) -> list[RenderResult]:
        """Compatible jobs (same model, size, steps, guidance, scheduler) in one forward pass.

        Each image keeps its own prompt and CPU-generator seed, so it matches the same
        job rendered alone up to batched-arithmetic rounding. Callers group only off mps.
        """
        start = time.perf_counter()
        # 1. The scheduler the jobs share
        self._use_scheduler(specs[0].scheduler)
        # 2. One pass: every job's seeds, each image with its own job's prompts
        seeds = [seed for spec in specs for seed in spec.seeds()]
        group = [spec for spec in specs for _ in spec.seeds()]
        run = _Pass(specs[0], seeds, 0, on_step, should_stop, group=group)
        # 3. Denoise, decode, safety checker, checked, retried once safer
        images, nsfw, retried = self._render_checked(run)
        # 4. One result per job
        results, first = [], 0
        for spec in specs:
            last = first + spec.images
            result = self._result(
                spec, images[first:last], seeds[first:last], nsfw[first:last], retried, start
            )
            result.unet_calls = run.steps_done
            result.notes.append(f"grouped with {len(specs) - 1} other jobs")
            results.append(result)
            first = last
        return results

    def _result(
        self,
        spec: JobSpec,
        images: list[Any],
        seeds: list[int],
        nsfw: list[bool],
        retried: bool,
        start: float,
        calls: int = 0,
    ) -> RenderResult:
        return RenderResult(
            images=images,
            seeds=seeds,
            nsfw=nsfw,
            sampler=sampler_label(self.pipe.scheduler),
            retried_safer=retried,
            render_s=time.perf_counter() - start,
            unet_calls=calls,
            model=self.model_name,
            family=self.family.name,
            model_hash=self.model_hash,
            conditioning=self.family.conditioning(spec),
        )

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
            # 3a. Denoise to latents (the decode is ours: checked, float32 on the retry)
            latents = self._denoise(run, slicing=self._slicing_for(run.spec) and not safer)
            if not bool(latents.isfinite().all()):
                problem, code = "non-finite latents (NaN/inf)", ErrorCode.NON_FINITE
            else:
                # 3b. Decode as the family does it (SDXL: float32 when its VAE says so)
                decoded = self._decode(latents, float32=safer)
                if not bool(decoded.isfinite().all()):
                    problem, code = "non-finite decoded pixels", ErrorCode.NON_FINITE
                else:
                    # 3c. Safety checker, then PIL; a black picture it did not cause fails
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

        with torch.inference_mode():
            out = self.pipe(**self._call_kwargs(run), callback_on_step_end=callback)
        if getattr(self.pipe, "_interrupt", False):
            self.pipe._interrupt = False
            raise JobCancelled(f"job {run.spec.id} cancelled at step {run.steps_done}")
        return out.images

    def _call_kwargs(self, run: _Pass) -> dict[str, Any]:
        import torch

        spec, group = run.spec, run.group
        negatives = [job.negative_prompt for job in group] if group else [spec.negative_prompt]
        kwargs: dict[str, Any] = {
            "prompt": [job.prompt for job in group] if group else spec.prompt,
            "negative_prompt": (negatives if group else negatives[0]) if any(negatives) else None,
            "num_inference_steps": spec.steps,
            "guidance_scale": spec.guidance,
            "height": spec.height,
            "width": spec.width,
            "num_images_per_prompt": 1 if group else len(run.seeds),
            # Noise from CPU generators: the same seed gives the same image on any device.
            "generator": [torch.Generator("cpu").manual_seed(s) for s in run.seeds],
            # Latents only: the decode is ours (checked, float32 on retry), and an
            # interrupted job then skips the VAE entirely.
            "output_type": "latent",
        }
        return kwargs | self.family.call_kwargs(spec, group)

    def _decode(self, latents: Any, *, float32: bool) -> Any:
        return self.family.decode(self.pipe.vae, latents, float32)

    def _finish(self, decoded: Any) -> tuple[list[Any], list[bool]]:
        """Safety check (it blacks out flagged images: we record that it fired), then to PIL."""
        image, flagged = decoded, None
        if getattr(self.pipe, "safety_checker", None) is not None:
            image, flagged = self.pipe.run_safety_checker(decoded, self.plan.device, decoded.dtype)
        nsfw = [bool(f) for f in flagged] if flagged is not None else [False] * len(image)
        watermark = getattr(self.pipe, "watermark", None)  # SDXL's, when the package is there
        if watermark is not None:
            image = watermark.apply_watermark(image)
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
