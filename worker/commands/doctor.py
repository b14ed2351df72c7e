"""`nightshift doctor`: check this machine against every requirement.

Imported by the command-line front door only when parsing; torch loads inside the handler.
"""

from __future__ import annotations

import argparse

from config.errors import InvalidSettings
from config.settings import Settings


def add_parsers(sub: argparse._SubParsersAction) -> None:
    doctor = sub.add_parser("doctor", help="check this machine against every requirement")
    doctor.set_defaults(handler=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    from worker.host.doctor import DoctorFacts, diagnose

    try:
        settings = Settings.from_env()
    except InvalidSettings as exc:
        print(f"FAIL  settings           {exc}")
        return 1
    report = diagnose(settings, DoctorFacts.detect())
    print(report.render())
    return report.exit_code
