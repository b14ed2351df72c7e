"""Expiry times from the command line and from batch files: `30m`, `8h`, `2d`, or an ISO time.

Its own module so that `nightshift submit --expires` does not import the batch-file parser.
"""

from __future__ import annotations

import re
from datetime import datetime

from config.errors import InvalidInput

# Matched whole, ASCII digits only (\d takes '٣' too), and short: float('9' * 400) is inf.
DURATION_RE = re.compile(r"\s*([0-9]{1,9}(?:\.[0-9]{1,9})?)\s*([smhd]?)\s*")
UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_expiry(text: str, now: float, field_name: str = "expires") -> float:
    """A duration from now ("90s", "30m", "8h", "2d", bare seconds) or an ISO local time."""
    if match := DURATION_RE.fullmatch(text):
        return now + float(match[1]) * UNIT_S[match[2]]
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except (ValueError, OverflowError, OSError):  # the last two: mktime out of range
        raise InvalidInput(field_name, text, "use 30m, 8h, 2d or an ISO time") from None
