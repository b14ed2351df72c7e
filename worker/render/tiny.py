"""Tiny random-weight pipelines of each family, written to disk in diffusers format.

Tests, CI and the offline demo load them through the same `from_pretrained` path as a real
model. Their pictures are noise. Each family module builds its own (`build_tiny`, from the
shared parts in worker/render/families/parts.py); this module writes one to a folder.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from config.errors import InvalidInput
from worker.render.families import DEFAULT, family

logger = logging.getLogger(__name__)

MARKER = "nightshift-tiny.json"


def build_tiny_pipeline(seed: int = 0, family_name: str = DEFAULT) -> Any:
    """Build a tiny pipeline of that family in memory (random weights, fixed seed)."""
    return family(family_name).build_tiny(seed)


def tiny_family(folder: Path) -> str | None:
    """The family of a tiny model already written to `folder`; None when there is none."""
    try:
        note = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return str(note.get("family", DEFAULT))


def write_tiny_model(target: Path, seed: int = 0, family_name: str = DEFAULT) -> Path:
    """Write the tiny pipeline to target (float32 weights plus an fp16 variant), atomically."""
    import torch

    target = target.expanduser().resolve()
    written = tiny_family(target)
    if written is not None:
        if written != family_name:
            reason = f"holds a tiny {written} model, not {family_name}"
            raise InvalidInput("dir", str(target), reason)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-", dir=target.parent))
    staging.chmod(0o755)
    pipe = build_tiny_pipeline(seed, family_name)
    pipe.save_pretrained(staging, safe_serialization=True)
    pipe.to(torch.float16).save_pretrained(staging, safe_serialization=True, variant="fp16")
    note = {
        "what": f"random-weight {family_name} pipeline for tests; its images are noise",
        "family": family_name,
        "seed": seed,
    }
    (staging / MARKER).write_text(json.dumps(note), encoding="utf-8")
    try:
        os.replace(staging, target)
    except OSError:  # another process won the race; its copy is just as good
        if tiny_family(target) is None:
            raise
    logger.info("wrote tiny random-weight %s model to %s", family_name, target)
    return target


def write_tiny_lora(
    folder: Path, name: str, family_name: str = DEFAULT, seed: int = 0, rank: int = 4
) -> Path:
    """Write a random LoRA for the tiny pipeline of that family, saved with diffusers' own
    `save_lora_weights` (the format `load_lora_weights` reads), as `<folder>/<name>.safetensors`.

    Its A and B matrices both start random (PEFT's init_lora_weights=False; a trained LoRA's B
    starts at zero), so applying it changes the picture visibly.
    """
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    pipe = build_tiny_pipeline(seed, family_name)
    pipe.unet.add_adapter(
        LoraConfig(
            r=rank,
            lora_alpha=rank,
            init_lora_weights=False,
            target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        )
    )
    folder = folder.expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    weights = get_peft_model_state_dict(pipe.unet)
    type(pipe).save_lora_weights(
        folder, unet_lora_layers=weights, weight_name=f"{name}.safetensors", safe_serialization=True
    )
    logger.info("wrote tiny random %s LoRA %s to %s", family_name, name, folder)
    return folder / f"{name}.safetensors"
