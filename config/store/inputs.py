"""The input store: init images and masks, by content hash, in Redis.

Producers put the normalised PNG bytes (config/images.py) under `input:<sha256>` and the job
carries only the hash, so a worker on another machine gets the bytes through the Redis it
already talks to, and never opens a path on a producer's behalf. The same picture submitted
twice is stored once. Each job that names an input refreshes its TTL (input_ttl_s, a week by
default); the worker also keeps a copy under `<results>/inputs/<sha256>.png`
(worker/jobs/inputs.py), so a result stays traceable to its input after Redis forgot it.
Keys: config/keys.py.
"""

from __future__ import annotations

import redis

from config import keys as names
from config.images import InputImage


def put(client: redis.Redis, image: InputImage, ttl_s: int) -> str:
    """Store an input (again: the TTL restarts); returns its id."""
    client.set(names.input_key(image.id), image.data, ex=ttl_s)
    return image.id


def touch(client: redis.Redis, input_ids: list[str], ttl_s: int) -> list[str]:
    """Restart the TTL of inputs a new job names; returns the ids no longer stored."""
    pipe = client.pipeline(transaction=False)
    for input_id in input_ids:
        pipe.expire(names.input_key(input_id), ttl_s)
    return [i for i, ok in zip(input_ids, pipe.execute(), strict=True) if not ok]


def get(client: redis.Redis, input_id: str) -> bytes | None:
    """An input's bytes, or None when the store no longer has it. `client` must be a binary
    one (redis_client(settings, binary=True)): PNG bytes are not UTF-8."""
    data = client.get(names.input_key(input_id))
    if data is not None and not isinstance(data, bytes):
        raise TypeError("the input store needs a client made with binary=True")
    return data
