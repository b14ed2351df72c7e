"""Files a batch file names (prompts_file, init_image, mask): inside its folder, nothing else.

A batch file may come from anyone. An absolute path, '..' or a symlink out would let it read
any file the user can (~/.ssh, /etc/passwd) into prompts that are stored and shown, or into
an input image that is stored in Redis for every worker to fetch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from producer.batches.formats import batch_error

RULE = "must be a relative path to a file in the batch file's folder or below it"


def inside_folder(batch_path: Path, name: Any, where: str) -> Path:
    """The file `name` names, relative to the batch file's folder, resolved; refused, naming
    `where` (`prompts_file`, `row 3, init_image`), when it is not a relative path or any
    symlink along it leads out of the folder."""
    if not isinstance(name, str) or not name.strip() or "\x00" in name:
        raise batch_error(batch_path, where, name, RULE)
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise batch_error(batch_path, where, name, RULE)
    try:
        folder = batch_path.parent.resolve()
        # resolve() follows every link on the way, so a link at any level that leads out
        # shows in where the path ends.
        target = (folder / relative).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
        raise batch_error(batch_path, where, name, str(exc)) from None
    if not target.is_relative_to(folder):
        raise batch_error(batch_path, where, name, f"{RULE}; a symlink leads out to {target}")
    return target
