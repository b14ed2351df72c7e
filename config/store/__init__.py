"""Redis, as both sides use it: one client factory, job and batch records, control flags."""

from config.store.jobs import JobStore, redis_client

__all__ = ["JobStore", "redis_client"]
