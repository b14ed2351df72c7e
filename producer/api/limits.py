"""The request body cap: 413 past max_bytes, told by Content-Length or counted as it streams.

An ASGI middleware, ahead of FastAPI: the body is read here, up to the cap, before any route
(or FastAPI's JSON parsing) sees a byte, then handed on whole. A body sent without a length
(chunked) is counted as it arrives and refused the moment it passes the cap, so a client
cannot make the server hold more than max_bytes of it, whatever it announces.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from producer.api.errors import TOO_LARGE, ApiError, response
from producer.api.options import MAX_BODY_BYTES


class BodyLimit:
    """Refuse, with 413 in the API's error shape, a request body over max_bytes."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        announced = _content_length(scope)
        if announced is not None and announced > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"the request body is larger than {self.max_bytes} bytes"
        error = response(ApiError(413, TOO_LARGE, message, "body", {"Connection": "close"}))
        await error(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before we see it
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body in one message, then whatever the client sends next (its disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
