"""The model cache: warmed renderers by catalog name, the least recently used out first.

A worker renders jobs for several models; loading one costs seconds to minutes, holding one
costs gigabytes. NIGHTSHIFT_MODEL_CACHE bounds what it holds: a count ("2") or a size
("12GB", parameters and buffers measured after each load). "auto" holds one model on an MPS
Mac with less than 32 GB (unified memory is macOS's too: two models there push it into swap,
which the guide says wrecks speed), two elsewhere.

Every load is made ready before its first job, as at start-up: the CUDA fast path where it
applies (worker/render/fastpath.py) and the guide's warm-up pass. An eviction drops the
pipeline, collects garbage and empties the accelerator's cache, logging the memory guard's
readings before and after. A load that fails for any reason raises ModelUnavailable with
the reason; the models already held stay.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from config.errors import ModelUnavailable
from config.models import Catalog, ModelEntry
from config.settings import Settings
from worker.host.memory_guard import MemoryProbe
from worker.render import fastpath
from worker.render.device import GB, DevicePlan
from worker.render.families import family
from worker.render.loras import Adapters, LoraLibrary
from worker.render.model_hash import model_hash
from worker.render.pipeline import check_entry, load_model
from worker.render.renderer import Renderer

logger = logging.getLogger(__name__)

# Below this much RAM an MPS Mac holds one model ("auto").
MPS_TWO_MODELS_RAM_GB = 32


@dataclass(frozen=True)
class CacheBudget:
    """At most `models` models, or at most `bytes` of parameters and buffers."""

    models: int | None = None
    bytes: int | None = None

    @classmethod
    def for_device(cls, settings: Settings, device: str, ram_bytes: int) -> CacheBudget:
        """NIGHTSHIFT_MODEL_CACHE on this machine; "auto" decided by device and RAM."""
        limit = settings.model_cache_limit
        if limit.count is not None or limit.size_bytes is not None:
            return cls(models=limit.count, bytes=limit.size_bytes)
        small_mac = device == "mps" and ram_bytes < MPS_TWO_MODELS_RAM_GB * GB
        return cls(models=1 if small_mac else 2)


@dataclass
class Held:
    """One loaded model and what it cost."""

    renderer: Renderer
    bytes: int
    load_s: float  # from_pretrained and the move to the device
    ready_s: float  # load_s plus the fast path and the warm-up: what a job waits for
    fast_path: fastpath.FastPathReport


@dataclass(frozen=True)
class ModelEvent:
    """Told to `on_change` after each load and eviction (the worker publishes it to Redis)."""

    kind: str  # "loaded" or "evicted"
    name: str
    load_s: float | None  # ready_s of a load
    held: tuple[str, ...]  # the models held now, least recently used first


class Models(Protocol):
    """What a worker context renders with: a renderer by model name, from its catalog."""

    catalog: Catalog
    loras: LoraLibrary | None  # the LoRA files its renderers can load; None: none

    def get(self, name: str) -> tuple[Renderer, float | None]: ...

    def release_all(self) -> None: ...


class ModelCache:
    """Warmed renderers by catalog name, bounded by a budget, least recently used out first."""

    def __init__(
        self,
        catalog: Catalog,
        settings: Settings,
        plan: DevicePlan,
        budget: CacheBudget,
        probe: MemoryProbe | None = None,
        on_change: Callable[[ModelEvent], None] | None = None,
    ) -> None:
        self.catalog, self.settings, self.plan, self.budget = catalog, settings, plan, budget
        self.probe = probe or MemoryProbe.detect(plan.device)
        self.on_change = on_change
        self._held: OrderedDict[str, Held] = OrderedDict()
        self._sizes: dict[str, int] = {}  # measured at an earlier load: room made before this one
        self.loras: LoraLibrary | None = LoraLibrary(settings.lora_paths)

    @property
    def held(self) -> list[str]:
        """Names of the models held, least recently used first."""
        return list(self._held)

    def stats(self, name: str) -> Held | None:
        return self._held.get(name)

    def get(self, name: str) -> tuple[Renderer, float | None]:
        """The renderer of model `name`, and the seconds spent making it ready (None: held)."""
        if name in self._held:
            self._held.move_to_end(name)
            return self._held[name].renderer, None
        entry = self._entry(name)
        # The checks that need no loading first: a missing or wrong folder costs no eviction.
        # (Weights that turn out corrupt are found only by loading them, after room was made.)
        check_entry(entry, self.settings)
        self._make_room(name)
        held = self._load(entry)
        self._held[name] = held
        self._sizes[name] = held.bytes
        self._trim(keep=name)
        self._tell("loaded", name, held.ready_s)
        return held.renderer, held.ready_s

    def release_all(self) -> None:
        """Evict every model (pause --release-memory); the next get loads again."""
        for name in list(self._held):
            self._evict(name)

    def _entry(self, name: str) -> ModelEntry:
        entry = self.catalog.entries.get(name)
        if entry is None:
            known = ", ".join(self.catalog.names)
            raise ModelUnavailable(f"model {name!r}: not in this worker's catalog ({known})")
        return entry

    def _load(self, entry: ModelEntry) -> Held:
        logger.info("loading model %s (%s) from %s", entry.name, entry.family, entry.source)
        try:
            return self._ready(entry)
        except Exception as exc:
            if type(exc).__name__ == "SoftTimeLimitExceeded":
                raise  # Celery's time limit: the task's to record, not a broken model
            logger.debug("model %s did not load", entry.name, exc_info=exc)
            exc.__traceback__ = None  # its frames hold what was loaded so far: let it go now
            self._collect()
            if isinstance(exc, ModelUnavailable):
                raise exc
            # Corrupt weights, a wrong shape, no memory left: anything a load raises means
            # this model is unavailable here, and the worker goes on with the others.
            reason = f"model {entry.name!r}: cannot load {entry.source!r}: {type(exc).__name__}"
            raise ModelUnavailable(f"{reason}: {exc}") from exc

    def _ready(self, entry: ModelEntry) -> Held:
        """Load, measure, hash, then the fast path and the warm-up: ready for its first job."""
        begin = time.perf_counter()
        loaded = load_model(entry, self.settings, self.plan)
        digest = model_hash(loaded.pipe, loaded.source, loaded.variant)
        renderer = Renderer(loaded.pipe, self.plan, entry.name, family(entry.family), digest)
        size = pipeline_bytes(loaded.pipe)
        load_s = time.perf_counter() - begin
        fast = fastpath.apply(renderer, self.settings, self.plan)  # compiles here, not in jobs
        if fast.enabled:
            # PEFT would wrap the compiled UNet's projections (recompiling for minutes inside
            # a job) and cannot wrap the fused QKV ones at all: LoRAs take the eager path.
            renderer.no_lora_reason = "LoRAs need NIGHTSHIFT_FAST_PATH=false on this cuda worker"
        else:
            assert self.loras is not None
            renderer.adapters = Adapters(loaded.pipe, self.loras, self.settings.lora_cache)
        if self.settings.warmup:
            renderer.warm_up()
        ready_s = time.perf_counter() - begin
        logger.info(
            "model %s ready: %.2f GB, loaded in %.1f s, ready in %.1f s",
            entry.name,
            size / GB,
            load_s,
            ready_s,
        )
        return Held(renderer, size, load_s, ready_s, fast)

    def _make_room(self, incoming: str) -> None:
        """Before a load: evict until the budget has room for one more (of its last size)."""
        while self._held and self._full(self._sizes.get(incoming, 0)):
            self._evict(next(iter(self._held)))

    def _trim(self, keep: str) -> None:
        """After a load, once its size is known: evict others until within a size budget."""
        while self.budget.bytes is not None and self._total() > self.budget.bytes:
            victim = next((n for n in self._held if n != keep), None)
            if victim is None:
                logger.warning("model %s alone is larger than the cache budget", keep)
                return
            self._evict(victim)

    def _full(self, incoming_bytes: int) -> bool:
        if self.budget.models is not None:
            return len(self._held) + 1 > self.budget.models
        assert self.budget.bytes is not None
        return self._total() + incoming_bytes > self.budget.bytes

    def _total(self) -> int:
        return sum(held.bytes for held in self._held.values())

    def _evict(self, name: str) -> None:
        before = self.probe.read()
        held = self._held.pop(name)
        held.renderer.pipe = None  # a stale holder fails loudly instead of pinning the memory
        del held
        self._collect()
        after = self.probe.read()
        logger.info("evicted model %s: memory (MB) before %s, after %s", name, before, after)
        self._tell("evicted", name, None)

    def _collect(self) -> None:
        self.probe.empty_cache()  # gc.collect(), then torch.mps/cuda.empty_cache()

    def _tell(self, kind: str, name: str, load_s: float | None) -> None:
        if self.on_change is None:
            return
        try:
            self.on_change(ModelEvent(kind, name, load_s, tuple(self._held)))
        except Exception as exc:  # bookkeeping (Redis) must never lose a loaded model
            logger.warning("could not publish %s of model %s: %s", kind, name, exc)


class PinnedModel:
    """One ready renderer answering for every model name: for benchmarks and for tests that
    drive worker/jobs with a stand-in renderer."""

    def __init__(self, renderer: Any, catalog: Catalog) -> None:
        self.renderer, self.catalog = renderer, catalog
        self.loras: LoraLibrary | None = None

    def get(self, name: str) -> tuple[Renderer, float | None]:
        return self.renderer, None

    def release_all(self) -> None:
        return None


def pipeline_bytes(pipe: Any) -> int:
    """Parameters and buffers of every torch module of the pipeline, in bytes."""
    import torch

    total = 0
    for part in pipe.components.values():
        if isinstance(part, torch.nn.Module):
            tensors = [*part.parameters(), *part.buffers()]
            total += sum(t.numel() * t.element_size() for t in tensors)
    return total
