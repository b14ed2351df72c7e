"""`nightshift service install|uninstall [--api]`: run the worker, or the HTTP API, at login
(launchd / systemd --user).

Imported by the command-line front door only when parsing; the service code loads inside
the handlers.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from config.settings import Settings

if TYPE_CHECKING:
    from worker.host.service import ServiceFiles


def add_parsers(sub: argparse._SubParsersAction) -> None:
    service = sub.add_parser(
        "service", help="run the worker (or the API) at login (launchd / systemd --user)"
    )
    service_sub = service.add_subparsers(dest="service_command", required=True, metavar="WHAT")
    for name, handler in (("install", cmd_service_install), ("uninstall", cmd_service_uninstall)):
        p = service_sub.add_parser(name, help=f"{name} the worker service (--api: the API's)")
        p.add_argument(
            "--api",
            action="store_true",
            help="the HTTP API's service (nightshift api, its NIGHTSHIFT_API_* settings) "
            "instead of the worker's; the two are independent, install both to run both",
        )
        p.add_argument("--print", action="store_true", help="print the file, change nothing")
        p.add_argument("--no-load", action="store_true", help="write/remove the file only")
        p.set_defaults(handler=handler)


def _files(args: argparse.Namespace) -> ServiceFiles:
    from worker.host.service import api_service, service_files, worker_service

    settings = Settings.from_env()
    service = api_service(settings) if args.api else worker_service(settings)
    return service_files(settings, platform.system(), Path.home(), service)


def cmd_service_install(args: argparse.Namespace) -> int:
    from worker.host.service import install

    files = _files(args)
    if args.print:
        sys.stdout.write(files.content.decode())
        if files.env_file is not None:  # its values hold passwords: named, not shown
            print(f"# settings go to {files.env_file} (mode 600), not shown here")
        return 0
    install(files, None if args.no_load else _run_checked)
    print(f"installed {files.path}\nlogs: {files.log}")
    return 0


def cmd_service_uninstall(args: argparse.Namespace) -> int:
    from worker.host.service import uninstall

    files = _files(args)
    # Stopping a service that is not running is fine: do not fail on that.
    removed = uninstall(files, None if args.no_load else _run_lenient)
    print(f"removed {files.path}" if removed else f"not installed ({files.path} absent)")
    return 0


def _run_checked(command: list[str]) -> object:
    return subprocess.run(command, check=True)


def _run_lenient(command: list[str]) -> object:
    return subprocess.run(command, check=False)
