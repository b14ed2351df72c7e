"""Live previews: a running pass's latents as a small picture, without the VAE.

Each family carries a fixed latent-to-RGB table (worker/render/families/base.py, ComfyUI's
"latent2rgb" fit): one matrix product per latent pixel gives a colour, so a preview costs no
download and no decode, whatever the model. The product runs where the latents are (the GPU
on cuda), on the one image asked for, and only its (h, w, 3) bytes, 1/64 of the picture's
pixels, move to the CPU; PIL scales them to the picture's shape (at most MAX_SIDE) and
encodes a small JPEG. It shows the noisy latents of the step, as A1111's "Approx cheap" does.
"""

from __future__ import annotations

import io
from typing import Any

from worker.render.families import Family

MAX_SIDE = 256  # longest side of a preview: a thumbnail, a few kB as JPEG
QUALITY = 70


def project(family: Family, latents: Any) -> Any:
    """(B, C, h, w) latents -> (B, h, w, 3) uint8 colours, on the latents' device.

    ValueError when the latents have another channel count than the family's table."""
    import torch

    channels = latents.shape[1]
    if channels != len(family.latent_rgb):
        raise ValueError(
            f"{family.name} previews need {len(family.latent_rgb)} latent channels, got {channels}"
        )
    with torch.inference_mode():
        # float32: a float16 product of 4 terms is fine, but clamp and rounding are cheaper
        # to get right once; the tensor is tiny either way.
        table = torch.tensor(family.latent_rgb, device=latents.device, dtype=torch.float32)
        bias = torch.tensor(family.latent_rgb_bias, device=latents.device, dtype=torch.float32)
        rgb = torch.einsum("bchw,cr->bhwr", latents.float(), table) + bias
        return ((rgb + 1) * 127.5).clamp(0, 255).round().to(torch.uint8)


def picture(family: Family, latents: Any, index: int, size: tuple[int, int]) -> Any:
    """Image `index` of the batch as a PIL RGB picture, its shape `size`'s (width, height)
    scaled to fit MAX_SIDE."""
    from PIL import Image

    pixels = project(family, latents[index : index + 1])[0].cpu().numpy()
    return Image.fromarray(pixels, "RGB").resize(fit(size), Image.Resampling.BILINEAR)


def fit(size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) scaled down to a longest side of MAX_SIDE (never up)."""
    width, height = size
    scale = min(1.0, MAX_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def encode(image: Any) -> bytes:
    """A preview as JPEG bytes (config/store/previews.py's MEDIA_TYPE)."""
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=QUALITY)
    return out.getvalue()
