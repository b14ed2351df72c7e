"""One way to write every file of a result: private, whole or absent, and never elsewhere.

PNGs, thumbnails, the contact sheet, the manifest and the gallery page all go through
write_private. The bytes go to a temporary file with a random name next to the target,
created with O_EXCL|O_NOFOLLOW at mode 0600 (a link planted at a guessable name is never
followed, and nobody else can read a prompt's image), are fsynced, and the file is renamed
over the target, so a crash never leaves half a file under the real name. The folder is
checked, links resolved, to lie inside the results root before anything is created, then
opened once (O_NOFOLLOW): the temporary file, the check of the target and the rename all go
through that descriptor, so a link put in place of the folder after the check is not
followed. A target that is a symbolic link, dangling or not, is refused: in the results
folder a link means someone planted it. The service files (worker/host/service.py), which
carry passwords, are written the same way.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

FILE_MODE = 0o600
Writer = Callable[[BinaryIO], object]
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def write_private(path: Path, content: bytes | Writer, root: Path) -> None:
    """Write content (bytes, or a function writing to a handle) to path: mode 0600, whole or
    not at all, inside root only.

    Raises OSError (ELOOP) when path is a symbolic link and (EPERM) when its folder is
    outside root; a caller that already checked where the path lies passes its folder.
    """
    with _folder(path.parent, root) as folder_fd:
        if is_link(path.name, folder_fd):
            raise OSError(errno.ELOOP, "refusing to write through a symbolic link", str(path))
        tmp = f".tmp-{secrets.token_hex(8)}-{path.name}"
        fd = os.open(tmp, _CREATE, FILE_MODE, dir_fd=folder_fd)
        try:
            _write_and_sync(fd, content)
            os.replace(tmp, path.name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=folder_fd)
            raise


def _write_and_sync(fd: int, content: bytes | Writer) -> None:
    with os.fdopen(fd, "wb") as handle:
        if isinstance(content, bytes):
            handle.write(content)
        else:
            content(handle)
        handle.flush()
        os.fsync(handle.fileno())


def private_folder(folder: Path, root: Path) -> Path:
    """Create folder (and its parents) once it is known, links resolved, to lie inside root."""
    real_root, real = root.resolve(), folder.resolve()
    if real != real_root and real_root not in real.parents:
        raise OSError(errno.EPERM, f"outside the results folder {real_root}", str(folder))
    real.mkdir(parents=True, exist_ok=True)
    return real


def is_link(name: str | Path, folder_fd: int | None = None) -> bool:
    """True when name is a symbolic link (dangling or not); False when absent."""
    try:
        mode = os.stat(name, dir_fd=folder_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return False
    return stat.S_ISLNK(mode)


@contextmanager
def _folder(folder: Path, root: Path) -> Iterator[int]:
    real = private_folder(folder, root)
    # O_NOFOLLOW: had the checked folder been swapped for a link since, this fails (ELOOP).
    fd = os.open(real, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)
