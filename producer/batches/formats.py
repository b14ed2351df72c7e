"""Batch-file bytes into plain values: YAML, JSON, JSONL and CSV, each bounded before it builds.

A batch file can come from anywhere (a colleague, a download, a script gone wrong), so every
reader here caps what it takes before parsing: the file's kind and size, the nesting depth,
YAML aliases and the length of a number. Refusals are InvalidJob naming the file and, where
one is known, the field; file.py checks the shape of what comes back.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from config.errors import InvalidInput, InvalidJob

# Read caps, checked with fstat before a byte is read. MAX_JOBS (100,000) jobs written out one
# a row at ~150 bytes fit in 16 MiB. PyYAML 6 builds objects in Python at about 1 MB/s even with
# libyaml, so YAML gets 4 MiB: a refusal naming the cap beats a minute of silence.
MAX_FILE_BYTES = 16 * 2**20
MAX_YAML_BYTES = 4 * 2**20
# A valid batch file nests 4 deep (top > combine > group > values). 32 leaves room and stays
# far below the recursion limit that deep JSON or YAML would otherwise hit while building.
MAX_DEPTH = 32
_TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels"
# The longest number a job takes is a seed (10 digits) or a float like 7.25. Python refuses to
# convert an int of over 4,300 digits with a bare ValueError, and YAML's base-60 ints (1:30)
# are built in quadratic time: longer numbers are kept as a TooLongNumber the field refuses.
MAX_NUMBER_CHARS = 32
_ASCII_INT = re.compile(r"[0-9]{1,32}")
_ASCII_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# A JSON string (escapes included), or one bracket; a string followed by ':' is a key.
_JSON_TOKEN = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"(\s*:)?|[\[{\]}]')
_CSV_INTS = {"seed", "steps", "width", "height", "images", "priority"}
_CSV_FLOATS = {"guidance", "strength", "hires"}  # hires: a number is its scale (shorthand.py)


@dataclass(frozen=True)
class TooLongNumber:
    """A number written longer than any job field takes; kept so the field refuses it by name."""

    chars: int

    def __repr__(self) -> str:
        return f"<a number {self.chars} characters long>"


def batch_error(path: Path, where: str, value: object, reason: str) -> InvalidJob:
    """The error for a bad batch file: `<file>, <where>: <reason> (got <value>)`."""
    return InvalidJob(f"{shown(path.name)}, {shown(where, 120)}", value, reason)


def shown(text: str, limit: int = 60) -> str:
    """Text safe in a one-line error: escaped if it holds control characters (a key or file
    name may carry ANSI escapes), and cut."""
    text = text if text.isprintable() else ascii(text)[1:-1]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_capped(target: Path, limit: int, field: str, shown: object) -> bytes:
    """The bytes of a regular file of at most `limit` bytes.

    Opened non-blocking and checked with fstat before reading: a FIFO would wait forever for
    a writer, and /dev/zero or /dev/urandom would fill memory.
    """
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        raise InvalidInput(field, shown, getattr(exc, "strerror", None) or str(exc)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidInput(field, shown, "must be a regular file, not a device, FIFO or folder")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            raw = handle.read(limit + 1)  # +1: a file that grew since fstat is still caught
    finally:
        os.close(fd)
    if max(info.st_size, len(raw)) > limit:
        raise InvalidInput(field, shown, f"larger than {_size(limit)}")
    return raw


def _size(limit: int) -> str:
    return f"{limit // 2**20} MiB" if limit >= 2**20 else f"{limit} bytes"


def utf8_text(raw: bytes, field: str, shown: object) -> str:
    """The text of a file, refused when not UTF-8; a BOM (Excel's "CSV UTF-8") is dropped."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(field, shown, f"not UTF-8 text (byte {exc.start})") from None


# --- YAML -------------------------------------------------------------------------------------

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when installed


class _Loader(_BaseLoader):
    """The safe loader with scalars that cannot blow up; aliases and depth are refused before
    it runs (_check_yaml_events)."""


def _scalar(loader: SafeConstructor, node: yaml.ScalarNode) -> object:
    """An int, float or timestamp; too long, it is a TooLongNumber, and malformed ('0b_',
    '2024-02-30') its text, which the field then refuses by name instead of a bare ValueError."""
    if node.tag.endswith((":int", ":float")) and len(node.value) > MAX_NUMBER_CHARS:
        return TooLongNumber(len(node.value))
    construct = _BUILD[node.tag.rpartition(":")[2]]
    try:
        return construct(loader, node)
    except (ValueError, OverflowError):
        return node.value


_BUILD = {
    "int": SafeConstructor.construct_yaml_int,
    "float": SafeConstructor.construct_yaml_float,
    "timestamp": SafeConstructor.construct_yaml_timestamp,
}
for _kind in _BUILD:
    _Loader.add_constructor(f"tag:yaml.org,2002:{_kind}", _scalar)


def parse_yaml(path: Path, text: str) -> Any:
    """One YAML document, with no aliases and at most MAX_DEPTH levels of nesting."""
    try:
        _check_yaml_events(path, yaml.parse(text, Loader=_Loader))
        return yaml.load(text, Loader=_Loader)  # safe: builds plain types only
    except yaml.YAMLError as exc:
        raise batch_error(path, "syntax", path.name, str(exc).replace("\n", " ")) from None


def _check_yaml_events(path: Path, events: Any) -> None:
    """Walk the parser's events (nothing built yet), naming the top-level key at fault.

    Aliases are refused outright: batch files need none, and nine nested ones in a 452-byte
    file expand to gigabytes (a "billion laughs").
    """
    open_nodes: list[list[Any]] = []  # per open collection: [is a mapping, children seen]
    key = "top level"
    for event in events:
        if isinstance(event, yaml.CollectionEndEvent):
            open_nodes.pop()
            continue
        if not isinstance(event, yaml.NodeEvent):
            continue
        if open_nodes:
            parent = open_nodes[-1]
            parent[1] += 1
            if len(open_nodes) == 1 and parent[0] and parent[1] % 2:
                key = str(getattr(event, "value", key))
        if isinstance(event, yaml.AliasEvent):
            reason = "YAML aliases are refused (batch files need none): write the value out"
            raise batch_error(path, key, f"*{event.anchor}", reason)
        if isinstance(event, yaml.CollectionStartEvent):
            open_nodes.append([isinstance(event, yaml.MappingStartEvent), 0])
            if len(open_nodes) > MAX_DEPTH:
                raise batch_error(path, key, len(open_nodes), _TOO_DEEP)


# --- JSON and JSONL ---------------------------------------------------------------------------


def parse_json(path: Path, text: str, where: str = "") -> Any:
    """One JSON value, at most MAX_DEPTH deep, numbers capped; `where` is the row, if any."""
    _check_json_depth(path, text, where)
    try:
        return json.loads(text, parse_int=_json_int, parse_float=_json_float)
    except json.JSONDecodeError as exc:
        value = text[:60] if where else path.name
        raise batch_error(path, where or "syntax", value, f"not JSON: {exc}") from None


def jsonl_rows(path: Path, text: str) -> list[Any]:
    """One JSON value per line. Lines end at \\n only: U+2028 and its kin are valid inside a
    JSON string, and str.splitlines() would cut the row there."""
    rows = []
    for number, line in enumerate(text.split("\n"), 1):
        if line.strip():
            rows.append(parse_json(path, line.removesuffix("\r"), f"row {number}"))
    return rows


def _check_json_depth(path: Path, text: str, where: str) -> None:
    """Count brackets outside strings before json.loads recurses into them."""
    depth, key = 0, ""
    for token in _JSON_TOKEN.finditer(text):
        char = token[0][0]
        if char == '"':
            key = token[1] if depth == 1 and token[2] else key
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                place = ", ".join(part for part in (where, key) if part) or "top level"
                raise batch_error(path, place, depth, _TOO_DEEP)
        else:
            depth -= 1


def _json_int(text: str) -> int | TooLongNumber:
    return int(text) if len(text) <= MAX_NUMBER_CHARS else TooLongNumber(len(text))


def _json_float(text: str) -> float | TooLongNumber:
    return float(text) if len(text) <= MAX_NUMBER_CHARS else TooLongNumber(len(text))


# --- CSV --------------------------------------------------------------------------------------


def csv_rows(path: Path, text: str) -> list[dict[str, Any]]:
    """One dict per row, keyed by the header; empty cells left out, number columns parsed."""
    reader = csv.DictReader(io.StringIO(text))
    try:
        return [
            {k.strip(): _csv_value(k.strip(), v) for k, v in row.items() if k and v}
            for row in reader
        ]
    except csv.Error as exc:  # e.g. a cell over csv.field_size_limit() (128 KiB)
        raise batch_error(path, f"row {max(reader.line_num - 1, 1)}", path.name, str(exc)) from None


def _csv_value(key: str, text: str) -> Any:
    """A number for a number column when it is plain ASCII digits; otherwise the text, which
    the job schema then refuses naming the field (str.isdigit() is true for '²', and
    float() takes '٣', 'nan' and '1_0')."""
    text = text.strip()
    if key in _CSV_INTS and _ASCII_INT.fullmatch(text):
        return int(text)
    if key in _CSV_FLOATS and len(text) <= MAX_NUMBER_CHARS and _ASCII_FLOAT.fullmatch(text):
        return float(text)
    return text
