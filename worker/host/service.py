"""`nightshift service install|uninstall`: start the worker at login, restart it on a crash.

macOS gets a launchd agent (~/Library/LaunchAgents), Linux a systemd user unit. Both run
`python -m producer.cli worker` from this checkout with the NIGHTSHIFT_* settings that
differ from the defaults, log to one known file, and on stop send SIGTERM, which Celery
treats as a warm shutdown: the job in progress finishes first. So both wait longer than
the longest job (the hard time limit plus a margin) before they kill anything.
A plist cannot carry comments, so the why of each launchd key is written here:
RunAtLoad starts it at login; KeepAlive/SuccessfulExit=false restarts it only after a
crash; ThrottleInterval keeps a crash loop from spinning; ExitTimeOut is that long wait;
ProcessType Standard, because "Background" would throttle the GPU-bound render.
"""

from __future__ import annotations

import os
import plistlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from config.celery_conf import HARD_LIMIT_GRACE_S
from config.settings import Settings

LABEL = "io.nightshift.worker"
UNIT = "nightshift-worker.service"
ROOT = Path(__file__).resolve().parent.parent
RESTART_DELAY_S = 30
Runner = Callable[[list[str]], object]


@dataclass(frozen=True)
class ServiceFiles:
    path: Path  # the plist or the unit
    log: Path
    content: bytes
    load: list[list[str]]  # commands that start it now
    unload: list[list[str]]  # commands that stop it and forget it


def stop_timeout_s(settings: Settings) -> int:
    """Longer than the longest job, so a stop never kills a render half-way."""
    return settings.job_time_limit_s + HARD_LIMIT_GRACE_S + 60


def worker_command() -> list[str]:
    return [sys.executable, "-m", "producer.cli", "worker"]


def service_env(settings: Settings) -> dict[str, str]:
    """Only the settings changed from their defaults: the rest keep following the code."""
    changed = settings.model_dump(exclude_defaults=True)
    return {
        k: v for k, v in settings.to_env().items() if k[len("NIGHTSHIFT_") :].lower() in changed
    }


def launchd_plist(settings: Settings, home: Path) -> ServiceFiles:
    log = home / "Library" / "Logs" / "nightshift" / "worker.log"
    path = home / "Library" / "LaunchAgents" / f"{LABEL}.plist"
    plist = {
        "Label": LABEL,
        "ProgramArguments": worker_command(),
        "WorkingDirectory": str(ROOT),
        "EnvironmentVariables": service_env(settings),
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": RESTART_DELAY_S,
        "ExitTimeOut": stop_timeout_s(settings),
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
        unload=[["launchctl", "bootout", f"{domain}/{LABEL}"]],
    )


def systemd_unit(settings: Settings, home: Path) -> ServiceFiles:
    log = home / ".local" / "state" / "nightshift" / "worker.log"
    path = home / ".config" / "systemd" / "user" / UNIT
    env = " ".join(f'"{k}={v}"' for k, v in sorted(service_env(settings).items()))
    text = f"""[Unit]
Description=Nightshift render worker (Celery, one job at a time)

[Service]
Type=simple
WorkingDirectory={ROOT}
ExecStart={" ".join(worker_command())}
{"Environment=" + env if env else ""}
# Restart after a crash only; a clean stop stays stopped.
Restart=on-failure
RestartSec={RESTART_DELAY_S}
# SIGTERM to the Celery parent = warm shutdown: the current job finishes first,
# so wait longer than the longest job before the SIGKILL.
KillSignal=SIGTERM
KillMode=mixed
TimeoutStopSec={stop_timeout_s(settings)}
StandardOutput=append:{log}
StandardError=append:{log}

[Install]
WantedBy=default.target
"""
    user = ["systemctl", "--user"]
    return ServiceFiles(
        path,
        log,
        text.encode(),
        load=[[*user, "daemon-reload"], [*user, "enable", "--now", UNIT]],
        unload=[[*user, "disable", "--now", UNIT]],
    )


def service_files(settings: Settings, system: str, home: Path) -> ServiceFiles:
    return launchd_plist(settings, home) if system == "Darwin" else systemd_unit(settings, home)


def install(files: ServiceFiles, run: Runner | None) -> None:
    """Write the file (and the log folder); `run` starts it now, None leaves that to login."""
    files.path.parent.mkdir(parents=True, exist_ok=True)
    files.log.parent.mkdir(parents=True, exist_ok=True)
    files.path.write_bytes(files.content)
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
    return True
