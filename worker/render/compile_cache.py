"""torch.compile's caches in the data dir, so that a restarted CUDA worker starts warm.

Inductor and Triton keep what they compile under /tmp by default: a restarted worker (a new
container, a reboot) compiled the UNet again, 133.8 s start-to-ready on an H100 against
48.9 s warm. Both read their folder from the environment when they first compile
(TORCHINDUCTOR_CACHE_DIR, TRITON_CACHE_DIR), so the fast path points them here first, in the
process that compiles; a folder the user set already wins. torch >= 2.7 can also save what one
compile made as one file (its "mega-cache", save/load_cache_artifacts): loaded before the
compile, it fills the caches of a fresh folder too.

The folder holds code that gets run (compiled kernels, pickled artifacts): it is made private,
and one owned by another user is not used at all.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

# Each cache's environment variable, and its sub-folder of the compile cache folder.
CACHE_ENV = {"TORCHINDUCTOR_CACHE_DIR": "inductor", "TRITON_CACHE_DIR": "triton"}


@dataclass
class CompileCache:
    """One model's compile cache; `folder` None when there is no usable one (compile in /tmp)."""

    folder: Path | None
    artifacts: Path | None = None  # torch's mega-cache file for this model
    warm: bool = False  # an earlier start's compile was found (its artifacts, or kernels)

    @property
    def state(self) -> str:
        """For the worker's stats hash."""
        return "warm" if self.warm else "cold"

    def load(self) -> None:
        """Before compiling: point torch at the folder and load an earlier start's artifacts."""
        if self.folder is None:
            return
        point_torch_at(self.folder)
        kernels = has_entries(Path(os.environ["TORCHINDUCTOR_CACHE_DIR"]))
        loaded = self.artifacts is not None and load_artifacts(self.artifacts)
        self.warm = loaded or kernels

    def save(self) -> None:
        """After the warm-up, once every group size is compiled."""
        if self.artifacts is not None:
            save_artifacts(self.artifacts)


def open_cache(folder: Path, model_name: str) -> CompileCache:
    """The cache of `model_name` in `folder` (made private); none when the folder cannot be."""
    if not make_private(folder):
        return CompileCache(None)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", model_name)
    return CompileCache(folder, folder / f"artifacts-{name}.bin")


def make_private(folder: Path) -> bool:
    """Create `folder` with mode 0700; False (and a warning) when it is not ours to use."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if folder.stat().st_uid != os.getuid():
            # Its kernels and pickles would run in this process: another user's are not used.
            logger.warning("compile cache %s is not owned by this user; compiling in /tmp", folder)
            return False
        folder.chmod(0o700)  # mkdir's mode is filtered by the umask, and the folder may be old
    except OSError as exc:
        logger.warning("compile cache %s unusable (%s); compiling in /tmp", folder, exc)
        return False
    return True


def point_torch_at(folder: Path, environ: dict[str, str] | None = None) -> None:
    """Set each cache's variable to its sub-folder, unless the user has set it."""
    env = os.environ if environ is None else environ
    for variable, sub in CACHE_ENV.items():
        env.setdefault(variable, str(folder / sub))


def has_entries(folder: Path) -> bool:
    try:
        return any(folder.iterdir())
    except OSError:
        return False


def load_artifacts(path: Path) -> bool:
    """Load saved mega-cache artifacts; False when absent, unsupported or unreadable."""
    import torch

    load = getattr(torch.compiler, "load_cache_artifacts", None)  # torch >= 2.7
    if load is None or not path.is_file():
        return False
    try:
        info = load(path.read_bytes())
    except Exception as exc:  # truncated, another torch's: anything reading it may raise
        logger.warning("compile cache %s unreadable (%s); compiling cold", path, exc)
        return False
    if info is None:  # torch could not unpickle it (and has logged why)
        logger.warning("compile cache %s unreadable; compiling cold", path)
        return False
    return True


def save_artifacts(path: Path) -> None:
    """Save this process's compile artifacts to `path`, replacing it whole; a failure only
    costs the next start its warm compile."""
    import torch

    save = getattr(torch.compiler, "save_cache_artifacts", None)  # torch >= 2.7
    if save is None:
        return
    try:
        saved = save()
        if saved is not None:
            write_private(path, saved[0])
    except Exception as exc:  # the worker is ready either way
        logger.warning("compile cache %s not saved: %s", path, exc)


def write_private(path: Path, data: bytes) -> None:
    # A temporary file renamed over the old one: a worker killed mid-write leaves no half file.
    fd, name = tempfile.mkstemp(prefix=".artifacts-", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
