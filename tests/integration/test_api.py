"""The HTTP API (`nightshift api`) against a real server process, a real worker and Redis.

One API server and one worker (the tiny model on the CPU) serve the whole module: they start
once, with tokens of each scope made by the real `nightshift token create`. The server runs
with a 64 KiB body cap, so the 413s cost nothing to provoke. The local default and Redis
going away need a server of their own, on a Redis of their own (with a password): the last
tests. The last of all reads the server's log for secrets.
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from api_servers import (
    SCOPES,
    ApiProcess,
    api_running,
    made_tokens,
    module_settings,
    worker_running,
)
from conftest import WorkerProcess
from helpers import nightshift, redis_server_with

from config import keys as names
from config.settings import Settings
from config.store.events import lost_after as events_lost_after
from producer.local_redis import LocalRedis, free_port

BODY_CAP = 64 * 1024
# Tiny renders: on a busy 2-core machine a step of the tiny model can take a second.
SMALL_JOB = {"steps": 2, "width": 64, "height": 64}


@pytest.fixture(scope="module")
def api_settings(
    redis_server: LocalRedis, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    folder = tmp_path_factory.mktemp("api")
    # gate_poll_s: a pause holds the worker within a tenth of a second.
    return module_settings(
        redis_server, tiny_model, folder, "api", default_steps=4, gate_poll_s=0.1
    )


@pytest.fixture(scope="module")
def tokens(api_settings: Settings) -> dict[str, str]:
    return made_tokens(api_settings, "test")


@pytest.fixture(scope="module")
def api(
    api_settings: Settings, tokens: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcess]:
    log = tmp_path_factory.mktemp("api-log") / "api.log"
    with api_running(api_settings, log, "--max-body-bytes", str(BODY_CAP)) as server:
        yield server


@pytest.fixture(scope="module")
def api_worker(
    api_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    with worker_running(api_settings, tmp_path_factory.mktemp("worker") / "worker.log") as w:
        yield w


@pytest.fixture(scope="module")
def http(api: ApiProcess, tokens: dict[str, str]) -> Iterator[dict[str, httpx.Client]]:
    """A client per scope, and `none` (no credentials)."""
    clients = {"none": httpx.Client(base_url=api.url, timeout=30)}
    for scope, token in tokens.items():
        headers = {"Authorization": f"Bearer {token}"}
        clients[scope] = httpx.Client(base_url=api.url, timeout=30, headers=headers)
    yield clients
    for client in clients.values():
        client.close()


def sse(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The events of an open SSE response: {"event", "id", "data"}, data parsed."""
    event: dict[str, Any] = {}
    for line in response.iter_lines():
        if not line:
            if "event" in event:
                yield event
            event = {}
        elif line.startswith("event: "):
            event["event"] = line[7:]
        elif line.startswith("id: "):
            event["id"] = line[4:]
        elif line.startswith("data: "):
            event["data"] = json.loads(line[6:])


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "field", "message"}, body
    return body["error"]


def wait_finished(client: httpx.Client, job_id: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job['status']}")


def wait_idle(client: httpx.Client, timeout_s: float = 120) -> None:
    """Until no job is queued or running."""
    deadline = time.monotonic() + timeout_s
    while any(
        client.get("/v1/jobs", params={"status": s, "limit": 1}).json()["jobs"]
        for s in ("queued", "started")
    ):
        assert time.monotonic() < deadline, "jobs still queued or running"
        time.sleep(0.1)


def stream_entries(settings: Settings, job_id: str, after: str) -> list[tuple[str, str]]:
    """(id, kind) of the job's entries in the event stream after `after`, as Redis has them."""
    r = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    ms, seq = after.split("-")
    start = f"{ms}-{int(seq) + 1}"
    return [
        (i, f["kind"]) for i, f in r.xrange(names.EVENTS_STREAM, min=start) if f["job"] == job_id
    ]


def png_bytes(size: tuple[int, int] = (64, 64)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(out, format="PNG")
    return out.getvalue()


# --- a job from submit to image ---------------------------------------------------------------


def test_submit_then_follow_its_events_to_the_end_and_download_the_image(
    api: ApiProcess, api_worker: WorkerProcess, http: dict[str, httpx.Client]
) -> None:
    body = {"prompt": "a red fox", **SMALL_JOB, "steps": 6, "seed": 7}
    made = http["submit"].post("/v1/jobs", json=body)
    assert made.status_code == 201, made.text
    job = made.json()
    assert made.headers["location"] == f"/v1/jobs/{job['id']}"
    assert (job["status"], job["spec"]["seed"], job["spec"]["steps"]) == ("queued", 7, 6)

    with http["read"].stream("GET", f"/v1/jobs/{job['id']}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        seen = list(sse(response))  # the stream ends by itself when the job does

    assert seen[0]["event"] == "record" and seen[0]["data"]["id"] == job["id"]
    kinds = [e["event"] for e in seen[1:]]
    assert kinds[-1] == "finished" and seen[-1]["data"]["status"] == "succeeded"
    assert "progress" in kinds, kinds
    steps = [e["data"]["progress"]["step"] for e in seen if e["event"] == "progress"]
    assert steps == sorted(steps)
    assert all(e["data"]["id"] == job["id"] for e in seen[1:])

    done = http["read"].get(f"/v1/jobs/{job['id']}").json()
    assert done["links"]["images"] == [f"/v1/jobs/{job['id']}/images/0.png"]
    image = http["read"].get(done["links"]["images"][0])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content == Path(done["outputs"][0]).read_bytes()
    missing = http["read"].get(f"/v1/jobs/{job['id']}/images/1.png")
    assert missing.status_code == 404 and error_of(missing)["field"] == "n"
    assert http["read"].get(f"/v1/jobs/{job['id']}/images/-1.png").status_code == 404


def test_an_img2img_job_takes_its_image_as_base64(
    api: ApiProcess, api_worker: WorkerProcess, http: dict[str, httpx.Client]
) -> None:
    image = base64.b64encode(png_bytes()).decode()
    made = http["submit"].post(
        "/v1/jobs",
        json={"prompt": "the same, bluer", "init_image": image, "strength": 0.5, "steps": 2},
    )
    assert made.status_code == 201, made.text
    spec = made.json()["spec"]
    assert len(spec["init_image"]) == 64 and (spec["width"], spec["height"]) == (64, 64)
    # The input's id names the stored input: sending it again needs no upload.
    # (An id carries no size: the job gives its own, or gets the model's.)
    again = http["submit"].post(
        "/v1/jobs",
        json={"prompt": "again", "init_image": spec["init_image"], "strength": 0.5, **SMALL_JOB},
    )
    assert again.status_code == 201 and again.json()["spec"]["init_image"] == spec["init_image"]
    for job in (made.json(), again.json()):
        assert wait_finished(http["read"], job["id"])["status"] == "succeeded"


# --- every error status -----------------------------------------------------------------------


def test_bad_input_is_400_naming_the_field_and_broken_json_is_422(
    api: ApiProcess, http: dict[str, httpx.Client]
) -> None:
    client = http["submit"]
    cases = [
        ({"prompt": "x", "steps": 0}, "steps", "invalid_job"),
        ({"prompt": "x", "steps": "4"}, "steps", "invalid_input"),
        ({"prompt": "x", "colour": "red"}, "colour", "invalid_input"),
        ({"prompt": "x", "model": "nope"}, "model", "invalid_job"),
        ({"prompt": "x", "init_image": "!!not base64!!"}, "init_image", "invalid_job"),
        (
            {"prompt": "x", "init_image": base64.b64encode(b"GIF89a...").decode()},
            "init_image",
            "invalid_job",
        ),
        ({"prompt": "x", "mask": base64.b64encode(png_bytes()).decode()}, "mask", "invalid_job"),
        ({"steps": 4}, "prompt", "invalid_input"),
    ]
    for body, field, code in cases:
        response = client.post("/v1/jobs", json=body)
        assert response.status_code == 400, (body, response.text)
        error = error_of(response)
        assert (error["field"], error["code"]) == (field, code), (body, error)
        assert error["message"].startswith(f"{field}: "), error

    broken = client.post("/v1/jobs", content=b'{"prompt": "x",', headers=_json())
    assert broken.status_code == 422 and error_of(broken)["code"] == "invalid_json"
    for query, field in [("limit=0", "limit"), ("cursor=bogus", "cursor"), ("status=x", "status")]:
        response = http["read"].get(f"/v1/jobs?{query}")
        assert response.status_code == 400 and error_of(response)["field"] == field, query
    bad_id = http["read"].get("/v1/events", headers={"Last-Event-ID": "yesterday"})
    assert bad_id.status_code == 400 and error_of(bad_id)["field"] == "Last-Event-ID"


def test_unknown_jobs_and_batches_are_404(api: ApiProcess, http: dict[str, httpx.Client]) -> None:
    for method, path in [
        ("GET", "/v1/jobs/nope"),
        ("POST", "/v1/jobs/nope/cancel"),
        ("GET", "/v1/jobs/nope/events"),
        ("GET", "/v1/jobs/nope/images/0.png"),
        ("GET", "/v1/batches/nope"),
        ("GET", "/v1/batches/a:b"),  # not even shaped like an id
        ("POST", "/v1/batches/nope/cancel"),
        ("GET", "/v1/no-such-route"),
        ("GET", "/v1/jobs?batch=nope"),
        ("GET", "/v1/jobs?batch=x:jobs"),
    ]:
        response = http["admin"].request(method, path)
        assert response.status_code == 404, (path, response.text)
        assert error_of(response)["code"] == "not_found"


def test_cancelling_a_job_that_succeeded_is_a_409_conflict(
    api: ApiProcess, api_worker: WorkerProcess, http: dict[str, httpx.Client]
) -> None:
    job = http["submit"].post("/v1/jobs", json={"prompt": "done soon", **SMALL_JOB}).json()
    assert wait_finished(http["read"], job["id"])["status"] == "succeeded"

    response = http["submit"].post(f"/v1/jobs/{job['id']}/cancel")

    assert response.status_code == 409
    assert error_of(response) == {
        "code": "conflict",
        "field": None,
        "message": f"job {job['id']}: already succeeded: nothing to cancel",
    }


def test_a_body_over_the_cap_is_413_announced_or_streamed(
    api: ApiProcess, http: dict[str, httpx.Client]
) -> None:
    prompt = "x" * (BODY_CAP + 1)
    announced = http["submit"].post("/v1/jobs", json={"prompt": prompt})
    assert announced.status_code == 413 and error_of(announced)["code"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"prompt": "'
        for _ in range(BODY_CAP // 1024 + 1):
            yield b"y" * 1024
        yield b'"}'

    streamed = http["submit"].post("/v1/jobs", content=chunks(), headers=_json())
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413 and error_of(streamed)["field"] == "body"
    # Just under the cap goes through to validation (here: the prompt's own limit).
    under = http["submit"].post("/v1/jobs", json={"prompt": "z" * (BODY_CAP - 100)})
    assert under.status_code == 400 and error_of(under)["field"] == "prompt"


# --- tokens and scopes ------------------------------------------------------------------------


def test_each_scope_may_do_what_it_says_and_nothing_more(
    api: ApiProcess, api_worker: WorkerProcess, http: dict[str, httpx.Client]
) -> None:
    calls = {
        "read": ("GET", "/v1/queue", None),
        "submit": ("POST", "/v1/jobs", {"prompt": "scoped", **SMALL_JOB}),
        "admin": ("POST", "/v1/queue/resume", None),
    }
    for holder in ("none", *SCOPES):
        for needed, (method, path, body) in calls.items():
            response = http[holder].request(method, path, json=body)
            if holder == "none":
                expected = 401
            elif SCOPES.index(holder) >= SCOPES.index(needed):
                expected = 201 if method == "POST" and path == "/v1/jobs" else 200
            else:
                expected = 403
            assert response.status_code == expected, (holder, path, response.text)
            if expected == 401:
                assert response.headers["www-authenticate"].startswith("Bearer")
                assert error_of(response)["code"] == "unauthorized"
            if expected == 403:
                assert error_of(response)["code"] == "forbidden"

    wrong = httpx.get(f"{api.url}/v1/queue", headers={"Authorization": "Bearer nst_x"}, timeout=30)
    assert wrong.status_code == 401


def test_basic_auth_takes_the_token_as_its_password(
    api: ApiProcess, tokens: dict[str, str]
) -> None:
    ok = httpx.get(f"{api.url}/v1/queue", auth=("anyone", tokens["read"]), timeout=30)
    assert ok.status_code == 200
    assert (
        httpx.get(f"{api.url}/v1/queue", auth=(tokens["read"], ""), timeout=30).status_code == 401
    )


def test_tokens_made_over_http_work_until_revoked_and_are_never_shown_again(
    api: ApiProcess, api_settings: Settings, http: dict[str, httpx.Client]
) -> None:
    made = http["admin"].post("/v1/tokens", json={"name": "temp", "scope": "read"})
    assert made.status_code == 201
    token = made.json()["token"]
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {token}"}) as temp:
        assert temp.get("/v1/queue").status_code == 200
        listed = http["admin"].get("/v1/tokens")
        assert "temp" in [t["name"] for t in listed.json()["tokens"]]
        assert token not in listed.text and "nst_" not in listed.text
        twice = http["admin"].post("/v1/tokens", json={"name": "temp", "scope": "read"})
        assert twice.status_code == 409 and error_of(twice)["field"] == "name"

        assert http["admin"].delete("/v1/tokens/temp").status_code == 204
        assert temp.get("/v1/queue").status_code == 401
    assert http["admin"].delete("/v1/tokens/temp").status_code == 404
    cli = nightshift(api_settings, "token", "list")
    assert cli.returncode == 0 and "test-admin" in cli.stdout and "nst_" not in cli.stdout
    # Only digests are stored.
    r = redis.Redis.from_url(api_settings.redis_url, decode_responses=True)
    stored = json.dumps(r.hgetall(names.API_TOKENS))
    assert token not in stored


def test_two_tokens_of_one_name_made_at_once_make_one(api_settings: Settings) -> None:
    from config.store import redis_client
    from config.store import tokens as store

    outcomes: list[str] = []

    def make() -> None:
        try:
            store.create(redis_client(api_settings), "race", "read")
            outcomes.append("made")
        except store.TokenExists:
            outcomes.append("exists")

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    client = redis_client(api_settings)
    try:
        assert sorted(outcomes) == ["exists"] * 7 + ["made"]
        assert [t.name for t in store.list_tokens(client)].count("race") == 1
    finally:
        store.revoke(client, "race")


def test_a_cross_origin_write_from_a_browser_is_refused(
    api: ApiProcess, http: dict[str, httpx.Client]
) -> None:
    response = http["admin"].post(
        "/v1/queue/resume", headers={"Origin": "https://elsewhere.example"}
    )
    assert response.status_code == 403 and error_of(response)["field"] == "Origin"
    assert "access-control-allow-origin" not in response.headers  # CORS is off


# --- live events ------------------------------------------------------------------------------


def test_a_client_that_reconnects_with_last_event_id_misses_no_event(
    api: ApiProcess,
    api_settings: Settings,
    api_worker: WorkerProcess,
    http: dict[str, httpx.Client],
) -> None:
    # Paused, so the job cannot start (and end) before the client is there to see it start.
    assert http["admin"].post("/v1/queue/pause").status_code == 200
    time.sleep(0.5)  # the worker's gate notices the pause (gate_poll_s)
    try:
        body = {"prompt": "a long one", **SMALL_JOB, "steps": 8}
        job = http["submit"].post("/v1/jobs", json=body).json()
        path = f"/v1/jobs/{job['id']}/events"
        with http["read"].stream("GET", path) as response:
            events = sse(response)
            first = [next(events)]  # the record: queued
            http["admin"].post("/v1/queue/resume")
            first.append(next(events))  # the first change: it started. The client leaves.
    finally:
        http["admin"].post("/v1/queue/resume")
    assert [e["event"] for e in first] == ["record", "status"]
    assert first[1]["data"]["status"] == "started"
    opened_at = first[0]["id"]  # the record's id: where this client's history starts
    last_id = first[-1]["id"]
    wait_finished(http["read"], job["id"])  # everything after last_id happens while away

    with http["read"].stream("GET", path, headers={"Last-Event-ID": last_id}) as response:
        second = list(sse(response))

    assert second[0]["event"] == "record" and "id" not in second[0]
    assert second[0]["data"]["status"] == "succeeded"
    received = [(e["id"], e["event"]) for e in first[1:] + second[1:]]
    entries = stream_entries(api_settings, job["id"], opened_at)
    # The stream ends with the job; what is written after (the worker's memory note) is not
    # the job's story any more.
    end = [kind for _, kind in entries].index("finished")
    assert received == entries[: end + 1]
    assert len(second) >= 2 and received[-1][1] == "finished"  # the end came while away

    # Reconnecting after the end: the record, what followed the end, and the stream closes.
    with http["read"].stream("GET", path, headers={"Last-Event-ID": received[-1][0]}) as r:
        after_end = [(e.get("id"), e["event"]) for e in sse(r)]
    assert after_end == [(None, "record"), *entries[end + 1 :]]


def test_the_queue_stream_shows_every_job_from_creation_to_its_end(
    api: ApiProcess, api_worker: WorkerProcess, http: dict[str, httpx.Client]
) -> None:
    seen: list[dict[str, Any]] = []
    job_ids: list[str] = []
    opened = threading.Event()

    def listen() -> None:
        with http["read"].stream("GET", "/v1/events") as response:
            for event in sse(response):
                seen.append(event)
                opened.set()
                data = event["data"]
                if job_ids and data.get("id") == job_ids[0] and event["event"] == "finished":
                    return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert opened.wait(30) and seen[0]["event"] == "open"
    job_ids.append(http["submit"].post("/v1/jobs", json={"prompt": "q", **SMALL_JOB}).json()["id"])
    thread.join(120)

    mine = [e["event"] for e in seen if e["data"].get("id") == job_ids[0]]
    assert mine[0] == "created" and mine[-1] == "finished" and "status" in mine
    ids = [e["id"] for e in seen]
    assert ids == sorted(ids, key=lambda i: tuple(int(p) for p in i.split("-")))


def test_a_client_resuming_from_what_was_trimmed_is_told_of_the_gap(
    api: ApiProcess, api_settings: Settings, http: dict[str, httpx.Client]
) -> None:
    wait_idle(http["read"])
    time.sleep(1)  # and the worker's note after its last job (an `update`) is written
    r = redis.Redis.from_url(api_settings.redis_url, decode_responses=True)
    oldest = r.xrange(names.EVENTS_STREAM, count=1)[0][0]
    r.xtrim(names.EVENTS_STREAM, maxlen=0, approximate=False)  # MAXLEN's doing, to them all
    assert r.xlen(names.EVENTS_STREAM) == 0
    newest = r.xinfo_stream(names.EVENTS_STREAM)["last-generated-id"]  # gone too

    # A short read timeout: without the gap event the stream would wait for the next change.
    short = httpx.Timeout(30, read=10)
    headers = {"Last-Event-ID": oldest}
    with http["read"].stream("GET", "/v1/events", headers=headers, timeout=short) as response:
        events = sse(response)
        opened, gap = next(events), next(events)

    assert opened["event"] == "open" and "id" not in opened  # the client's own id stands
    assert gap["event"] == "gap" and gap["data"]["since"] == oldest and "id" not in gap
    # A client that had seen the newest one lost nothing, though every entry is gone.
    assert events_lost_after(r, oldest) and not events_lost_after(r, newest)


# --- batches, the queue, listing --------------------------------------------------------------

BATCH = """\
name: api-cats
defaults: {steps: 2, width: 64, height: 64}
prompts: [a cat, a dog, a fox]
seeds: 1-2
"""


def test_a_batch_file_is_submitted_listed_cancelled_retried_and_paged(
    api: ApiProcess, api_worker: WorkerProcess, http: dict[str, httpx.Client]
) -> None:
    admin, submit = http["admin"], http["submit"]
    assert admin.post("/v1/queue/pause").json()["paused"] is True
    time.sleep(0.5)  # the worker's gate notices the pause (gate_poll_s)
    try:
        dry = submit.post("/v1/batches?format=yaml&dry_run=true", content=BATCH)
        assert dry.status_code == 200 and dry.json()["jobs"] == 6
        assert len(dry.json()["sample"]) == 5
        nameless = submit.post("/v1/batches", content=BATCH)  # no format, no Content-Type
        assert nameless.status_code == 400 and error_of(nameless)["field"] == "format"

        made = submit.post("/v1/batches", content=BATCH, headers={"Content-Type": "text/yaml"})
        assert made.status_code == 201, made.text
        batch_id = made.json()["batch_id"]
        assert made.json()["enqueued"] == 6 and batch_id.startswith("api-cats-")
        again = submit.post("/v1/batches?format=yaml", content=BATCH)
        assert again.status_code == 200 and again.json()["existing"] is True
        assert again.json()["batch_id"] == batch_id

        assert batch_id in [b["id"] for b in http["read"].get("/v1/batches").json()["batches"]]
        status = http["read"].get(f"/v1/batches/{batch_id}").json()
        assert status["counts"]["queued"] == 6 and status["done"] is False
        depth = http["read"].get("/v1/queue").json()
        assert depth["paused"] is True and depth["by_priority"]["7"] >= 6

        pages, cursor = [], None
        while True:
            query = f"/v1/jobs?batch={batch_id}&limit=4" + (f"&cursor={cursor}" if cursor else "")
            page = http["read"].get(query).json()
            pages.append([j["id"] for j in page["jobs"]])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        listed = [i for p in pages for i in p]
        assert sorted(listed) == sorted(f"{batch_id}-{n:05d}" for n in range(1, 7))
        assert len(pages[0]) == 4

        assert submit.post(f"/v1/batches/{batch_id}/cancel").json() == {"outcome": {"cancelled": 6}}
        refused = submit.post(f"/v1/batches/{batch_id}/retry?cancelled=true")
        assert refused.status_code == 403
        retried = admin.post(f"/v1/batches/{batch_id}/retry?cancelled=true")
        assert retried.json() == {"requeued": 6}
    finally:
        assert admin.post("/v1/queue/resume").json()["paused"] is False
    deadline = time.monotonic() + 120
    while not http["read"].get(f"/v1/batches/{batch_id}").json()["done"]:
        assert time.monotonic() < deadline, "the retried batch did not finish"
        time.sleep(0.2)
    assert http["read"].get(f"/v1/batches/{batch_id}").json()["counts"]["succeeded"] == 6
    check_the_morning_report_is_served(http["read"], batch_id, images=6)


def check_the_morning_report_is_served(read: httpx.Client, batch_id: str, images: int) -> None:
    """Its page (with a policy that lets it fetch nothing), sheet, manifest and thumbnails;
    nothing else from the folder, nothing outside it."""
    base = f"/v1/batches/{batch_id}/report"
    # The cancel ended every job once (a report without images), the retry ended them again:
    # the batch counts a report when it starts writing it, so wait for the page itself.
    deadline = time.monotonic() + 60
    while True:
        page = read.get(f"{base}/index.html")
        thumbs = re.findall(r"src='(thumbs/[^']+)'", page.text)
        if page.status_code == 200 and len(thumbs) == images:
            break
        assert time.monotonic() < deadline, f"no report with {images} images: {page.status_code}"
        time.sleep(0.2)
    assert page.headers["content-type"].startswith("text/html")
    assert "connect-src 'none'" in page.headers["content-security-policy"]
    assert read.get(f"{base}/{thumbs[0]}").headers["content-type"] == "image/jpeg"
    assert read.get(f"{base}/contact-sheet.png").content.startswith(b"\x89PNG")
    assert len(read.get(f"{base}/manifest.jsonl").text.splitlines()) == 6
    for name in ("../../../etc/passwd", "index.htm", f"{batch_id}-00001-00.png", "thumbs/../x.jpg"):
        assert read.get(f"{base}/{name}").status_code == 404, name
    assert httpx.get(f"{read.base_url}{base}/index.html").status_code == 401  # no token


def test_job_pages_hold_every_job_once_newest_first(
    api: ApiProcess, http: dict[str, httpx.Client]
) -> None:
    seen, cursor = [], None
    while True:
        page = (
            http["read"]
            .get("/v1/jobs", params={"limit": 3, "cursor": cursor} if cursor else {"limit": 3})
            .json()
        )
        seen += [(j["created_at"], j["id"]) for j in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) and seen == sorted(seen, reverse=True)
    everything = http["read"].get("/v1/jobs", params={"limit": 200}).json()["jobs"]
    assert [j["id"] for j in everything] == [i for _, i in seen]
    succeeded = http["read"].get("/v1/jobs", params={"status": "succeeded", "limit": 200})
    assert {j["status"] for j in succeeded.json()["jobs"]} == {"succeeded"}


def test_models_loras_and_workers_are_what_the_cli_shows(
    api: ApiProcess,
    api_settings: Settings,
    api_worker: WorkerProcess,
    http: dict[str, httpx.Client],
) -> None:
    wait_idle(http["read"])
    models = http["read"].get("/v1/models").json()
    cli = nightshift(api_settings, "models", "--json")
    assert cli.returncode == 0, cli.stderr
    assert [m["name"] for m in models["models"]] == [
        m["name"] for m in json.loads(cli.stdout)["models"]
    ]
    assert http["read"].get("/v1/loras").json() == {"loras": {}}
    workers = http["read"].get("/v1/workers").json()["workers"]
    assert len(workers) == 1 and workers[0]["online"] is True
    assert workers[0]["current_job"] is None  # nothing is rendering now
    assert workers[0]["models"] == [m["name"] for m in models["models"]]


# --- the local default, and Redis going away --------------------------------------------------

PASSWORD = "s3cret-pass-for-redis-7d1f"


def test_without_any_token_it_serves_this_machine_only_and_a_dead_redis_is_503(
    api_settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    with redis_server_with(
        url, "--port", str(port), "--requirepass", PASSWORD, "--save", "", "--dir", str(tmp_path)
    ):
        settings = api_settings.model_copy(update={"redis_url": url})
        exposed = nightshift(settings, "api", "--host", "0.0.0.0", "--port", str(free_port()))
        assert exposed.returncode == 2
        assert "while no API token exists" in exposed.stderr

        server = ApiProcess(settings, tmp_path / "api.log")
        try:
            server.wait_up()
            assert (
                httpx.get(f"{server.url}/v1/queue", timeout=30).status_code == 200
            )  # local default
            forwarded = httpx.get(
                f"{server.url}/v1/queue", headers={"X-Forwarded-For": "1.2.3.4"}, timeout=30
            )
            assert forwarded.status_code == 401
            rebound = httpx.get(
                f"{server.url}/v1/queue", headers={"Host": "evil.example"}, timeout=30
            )
            assert rebound.status_code == 401
            startup = server.text()
            assert "auth: none needed" in startup and "redis://:***@127.0.0.1" in startup
        except BaseException:
            server.stop()
            raise
    # Redis is gone now, the server still runs.
    try:
        answers = [
            httpx.get(f"{server.url}/v1/queue", timeout=30),
            httpx.post(f"{server.url}/v1/jobs", json={"prompt": "x"}, timeout=30),
            httpx.get(f"{server.url}/v1/jobs/any", timeout=30),
        ]
        for response in answers:
            assert response.status_code == 503, response.text
            assert error_of(response)["code"] == "broker_unavailable"
            assert PASSWORD not in response.text
    finally:
        server.stop()
    assert PASSWORD not in server.text()


def test_the_log_holds_no_token(api: ApiProcess, tokens: dict[str, str]) -> None:
    # Every test above sent a token, in a header (once over Basic); none may be in the log.
    log = api.text()
    assert "GET /v1/queue" in log  # the access log is there
    for token in tokens.values():
        assert token.removeprefix("nst_") not in log


def _json() -> dict[str, str]:
    return {"Content-Type": "application/json"}
