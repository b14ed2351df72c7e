"""The model catalog: which Stable Diffusion models a job may name, and what each one implies.

The catalog is the allow-list: a job names a model by its catalog name (`sdxl`), never by a hub
id or a path, and a worker loads only what its own catalog lists. It comes from a YAML file
(`NIGHTSHIFT_MODELS_FILE`, default `<data_dir>/models.yaml` when that exists)::

    default: sd15
    models:
      sd15: {source: stable-diffusion-v1-5/stable-diffusion-v1-5}
      sdxl:
        source: stabilityai/stable-diffusion-xl-base-1.0
        defaults: {steps: 30, guidance: 6.0}
      mine: {source: ~/models/my-sd2, family: sd2, prediction: v_prediction}

Without a file, `NIGHTSHIFT_MODEL` is a one-entry catalog: `tiny` for the tiny test model,
`default` for anything else. Producers on other machines also know the models live workers
publish (config/store/models.py); the names are the contract, so one name must mean one model
on every machine.

Pure: files only, no Redis, no torch. Families and their detection: config/families.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from config import fields as rules
from config.errors import InvalidJob, InvalidSettings
from config.families import (
    FAMILIES,
    FAMILY_NAMES,
    Family,
    FamilyTraits,
    Prediction,
    detect_family,
    detect_source,
    read_capped,
)
from config.fields import SchedulerName
from config.settings import TINY_MODEL, Settings

if TYPE_CHECKING:
    from config.schema import JobSpec

__all__ = [
    "FAMILIES",
    "Catalog",
    "Family",
    "FamilyTraits",
    "ModelDefaults",
    "ModelEntry",
    "Prediction",
    "check_job",
    "default_catalog",
    "detect_family",
]

MAX_CATALOG_BYTES = 2**20
MAX_CATALOG_DEPTH = 16  # a catalog nests 4 deep: top > models > entry > defaults
ONE_ENTRY_NAME = "default"  # the entry NIGHTSHIFT_MODEL makes, unless it is `tiny`
TOP_KEYS = {"models", "default"}
ENTRY_KEYS = {"source", "family", "prediction", "defaults"}
# Fields that some family alone accepts: refused on the others.
FAMILY_ONLY_FIELDS: frozenset[str] = frozenset().union(*(t.only_fields for t in FAMILIES.values()))


def _bound(info: ValidationInfo, name: str) -> int:
    settings = (info.context or {}).get("settings")
    if isinstance(settings, Settings):
        return int(getattr(settings, name))
    return int(Settings.model_fields[name].default)


class ModelDefaults(BaseModel):
    """Job fields a model's entry fills in when a job leaves them out; checked like a job's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    width: StrictInt | None = None
    height: StrictInt | None = None
    steps: StrictInt | None = None
    guidance: float | None = None
    scheduler: SchedulerName | None = None
    negative_prompt: StrictStr | None = None

    @field_validator("width", "height")
    @classmethod
    def _side(cls, value: int | None, info: ValidationInfo) -> int | None:
        return None if value is None else rules.check_side(value, _bound(info, "max_pixels"))

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: int | None, info: ValidationInfo) -> int | None:
        return None if value is None else rules.check_steps(value, _bound(info, "max_steps"))

    @field_validator("guidance", mode="before")
    @classmethod
    def _guidance(cls, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int | float | None):
            raise ValueError("must be a number between 0 and 50")
        return None if value is None else rules.check_guidance(float(value))

    @field_validator("negative_prompt")
    @classmethod
    def _text(cls, value: str | None, info: ValidationInfo) -> str | None:
        limit = _bound(info, "max_prompt_chars")
        return None if value is None else rules.check_text(value, limit)


class ModelEntry(BaseModel):
    """One model a job may name: where it comes from, its family, and its job defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    source: StrictStr  # a hub id or a folder on the worker's machine
    family: Family
    prediction: Prediction | None = None
    defaults: ModelDefaults = ModelDefaults()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return rules.check_model_name(value)

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        return rules.check_text(value, 4096, required=True)

    @model_validator(mode="after")
    def _sides_fit_the_vae(self) -> ModelEntry:
        factor = self.traits.vae_factor
        for side in (self.defaults.width, self.defaults.height):
            if side is not None and side % factor:
                raise ValueError(f"defaults: sides must be multiples of {factor} ({side})")
        return self

    @property
    def traits(self) -> FamilyTraits:
        return FAMILIES[self.family]

    def default_size(self) -> int:
        """The side of a job that names none: the family's, but 512 for an SD 2 base model
        (epsilon), which was trained at 512; the 768-v models (v-prediction) at 768."""
        if self.family == "sd2" and self.prediction == "epsilon":
            return 512
        return self.traits.default_size


def check_job(spec: JobSpec, entry: ModelEntry) -> None:
    """Refuse what this model cannot render: another family's fields, sides off its VAE grid.

    Both sides call it: the producer at submit (Catalog.check), the worker before it renders.
    """
    traits = entry.traits
    for field in sorted(FAMILY_ONLY_FIELDS - traits.only_fields):
        value = getattr(spec, field)
        if value is not None:
            owners = " or ".join(t.label for t in FAMILIES.values() if field in t.only_fields)
            reason = f"only {owners} models take it (model {entry.name} is {traits.label})"
            raise InvalidJob(field, value, reason)
    for field in ("width", "height"):
        value = getattr(spec, field)
        if value % traits.vae_factor:
            reason = f"must be a multiple of {traits.vae_factor} for {traits.label} models"
            raise InvalidJob(field, value, reason)


def check_loras(
    spec: JobSpec, family: Family | None, published: Mapping[str, Mapping[str, Any]] | None
) -> None:
    """Refuse at submit the LoRAs a producer can know are wrong: one no live worker has, or one
    made for another family than the job's model. `published`: the LoRAs live workers publish
    (config/store/models.py published_loras); None when no worker is online, and then nothing
    is known: the worker decides (code lora_unavailable)."""
    if not spec.loras or published is None:
        return
    for n, ref in enumerate(spec.loras):
        info = published.get(ref.name)
        if info is None:
            known = ", ".join(sorted(published)) or "none"
            reason = f"no live worker has this LoRA (they have: {known}); see `nightshift loras`"
            raise InvalidJob(f"loras.{n}.name", ref.name, reason)
        made_for = info.get("family")
        if family is not None and made_for in FAMILIES and made_for != family:
            reason = (
                f"is a {FAMILIES[made_for].label} LoRA; model {spec.model} is "
                f"{FAMILIES[family].label}"
            )
            raise InvalidJob(f"loras.{n}.name", ref.name, reason)


class Catalog:
    """The models a job may name, by name, and the one a job gets when it names none."""

    def __init__(self, entries: Mapping[str, ModelEntry], default: str) -> None:
        if default not in entries:
            raise InvalidSettings("NIGHTSHIFT_DEFAULT_MODEL", default, _unknown(entries))
        self.entries: dict[str, ModelEntry] = dict(entries)
        self.default = default
        # What `fill` adds, worked out once per entry: submit-time cost is a dict merge.
        self._fills = {name: _fills_of(entry) for name, entry in self.entries.items()}

    def __repr__(self) -> str:
        return f"Catalog({self.names!r}, default={self.default!r})"

    @property
    def names(self) -> list[str]:
        return list(self.entries)

    def get(self, name: str) -> ModelEntry:
        entry = self.entries.get(name)
        if entry is None:
            raise InvalidJob("model", name, _unknown(self.entries))
        return entry

    @classmethod
    def from_settings(
        cls, settings: Settings, published: Mapping[str, Mapping[str, Any]] | None = None
    ) -> Catalog:
        """The local catalog (the file, else NIGHTSHIFT_MODEL), over the published entries."""
        path = settings.models_path
        local, file_default = _read_file(path, settings) if path else _one_entry(settings)
        _check_allowed(local, settings)
        entries = local | _published_entries(published or {}, local)
        return cls(entries, settings.default_model or file_default)

    def fill(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """params with `model` (the default when absent) and, for each field they leave out,
        the entry's default, then its family's size and scheduler. Explicit params win."""
        name = params.get("model", self.default)
        if not isinstance(name, str):
            raise InvalidJob("model", name, rules.MODEL_NAME_RULE)
        try:
            rules.check_model_name(name)
        except ValueError as exc:
            raise InvalidJob("model", name, str(exc)) from None
        self.get(name)
        return self._fills[name] | dict(params) | {"model": name}

    def check(self, spec: JobSpec) -> None:
        """check_job against the spec's model; a spec without one is left to the worker."""
        if spec.model is not None:
            check_job(spec, self.get(spec.model))

    def family_of(self, spec: JobSpec) -> Family | None:
        entry = self.entries.get(spec.model) if spec.model else None
        return entry.family if entry else None

    def to_json(self) -> str:
        """The entries as one JSON object, name -> entry: what a worker publishes."""
        return json.dumps({n: e.model_dump(mode="json") for n, e in self.entries.items()})


def default_catalog(settings: Settings) -> Catalog:
    """Catalog.from_settings, kept while the settings and the catalog file stay the same:
    new_job calls it for every job built without a catalog."""
    path = settings.models_path
    try:
        stamp = os.stat(path).st_mtime_ns if path else 0
    except OSError:
        stamp = -1  # from_settings will say what is wrong with it
    return _cached_catalog(settings, stamp)


@lru_cache(maxsize=8)
def _cached_catalog(settings: Settings, stamp: int) -> Catalog:
    return Catalog.from_settings(settings)


def _unknown(entries: Mapping[str, ModelEntry]) -> str:
    return f"unknown model; known: {', '.join(entries) or '(none)'}"


def _fills_of(entry: ModelEntry) -> dict[str, Any]:
    side = entry.default_size()
    fills: dict[str, Any] = {"width": side, "height": side}
    if entry.traits.default_scheduler_name is not None:
        fills["scheduler"] = entry.traits.default_scheduler_name
    return fills | entry.defaults.model_dump(exclude_none=True)


# --- where the entries come from ----------------------------------------------------------


def _one_entry(settings: Settings) -> tuple[dict[str, ModelEntry], str]:
    """NIGHTSHIFT_MODEL as a catalog of one. A source whose family cannot be told here (a
    folder on another machine, a hub id not cached) is taken for SD 1.5, as Nightshift did
    before models had families; a catalog file with `family:` says otherwise."""
    if settings.model == TINY_MODEL:
        source = str(settings.tiny_model_path)
        entry = ModelEntry(name=TINY_MODEL, source=source, family="sd15", prediction="epsilon")
        return {TINY_MODEL: entry}, TINY_MODEL
    family, prediction = detect_source(settings.model) or ("sd15", None)
    entry = ModelEntry(
        name=ONE_ENTRY_NAME, source=settings.model, family=family, prediction=prediction
    )
    return {ONE_ENTRY_NAME: entry}, ONE_ENTRY_NAME


def _read_file(path: Path, settings: Settings) -> tuple[dict[str, ModelEntry], str]:
    data = _load_yaml(path)
    if not isinstance(data, dict):
        raise _err(path, "top level", type(data).__name__, "must be a mapping: models, default")
    unknown = sorted(set(data) - TOP_KEYS, key=str)  # YAML keys may be numbers or null
    if unknown:
        key = unknown[0]
        raise _err(path, str(key), data[key], f"unknown key; use {sorted(TOP_KEYS)}")
    models = data.get("models")
    if not isinstance(models, dict) or not models:
        raise _err(path, "models", models, "must map model names to {source: ...}")
    entries = {str(name): _entry(path, name, raw, settings) for name, raw in models.items()}
    default = data.get("default", next(iter(entries)))
    if default not in entries:
        raise _err(path, "default", default, _unknown(entries))
    return entries, str(default)


def _entry(path: Path, name: object, raw: object, settings: Settings) -> ModelEntry:
    where = f"models.{name}"
    if not isinstance(raw, dict):
        raise _err(path, where, raw, "must be a mapping: {source: HUB_ID_OR_FOLDER, ...}")
    unknown = sorted(set(raw) - ENTRY_KEYS, key=str)
    if unknown:
        key = unknown[0]
        raise _err(path, f"{where}.{key}", raw[key], f"unknown key; use {sorted(ENTRY_KEYS)}")
    data = {"name": name, **raw}
    if "family" not in raw and isinstance(raw.get("source"), str):
        detected = detect_source(raw["source"])
        if detected is None:
            families = ", ".join(FAMILY_NAMES)
            reason = f"cannot tell its family from its files; say family: ({families})"
            raise _err(path, f"{where}.family", raw["source"], reason)
        data["family"] = detected[0]
        data.setdefault("prediction", detected[1])
    try:
        return ModelEntry.model_validate(data, context={"settings": settings})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(part) for part in err.get("loc", ()))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        field = f"{where}.{loc}" if loc else where
        raise _err(path, field, err.get("input"), msg) from None


def _published_entries(
    published: Mapping[str, Mapping[str, Any]], local: Mapping[str, ModelEntry]
) -> dict[str, ModelEntry]:
    """Entries workers published that this machine does not list; a malformed one is skipped
    (one odd worker must not stop every submit)."""
    found = {}
    for name, data in published.items():
        if name in local:
            continue
        try:
            found[name] = ModelEntry.model_validate(dict(data) | {"name": name})
        except (ValidationError, TypeError, ValueError):
            continue
    return found


def _check_allowed(entries: Mapping[str, ModelEntry], settings: Settings) -> None:
    """NIGHTSHIFT_ALLOWED_MODELS (deprecated: the catalog is the allow-list): when set, every
    local entry's source must be on it."""
    if not settings.allowed_models:
        return
    allowed = settings.allowed_model_list
    for entry in entries.values():
        source = TINY_MODEL if entry.name == TINY_MODEL else entry.source
        if source not in allowed:
            reason = f"model {entry.name} ({source}) is not in NIGHTSHIFT_ALLOWED_MODELS"
            raise InvalidSettings("NIGHTSHIFT_ALLOWED_MODELS", settings.allowed_models, reason)


def _load_yaml(path: Path) -> Any:
    """The catalog file: a regular file under MAX_CATALOG_BYTES, UTF-8, one YAML document with
    no aliases (nine nested ones in 452 bytes expand to gigabytes) and bounded nesting."""
    try:
        text = read_capped(path, MAX_CATALOG_BYTES).decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidSettings("NIGHTSHIFT_MODELS_FILE", str(path), str(exc)) from None
    try:
        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise _err(path, "syntax", f"*{event.anchor}", "YAML aliases are refused")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_CATALOG_DEPTH:
                    raise _err(path, "syntax", depth, f"nested deeper than {MAX_CATALOG_DEPTH}")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        return yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, OverflowError) as exc:
        raise _err(path, "syntax", path.name, str(exc).replace("\n", " ")) from None


def _err(path: Path, where: str, value: object, reason: str) -> InvalidSettings:
    return InvalidSettings(f"{path.name}, {where}", value, reason)
