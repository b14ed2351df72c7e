"""Settings read a .env file in the working directory, as docker compose does; the real
environment wins over it. No services."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import Settings


def test_a_dotenv_file_sets_nightshift_values_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(
        "# compose's secrets live here too\n"
        "NIGHTSHIFT_DEFAULT_STEPS=12\n"
        "NIGHTSHIFT_QUEUES=from-the-file\n"
        "NIGHTSHIFT_REDIS_PASSWORD=compose-only\n"  # compose's, not a setting: ignored
        "UNRELATED=1\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NIGHTSHIFT_DEFAULT_STEPS", raising=False)
    monkeypatch.setenv("NIGHTSHIFT_QUEUES", "from-the-environment")

    settings = Settings.from_env()

    assert settings.default_steps == 12
    assert settings.queues == "from-the-environment"
