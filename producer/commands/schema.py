"""`nightshift schema record|batch|models`: the JSON Schema of what each --json prints.

Generated from the very models the commands print through (RecordView in config/records.py,
BatchView and ModelsView beside their commands), so the published shape cannot drift from
the output; tests validate real output against it (tests/integration/test_json_output.py).
"""

from __future__ import annotations

import argparse
import importlib
import json

# name -> (module, the function returning its schema, the commands printing it). Only the
# module asked for is imported, so `schema record` loads no batch-file parser.
SCHEMAS: dict[str, tuple[str, str, str]] = {
    "record": ("config.records", "view_schema", "submit, status, jobs, deadletter list"),
    "batch": ("producer.commands.batch", "status_schema", "batch status"),
    "models": ("producer.commands.models", "models_schema", "models"),
}


def add_parsers(sub: argparse._SubParsersAction) -> None:
    shapes = ", ".join(f"{name} ({what})" for name, (_, _, what) in SCHEMAS.items())
    p = sub.add_parser("schema", help="print the JSON Schema of what --json prints")
    p.add_argument("name", choices=list(SCHEMAS), help=f"whose --json: {shapes}")
    p.set_defaults(handler=cmd_schema)


def cmd_schema(args: argparse.Namespace) -> int:
    module, function, _ = SCHEMAS[args.name]
    schema = getattr(importlib.import_module(module), function)()
    print(json.dumps(schema, indent=2, ensure_ascii=False))
    return 0
