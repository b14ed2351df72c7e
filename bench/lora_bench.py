"""What a LoRA costs between jobs (issue 13): SD 1.5-shaped weights, through the worker's
Renderer and LoRA adapters, on one GPU.

The pipeline is built from the SD 1.5 skeleton's real configs with random weights (the real
compute; its pictures are noise), float16, eager (LoRA jobs take the eager path: see
worker/render/loras.py and the README), 512x512, 30 steps, PNDM, one image a render. Two random
rank-16 LoRAs on every attention projection of the UNet (SD 1.5 LoRAs' usual targets), saved
with diffusers' own save_lora_weights and loaded by name from a folder, as the worker does.

Measured, each as the median of --renders renders (seconds per image, PNG encode excluded):
  none          no LoRA ever loaded (the anchor)
  first_load    the first job naming LoRA A: load_lora_weights + set_adapters (once per worker)
  same          A again and again: the adapter's cost in the forward pass
  switch        A, B, A, B... both loaded: set_adapters each job
  after         no LoRA after LoRA jobs: disable_lora; pixels compared with `none`

    python bench/lora_bench.py --skeleton ../shared/models/sd15-skeleton [--device cuda]
    python bench/lora_bench.py --tiny --device cpu     # the tiny model, a smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.schema import JobSpec, new_job
from config.settings import Settings
from worker.render.device import DevicePlan
from worker.render.loras import Adapters, LoraLibrary
from worker.render.renderer import Renderer

TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


def main() -> None:
    args = parse_args()
    import torch

    pipe = build(args).to(args.device)
    plan = DevicePlan(args.device, "float16" if args.device == "cuda" else "float32", False, True)
    folder = Path(tempfile.mkdtemp(prefix="loras-"))
    for name, seed in (("lora_a", 1), ("lora_b", 2)):
        write_lora(pipe, folder, name, args.rank, seed)
    renderer = Renderer(pipe, plan, "sd15")
    renderer.adapters = Adapters(pipe, LoraLibrary([folder]), limit=8)
    size = 64 if args.tiny else 512
    steps = 3 if args.tiny else 30

    def job(*loras: str) -> JobSpec:
        refs = [{"name": name, "weight": 0.8} for name in loras]
        return new_job(
            "a lighthouse", Settings(), steps=steps, width=size, height=size, seed=7, loras=refs
        )

    def timed(spec: JobSpec) -> tuple[float, Any]:
        sync(args.device)
        start = time.perf_counter()
        result = renderer.render(spec)
        sync(args.device)
        return time.perf_counter() - start, result

    results: dict[str, Any] = {"env": env(args, torch)}
    timed(job())  # warm-up: kernels picked, allocator grown
    none = [timed(job()) for _ in range(args.renders)]
    results["none_s"] = median([t for t, _ in none])
    results["first_load_s"] = round(timed(job("lora_a"))[0], 4)
    results["same_s"] = median([timed(job("lora_a"))[0] for _ in range(args.renders)])
    timed(job("lora_b"))  # B's own first load, not counted
    switch = [timed(job("lora_b" if i % 2 else "lora_a"))[0] for i in range(args.renders * 2)]
    results["switch_s"] = median(switch)
    after = [timed(job()) for _ in range(args.renders)]
    results["after_s"] = median([t for t, _ in after])
    import numpy as np

    first = np.asarray(none[0][1].images[0], dtype=np.int16)
    again = np.asarray(after[0][1].images[0], dtype=np.int16)
    results["after_max_pixel_diff"] = int(np.abs(first - again).max())
    for key in ("first_load_s", "same_s", "switch_s", "after_s"):
        results[key.replace("_s", "_over_none_s")] = round(results[key] - results["none_s"], 4)
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


def build(args: argparse.Namespace) -> Any:
    if args.tiny:
        from worker.render.tiny import build_tiny_pipeline

        return build_tiny_pipeline(0, "sd15")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import sd15_random  # bench/ is no package

    return sd15_random.build(args.skeleton, args.device)


def write_lora(pipe: Any, folder: Path, name: str, rank: int, seed: int) -> None:
    """A random LoRA for this UNet, small enough that the picture stays finite."""
    import torch
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    pipe.unet.add_adapter(
        LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=False, target_modules=TARGETS),
        adapter_name=name,
    )
    with torch.no_grad():
        for param_name, param in pipe.unet.named_parameters():
            if f"lora_B.{name}" in param_name:
                param.mul_(0.01)
    weights = get_peft_model_state_dict(pipe.unet, adapter_name=name)
    type(pipe).save_lora_weights(
        folder, unet_lora_layers=weights, weight_name=f"{name}.safetensors"
    )
    pipe.unet.delete_adapters(name)


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def median(values: list[float]) -> float:
    return round(statistics.median(values), 4)


def env(args: argparse.Namespace, torch: Any) -> dict[str, Any]:
    import diffusers
    import peft

    gpu = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    return {
        "device": gpu,
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "peft": peft.__version__,
        "rank": args.rank,
        "renders": args.renders,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skeleton", type=Path, default=Path("../shared/models/sd15-skeleton"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="the tiny model: a smoke run")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--renders", type=int, default=5)
    parser.add_argument("--out", type=Path)
    return parser.parse_args()


if __name__ == "__main__":
    main()
