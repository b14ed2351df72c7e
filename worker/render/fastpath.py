"""The CUDA fast path: channels-last, fused QKV, a compiled UNet, warmed at start-up.

Eager SD 1.5 on an H100 spends most of a one-image render launching small kernels;
torch.compile fuses them and, in "reduce-overhead" mode, replays each step as a CUDA
graph. Compiling takes minutes, so it happens once per worker process, before the
worker reports ready, for each group size it will render (a new batch size is a new
graph). After that, torch is told to run any unseen shape eagerly rather than compile
it inside a job. mps and cpu never take this path; NIGHTSHIFT_FAST_PATH=false turns
it off on cuda too. What torch compiles is kept in the data dir (compile_cache.py): a
restarted worker loads it instead of compiling again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from config.schema import JobSpec, Limits, parse_job
from config.settings import Settings
from worker.render import compile_cache
from worker.render.device import DevicePlan
from worker.render.renderer import Renderer

logger = logging.getLogger(__name__)

# Each group size is warmed with two renders: the first compiles (or loads the compile
# cache) and picks cuDNN kernels for the VAE decode, the second records the CUDA graphs and
# replays them, exactly as the next job will. A few steps are enough for that: the UNet is
# the same graph at every step (only the timestep's value changes), so the steps past the
# first three only replay; at 30 steps they cost a warm start ~5 s on an H200 for nothing.
WARM_ROUNDS = 2
WARM_STEPS = 4


@dataclass
class FastPathReport:
    enabled: bool
    reason: str
    compile_s: float = 0.0
    group_sizes: tuple[int, ...] = ()
    warm_s: dict[int, float] = field(default_factory=dict)
    # Each round's seconds per size: the first compiles or loads, the second should replay.
    warm_rounds_s: dict[int, list[float]] = field(default_factory=dict)
    # Whether an earlier start's compile was found (worker/render/compile_cache.py).
    compile_cache: str = "off"  # off (no compile), warm or cold


def wanted(settings: Settings, plan: DevicePlan) -> tuple[bool, str]:
    """Whether this worker takes the fast path, and why (for the log and the record)."""
    if plan.device != "cuda":
        return False, f"device is {plan.device}; the fast path is for cuda only"
    if not settings.fast_path:
        return False, "NIGHTSHIFT_FAST_PATH is false"
    return True, f"torch.compile mode {settings.compile_mode}"


def prepare_modules(pipe: Any) -> list[str]:
    """The layout changes that need no compiler: channels-last convs, fused QKV projections."""
    import torch

    done = []
    pipe.unet.to(memory_format=torch.channels_last)
    pipe.vae.to(memory_format=torch.channels_last)
    done.append("channels_last")
    try:
        pipe.fuse_qkv_projections()
        done.append("fused_qkv")
    except (AttributeError, ValueError, NotImplementedError) as exc:
        logger.info("fused QKV not available here: %s", exc)
    return done


def compile_unet(pipe: Any, mode: str) -> None:
    import torch
    import torch._inductor.config as inductor

    # 1x1 convolutions as matrix products: what the diffusers speed guide measured fastest.
    inductor.conv_1x1_as_mm = True
    pipe.unet = torch.compile(pipe.unet, mode=mode, fullgraph=True)


def apply(renderer: Renderer, settings: Settings, plan: DevicePlan) -> FastPathReport:
    """Prepare, compile and warm every group size; the worker reports ready after this."""
    enabled, reason = wanted(settings, plan)
    if not enabled:
        logger.info("fast path off: %s", reason)
        if plan.device == "cuda":
            # Eager CUDA too: the guide's one-step latent warm-up leaves the VAE decode
            # cold, and the first job would pay for picking its kernels.
            warm_group_size(renderer, settings, 1)
        return FastPathReport(False, reason)
    start = time.perf_counter()
    # Before anything compiles: torch reads its cache folders when it first does.
    cache = compile_cache.open_cache(settings.compile_cache_path, renderer.model_name)
    cache.load()
    steps = prepare_modules(renderer.pipe)
    compile_unet(renderer.pipe, settings.compile_mode)
    report = FastPathReport(True, f"{reason}; {', '.join(steps)}", group_sizes=settings.group_sizes)
    report.compile_cache = cache.state
    warm_all(renderer, settings, report)
    _no_compile_in_jobs()
    cache.save()  # every group size compiled: what the next start of this model loads
    report.compile_s = time.perf_counter() - start
    logger.info("fast path ready in %.1f s, compile cache %s", report.compile_s, cache.state)
    return report


def warm_all(renderer: Renderer, settings: Settings, report: FastPathReport) -> None:
    # Largest first: switching CUDA graphs costs the first call after the switch, so the
    # size most jobs use (1, one job at a time) is the last one warmed before ready.
    for size in sorted(report.group_sizes, reverse=True):
        rounds = warm_group_size(renderer, settings, size)
        report.warm_rounds_s[size] = rounds
        report.warm_s[size] = sum(rounds)
        logger.info(
            "fast path: group size %d warmed in %.1f s (rounds: %s s)",
            size,
            report.warm_s[size],
            ", ".join(f"{r:.2f}" for r in rounds),
        )


def warm_group_size(renderer: Renderer, settings: Settings, size: int) -> list[float]:
    """Render (and discard) one group of this size at the model's own resolution, a few
    steps a round; each round's seconds."""
    side = renderer.default_size()
    specs = [warm_up_job(settings, i, side) for i in range(size)]
    rounds = []
    for _ in range(WARM_ROUNDS):
        start = time.perf_counter()
        if size == 1:
            renderer.render(specs[0])
        else:
            renderer.render_group(specs)
        renderer._sync()
        rounds.append(time.perf_counter() - start)
    return rounds


def warm_up_job(settings: Settings, seed: int, side: int) -> JobSpec:
    """A job for whichever model is being warmed: built without the catalog, which would fill
    in its default model's fields (another family's scheduler, say)."""
    data = {
        "id": f"warm-up-{seed}",
        "prompt": f"warm-up {seed}",
        "seed": seed,
        "steps": min(WARM_STEPS, settings.default_steps),
        "guidance": settings.default_guidance,
        "width": side,
        "height": side,
        "created_at": time.time(),
    }
    return parse_job(data, Limits.from_settings(settings))


def _no_compile_in_jobs() -> None:
    import torch

    # A shape nobody warmed (another size, another group size) then runs eagerly: slower
    # for that job, but never minutes of compiling inside it.
    set_stance = getattr(torch.compiler, "set_stance", None)
    if set_stance is not None:
        set_stance("eager_on_recompile")
