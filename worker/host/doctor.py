"""`nightshift doctor`: every requirement of the source guide, checked line by line.

Each check returns a `Line`: pass, warn or fail, what was found, and the fix. Machine facts
(macOS version, Rosetta, torch's MPS build) come from one `DoctorFacts` object that wraps
`worker.render.device.HostFacts`, so tests can fake a Mac; Redis, disk and model checks are real.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import redis

from config.celery_conf import celery_config
from config.settings import TINY_MODEL, Settings
from config.store import redis_client
from config.store.client import DURABILITY, durability_config, durability_problems
from worker.render.device import GB, HostFacts, choose_slicing

PASS, WARN, FAIL = "pass", "warn", "fail"
MIN_MACOS, GOOD_MACOS = (12, 6), (13, 0)
MIN_TORCH, GOOD_TORCH = (1, 13), (2, 0)
SD15_FP16_RAM_GB = 8


@dataclass(frozen=True)
class Line:
    status: str
    name: str
    found: str
    fix: str = ""


@dataclass(frozen=True)
class DoctorFacts:
    """HostFacts plus what only the doctor asks about."""

    host: HostFacts
    macos_version: str = ""  # platform.mac_ver()[0]; "" off macOS
    apple_silicon: bool = False  # sysctl hw.optional.arm64: true even under Rosetta
    rosetta: bool = False  # sysctl sysctl.proc_translated: this Python is translated x86_64
    torch_version: str | None = None
    mps_built: bool = False
    cuda_device: str = ""

    @classmethod
    def detect(cls) -> DoctorFacts:
        try:
            import torch
        except ImportError:
            host = HostFacts(False, False, _ram_bytes(), platform.system(), platform.machine())
            return cls(host, *_mac_facts())
        mps = getattr(torch.backends, "mps", None)
        cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
        return cls(
            HostFacts.detect(),
            *_mac_facts(),
            torch_version=torch.__version__,
            mps_built=bool(mps and mps.is_built()),
            cuda_device=cuda,
        )


def _ram_bytes() -> int:
    import psutil

    return int(psutil.virtual_memory().total)


def _mac_facts() -> tuple[str, bool, bool]:
    if platform.system() != "Darwin":
        return "", False, False
    return (
        platform.mac_ver()[0],
        _sysctl("hw.optional.arm64") == "1",
        _sysctl("sysctl.proc_translated") == "1",
    )


def _sysctl(name: str) -> str:
    try:
        out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5)
    except OSError:
        return ""
    return out.stdout.strip()


def version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def check_os(facts: DoctorFacts) -> Line:
    if facts.host.system != "Darwin":
        return Line(PASS, "system", f"{facts.host.system} {facts.host.machine}: CUDA or CPU worker")
    if not facts.apple_silicon:
        return Line(FAIL, "system", "Intel Mac", "MPS needs an Apple-silicon (M-series) Mac")
    found = f"macOS {facts.macos_version} on Apple silicon"
    version = version_tuple(facts.macos_version)
    if version < MIN_MACOS:
        return Line(FAIL, "system", found, "update macOS to 12.6 or later (13+ recommended)")
    if version < GOOD_MACOS:
        return Line(WARN, "system", found, "macOS 13 or later is recommended for MPS")
    return Line(PASS, "system", found)


def check_python(facts: DoctorFacts) -> Line:
    found = f"Python {platform.python_version()} ({facts.host.machine})"
    if facts.host.system != "Darwin":
        return Line(PASS, "python", found)
    if facts.rosetta or facts.host.machine != "arm64":
        return Line(
            FAIL,
            "python",
            f"{found} under Rosetta" if facts.rosetta else found,
            "install an arm64 Python (python.org universal2 or /opt/homebrew), recreate the venv",
        )
    return Line(PASS, "python", found)


def check_torch(facts: DoctorFacts) -> Line:
    if facts.torch_version is None:
        return Line(FAIL, "pytorch", "not installed", "pip install 'torch>=2.0'")
    found = f"torch {facts.torch_version}"
    version = version_tuple(facts.torch_version)
    if version < MIN_TORCH:
        return Line(FAIL, "pytorch", found, "pip install -U 'torch>=2.0' (1.13 is the minimum)")
    if version < GOOD_TORCH:
        return Line(WARN, "pytorch", found, "pip install -U 'torch>=2.0' (2.x recommended)")
    return Line(PASS, "pytorch", found)


def check_accelerator(facts: DoctorFacts) -> Line:
    if facts.host.system != "Darwin":
        if facts.host.cuda_available:
            return Line(PASS, "gpu", f"CUDA: {facts.cuda_device}")
        return Line(
            WARN, "gpu", "no CUDA device", "renders on the CPU (slow): install the CUDA torch build"
        )
    if not facts.mps_built:
        return Line(FAIL, "gpu", "torch built without MPS", "pip install -U torch (macOS arm64)")
    if not facts.host.mps_available:
        return Line(
            FAIL, "gpu", "MPS built but not available", "needs macOS 12.6+ and an arm64 Python"
        )
    return Line(PASS, "gpu", "MPS available")


def check_memory(settings: Settings, facts: DoctorFacts) -> Line:
    ram_gb = facts.host.ram_bytes / GB
    device = "mps" if facts.host.mps_available else "other"
    slicing = choose_slicing(
        settings.attention_slicing, device, facts.host, settings.slicing_ram_threshold_gb
    )
    found = f"{ram_gb:.0f} GB RAM, attention slicing {'on' if slicing else 'off'}"
    low = device == "mps" and ram_gb < settings.slicing_ram_threshold_gb
    if low and not slicing:
        return Line(
            WARN,
            "memory",
            found,
            f"below {settings.slicing_ram_threshold_gb:.0f} GB the guide recommends slicing: "
            "NIGHTSHIFT_ATTENTION_SLICING=auto",
        )
    if device == "mps" and settings.mps_high_watermark_ratio == 0:
        fix = "0.0 lifts the MPS cap and lets macOS swap: NIGHTSHIFT_MPS_HIGH_WATERMARK_RATIO=1.0"
        return Line(WARN, "memory", found, fix)
    if device == "mps" and ram_gb < SD15_FP16_RAM_GB:
        return Line(WARN, "memory", found, "under 8 GB macOS will swap: keep renders at 512x512")
    return Line(PASS, "memory", found)


def check_disk(settings: Settings) -> Line:
    folder = settings.results_path
    existing = next(p for p in [folder, *folder.parents] if p.exists())
    free_gb = shutil.disk_usage(existing).free / GB
    found = f"{free_gb:.1f} GB free at {existing}"
    if free_gb < settings.min_free_disk_gb:
        return Line(
            FAIL,
            "disk",
            found,
            f"free space (NIGHTSHIFT_MIN_FREE_DISK_GB={settings.min_free_disk_gb:g})",
        )
    return Line(PASS, "disk", found)


def check_redis(settings: Settings) -> list[Line]:
    client = redis_client(settings)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        fix = "brew services start redis, or: docker compose up -d redis"
        return [Line(FAIL, "redis", f"{settings.redis_url_redacted}: {exc}", fix)]
    lines = [Line(PASS, "redis", f"{settings.redis_url_redacted} answers")]
    try:
        config = durability_config(client)
    except redis.RedisError as exc:
        return [*lines, Line(WARN, "redis config", f"cannot read CONFIG: {exc}", "check by hand")]
    problems = durability_problems(config)
    return [*lines, *(_durability_line(name, config, problems) for name in DURABILITY)]


_DURABILITY_CHECKS = {"appendonly": "redis persistence", "maxmemory-policy": "redis eviction"}


def _durability_line(name: str, config: dict[str, str], problems: dict[str, str]) -> Line:
    check = _DURABILITY_CHECKS[name]
    if name not in problems:
        return Line(PASS, check, f"{name} {config.get(name)}")
    return Line(FAIL, check, problems[name], DURABILITY[name][2])


def check_model(settings: Settings, hf_cache: Path | None = None) -> Line:
    if settings.model == TINY_MODEL:
        return Line(PASS, "model", "tiny random-weight pipeline (built offline on first use)")
    folder = Path(settings.model).expanduser()
    if folder.is_dir() or settings.model.startswith(("/", ".", "~")):
        if (folder / "model_index.json").is_file():
            return Line(PASS, "model", f"local folder {folder}")
        return Line(
            FAIL,
            "model",
            f"{folder}: no model_index.json",
            "point NIGHTSHIFT_MODEL at a diffusers folder",
        )
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(settings.model, "model_index.json", cache_dir=hf_cache)
    if isinstance(cached, str):
        return Line(PASS, "model", f"{settings.model} in the local Hugging Face cache")
    fix = f"download it once while online: huggingface-cli download {settings.model}"
    return Line(WARN, "model", f"{settings.model} not in the local cache", fix)


def check_celery(settings: Settings) -> Line:
    conf = celery_config(settings)
    visibility = conf["broker_transport_options"]["visibility_timeout"]
    hard = conf["task_time_limit"]
    found = f"time limit {hard} s, visibility timeout {visibility} s"
    if hard >= visibility:
        fix = "raise NIGHTSHIFT_VISIBILITY_TIMEOUT_S above the hard time limit"
        return Line(FAIL, "celery", f"{found}: a running job would be handed out twice", fix)
    if conf["worker_concurrency"] != 1 or conf["worker_prefetch_multiplier"] != 1:
        return Line(FAIL, "celery", f"{found}, concurrency/prefetch not 1", "one job at a time")
    return Line(PASS, "celery", found)


@dataclass
class Report:
    lines: list[Line] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if any(line.status == FAIL for line in self.lines) else 0

    def render(self) -> str:
        out = []
        for line in self.lines:
            out.append(f"{line.status.upper():5} {line.name:18} {line.found}")
            if line.fix and line.status != PASS:
                out.append(f"{'':25}fix: {line.fix}")
        return "\n".join(out)


def diagnose(settings: Settings, facts: DoctorFacts, hf_cache: Path | None = None) -> Report:
    lines = [
        check_os(facts),
        check_python(facts),
        check_torch(facts),
        check_accelerator(facts),
        check_memory(settings, facts),
        check_disk(settings),
        *check_redis(settings),
        check_model(settings, hf_cache),
        check_celery(settings),
    ]
    return Report(lines)
