"""`nightshift history rebuild|status`: the searchable history's index (producer/history/).

rebuild makes the index again from the job records, in place (the API may keep serving it);
the file is the one of the process that serves the API: <NIGHTSHIFT_DATA_DIR>/history.sqlite3.
"""

from __future__ import annotations

import argparse
import json
from contextlib import closing
from dataclasses import asdict
from pathlib import Path

from config.settings import Settings
from config.store import reachable, redis_client


def add_parsers(sub: argparse._SubParsersAction) -> None:
    history = sub.add_parser("history", help="the searchable history's index: rebuild, status")
    hsub = history.add_subparsers(dest="history_command", required=True, metavar="ACTION")
    p = hsub.add_parser("rebuild", help="make the index again from the job records in Redis")
    p.add_argument("--json", action="store_true", help="the outcome as one JSON object")
    p.set_defaults(handler=cmd_rebuild)
    p = hsub.add_parser("status", help="rows, last event applied, file and size")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(handler=cmd_status)


def cmd_rebuild(args: argparse.Namespace) -> int:
    from producer.history import index, index_path
    from producer.history.rebuild import rebuild

    settings = Settings.from_env()
    path = index_path(settings)
    with reachable(), closing(index.connect(path)) as conn:
        done = rebuild(conn, redis_client(settings))
    if args.json:
        print(json.dumps(asdict(done) | {"file": str(path)}))
    else:
        print(
            f"history: {done.rows} jobs indexed, {done.swept} gone dropped, {done.skipped} "
            f"unreadable, in {done.seconds} s; {path}"
        )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from producer.history import index_path

    found = status(index_path(Settings.from_env()))
    if args.json:
        print(json.dumps(found))
    elif not found["exists"]:
        print(f"history: no index at {found['file']} (`nightshift history rebuild` makes it)")
    else:
        print(
            f"history: {found['rows']} jobs, last event applied {found['position']}, "
            f"{found['file']} ({found['bytes']} bytes)"
        )
    return 0


def status(path: Path) -> dict[str, object]:
    from producer.history import index

    found: dict[str, object] = {"file": str(path), "exists": path.is_file()}
    if not path.is_file():
        return found | {"rows": 0, "position": None, "bytes": 0}
    with closing(index.connect(path, reader=True)) as conn:
        rows = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
        position = index.position(conn)
    size = sum(p.stat().st_size for p in path.parent.glob(f"{path.name}*") if p.is_file())
    return found | {"rows": rows, "position": position, "bytes": size}
