"""Every Redis key and kombu list name Nightshift uses: the whole Redis layout, in one file.

Ours, all under `nightshift:` (TTLs in seconds, from Settings):
- `job:<id>`              string: the JobRecord as JSON, TTL record_ttl_s
- `jobs`                  sorted set: every job id, scored by created_at
- `jobs:<status>`         sorted set: the job ids of one status, scored by created_at
- `events:<id>`           pub/sub channel: every change of one job, as JSON
- `cancel:<id>`           string, TTL: a cancel of that running job is pending
- `lease:<id>`            string, TTL lease_ttl_s: a live worker holds the job's message
- `deadletter`            sorted set: job ids given up after too many attempts, by when
- `deadletter:malformed`  list, capped: messages refused at the door (raw, reason, when),
                          newest first (config/store/malformed.py)
- `metrics`               hash: job counters for Prometheus (metric name, no _total)
- `metrics:counted:<id>`  string, TTL record_ttl_s: that job is in the counters already
- `worker:<host>:<pid>`   hash: one rendering process's stats (device, load_s, rss_bytes...)
- `workers`               sorted set: `<host>:<pid>` of every rendering process, by start
- `batch:<id>`            hash: `record` (BatchRecord JSON), `total`, `reports`
- `batch:<id>:jobs`       list: the batch's job ids, in submit order
- `batch:<id>:ended`      set: the batch's job ids that have ended
- `batches`               sorted set: batch ids, by creation time
- `batch-digest:<sha>`    string: the batch a file's content was submitted as
- `paused`                string (when, epoch seconds): workers take no new jobs
- `paused:release-memory` string: and their rendering processes give their models' memory back
- `catalog:<host>:<pid>`  hash, TTL: the models that worker can load, name -> entry JSON
                          (config/store/models.py; the worker refreshes it while it lives)
- `catalogs`              set: `<host>:<pid>` of every worker that published a catalog
- `held:<host>:<pid>`     set: the model names that worker holds loaded now
- `loads:<host>:<pid>`    list, capped: that worker's recent loads (model, load_s, at), newest first
- `loras:<host>:<pid>`    hash, TTL: the LoRAs that worker can load, name -> JSON (family, hash,
                          size), published beside its catalog (config/store/models.py)
- `input:<sha256>`        string, TTL input_ttl_s: an init image or mask, as normalised PNG bytes
                          (config/store/inputs.py); refreshed by every job that names it
- `preview:<id>`          hash, TTL 60 s: a running job's newest live preview (`image`: JPEG
                          bytes, `step`, `steps`), replaced every preview_interval_s
                          (config/store/previews.py)
- `events`                stream, capped (~10,000 entries): every change of every job record
                          (created, status, progress), written by the record's own scripts; its
                          entry ids are the HTTP API's event ids (config/store/events.py)
- `api:tokens`            hash: sha256 of an API token -> JSON (name, scope, created); never the
                          token itself (config/store/tokens.py)
- `api:tokens:used`       hash: sha256 of an API token -> when it was last used (epoch seconds)
- `web:session:<sha>`     string, TTL 12 h sliding: a web app session, by the sha256 of its id ->
                          JSON (token sha256, name, scope, CSRF value) (config/store/sessions.py)
- `outbox`                stream, consumer group `senders`: notifications to deliver (event
                          id, kind, subject); deleted once delivered (config/store/outbox.py)
- `outbox:written:<event>` string, TTL record_ttl_s: that event is in the outbox already
- `batch:<id>:notified`   hash: `<event> <target key>` -> that delivery's outcome (JSON), TTL
                          record_ttl_s (config/store/batches.py; a job's are in its record)

kombu's (Celery's Redis transport; read by config/store/broker.py, written by kombu and
by producer/enqueue.py's bulk LPUSH):
- `<queue>`, `<queue>:<n>` lists: messages waiting at priority 0 and at n = 1..9
- `<queue>@<model>`, `<queue>@<model>:<n>`  the same, for the jobs of one model (model_queue);
                          the plain `<queue>` keeps messages written before models existed
- `unacked`               hash: delivered, not yet acknowledged messages (running jobs), and
                          the copy a task keeps of its own while its PNG is written behind it
                          (worker/jobs/writebehind.py); `unacked_index` the same, scored by
                          delivery time
"""

from __future__ import annotations

KEY_PREFIX = "nightshift"


def job_key(job_id: str) -> str:
    return f"{KEY_PREFIX}:job:{job_id}"


def job_channel(job_id: str) -> str:
    """Pub/sub channel on which every change of one job is announced."""
    return f"{KEY_PREFIX}:events:{job_id}"


def cancel_key(job_id: str) -> str:
    """Set while a cancel of a running job is pending; keyed by id, never stops another job."""
    return f"{KEY_PREFIX}:cancel:{job_id}"


JOBS_INDEX = f"{KEY_PREFIX}:jobs"


def status_index(status: str) -> str:
    return f"{KEY_PREFIX}:jobs:{status}"


def worker_key(hostname: str, pid: int) -> str:
    return f"{KEY_PREFIX}:worker:{hostname}:{pid}"


WORKERS_INDEX = f"{KEY_PREFIX}:workers"

# Hash of job counters for the Prometheus exporter (written by the worker after each job).
JOB_METRICS = f"{KEY_PREFIX}:metrics"


def metrics_counted_key(job_id: str) -> str:
    """Set once a finished job has been counted, so a redelivered job is not counted twice."""
    return f"{KEY_PREFIX}:metrics:counted:{job_id}"


def lease_key(job_id: str) -> str:
    """Set, with a short TTL, while a live worker holds the job's message (issue 3)."""
    return f"{KEY_PREFIX}:lease:{job_id}"


# Sorted set of job ids given up after too many attempts, scored by when (issue 3).
DEADLETTER = f"{KEY_PREFIX}:deadletter"

# List of messages the worker refused before running them (not a job, or not one it may
# run), newest first, capped (config/store/malformed.py owns it).
DEADLETTER_MALFORMED = f"{KEY_PREFIX}:deadletter:malformed"

BATCHES_INDEX = f"{KEY_PREFIX}:batches"


def batch_key(batch_id: str) -> str:
    return f"{KEY_PREFIX}:batch:{batch_id}"


def batch_jobs_key(batch_id: str) -> str:
    return f"{KEY_PREFIX}:batch:{batch_id}:jobs"


def batch_ended_key(batch_id: str) -> str:
    """When this set holds the batch's `total` ids, the morning report runs."""
    return f"{KEY_PREFIX}:batch:{batch_id}:ended"


def batch_digest_key(digest: str) -> str:
    """Makes a resubmit of the same file content idempotent."""
    return f"{KEY_PREFIX}:batch-digest:{digest}"


# Set while workers must take no new jobs (config/store/control.py owns it).
PAUSE_KEY = f"{KEY_PREFIX}:paused"
# Set with PAUSE_KEY by `nightshift pause --release-memory`; cleared by resume.
PAUSE_RELEASE_KEY = f"{KEY_PREFIX}:paused:release-memory"


def catalog_key(worker_id: str) -> str:
    """The models one worker (`<host>:<pid>`) can load, published while it lives."""
    return f"{KEY_PREFIX}:catalog:{worker_id}"


CATALOGS_INDEX = f"{KEY_PREFIX}:catalogs"


def held_key(worker_id: str) -> str:
    """The model names one worker holds loaded now."""
    return f"{KEY_PREFIX}:held:{worker_id}"


def loads_key(worker_id: str) -> str:
    """One worker's recent model loads, newest first, capped."""
    return f"{KEY_PREFIX}:loads:{worker_id}"


def loras_key(worker_id: str) -> str:
    """The LoRAs one worker can load (name -> JSON), published beside its catalog."""
    return f"{KEY_PREFIX}:loras:{worker_id}"


def input_key(input_id: str) -> str:
    """An init image or mask, by the sha256 of its bytes (config/store/inputs.py)."""
    return f"{KEY_PREFIX}:input:{input_id}"


def preview_key(job_id: str) -> str:
    """A running job's newest live preview (config/store/previews.py)."""
    return f"{KEY_PREFIX}:preview:{job_id}"


# kombu's names. config/celery_conf.py hands these two to the transport as priority_steps
# and sep, so the lists read here are the ones kombu writes.
PRIORITIES = range(10)
PRIORITY_SEP = ":"
# kombu's default unacked_key and its index (celery_conf leaves them alone).
KOMBU_UNACKED = "unacked"
KOMBU_UNACKED_INDEX = "unacked_index"


def priority_list(queue: str, priority: int) -> str:
    """kombu's Redis list for one priority level: `queue` for 0, `queue:N` otherwise."""
    return f"{queue}{PRIORITY_SEP}{priority}" if priority else queue


# Between a queue and a model in a kombu queue name. QUEUE_RE (config/schema.py) and model
# names (config/fields.py) never hold '@' or ':', so `mps@sdxl:3` parses one way only.
MODEL_SEP = "@"


def model_queue(queue: str, model: str | None) -> str:
    """The queue a job of this model goes to: `queue@model`; the plain queue for a job without
    a model (written before models existed)."""
    return f"{queue}{MODEL_SEP}{model}" if model else queue


def split_model_queue(name: str) -> tuple[str, str | None]:
    """`mps@sdxl` -> ("mps", "sdxl"); `mps` -> ("mps", None)."""
    queue, sep, model = name.partition(MODEL_SEP)
    return queue, (model if sep else None)


# The HTTP API (issue "An HTTP API with tokens"); these are ours, not kombu's.
# Every job change in order, with history: JobStore's scripts XADD here (config/store/events.py).
EVENTS_STREAM = f"{KEY_PREFIX}:events"
# API tokens by the sha256 of the token, and when each was last used (config/store/tokens.py).
API_TOKENS = f"{KEY_PREFIX}:api:tokens"
API_TOKENS_USED = f"{KEY_PREFIX}:api:tokens:used"


def web_session_key(session_digest: str) -> str:
    """A web app session, by the sha256 of its id (config/store/sessions.py)."""
    return f"{KEY_PREFIX}:web:session:{session_digest}"


# Notifications (worker/notify/): the outbox every worker's sender reads through one consumer
# group, a mark per event written (so a replayed write adds nothing), and a batch's outcomes.
OUTBOX_STREAM = f"{KEY_PREFIX}:outbox"
OUTBOX_GROUP = "senders"


def outbox_written_key(event_id: str) -> str:
    """Set with the outbox entry of that event: the same event written again adds nothing."""
    return f"{KEY_PREFIX}:outbox:written:{event_id}"


def batch_notified_key(batch_id: str) -> str:
    """The outcomes of a batch's notifications, by event and target."""
    return f"{KEY_PREFIX}:batch:{batch_id}:notified"
