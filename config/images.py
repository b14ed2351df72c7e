"""Input images (img2img's init image, an inpainting mask): checked, then normalised to PNG.

Both sides call `normalise`: the producer on the bytes of a local file (or an API upload),
before anything is stored or enqueued, and the worker again on the bytes it fetches from the
input store, since anyone who can reach Redis can write there. What is checked, in order, so
that nothing expensive happens to bytes that fail a cheap check:

1. the byte count (max_input_bytes), before Pillow sees anything;
2. the format, from the header only: PNG, JPEG or WebP, nothing else Pillow can open;
3. the pixel count from the header (max_input_pixels, well under Pillow's own
   decompression-bomb limit, which is also enforced), before the image is decoded;
4. the decode itself (a truncated or damaged file is refused, not half-read).

Then normalised, so the stored bytes and their hash depend on the picture only: EXIF
orientation applied (a phone's portrait photo stays upright), the first frame of an animated
file, and alpha flattened: an init image onto white (what a viewer shows), a mask onto black
(transparent = keep). A mask is a greyscale picture, white where the job repaints.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import Any, Literal

from config.errors import InvalidJob

FORMATS = ("PNG", "JPEG", "WEBP")
InputKind = Literal["image", "mask"]


@dataclass(frozen=True)
class InputImage:
    """A checked input: normalised PNG bytes, their sha256 (the input's id), and its size."""

    data: bytes
    id: str
    width: int
    height: int


def normalise(
    raw: bytes, field: str, kind: InputKind, *, max_bytes: int, max_pixels: int
) -> InputImage:
    """Check `raw` as the input named `field`; raise InvalidJob naming it, or return it
    normalised (see the module docstring)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if len(raw) > max_bytes:
        raise InvalidJob(field, f"{len(raw)} bytes", f"larger than {max_bytes} bytes")
    try:
        with warnings.catch_warnings():
            # Past Pillow's limit it warns, past twice the limit it raises: both refuse here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise InvalidJob(field, "image", f"refused as a decompression bomb: {exc}") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise InvalidJob(field, _head(raw), "is not a PNG, JPEG or WebP image") from None
    if image.format not in FORMATS:
        raise InvalidJob(field, image.format, "must be a PNG, JPEG or WebP image")
    width, height = image.size
    if width * height > max_pixels:
        size = f"{width}x{height}"
        raise InvalidJob(field, size, f"has more than {max_pixels} pixels (max_input_pixels)")
    try:
        image.seek(0)  # an animated PNG or WebP: its first frame
        image.load()
        upright: Image.Image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError) as exc:  # truncated, damaged, bad EXIF
        raise InvalidJob(field, _head(raw), f"cannot be decoded: {exc}") from None
    flat = _flatten(upright, kind)
    out = io.BytesIO()
    flat.save(out, format="PNG")
    data = out.getvalue()
    return InputImage(data, hashlib.sha256(data).hexdigest(), flat.width, flat.height)


def check_mask_size(image: InputImage, mask: InputImage) -> None:
    """A mask must cover its image exactly (after both were turned upright)."""
    if (mask.width, mask.height) != (image.width, image.height):
        size = f"{mask.width}x{mask.height}"
        reason = f"must be the init image's size, {image.width}x{image.height}"
        raise InvalidJob("mask", size, reason)


def open_png(data: bytes) -> Any:
    """A normalised input's bytes as a PIL image (RGB for an image, L for a mask)."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _flatten(image: Any, kind: InputKind) -> Any:
    from PIL import Image

    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        background = (255, 255, 255, 255) if kind == "image" else (0, 0, 0, 255)
        base = Image.new("RGBA", rgba.size, background)
        image = Image.alpha_composite(base, rgba)
    return image.convert("RGB" if kind == "image" else "L")


def _head(raw: bytes) -> str:
    return f"{len(raw)} bytes starting {raw[:8]!r}"
