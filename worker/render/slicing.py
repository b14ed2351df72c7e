"""Attention slicing that gives back the processors it found, fused ones included.

diffusers (0.42) turns slicing off by putting a plain AttnProcessor2_0 in every attention
module the pipeline's `set_attention_slice` reaches: called before each pass, that undid the
fast path's fused QKV processors before torch.compile traced the first job. The renderer
switches only on a change, through these helpers, and back to what was there before.
"""

from __future__ import annotations

from typing import Any

# Attention processors by module, per component: {"unet": {"down_blocks...processor": ...}}.
Saved = dict[str, dict[str, Any]]


def sliceable(pipe: Any) -> dict[str, Any]:
    """The components slicing reaches: those with `set_attention_slice` (the UNet; not
    AutoencoderKL, whose processors `enable_attention_slicing` leaves alone)."""
    return {
        name: module
        for name, module in pipe.components.items()
        if hasattr(module, "set_attention_slice") and hasattr(module, "attn_processors")
    }


def is_sliced(pipe: Any) -> bool:
    """Read from the modules, not remembered: loading may have sliced them (a plan with
    slicing on), and fusing QKV after that unslices them."""
    from diffusers.models.attention_processor import SlicedAttnAddedKVProcessor, SlicedAttnProcessor

    sliced = (SlicedAttnProcessor, SlicedAttnAddedKVProcessor)
    return any(
        isinstance(processor, sliced)
        for module in sliceable(pipe).values()
        for processor in module.attn_processors.values()
    )


def slice_attention(pipe: Any) -> Saved:
    """Turn slicing on; returns the processors it replaced, for `restore`."""
    saved = {name: module.attn_processors for name, module in sliceable(pipe).items()}
    pipe.enable_attention_slicing()
    return saved


def restore(pipe: Any, saved: Saved | None) -> None:
    """Turn slicing off: back to `saved`, or diffusers' default when slicing came from loading
    (the processors from before it were never seen)."""
    if saved is None:
        pipe.disable_attention_slicing()
        return
    for name, processors in saved.items():
        # A copy: set_attn_processor pops each entry from the dict it is given.
        getattr(pipe, name).set_attn_processor(dict(processors))
