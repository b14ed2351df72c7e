"""Every error the API answers, in one shape: `{"error": {"code", "field", "message"}}`.

The project's error tree (config/errors.py) maps to a status by branch, the first match
winning (STATUS, as producer/cli.py maps it to exit codes); the API adds the few statuses that
exist only over HTTP (ApiError: 401, 403, 409, 413...). A 500 says nothing about its cause
(the server's log has the traceback): an unexpected error's text may hold anything.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from config.errors import (
    BrokerUnavailable,
    ErrorCode,
    InvalidInput,
    JobNotFound,
    JobNotQueued,
    NightshiftError,
    Unavailable,
    WaitTimeout,
)
from config.store import reachable
from config.store.tokens import TokenExists, UnknownToken

logger = logging.getLogger("nightshift.api")

# By the error's branch: the first match wins, so subclasses come first.
STATUS: tuple[tuple[type[NightshiftError], int], ...] = (
    (JobNotFound, 404),
    (UnknownToken, 404),
    (TokenExists, 409),
    (JobNotQueued, 409),
    (InvalidInput, 400),
    (Unavailable, 503),  # BrokerUnavailable (Redis) among them
    (WaitTimeout, 504),
    (NightshiftError, 500),
)
# Codes of the errors that only HTTP has (the others are ErrorCode values).
UNAUTHORIZED, FORBIDDEN, CONFLICT = "unauthorized", "forbidden", "conflict"
TOO_LARGE, INVALID_JSON, INVALID_INPUT = "too_large", "invalid_json", "invalid_input"
_HTTP_CODES = {404: ErrorCode.NOT_FOUND.value, 405: "method_not_allowed", 413: TOO_LARGE}


class ApiError(Exception):
    """An answer other than success that no NightshiftError stands for."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status, self.code, self.message = status, code, message
        self.field, self.headers = field, headers


def body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "field": field, "message": message}}


def response(error: ApiError) -> JSONResponse:
    content = body(error.code, error.message, error.field)
    return JSONResponse(content, status_code=error.http_status, headers=error.headers)


def from_nightshift(exc: NightshiftError) -> ApiError:
    """The API's answer for one of the project's errors: its status, its code, the field an
    InvalidInput names, and its message (the line the CLI prints)."""
    status = next(code for kind, code in STATUS if isinstance(exc, kind))
    field = exc.field if isinstance(exc, InvalidInput) else None
    message = "internal error" if status == 500 else str(exc)
    return ApiError(status, exc.code.value, message, field)


def from_validation(exc: RequestValidationError) -> ApiError:
    """FastAPI's refusal of a request (its JSON, a query parameter...): 422 for a body that is
    not JSON at all, 400 naming the field for a value of the wrong kind."""
    first = exc.errors()[0] if exc.errors() else {}
    if first.get("type") == "json_invalid":
        return ApiError(422, INVALID_JSON, "the body is not valid JSON", "body")
    loc = [str(part) for part in first.get("loc", ())]
    where = loc[0] if loc else ""
    parts = loc[1:] if where in ("body", "query", "path", "header") and len(loc) > 1 else loc
    field = ".".join(parts) or "body"
    if where == "header":
        field = field.title()  # last-event-id -> Last-Event-Id, as HTTP names it
    reason = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    if first.get("type") == "extra_forbidden":
        reason = "unknown field"
    shown = InvalidInput(field, first.get("input"), reason)  # the project's one line, value cut
    return ApiError(400, INVALID_INPUT, str(shown), field)


def install(app: FastAPI) -> None:
    """Answer every error in the one shape."""

    async def on_api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return response(exc)

    async def on_nightshift(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, NightshiftError)
        error = from_nightshift(exc)
        if error.http_status == 500:
            logger.error("request failed: %s", type(exc).__name__, exc_info=exc)
        return response(error)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return response(from_validation(exc))

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers) if exc.headers else None
        error = ApiError(exc.status_code, code, str(exc.detail), headers=headers)
        return response(error)

    async def on_redis(_: Request, exc: Exception) -> JSONResponse:
        # A Redis call outside `reachable()`: the same translation the CLI gets.
        return response(from_nightshift(unreachable(exc)))

    async def on_anything(_: Request, exc: Exception) -> JSONResponse:
        # Starlette raises it again once this answer is sent: uvicorn logs the traceback.
        return response(ApiError(500, ErrorCode.INTERNAL.value, "internal error; see the log"))

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(NightshiftError, on_nightshift)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(redis.ConnectionError, on_redis)
    app.add_exception_handler(redis.TimeoutError, on_redis)
    app.add_exception_handler(Exception, on_anything)


def unreachable(exc: Exception) -> NightshiftError:
    """A redis-py connection error or timeout as the project's BrokerUnavailable."""
    try:
        with reachable():
            raise exc
    except NightshiftError as translated:
        return translated
    return BrokerUnavailable("Redis is not reachable")  # reachable() raised: never reached
