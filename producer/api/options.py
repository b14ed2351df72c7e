"""How `nightshift api` runs: where it listens, its body cap, the origins CORS lets in.

Kept free of FastAPI and uvicorn, so the command's parser (built for `--help`) imports
neither. The command's flags fall back to the settings (api_host, api_port,
api_max_body_bytes, api_cors_origins: producer/commands/api.py), whose defaults are these.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import Settings
from producer.commands.flower import on_loopback  # the one answer to "this machine only?"

# One source for each default: the settings' (the body cap's why is written there).
_FIELDS = Settings.model_fields
DEFAULT_HOST: str = _FIELDS["api_host"].default
DEFAULT_PORT: int = _FIELDS["api_port"].default
MAX_BODY_BYTES: int = _FIELDS["api_max_body_bytes"].default


@dataclass(frozen=True)
class ApiOptions:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_body_bytes: int = MAX_BODY_BYTES
    cors_origins: tuple[str, ...] = ()

    @property
    def loopback(self) -> bool:
        """Whether only this machine can reach the server: then, while no token exists,
        requests need none (producer/api/auth.py)."""
        return on_loopback(self.host)
