"""Batch files: read YAML, JSON, JSONL or CSV and expand them into validated job specs.

A YAML or JSON file is one object::

    name: cats                      # optional, shown in `batch list`
    steps: 30                       # any job field here is a default for every job...
    defaults: {width: 512, height: 512}   # ...and so is one here (a field in both: an error)
    prompts:                        # strings, or objects with per-row overrides
      - a {red|green|blue} cat      # a wildcard template: filled from the job's seed
      - {prompt: a lighthouse, steps: 40}
      - {prompt: the same, in oil, init_image: photos/lighthouse.jpg, strength: 0.6}
    prompts_file: prompts.txt       # or: one prompt per line, in this file's folder
    combine:                        # groups combined as a product; lists in a group zipped
      - {width: [512, 768], height: [768, 512]}
      - {guidance: [5, 7.5]}
      - {model: [sd15, sdxl]}       # the same prompts on several models (catalog names)
      - {loras: ["detail:0.6", "film grain", []]}   # three LoRA choices, the last none
    seeds: 1-4                      # a list, a range "A-B", or {count: N} random ones
    runs: 2                         # repeat everything N times
    expires: 8h                     # drop jobs not started in time (or an ISO time);
                                    # a row may carry its own `expires`
    wildcards: random               # or combinatorial: every combination is a row
    notify: [https://example.com/hook]   # told when the batch ends (see config/notify_targets.py)

A JSONL or CSV file is just the rows: one job per line, `prompt` plus any job field.

Job fields (in a row, in `defaults`, at the top level, in `combine:` groups): prompt (rows
only), negative_prompt, prompt_2, negative_prompt_2, seed, steps, width, height, guidance,
images, scheduler, queue, priority, model, expires, and
- `loras`: `[{name: detail, weight: 0.6}]`, `["detail:0.6", "style"]`, or one string
  `"detail:0.6, style"` (a CSV cell); `<lora:name:w>` tags in the prompt work too;
- `init_image`, `mask`: paths relative to this file, inside its folder (no absolute path, no
  '..', no symlink out); each file is read and checked once (PNG, JPEG or WebP, under
  NIGHTSHIFT_MAX_INPUT_BYTES and _PIXELS; a mask the size of its image), and stored in Redis
  before any job is queued. A row with an init image and no width or height gets the image's
  size (fitted to the pixel budget);
- `strength`: img2img's denoising strength, 0 to 1 (needs an init_image);
- `hires`: `{scale, steps, strength, upscaler}`, or a number, its scale (`hires: 2`).

Prompts holding `{`, `__`, `${` or `%{` are dynamicprompts templates (wildcards.py): `{a|b}`,
nested `{a|{b|c}}`, `{2$$a|b|c}`, weights `{3::a|b}`, `__colors__` from the wildcard folders
(NIGHTSHIFT_WILDCARD_DIRS, else <data_dir>/wildcards; a name outside them is refused). In
random mode each job's template is filled from the job's seed (the same file and seed give the
same prompt); in combinatorial mode each prompt becomes one row per combination, counted before
any job is built, and a batch past MAX_JOBS is refused with the count. The filled prompt is
what each job stores, and the batch's digest covers the expander and its version, so the
same file is recognised as the same batch only while it would expand the same way.

Errors name the file, the row and the field; nothing is stored or queued before every row
passed. A job's `model` (a catalog name, default the catalog's default) fills the fields
nobody set from its catalog entry (config/models.py): the file's values win over the model's,
the model's over settings.

Files are untrusted: formats.py bounds every parser (size, depth, number length) before it
builds anything, and refuses YAML aliases (`*name`): batch files need none.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from config.errors import InvalidInput, InvalidJob
from config.images import InputImage
from config.models import Catalog, check_loras, default_catalog
from config.notify_targets import TargetError, check_targets, redact
from config.schema import SEED_MAX, JobSpec, new_job
from config.settings import Settings
from producer.batches import shorthand
from producer.batches.formats import (
    MAX_FILE_BYTES,
    MAX_YAML_BYTES,
    batch_error,
    csv_rows,
    jsonl_rows,
    parse_json,
    parse_yaml,
    read_capped,
    utf8_text,
)
from producer.batches.inputs import BatchInputs
from producer.batches.paths import inside_folder
from producer.batches.wildcards import EXPANDER, MODES, Mode, Wildcards, is_template
from producer.inputs import fitted_size
from producer.timeparse import parse_expiry

ROW_KEYS = {"prompt", "negative_prompt", "seed", "steps", "width", "height", "guidance"}
ROW_KEYS |= {"images", "scheduler", "queue", "priority", "expires"}
ROW_KEYS |= {"model", "prompt_2", "negative_prompt_2"}
ROW_KEYS |= {"loras", "init_image", "mask", "strength", "hires"}
# Job fields at the top level are defaults; `expires` there is the batch's own (it was first).
DEFAULT_KEYS = ROW_KEYS - {"prompt", "expires"}
TOP_KEYS = {"name", "defaults", "prompts", "prompts_file", "combine", "seeds", "runs", "expires"}
TOP_KEYS |= {"wildcards", "notify"}
# ASCII digits only (\d also takes '٣'), at most 10 (SEED_MAX has 10), matched whole.
RANGE_RE = re.compile(r"\s*([0-9]{1,10})\s*-\s*([0-9]{1,10})\s*")
MAX_JOBS = 100_000
MAX_NAME_CHARS = 200  # shown in `batch list` and slugged into the batch id
FORMATS = (".yaml", ".yml", ".json", ".jsonl", ".csv")
T = TypeVar("T")


@dataclass
class BatchFile:
    """A parsed batch file, before expansion; `digest` identifies its content."""

    path: Path
    name: str
    rows: list[dict[str, Any]]
    defaults: dict[str, Any] = field(default_factory=dict)
    combine: list[dict[str, list[Any]]] = field(default_factory=list)
    seeds: list[int] | None = None
    random_seeds: int = 0
    runs: int = 1
    expires: str | None = None
    wildcards: Mode = "random"
    digest: str = ""
    # Targets of the batch's "batch finished" notification (checked by expand_batch).
    notify: list[str] = field(default_factory=list)


@dataclass
class Expansion:
    """A batch expanded: its jobs, the inputs they name (to store before any is queued), the
    expander that filled its templates (None: no prompt is a template), and the digest that
    identifies the batch (the file's, plus the expander and the inputs when there are any)."""

    specs: list[JobSpec]
    inputs: list[InputImage]
    expander: str | None
    digest: str


def load(path: Path) -> BatchFile:
    """Read and check a batch file; raise InvalidInput naming the file, row and field.

    Nothing is parsed before the file is known to be a regular file under its size cap.
    """
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InvalidInput("batch file", str(path), f"must end in {', '.join(FORMATS)}")
    limit = MAX_YAML_BYTES if suffix in (".yaml", ".yml") else MAX_FILE_BYTES
    raw = read_capped(path, limit, "batch file", str(path))
    text = utf8_text(raw, "batch file", str(path))
    if suffix == ".jsonl":
        return _from_rows(path, jsonl_rows(path, text), raw)
    if suffix == ".csv":
        return _from_rows(path, csv_rows(path, text), raw)
    data = parse_json(path, text) if suffix == ".json" else parse_yaml(path, text)
    return _from_object(path, _top_level(path, data), raw)


_err = batch_error


def _top_level(path: Path, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _err(path, "top level", type(data).__name__, "must be a mapping of settings")
    unknown = sorted(set(data) - TOP_KEYS - DEFAULT_KEYS, key=str)  # YAML keys may be numbers
    if unknown:
        known = f"use {sorted(TOP_KEYS)} or a job field"
        raise _err(path, str(unknown[0]), data[unknown[0]], f"unknown key; {known}")
    return data


def _from_rows(path: Path, rows: list[Any], raw: bytes) -> BatchFile:
    batch = BatchFile(path, path.stem, [_row(path, i, r) for i, r in enumerate(rows, 1)])
    batch.digest = hashlib.sha256(raw).hexdigest()
    return _nonempty(batch)


def _from_object(path: Path, data: dict[str, Any], raw: bytes) -> BatchFile:
    prompts = _prompt_list(path, data.get("prompts"))
    digest = hashlib.sha256(raw)
    if "prompts_file" in data:
        lines, extra = _prompts_file(path, data["prompts_file"])
        prompts += lines
        digest.update(extra)
    batch = BatchFile(path, _name(path, data.get("name")), [])
    batch.rows = [_row(path, i, r) for i, r in enumerate(prompts, 1)]
    batch.defaults = _all_defaults(path, data)
    batch.combine = _combine(path, data.get("combine") or [])
    batch.seeds, batch.random_seeds = _seeds(path, data.get("seeds"))
    batch.runs = _positive(path, "runs", data.get("runs", 1))
    batch.expires = None if data.get("expires") is None else str(data["expires"])
    batch.wildcards = _mode(path, data.get("wildcards", "random"))
    batch.notify = _notify(path, data.get("notify"))
    batch.digest = digest.hexdigest()
    return _nonempty(batch)


def _prompt_list(path: Path, prompts: Any) -> list[Any]:
    if prompts is None:
        return []
    if not isinstance(prompts, list):  # a string would become one job per character
        raise _err(path, "prompts", prompts, "must be a list of prompts, even of one: [a cat]")
    return list(prompts)


def _name(path: Path, value: Any) -> str:
    if value is None or value == "":
        return path.stem
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _err(path, "name", value, "must be text")
    name = str(value)
    if len(name) > MAX_NAME_CHARS or not name.isprintable():  # ANSI escapes reach terminals
        reason = f"must be at most {MAX_NAME_CHARS} printable characters, no control characters"
        raise _err(path, "name", value, reason)
    return name


def _prompts_file(path: Path, name: Any) -> tuple[list[str], bytes]:
    """Prompts from a text file, one a line; lines end at \\n only, as in JSONL."""
    target = inside_folder(path, name, "prompts_file")
    try:
        raw = read_capped(target, MAX_FILE_BYTES, "prompts_file", name)
        lines = [ln.strip() for ln in utf8_text(raw, "prompts_file", name).split("\n")]
    except InvalidInput as exc:
        raise _err(path, "prompts_file", name, exc.reason) from None
    return [ln for ln in lines if ln and not ln.startswith("#")], raw


def _row(path: Path, number: int, row: Any) -> dict[str, Any]:
    if isinstance(row, str):
        row = {"prompt": row}
    if not isinstance(row, dict):
        raise _err(path, f"row {number}", row, "must be a prompt or an object with 'prompt'")
    unknown = sorted(set(row) - ROW_KEYS, key=str)
    if unknown:
        raise _err(path, f"row {number}, {unknown[0]}", row[unknown[0]], "unknown field")
    if not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
        raise _err(path, f"row {number}, prompt", row.get("prompt"), "must be non-empty text")
    return {"row": number, **row}


def _all_defaults(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """The job fields written at the top level and under `defaults:`, which are the same
    thing; a field written in both places is refused rather than one silently winning."""
    top = {k: v for k, v in data.items() if k in DEFAULT_KEYS}
    defaults = _defaults(path, data.get("defaults") or {})
    both = sorted(set(top) & set(defaults))
    if both:
        reason = "is set both at the top level and in defaults: keep one"
        raise _err(path, both[0], top[both[0]], reason)
    return top | defaults


def _defaults(path: Path, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _err(path, "defaults", data, "must be a mapping of job fields")
    unknown = sorted(set(data) - (ROW_KEYS - {"prompt"}), key=str)
    if unknown:
        raise _err(path, f"defaults, {unknown[0]}", data[unknown[0]], "unknown field")
    return dict(data)


def _notify(path: Path, value: Any) -> list[str]:
    """The file's `notify:` targets, their form checked (a string is a list of one)."""
    urls = [] if value is None else [value] if isinstance(value, str) else value
    try:
        return check_targets(urls, untrusted=True, allow_private=True)
    except TargetError as exc:
        raise _err(path, "notify", _shown(urls), str(exc)) from None


def _shown(urls: Any) -> Any:
    return [redact(u) for u in urls if isinstance(u, str)] if isinstance(urls, list) else "…"


def _mode(path: Path, value: Any) -> Mode:
    for mode in MODES:
        if value == mode:
            return mode
    raise _err(path, "wildcards", value, f"must be one of {', '.join(MODES)}")


def _combine(path: Path, groups: Any) -> list[dict[str, list[Any]]]:
    if isinstance(groups, dict):
        groups = [groups]
    if not isinstance(groups, list):
        raise _err(path, "combine", groups, "must be a list of groups of value lists")
    checked = []
    for number, group in enumerate(groups, 1):
        where = f"combine group {number}"
        if not isinstance(group, dict) or not group:
            raise _err(path, where, group, "must map field names to lists of values")
        lists = {k: v if isinstance(v, list) else [v] for k, v in group.items()}
        for key, values in lists.items():
            if key not in ROW_KEYS - {"prompt"} or not values:
                raise _err(path, f"{where}, {key}", values, "unknown field or empty list")
        lengths = {len(v) for v in lists.values()}
        if len(lengths) > 1:
            raise _err(path, where, group, "lists in one group are zipped: same length needed")
        checked.append(lists)
    return checked


def _seeds(path: Path, spec: Any) -> tuple[list[int] | None, int]:
    """(explicit seeds, how many random ones): a list, "A-B", a number, or {count: N}."""
    if spec is None:
        return None, 0
    if isinstance(spec, dict) and set(spec) == {"count"}:
        return None, _positive(path, "seeds.count", spec["count"])
    if isinstance(spec, int) and not isinstance(spec, bool):
        spec = [spec]
    if isinstance(spec, str) and (match := RANGE_RE.fullmatch(spec)):
        low, high = int(match[1]), int(match[2])
        if low > high or high > SEED_MAX or high - low >= MAX_JOBS:
            raise _err(path, "seeds", spec, f"range must be low-high within 0-{SEED_MAX}")
        return list(range(low, high + 1)), 0
    if isinstance(spec, list) and spec and all(_is_seed(s) for s in spec):
        return [int(s) for s in spec], 0
    reason = f"use a list, a range like 1-100, or {{count: N}} (seeds 0-{SEED_MAX})"
    raise _err(path, "seeds", spec, reason)


def _is_seed(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= SEED_MAX


def _positive(path: Path, name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_JOBS:
        raise _err(path, name, value, f"must be a whole number from 1 to {MAX_JOBS}")
    return value


def _nonempty(batch: BatchFile) -> BatchFile:
    if not batch.rows:
        raise _err(batch.path, "prompts", [], "the file has no prompts")
    return batch


def jobs_per_row(batch: BatchFile) -> int:
    """Jobs each row makes: its combine: combinations, times its seeds, times the runs."""
    combos = 1
    for group in batch.combine:
        combos *= len(next(iter(group.values())))
    seeds = len(batch.seeds) if batch.seeds else max(batch.random_seeds, 1)
    return combos * seeds * batch.runs


def count_jobs(batch: BatchFile, rows: int | None = None) -> int:
    """The batch's job count; `rows`: how many rows its prompts make (combinatorial wildcards
    make one per combination, see expand), default one per prompt."""
    return (len(batch.rows) if rows is None else rows) * jobs_per_row(batch)


def expand(
    batch: BatchFile, settings: Settings, batch_id: str, catalog: Catalog | None = None
) -> list[JobSpec]:
    """Every job of the batch, validated (expand_batch, when the inputs matter too)."""
    return expand_batch(batch, settings, batch_id, catalog).specs


def expand_batch(
    batch: BatchFile,
    settings: Settings,
    batch_id: str,
    catalog: Catalog | None = None,
    loras: Mapping[str, Mapping[str, Any]] | None = None,
) -> Expansion:
    """Every job of the batch, validated, ids `<batch_id>-<n>`, seeds drawn and recorded,
    templates filled, input files read and checked (not stored: that is the caller's, after
    this returns, before any job is queued).

    Each job's fields come from its row and combination, then the file's defaults, then its
    model's catalog entry, then settings (catalog None: the local one). `loras`: the LoRAs
    live workers publish (Client.loras), to refuse at once one none of them has.
    """
    if catalog is None:
        catalog = default_catalog(settings)
    if not settings.notify_allow_private:
        try:  # the hosts, by the submitter's settings (the form was checked by load)
            check_targets(batch.notify, untrusted=True)
        except TargetError as exc:
            raise _err(batch.path, "notify", _shown(batch.notify), str(exc)) from None
    wildcards = Wildcards(settings)
    rows = _prompt_rows(batch, wildcards)
    total = count_jobs(batch, len(rows))
    if total > MAX_JOBS:
        raise _err(batch.path, "size", total, f"more than {MAX_JOBS} jobs in one batch")
    maker = _Jobs(batch, settings, catalog, loras, wildcards, BatchInputs(batch.path, settings))
    specs = [
        maker.job(f"{batch_id}-{n:05d}", batch_id, row, combo, seed)
        for n, (row, combo, seed) in enumerate(_combinations(batch, rows), 1)
    ]
    images = maker.inputs.images
    templates = any(is_template(row["prompt"]) for row in batch.rows)
    expander = f"{EXPANDER}, {batch.wildcards}" if templates else None
    return Expansion(specs, images, expander, _digest(batch, expander, images))


def _prompt_rows(batch: BatchFile, wildcards: Wildcards) -> list[dict[str, Any]]:
    """The rows, each prompt checked as a template; in combinatorial mode one row per
    combination of its prompt, listed lazily: past MAX_JOBS jobs no more rows are built, and
    past MAX_JOBS prompts nothing more is listed (the count given is then a lower bound)."""
    for row in batch.rows:
        _checked(batch.path, row["row"], wildcards.check, row["prompt"])
    if batch.wildcards == "random":
        return batch.rows
    per_row, listed, rows = jobs_per_row(batch), 0, []
    for row in batch.rows:
        prompts = _checked(
            batch.path, row["row"], wildcards.every, row["prompt"], MAX_JOBS - listed
        )
        listed += len(prompts)
        if listed > MAX_JOBS:
            reason = f"more than {MAX_JOBS} jobs in one batch (wildcards: combinatorial)"
            raise _err(batch.path, "size", f"at least {listed * per_row}", reason)
        if listed * per_row <= MAX_JOBS:
            rows += [row | {"prompt": prompt} for prompt in prompts]
    if listed * per_row > MAX_JOBS:
        reason = f"more than {MAX_JOBS} jobs in one batch: its wildcards make {listed} prompts"
        raise _err(batch.path, "size", listed * per_row, reason)
    return rows


def _checked(path: Path, row: int, call: Callable[..., T], *args: Any) -> T:
    """call(*args), its InvalidJob re-raised naming the file and the row."""
    try:
        return call(*args)
    except InvalidJob as exc:
        raise _err(path, f"row {row}, {exc.field}", exc.value, exc.reason) from None


def _combinations(batch: BatchFile, rows: list[dict[str, Any]]) -> Iterator[Any]:
    groups = [
        [dict(zip(g, values, strict=True)) for values in zip(*g.values(), strict=True)]
        for g in batch.combine
    ]
    for _run in range(batch.runs):
        for row in rows:
            for parts in itertools.product(*groups):
                combo: dict[str, Any] = {}
                for part in parts:
                    combo |= part
                for seed in _seed_list(batch):
                    yield row, combo, seed


def _seed_list(batch: BatchFile) -> list[int]:
    if batch.seeds:
        return batch.seeds
    # Drawn here and stored in every job spec, so the run can be repeated exactly.
    return [secrets.randbelow(SEED_MAX + 1) for _ in range(max(batch.random_seeds, 1))]


class _Jobs:
    """Makes the batch's jobs one by one, with what they share: the clock reading, the
    wildcard filler (templates parsed once) and the inputs (each file read once)."""

    def __init__(
        self,
        batch: BatchFile,
        settings: Settings,
        catalog: Catalog,
        loras: Mapping[str, Mapping[str, Any]] | None,
        wildcards: Wildcards,
        inputs: BatchInputs,
    ) -> None:
        self.batch, self.settings, self.catalog, self.loras = batch, settings, catalog, loras
        self.wildcards, self.inputs = wildcards, inputs
        self.now = time.time()
        # Under every job's own fields: new_job fills the rest from the model, then settings.
        self.base: dict[str, Any] = {"priority": settings.batch_priority, "created_at": self.now}
        if batch.expires is not None:
            where = f"{batch.path.name}, expires"
            self.base["expires_at"] = parse_expiry(batch.expires, self.now, where)

    def job(
        self, job_id: str, batch_id: str, row: dict[str, Any], combo: dict[str, Any], seed: int
    ) -> JobSpec:
        number, path = row["row"], self.batch.path
        given = self.batch.defaults | {k: v for k, v in row.items() if k != "row"} | combo
        data = self.base | _checked(path, number, shorthand.job_fields, given)
        if data.get("seed") is None:
            data["seed"] = seed
        if "expires" in data:
            where = f"{path.name}, row {number}, expires"
            data["expires_at"] = parse_expiry(str(data.pop("expires")), self.now, where)
        data, image = self.inputs.fill(number, data)
        if image is not None and given.get("width") is None and given.get("height") is None:
            size = fitted_size(image.width, image.height, self.settings.max_pixels)
            data["width"], data["height"] = size
        guidance = data.get("guidance")
        if isinstance(guidance, int) and not isinstance(guidance, bool):  # never true as 1.0
            data["guidance"] = float(guidance)  # YAML writes 7 for 7.0; errors show -3.0
        prompt = data.pop("prompt")
        # A seed that is no seed ("abc" in a CSV) fills nothing: new_job refuses it by name.
        if self.batch.wildcards == "random" and _is_seed(data["seed"]):
            prompt = _checked(path, number, self.wildcards.fill, prompt, data["seed"])
        data |= {"id": job_id, "batch_id": batch_id}
        return _checked(path, number, self._new, prompt, data)

    def _new(self, prompt: str, data: dict[str, Any]) -> JobSpec:
        spec = new_job(prompt, self.settings, self.catalog, **data)
        check_loras(spec, self.catalog.family_of(spec), self.loras)
        return spec


def _digest(batch: BatchFile, expander: str | None, images: list[InputImage]) -> str:
    """The file's digest, and when it has templates or inputs, what they expand to: the same
    file with another dynamicprompts version, or another picture under an input's name, is
    another batch."""
    if expander is None and not images:
        return batch.digest
    parts = [batch.digest, expander or "", *sorted(image.id for image in images)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
