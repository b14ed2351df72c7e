"""Batch files: read YAML, JSON, JSONL or CSV and expand them into validated job specs.

A YAML or JSON file is one object::

    name: cats                      # optional, shown in `batch list`
    defaults: {steps: 30, width: 512, height: 512}
    prompts:                        # strings, or objects with per-row overrides
      - a {red|green|blue} cat      # wildcards: one option drawn from the job's seed
      - {prompt: a lighthouse, steps: 40}
    prompts_file: prompts.txt       # or: one prompt per line, in this file's folder
    combine:                        # groups combined as a product; lists in a group zipped
      - {width: [512, 768], height: [768, 512]}
      - {guidance: [5, 7.5]}
      - {model: [sd15, sdxl]}       # the same prompts on several models (catalog names)
    seeds: 1-4                      # a list, a range "A-B", or {count: N} random ones
    runs: 2                         # repeat everything N times
    expires: 8h                     # drop jobs not started in time (or an ISO time);
                                    # a row may carry its own `expires`

A JSONL or CSV file is just the rows: one job per line, `prompt` plus any overrides.
Errors name the file, the row and the field. A job's `model` (a catalog name, default the
catalog's default) fills the fields nobody set from its catalog entry (config/models.py):
the file's values win over the model's, the model's over settings.

Files are untrusted: formats.py bounds every parser (size, depth, number length) before it
builds anything, and refuses YAML aliases (`*name`): batch files need none.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.errors import InvalidInput, InvalidJob
from config.models import Catalog, default_catalog
from config.schema import SEED_MAX, JobSpec, Limits, parse_job
from config.settings import Settings
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
from producer.timeparse import parse_expiry

TOP_KEYS = {"name", "defaults", "prompts", "prompts_file", "combine", "seeds", "runs", "expires"}
ROW_KEYS = {"prompt", "negative_prompt", "seed", "steps", "width", "height", "guidance"}
ROW_KEYS |= {"images", "scheduler", "queue", "priority", "expires"}
ROW_KEYS |= {"model", "prompt_2", "negative_prompt_2"}
# {a|b|c}: options split by '|', none holding a brace. Written so no character can match two
# ways, the search stays linear: `[^{}]*\|[^{}]*` was quadratic on '{' and 40,000 '|'.
WILDCARD_RE = re.compile(r"\{([^{}|]*(?:\|[^{}|]*)+)\}")
# ASCII digits only (\d also takes '٣'), at most 10 (SEED_MAX has 10), matched whole.
RANGE_RE = re.compile(r"\s*([0-9]{1,10})\s*-\s*([0-9]{1,10})\s*")
MAX_JOBS = 100_000
MAX_NAME_CHARS = 200  # shown in `batch list` and slugged into the batch id
FORMATS = (".yaml", ".yml", ".json", ".jsonl", ".csv")


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
    digest: str = ""


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
    unknown = sorted(set(data) - TOP_KEYS, key=str)  # YAML keys may be numbers or null
    if unknown:
        raise _err(path, str(unknown[0]), data[unknown[0]], f"unknown key; use {sorted(TOP_KEYS)}")
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
    batch.defaults = _defaults(path, data.get("defaults") or {})
    batch.combine = _combine(path, data.get("combine") or [])
    batch.seeds, batch.random_seeds = _seeds(path, data.get("seeds"))
    batch.runs = _positive(path, "runs", data.get("runs", 1))
    batch.expires = None if data.get("expires") is None else str(data["expires"])
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
    target = _inside_folder(path, name)
    try:
        raw = read_capped(target, MAX_FILE_BYTES, "prompts_file", name)
        lines = [ln.strip() for ln in utf8_text(raw, "prompts_file", name).split("\n")]
    except InvalidInput as exc:
        raise _err(path, "prompts_file", name, exc.reason) from None
    return [ln for ln in lines if ln and not ln.startswith("#")], raw


def _inside_folder(path: Path, name: Any) -> Path:
    """prompts_file names a file in the batch file's folder or below it, nothing else: an
    absolute path, '..' or a symlink out would let a shared batch file read any file the
    user can (~/.ssh, /etc/passwd) into prompts that are stored and shown."""
    reason = "must be a relative path to a file in the batch file's folder or below it"
    if not isinstance(name, str) or not name.strip() or "\x00" in name:
        raise _err(path, "prompts_file", name, reason)
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise _err(path, "prompts_file", name, reason)
    try:
        folder = path.parent.resolve()
        target = (folder / relative).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
        raise _err(path, "prompts_file", name, str(exc)) from None
    if not target.is_relative_to(folder):
        raise _err(path, "prompts_file", name, f"{reason}; a symlink leads out to {target}")
    return target


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


def _defaults(path: Path, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _err(path, "defaults", data, "must be a mapping of job fields")
    unknown = sorted(set(data) - (ROW_KEYS - {"prompt"}), key=str)
    if unknown:
        raise _err(path, f"defaults, {unknown[0]}", data[unknown[0]], "unknown field")
    return dict(data)


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


def count_jobs(batch: BatchFile) -> int:
    combos = 1
    for group in batch.combine:
        combos *= len(next(iter(group.values())))
    seeds = len(batch.seeds) if batch.seeds else max(batch.random_seeds, 1)
    return len(batch.rows) * combos * seeds * batch.runs


def expand(
    batch: BatchFile, settings: Settings, batch_id: str, catalog: Catalog | None = None
) -> list[JobSpec]:
    """Every job of the batch, validated, ids `<batch_id>-<n>`, seeds drawn and recorded.

    Each job's fields come from its row and combination, then the file's defaults, then its
    model's catalog entry, then settings (catalog None: the local one).
    """
    total = count_jobs(batch)
    if total > MAX_JOBS:
        raise _err(batch.path, "size", total, f"more than {MAX_JOBS} jobs in one batch")
    now, limits = time.time(), Limits.from_settings(settings)
    if catalog is None:
        catalog = default_catalog(settings)
    base = _base(batch, settings, now)
    specs = []
    for n, (row, combo, seed) in enumerate(_combinations(batch), 1):
        given = batch.defaults | {k: v for k, v in row.items() if k != "row"} | combo
        data = base | _with_model(batch.path, row["row"], given, catalog)
        data["seed"] = data.get("seed", seed)
        if "expires" in data:
            where = f"{batch.path.name}, row {row['row']}, expires"
            data["expires_at"] = parse_expiry(str(data.pop("expires")), now, where)
        data["id"] = f"{batch_id}-{n:05d}"
        data["batch_id"] = batch_id
        specs.append(_job(batch.path, row["row"], data, limits, catalog))
    return specs


def _with_model(path: Path, row: int, given: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    try:
        return catalog.fill(given)
    except InvalidJob as exc:
        raise _err(path, f"row {row}, {exc.field}", exc.value, exc.reason) from None


def _job(path: Path, row: int, data: dict[str, Any], limits: Limits, catalog: Catalog) -> JobSpec:
    """Validate the job as written, then fill its wildcards and validate the result: the
    length check comes before any expansion, and the seed is known to be a number."""
    spec = _validate(path, row, data, limits, catalog)
    filled = fill_wildcards(spec.prompt, spec.seed)
    if filled == spec.prompt:
        return spec
    return _validate(
        path, row, data | {"prompt": filled}, limits, catalog
    )  # `{ | }` leaves nothing


def _base(batch: BatchFile, settings: Settings, now: float) -> dict[str, Any]:
    base: dict[str, Any] = {
        "steps": settings.default_steps,
        "guidance": settings.default_guidance,
        "priority": settings.batch_priority,
        "queue": settings.default_queue,
        "created_at": now,
    }
    if batch.expires is not None:
        base["expires_at"] = parse_expiry(batch.expires, now, f"{batch.path.name}, expires")
    return base


def _combinations(batch: BatchFile) -> Any:
    groups = [
        [dict(zip(g, values, strict=True)) for values in zip(*g.values(), strict=True)]
        for g in batch.combine
    ]
    for _run in range(batch.runs):
        for row in batch.rows:
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


def _validate(
    path: Path, row: int, data: dict[str, Any], limits: Limits, catalog: Catalog
) -> JobSpec:
    guidance = data.get("guidance")
    if isinstance(guidance, int) and not isinstance(guidance, bool):  # never true as 1.0
        data["guidance"] = float(guidance)  # YAML writes 7 for 7.0
    try:
        spec = parse_job(data, limits)
        catalog.check(spec)
        return spec
    except InvalidJob as exc:
        raise _err(path, f"row {row}, {exc.field}", exc.value, exc.reason) from None


def fill_wildcards(prompt: str, seed: int) -> str:
    """Replace each {a|b|c} by one option, chosen by a generator seeded with the job's seed."""
    rng = random.Random(seed)
    return WILDCARD_RE.sub(lambda m: rng.choice(m[1].split("|")).strip(), prompt)
