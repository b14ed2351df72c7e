"""Stable Diffusion 1.x: the family the worker was built for, and the default."""

from __future__ import annotations

from typing import Any

from worker.render.families import parts
from worker.render.families.base import (
    SD_VAE_RGB,
    Family,
    no_call_kwargs,
    no_conditioning,
    plain_decode,
)


def build_tiny(seed: int) -> Any:
    """A tiny SD 1.5 pipeline in memory: random weights, fixed seed, PNDM as SD 1.5 ships."""
    import torch
    from diffusers import PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        **parts.UNET_BLOCKS,
        cross_attention_dim=parts.TEXT_WIDTH,
        attention_head_dim=2,  # legacy name: 2 heads of 32 (CPU SDPA crawls on tiny heads)
    )
    vae = parts.vae()
    text_encoder = CLIPTextModel(parts.text_config())
    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return parts.sd_pipeline(unet, vae, text_encoder, scheduler)


FAMILY = Family(
    name="sd15",
    pipeline_class="StableDiffusionPipeline",
    img2img_class="StableDiffusionImg2ImgPipeline",
    inpaint_class="StableDiffusionInpaintPipeline",
    safety_checker=True,
    call_kwargs=no_call_kwargs,
    conditioning=no_conditioning,
    decode=plain_decode,
    build_tiny=build_tiny,
    latent_rgb=SD_VAE_RGB,
)
