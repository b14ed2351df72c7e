"""The API's errors: the project's error tree as statuses, in one shape, and the body cap.

No services: the app is built in-process on settings whose Redis answers nowhere, and driven
through FastAPI's TestClient; the body cap is driven as the ASGI app it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from config.errors import (
    BrokerUnavailable,
    InputMissing,
    InvalidInput,
    InvalidJob,
    InvalidSettings,
    JobNotFound,
    JobNotQueued,
    ModelUnavailable,
    NightshiftError,
    RenderFailed,
    WaitTimeout,
)
from config.settings import Settings
from config.store.tokens import TokenExists, UnknownToken
from producer.api.app import create_app
from producer.api.errors import STATUS, from_nightshift
from producer.api.limits import BodyLimit
from producer.api.options import ApiOptions


@pytest.mark.parametrize(
    ("error", "status", "code", "field"),
    [
        (InvalidJob("steps", 0, "must be between 1 and 500"), 400, "invalid_job", "steps"),
        (InvalidInput("cursor", "x", "is not a cursor"), 400, "malformed", "cursor"),
        (InvalidSettings("NIGHTSHIFT_X", 1, "bad"), 400, "invalid_settings", "NIGHTSHIFT_X"),
        (JobNotFound("nope"), 404, "not_found", None),
        (JobNotQueued("j", "succeeded"), 409, "not_queued", None),
        (UnknownToken("name", "n", "no token has this name"), 404, "malformed", "name"),
        (TokenExists("name", "n", "exists"), 409, "malformed", "name"),
        (BrokerUnavailable("Redis is not reachable: refused"), 503, "broker_unavailable", None),
        (ModelUnavailable("no such folder"), 503, "model_unavailable", None),
        (InputMissing("gone"), 503, "input_missing", None),
        (WaitTimeout("still queued"), 504, "wait_timeout", None),
    ],
)
def test_each_branch_of_the_error_tree_has_its_status(
    error: NightshiftError, status: int, code: str, field: str | None
) -> None:
    answer = from_nightshift(error)
    assert (answer.http_status, answer.code, answer.field) == (status, code, field)
    assert answer.message == str(error)  # the line the CLI prints


def test_an_unexpected_error_says_nothing_of_its_text() -> None:
    answer = from_nightshift(RenderFailed("/Users/me/secret/path exploded"))
    assert (answer.http_status, answer.code, answer.message) == (500, "internal", "internal error")


def test_every_subclass_comes_before_its_base_in_the_status_table() -> None:
    kinds = [kind for kind, _ in STATUS]
    for i, kind in enumerate(kinds):
        assert not any(issubclass(later, kind) for later in kinds[i + 1 :]), kind
    assert kinds[-1] is NightshiftError


@pytest.fixture
def app_client(offline_settings: Settings) -> Iterator[TestClient]:
    """The real app, in-process; its Redis (offline_settings) refuses every connection."""
    app = create_app(offline_settings, ApiOptions(max_body_bytes=1000))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "field", "message"}
    return dict(body["error"])


def test_redis_away_is_503_in_the_one_shape(app_client: TestClient) -> None:
    response = app_client.get("/v1/queue", headers={"Authorization": "Bearer nst_any"})
    assert response.status_code == 503
    error = error_of(response)
    assert error["code"] == "broker_unavailable" and error["field"] is None
    assert error["message"].startswith("Redis is not reachable")


def test_an_unknown_route_and_a_wrong_method_answer_in_the_same_shape(
    app_client: TestClient,
) -> None:
    assert error_of(app_client.get("/v1/nothing-here"))["code"] == "not_found"
    wrong = app_client.delete("/v1/queue")
    assert wrong.status_code == 405 and error_of(wrong)["code"] == "method_not_allowed"


def test_json_that_does_not_parse_is_422(app_client: TestClient) -> None:
    # Parsed before the token is checked (FastAPI reads the body first): no Redis needed.
    response = app_client.post(
        "/v1/jobs", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert error_of(response) == {
        "code": "invalid_json",
        "field": "body",
        "message": "the body is not valid JSON",
    }


def test_the_openapi_document_lists_every_route(app_client: TestClient) -> None:
    paths = set(app_client.get("/v1/openapi.json").json()["paths"])
    assert {
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/cancel",
        "/v1/jobs/{job_id}/front",
        "/v1/jobs/{job_id}/images/{n}.png",
        "/v1/jobs/{job_id}/events",
        "/v1/events",
        "/v1/batches",
        "/v1/batches/{batch_id}",
        "/v1/batches/{batch_id}/cancel",
        "/v1/batches/{batch_id}/retry",
        "/v1/queue",
        "/v1/queue/pause",
        "/v1/queue/resume",
        "/v1/models",
        "/v1/loras",
        "/v1/workers",
        "/v1/tokens",
        "/v1/tokens/{name}",
    } <= paths


def test_a_body_over_the_cap_is_refused_before_the_app_reads_it(app_client: TestClient) -> None:
    response = app_client.post("/v1/jobs", content=b"x" * 1001)
    assert response.status_code == 413
    assert error_of(response)["code"] == "too_large"


# --- the cap as an ASGI app -------------------------------------------------------------------


def run_cap(chunks: list[bytes], length: int | None, cap: int = 10) -> dict[str, Any]:
    """Send `chunks` through BodyLimit to an app that answers the size of what it got."""
    seen: dict[str, Any] = {"sent": []}

    async def downstream(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        seen["body"] = message["body"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    incoming = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        seen["sent"].append(message)

    headers = [] if length is None else [(b"content-length", str(length).encode())]
    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    asyncio.run(BodyLimit(downstream, cap)(scope, receive, send))
    seen["status"] = seen["sent"][0]["status"]
    return seen


def test_the_cap_counts_a_body_sent_without_a_length() -> None:
    refused = run_cap([b"12345", b"67890", b"1"], None)
    assert refused["status"] == 413 and "body" not in refused  # the app never ran
    passed = run_cap([b"12345", b"67890"], None)
    assert passed["status"] == 200 and passed["body"] == b"1234567890"


def test_the_cap_refuses_an_announced_length_before_reading() -> None:
    refused = run_cap([b"1"], 11)
    assert refused["status"] == 413 and "body" not in refused


# --- CORS -------------------------------------------------------------------------------------


def preflight(client: TestClient, origin: str) -> Any:
    return client.options(
        "/v1/jobs",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )


def test_cors_is_off_unless_origins_are_given(
    app_client: TestClient, offline_settings: Settings
) -> None:
    assert "access-control-allow-origin" not in preflight(app_client, "https://a.example").headers
    options = ApiOptions(cors_origins=("https://a.example",))
    with TestClient(create_app(offline_settings, options)) as client:
        allowed = preflight(client, "https://a.example")
        assert allowed.headers["access-control-allow-origin"] == "https://a.example"
        other = preflight(client, "https://b.example")
        assert "access-control-allow-origin" not in other.headers
