"""`nightshift doctor`: one line per requirement, with the fix, and an exit code that tells.

There is no Mac here: the macOS facts (macOS version, Apple silicon, Rosetta, torch's MPS
build and availability, RAM) are faked through `DoctorFacts`. Redis lines use real
redis-servers: the test fixture (AOF on, noeviction) and a bare default one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from config.settings import Settings
from producer.local_redis import free_port
from worker.host.doctor import FAIL, PASS, WARN, DoctorFacts, Line, check_model, diagnose
from worker.render.device import GB, HostFacts

ROOT = Path(__file__).resolve().parents[2]

A_GOOD_MAC = DoctorFacts(
    HostFacts(mps_available=True, cuda_available=False, ram_bytes=16 * GB, system="Darwin",
              machine="arm64"),
    macos_version="14.4.1",
    apple_silicon=True,
    torch_version="2.3.0",
    mps_built=True,
)  # fmt: skip
A_LINUX_GPU_BOX = DoctorFacts(
    HostFacts(False, True, 64 * GB, "Linux", "x86_64"), torch_version="2.3.0+cu121",
    cuda_device="NVIDIA H100",
)  # fmt: skip


def line(report_lines: list[Line], name: str) -> Line:
    return next(x for x in report_lines if x.name == name)


def mac(**changes: object) -> DoctorFacts:
    return replace(A_GOOD_MAC, **changes)  # type: ignore[arg-type]


def mac_host(**changes: object) -> DoctorFacts:
    return replace(A_GOOD_MAC, host=replace(A_GOOD_MAC.host, **changes))  # type: ignore[arg-type]


def test_a_good_mac_with_a_healthy_redis_passes_every_line(settings: Settings) -> None:
    report = diagnose(settings, A_GOOD_MAC)

    assert {x.status for x in report.lines} == {PASS}, report.render()
    assert report.exit_code == 0
    assert "macOS 14.4.1 on Apple silicon" in report.render()
    assert "16 GB RAM, attention slicing on" in line(report.lines, "memory").found


@pytest.mark.parametrize(
    ("facts", "name", "status", "fix_mentions"),
    [
        (mac(macos_version="12.5"), "system", FAIL, "12.6"),
        (mac(macos_version="12.6.3"), "system", WARN, "13"),
        (mac(apple_silicon=False), "system", FAIL, "Apple-silicon"),
        (mac(rosetta=True), "python", FAIL, "arm64 Python"),
        (mac_host(machine="x86_64"), "python", FAIL, "arm64 Python"),
        (mac(torch_version="1.13.1"), "pytorch", WARN, "torch>=2.0"),
        (mac(torch_version="1.12.1"), "pytorch", FAIL, "torch>=2.0"),
        (mac(torch_version=None), "pytorch", FAIL, "pip install"),
        (mac(mps_built=False), "gpu", FAIL, "pip install -U torch"),
        (mac_host(mps_available=False), "gpu", FAIL, "12.6"),
    ],
)
def test_each_unmet_requirement_gets_its_own_line_and_fix(
    settings: Settings, facts: DoctorFacts, name: str, status: str, fix_mentions: str
) -> None:
    report = diagnose(settings, facts)

    found = line(report.lines, name)
    assert found.status == status, report.render()
    assert fix_mentions in found.fix
    assert report.exit_code == (1 if status == FAIL else 0)


def test_slicing_turned_off_on_a_small_mac_is_a_warning(settings: Settings) -> None:
    report = diagnose(settings.model_copy(update={"attention_slicing": "off"}), A_GOOD_MAC)

    memory = line(report.lines, "memory")
    assert memory.status == WARN
    assert "NIGHTSHIFT_ATTENTION_SLICING=auto" in memory.fix


def test_lifting_the_mps_memory_cap_is_a_warning(settings: Settings) -> None:
    uncapped = settings.model_copy(update={"mps_high_watermark_ratio": 0.0})
    memory = line(diagnose(uncapped, A_GOOD_MAC).lines, "memory")
    assert memory.status == WARN and "HIGH_WATERMARK_RATIO=1.0" in memory.fix


def test_a_big_mac_needs_no_slicing(settings: Settings) -> None:
    memory = line(diagnose(settings, mac_host(ram_bytes=96 * GB)).lines, "memory")
    assert (memory.status, memory.found) == (PASS, "96 GB RAM, attention slicing off")


def test_on_linux_cuda_is_checked_instead_of_mps(settings: Settings) -> None:
    with_gpu = diagnose(settings, A_LINUX_GPU_BOX)
    without = diagnose(settings, replace(A_LINUX_GPU_BOX, host=replace(A_LINUX_GPU_BOX.host,
                       cuda_available=False)))  # fmt: skip

    assert line(with_gpu.lines, "gpu") == Line(PASS, "gpu", "CUDA: NVIDIA H100")
    assert line(without.lines, "gpu").status == WARN
    assert line(with_gpu.lines, "system").status == PASS


def test_too_little_disk_for_the_results_fails(settings: Settings) -> None:
    greedy = settings.model_copy(update={"min_free_disk_gb": 10.0**9})
    disk = line(diagnose(greedy, A_GOOD_MAC).lines, "disk")
    assert disk.status == FAIL and "NIGHTSHIFT_MIN_FREE_DISK_GB" in disk.fix


@pytest.fixture
def default_redis(tmp_path: Path) -> Iterator[str]:
    """A real redis-server as a fresh install runs it: no AOF, evicting keys under pressure."""
    port = free_port()
    proc = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind",
         "127.0.0.1", "--dir", str(tmp_path), "--save", "", "--appendonly", "no",
         "--maxmemory-policy", "allkeys-lru"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(10)


def test_a_redis_without_persistence_or_with_eviction_fails(
    settings: Settings, default_redis: str
) -> None:
    report = diagnose(settings.model_copy(update={"redis_url": default_redis}), A_GOOD_MAC)

    assert line(report.lines, "redis").status == PASS
    assert line(report.lines, "redis persistence").status == FAIL
    assert "appendonly yes" in line(report.lines, "redis persistence").fix
    assert line(report.lines, "redis eviction").status == FAIL
    assert report.exit_code == 1


def test_an_unreachable_redis_fails_without_printing_its_password(settings: Settings) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    report = diagnose(settings.model_copy(update={"redis_url": url}), A_GOOD_MAC)

    redis_line = line(report.lines, "redis")
    assert redis_line.status == FAIL and "brew services start redis" in redis_line.fix
    assert "hunter2" not in report.render()


def test_the_model_is_found_in_a_folder_or_the_local_hub_cache(
    settings: Settings, tmp_path: Path
) -> None:
    assert check_model(settings).status == PASS  # the tiny model's folder
    missing = settings.model_copy(update={"model": str(tmp_path / "nothing")})
    assert check_model(missing).status == FAIL

    hub = settings.model_copy(update={"model": "someone/some-model"})
    cache = tmp_path / "hf"
    assert check_model(hub, cache).status == WARN
    snapshot = cache / "models--someone--some-model" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "model_index.json").write_text("{}")
    (cache / "models--someone--some-model" / "refs").mkdir()
    (cache / "models--someone--some-model" / "refs" / "main").write_text("abc123")
    assert check_model(hub, cache).status == PASS


def test_a_hard_time_limit_past_the_visibility_timeout_fails(settings: Settings) -> None:
    tight = settings.model_copy(update={"job_time_limit_s": 3600, "visibility_timeout_s": 3610})
    celery = line(diagnose(tight, A_GOOD_MAC).lines, "celery")
    assert celery.status == FAIL and "VISIBILITY_TIMEOUT" in celery.fix


def run_doctor(settings: Settings) -> subprocess.CompletedProcess[str]:
    env = os.environ | settings.to_env() | {"PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "producer.cli", "doctor"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_command_exits_zero_here_and_one_when_redis_is_down(settings: Settings) -> None:
    healthy = run_doctor(settings)
    broken = run_doctor(
        settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    )

    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "PASS  redis persistence" in healthy.stdout  # this Linux box: real facts
    assert broken.returncode == 1
    assert "FAIL  redis " in broken.stdout and "fix: brew services start redis" in broken.stdout
