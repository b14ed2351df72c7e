"""`nightshift service install|uninstall [--api]`: start the worker (or the HTTP API) at login,
restart it on a crash.

macOS gets a launchd agent (~/Library/LaunchAgents), Linux a systemd user unit. Both run
`python -m producer.cli worker` (or `api`) from this checkout with the NIGHTSHIFT_* settings
that differ from the defaults, log to one known file, and on stop send SIGTERM. For the worker
that is Celery's warm shutdown: the job in progress finishes first, so both wait longer than
the longest job (the hard time limit plus a margin) before they kill anything. For the API it
is uvicorn's graceful stop: requests finish, live streams close after a few seconds (clients
reconnect with Last-Event-ID), so the wait is short.
A plist cannot carry comments, so the why of each launchd key is written here:
RunAtLoad starts it at login; KeepAlive/SuccessfulExit=false restarts it only after a
crash; ThrottleInterval keeps a crash loop from spinning; ExitTimeOut is that long wait;
ProcessType Standard, because "Background" would throttle the GPU-bound render.

The settings carry secrets (the Redis URL's password, Flower's), so they are written only
where the user alone can read them: the plist at mode 600 (plistlib escapes the XML), or on
Linux an EnvironmentFile at mode 600 that the unit names; the unit itself holds no secret.
Each value is escaped for the format it is written in: systemd reads %x in a unit as a
specifier (a percent-encoded password would make it drop the whole variable, and the worker
would talk to the default Redis), so a unit's % is written %%; EnvironmentFile values are
double-quoted with \\ before each of " \\ ` $ (systemd.exec, "EnvironmentFile=").
"""

from __future__ import annotations

import os
import plistlib
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from config.settings import HARD_LIMIT_GRACE_S, Settings
from worker.jobs.files import write_private

LABEL = "io.nightshift.worker"
UNIT = "nightshift-worker.service"
# uvicorn closes live event streams this long after SIGTERM (producer/api/server.py's
# GRACEFUL_STOP_S, not imported: that would load uvicorn), then the margin.
API_STOP_S = 5 + 25
ROOT = Path(__file__).resolve().parents[2]  # the checkout: worker/host/service.py
RESTART_DELAY_S = 30
# Characters that systemd reads specially: in an EnvironmentFile double-quoted value, and
# in an ExecStart= word (which then goes in double quotes).
_ENV_SPECIAL = re.compile(r'["\\`$]')
_EXEC_SPECIAL = re.compile(r"[\s\"'\\;]")
Runner = Callable[[list[str]], object]


@dataclass(frozen=True)
class Service:
    """What runs: its launchd label, systemd unit, command and how long a stop may take."""

    name: str  # the command, and the log file's name
    label: str
    unit: str
    description: str
    stop_timeout_s: int

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", "producer.cli", self.name]


def worker_service(settings: Settings) -> Service:
    description = "Nightshift render worker (Celery, one job at a time)"
    return Service("worker", LABEL, UNIT, description, stop_timeout_s(settings))


def api_service(settings: Settings) -> Service:
    description = "Nightshift HTTP API (nightshift api)"
    return Service("api", "io.nightshift.api", "nightshift-api.service", description, API_STOP_S)


@dataclass(frozen=True)
class ServiceFiles:
    path: Path  # the plist or the unit
    log: Path
    content: bytes
    load: list[list[str]]  # commands that start it now
    unload: list[list[str]]  # commands that stop it and forget it
    env_file: Path | None = None  # Linux: the settings, passwords included, read by the unit
    env_content: bytes = b""


def stop_timeout_s(settings: Settings) -> int:
    """Longer than the longest job, so a stop never kills a render half-way."""
    return settings.job_time_limit_s + HARD_LIMIT_GRACE_S + 60


def service_env(settings: Settings) -> dict[str, str]:
    """Only the settings changed from their defaults: the rest keep following the code."""
    changed = settings.model_dump(exclude_defaults=True)
    return {
        k: v for k, v in settings.to_env().items() if k[len("NIGHTSHIFT_") :].lower() in changed
    }


def launchd_plist(settings: Settings, home: Path, service: Service | None = None) -> ServiceFiles:
    service = service or worker_service(settings)
    log = home / "Library" / "Logs" / "nightshift" / f"{service.name}.log"
    path = home / "Library" / "LaunchAgents" / f"{service.label}.plist"
    plist = {
        "Label": service.label,
        "ProgramArguments": service.command,
        "WorkingDirectory": str(ROOT),
        "EnvironmentVariables": service_env(settings),
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": RESTART_DELAY_S,
        "ExitTimeOut": service.stop_timeout_s,
        "ProcessType": "Standard",
        "StandardOutPath": str(log),
        "StandardErrorPath": str(log),
    }
    domain = f"gui/{os.getuid()}"
    return ServiceFiles(
        path,
        log,
        plistlib.dumps(plist),
        load=[["launchctl", "bootstrap", domain, str(path)]],
        unload=[["launchctl", "bootout", f"{domain}/{service.label}"]],
    )


def systemd_unit(settings: Settings, home: Path, service: Service | None = None) -> ServiceFiles:
    service = service or worker_service(settings)
    log = home / ".local" / "state" / "nightshift" / f"{service.name}.log"
    path = home / ".config" / "systemd" / "user" / service.unit
    env_file = home / ".config" / "nightshift" / f"{service.name}.env"
    text = f"""[Unit]
Description={service.description}

[Service]
Type=simple
WorkingDirectory={_unit_value(str(ROOT))}
ExecStart={" ".join(_exec_word(word) for word in service.command)}
# The NIGHTSHIFT_* settings, passwords included: a file only this user can read (mode 600).
EnvironmentFile={_unit_value(str(env_file))}
# Restart after a crash only; a clean stop stays stopped.
Restart=on-failure
RestartSec={RESTART_DELAY_S}
# SIGTERM: the worker's warm shutdown (the current job finishes first, so wait longer than
# the longest job before the SIGKILL), or the API's graceful stop.
KillSignal=SIGTERM
KillMode=mixed
TimeoutStopSec={service.stop_timeout_s}
StandardOutput=append:{_unit_value(str(log))}
StandardError=append:{_unit_value(str(log))}

[Install]
WantedBy=default.target
"""
    user = ["systemctl", "--user"]
    return ServiceFiles(
        path,
        log,
        text.encode(),
        load=[[*user, "daemon-reload"], [*user, "enable", "--now", service.unit]],
        unload=[[*user, "disable", "--now", service.unit]],
        env_file=env_file,
        env_content=environment_file(service_env(settings)).encode(),
    )


def environment_file(env: dict[str, str]) -> str:
    """systemd's EnvironmentFile= format: one double-quoted assignment a line."""
    lines = [f'{name}="{_env_escaped(value)}"\n' for name, value in sorted(env.items())]
    return "# nightshift service install: the settings (mode 600).\n" + "".join(lines)


def _env_escaped(value: str) -> str:
    return _ENV_SPECIAL.sub(lambda m: "\\" + m.group(0), value)


def _unit_value(text: str) -> str:
    """A unit setting's value: systemd expands %x specifiers; %% is a literal %."""
    return text.replace("%", "%%")


def _exec_word(word: str) -> str:
    """One ExecStart= word: $ doubled (no variable expansion), quoted when it needs it."""
    word = _unit_value(word).replace("$", "$$")
    if word and not _EXEC_SPECIAL.search(word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def service_files(
    settings: Settings, system: str, home: Path, service: Service | None = None
) -> ServiceFiles:
    service = service or worker_service(settings)
    if system == "Darwin":
        return launchd_plist(settings, home, service)
    return systemd_unit(settings, home, service)


def install(files: ServiceFiles, run: Runner | None) -> None:
    """Write the files at mode 600 (and the log folder); `run` starts it now, None leaves that
    to login."""
    files.log.parent.mkdir(parents=True, exist_ok=True)
    if files.env_file is not None:  # first: the unit must never start without its settings
        write_private(files.env_file, files.env_content, files.env_file.parent)
    write_private(files.path, files.content, files.path.parent)
    if run is not None:
        for command in files.load:
            run(command)


def uninstall(files: ServiceFiles, run: Runner | None) -> bool:
    """Stop it and remove the file; False when it was not installed."""
    if not files.path.exists():
        return False
    if run is not None:
        for command in files.unload:
            run(command)
    files.path.unlink()
    if files.env_file is not None:
        files.env_file.unlink(missing_ok=True)
    return True
