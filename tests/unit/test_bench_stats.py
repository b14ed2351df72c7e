"""The leak verdict's math (bench/bench_stats.py): t quantiles, the line and its interval."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import bench_stats  # bench/ is no package


@pytest.mark.parametrize(("df", "expected"), sorted(bench_stats.T_TABLE.items()))
def test_t_quantile_matches_the_t_table(df: int, expected: float) -> None:
    assert bench_stats.t_quantile(0.975, df) == pytest.approx(expected, abs=1e-3)


def test_a_line_with_noise_has_its_slope_inside_the_interval() -> None:
    xs = [float(x) for x in range(100, 1000)]
    fit = bench_stats.fit_line(xs, [5e9 + 4096 * x + 1e5 * (-1) ** int(x) for x in xs])
    assert fit is not None
    low, high = fit.slope_ci95
    assert low < 4096 < high
    assert fit.verdict == "grows"


def test_flat_memory_is_no_growth() -> None:
    xs = [float(x) for x in range(200)]
    fit = bench_stats.fit_line(xs, [2.0**30] * 200)
    assert fit is not None
    assert fit.slope == 0
    assert fit.as_dict()["verdict"] == "no growth beyond noise"


def test_a_tiny_real_slope_under_1_mib_per_1000_jobs_is_no_growth() -> None:
    xs = [float(x) for x in range(1000)]
    fit = bench_stats.fit_line(xs, [100.0 * x for x in xs])  # 0.1 MiB per 1000 jobs, exact
    assert fit is not None
    assert fit.slope_ci95[0] > 0
    assert fit.verdict == "no growth beyond noise"


def test_too_few_points_give_no_line() -> None:
    assert bench_stats.fit_line([1.0, 2.0], [1.0, 2.0]) is None
    assert bench_stats.fit_line([3.0, 3.0, 3.0], [1.0, 2.0, 3.0]) is None
