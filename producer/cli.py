"""`nightshift`: the command line. One module per command group; worker commands are imported
only when the parser is built and load torch only when run, so `nightshift submit` never does.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from config.errors import BrokerUnavailable, InvalidInput, NightshiftError
from producer import help_examples

# Every command group, in the order `nightshift --help` lists them. Each module has
# add_parsers(sub), and its handlers import anything heavy only when they run. Named, not
# imported: producer code never imports worker code, and `import producer.cli` stays light.
COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("producer.commands.submit", ("submit",)),
    ("producer.commands.replay", ("replay",)),
    ("producer.commands.jobs", ("status", "jobs")),
    ("producer.commands.run", ("run",)),
    ("worker.commands.worker", ("worker",)),
    ("worker.commands.model", ("model",)),
    ("producer.commands.models", ("models", "loras")),
    ("producer.commands.flower", ("flower",)),
    ("producer.commands.watch", ("watch",)),
    ("producer.commands.cancel", ("cancel",)),
    ("producer.commands.front", ("front",)),
    ("producer.commands.metrics", ("metrics",)),
    ("producer.commands.api", ("api",)),
    ("producer.commands.token", ("token",)),
    ("producer.commands.history", ("history",)),
    ("producer.commands.deadletter", ("deadletter",)),
    ("producer.commands.batch", ("batch",)),
    ("producer.commands.pause", ("pause", "resume")),
    ("worker.commands.doctor", ("doctor",)),
    ("worker.commands.service", ("service",)),
    ("producer.commands.schema", ("schema",)),
    ("producer.commands.completion", ("completion",)),
)
Handler = Callable[[argparse.Namespace], int]

# Exit codes, by the error's branch: the first match wins, so subclasses come first.
EXIT_CODES: tuple[tuple[type[NightshiftError], int], ...] = (
    (InvalidInput, 2),
    (BrokerUnavailable, 3),
    (NightshiftError, 1),
)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for argv's command alone when argv names one (so `nightshift submit` never
    imports the batch-file parser), else for every command (help, usage errors)."""
    parser = argparse.ArgumentParser(prog="nightshift", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    first = argv[0] if argv else None
    chosen = [module for module, names in COMMANDS if first in names]
    for module in chosen or [module for module, _ in COMMANDS]:
        importlib.import_module(module).add_parsers(sub)
    help_examples.apply(parser)  # here, not in each module: one table of examples
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; 2 for invalid input, 3 when Redis is unreachable, 1 for other errors."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except NightshiftError as exc:
        print(f"nightshift: {exc}", file=sys.stderr)
        return next(code for kind, code in EXIT_CODES if isinstance(exc, kind))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
