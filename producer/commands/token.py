"""`nightshift token create|list|revoke`: the tokens of the HTTP API (config/store/tokens.py).

A token is printed once, by create, on stdout alone (so `TOKEN=$(nightshift token create ...)`
works); Redis keeps only its sha256. list never shows one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict

from config.settings import Settings
from config.store import reachable, redis_client
from config.store import tokens as store

SCOPE_HELP = (
    "read: every GET; submit: read, and submit or cancel jobs and batches; admin: everything, "
    "pause, resume, retries and tokens too"
)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    token = sub.add_parser("token", help="tokens for the HTTP API: create (shown once), revoke")
    tsub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    p = tsub.add_parser("create", help="make a token; prints it, the only time it is shown")
    p.add_argument("name", help="who or what uses it (1-64 of A-Z a-z 0-9 . _ -)")
    p.add_argument("--scope", required=True, choices=store.SCOPES, help=SCOPE_HELP)
    p.set_defaults(handler=cmd_create)
    p = tsub.add_parser("list", help="names, scopes, when made and last used (never a token)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=cmd_list)
    p = tsub.add_parser("revoke", help="remove a token: refused from its next request on")
    p.add_argument("name")
    p.set_defaults(handler=cmd_revoke)


def cmd_create(args: argparse.Namespace) -> int:
    client = redis_client(Settings.from_env())
    with reachable():
        token = store.create(client, args.name, args.scope)
    print(
        f"token {args.name!r} ({args.scope}): shown this once; Redis keeps only its sha256",
        file=sys.stderr,
    )
    print(token)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    client = redis_client(Settings.from_env())
    with reachable():
        found = store.list_tokens(client)
    for info in found:
        if args.json:
            print(json.dumps(asdict(info)))
            continue
        used = _when(info.last_used_at) if info.last_used_at else "never used"
        print(f"{info.name:<24} {info.scope:<7} made {_when(info.created_at)}  {used}")
    if not found and not args.json:
        print("no tokens: `nightshift api` serves this machine only, to anyone on it")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    client = redis_client(Settings.from_env())
    with reachable():
        store.revoke(client, args.name)
    print(f"revoked {args.name}")
    return 0


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))
