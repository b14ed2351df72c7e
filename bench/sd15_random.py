"""Write an SD 1.5-shaped pipeline with random weights, built from the skeleton's configs.

The skeleton (../shared/models/sd15-skeleton) holds SD 1.5's real configs and CLIP
tokenizer, no weights: the pipeline written here has exactly SD 1.5's compute, so
timings are real even though its pictures are noise. Weights are drawn on the target
device (fast on a GPU) and saved as an fp16 safetensors variant, the way the worker
loads real SD 1.5.

    python bench/sd15_random.py SKELETON OUT_DIR [--device cuda]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def build(skeleton: Path, device: str, dtype: str = "float16"):  # type: ignore[no-untyped-def]
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline
    from diffusers import UNet2DConditionModel as UNet
    from transformers import CLIPImageProcessor, CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    with torch.device(device):
        unet = UNet.from_config(UNet.load_config(skeleton / "unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(skeleton / "vae"))
        text = CLIPTextModel(CLIPTextConfig.from_pretrained(skeleton / "text_encoder"))
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text,
        tokenizer=CLIPTokenizer.from_pretrained(skeleton / "tokenizer"),
        unet=unet,
        scheduler=PNDMScheduler.from_pretrained(skeleton / "scheduler"),
        safety_checker=None,
        feature_extractor=CLIPImageProcessor.from_pretrained(skeleton / "feature_extractor"),
        requires_safety_checker=False,
    )
    return pipe.to(getattr(torch, dtype))


def write(skeleton: Path, out: Path, device: str) -> Path:
    if (out / "model_index.json").exists():
        return out
    pipe = build(skeleton, device)
    pipe.save_pretrained(out, variant="fp16", safe_serialization=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("skeleton", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    start = time.perf_counter()
    write(args.skeleton, args.out, args.device)
    print(f"wrote {args.out} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
