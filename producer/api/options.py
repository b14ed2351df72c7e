"""How `nightshift api` runs: where it listens, its body cap, the origins CORS lets in.

Kept free of FastAPI and uvicorn, so the command's parser (built for `--help`) imports
neither. Settings will hold these (api_host, api_port, api_max_body_bytes, api_cors_origins);
until then they are the command's flags.
"""

from __future__ import annotations

from dataclasses import dataclass

from producer.commands.flower import on_loopback  # the one answer to "this machine only?"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
# Two init images at the input cap (max_input_bytes, 16 MiB each: 21.4 MiB as base64) and
# the job around them; a batch file (16 MiB at most, producer/batches/formats.py) fits too.
MAX_BODY_BYTES = 48 * 2**20


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
