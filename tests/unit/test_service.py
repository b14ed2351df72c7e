"""`nightshift service install|uninstall`: the launchd agent and the systemd user unit.

No launchd or user systemd session runs here: launchctl/systemctl are faked by a runner
that records the commands, and the home folder is a temporary one. The generated files
are real and parsed back with plistlib and configparser.
"""

from __future__ import annotations

import configparser
import os
import plistlib
import subprocess
import sys
from pathlib import Path

from config.settings import Settings
from worker.host.service import (
    LABEL,
    UNIT,
    api_service,
    install,
    service_files,
    stop_timeout_s,
    uninstall,
)

ROOT = Path(__file__).resolve().parents[2]


class RecordingRunner:
    """Stands in for launchctl / systemctl, which cannot run here."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def __call__(self, command: list[str]) -> None:
        self.commands.append(command)


def test_the_launchd_agent_starts_at_login_and_restarts_after_a_crash(
    offline_settings: Settings, tmp_path: Path
) -> None:
    files = service_files(offline_settings, "Darwin", tmp_path)
    run = RecordingRunner()
    install(files, run)

    assert files.path == tmp_path / "Library" / "LaunchAgents" / f"{LABEL}.plist"
    plist = plistlib.loads(files.path.read_bytes())
    assert plist["Label"] == LABEL
    assert plist["ProgramArguments"][1:] == ["-m", "producer.cli", "worker"]
    assert plist["RunAtLoad"] is True
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["StandardOutPath"] == plist["StandardErrorPath"] == str(files.log)
    assert files.log.parent.is_dir()
    # SIGTERM is Celery's warm shutdown: launchd must wait out the longest job.
    assert plist["ExitTimeOut"] > offline_settings.job_time_limit_s
    assert plist["EnvironmentVariables"]["NIGHTSHIFT_QUEUES"] == offline_settings.queues
    assert run.commands == [["launchctl", "bootstrap", f"gui/{os.getuid()}", str(files.path)]]


def test_only_changed_settings_are_baked_into_the_service(
    offline_settings: Settings, tmp_path: Path
) -> None:
    env = plistlib.loads(service_files(offline_settings, "Darwin", tmp_path).content)[
        "EnvironmentVariables"
    ]
    assert "NIGHTSHIFT_JOB_TIME_LIMIT_S" not in env  # a default: keeps following the code
    assert env["NIGHTSHIFT_DEVICE"] == "cpu"


def test_the_systemd_unit_has_the_keys_that_matter(
    offline_settings: Settings, tmp_path: Path
) -> None:
    files = service_files(offline_settings, "Linux", tmp_path)
    run = RecordingRunner()
    install(files, run)

    assert files.path == tmp_path / ".config" / "systemd" / "user" / UNIT
    unit = configparser.ConfigParser(interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(files.path.read_text())
    service = unit["Service"]
    assert service["ExecStart"].endswith("-m producer.cli worker")
    assert service["WorkingDirectory"] == str(ROOT)
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM" and service["KillMode"] == "mixed"
    assert (
        int(service["TimeoutStopSec"])
        == stop_timeout_s(offline_settings)
        > offline_settings.job_time_limit_s
    )
    assert service["StandardOutput"] == f"append:{files.log}"
    assert "Environment" not in service  # the settings live in the private EnvironmentFile
    assert service["EnvironmentFile"] == str(files.env_file)
    assert f'NIGHTSHIFT_QUEUES="{offline_settings.queues}"' in files.env_content.decode()
    assert unit["Install"]["WantedBy"] == "default.target"
    assert run.commands[-1] == ["systemctl", "--user", "enable", "--now", UNIT]


def test_uninstall_stops_and_removes_it_and_says_when_nothing_was_there(
    offline_settings: Settings, tmp_path: Path
) -> None:
    files = service_files(offline_settings, "Darwin", tmp_path)
    install(files, None)
    run = RecordingRunner()

    assert uninstall(files, run) is True
    assert not files.path.exists()
    assert run.commands == [["launchctl", "bootout", f"gui/{os.getuid()}/{LABEL}"]]
    assert uninstall(files, run) is False


def test_the_command_writes_and_removes_the_unit_without_loading_it(
    offline_settings: Settings, tmp_path: Path
) -> None:
    env = (
        os.environ | offline_settings.to_env() | {"HOME": str(tmp_path), "PYTHONWARNINGS": "ignore"}
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "producer.cli", "service", *args],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip

    printed = cli("install", "--print").stdout
    assert "[Service]" in printed and not (tmp_path / ".config").exists()
    assert str(tmp_path) in cli("install", "--no-load").stdout
    assert (tmp_path / ".config" / "systemd" / "user" / UNIT).is_file()
    assert "nightshift-api.service" in cli("install", "--api", "--no-load").stdout
    assert "removed" in cli("uninstall", "--no-load").stdout
    assert not (tmp_path / ".config" / "systemd" / "user" / UNIT).exists()


def test_the_api_gets_a_service_of_its_own_beside_the_worker(
    offline_settings: Settings, tmp_path: Path
) -> None:
    """`service install --api`: its own unit, env file and log; a short stop (no render to
    wait out); installing it leaves the worker's alone."""
    settings = offline_settings.model_copy(update={"api_host": "0.0.0.0"})
    worker = service_files(settings, "Linux", tmp_path)
    api = service_files(settings, "Linux", tmp_path, api_service(settings))
    install(worker, None)
    install(api, RecordingRunner())
    unit = configparser.ConfigParser(interpolation=None)
    unit.read_string(api.path.read_text())
    assert api.path.name == "nightshift-api.service" and worker.path.is_file()
    assert unit["Service"]["ExecStart"].endswith("-m producer.cli api")
    assert int(unit["Service"]["TimeoutStopSec"]) < 60 < stop_timeout_s(settings)
    assert 'NIGHTSHIFT_API_HOST="0.0.0.0"' in api.env_content.decode()
    assert len({api.env_file, worker.env_file}) == 2 and api.log.name == "api.log"
    plist = plistlib.loads(
        service_files(settings, "Darwin", tmp_path, api_service(settings)).content
    )
    assert plist["Label"] == "io.nightshift.api" and plist["ProgramArguments"][-1] == "api"
    uninstall(api, None)
    assert worker.path.is_file()  # the worker keeps running
