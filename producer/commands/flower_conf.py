"""Flower's `--conf` file for `nightshift flower`: /metrics behind the same login as the rest.

Flower runs this file (tornado's parse_config_file executes it as Python) before it builds
its web application; Flower's docs use the same file for code, e.g. `format_task`. It is
never imported by Nightshift itself.

Why: in Flower 2.2.0 every page and every /api handler requires the login (tornado's
`@web.authenticated`, which runs Flower's basic-auth check and answers 401), but the
/metrics handler (`flower.views.monitor.Metrics`) has no such decorator, so it answered
anyone. The handler list Flower builds its app from (`flower.urls.handlers`) gets a Metrics
that requires the login. With `--no-auth` (127.0.0.1 only) there is no login to require
and it answers as before. /healthcheck stays open: it says "OK" and nothing more.
A Flower whose handler list no longer has that entry stops here rather than serving
/metrics without a login. Passing this file also keeps Flower from running a stray
./flowerconfig.py, its default `--conf`.
"""

from flower import urls
from flower.views.monitor import Metrics
from tornado import web


class LoggedInMetrics(Metrics):
    """Flower's /metrics, behind the basic auth that guards its pages and API."""

    @web.authenticated
    async def get(self) -> None:
        await super().get()


def _require_login(handler: object) -> object:
    if isinstance(handler, tuple) and handler[1] is Metrics:
        return (handler[0], LoggedInMetrics, *handler[2:])
    return handler


urls.handlers[:] = [_require_login(h) for h in urls.handlers]
if not any(isinstance(h, tuple) and h[1] is LoggedInMetrics for h in urls.handlers):
    raise RuntimeError("flower.urls.handlers has no /metrics entry: check flower_conf.py")
