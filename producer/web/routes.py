"""The web app's pages: GET /, /submit, /history, /jobs/{id}, /batches (server-rendered shells
whose scripts read /v1), sign-in and sign-out, and the static files at /static.

A page is shown to a signed-in browser (a live session) or, like the API, to anyone while
the local default holds (no token exists, loopback only); anyone else is sent to /login. The
page carries the session's CSRF value in `<meta name="csrf-token">`: the scripts send it back
as X-CSRF-Token on every write (producer/api/auth.py refuses a write without it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from starlette.concurrency import run_in_threadpool

from config.store import reachable, sessions
from config.store import tokens as token_store
from producer.api.auth import LOCAL, SESSION_COOKIE, local_default
from producer.api.context import ApiContext, Ctx
from producer.web import session as cookies

HERE = Path(__file__).parent
# Autoescape everywhere, whatever a template's name: a prompt is never markup.
templates = Jinja2Templates(
    env=Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
)
# Only this origin's scripts, styles and images (and data:/blob: images the submit form
# previews): an injected tag could neither run nor send anything anywhere.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
PAGES = {"/": "queue", "/submit": "submit", "/history": "history", "/batches": "batches"}

router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    """Serve the web app from `app`: its pages, and its static files at /static."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")


def _who(request: Request, ctx: ApiContext) -> tuple[str, str, str] | None:
    """(name, scope, csrf) of the browser asking; None if it must sign in."""
    client = ctx.client.store.redis
    with reachable():
        session_id = request.cookies.get(SESSION_COOKIE)
        found = sessions.lookup(client, session_id) if session_id else None
        if found is not None:
            return found.name, found.scope, found.csrf
        if local_default(request, ctx) and token_store.count(client) == 0:
            return LOCAL.name, LOCAL.scope, ""
    return None


async def _page(request: Request, ctx: ApiContext, page: str, **extra: Any) -> Response:
    who = await run_in_threadpool(_who, request, ctx)
    if who is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    name, scope, csrf = who
    context = {"page": page, "name": name, "scope": scope, "csrf": csrf, **extra}
    response = templates.TemplateResponse(request, f"{page}.html", context, headers=HEADERS)
    session_id = request.cookies.get(SESSION_COOKIE)
    if csrf and session_id:  # the session slid on in Redis: the cookie lives as long
        cookies.set_session(response, request, session_id)
    return response


def _page_route(page: str) -> Callable[[Request, ApiContext], Awaitable[Response]]:
    async def route(request: Request, ctx: Ctx) -> Response:
        return await _page(request, ctx, page)

    return route


# The pages with no parameter: a shell each, its module fetches the rest from /v1.
PAGES = {"/": "queue", "/submit": "submit", "/history": "history", "/batches": "batches"}
for _path, _name in PAGES.items():
    router.add_api_route(_path, _page_route(_name), response_class=HTMLResponse, name=_name)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
async def job_page(job_id: str, request: Request, ctx: Ctx) -> Response:
    return await _page(request, ctx, "job", job_id=job_id)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> Response:
    return _login(request, _local(next))


def _login(request: Request, target: str, error: str = "", status: int = 200) -> Response:
    csrf, new = cookies.login_csrf(request)
    context = {"page": "login", "next": target, "error": error, "csrf": "", "form_csrf": csrf}
    response = templates.TemplateResponse(
        request, "login.html", context, status_code=status, headers=HEADERS
    )
    if new:
        cookies.set_cookie(
            response, request, cookies.LOGIN_CSRF_COOKIE, csrf, cookies.LOGIN_CSRF_TTL_S
        )
    return response


@router.post("/login")
async def login(request: Request, ctx: Ctx) -> Response:
    form = await _form(request)
    target = _local(form.get("next", "/"))
    if not cookies.login_csrf_ok(request, form.get("csrf")):
        return _login(request, target, "The form expired; sign in again.", 403)
    token = form.get("token", "").strip()
    client = ctx.client.store.redis
    with reachable():
        info = token_store.lookup(client, token) if token else None
        if info is None:
            return _login(request, target, "Unknown or revoked token.", 401)
        session_id, _ = sessions.create(client, token, info)
    response = RedirectResponse(target, status_code=303)
    cookies.set_session(response, request, session_id)
    cookies.clear(response, request, cookies.LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
async def logout(request: Request, ctx: Ctx) -> Response:
    form = await _form(request)
    client = ctx.client.store.redis
    session_id = request.cookies.get(SESSION_COOKIE)
    with reachable():
        found = sessions.lookup(client, session_id) if session_id else None
        if found is not None:
            if not sessions.csrf_matches(form.get("csrf"), found.csrf):
                return Response("CSRF value missing or wrong", status_code=403)
            sessions.delete(client, session_id or "")
    response = RedirectResponse("/login", status_code=303)
    cookies.clear(response, request, SESSION_COOKIE)
    return response


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form's fields, the first value of each (no multipart needed)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {key: values[0] for key, values in parse_qs(body).items()}


def _local(target: str) -> str:
    """A path on this site to go back to after sign-in; `/` for anything else (an open
    redirect would send a signed-in browser to another site)."""
    ok = target.startswith("/") and not target.startswith("//") and "\\" not in target
    return target if ok else "/"
