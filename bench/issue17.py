"""Issue 17's single-GPU phases of bench/gpu_bench.py, and the summary that compares them.

  plain-compiled  plain diffusers StableDiffusionPipeline, compiled as a speed-minded user
                  would: channels-last UNet and VAE, fused QKV, the UNet under
                  torch.compile(mode="reduce-overhead", fullgraph=True), the inductor switch
                  the worker sets too (conv_1x1_as_mm). Warmed, then (a) one image per call,
                  PNG saved, s/image over --plain-images; (b) --batch prompts per call, every
                  PNG saved, images/s. With --plain-compile-vae the VAE's decode is then
                  compiled the same way and (a) and (b) measured again.
  cold-warm       start-to-ready of a fast-path worker with an empty compile cache folder
                  (<out>/compile-cache), then of a second one on that same folder; on the warm
                  one the worker figures the summary sets beside plain-compiled (first and
                  tenth job, steady one at a time, --group-prompts as group messages). That
                  worker stays up for `leak` when both phases run.
  leak            --leak-jobs jobs as group messages at --leak-steps steps on the fast path;
                  after each job the rendering child writes torch.cuda.memory_allocated(),
                  memory_reserved() and its RSS (bench/phases/memory_samples.py); a
                  least-squares line over jobs --leak-fit-from..N per series, its slope's
                  95 % interval, and a verdict (bench/bench_stats.py).

Only the bench imports this module (lazily, from its phase table).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import bench_stats
import gpu_bench as gb

PHASES_DIR = gb.ROOT / "bench" / "phases"
SHARED: dict[str, gb.Worker] = {}  # the warm worker cold-warm leaves up for leak


# --- plain-compiled ----------------------------------------------------------------------


def plain_compiled(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    out: dict[str, Any] = {"phase_started_at": time.time()}
    gb.RESULTS["plain-compiled"] = out
    pipe = load_plain(args)
    out["prepared"] = prepare_plain(pipe)
    options = compile_options(args)
    out["compile"] = {"options": str(options), "inductor": {"conv_1x1_as_mm": True}}
    pipe.unet = torch.compile(pipe.unet, **options)
    out["compiled"] = ["unet"]
    out["unet"] = measure_plain(args, pipe, out, "unet")
    if args.plain_compile_vae:
        try:
            pipe.vae.decode = torch.compile(pipe.vae.decode, **options)
            out["unet_and_vae"] = measure_plain(args, pipe, out, "unet_and_vae")
            out["compiled"] = ["unet", "vae.decode"]
        except Exception as exc:  # the UNet-only figures above still stand
            out["unet_and_vae"] = {"error": f"{type(exc).__name__}: {exc}"}
    gb.free_gpu(args)
    return out


def load_plain(args: argparse.Namespace) -> Any:
    import torch
    from diffusers import StableDiffusionPipeline

    options: dict[str, Any] = {"torch_dtype": getattr(torch, args.dtype), "safety_checker": None}
    options["requires_safety_checker"] = False
    try:  # the bench model has an fp16 variant, as real SD 1.5 checkpoints do
        pipe = StableDiffusionPipeline.from_pretrained(args.model, variant="fp16", **options)
    except (OSError, ValueError):
        pipe = StableDiffusionPipeline.from_pretrained(args.model, **options)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(args.device)


def prepare_plain(pipe: Any) -> list[str]:
    import torch
    import torch._inductor.config as inductor

    pipe.unet.to(memory_format=torch.channels_last)
    pipe.vae.to(memory_format=torch.channels_last)
    pipe.fuse_qkv_projections()
    # The worker's one inductor switch (worker/render/fastpath.py), from diffusers' speed guide.
    inductor.conv_1x1_as_mm = True
    return ["channels_last", "fused_qkv", "conv_1x1_as_mm"]


def compile_options(args: argparse.Namespace) -> dict[str, Any]:
    if args.tiny:  # the CPU dry run: dynamo's full-graph capture, no inductor, no CUDA graphs
        return {"backend": "eager", "fullgraph": True}
    return {"mode": "reduce-overhead", "fullgraph": True}


def measure_plain(
    args: argparse.Namespace, pipe: Any, out: dict[str, Any], label: str
) -> dict[str, Any]:
    """(a) one image per call + its PNG; (b) args.batch prompts per call + their PNGs."""
    folder = Path("/tmp/nightshift-bench/plain-compiled") / label
    folder.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {}
    out[label] = result
    result["warm_batch1_s"] = [timed(args, lambda: plain_call(args, pipe, 0, 1)) for _ in "ab"]
    gb.save(args, gb.RESULTS)
    single = []
    for i in range(args.plain_images):
        single.append(timed(args, lambda i=i: save_all(plain_call(args, pipe, i, 1), folder, i)))
    result["one_at_a_time_s_per_image_with_png"] = gb.spread(single)
    gb.save(args, gb.RESULTS)
    n = args.batch
    result[f"warm_batch{n}_s"] = [timed(args, lambda: plain_call(args, pipe, 0, n)) for _ in "ab"]
    rates = []
    for rep in range(args.plain_batch_reps):
        seconds = timed(args, lambda r=rep: save_all(plain_call(args, pipe, r * n, n), folder, 0))
        rates.append(n / seconds)
    result[f"batch{n}_images_per_s_with_png"] = gb.spread(rates)
    gb.save(args, gb.RESULTS)
    return result


def plain_call(args: argparse.Namespace, pipe: Any, first: int, count: int) -> list[Any]:
    """What a plain script does: seeds and prompts as the worker's jobs get them."""
    import torch

    seeds = range(first, first + count)
    out = pipe(
        prompt=[gb.PROMPT.format(i=i) for i in seeds],
        num_inference_steps=args.steps,
        guidance_scale=7.5,
        height=args.size,
        width=args.size,
        generator=[torch.Generator("cpu").manual_seed(i) for i in seeds],
    )
    return list(out.images)


def save_all(images: list[Any], folder: Path, first: int) -> None:
    for k, image in enumerate(images):
        image.save(folder / f"{first + k}.png")


def timed(args: argparse.Namespace, work: Any) -> float:
    gb.sync(args)
    start = time.perf_counter()
    work()
    return round(time.perf_counter() - start, 4)


# --- workers with the bench's hooks and a compile cache folder ---------------------------


def hooks_env(args: argparse.Namespace) -> dict[str, str]:
    """The memory-sample hook for a worker (bench/phases/sitecustomize.py)."""
    path = os.environ.get("PYTHONPATH", "")
    return {
        "PYTHONPATH": os.pathsep.join(p for p in (str(PHASES_DIR), path) if p),
        "NIGHTSHIFT_MEMORY_LOG": str(samples_path(args)),
    }


def samples_path(args: argparse.Namespace) -> Path:
    return Path(args.out).resolve() / "memory-samples.jsonl"


def cache_env(folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(NIGHTSHIFT_* settings, other variables) that put a worker's compile caches in folder.

    Torch's own variables too, set to the very sub-folders worker/render/compile_cache.py
    would pick: a value inherited from this shell would otherwise win over the setting.
    """
    from config.settings import Settings

    torch_env = {"TORCHINDUCTOR_CACHE_DIR": str(folder / "inductor")}
    torch_env["TRITON_CACHE_DIR"] = str(folder / "triton")
    if "compile_cache_dir" in Settings.model_fields:
        return {"NIGHTSHIFT_COMPILE_CACHE_DIR": str(folder)}, torch_env
    return {}, torch_env


def start_worker(
    args: argparse.Namespace, name: str, cache: Path, settings: dict[str, str] | None = None
) -> gb.Worker:
    ours, torch_env = cache_env(cache)
    return gb.Worker(args, name, True, ours | (settings or {}), torch_env | hooks_env(args))


def folder_mib(folder: Path) -> float:
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
    return round(sum(p.stat().st_size for p in files) / 2**20, 1)


# --- cold-warm -----------------------------------------------------------------------------


def cold_warm(args: argparse.Namespace) -> dict[str, Any]:
    cache = Path(args.out).resolve() / "compile-cache"
    shutil.rmtree(cache, ignore_errors=True)  # ours, from an earlier run into this out dir
    out: dict[str, Any] = {"compile_cache_dir": str(cache)}
    gb.RESULTS["cold-warm"] = out
    cold = start_worker(args, "cold", cache)
    try:
        out["cold"] = ready_figures(cold.wait_ready(timeout=600))
    finally:
        cold.stop()
    out["cache_mib_after_cold"] = folder_mib(cache)
    gb.save(args, gb.RESULTS)
    warm = start_worker(args, "warm", cache)
    keep = False
    try:
        out["warm"] = ready_figures(warm.wait_ready(timeout=600))
        out["warm_over_cold"] = round(
            out["warm"]["start_to_ready_s"] / out["cold"]["start_to_ready_s"], 3
        )
        gb.save(args, gb.RESULTS)
        out["worker"] = worker_figures(args, warm)
        keep = "leak" in args.phases.split(",")
    finally:
        if keep:
            SHARED["fast"] = warm
        else:
            warm.stop()
    return out


def ready_figures(info: dict[str, Any]) -> dict[str, Any]:
    keys = (
        *("start_to_ready_s", "boot_s", "load_s", "compile_s", "warm_rounds_s", "warmup_s"),
        *("compile_cache", "fast_path"),
    )
    return {k: info.get(k) for k in keys}


def worker_figures(args: argparse.Namespace, w: gb.Worker) -> dict[str, Any]:
    """What the summary sets beside plain-compiled, from the warm worker."""
    figures: dict[str, Any] = {}
    firsts = gb.one_at_a_time(w, 1000, 10)
    figures["first_job"], figures["tenth_job"] = firsts[0], firsts[-1]
    figures["steady"] = gb.steady(w, 2000, args.steady_jobs)
    figures["group"] = gb.grouped_throughput(w, args)
    return figures


def cleanup() -> None:
    while SHARED:
        SHARED.popitem()[1].stop()


# --- leak ----------------------------------------------------------------------------------


def leak(args: argparse.Namespace) -> dict[str, Any]:
    from producer.client import submit_grouped

    w = SHARED.pop("fast", None)
    out: dict[str, Any] = {"leak_steps": args.leak_steps, "jobs": args.leak_jobs}
    gb.RESULTS["leak"] = out
    if w is None or w.proc.poll() is not None:
        w = start_worker(args, "leak", Path(args.out).resolve() / "compile-cache")
        out["ready"] = ready_figures(w.wait_ready(timeout=600))
    out["worker"] = w.name
    try:
        specs = [w.spec(100_000 + i, steps=args.leak_steps) for i in range(args.leak_jobs)]
        base = finished_count(w.client)
        per_job = 3.0 if args.tiny else 0.25  # s; a job at 10 steps takes ~0.08 s on an H200
        start = time.time()
        submit_grouped(w.client, specs)
        try:
            wait_finished(w.client, base + len(specs), timeout=60 + per_job * len(specs))
        except TimeoutError as exc:  # analyse what did finish
            out["error"] = str(exc)
        records = [w.client.store.get(s.id) for s in specs]
    finally:
        w.stop()
    ends = [r.finished_at for r in records if r.finished_at]
    out["ok"] = sum(r.status.value == "succeeded" for r in records)
    out["images_per_s"] = round(len(ends) / (max(ends) - start), 3) if ends else None
    out |= analyse_samples(read_samples(args, {s.id for s in specs}), args.leak_fit_from)
    return out


def read_samples(args: argparse.Namespace, ids: set[str]) -> list[dict[str, Any]]:
    """The hook's lines for these jobs, in the order they were written: completion order."""
    path = samples_path(args)
    lines = path.read_text().splitlines() if path.exists() else []
    samples = [json.loads(line) for line in lines if line.strip()]
    return [s for s in samples if s["job"] in ids]


def analyse_samples(samples: list[dict[str, Any]], fit_from: int) -> dict[str, Any]:
    """A line per series over jobs fit_from..N (1-based completion order)."""
    if len(samples) < fit_from + 3:
        fit_from = max(1, len(samples) // 5)  # a short dry run: still fit something
    window = samples[fit_from - 1 :]
    xs = [float(fit_from + k) for k in range(len(window))]
    out: dict[str, Any] = {
        "samples": len(samples),
        "distinct_samples": len({s["task"] for s in samples}),  # one per group task
        "fit_jobs": [fit_from, len(samples)],
    }
    # blocks: Python's allocated memory blocks (sys.getallocatedblocks), which show a growth
    # of Python objects the RSS's 4 KiB pages hide; absent from older sample files.
    for series in ("allocated", "reserved", "rss", "blocks"):
        if samples and series not in samples[0]:
            continue
        values = [float(s[series]) for s in samples]
        fit = bench_stats.fit_line(xs, [float(s[series]) for s in window])
        out[series] = {
            "first_mib": round(values[0] / 2**20, 2) if values else None,
            "at_fit_start_mib": round(float(window[0][series]) / 2**20, 2) if window else None,
            "last_mib": round(values[-1] / 2**20, 2) if values else None,
            "fit": fit.as_dict() if fit else None,
        }
        if fit and series == "blocks":  # a count, not bytes: any growth the interval shows
            low, _ = fit.slope_ci95
            out[series]["fit"].pop("growth_per_1000_jobs_mib")
            out[series]["fit"]["verdict"] = "grows" if low > 0 else "no growth beyond noise"
    return out


def finished_count(client: Any) -> int:
    """Jobs any worker finished, from the metrics hash: one cheap read however many are queued
    (reading every record each poll would be most of Redis's load, see bench/two_gpu.py)."""
    from config import keys as names

    counters = client.store.redis.hgetall(names.JOB_METRICS)
    return int(
        sum(float(v) for k, v in counters.items() if gb.text(k).startswith("jobs_finished:"))
    )


def wait_finished(client: Any, target: int, timeout: float) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        done = finished_count(client)
        if done >= target:
            return done
        time.sleep(0.5)
    raise TimeoutError(f"finished count {finished_count(client)} < {target} after {timeout:.0f} s")


# --- the summary -----------------------------------------------------------------------------


def summary(results: dict[str, Any]) -> list[tuple[str, Any]]:
    """Issue 17's rows: the worker beside plain-compiled, ratios, starts, leak, two GPUs."""
    get = getter(results)
    worker = "fast" if get("fast", "steady", "s_per_image") else "cold-warm"
    path = ("fast",) if worker == "fast" else ("cold-warm", "worker")
    rows: list[tuple[str, Any]] = [("worker figures from phase", worker)]
    rows += plain_rows(
        get, get(*path, "steady", "s_per_image"), get(*path, "group", "images_per_s")
    )
    starts = [get("cold-warm", state, "start_to_ready_s") for state in ("cold", "warm")]
    caches = [get("cold-warm", state, "compile_cache") for state in ("cold", "warm")]
    rows += [
        ("start-to-ready s: cold | warm compile cache", pair(*starts)),
        ("compile cache state the worker saw: cold | warm", pair(*caches)),
    ]
    for series in ("allocated", "reserved", "rss", "blocks"):
        fit = get("leak", series, "fit") or {}
        low, high = fit.get("slope_ci95") or [None, None]
        verdict = f"{r4(fit.get('slope'))} [{r4(low)}, {r4(high)}] -> {fit.get('verdict')}"
        unit = "blocks" if series == "blocks" else "bytes"
        rows.append((f"leak {series}: {unit}/job [95 % CI] -> verdict", verdict))
    rows.append(("leak images/s (at the leak's steps)", get("leak", "images_per_s")))
    if results.get("two-gpu"):
        rows += two_gpu_rows(get)
    errors = {k: v["error"] for k, v in results.items() if isinstance(v, dict) and "error" in v}
    rows.append(("errors", errors or None))
    return rows


def plain_rows(get: Any, one: float | None, grouped: float | None) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for label, what in (("unet", "UNet compiled"), ("unet_and_vae", "UNet + VAE decode")):
        measured = get("plain-compiled", label) or {}
        batch = next((k for k in measured if k.startswith("batch") and "png" in k), "")
        plain_one = get("plain-compiled", label, "one_at_a_time_s_per_image_with_png", "median")
        plain_group = get("plain-compiled", label, batch, "median")
        if plain_one is None and plain_group is None:
            continue
        size = batch.split("_")[0]
        rows += [
            (f"one at a time s/image: worker | plain ({what})", pair(one, plain_one)),
            ("  ratio worker / plain (<= 1.03: queue tax met)", ratio(one, plain_one)),
            (f"{size} images/s: worker grouped | plain ({what})", pair(grouped, plain_group)),
            ("  ratio worker / plain (>= 0.97: at par)", ratio(grouped, plain_group)),
        ]
    return rows


def two_gpu_rows(get: Any) -> list[tuple[str, Any]]:
    rates = [get("two-gpu", run, "images_per_s") for run in ("alone", "both")]
    return [
        ("two GPUs images/s: one worker | two workers", pair(*rates)),
        ("  scaling (target >= 1.9)", get("two-gpu", "scaling")),
        ("  every job rendered exactly once", get("two-gpu", "exactly_once", "ok")),
        ("  Redis CPU s per 1000 jobs", get("two-gpu", "redis", "cpu_s_per_1000_jobs")),
        ("  Redis commands per job", get("two-gpu", "redis", "commands_per_job")),
        ("  workers one Redis core serves", get("two-gpu", "redis", "fleet_size_at_saturation")),
    ]


def pair(a: Any, b: Any) -> str:
    return f"{r4(a)} | {r4(b)}"


def getter(results: dict[str, Any]) -> Any:
    def get(*path: str) -> Any:
        node: Any = results
        for p in path:
            if not isinstance(node, dict) or p not in node:
                return None
            node = node[p]
        return node

    return get


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def r4(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def print_summary(results: dict[str, Any]) -> None:
    print("\n| issue 17 | value |\n|---|---|")
    for name, value in summary(results):
        print(f"| {name} | {value} |")
