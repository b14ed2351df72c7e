"""The API's small parts, each on its own: token hashing and scopes, credentials, the request
model, cursors, event ids and SSE frames, the command's options. No services."""

from __future__ import annotations

import base64
import json
import types
import typing

import pytest

from config.errors import InvalidInput
from config.records import JobRecord, JobStatus
from config.schema import JobSpec
from config.settings import Settings
from config.store import events, tokens
from producer.api import paging
from producer.api.auth import credentials
from producer.api.events import frame
from producer.api.routes.jobs import JobRequest, decode_input
from producer.cli import build_parser
from producer.commands.api import options_from

# --- tokens -----------------------------------------------------------------------------------


def test_a_known_token_hashes_to_its_known_digest() -> None:
    # `printf nst_example | sha256sum`: a change of hash would lock out every stored token.
    assert (
        tokens.digest("nst_example")
        == "bf0ae24d1d1c871347b6bf76291e41a5090f365f5800452a9f5f3d446edf9ec3"
    )
    assert tokens.digest("nst_example") != tokens.digest("nst_examplf")


def test_each_scope_includes_the_ones_before_it() -> None:
    allowed = {(g, n) for g in tokens.SCOPES for n in tokens.SCOPES if tokens.allows(g, n)}
    assert allowed == {
        ("read", "read"),
        ("submit", "read"),
        ("submit", "submit"),
        ("admin", "read"),
        ("admin", "submit"),
        ("admin", "admin"),
    }


@pytest.mark.parametrize("name", ["", ".hidden", "a b", "a/b", "x" * 65, "ünï"])
def test_a_token_name_outside_the_rule_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        tokens.check_name(name)
    assert caught.value.field == "name"


def test_an_unknown_scope_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        tokens.check_scope("root")
    assert caught.value.field == "scope"


def test_credentials_come_from_bearer_or_from_basic_as_the_password() -> None:
    basic = base64.b64encode(b"anyone:nst_secret").decode()
    assert credentials("Bearer nst_secret") == "nst_secret"
    assert credentials("bearer   nst_secret ") == "nst_secret"
    assert credentials(f"Basic {basic}") == "nst_secret"
    assert credentials("Basic " + base64.b64encode(b"nst_secret:").decode()) is None
    assert credentials("Basic !!!") is None
    assert credentials("Bearer") is None
    assert credentials("Token nst_secret") is None


# --- the request model ------------------------------------------------------------------------


def _without_none(annotation: object) -> object:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        rest = tuple(a for a in args if a is not type(None))
        return rest[0] if len(rest) == 1 else typing.Union[rest]  # noqa: UP007
    return annotation


def test_the_request_fields_have_the_types_of_jobspec() -> None:
    own = {"init_image", "mask", "id", "expires"}  # base64 or ids, and an expiry's text
    for name, field in JobRequest.model_fields.items():
        if name in own:
            continue
        spec = JobSpec.model_fields[name].annotation
        assert _without_none(field.annotation) == _without_none(spec), name


def test_a_request_refuses_unknown_fields_and_loose_types() -> None:
    with pytest.raises(ValueError, match=r"extra_forbidden|Extra inputs"):
        JobRequest.model_validate({"prompt": "x", "custom_pipeline": "evil"})
    with pytest.raises(ValueError):
        JobRequest.model_validate({"prompt": "x", "steps": "30"})
    with pytest.raises(ValueError):
        JobRequest.model_validate({"prompt": "x", "guidance": True})
    assert JobRequest.model_validate({"prompt": "x", "guidance": 7}).guidance == 7.0


def test_an_input_is_an_id_or_base64_or_a_data_url() -> None:
    assert decode_input("a" * 64, "init_image") == "a" * 64
    assert decode_input(base64.b64encode(b"\x89PNG").decode(), "mask") == b"\x89PNG"
    url = "data:image/png;base64," + base64.b64encode(b"\x89PNG").decode()
    assert decode_input(url, "init_image") == b"\x89PNG"
    with pytest.raises(InvalidInput) as caught:
        decode_input("not base64 at all!", "init_image")
    assert caught.value.field == "init_image"


# --- cursors and event ids --------------------------------------------------------------------


def test_a_cursor_comes_back_as_it_went_out() -> None:
    entry = (1796052133.1465828, "job-00001")
    assert paging.decode(paging.encode(entry)) == entry


@pytest.mark.parametrize("cursor", ["", "garbage", base64.b64encode(b'["x", 1]').decode()])
def test_anything_else_as_a_cursor_is_refused_naming_it(cursor: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        paging.decode(cursor)
    assert caught.value.field == "cursor"


def test_event_ids_compare_as_numbers_and_after_leaves_one_out() -> None:
    assert events.parse_id("10-0") > events.parse_id("9-5")
    assert events.after("9-5") == "9-6"
    top = 2**64 - 1
    assert events.after(f"9-{top}") == "10-0"
    assert events.parse_id(f"{top}-{top}") == (top, top)
    with pytest.raises(ValueError):
        events.parse_id(f"{top + 1}-0")  # Redis would refuse it
    for bad in ("", "9", "9-", "-1", "a-b", "9-5-1", "٣-1"):
        with pytest.raises(ValueError):
            events.parse_id(bad)


def test_the_kind_of_a_change_follows_the_status() -> None:
    q, s, done = JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SUCCEEDED
    assert events.kind_of(None, q) == "created"
    assert events.kind_of(q, s) == "status"
    assert events.kind_of(s, s) == "progress"
    assert events.kind_of(s, done) == "finished"
    assert events.kind_of(done, done) == "update"
    assert events.kind_of(done, q) == "status"  # a retry
    assert set(events.KINDS) == {"created", "status", "progress", "finished", "update"}


def test_event_data_says_where_the_job_is_without_its_prompt() -> None:
    spec = JobSpec(id="j1", prompt="a secret plan", seed=1, steps=4, guidance=7.5, created_at=1)
    record = JobRecord(spec=spec, created_at=1, status=JobStatus.STARTED, progress={"step": 2})
    data = json.loads(events.event_data(record, JobStatus.QUEUED))
    assert data["id"] == "j1" and data["previous"] == "queued" and data["status"] == "started"
    assert data["progress"] == {"step": 2} and "a secret plan" not in json.dumps(data)


def test_an_sse_frame_holds_its_data_on_one_line() -> None:
    text = frame("progress", {"error": "line one\nline two\r\n"}, "5-1")
    assert text.endswith("\n\n")
    lines = text[:-2].split("\n")
    assert lines[0] == "id: 5-1" and lines[1] == "event: progress"
    assert len(lines) == 3 and json.loads(lines[2].removeprefix("data: "))["error"].count("\n")


def test_the_api_flags_fall_back_to_the_settings_a_service_or_compose_sets() -> None:
    parser = build_parser()
    settings = Settings(api_host="0.0.0.0", api_port=9000, api_cors_origins="https://a.example,")
    options = options_from(parser.parse_args(["api"]), settings)
    assert (options.host, options.port, options.cors_origins) == (
        "0.0.0.0",
        9000,
        ("https://a.example",),
    )
    flags = parser.parse_args(["api", "--host", "127.0.0.1", "--port", "8000"])
    assert (options_from(flags, settings).host, options_from(flags, settings).port) == (
        "127.0.0.1",
        8000,
    )
    with pytest.raises(InvalidInput) as caught:
        options_from(parser.parse_args(["api", "--port", "70000"]), settings)
    assert (caught.value.field, caught.value.value) == ("--port", 70000)
