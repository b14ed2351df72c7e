"""The Redis layout against a real redis-server: old records still read, scripts run by EVALSHA, the
pause flag and the broker's lists.
"""

from __future__ import annotations

from config import keys as names
from config.settings import Settings
from config.store import JobStore, batches, control, redis_client, scripts
from config.store.broker import queue_depths, work_waiting

OLD_RECORD = (
    '{"spec":{"id":"old-1","prompt":"a lighthouse at dusk","negative_prompt":"","seed":7,'
    '"steps":4,"width":512,"height":512,"guidance":7.5,"images":1,"scheduler":null,'
    '"priority":3,"queue":"mps","batch_id":null,"created_at":1700000000.0,"expires_at":null},'
    '"status":"succeeded","created_at":1700000000.0,"started_at":1700000010.0,'
    '"finished_at":1700000040.0,"queue_wait_s":10.0,"render_s":30.0,"outputs":["old-1/0.png"],'
    '"error":null,"attempts":1,"progress":{},"render":{"worker":"","pid":0,"device":"",'
    '"dtype":"","model":"","sampler":"","attention_slicing":false,"retried_safer":false,'
    '"nsfw":[],"memory_action":"","memory_mb":{}}}'
)


def test_a_record_written_in_the_old_layout_still_reads_and_updates(settings: Settings) -> None:
    store = JobStore.from_settings(settings)
    store.redis.set("nightshift:job:old-1", OLD_RECORD)
    store.redis.zadd("nightshift:jobs:succeeded", {"old-1": 1700000000.0})

    record = store.get("old-1")
    assert (record.id, record.status.value) == ("old-1", "succeeded")
    assert record.outputs == ["old-1/0.png"]

    store.update("old-1", lambda r: setattr(r, "attempts", 2))
    assert store.redis.type("nightshift:job:old-1") == "string"
    assert store.get("old-1").attempts == 2
    assert store.redis.zscore("nightshift:jobs:succeeded", "old-1") == 1700000000.0


def test_a_batch_in_the_old_layout_ends_exactly_once(settings: Settings) -> None:
    client = redis_client(settings)
    client.hset("nightshift:batch:b1", mapping={"total": 2, "reports": 0})
    client.rpush("nightshift:batch:b1:jobs", "j1", "j2")

    ended = [batches.note_job_ended(client, "b1", job, 60) for job in ("j1", "j1", "j2", "j2")]

    assert ended == [False, False, True, False]
    assert batches.report_count(client, "b1") == 1
    assert client.smembers("nightshift:batch:b1:ended") == {"j1", "j2"}
    assert 0 < client.ttl("nightshift:batch:b1:ended") <= 60
    assert batches.job_ids(client, "b1") == ["j1", "j2"]


def test_a_finished_job_is_counted_once_through_evalsha(settings: Settings) -> None:
    from worker.hooks.metrics import count_job

    store = JobStore.from_settings(settings)
    store.redis.set("nightshift:job:old-1", OLD_RECORD)
    store.redis.config_resetstat()
    record = store.get("old-1")

    assert [count_job(store.redis, settings, record) for _ in range(2)] == [True, False]

    assert store.redis.hget("nightshift:metrics", "images") == "1"
    assert store.redis.hget("nightshift:metrics", "jobs_finished:succeeded") == "1"
    stats = store.redis.info("commandstats")
    assert "cmdstat_eval" not in stats
    assert stats["cmdstat_evalsha"]["calls"] >= 2
    assert store.redis.script_exists(scripts.for_client(store.redis).count_once.sha) == [True]


def test_a_flushed_script_cache_is_reloaded_on_the_next_call(settings: Settings) -> None:
    client = redis_client(settings)
    count_once = scripts.for_client(client).count_once
    keys = [names.metrics_counted_key("j"), names.JOB_METRICS]
    assert count_once(keys=keys, args=[60, "started", 1]) == 1
    client.script_flush()

    assert count_once(keys=[names.metrics_counted_key("k"), names.JOB_METRICS], args=[60]) == 1
    assert scripts.for_client(client) is scripts.for_client(client)


def test_pause_resume_and_is_paused_share_one_flag(settings: Settings) -> None:
    client = redis_client(settings)
    assert not control.is_paused(client)

    control.pause(client, now=1700000000.0)
    assert control.is_paused(client)
    assert client.get("nightshift:paused") == "1700000000.0"

    assert control.resume(client) is True
    assert control.resume(client) is False
    assert not control.is_paused(client)


def test_queue_depths_read_every_priority_list_and_work_waiting_sees_unacked(
    settings: Settings,
) -> None:
    client = redis_client(settings)
    client.rpush("mps", "a")
    client.rpush("mps:7", "b", "c")
    depths = queue_depths(client, ["mps"])
    assert (depths[("mps", 0)], depths[("mps", 7)], sum(depths.values())) == (1, 2, 3)

    client.delete("mps", "mps:7")
    assert not work_waiting(client, ["mps"])
    client.hset("unacked", "tag", "a job being rendered")
    assert work_waiting(client, ["mps"])
