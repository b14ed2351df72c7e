"""The web app's cookies: the session (config/store/sessions.py) and the sign-in form's CSRF.

Both cookies are HttpOnly (no script reads them: an injected one could not steal the session),
SameSite=Strict (no other site's page, link or form makes the browser send them), Path=/, and
Secure when the page came over https (a proxy in front says so with the scheme uvicorn sees).

Sign-in has no session yet, so its form is protected by a double submit: GET /login sets a
random value in a cookie and in the form; POST /login wants both, equal. Another site can
make a browser post the form, but can neither read nor set the cookie.
"""

from __future__ import annotations

from fastapi import Request, Response

from config.store import sessions
from producer.api.auth import SESSION_COOKIE

LOGIN_CSRF_COOKIE = "ns_login_csrf"
LOGIN_CSRF_TTL_S = 3600


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    """Set one of the web app's cookies, with the flags they all have."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=is_https(request),
        httponly=True,
        samesite="strict",
    )


def set_session(response: Response, request: Request, session_id: str) -> None:
    set_cookie(response, request, SESSION_COOKIE, session_id, sessions.SESSION_TTL_S)


def clear(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(
        name, path="/", secure=is_https(request), httponly=True, samesite="strict"
    )


def login_csrf(request: Request) -> tuple[str, bool]:
    """The sign-in form's CSRF value: its cookie's, or a new one (True: set the cookie)."""
    value = request.cookies.get(LOGIN_CSRF_COOKIE)
    return (value, False) if value else (sessions.new_secret(), True)


def login_csrf_ok(request: Request, given: str | None) -> bool:
    """Whether the sign-in form's value is its cookie's (the double submit)."""
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    return bool(cookie) and sessions.csrf_matches(given, cookie or "")
