"""The overnight window: local times between which a worker takes jobs.

Parsed where the settings are read, so a bad NIGHTSHIFT_WORKER_WINDOW stops a worker at
start-up instead of in its gate, and the CLI's --window flag is checked the same way.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from config.errors import InvalidSettings

_WINDOW_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
WINDOW_HELP = "use HH:MM-HH:MM in local time, e.g. 22:00-07:00"


@dataclass(frozen=True)
class Window:
    """Minutes after local midnight; start > end means the window wraps past midnight."""

    start_min: int
    end_min: int

    @classmethod
    def parse(cls, text: str) -> Window | None:
        """Parse "HH:MM-HH:MM"; "" (always open) is None; anything else is refused."""
        if not text.strip():
            return None
        match = _WINDOW_RE.match(text)
        h1, m1, h2, m2 = (int(g) for g in match.groups()) if match else (99, 0, 0, 0)
        if max(h1, h2) > 23 or max(m1, m2) > 59:
            raise InvalidSettings("NIGHTSHIFT_WORKER_WINDOW", text, WINDOW_HELP)
        return cls(h1 * 60 + m1, h2 * 60 + m2)

    def contains(self, local: time.struct_time) -> bool:
        now = local.tm_hour * 60 + local.tm_min
        if self.start_min <= self.end_min:
            return self.start_min <= now < self.end_min
        return now >= self.start_min or now < self.end_min
