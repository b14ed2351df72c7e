"""Stable Diffusion 2.x: SD 1.5's pipeline class with an OpenCLIP text encoder, per-block
attention heads, linear projections and (768-pixel models) v-prediction.

Nothing differs for the renderer: the scheduler reads `prediction_type` from its own config
(any scheduler a job picks is built from that config, so it keeps it). Stability's 2.x
repositories ship no safety checker.
"""

from __future__ import annotations

from typing import Any

from config.families import SD2_TEXT_WIDTH
from worker.render.families import parts
from worker.render.families.base import (
    SD_VAE_RGB,
    Family,
    no_call_kwargs,
    no_conditioning,
    plain_decode,
)


def build_tiny(seed: int) -> Any:
    """A tiny SD 2.x pipeline: per-block heads, linear projections, a v-prediction DDIM."""
    import torch
    from diffusers import DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        **parts.UNET_BLOCKS,
        cross_attention_dim=parts.TEXT_WIDTH,
        # Per block, as SD 2.x's config lists them (SD 1.5 has one number): 2 heads of 32
        # where there is attention (the first block has none).
        attention_head_dim=(1, 2),
        use_linear_projection=True,
    )
    vae = parts.vae()
    # config/families.py tells 2.x from 1.x by the encoder's width, OpenCLIP-H's 1024: the
    # tiny encoder is 32 wide, so it says 1024 in projection_dim, which CLIPTextModel ignores.
    text_encoder = CLIPTextModel(
        parts.text_config(hidden_act="gelu", projection_dim=SD2_TEXT_WIDTH)
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type="v_prediction",
    )
    return parts.sd_pipeline(unet, vae, text_encoder, scheduler)


FAMILY = Family(
    name="sd2",
    pipeline_class="StableDiffusionPipeline",
    img2img_class="StableDiffusionImg2ImgPipeline",
    inpaint_class="StableDiffusionInpaintPipeline",
    safety_checker=False,
    call_kwargs=no_call_kwargs,
    conditioning=no_conditioning,
    decode=plain_decode,
    build_tiny=build_tiny,
    latent_rgb=SD_VAE_RGB,
)
