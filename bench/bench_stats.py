"""Least-squares line with a 95 % confidence interval on its slope: the leak verdict.

Pure math (math and statistics only, no scipy), so the unit tests check it on a laptop:

    python bench/bench_stats.py   # a self-check against tabulated t quantiles
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any

MIB = 2**20
# Growth under this over 1000 jobs is no leak worth a name, whatever the interval says.
NEGLIGIBLE_BYTES_PER_1000_JOBS = MIB


@dataclass(frozen=True)
class LineFit:
    """y = intercept + slope * x, with the slope's 95 % interval (Student's t, n - 2 df)."""

    slope: float
    intercept: float
    slope_ci95: tuple[float, float]
    n: int
    residual_sd: float

    @property
    def verdict(self) -> str:
        low, high = self.slope_ci95
        if low <= 0 <= high or self.slope * 1000 < NEGLIGIBLE_BYTES_PER_1000_JOBS:
            return "no growth beyond noise"
        return "grows"

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "slope_ci95": list(self.slope_ci95),
            "growth_per_1000_jobs_mib": self.slope * 1000 / MIB,
            "verdict": self.verdict,
        }


def fit_line(xs: list[float], ys: list[float]) -> LineFit | None:
    """Ordinary least squares; None when there are fewer than 3 points or one distinct x."""
    n = len(xs)
    if n != len(ys) or n < 3:
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    sxy = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    intercept = my - slope * mx
    ssr = math.fsum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys, strict=True))
    sd = math.sqrt(ssr / (n - 2))
    half = t_quantile(0.975, n - 2) * sd / math.sqrt(sxx)
    return LineFit(slope, intercept, (slope - half, slope + half), n, sd)


def t_quantile(p: float, df: int) -> float:
    """Student's t quantile, by bisection on the exact distribution function."""
    if not 0.5 <= p < 1:
        raise ValueError(f"p must be in [0.5, 1), got {p}")
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2
    for _ in range(200):
        mid = (low + high) / 2
        low, high = (mid, high) if t_cdf(mid, df) < p else (low, mid)
        if high - low < 1e-12:
            break
    return (low + high) / 2


def t_cdf(t: float, df: int) -> float:
    """P(T <= t) for Student's t with df degrees of freedom (t >= 0)."""
    x = df / (df + t * t)
    return 1 - 0.5 * incomplete_beta(df / 2, 0.5, x)


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) (Numerical Recipes' betai)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1 - math.exp(log_front) * _beta_fraction(b, a, 1 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b), by the modified Lentz method."""
    tiny, c, d = 1e-300, 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for num in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + num * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


# Two-sided 95 % critical values from the t table.
T_TABLE = {1: 12.7062, 2: 4.3027, 5: 2.5706, 10: 2.2281, 30: 2.0423, 100: 1.9840, 1000: 1.9623}


def self_check() -> None:
    for df, expected in T_TABLE.items():
        got = t_quantile(0.975, df)
        assert abs(got - expected) < 1e-3, (df, got, expected)
    xs = [float(x) for x in range(100)]
    fit = fit_line(xs, [3 + 4096 * x + (-1) ** x for x in range(100)])  # 4 MiB per 1000 jobs
    assert fit is not None and abs(fit.slope - 4096) < 1e-3 and fit.verdict == "grows"
    flat = fit_line(xs, [5.0] * 100)
    assert flat is not None and flat.slope == 0 and flat.verdict == "no growth beyond noise"
    print("bench_stats: self-check passed")


if __name__ == "__main__":
    self_check()
