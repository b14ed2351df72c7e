"""Tiny random-weight parts the families' `build_tiny` share: tokenizer, text encoder, VAE.

The CLIP tokenizer gets a vocabulary of single byte-level characters and no merges, built
here, so nothing is downloaded and a prompt in any script tokenizes; SDXL's two tokenizers
are two copies of it. Sizes are the smallest that keep CPU attention quick (heads of 32).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
TEXT_WIDTH = 32  # hidden size of each tiny text encoder
UNET_BLOCKS = dict(
    block_out_channels=(32, 64),
    layers_per_block=1,
    sample_size=8,
    in_channels=4,
    out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    norm_num_groups=16,
)


def byte_chars() -> list[str]:
    """GPT-2/CLIP's byte-to-unicode table: one printable character for each of the 256 bytes."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def byte_vocab() -> dict[str, int]:
    chars = byte_chars()
    tokens = chars + [c + "</w>" for c in chars] + [BOS, EOS]
    return {tok: i for i, tok in enumerate(tokens)}


def write_tokenizer_files(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(byte_vocab()), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")


def tokenizer() -> Any:
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        write_tokenizer_files(Path(tmp))
        # from_pretrained reads vocab.json and merges.txt with every transformers version.
        return CLIPTokenizer.from_pretrained(
            tmp, bos_token=BOS, eos_token=EOS, unk_token=EOS, pad_token=EOS, model_max_length=77
        )


def text_config(**extra: Any) -> Any:
    from transformers import CLIPTextConfig

    size = len(byte_vocab())
    return CLIPTextConfig(
        vocab_size=size,
        hidden_size=TEXT_WIDTH,
        intermediate_size=64,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=77,
        bos_token_id=size - 2,
        eos_token_id=size - 1,
        pad_token_id=size - 1,
        **extra,
    )


def vae(**extra: Any) -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(16, 32),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=16,
        sample_size=16,
        **extra,
    )


def sd_pipeline(unet: Any, vae: Any, text_encoder: Any, scheduler: Any) -> Any:
    """An SD 1.x/2.x pipeline of tiny parts: one byte-level tokenizer, no safety checker."""
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer(),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
