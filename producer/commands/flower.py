"""`nightshift flower`: Flower on the project's own Celery app, with authentication on.

Flower runs as `celery -A worker.app flower`, so it shares the visibility timeout,
priority steps and queue declarations of the worker (a Flower with kombu's default one-hour
visibility timeout would make Redis redeliver a running overnight job). Its persisted state
is a pickle shelve: anyone who can write that file can run code in Flower, so it lives in
the data folder with mode 600, and Flower runs with umask 077. Flower's /metrics needs the
login too (flower_conf.py, its --conf file, says why that takes a config file).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path

from config.errors import InvalidSettings
from config.settings import Settings

LOOPBACK = "127.0.0.1"
ALL_INTERFACES = ("", "0.0.0.0", "::")
# Below this, or equal to the user name, a password reachable from the network is a guess.
STRONG_PASSWORD_CHARS = 12
CONF_FILE = Path(__file__).with_name("flower_conf.py")
# Flower's task list shows the readable job summary (argsrepr) next to the state.
TASK_COLUMNS = "name,uuid,state,args,received,started,runtime,worker"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("flower", help="start the Flower dashboard (basic auth from settings)")
    p.add_argument("--address", help="bind address (default NIGHTSHIFT_FLOWER_ADDRESS)")
    p.add_argument("--port", type=int, help="port (default NIGHTSHIFT_FLOWER_PORT)")
    p.add_argument("--no-auth", action="store_true", help="no login; allowed only on 127.0.0.1")
    p.set_defaults(handler=cmd_flower)


def cmd_flower(args: argparse.Namespace) -> int:
    overrides = {"flower_address": args.address, "flower_port": args.port}
    settings = Settings.from_env(**{k: v for k, v in overrides.items() if v is not None})
    env = flower_env(settings, args.no_auth)
    db = state_file(settings)
    argv = flower_argv(settings, db)
    print(f"Flower: {flower_url(settings)}  (state: {db}, mode 600)", flush=True)
    if warning := weak_login_warning(settings, args.no_auth):
        print(warning, file=sys.stderr, flush=True)
    os.umask(0o077)  # the shelve files Flower writes are private from the first byte
    os.execve(sys.executable, argv, env)


def flower_env(settings: Settings, no_auth: bool) -> dict[str, str]:
    """The environment for Flower; the credentials go here, never on the command line (ps)."""
    env = dict(os.environ) | settings.to_env()
    if no_auth:
        if settings.flower_address != LOOPBACK:
            raise InvalidSettings(
                "NIGHTSHIFT_FLOWER_ADDRESS",
                settings.flower_address,
                f"--no-auth is allowed only on {LOOPBACK}",
            )
        # The HTTP API (/api/...) answers without a login only when told so.
        env["FLOWER_UNAUTHENTICATED_API"] = "true"
        env.pop("FLOWER_BASIC_AUTH", None)
        return env
    if not settings.flower_user or not settings.flower_password:
        missing = (
            "NIGHTSHIFT_FLOWER_USER" if not settings.flower_user else "NIGHTSHIFT_FLOWER_PASSWORD"
        )
        raise InvalidSettings(
            missing, "", "Flower needs a user and a password (or --no-auth on 127.0.0.1)"
        )
    _check_credentials(settings)
    env["FLOWER_BASIC_AUTH"] = f"{settings.flower_user}:{settings.flower_password}"
    return env


def _check_credentials(settings: Settings) -> None:
    # Flower splits FLOWER_BASIC_AUTH on commas (several users) and the pair on the first colon.
    if ":" in settings.flower_user or "," in settings.flower_user:
        raise InvalidSettings("NIGHTSHIFT_FLOWER_USER", settings.flower_user, "no ':' or ','")
    if "," in settings.flower_password:
        raise InvalidSettings(
            "NIGHTSHIFT_FLOWER_PASSWORD", "<hidden>", "no ',' (Flower splits on it)"
        )


def state_file(settings: Settings) -> Path:
    """<data_dir>/flower.db, with any existing files of that shelve made private."""
    settings.data_path.mkdir(parents=True, exist_ok=True)
    db = settings.data_path / "flower.db"
    for path in settings.data_path.glob("flower.db*"):
        path.chmod(0o600)
    return db


def flower_argv(settings: Settings, db: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.app",
        "flower",
        f"--address={settings.flower_address}",
        f"--port={settings.flower_port}",
        "--persistent=True",
        f"--db={db}",
        f"--state_save_interval={settings.flower_state_save_interval_s * 1000}",
        f"--tasks_columns={TASK_COLUMNS}",
        f"--conf={CONF_FILE}",
    ]


def flower_url(settings: Settings) -> str:
    """The address Flower binds, as a URL; all interfaces are said to be all interfaces."""
    address = settings.flower_address or "0.0.0.0"
    host = f"[{address}]" if ":" in address else address
    url = f"http://{host}:{settings.flower_port}/"
    return f"{url} (all interfaces)" if address in ALL_INTERFACES else url


def weak_login_warning(settings: Settings, no_auth: bool) -> str | None:
    """A warning when Flower is reachable beyond this machine with a guessable password."""
    password, user = settings.flower_password, settings.flower_user
    if no_auth or on_loopback(settings.flower_address):
        return None
    if len(password) >= STRONG_PASSWORD_CHARS and password != user:
        return None
    return (
        f"warning: Flower listens on {flower_url(settings)} and NIGHTSHIFT_FLOWER_PASSWORD is "
        f"weak (shorter than {STRONG_PASSWORD_CHARS} characters, or the user name): whoever "
        "reaches that port and guesses it can revoke jobs and shut workers down"
    )


def on_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # a host name other than localhost, or "" (all interfaces)
