"""AUTOMATIC1111's `parameters` text (its "infotext"), written into every PNG and read back from
any A1111, Forge or Civitai PNG. Both directions live here, so what is written is what is read.

The format is A1111's (modules/processing.py create_infotext writes it, modules/infotext_utils.py
parse_generation_parameters reads it): the prompt, its LoRA tags kept in it; `Negative prompt:`
and the negative prompt when there is one; then one line of `Key: value` pairs joined by ", ",
a value holding ',', ':' or a newline quoted as JSON. Other tools (sd-parsers, Civitai, image
browsers) read it the same way, so Nightshift writes nothing they would not expect.

Pure text: no Pillow (worker/jobs/outputs.py writes the chunk, producer/replay.py reads it).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from config.errors import InvalidInput, InvalidJob
from config.fields import SchedulerName, Upscaler
from config.prompt_tags import find_lora_tags
from config.schema import Hires, JobSpec, LoraRef

__all__ = [
    "SAMPLER_LABELS",
    "parameters",
    "parse_parameters",
    "quote",
    "split_lora_tags",
]

# Nightshift's scheduler -> the sampler label A1111 writes for it (worker/render/samplers.py
# labels the schedulers it builds with these).
SAMPLER_LABELS: dict[SchedulerName, str] = {
    "pndm": "PLMS",
    "ddim": "DDIM",
    "euler": "Euler",
    "euler_a": "Euler a",
    "dpmpp_2m": "DPM++ 2M",
    "lms": "LMS",
}
# Read back: every label above, and the other names A1111 gives the same samplers.
SCHEDULER_OF_LABEL: dict[str, SchedulerName] = {
    label: name for name, label in SAMPLER_LABELS.items()
} | {"PNDM": "pndm", "DPM++ 2M Karras": "dpmpp_2m"}
# A1111 writes a sampler's Karras schedule into its name (before v1.9) or as `Schedule type`;
# Nightshift's schedulers keep the model's own sigmas: the same solver, not the same steps.
KARRAS_NOTE = "Sampler {label!r}: replayed as {name} without Karras sigmas (Nightshift has none)"
UPSCALER_LABELS: dict[Upscaler, str] = {"lanczos": "Lanczos", "latent": "Latent"}

# A1111's own patterns (modules/infotext_utils.py): one `Key: value` pair, and a WxH size.
RE_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
RE_IMAGESIZE = re.compile(r"^(\d+)x(\d+)$")
NEGATIVE = "Negative prompt:"
# Keys parse_parameters returns beside JobSpec's fields: what callers may show or match on,
# never a field of a job.
META_KEYS = frozenset(
    {"sampler", "model_hash", "lora_hashes", "init_image_hash", "mask_hash", "job_id"}
    | {"ignored", "notes"}
)
HIRES_KEYS = ("Hires upscale", "Hires steps", "Hires upscaler", "Hires resize")
SHORT_HASH = 10  # hex of an input id written as A1111 writes its init image hash


# --- writing -------------------------------------------------------------------------------


def parameters(
    spec: JobSpec,
    seed: int,
    sampler: str,
    model: str,
    model_hash: str | None = None,
    lora_hashes: dict[str, str] | None = None,
) -> str:
    """The `parameters` text of one image of `spec`, rendered with `seed` by `sampler` (its A1111
    label) with `model` (a catalog name; a path is written as its last part).

    `Model hash` is A1111's short hash (worker/render/model_hash.py: the first 10 hex of the
    sha256 of the UNet weights, a diffusers folder's stand-in for A1111's checkpoint file),
    before `Model` as A1111 writes them; `lora_hashes` maps the job's LoRAs to theirs (`Lora
    hashes`, as A1111's LoRA extension writes it). `Size` is the first pass's size, as A1111
    writes it with hires.
    """
    prompt = " ".join([spec.prompt, *(lora_tag(lora) for lora in spec.loras)])
    negative = f"\n{NEGATIVE} {spec.negative_prompt}" if spec.negative_prompt else ""
    hires = spec.hires
    pairs: list[tuple[str, object]] = [
        ("Steps", spec.steps),
        ("Sampler", sampler),
        ("CFG scale", number(spec.guidance)),
        ("Seed", seed),
        ("Size", f"{spec.width}x{spec.height}"),
        ("Model hash", model_hash),
        ("Model", Path(model).name if os.sep in model else model),
        ("Denoising strength", _denoising(spec)),
        ("Init image hash", spec.init_image[:SHORT_HASH] if spec.init_image else None),
        ("Mask hash", spec.mask[:SHORT_HASH] if spec.mask else None),
        ("Hires upscale", number(hires.scale) if hires else None),
        ("Hires steps", hires.steps if hires else None),
        ("Hires upscaler", UPSCALER_LABELS[hires.upscaler] if hires else None),
        ("Lora hashes", _lora_hashes(spec.loras, lora_hashes or {})),
        ("Job id", spec.id),
    ]
    line = ", ".join(f"{key}: {quote(value)}" for key, value in pairs if value is not None)
    return f"{prompt}{negative}\n{line}".strip()


def lora_tag(lora: LoraRef) -> str:
    return f"<lora:{lora.name}:{number(lora.weight)}>"


def quote(value: object) -> str:
    """A1111's quote(): a value holding ',', ':' or a newline as a JSON string, else as is."""
    text = str(value)
    if "," not in text and "\n" not in text and ":" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def number(value: float) -> str:
    """A float as people write it (7.5, 7, 0.6), yet exact: 0.123456789 is not cut to 0.123457."""
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def _denoising(spec: JobSpec) -> float | None:
    if spec.hires is not None:
        return spec.hires.strength  # A1111's txt2img writes the hires pass's strength here
    return None if spec.mode == "txt2img" else spec.denoise


def _lora_hashes(loras: list[LoraRef], hashes: dict[str, str]) -> str | None:
    known = [f"{lora.name}: {hashes[lora.name]}" for lora in loras if hashes.get(lora.name)]
    return ", ".join(known) or None


# --- reading -------------------------------------------------------------------------------


def split_lora_tags(prompt: str) -> tuple[str, list[LoraRef]]:
    """The prompt without its `<lora:NAME:WEIGHT>` / `<lora:NAME>` tags, and the LoRAs they name.

    A tag with a name or weight no job may have raises InvalidJob naming the field.
    """
    text, tags = find_lora_tags(prompt)
    loras = []
    for index, (name, weight) in enumerate(tags):
        try:
            loras.append(LoraRef(name=name, weight=weight))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = f"loras.{index}.{'.'.join(str(p) for p in err.get('loc', ()))}"
            reason = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            raise InvalidJob(field, err.get("input"), reason) from None
    return text, loras


def split_text(text: str) -> tuple[str, str, dict[str, str]]:
    """A1111's parse_generation_parameters, its first half: (prompt, negative prompt, pairs).

    The last line holds the pairs when A1111's pattern finds at least three in it; a line that
    starts with `Negative prompt:` begins the negative prompt, which runs to the pairs. Quoted
    values are unquoted; a later key wins over an earlier one, as in A1111's dict.
    """
    *lines, last = text.strip().split("\n")
    if len(RE_PARAM.findall(last)) < 3:
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for raw in lines:
        line = raw.strip()
        if line.startswith(NEGATIVE):
            in_negative = True
            line = line[len(NEGATIVE) :].strip()
        (negative if in_negative else prompt).append(line)
    pairs = {key: _unquote(value) for key, value in RE_PARAM.findall(last)}
    return "\n".join(prompt), "\n".join(negative), pairs


def _unquote(value: str) -> str:
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return value
    try:
        text = json.loads(value)
    except ValueError:
        return value
    return text if isinstance(text, str) else value


def parse_parameters(text: str) -> dict[str, Any]:
    """A1111's `parameters` text as JobSpec's field names, plus META_KEYS.

    Fields, each only when the text has it: prompt (its LoRA tags taken out into `loras`),
    negative_prompt, loras, steps, scheduler, guidance, seed, width, height, model (the `Model:`
    value, as written: a name in some A1111's folder, not yet a catalog name), strength (an
    img2img's `Denoising strength`), hires (from `Hires upscale`, `Hires steps`, `Hires
    upscaler` and, with them, `Denoising strength`).

    Beside them: sampler (the label as written), model_hash, lora_hashes (name -> hash),
    init_image_hash, mask_hash and job_id (Nightshift's own keys); `ignored`, every pair
    nothing reads (key -> value as written); `notes`, a sentence for each value read as
    something near it rather than it (an unknown sampler, an upscaler Nightshift lacks).
    A value that cannot be what its key says (`Steps: many`) raises InvalidInput naming it.
    """
    prompt, negative, pairs = split_text(text)
    prompt, loras = split_lora_tags(prompt)
    out: dict[str, Any] = {"prompt": prompt, "negative_prompt": negative, "loras": loras}
    notes: list[str] = []
    take = pairs.pop
    if (steps := take("Steps", None)) is not None:
        out["steps"] = _int("Steps", steps)
    if (label := take("Sampler", None)) is not None:
        out["sampler"] = label
        out |= _scheduler(label, take("Schedule type", None), notes)
    if (cfg := take("CFG scale", None)) is not None:
        out["guidance"] = _float("CFG scale", cfg)
    if (seed := take("Seed", None)) is not None:
        out["seed"] = _int("Seed", seed)
    if (size := RE_IMAGESIZE.match(pairs.get("Size", ""))) is not None:
        del pairs["Size"]
        out["width"], out["height"] = int(size.group(1)), int(size.group(2))
    for key, field in (
        ("Model", "model"),
        ("Model hash", "model_hash"),
        ("Init image hash", "init_image_hash"),
        ("Mask hash", "mask_hash"),
        ("Job id", "job_id"),
    ):
        if (value := take(key, None)) is not None:
            out[field] = value
    if (hashes := take("Lora hashes", None)) is not None:
        out["lora_hashes"] = _hash_list(hashes)
    out |= _strength_and_hires(pairs, notes)
    out["ignored"] = pairs
    out["notes"] = notes
    return out


def job_fields(parsed: dict[str, Any]) -> dict[str, Any]:
    """parse_parameters' result without META_KEYS: what a job may be given."""
    return {k: v for k, v in parsed.items() if k not in META_KEYS}


def _scheduler(label: str, schedule: str | None, notes: list[str]) -> dict[str, Any]:
    name = SCHEDULER_OF_LABEL.get(label.strip())
    if name is None:
        known = ", ".join(sorted(SCHEDULER_OF_LABEL))
        notes.append(
            f"Sampler {label!r}: Nightshift has no such scheduler (it has {known}); "
            "the model's default is used unless --scheduler says otherwise"
        )
        return {}
    karras = "Karras" in label or (schedule or "").strip().lower() == "karras"
    if karras:
        notes.append(KARRAS_NOTE.format(label=label, name=name))
    elif schedule is not None and schedule.strip() not in ("", "Automatic"):
        notes.append(f"Schedule type {schedule!r}: not replayed (the model's own sigmas are)")
    return {"scheduler": name}


def _strength_and_hires(pairs: dict[str, str], notes: list[str]) -> dict[str, Any]:
    """`Denoising strength` is the hires pass's when the text has one (A1111's txt2img writes it
    only then), else an img2img's strength."""
    denoise = pairs.pop("Denoising strength", None)
    strength = None if denoise is None else _float("Denoising strength", denoise)
    if not any(key in pairs for key in HIRES_KEYS):
        return {} if strength is None else {"strength": strength}
    upscale = pairs.pop("Hires upscale", None)
    if upscale is None:
        notes.append("a hires pass given by `Hires resize` (a size, not a scale) is not replayed")
        return {}
    hires: dict[str, Any] = {"scale": _float("Hires upscale", upscale)}
    steps = pairs.pop("Hires steps", None)
    if steps is not None and _int("Hires steps", steps) != 0:  # 0: A1111's "as many as the job"
        hires["steps"] = _int("Hires steps", steps)
    if strength is not None:
        hires["strength"] = strength
    if (upscaler := pairs.pop("Hires upscaler", None)) is not None:
        hires["upscaler"] = _upscaler(upscaler, notes)
    try:
        return {"hires": Hires.model_validate(hires)}
    except ValidationError as exc:
        err = exc.errors()[0]
        reason = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        notes.append(f"the hires pass is not replayed: {'.'.join(map(str, err['loc']))} {reason}")
        return {}


def _upscaler(label: str, notes: list[str]) -> Upscaler:
    # A1111's latent upscalers are all `Latent` or `Latent (bicubic antialiased)` and the like;
    # every other one (ESRGAN, SwinIR, 4x-UltraSharp...) is a model Nightshift does not run.
    if label.strip().lower().startswith("latent"):
        return "latent"
    if label.strip().lower() != "lanczos":
        notes.append(f"Hires upscaler {label!r}: replayed with Lanczos (Nightshift has no other)")
    return "lanczos"


def _hash_list(text: str) -> dict[str, str]:
    """`name: hash, name2: hash` (A1111 takes ',' and ':' out of the names it writes here)."""
    hashes = {}
    for item in text.split(","):
        name, sep, digest = item.rpartition(":")
        if sep and name.strip():
            hashes[name.strip()] = digest.strip()
    return hashes


def _int(key: str, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise InvalidInput(key, text, "must be a whole number") from None


def _float(key: str, text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise InvalidInput(key, text, "must be a number") from None
