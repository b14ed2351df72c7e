"""`nightshift metrics`: serve the Prometheus exporter (producer/metrics.py) until stopped."""

from __future__ import annotations

import argparse
import threading

from config.settings import Settings
from producer.metrics import serve


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("metrics", help="serve Prometheus metrics (queue depth, wait, s/image)")
    p.add_argument("--address", help="default NIGHTSHIFT_METRICS_ADDRESS (127.0.0.1)")
    p.add_argument("--port", type=int, help="default NIGHTSHIFT_METRICS_PORT (9808)")
    p.set_defaults(handler=cmd_metrics)


def cmd_metrics(args: argparse.Namespace) -> int:
    overrides = {"metrics_address": args.address, "metrics_port": args.port}
    settings = Settings.from_env(**{k: v for k, v in overrides.items() if v is not None})
    serve(settings)
    print(
        f"metrics: http://{settings.metrics_address}:{settings.metrics_port}/metrics",
        flush=True,
    )
    threading.Event().wait()  # the HTTP server runs in a daemon thread
    return 0
