"""`nightshift api`'s server: uvicorn running the app, and what it says when it starts.

It listens on 127.0.0.1 unless told otherwise. Anywhere else it starts only once a token
exists: the local default (no token needed while none exists, producer/api/auth.py) is for
this machine only. Its log has the access lines and the start-up line, the Redis URL with its
password as *** (Settings.redis_url_redacted); no token ever reaches it (they travel in
headers, which are not logged). NIGHTSHIFT_LOG_FORMAT=json makes every line a JSON object,
as the worker's are (config/logformat.py).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from config.errors import InvalidInput
from config.logformat import JsonLines
from config.settings import Settings
from config.store import reachable, redis_client
from config.store import tokens as store
from producer.api.app import create_app
from producer.api.options import ApiOptions

logger = logging.getLogger("nightshift.api")

# A stream (SSE) never ends by itself: past this, stopping closes it; clients reconnect.
GRACEFUL_STOP_S = 5


def check_exposure(options: ApiOptions, token_count: int) -> None:
    """Refuse to listen beyond this machine while no token exists (InvalidInput: exit 2)."""
    if token_count == 0 and not options.loopback:
        raise InvalidInput(
            "--host",
            options.host,
            "refusing to listen beyond this machine while no API token exists; create one "
            "first (nightshift token create NAME --scope admin), or listen on 127.0.0.1",
        )


def startup_line(settings: Settings, options: ApiOptions, token_count: int) -> str:
    host = f"[{options.host}]" if ":" in options.host else options.host
    where = f"http://{host}:{options.port}/v1 (docs /v1/docs), Redis {settings.redis_url_redacted}"
    if token_count:
        auth = f"auth: bearer tokens ({token_count})"
    else:
        auth = (
            "auth: none needed: no token exists and it listens on this machine only, so any "
            "local process may use every route (a token, nightshift token create, turns auth on)"
        )
    cors = ", CORS: " + " ".join(options.cors_origins) if options.cors_origins else ""
    return f"nightshift api on {where}; {auth}; body cap {options.max_body_bytes} bytes{cors}"


def run(settings: Settings, options: ApiOptions) -> None:
    client = redis_client(settings)
    with reachable():
        count = store.count(client)
    client.close()
    check_exposure(options, count)
    app = create_app(settings, options)
    config = uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        log_config=log_config(settings.log_format),
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_STOP_S,
    )
    logger.info(startup_line(settings, options, count))  # after Config set the logging up
    uvicorn.Server(config).run()


def log_config(log_format: str) -> dict[str, Any]:
    """uvicorn's own, with Nightshift's lines ("nightshift.api") through its handler; with
    NIGHTSHIFT_LOG_FORMAT=json every line, access lines included, one JSON object."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["nightshift"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    if log_format == "json":
        config["formatters"] = {
            name: {"()": f"{__name__}.ApiJsonLines"} for name in ("default", "access")
        }
    return config


class ApiJsonLines(JsonLines):
    """The common JSON line; an access line also carries its request's fields, from the
    arguments uvicorn logs it with (client, method, path, HTTP version, status)."""

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        fields = super().fields(record)
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            client, method, path, _, status = args
            fields |= {"client": client, "method": method, "path": path, "status": status}
        return fields
