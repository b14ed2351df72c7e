"""AUTOMATIC1111's API as Nightshift jobs: its request fields mapped onto Client.submit's, and
its answers (txt2img and img2img, progress, sd-models, samplers) built from Nightshift's
records. producer/api/routes/sdapi.py makes the calls; this module holds no Redis and no route.

The shapes are A1111's modules/api/models.py (StableDiffusionTxt2ImgProcessingAPI,
TextToImageResponse, ProgressResponse, SDModelItem, SamplerItem) and its Processed.js() for
`info`. Its clients send every field with a default whether they mean it or not (webuiapi sends
`restore_faces: false`, `eta: 1.0`, `hr_resize_x: 0`...), so a field Nightshift has no use for
is ignored, as A1111 ignores one it does not know; one that would change the picture, set away
from its "off" value, leaves a sentence in the answer's `info.notes`.

A field left out takes the model's catalog default, then the settings', as a Nightshift job
does (not A1111's fixed 512x512 and 50 steps). An empty negative prompt counts as left out:
every A1111 client sends "" when the user gave none, and the catalog may hold a better one.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from config.errors import InvalidJob
from config.fields import SchedulerName, Upscaler
from config.images import normalise, open_png
from config.infotext import SAMPLER_LABELS, SCHEDULER_OF_LABEL, lora_tag, split_text
from config.models import Catalog
from config.records import JobRecord, JobStatus
from config.schema import Hires
from config.settings import Settings
from producer.api.routes.jobs import decode_input

# Job ids of the jobs these routes submit: `sdapi-<owner>-<uuid>`, the owner the first hex of
# the sha256 of the token's name. Flower and `watch` show where a job came from, and progress
# and interrupt find a caller's jobs from Redis alone, whichever API process took the call.
JOB_PREFIX = "sdapi-"
OWNER_HEX = 8
CHECKPOINT_FIELD = "override_settings.sd_model_checkpoint"
# A1111's checkpoint title: `name.safetensors [abcdef0123]`; the name is what a catalog holds.
TITLE_HASH_RE = re.compile(r"\s*\[[0-9a-fA-F]{8,64}\]\s*$")
CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt")
# A1111's other names for the samplers Nightshift has (sd_samplers_kdiffusion.py and
# sd_samplers_timesteps.py), then Nightshift's own scheduler names: a client may send either.
SAMPLER_ALIASES: dict[SchedulerName, tuple[str, ...]] = {
    "euler_a": ("k_euler_a", "k_euler_ancestral", "euler_a"),
    "euler": ("k_euler", "euler"),
    "lms": ("k_lms", "lms"),
    "dpmpp_2m": ("k_dpmpp_2m", "dpmpp_2m"),
    "ddim": ("ddim",),
    "pndm": ("plms", "pndm"),
}
_BY_ALIAS: dict[str, SchedulerName] = {
    alias.lower(): name for name, aliases in SAMPLER_ALIASES.items() for alias in aliases
} | {label.lower(): name for label, name in SCHEDULER_OF_LABEL.items()}
# Fields A1111 honours that Nightshift cannot, with the value that means "off": set otherwise,
# the picture is not the one A1111 would make, and the answer says so.
UNHONOURED: dict[str, object] = {
    "restore_faces": False,
    "tiling": False,
    "subseed_strength": 0,
    "styles": [],
    "resize_mode": 0,
}
# The infotext keys info has fields of its own for; the rest go to extra_generation_params.
BASE_KEYS = frozenset({"Steps", "Sampler", "CFG scale", "Seed", "Size", "Model hash", "Model"})
# A failed job's error_code -> the status its call answers; anything else is a 500, as any
# exception in A1111's API is.
FAILED_STATUS: dict[str, int] = {
    "invalid_job": 400,
    "malformed": 400,
    "model_unavailable": 503,
    "lora_unavailable": 503,
    "input_missing": 503,
    "broker_unavailable": 503,
    "unavailable": 503,
    "time_limit": 504,
}


class A1111Request(BaseModel):
    """The fields both of A1111's generation calls share, lax as A1111's pydantic was ("20"
    is 20); any other field is kept for the echo and otherwise unread."""

    model_config = ConfigDict(extra="allow")

    prompt: str = ""
    negative_prompt: str | None = None
    seed: int | None = -1
    steps: int | None = None
    cfg_scale: float | None = None
    width: int | None = None
    height: int | None = None
    batch_size: int | None = 1
    n_iter: int | None = 1
    sampler_name: str | None = None
    sampler_index: str | None = None  # A1111's older name for sampler_name
    scheduler: str | None = None  # A1111 1.9+: the sigma schedule (Automatic, Karras...)
    denoising_strength: float | None = None
    override_settings: dict[str, Any] | None = None
    send_images: bool = True
    script_name: str | None = None
    alwayson_scripts: dict[str, Any] | None = None


class Txt2ImgRequest(A1111Request):
    enable_hr: bool = False
    hr_scale: float | None = 2.0
    hr_upscaler: str | None = None
    hr_second_pass_steps: int | None = 0
    hr_resize_x: int | None = 0
    hr_resize_y: int | None = 0


class Img2ImgRequest(A1111Request):
    init_images: list[str] | None = None
    mask: str | None = None
    inpainting_mask_invert: int | None = 0
    include_init_images: bool = False


@dataclass
class Mapped:
    """A request as Client.submit's keyword arguments, and what could not be honoured."""

    params: dict[str, Any]
    notes: list[str] = field(default_factory=list)


# --- requests -> jobs ------------------------------------------------------------------------


def owner_tag(principal_name: str) -> str:
    return hashlib.sha256(principal_name.encode()).hexdigest()[:OWNER_HEX]


def new_job_id(owner: str) -> str:
    return f"{JOB_PREFIX}{owner}-{uuid.uuid4().hex}"


def is_owned(job_id: str, owner: str | None = None) -> bool:
    """Whether a job came through these routes (from `owner`, when one is given)."""
    return job_id.startswith(f"{JOB_PREFIX}{owner}-" if owner else JOB_PREFIX)


def txt2img_params(req: Txt2ImgRequest, catalog: Catalog, settings: Settings) -> Mapped:
    mapped = _common(req, catalog, settings)
    if req.enable_hr:
        mapped.params["hires"] = _hires(req, mapped.notes, settings)
    return mapped


def img2img_params(req: Img2ImgRequest, catalog: Catalog, settings: Settings) -> Mapped:
    mapped = _common(req, catalog, settings)
    images = req.init_images or []
    if not images:
        raise InvalidJob("init_images", images, "img2img needs one image (base64 PNG/JPEG/WebP)")
    if len(images) > 1:
        mapped.notes.append(
            f"init_images: {len(images)} given; every image of the job starts from the first"
        )
    params = mapped.params
    params["init_image"] = decode_input(images[0], "init_images")
    if req.denoising_strength is not None:
        params["strength"] = req.denoising_strength
    if req.mask:
        mask = decode_input(req.mask, "mask")
        params["mask"] = _inverted(mask, settings) if req.inpainting_mask_invert else mask
        if (req.model_extra or {}).get("mask_blur"):
            mapped.notes.append("mask_blur: the mask is used as sent (Nightshift does not blur)")
    return mapped


def _common(req: A1111Request, catalog: Catalog, settings: Settings) -> Mapped:
    if req.script_name:
        raise InvalidJob("script_name", req.script_name, "Nightshift runs no A1111 scripts")
    if req.alwayson_scripts:
        name = next(iter(req.alwayson_scripts))
        raise InvalidJob("alwayson_scripts", name, "Nightshift runs no A1111 scripts")
    notes: list[str] = []
    params: dict[str, Any] = {
        "negative_prompt": req.negative_prompt or None,
        "seed": None if req.seed in (None, -1) else req.seed,  # -1: a random one, as in A1111
        "steps": req.steps,
        "guidance": req.cfg_scale,
        "width": req.width,
        "height": req.height,
        "images": image_count(req.batch_size, req.n_iter, settings.max_images_per_job),
        "scheduler": scheduler_of(req.sampler_name or req.sampler_index, req.scheduler, notes),
        "model": _model(req.override_settings, catalog),
        "priority": settings.default_priority,  # interactive: ahead of batches
    }
    extra = req.model_extra or {}
    for name, off in UNHONOURED.items():
        value = extra.get(name)
        if value is not None and value != off:
            notes.append(f"{name}: {json.dumps(value)[:80]} is not honoured (Nightshift has none)")
    return Mapped({k: v for k, v in params.items() if v is not None}, notes)


def image_count(batch_size: int | None, n_iter: int | None, max_images: int) -> int:
    """A1111's batch_size x n_iter as one job's images: seeds seed, seed+1... as A1111's."""
    batch = 1 if batch_size is None else batch_size
    rounds = 1 if n_iter is None else n_iter
    for name, value in (("batch_size", batch), ("n_iter", rounds)):
        if value < 1:
            raise InvalidJob(name, value, "must be at least 1")
    if batch * rounds > max_images:
        shown = f"{batch} x {rounds} (n_iter)"
        reason = f"batch_size x n_iter must be at most {max_images} (max_images_per_job)"
        raise InvalidJob("batch_size", shown, reason)
    return batch * rounds


def scheduler_of(label: str | None, schedule: str | None, notes: list[str]) -> SchedulerName | None:
    """A1111's sampler name (or an alias, or Nightshift's own name) as a scheduler; None, the
    model's default, for none or one Nightshift lacks (A1111 fell back too)."""
    if not label or not label.strip():
        return None
    name = SCHEDULER_OF_LABEL.get(label.strip()) or _BY_ALIAS.get(label.strip().lower())
    if name is None:
        known = ", ".join(SAMPLER_LABELS.values())
        notes.append(f"sampler {label!r}: not one of Nightshift's ({known}); ran the model's")
        return None
    if "karras" in label.lower() or (schedule or "").strip().lower() == "karras":
        notes.append(f"sampler {label!r}: ran {name} without Karras sigmas (Nightshift has none)")
    return name


def model_of(value: object, catalog: Catalog) -> str:
    """A checkpoint as A1111 names it (the catalog name, `name [hash]`, `name.safetensors`, a
    path) -> its catalog name. An unknown one is refused: A1111 kept its current model and
    said nothing, which on a shared queue is someone else's model."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidJob(CHECKPOINT_FIELD, value, "must be a title from GET /sdapi/v1/sd-models")
    title = TITLE_HASH_RE.sub("", value.strip())
    stem = re.split(r"[\\/]", title)[-1]
    for suffix in CHECKPOINT_SUFFIXES:
        stem = stem.removesuffix(suffix)
    for candidate in (title, stem, stem.lower()):
        if candidate in catalog.entries:
            return candidate
    known = ", ".join(catalog.names)
    raise InvalidJob(CHECKPOINT_FIELD, value, f"unknown model; known: {known}")


def _model(overrides: dict[str, Any] | None, catalog: Catalog) -> str | None:
    if not overrides or overrides.get("sd_model_checkpoint") is None:
        return None
    return model_of(overrides["sd_model_checkpoint"], catalog)


def _hires(req: Txt2ImgRequest, notes: list[str], settings: Settings) -> dict[str, Any]:
    """A1111's hires fix: hr_scale (or hr_resize_x/y), the denoising strength A1111's txt2img
    takes for the second pass, and its steps.

    A1111 *runs* `hr_second_pass_steps` (0: the job's steps) in the second pass, stretching the
    schedule to steps / strength (processing.py's setup_img2img_steps, always on for hires);
    Nightshift's `hires.steps` is the schedule and img2img runs int(steps x strength) of it, as
    diffusers does. So the schedule asked for is the smallest that runs what A1111 would."""
    strength = Hires().strength if req.denoising_strength is None else req.denoising_strength
    hires: dict[str, Any] = {"scale": _hires_scale(req)}
    if req.denoising_strength is not None:
        hires["strength"] = req.denoising_strength
    run = req.hr_second_pass_steps or req.steps or settings.default_steps
    if strength > 0:
        # round() first: 7 / 0.7 is 10.000000000000002 in floats, and its ceil would be 11.
        hires["steps"] = math.ceil(round(run / min(strength, 1.0), 6))
    if req.hr_upscaler:
        hires["upscaler"] = upscaler_of(req.hr_upscaler, notes)
    return hires


def _hires_scale(req: Txt2ImgRequest) -> float:
    x, y = req.hr_resize_x or 0, req.hr_resize_y or 0
    if not x and not y:
        return 2.0 if req.hr_scale is None else req.hr_scale
    if req.width is None or req.height is None:
        raise InvalidJob("hr_resize_x", f"{x}x{y}", "needs width and height; or give hr_scale")
    ratios = [r for r in (x / req.width if x else None, y / req.height if y else None) if r]
    if max(ratios) - min(ratios) > 0.01:  # A1111 would crop; Nightshift only scales
        reason = "must keep the first pass's aspect ratio (Nightshift scales, never crops)"
        raise InvalidJob("hr_resize_x", f"{x}x{y}", reason)
    return ratios[0]


def upscaler_of(label: str, notes: list[str]) -> Upscaler:
    # A1111's latent upscalers are all `Latent...`; every other one (ESRGAN, SwinIR...) is a
    # model Nightshift does not run.
    if label.strip().lower().startswith("latent"):
        return "latent"
    if label.strip().lower() != "lanczos":
        notes.append(f"hr_upscaler {label!r}: upscaled with Lanczos (Nightshift has no other)")
    return "lanczos"


def _inverted(mask: bytes | str, settings: Settings) -> bytes:
    """inpainting_mask_invert: the mask checked as any input is, then black and white swapped
    (Nightshift repaints white, as A1111 does by default)."""
    if isinstance(mask, str):
        raise InvalidJob("inpainting_mask_invert", 1, "needs the mask's image, not an input id")
    from PIL import ImageOps

    checked = normalise(
        mask,
        "mask",
        "mask",
        max_bytes=settings.max_input_bytes,
        max_pixels=settings.max_input_pixels,
    )
    out = io.BytesIO()
    ImageOps.invert(open_png(checked.data)).save(out, format="PNG")
    return out.getvalue()


# --- records -> answers ----------------------------------------------------------------------


def echoed(req: A1111Request) -> dict[str, Any]:
    """The request as A1111 echoes it in `parameters`: its inputs left out unless
    include_init_images asked for them."""
    data = req.model_dump()
    if isinstance(req, Img2ImgRequest) and not req.include_init_images:
        data["init_images"], data["mask"] = None, None
    return data


def generation_answer(
    req: A1111Request,
    record: JobRecord,
    pngs: list[bytes],
    infotexts: list[str],
    notes: list[str],
    version: str,
) -> dict[str, Any]:
    """A1111's TextToImageResponse / ImageToImageResponse: images as base64 PNG (each with
    its `parameters` chunk as the worker wrote it), the echoed request, and `info` as JSON
    text."""
    images = [base64.b64encode(png).decode("ascii") for png in pngs] if req.send_images else []
    batch = req.batch_size or 1
    return {
        "images": images,
        "parameters": echoed(req),
        "info": json.dumps(info(record, infotexts, notes, version, batch), ensure_ascii=False),
    }


def info(
    record: JobRecord, infotexts: list[str], notes: list[str], version: str, batch_size: int
) -> dict[str, Any]:
    """Processed.js()'s keys, from the record and the images' own infotexts; `job_id`,
    `interrupted` and `notes` are Nightshift's."""
    spec = record.spec
    prompt = " ".join([spec.prompt, *(lora_tag(lora) for lora in spec.loras)])
    count = spec.images
    pairs = split_text(infotexts[0])[2] if infotexts else {}
    denoise = spec.hires.strength if spec.hires else None
    if spec.init_image is not None:
        denoise = spec.denoise
    started = record.started_at or record.created_at
    return {
        "prompt": prompt,
        "all_prompts": [prompt] * count,
        "negative_prompt": spec.negative_prompt,
        "all_negative_prompts": [spec.negative_prompt] * count,
        "seed": spec.seed,
        "all_seeds": spec.seeds(),
        "subseed": -1,
        "all_subseeds": [-1] * count,
        "subseed_strength": 0,
        "width": spec.width,
        "height": spec.height,
        "sampler_name": record.render.sampler or sampler_label(spec.scheduler),
        "cfg_scale": spec.guidance,
        "steps": spec.steps,
        "batch_size": batch_size,
        "restore_faces": False,
        "face_restoration_model": None,
        "sd_model_name": spec.model,
        "sd_model_hash": pairs.get("Model hash"),
        "sd_vae_name": None,
        "sd_vae_hash": None,
        "seed_resize_from_w": -1,
        "seed_resize_from_h": -1,
        "denoising_strength": denoise,
        "extra_generation_params": {k: v for k, v in pairs.items() if k not in BASE_KEYS},
        "index_of_first_image": 0,
        "infotexts": infotexts,
        "styles": [],
        "job_timestamp": time.strftime("%Y%m%d%H%M%S", time.localtime(started)),
        "clip_skip": 1,
        "is_using_inpainting_conditioning": spec.mode == "inpaint",
        "version": version,
        "job_id": record.id,
        "interrupted": record.status is JobStatus.CANCELLED,
        "notes": notes,
    }


def sampler_label(name: SchedulerName | None) -> str:
    return SAMPLER_LABELS[name] if name is not None else ""


def failed_status(record: JobRecord) -> int:
    return FAILED_STATUS.get(record.error_code or "", 500)


def error_body(kind: str, code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """A1111's error JSON (its api_middleware: error, detail, body, errors), with Nightshift's
    own error object inside, under `nightshift`."""
    return {
        "error": kind,
        "detail": message,
        "body": "",
        "errors": message,
        "nightshift": {"code": code, "field": field, "message": message},
    }


def progress_view(
    record: JobRecord | None, now: float, interrupted: bool, current_image: str | None = None
) -> dict[str, Any]:
    """A1111's ProgressResponse for one job (None: nothing running); current_image is the
    job's live preview as base64 PNG (preview_png), or null when there is none."""
    state: dict[str, Any] = {
        "skipped": False,
        "interrupted": interrupted,
        "stopping_generation": False,
        "job": "",
        "job_count": 0,
        "job_timestamp": "0",
        "job_no": 0,
        "sampling_step": 0,
        "sampling_steps": 0,
    }
    idle = {"progress": 0.0, "eta_relative": 0.0, "state": state, "current_image": None}
    if record is None:
        return idle | {"textinfo": None, "current_task": None}
    spec, got = record.spec, record.progress
    image, step, steps = got.get("image", 1), got.get("step", 0), got.get("steps", 0)
    done = 0.0
    if steps:
        done = min(1.0, max(0.0, ((image - 1) + step / steps) / max(spec.images, 1)))
    eta = 0.0
    if record.started_at is not None and done > 0:
        elapsed = max(0.0, now - record.started_at)
        eta = elapsed / done - elapsed
    started = record.started_at or record.created_at
    state |= {
        "job": record.id,
        "job_count": spec.images,
        "job_timestamp": time.strftime("%Y%m%d%H%M%S", time.localtime(started)),
        "job_no": max(0, image - 1),
        "sampling_step": step,
        "sampling_steps": steps,
    }
    if record.status is JobStatus.QUEUED:
        text = "queued"
    else:
        text = f"image {image}/{spec.images}, step {step}/{steps}" if steps else "starting"
    return idle | {
        "progress": done,
        "eta_relative": eta,
        "state": state,
        "current_image": current_image,
        "textinfo": text,
        "current_task": record.id,
    }


def preview_png(image: bytes) -> str:
    """A stored live preview (JPEG, config/store/previews.py) as A1111 sends current_image:
    base64 PNG, without a data: prefix."""
    from PIL import Image

    out = io.BytesIO()
    with Image.open(io.BytesIO(image)) as picture:
        picture.save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode("ascii")


def sd_models(catalog: Catalog) -> list[dict[str, Any]]:
    """The catalog as A1111's SDModelItem list: the title a client sends back as
    sd_model_checkpoint is the catalog name. Hashes are not known before a worker loads the
    model (its images carry them), so they are null."""
    return [
        {
            "title": name,
            "model_name": name,
            "hash": None,
            "sha256": None,
            "filename": entry.source,
            "config": None,
        }
        for name, entry in catalog.entries.items()
    ]


def samplers() -> list[dict[str, Any]]:
    """A1111's SamplerItem list: the samplers Nightshift has, under A1111's names."""
    return [
        {"name": label, "aliases": list(SAMPLER_ALIASES[name]), "options": {}}
        for name, label in SAMPLER_LABELS.items()
    ]


def options(catalog: Catalog) -> dict[str, Any]:
    """The few A1111 options a client reads: the model a call naming none renders with."""
    return {
        "sd_model_checkpoint": catalog.default,
        "sd_checkpoint_hash": None,
        "samples_format": "png",
        "CLIP_stop_at_last_layers": 1,
    }
