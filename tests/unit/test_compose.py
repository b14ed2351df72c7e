"""docker-compose.yml and the Dockerfile, checked as files: no Docker engine runs in CI.

YAML anchors and merge keys (`<<: *worker`) are resolved by PyYAML exactly as compose does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.settings import HARD_LIMIT_GRACE_S, Settings

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(TEXT)
SERVICES: dict[str, Any] = COMPOSE["services"]


def seconds(duration: str) -> int:
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([hms])", duration))


def env_of(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in SERVICES[service]["environment"].items()}


def test_redis_flower_the_api_and_both_workers_are_defined() -> None:
    assert set(SERVICES) == {"redis", "flower", "api", "worker-cpu", "worker-cuda"}
    assert SERVICES["api"]["profiles"] == ["api"]
    # The Mac worker runs natively: only profile-gated Linux workers start from compose.
    assert "profiles" not in SERVICES["redis"] and "profiles" not in SERVICES["flower"]
    assert SERVICES["worker-cpu"]["profiles"] == ["cpu"]
    assert SERVICES["worker-cuda"]["profiles"] == ["cuda"]


def test_redis_keeps_jobs_through_restarts_and_memory_pressure() -> None:
    command = SERVICES["redis"]["command"]
    flags = dict(zip(command[1::2], command[2::2], strict=False))
    assert flags["--appendonly"] == "yes"
    assert flags["--maxmemory-policy"] == "noeviction"
    assert flags["--requirepass"].startswith("${NIGHTSHIFT_REDIS_PASSWORD:?")
    assert any(v.endswith(":/data") for v in SERVICES["redis"]["volumes"])


def test_redis_has_a_health_check_that_gates_the_others() -> None:
    check = SERVICES["redis"]["healthcheck"]
    assert "redis-cli ping" in check["test"][1]
    assert "NIGHTSHIFT_REDIS_PASSWORD" not in check["test"][1]  # via REDISCLI_AUTH instead
    for name in ("flower", "api", "worker-cpu", "worker-cuda"):
        assert SERVICES[name]["depends_on"]["redis"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", ["redis", "flower", "api"])
def test_published_ports_are_bound_to_loopback_only(service: str) -> None:
    ports = SERVICES[service]["ports"]
    assert ports and all(str(p).startswith("127.0.0.1:") for p in ports)


def test_no_service_publishes_a_port_on_every_interface() -> None:
    for service in SERVICES.values():
        assert all(str(p).startswith("127.0.0.1:") for p in service.get("ports", []))


def test_no_password_has_a_default() -> None:
    secrets = re.findall(r"\$\{(NIGHTSHIFT_\w*(?:PASSWORD|USER)\w*)([^}]*)\}", TEXT)
    assert secrets
    for name, rest in secrets:
        assert rest.startswith(":?"), f"{name} must be required, not defaulted ({rest!r})"


def test_flower_has_authentication_and_persisted_state() -> None:
    env = env_of("flower")
    assert SERVICES["flower"]["command"] == ["flower"]
    assert env["NIGHTSHIFT_FLOWER_USER"].startswith("${NIGHTSHIFT_FLOWER_USER:?")
    assert env["NIGHTSHIFT_FLOWER_PASSWORD"].startswith("${NIGHTSHIFT_FLOWER_PASSWORD:?")
    assert "flower-data:/data" in SERVICES["flower"]["volumes"]
    assert env["NIGHTSHIFT_DATA_DIR"] == "/data"
    assert "flower-data" in COMPOSE["volumes"]


def test_workers_wait_out_the_longest_job_on_stop() -> None:
    longest = Settings.from_env().job_time_limit_s + HARD_LIMIT_GRACE_S
    for name in ("worker-cpu", "worker-cuda"):
        worker = SERVICES[name]
        assert worker["stop_signal"] == "SIGTERM"
        assert seconds(worker["stop_grace_period"]) > longest
        assert worker["command"] == ["worker"]
        assert worker["build"]["context"] == "."


def test_each_worker_names_its_device_and_turns_off_the_mac_power_guards() -> None:
    assert env_of("worker-cpu")["NIGHTSHIFT_DEVICE"] == "cpu"
    cuda = env_of("worker-cuda")
    assert cuda["NIGHTSHIFT_DEVICE"] == "cuda"
    assert cuda["NIGHTSHIFT_KEEP_AWAKE"] == cuda["NIGHTSHIFT_PAUSE_ON_BATTERY"] == "false"
    assert "cu1" in SERVICES["worker-cuda"]["build"]["args"]["TORCH_INDEX"]
    gpu = SERVICES["worker-cuda"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]


def test_every_worker_setting_is_a_real_setting() -> None:
    fields = {f"NIGHTSHIFT_{name.upper()}" for name in Settings.model_fields}
    for name in ("worker-cpu", "worker-cuda", "flower", "api"):
        assert set(env_of(name)) <= fields, set(env_of(name)) - fields


def test_the_api_serves_the_workers_images_read_only_and_stops_quickly() -> None:
    api = SERVICES["api"]
    assert api["command"] == ["api"] and env_of("api")["NIGHTSHIFT_API_HOST"] == "0.0.0.0"
    assert "worker-data:/data:ro" in api["volumes"]
    assert api["stop_signal"] == "SIGTERM" and seconds(api["stop_grace_period"]) <= 60


def test_the_compose_file_says_why() -> None:
    comments = [line for line in TEXT.splitlines() if line.strip().startswith("#")]
    text = "\n".join(comments).lower()
    for reason in ("no mps", "append-only", "never evict", "warm shutdown", "loopback"):
        assert reason in text, reason


def test_the_dockerfile_builds_a_non_root_nightshift_image() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG TORCH_INDEX=.*whl/cpu$", dockerfile, re.M)
    assert re.search(r"^USER nightshift$", dockerfile, re.M)
    assert 'ENTRYPOINT ["nightshift"]' in dockerfile
    assert 'CMD ["worker"]' in dockerfile
    for folder in ("config", "worker", "producer"):
        assert f"COPY {folder} ./{folder}" in dockerfile
