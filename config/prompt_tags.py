"""LoRA tags in a prompt: A1111's `<lora:NAME:WEIGHT>`, found and taken out.

Separate from config/infotext.py, which builds LoraRefs from them, because config/schema.py
needs the tags (new_job) and config/infotext.py needs the schema: this module imports neither.
"""

from __future__ import annotations

import math
import re

from config.errors import InvalidJob

# A1111's extra-network syntax (`<lora:name:te_weight[:unet_weight]>`, named `te=`/`unet=`
# arguments too), tolerant of spaces and of `LoRA` written in any case. Newlines never belong
# to a tag, so a tag cannot swallow the next line.
LORA_TAG_RE = re.compile(r"[ \t]*<[ \t]*lora[ \t]*:([^<>\n]*)>", re.IGNORECASE)
TAG_RULE = "a LoRA tag is <lora:NAME> or <lora:NAME:WEIGHT>, WEIGHT a number"


def find_lora_tags(prompt: str) -> tuple[str, list[tuple[str, float]]]:
    """The prompt without its LoRA tags, and (name, weight) for each tag, in order.

    Only a prompt that had tags is tidied: the space before each tag goes with it, and the
    commas left dangling at either end (`a cat, <lora:x:1>`), so what Nightshift writes back
    (the prompt, a space, the tags) reads back the same.
    """
    tags: list[tuple[str, float]] = []
    for match in LORA_TAG_RE.finditer(prompt):
        tags.append(_tag(match.group(0).strip(), match.group(1)))
    if not tags:
        return prompt, []
    rest = LORA_TAG_RE.sub("", prompt)
    return rest.strip().strip(",").strip(), tags


def _tag(tag: str, body: str) -> tuple[str, float]:
    name, *args = (part.strip() for part in body.split(":"))
    weight = 1.0
    # The first plain argument is A1111's text-encoder weight, which it also applies to the
    # UNet unless a second one says otherwise; Nightshift has one weight per LoRA.
    plain = [a for a in args if "=" not in a]
    named = {k.strip(): v for k, _, v in (a.partition("=") for a in args if "=" in a)}
    text = named.get("te", plain[0] if plain else "")
    if text.strip():
        try:
            weight = float(text)
        except ValueError:
            raise InvalidJob("prompt", tag, TAG_RULE) from None
        if not math.isfinite(weight):
            raise InvalidJob("prompt", tag, TAG_RULE)
    if not name:
        raise InvalidJob("prompt", tag, TAG_RULE)
    return name, weight
