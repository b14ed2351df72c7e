"""Write an SDXL-base-shaped pipeline with random weights, built from the skeleton's configs.

The skeleton (../shared/models/sdxl-skeleton) holds SDXL base 1.0's real configs and both
CLIP tokenizers, no weights: the pipeline written here has exactly SDXL's compute (a
2.6 B-parameter UNet, two text encoders, the VAE with `force_upcast`), so timings are real
even though its pictures are noise. Weights are drawn on the target device (fast on a GPU)
and saved as an fp16 safetensors variant, the way the worker loads real SDXL.

    python bench/sdxl_random.py SKELETON OUT_DIR [--device cuda]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def build(skeleton: Path, device: str, dtype: str = "float16"):  # type: ignore[no-untyped-def]
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline
    from diffusers import UNet2DConditionModel as UNet
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTextModelWithProjection,
        CLIPTokenizer,
    )

    torch.manual_seed(0)
    with torch.device(device):
        unet = UNet.from_config(UNet.load_config(skeleton / "unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(skeleton / "vae"))
        text = CLIPTextModel(CLIPTextConfig.from_pretrained(skeleton / "text_encoder"))
        text_2 = CLIPTextModelWithProjection(
            CLIPTextConfig.from_pretrained(skeleton / "text_encoder_2")
        )
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text,
        text_encoder_2=text_2,
        tokenizer=CLIPTokenizer.from_pretrained(skeleton / "tokenizer"),
        tokenizer_2=CLIPTokenizer.from_pretrained(skeleton / "tokenizer_2"),
        unet=unet,
        scheduler=EulerDiscreteScheduler.from_pretrained(skeleton / "scheduler"),
        force_zeros_for_empty_prompt=True,
        add_watermarker=False,
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
