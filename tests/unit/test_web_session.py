"""The web app's security without Redis: cookie flags, the CSRF checks, autoescaping, the
sign-in redirect, and that no script puts data into the page as markup.

The real app runs in-process (TestClient) on settings whose Redis refuses every connection;
where a session is needed, sessions.lookup is replaced by one that answers a known session.
Sessions against a real Redis, and the pages in a browser: tests/integration/test_web.py.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from config.settings import Settings
from config.store import sessions
from producer.api.app import create_app
from producer.web import routes
from producer.web.session import LOGIN_CSRF_COOKIE

STATIC = Path(routes.__file__).parent / "static"
SESSION = sessions.Session("d" * 64, "laptop", "admin", "the-csrf-value", 0.0)


@pytest.fixture
def app(offline_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(offline_settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def signed_in(app: TestClient, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """A browser holding the cookie of SESSION."""
    monkeypatch.setattr(sessions, "lookup", lambda _client, sid: SESSION if sid == "s1" else None)
    app.cookies.set("ns_session", "s1")
    return app


def set_cookie(response, name: str) -> str:  # type: ignore[no-untyped-def]
    return next(h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}="))


def form_csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]*)"', html)
    assert found is not None
    return found.group(1)


def test_the_sign_in_form_sets_an_httponly_strict_cookie_holding_its_csrf_value(
    app: TestClient,
) -> None:
    response = app.get("/login")
    assert response.status_code == 200
    cookie = set_cookie(response, LOGIN_CSRF_COOKIE)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
    assert cookie.split(";")[0].split("=", 1)[1] == form_csrf(response.text)


def test_cookies_are_secure_over_https(offline_settings: Settings) -> None:
    app = create_app(offline_settings)
    with TestClient(app, base_url="https://testserver") as client:
        assert "Secure" in set_cookie(client.get("/login"), LOGIN_CSRF_COOKIE)


def test_a_sign_in_without_the_forms_csrf_value_is_refused_before_any_token_is_read(
    app: TestClient,
) -> None:
    app.get("/login")  # the cookie is set; the post below forges the form's value
    response = app.post("/login", data={"token": "nst_x", "csrf": "guessed"})
    assert response.status_code == 403 and "expired" in response.text
    assert not any(h.startswith("ns_session=") for h in response.headers.get_list("set-cookie"))


def test_pages_send_a_browser_without_a_session_to_sign_in_and_back(app: TestClient) -> None:
    response = app.get("/history?q=fox", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/history%3Fq%3Dfox"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil", "x"])
def test_sign_in_never_redirects_off_the_site(target: str) -> None:
    assert routes._local(target) == "/"


def test_a_page_shows_the_session_csrf_value_and_escapes_what_it_prints(
    signed_in: TestClient,
) -> None:
    response = signed_in.get('/jobs/"><img src=x onerror=alert(1)>')
    assert response.status_code == 200
    assert '<meta name="csrf-token" content="the-csrf-value">' in response.text
    assert "<img src=x" not in response.text
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in response.text
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy


def test_the_login_forms_next_is_escaped() -> None:
    html = routes.templates.get_template("login.html").render(
        next='/"><script>x()</script>', form_csrf="c", csrf="", scope="", page="login"
    )
    assert "<script>x()" not in html and "&#34;&gt;&lt;script&gt;" in html


def test_a_write_with_the_session_cookie_needs_its_csrf_header(signed_in: TestClient) -> None:
    refused = signed_in.post("/v1/queue/pause")
    assert refused.status_code == 403
    assert refused.json()["error"]["field"] == "X-CSRF-Token"
    wrong = signed_in.post("/v1/queue/pause", headers={"X-CSRF-Token": "the-csrf-valuf"})
    assert wrong.status_code == 403
    # The right value passes authentication: the pause itself then finds Redis away.
    right = signed_in.post("/v1/queue/pause", headers={"X-CSRF-Token": "the-csrf-value"})
    assert right.status_code == 503
    # A read needs no CSRF value (EventSource and <img> cannot send one).
    assert signed_in.get("/v1/queue").status_code == 503


def test_the_csrf_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    assert sessions.csrf_matches("abc", "abc") and not sessions.csrf_matches("abd", "abc")
    assert len(calls) == 2
    assert not sessions.csrf_matches(None, "abc") and not sessions.csrf_matches("", "abc")


def test_no_script_writes_markup_into_the_page() -> None:
    """Data reaches the DOM as text only: a prompt holding HTML stays characters."""
    scripts = sorted(STATIC.glob("*.js"))
    assert scripts
    for script in scripts:
        text = script.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in text, f"{script.name} uses {sink}"


def test_every_asset_is_served_from_the_package(app: TestClient) -> None:
    for asset in sorted(STATIC.iterdir()):
        response = app.get(f"/static/{asset.name}")
        assert response.status_code == 200, asset.name
    for template in (Path(routes.__file__).parent / "templates").glob("*.html"):
        assert "http://" not in template.read_text() and "https://" not in template.read_text()
