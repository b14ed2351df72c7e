"""The example every `--help` ends with: one table, keyed by the command's words.

The front door (producer/cli.py) applies it to each parser it builds, so the command modules
stay as they are; a command without an entry fails tests/unit/test_help_examples.py.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

# "" is `nightshift --help` itself; "batch submit" is a sub-command. Each line is a command a
# person can paste, with a comment when what it does is not plain from the words.
EXAMPLES: dict[str, tuple[str, ...]] = {
    "": (
        'nightshift run "a lighthouse at dusk"          # all in one: Redis, a worker, a job',
        "nightshift worker                              # or a worker that stays up...",
        'nightshift submit "a red fox in snow" --wait   # ...and jobs for it, from anywhere',
    ),
    "submit": (
        'nightshift submit "a red fox in snow" --seed 7 --steps 25 --wait',
        'nightshift submit "a lighthouse" --model sdxl --images 4 --json',
        'nightshift submit "a fox <lora:detail:0.6>" --init-image fox.jpg --strength 0.6',
        "nightshift submit --from someones.png --vary-seed 4   # replay a PNG, 4 neighbours",
    ),
    "replay": ("nightshift replay JOB_ID --seed 8 --wait   # the same job, another seed",),
    "status": ("nightshift status JOB_ID --json",),
    "jobs": (
        "nightshift jobs --status failed --limit 50",
        "nightshift jobs --json   # a record a line: jq .id, .status, .outputs[], .error_code",
    ),
    "run": ('nightshift run "a lighthouse at dusk" --seed 7',),
    "worker": (
        "nightshift worker --queues cuda --window 22:00-07:00",
        "NIGHTSHIFT_LOG_FORMAT=json nightshift worker   # one JSON object a line",
    ),
    "model": ("nightshift model tiny ~/models/tiny",),
    "model tiny": ("nightshift model tiny ~/models/tiny --family sdxl",),
    "model tiny-lora": ("nightshift model tiny-lora sparkle --family sd15",),
    "api": ("nightshift api --host 0.0.0.0 --port 8765   # beyond this machine: a token first",),
    "token": ("nightshift token create phone --scope read",),
    "token create": ("nightshift token create ci --scope submit   # prints the token, once",),
    "token list": ("nightshift token list --json",),
    "token revoke": ("nightshift token revoke ci",),
    "history": ("nightshift history status",),
    "history rebuild": ("nightshift history rebuild   # after losing <data_dir>/history.sqlite3",),
    "history status": ("nightshift history status --json",),
    "models": ("nightshift models --json",),
    "loras": ("nightshift loras",),
    "flower": ("NIGHTSHIFT_FLOWER_USER=me NIGHTSHIFT_FLOWER_PASSWORD=... nightshift flower",),
    "watch": ("nightshift watch --interval 2 --recent 10",),
    "cancel": ("nightshift cancel JOB_ID OTHER_JOB_ID",),
    "front": ("nightshift front JOB_ID   # a queued job renders next",),
    "metrics": ("nightshift metrics --address 0.0.0.0 --port 9808",),
    "deadletter": ("nightshift deadletter list",),
    "deadletter list": ("nightshift deadletter list --malformed",),
    "deadletter requeue": ("nightshift deadletter requeue JOB_ID",),
    "batch": ("nightshift batch submit examples/overnight.yaml --dry-run",),
    "batch submit": (
        "nightshift batch submit examples/overnight.yaml --dry-run   # count and estimate",
        "nightshift batch submit examples/overnight.yaml --grouped",
    ),
    "batch status": (
        "nightshift batch status BATCH_ID --watch",
        "nightshift batch status BATCH_ID --json   # one object: `nightshift schema batch`",
    ),
    "batch list": ("nightshift batch list --limit 5",),
    "batch cancel": ("nightshift batch cancel BATCH_ID",),
    "batch retry": ("nightshift batch retry BATCH_ID --cancelled",),
    "batch report": ("nightshift batch report BATCH_ID",),
    "pause": ("nightshift pause --release-memory",),
    "resume": ("nightshift resume",),
    "doctor": ("nightshift doctor",),
    "service": ("nightshift service install --print",),
    "service install": ("nightshift service install --print   # show the file, change nothing",),
    "service uninstall": ("nightshift service uninstall",),
    "schema": (
        "nightshift schema record > record.schema.json   # what each --json job line holds",
        "nightshift schema batch   # what `batch status --json` prints",
    ),
    "completion": (
        "nightshift completion bash > ~/.local/share/bash-completion/completions/nightshift",
        "nightshift completion zsh > ~/.zfunc/_nightshift   # with fpath+=~/.zfunc in .zshrc",
        "nightshift completion fish > ~/.config/fish/completions/nightshift.fish",
    ),
}


def walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser under this one with the words that reach it, this one first (path ())."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, child in action.choices.items():
                if id(child) not in seen:  # an alias is the same parser under another name
                    seen.add(id(child))
                    yield from walk(child, (*path, name))


def epilog(lines: tuple[str, ...]) -> str:
    heading = "Example:" if len(lines) == 1 else "Examples:"
    return "\n".join([heading, *(f"  {line}" for line in lines)])


def apply(parser: argparse.ArgumentParser) -> None:
    """Give each parser its example as its epilog, kept as written (argparse re-wraps it
    otherwise, one long line)."""
    for path, each in walk(parser):
        lines = EXAMPLES.get(" ".join(path))
        if lines is None:
            continue
        each.epilog = epilog(lines)
        if each.formatter_class is argparse.HelpFormatter:
            each.formatter_class = argparse.RawDescriptionHelpFormatter
