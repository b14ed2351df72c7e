"""The memory guard's budgets per device and the MPS memory cap exported before torch loads:
settings alone, no Redis and no worker (the guard itself is tests/integration/test_memory_guard.py).
"""

from __future__ import annotations

from config.settings import Settings
from worker.host.memory_guard import apply_mps_env, budgets_mb

GB = 1024**3


def test_budgets_follow_the_device(offline_settings: Settings) -> None:
    on_mps = budgets_mb(offline_settings, "mps", ram_bytes=16 * GB)
    on_cpu = budgets_mb(offline_settings.model_copy(update={"rss_budget_mb": 3000}), "cpu", 16 * GB)

    assert on_mps["mps"] == 8 * 1024  # 0 means half the RAM on an Apple GPU
    assert on_mps["swap_growth"] == offline_settings.swap_growth_budget_mb
    assert "mps" not in on_cpu and on_cpu["rss"] == 3000
    assert "cuda" not in on_mps


def test_the_mps_high_watermark_is_exported_before_torch_loads() -> None:
    env: dict[str, str] = {}
    apply_mps_env(Settings.from_env(mps_high_watermark_ratio=0.8), env)
    assert env == {"PYTORCH_MPS_HIGH_WATERMARK_RATIO": "0.8"}

    untouched: dict[str, str] = {}
    apply_mps_env(Settings.from_env(mps_high_watermark_ratio=None), untouched)
    assert untouched == {}
