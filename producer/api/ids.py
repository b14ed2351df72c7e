"""Batch ids from a request, checked before the store sees them.

The store reads `batch:<id>` as a hash: an id holding ':' could name another key of another
type (`x:jobs` is a list) and make Redis answer an error instead of "no such batch". So an id
not shaped as the schema makes them (JOB_ID_RE) is unknown at once, and the store's refusal
of an unknown one (InvalidInput naming `batch_id`) is a 404 naming the request's own field.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from config.errors import ErrorCode, InvalidInput
from config.schema import JOB_ID_RE
from producer.api.errors import ApiError


@contextmanager
def batch_lookup(batch_id: str | None, field: str = "batch_id") -> Iterator[None]:
    """Around the store calls for one batch (None: no batch, nothing to check)."""
    if batch_id is None:
        yield
        return
    not_found = ErrorCode.NOT_FOUND.value
    if not JOB_ID_RE.fullmatch(batch_id):
        message = f"{field}: no such batch (got {batch_id[:80]!r})"
        raise ApiError(404, not_found, message, field)
    try:
        yield
    except InvalidInput as exc:
        if exc.field != "batch_id":
            raise
        raise ApiError(404, not_found, f"{field}: {exc.reason} (got {batch_id!r})", field) from None
