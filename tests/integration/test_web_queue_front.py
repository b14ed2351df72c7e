"""The queue page's "To front" button (issue 16) in a real headless Chromium, against a real
API, worker and Redis. The fixtures are test_web.py's, imported: this module gets its own
server, browser, tokens and flushed Redis, and starts its worker only once the jobs wait."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import test_web
from api_servers import ApiProcess
from test_web import CHROMIUM, api, shoot, wait_status

# test_web.py's fixtures, made this module's own: pytest finds fixtures among a module's names.
browser, server, sign_in = test_web.browser, test_web.server, test_web.sign_in
tokens, web_settings, worker = test_web.tokens, test_web.web_settings, test_web.worker

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs the Debian chromium package")

SMALL_JOB = {"steps": 2, "width": 64, "height": 64}


def test_a_waiting_job_sent_to_the_front_heads_next_up_and_renders_first(
    sign_in: Callable, server: ApiProcess, tokens: dict[str, str], request: pytest.FixtureRequest
) -> None:
    submit = tokens["submit"]
    ids = [
        api(server, submit, "POST", "/v1/jobs", json={"prompt": f"wait {n}", **SMALL_JOB})["id"]
        for n in range(3)
    ]
    last = ids[-1]
    reader = sign_in("read")
    reader.wait_for_selector(f'#queued li[data-job="{last}"]')
    assert reader.locator(".front-job").count() == 0  # a read token may not move jobs

    page = sign_in("submit")
    assert page.locator("#queued li").first.get_attribute("data-job") == ids[0]  # oldest first
    row = page.locator(f'#queued li[data-job="{last}"]')
    with page.expect_response(lambda r: r.url.endswith(f"/v1/jobs/{last}/front")) as answer:
        row.get_by_role("button", name="To front").click()
    assert answer.value.status == 200, answer.value.text()
    assert answer.value.json()["spec"]["moved"] == 1
    page.wait_for_selector(f'#queued li:first-child[data-job="{last}"]')
    assert page.locator("#notice").inner_text() == f"{last} renders next"
    shoot(page, "queue-front")

    request.getfixturevalue("worker")  # only now: until here every job waits
    done = [wait_status(server, tokens["read"], job_id, {"succeeded"}) for job_id in ids]
    assert min(done, key=lambda job: job["started_at"])["id"] == last
    assert page.dialogs == []
