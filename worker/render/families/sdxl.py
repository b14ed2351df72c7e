"""Stable Diffusion XL: two text encoders (a second prompt each), size conditioning, and a
VAE that overflows in float16.

- `prompt_2`/`negative_prompt_2` go to the second encoder; empty, it reads the first prompt.
  An empty negative prompt is encoded as zeros (the pipeline's force_zeros_for_empty_prompt),
  so a job with only a second negative prompt passes an empty first one to keep it.
- Size conditioning: original_size and target_size are the job's size (what diffusers
  assumes when none is given), passed explicitly and recorded in each image's metadata. A
  hires fix's second pass is conditioned on its own, larger size (as A1111 does).
- Decode: SDXL 1.0's VAE produces inf in float16; its config says so with `force_upcast`,
  and the decode then runs in float32, as diffusers' own pipeline does. VAEs trained with
  per-channel statistics carry `latents_mean`/`latents_std`, applied before decoding. The
  renderer's black/NaN check and its one safer retry come after, as for every family.
- No safety checker: SDXL pipelines have none (diffusers' invisible watermark, when that
  package is installed, is applied by the renderer like the pipeline would).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from config.schema import JobSpec
from worker.render.families import parts
from worker.render.families.base import Family, decode_in

# SDXL's add_time_ids: original size (2), crop top-left (2), target size (2).
TIME_IDS = 6
TIME_EMBED_DIM = 8  # the tiny model's addition_time_embed_dim
# Live previews: ComfyUI's fit for the SDXL VAE (comfy/latent_formats.py, class SDXL), with
# its bias; the tiny SDXL model has 4 latent channels too.
LATENT_RGB = (
    (0.3651, 0.4232, 0.4341),
    (-0.2533, -0.0042, 0.1068),
    (0.1076, 0.1111, -0.0362),
    (-0.3165, -0.2492, -0.2188),
)
LATENT_RGB_BIAS = (0.1084, -0.0175, -0.0011)


def call_kwargs(spec: JobSpec, group: Sequence[JobSpec] | None = None) -> dict[str, Any]:
    jobs = list(group) if group is not None else [spec]
    size = (spec.height, spec.width)  # a group shares its size (worker/jobs/grouping.py)
    seconds = [job.prompt_2 or job.prompt for job in jobs]
    negatives = [job.negative_prompt for job in jobs]
    negatives_2 = [job.negative_prompt_2 or job.negative_prompt for job in jobs]
    kwargs: dict[str, Any] = {"original_size": size, "target_size": size}
    if group is None:
        kwargs["prompt_2"] = spec.prompt_2 or None
    else:
        kwargs["prompt_2"] = seconds
    if not any(negatives_2):
        kwargs.update(negative_prompt=None, negative_prompt_2=None)  # zeros, as SDXL expects
    elif group is None:
        kwargs.update(negative_prompt=negatives[0], negative_prompt_2=negatives_2[0])
    else:
        kwargs.update(negative_prompt=negatives, negative_prompt_2=negatives_2)
    return kwargs


def conditioning(spec: JobSpec) -> dict[str, Any]:
    size = [spec.height, spec.width]
    return {"original_size": size, "crops_coords_top_left": [0, 0], "target_size": size}


def needs_upcast(vae_dtype: Any, force_upcast: bool | None) -> bool:
    """Decode in float32 when the VAE is float16 and its config forbids float16 decoding.

    bfloat16 keeps float32's range, so it never overflows and is left alone (as diffusers does).
    """
    return bool(force_upcast) and str(vae_dtype) == "torch.float16"


def decode(vae: Any, latents: Any, float32: bool) -> Any:
    import torch

    upcast = float32 or needs_upcast(vae.dtype, getattr(vae.config, "force_upcast", False))
    return decode_in(vae, latents, torch.float32 if upcast else vae.dtype, mean_std=True)


def build_tiny(seed: int) -> Any:
    """A tiny SDXL pipeline, shaped like diffusers' own SDXL test components."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    width = parts.TEXT_WIDTH
    unet = UNet2DConditionModel(
        **parts.UNET_BLOCKS,
        cross_attention_dim=2 * width,  # both encoders' hidden states, side by side
        attention_head_dim=(1, 2),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=TIME_EMBED_DIM,
        # The time ids' embeddings plus the second encoder's pooled projection.
        projection_class_embeddings_input_dim=TIME_IDS * TIME_EMBED_DIM + width,
    )
    vae = parts.vae(scaling_factor=0.13025, force_upcast=True)
    text_encoder = CLIPTextModel(parts.text_config(hidden_act="gelu", projection_dim=width))
    text_encoder_2 = CLIPTextModelWithProjection(
        parts.text_config(hidden_act="gelu", projection_dim=width)
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
    )
    return StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=parts.tokenizer(),
        tokenizer_2=parts.tokenizer(),
        unet=unet,
        scheduler=scheduler,
        force_zeros_for_empty_prompt=True,
        add_watermarker=False,
    )


FAMILY = Family(
    name="sdxl",
    pipeline_class="StableDiffusionXLPipeline",
    img2img_class="StableDiffusionXLImg2ImgPipeline",
    inpaint_class="StableDiffusionXLInpaintPipeline",
    safety_checker=False,
    call_kwargs=call_kwargs,
    conditioning=conditioning,
    decode=decode,
    build_tiny=build_tiny,
    latent_rgb=LATENT_RGB,
    latent_rgb_bias=LATENT_RGB_BIAS,
)
