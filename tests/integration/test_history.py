"""GET /v1/history against a real `nightshift api` and Redis: the index follows the records.

Jobs are made through the real library (Client.submit) and moved through the store's own
transitions (config/records.py), as a worker would record them; no worker runs. The server
starts on records that exist already (its new index is rebuilt from them), then follows the
event stream: a job submitted later and a cancel show up without anyone rebuilding. Last,
the index file is deleted and `nightshift history rebuild` makes the same answers again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_servers import api_running, module_settings
from helpers import nightshift
from test_api import error_of

from config.records import RenderInfo, start, succeed
from config.settings import Settings
from producer.client import Client
from producer.history import index_path
from producer.local_redis import LocalRedis

SMALL = {"steps": 2, "width": 64, "height": 64}
WORKER = "history-w1@test"
QUERIES = (
    {"q": "fox"},
    {"q": "blurry"},
    {"q": "قطة"},
    {"q": "wh*"},
    {"status": "succeeded"},
    {"worker": WORKER},
    {"lora": "sparkle"},
    {"q": "a", "limit": 2},
)


@pytest.fixture(scope="module")
def history_settings(
    redis_server: LocalRedis, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    folder = tmp_path_factory.mktemp("history")
    return module_settings(redis_server, tiny_model, folder, "history")


@pytest.fixture(scope="module")
def jobs(history_settings: Settings) -> dict[str, str]:
    """Made before the server starts: its first index comes from a rebuild."""
    client = Client(history_settings)
    made = {
        "fox": client.submit("a red fox in snow", negative_prompt="blurry", **SMALL).id,
        "whale": client.submit("a blue whale at dusk", loras=[{"name": "sparkle"}], **SMALL).id,
        "cat": client.submit("قطة على السطح", **SMALL).id,
    }
    now = client.store.now()
    client.store.update(made["whale"], lambda r: start(r, RenderInfo(worker=WORKER), now))
    client.store.update(made["whale"], lambda r: succeed(r, [], now + 1))
    return made


@pytest.fixture(scope="module")
def http(
    history_settings: Settings, jobs: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    log = tmp_path_factory.mktemp("history-log") / "api.log"
    with (
        api_running(history_settings, log) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        yield client


def ids_of(http: httpx.Client, **params: Any) -> list[str]:
    response = http.get("/v1/history", params=params)
    assert response.status_code == 200, response.text
    return [job["id"] for job in response.json()["jobs"]]


def eventually(check: Callable[[], bool], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "the history did not catch up in time"
        time.sleep(0.1)


def test_the_first_index_is_built_from_the_records(
    http: httpx.Client, jobs: dict[str, str]
) -> None:
    eventually(lambda: ids_of(http, q="fox") == [jobs["fox"]])
    assert ids_of(http, q="blurry") == [jobs["fox"]]
    assert ids_of(http, q="قطة") == [jobs["cat"]]
    assert ids_of(http, q="wh*") == [jobs["whale"]]


def test_filters_answer_the_jobs_view(http: httpx.Client, jobs: dict[str, str]) -> None:
    assert ids_of(http, status="succeeded") == [jobs["whale"]]
    assert ids_of(http, worker=WORKER) == [jobs["whale"]]
    assert ids_of(http, lora="sparkle") == [jobs["whale"]]
    assert ids_of(http, since="2000-01-01", until=str(time.time() + 60)) == [
        jobs["cat"],
        jobs["whale"],
        jobs["fox"],
    ]
    listed = http.get("/v1/history", params={"q": "fox"}).json()["jobs"][0]
    assert listed == http.get(f"/v1/jobs/{jobs['fox']}").json()  # the one job view


def test_pages_follow_the_cursor(http: httpx.Client, jobs: dict[str, str]) -> None:
    first = http.get("/v1/history", params={"limit": 2}).json()
    second = http.get("/v1/history", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [j["id"] for j in first["jobs"] + second["jobs"]] == [
        jobs["cat"],
        jobs["whale"],
        jobs["fox"],
    ]
    assert second["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "9" * 40}, "until"),
        ({"model": "../etc"}, "model"),
        ({"batch": "a:b"}, "batch"),
        ({"status": "sleeping"}, "status"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_a_bad_filter_is_a_400_naming_it(
    http: httpx.Client, params: dict[str, str], field: str
) -> None:
    response = http.get("/v1/history", params=params)
    assert response.status_code == 400
    error = error_of(response)
    assert error["field"] == field
    assert str(params[field])[:20] in error["message"]


@pytest.mark.parametrize("q", ['"', "fox AND", "NEAR(", "<script>", "-fox", "*"])
def test_search_syntax_from_users_is_never_an_error(http: httpx.Client, q: str) -> None:
    assert http.get("/v1/history", params={"q": q}).status_code == 200


def test_a_new_job_and_a_cancel_show_up_after_sync(
    http: httpx.Client, history_settings: Settings, jobs: dict[str, str]
) -> None:
    client = Client(history_settings)
    late = client.submit("an owl in the library", **SMALL).id
    eventually(lambda: ids_of(http, q="owl") == [late])
    client.cancel(jobs["cat"])
    eventually(lambda: ids_of(http, status="cancelled") == [jobs["cat"]])
    assert ids_of(http, status="queued") == [late, jobs["fox"]]


def test_a_deleted_index_is_made_again_by_the_rebuild_command(
    http: httpx.Client, history_settings: Settings
) -> None:
    before = [ids_of(http, **params) for params in QUERIES]
    path = index_path(history_settings)
    for part in path.parent.glob(f"{path.name}*"):
        part.unlink()
    out = nightshift(history_settings, "history", "rebuild")
    assert out.returncode == 0, out.stderr
    assert "4 jobs indexed" in out.stdout
    status = nightshift(history_settings, "history", "status", "--json")
    assert '"rows": 4' in status.stdout, status.stdout
    eventually(lambda: [ids_of(http, **params) for params in QUERIES] == before)
