"""Queue a job again: from a PNG (Nightshift's own, or any A1111, Forge or Civitai one), or from
a job record.

A Nightshift PNG carries its whole job (the `nightshift` chunk, worker/jobs/outputs.py), so its
replay is that job for that one image: same seed, same model, the same pixels on the same kind
of worker. Any other PNG has only A1111's `parameters` text, read as A1111 reads it
(config/infotext.py); its `Model:` names a file in someone's A1111 folder, so it is matched
against the catalog by name, then by hash. Whatever the caller overrides wins.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image, UnidentifiedImageError

from config.errors import InvalidInput, InvalidJob
from config.infotext import job_fields, parse_parameters, split_lora_tags
from config.models import Catalog
from config.schema import SEED_MAX, JobSpec

if TYPE_CHECKING:  # Client.submit_from calls in here: types only, no import cycle
    from producer.client import Client, Job

# What a job's own record holds that a new job must not inherit: its identity, its dates, the
# batch it was part of (a replay belongs to no batch), whom to tell when it fails, and its
# place in the queue.
DROPPED = frozenset({"id", "created_at", "batch_id", "expires_at", "notify", "moved"})
SPEC_FIELDS = frozenset(JobSpec.model_fields) - DROPPED
HASH_MATCH = 10  # hex digits of A1111's short model hash


def job_fields_from_png(
    path: Path | str, catalog: Catalog | None = None, notes: list[str] | None = None
) -> dict[str, Any]:
    """The fields of the job that made the PNG at `path`, as Client.submit takes them (prompt
    included, loras and hires as dicts).

    From the `nightshift` chunk when there is one (the image's own seed, one image), else from
    A1111's `parameters` text. An A1111 `Model:` is resolved against `catalog` (see
    model_from_catalog); without a catalog it is left as written, for a caller that names the
    model itself. Sentences on what was read approximately (an unknown sampler, an upscaler
    Nightshift lacks) and on what was ignored are appended to `notes`.
    """
    notes = [] if notes is None else notes
    chunks = read_text_chunks(path)
    if "nightshift" in chunks:
        return fields_from_chunk(path, chunks["nightshift"])
    if "parameters" not in chunks:
        raise InvalidInput("image", str(path), "has no Nightshift or A1111 parameters in it")
    parsed = parse_parameters(chunks["parameters"])
    notes += parsed["notes"]
    if parsed["ignored"]:
        notes.append("ignored: " + ", ".join(f"{k}: {v}" for k, v in parsed["ignored"].items()))
    if parsed.get("init_image_hash"):
        notes.append(f"the image was made from an init image ({parsed['init_image_hash']})")
    fields = job_fields(parsed)
    fields["loras"] = [lora.model_dump() for lora in fields["loras"]]
    if "hires" in fields:
        fields["hires"] = fields["hires"].model_dump()
    if catalog is not None:
        model = model_from_catalog(catalog, parsed.get("model"), parsed.get("model_hash"))
        if model is None:
            notes.append(f"the image names no model: {catalog.default}, the default, renders it")
            fields.pop("model", None)
        else:
            fields["model"] = model
    return fields


def read_text_chunks(path: Path | str) -> dict[str, str]:
    """Every text chunk of a PNG (tEXt, zTXt, iTXt, wherever in the file), by keyword."""
    try:
        with Image.open(path) as image:
            if image.format != "PNG":
                raise InvalidInput("image", str(path), f"is a {image.format} image, not a PNG")
            # .text reads past the pixels for the chunks some tools write after them.
            return {str(k): str(v) for k, v in getattr(image, "text", {}).items()}
    except FileNotFoundError:
        raise InvalidInput("image", str(path), "no such file") from None
    except UnidentifiedImageError:
        raise InvalidInput("image", str(path), "is not a PNG (not an image at all)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InvalidInput("image", str(path), f"cannot be read: {exc}") from None


def fields_from_chunk(path: Path | str, text: str) -> dict[str, Any]:
    """The job fields of a `nightshift` chunk: the whole spec but its identity, for one image
    (this one, with its own seed)."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise InvalidInput("image", str(path), "its nightshift chunk is not a JSON object")
    fields = {k: v for k, v in data.items() if k in SPEC_FIELDS and v is not None}
    seed = data.get("image_seed", data.get("seed"))
    if seed is not None:
        fields["seed"] = seed
    fields["images"] = 1
    return fields


def model_from_catalog(catalog: Catalog, name: str | None, model_hash: str | None) -> str | None:
    """The catalog name for an A1111 `Model:` name and `Model hash`: the name itself (in any
    case), else the entry whose `model_hash` is the same short hash (for entries that carry
    one). None when the image names neither; InvalidJob when nothing matches."""
    if name is None and not model_hash:
        return None
    if name is not None and name.lower() in catalog.names:
        return name.lower()
    if model_hash:
        wanted = model_hash.strip().lower()[:HASH_MATCH]
        for entry_name, entry in catalog.entries.items():
            known = getattr(entry, "model_hash", None)
            if isinstance(known, str) and known.strip().lower()[:HASH_MATCH] == wanted:
                return entry_name
    shown = name if name is not None else f"hash {model_hash}"
    known_names = ", ".join(catalog.names)
    reason = f"not in the catalog (known: {known_names}); pass --model"
    raise InvalidJob("model", shown, reason)


def submit_from(
    client: Client,
    path: Path | str,
    vary_seed: int = 0,
    notes: list[str] | None = None,
    **overrides: Any,
) -> list[Job]:
    """Queue the job that made the PNG at `path` again; see submit_fields for the rest."""
    catalog = None if overrides.get("model") is not None else client.catalog
    fields = job_fields_from_png(path, catalog, notes)
    return submit_fields(client, fields, vary_seed, **overrides)


def replay_record(
    client: Client, job_id: str, /, vary_seed: int = 0, **overrides: Any
) -> list[Job]:
    """Queue a recorded job again (all its images, from its first seed); see submit_fields.

    `job_id` names the job to replay (positional only: an override `job_id=` names the new one).
    """
    spec = client.store.get(job_id).spec  # raises JobNotFound
    data = spec.model_dump(mode="json")
    fields = {k: v for k, v in data.items() if k in SPEC_FIELDS and v is not None}
    return submit_fields(client, fields, vary_seed, **overrides)


def submit_fields(
    client: Client, fields: dict[str, Any], vary_seed: int = 0, **overrides: Any
) -> list[Job]:
    """Queue `fields` as a job, each override that is not None winning; the new jobs.

    overrides: any Client.submit parameter, and prompt and job_id. `hires` is merged over the
    source's (`{"steps": 10}` changes only its steps). A prompt's LoRA tags win over the
    source's LoRAs of the same name; explicit `loras` replace them all.

    vary_seed=N queues N neighbours instead of the job itself: seeds seed+1 .. seed+N for a job
    of one image, and for a job of k images seed+k, seed+2k, ..., so no two share a seed.
    """
    if vary_seed < 0:
        raise InvalidInput("vary_seed", vary_seed, "must be 0 or more")
    given = {k: v for k, v in overrides.items() if v is not None}
    fields = dict(fields)
    if isinstance(given.get("hires"), dict) and isinstance(fields.get("hires"), dict):
        given["hires"] = fields["hires"] | given["hires"]
    if "prompt" in given and "loras" not in given:
        given["prompt"], tagged = split_lora_tags(given["prompt"])
        mine = {lora.name for lora in tagged}
        kept = [lora for lora in fields.get("loras", []) if _name(lora) not in mine]
        given["loras"] = kept + [lora.model_dump() for lora in tagged]
    fields |= given
    _check_inputs(fields)
    job_id = fields.pop("job_id", None)
    prompt = fields.pop("prompt", "")
    seeds = neighbour_seeds(fields.get("seed"), vary_seed, fields.get("images", 1))
    if job_id is not None and len(seeds) > 1:
        reason = f"names one job, and --vary-seed {vary_seed} queues {vary_seed}"
        raise InvalidInput("job_id", job_id, reason)
    return [client.submit(prompt, job_id=job_id, **(fields | {"seed": s})) for s in seeds]


def neighbour_seeds(seed: int | None, vary_seed: int, images: int = 1) -> list[int | None]:
    """[seed] when vary_seed is 0, else the seeds of vary_seed neighbours of a job of `images`
    images, wrapping inside the 32-bit range as JobSpec.seeds does."""
    if vary_seed == 0:
        return [seed]
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise InvalidInput("seed", seed, "--vary-seed needs the source's seed; pass --seed")
    step = images if isinstance(images, int) and images > 0 else 1
    return [(seed + k * step) % (SEED_MAX + 1) for k in range(1, vary_seed + 1)]


def _check_inputs(fields: dict[str, Any]) -> None:
    # An A1111 img2img PNG says how strongly it repainted, never what: without the picture the
    # job would be refused for its strength, a reason that does not say what to do.
    if fields.get("strength") is not None and fields.get("init_image") is None:
        reason = (
            f"an img2img job (Denoising strength {fields['strength']}) needs its init image, "
            "which a PNG does not carry; pass --init-image PATH (and --mask PATH to inpaint)"
        )
        raise InvalidJob("init_image", None, reason)


def _name(lora: Any) -> Any:
    return lora.get("name") if isinstance(lora, dict) else getattr(lora, "name", None)
