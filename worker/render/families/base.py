"""What a model family tells the renderer, and the latent decode the families share.

A family is data plus a few functions (`Family`); each family module builds one. torch and
diffusers are imported inside functions only: the worker's parent checks catalogs against
the families without loading either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from config.schema import JobSpec

# The extra keyword arguments of the pipeline call for one pass: the job (a grouped pass:
# the job behind each image, in order) -> kwargs beside prompt, size, steps and generators.
CallKwargs = Callable[[JobSpec, Sequence[JobSpec] | None], dict[str, Any]]
# What a pass was conditioned on beyond the prompt, written into each image's metadata.
Conditioning = Callable[[JobSpec], dict[str, Any]]
# (vae, latents, float32 asked for by the safer retry) -> decoded pixels in [-1, 1].
Decode = Callable[[Any, Any, bool], Any]
# A latent channel's contribution to R, G and B (one row per channel), for live previews
# (worker/render/preview.py): a linear fit of the VAE's decode, no model needed.
LatentRgb = tuple[tuple[float, float, float], ...]


@dataclass(frozen=True)
class Family:
    """One Stable Diffusion family as the renderer sees it."""

    name: str  # the catalog's family name (config/models.py): sd15, sd2, sdxl
    pipeline_class: str  # the diffusers class a folder's model_index.json names
    # The classes the renderer derives from the loaded pipeline with diffusers' from_pipe
    # (the same weights): img2img, and inpainting (an ordinary 4-channel UNet is enough:
    # diffusers' inpaint pipelines then blend the init image's latents outside the mask).
    img2img_class: str
    inpaint_class: str
    # Whether its published pipelines carry diffusers' safety checker.
    safety_checker: bool
    call_kwargs: CallKwargs
    conditioning: Conditioning
    decode: Decode
    build_tiny: Callable[[int], Any]  # seed -> a tiny random-weight pipeline, in memory
    # Live previews: latents (as the UNet sees them, scaled) @ latent_rgb + latent_rgb_bias
    # approximates the decoded picture in [-1, 1].
    latent_rgb: LatentRgb
    latent_rgb_bias: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def class_for(self, mode: str) -> str:
        """The diffusers class that renders a job of this mode (JobSpec.mode)."""
        classes = {
            "txt2img": self.pipeline_class,
            "img2img": self.img2img_class,
            "inpaint": self.inpaint_class,
        }
        return classes[mode]


# ComfyUI's fit for the SD 1.x VAE (comfy/latent_formats.py, class SD15; A1111's "Approximate
# cheap" preview is the same idea). SD 2.x shares that VAE, and so do the tiny test models'
# 4 channels (random weights: any 4-channel table serves them).
SD_VAE_RGB: LatentRgb = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)


def no_call_kwargs(spec: JobSpec, group: Sequence[JobSpec] | None = None) -> dict[str, Any]:
    return {}


def no_conditioning(spec: JobSpec) -> dict[str, Any]:
    return {}


def unscale(vae: Any, latents: Any, *, mean_std: bool) -> Any:
    """Latents as the VAE expects them: divided by its scaling factor, and, where the VAE
    config carries per-channel statistics (and the family uses them), de-normalised."""
    import torch

    config = vae.config
    mean = getattr(config, "latents_mean", None) if mean_std else None
    std = getattr(config, "latents_std", None) if mean_std else None
    if mean is None or std is None:
        return latents / config.scaling_factor
    channels = latents.shape[1]
    mean_t = torch.tensor(mean).view(1, channels, 1, 1).to(latents.device, latents.dtype)
    std_t = torch.tensor(std).view(1, channels, 1, 1).to(latents.device, latents.dtype)
    return latents * std_t / config.scaling_factor + mean_t


def decode_in(vae: Any, latents: Any, dtype: Any, *, mean_std: bool) -> Any:
    """Decode in `dtype`, moving the VAE there for the call only."""
    import torch

    original = vae.dtype
    try:
        if dtype != original:
            vae.to(dtype)
        with torch.inference_mode():
            scaled = unscale(vae, latents.to(dtype), mean_std=mean_std)
            return vae.decode(scaled, return_dict=False)[0]
    finally:
        if dtype != original:
            vae.to(original)


def plain_decode(vae: Any, latents: Any, float32: bool) -> Any:
    """SD 1.5 and 2.x: the VAE's own dtype (float32 on the safer retry), scaling factor only.

    Their VAE configs predate `force_upcast` (loading fills in its default, True), and their
    pipelines never read it: neither do we.
    """
    import torch

    return decode_in(vae, latents, torch.float32 if float32 else vae.dtype, mean_std=False)
