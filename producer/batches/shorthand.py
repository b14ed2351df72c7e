"""The short ways a batch file may write two job fields, turned into what the job schema takes.

- `loras`: a list of `{name, weight}` objects, of `"name:weight"` or `"name"` strings, or one
  string of them separated by commas (a CSV cell: `detail:0.6, film grain`);
- `hires`: an object (`{scale, steps, strength, upscaler}`), or a number, its scale (`hires: 2`,
  which a CSV column can hold).

Anything else is passed on unchanged, for the schema to refuse naming the field.
"""

from __future__ import annotations

import re
from typing import Any

from config.errors import InvalidJob
from producer.batches.formats import MAX_NUMBER_CHARS

# ASCII only: float() also takes '٣', 'nan' and '1_0'.
_WEIGHT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)")
LORA_RULE = "write NAME or NAME:WEIGHT (WEIGHT a number), or an object {name, weight}"


def job_fields(given: dict[str, Any]) -> dict[str, Any]:
    """`given` with its loras and hires written out in full."""
    fields = dict(given)
    if "loras" in fields:
        fields["loras"] = loras(fields["loras"])
    if "hires" in fields:
        fields["hires"] = hires(fields["hires"])
    return fields


def loras(value: Any) -> Any:
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list):
        return value
    return [_lora(n, item) for n, item in enumerate(value)]


def _lora(n: int, item: Any) -> Any:
    if not isinstance(item, str):
        return item
    name, colon, weight = item.strip().rpartition(":")
    if not colon:
        return {"name": weight}  # no colon: rpartition put the whole text last
    weight = weight.strip()
    if len(weight) > MAX_NUMBER_CHARS or not _WEIGHT.fullmatch(weight):
        raise InvalidJob(f"loras.{n}", item, LORA_RULE)
    return {"name": name.strip(), "weight": float(weight)}


def hires(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"scale": float(value)}
    return value
