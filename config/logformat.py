"""One JSON object a line, for log shippers (NIGHTSHIFT_LOG_FORMAT=json): the shape every
Nightshift process writes. The worker adds its process role and job (worker/logs.py); the API
adds a request's fields to uvicorn's access lines (producer/api/server.py)."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any


class JsonLines(logging.Formatter):
    """time (UTC, ISO 8601), level, logger, pid, what `fields` adds, the message; a traceback
    under "exc"."""

    def format(self, record: logging.LogRecord) -> str:
        created = datetime.fromtimestamp(record.created, timezone.utc)
        line: dict[str, Any] = {
            "time": created.isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            **self.fields(record),
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        return {"pid": record.process}
