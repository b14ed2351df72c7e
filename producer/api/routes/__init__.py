"""The API's routes, one module per resource, all under /v1 (ROUTERS, in OpenAPI's order)."""

from producer.api.routes import batches, events, jobs, models, queue, tokens

ROUTERS = (
    jobs.router,
    events.router,
    batches.router,
    queue.router,
    models.router,
    tokens.router,
)

__all__ = ["ROUTERS"]
