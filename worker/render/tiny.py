"""A tiny random-weight Stable Diffusion pipeline, written to disk in diffusers format.

Tests, CI and the offline demo load it through the same `from_pretrained` path as a
real model. Its pictures are noise. The CLIP tokenizer gets a vocabulary of single
byte-level characters and no merges, built here, so nothing is downloaded and a
prompt in any script tokenizes.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

_BOS, _EOS = "<|startoftext|>", "<|endoftext|>"
MARKER = "nightshift-tiny.json"


def _byte_chars() -> list[str]:
    """GPT-2/CLIP's byte-to-unicode table: one printable character for each of the 256 bytes."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def _byte_vocab() -> dict[str, int]:
    chars = _byte_chars()
    tokens = chars + [c + "</w>" for c in chars] + [_BOS, _EOS]
    return {tok: i for i, tok in enumerate(tokens)}


def _write_tokenizer_files(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(_byte_vocab()), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")


def build_tiny_pipeline(seed: int = 0):  # type: ignore[no-untyped-def]
    """Build the tiny pipeline in memory (random weights, fixed seed)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        PNDMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=2,  # legacy name: 2 heads of 32 (CPU SDPA crawls on tiny heads)
        norm_num_groups=16,
    )
    vae = AutoencoderKL(
        block_out_channels=(16, 32),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=16,
        sample_size=16,
    )
    with tempfile.TemporaryDirectory() as tmp:
        _write_tokenizer_files(Path(tmp))
        # from_pretrained reads vocab.json and merges.txt with every transformers version.
        tokenizer = CLIPTokenizer.from_pretrained(
            tmp,
            bos_token=_BOS,
            eos_token=_EOS,
            unk_token=_EOS,
            pad_token=_EOS,
            model_max_length=77,
        )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(_byte_vocab()),
            hidden_size=32,
            intermediate_size=64,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
            bos_token_id=len(_byte_vocab()) - 2,
            eos_token_id=len(_byte_vocab()) - 1,
            pad_token_id=len(_byte_vocab()) - 1,
        )
    )
    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def write_tiny_model(target: Path, seed: int = 0) -> Path:
    """Write the tiny pipeline to target (float32 weights plus an fp16 variant), atomically."""
    import torch

    target = target.expanduser().resolve()
    if (target / MARKER).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-", dir=target.parent))
    staging.chmod(0o755)
    pipe = build_tiny_pipeline(seed)
    pipe.save_pretrained(staging, safe_serialization=True)
    pipe.to(torch.float16).save_pretrained(staging, safe_serialization=True, variant="fp16")
    note = {"what": "random-weight Stable Diffusion for tests; its images are noise", "seed": seed}
    (staging / MARKER).write_text(json.dumps(note), encoding="utf-8")
    try:
        os.replace(staging, target)
    except OSError:  # another process won the race; its copy is just as good
        if not (target / MARKER).exists():
            raise
    logger.info("wrote tiny random-weight model to %s", target)
    return target
