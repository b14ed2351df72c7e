"""Pictures inline in the terminal, for `nightshift watch --preview`: kitty's graphics protocol
or iTerm2's inline images, the two that most terminals showing images speak (WezTerm speaks
both, Ghostty and Konsole kitty's). No library: each is one escape sequence around base64.

Which one a terminal speaks is not something it can be asked without a round trip through
its input, so it is read from the environment those terminals set.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping

KITTY, ITERM = "kitty", "iterm"
KITTY_CHUNK = 4096  # the protocol's most base64 per escape sequence
ESC = "\x1b"


def protocol(env: Mapping[str, str]) -> str | None:
    """The inline-image protocol the terminal speaks, or None when it is not known to."""
    if env.get("TERM") == "xterm-kitty" or env.get("KITTY_WINDOW_ID"):
        return KITTY
    if env.get("TERM_PROGRAM") in ("iTerm.app", "WezTerm"):
        return ITERM
    return None


def inline(image: bytes, kind: str) -> str:
    """The escape sequence that draws `image` (JPEG or PNG bytes) at the cursor."""
    if kind == ITERM:  # iTerm2 decodes any format macOS reads
        data = base64.b64encode(image).decode("ascii")
        return f"{ESC}]1337;File=inline=1;size={len(image)};preserveAspectRatio=1:{data}\a"
    data = base64.b64encode(_png(image)).decode("ascii")  # kitty's f=100 is PNG only
    chunks = [data[i : i + KITTY_CHUNK] for i in range(0, len(data), KITTY_CHUNK)]
    parts = []
    for n, chunk in enumerate(chunks):
        more = int(n < len(chunks) - 1)
        head = f"a=T,f=100,m={more}" if n == 0 else f"m={more}"
        parts.append(f"{ESC}_G{head};{chunk}{ESC}\\")
    return "".join(parts)


def _png(image: bytes) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    with Image.open(io.BytesIO(image)) as picture:
        picture.save(out, format="PNG")
    return out.getvalue()
