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
        help=f"bind address (default NIGHTSHIFT_API_HOST, else {DEFAULT_HOST}: this machine "
        "only; any other needs a token to exist: nightshift token create)",
    )
    p.add_argument("--port", type=int, help=f"default NIGHTSHIFT_API_PORT, else {DEFAULT_PORT}")
    p.add_argument(
        "--max-body-bytes",
        type=int,
        metavar="N",
        help="refuse larger request bodies with 413 (default NIGHTSHIFT_API_MAX_BODY_BYTES, "
        f"else {MAX_BODY_BYTES})",
    )
    p.add_argument(
        "--cors-origin",
        dest="cors_origins",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let web pages of this origin (https://host:port) call the API; repeat for more "
        "(default NIGHTSHIFT_API_CORS_ORIGINS, comma-separated; else none: CORS off)",
    )
    p.set_defaults(handler=cmd_api)


def cmd_api(args: argparse.Namespace) -> int:
    from producer.api import server  # FastAPI and uvicorn: only now

    settings = Settings.from_env()
    server.run(settings, options_from(args, settings))
    return 0


def options_from(args: argparse.Namespace, settings: Settings) -> ApiOptions:
    """The flags, each falling back to its setting (what a service or compose file sets)."""
    port = settings.api_port if args.port is None else args.port
    body = settings.api_max_body_bytes if args.max_body_bytes is None else args.max_body_bytes
    if not 1 <= port <= 65535:
        raise InvalidInput("--port", port, "must be between 1 and 65535")
    if body < 1:
        raise InvalidInput("--max-body-bytes", body, "must be at least 1")
    origins = args.cors_origins or [o.strip() for o in settings.api_cors_origins.split(",")]
    return ApiOptions(
        host=args.host or settings.api_host,
        port=port,
        max_body_bytes=body,
        cors_origins=tuple(o for o in origins if o),
    )
