"""The compile cache's parts that need no GPU: where it lives, who may read it, and what a bad
artifacts file costs (a cold compile, never a worker that fails to start). Whether a restarted
CUDA worker really starts warm is measured by bench/gpu_run.sh."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import Settings
from worker.render import compile_cache
from worker.render.compile_cache import CACHE_ENV


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Neither cache variable set; whatever the test sets is undone after it."""
    for variable in CACHE_ENV:
        monkeypatch.setenv(variable, "recorded so that the test's value is undone")
        monkeypatch.delenv(variable)
    yield


def test_the_cache_lives_in_the_data_dir_unless_the_settings_name_another(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).compile_cache_path == tmp_path / "compile-cache"
    elsewhere = Settings(data_dir=tmp_path, compile_cache_dir=tmp_path / "kernels")
    assert elsewhere.compile_cache_path == tmp_path / "kernels"


def test_torch_is_pointed_at_the_folder_only_where_the_user_has_not(tmp_path: Path) -> None:
    environ = {"TRITON_CACHE_DIR": "/the/users/own"}
    compile_cache.point_torch_at(tmp_path, environ)
    assert environ == {
        "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor"),
        "TRITON_CACHE_DIR": "/the/users/own",
    }


def test_the_folder_is_made_private_even_when_it_was_not(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "compile-cache"
    folder.mkdir(parents=True, mode=0o755)
    cache = compile_cache.open_cache(folder, "sd15/fast")
    assert cache.folder == folder
    assert cache.artifacts == folder / "artifacts-sd15_fast.bin"
    assert folder.stat().st_mode & 0o777 == 0o700


def test_a_folder_owned_by_someone_else_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(os, "getuid", lambda: os.stat(tmp_path).st_uid + 1)
    cache = compile_cache.open_cache(tmp_path / "compile-cache", "sd15")
    assert cache.folder is None and "not owned by this user" in caplog.text
    cache.load()  # a no-op: torch keeps its own folder
    assert cache.state == "cold"


def test_a_corrupt_artifacts_file_only_costs_a_cold_compile(
    tmp_path: Path, clean_env: None, caplog: pytest.LogCaptureFixture
) -> None:
    cache = compile_cache.open_cache(tmp_path / "compile-cache", "sd15")
    assert cache.artifacts is not None
    cache.artifacts.write_bytes(b"half a file, cut off by a power cut")
    with caplog.at_level(logging.WARNING, logger=compile_cache.__name__):
        cache.load()
    assert cache.state == "cold"
    assert f"compile cache {cache.artifacts} unreadable" in caplog.text
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "compile-cache" / "inductor")


def test_kernels_from_an_earlier_start_make_the_cache_warm(tmp_path: Path, clean_env: None) -> None:
    kernels = tmp_path / "compile-cache" / "inductor" / "fxgraph"
    kernels.mkdir(parents=True)
    cache = compile_cache.open_cache(tmp_path / "compile-cache", "sd15")
    cache.load()
    assert cache.state == "warm"


def test_a_torch_without_the_mega_cache_still_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.delattr(torch.compiler, "load_cache_artifacts", raising=False)
    monkeypatch.delattr(torch.compiler, "save_cache_artifacts", raising=False)
    artifacts = tmp_path / "artifacts-sd15.bin"
    artifacts.write_bytes(b"from a newer torch")
    assert compile_cache.load_artifacts(artifacts) is False
    compile_cache.save_artifacts(tmp_path / "saved.bin")
    assert not (tmp_path / "saved.bin").exists()


def test_artifacts_are_saved_private_and_a_failed_save_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import torch

    artifacts = tmp_path / "artifacts-sd15.bin"
    monkeypatch.setattr(torch.compiler, "save_cache_artifacts", lambda: (b"kernels", None))
    compile_cache.save_artifacts(artifacts)
    assert artifacts.read_bytes() == b"kernels"
    assert artifacts.stat().st_mode & 0o777 == 0o600

    def fail() -> None:
        raise RuntimeError("cannot pickle")

    monkeypatch.setattr(torch.compiler, "save_cache_artifacts", fail)
    compile_cache.save_artifacts(artifacts)
    assert artifacts.read_bytes() == b"kernels"
    assert "not saved: cannot pickle" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifacts-sd15.bin"]
