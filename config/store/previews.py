"""Live previews: a running job's newest small picture, in Redis for a minute.

The worker (worker/jobs/run.py's ProgressReporter) replaces it every preview_interval_s;
the API serves it (GET /v1/jobs/{id}/preview, /sdapi/v1/progress's current_image). It is a
hash beside the record, never in the record or the event stream: those are read by every
listener, a picture only by who asks for it. The record's progress carries the step the
preview shows (`preview`), so an event says when there is a new one. Keys: config/keys.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from redis.client import NEVER_DECODE

from config import keys as names

# Long enough to outlive a slow step between two previews, short enough that a finished
# job's last preview is gone soon after: nothing deletes it.
TTL_S = 60
MEDIA_TYPE = "image/jpeg"  # worker/render/preview.py encodes


@dataclass(frozen=True)
class Preview:
    image: bytes  # MEDIA_TYPE
    step: int
    steps: int


def put(client: redis.Redis, job_id: str, preview: Preview) -> None:
    """Replace the job's preview (the TTL restarts), in one round trip."""
    key = names.preview_key(job_id)
    pipe = client.pipeline(transaction=True)
    pipe.hset(key, mapping={"image": preview.image, "step": preview.step, "steps": preview.steps})
    pipe.expire(key, TTL_S)
    pipe.execute()


def get(client: redis.Redis, job_id: str) -> Preview | None:
    """The job's newest preview, or None. Any client will do: the reply is read as bytes
    (NEVER_DECODE), so the API's UTF-8 client reads JPEG bytes too."""
    key = names.preview_key(job_id)
    reply = client.execute_command("HMGET", key, "image", "step", "steps", **{NEVER_DECODE: []})
    image, step, steps = reply
    if image is None or step is None:
        return None
    return Preview(bytes(image), int(step), int(steps or 0))
