"""The HTTP API, `nightshift api`: a front door on the producer side, FastAPI on uvicorn.

A thin layer: every route calls the library the CLI calls (producer/client.py, the batch
actions, config/store/...), so a rule lives in one place and the API refuses what the CLI
refuses, with the same words. Modules, one job each:

- app.py      builds the app from Settings and ApiOptions (options.py: host, port, limits)
- context.py  what every route is handed (settings, the Client, the event hub, the options)
- routes/     one module per resource, all under /v1; routes/sdapi.py: AUTOMATIC1111's /sdapi/v1
- a1111.py    A1111's request fields as a Nightshift job, its answers from the records
- auth.py     bearer tokens and scopes (config/store/tokens.py), the local default
- errors.py   the project's error tree as statuses, in one JSON shape
- limits.py   the request body cap
- events.py   Server-Sent Events from the event stream (config/store/events.py)
- paging.py   cursor paging of job lists
- ids.py      batch ids from a request, checked before the store reads them
- views.py    the JSON shapes of a job and a batch
- server.py   runs uvicorn

Nothing here is imported by `import producer.cli`: the command imports it when it runs.
"""
