"""The web app (issue 16), served by `nightshift api` at `/`: the queue live, a submit form,
the history searchable, every batch. Modules, one job each:

- routes.py    the pages (server-rendered shells), sign-in and sign-out, the static files
- session.py   the browser's cookies: the session and the sign-in form's CSRF value
- templates/   Jinja2 (autoescaped): one shell per page, base.html around them
- static/      the CSS and plain ES modules the pages load (no build step, no CDN)

The pages hold no data: their scripts read and write through /v1 with the session cookie
(producer/api/auth.py takes it for a token), so the browser can do exactly what the API lets
its token do, and there is no second path to Redis. Data reaches the DOM as text only
(textContent, createElement), so a prompt holding HTML is shown, never run.
"""

from producer.web.routes import install

__all__ = ["install"]
