"""`nightshift api`: the HTTP API (producer/api/): jobs, batches, the queue, live events.

FastAPI and uvicorn are imported when the command runs, never when the parser is built.
"""

from __future__ import annotations

import argparse

from config.errors import InvalidInput
from config.settings import Settings
from producer.api.options import DEFAULT_HOST, DEFAULT_PORT, MAX_BODY_BYTES, ApiOptions


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("api", help="serve the HTTP API: submit, follow live, fetch images")
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"bind address (default {DEFAULT_HOST}, this machine only; any other needs a "
        "token to exist: nightshift token create)",
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    p.add_argument(
        "--max-body-bytes",
        type=int,
        default=MAX_BODY_BYTES,
        metavar="N",
        help=f"refuse larger request bodies with 413 (default {MAX_BODY_BYTES})",
    )
    p.add_argument(
        "--cors-origin",
        dest="cors_origins",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let web pages of this origin (https://host:port) call the API; repeat for more "
        "(default: none, CORS off)",
    )
    p.set_defaults(handler=cmd_api)


def cmd_api(args: argparse.Namespace) -> int:
    from producer.api import server  # FastAPI and uvicorn: only now

    if not 1 <= args.port <= 65535:
        raise InvalidInput("--port", args.port, "must be between 1 and 65535")
    if args.max_body_bytes < 1:
        raise InvalidInput("--max-body-bytes", args.max_body_bytes, "must be at least 1")
    options = ApiOptions(
        host=args.host,
        port=args.port,
        max_body_bytes=args.max_body_bytes,
        cors_origins=tuple(args.cors_origins),
    )
    server.run(Settings.from_env(), options)
    return 0
