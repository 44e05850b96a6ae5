"""Is a difference between two sets of seeds more than seed noise? Welch's t-test and its confidence interval.

Welch's test (unequal variances, Welch–Satterthwaite degrees of freedom) because two builds or two variants need not
share a spread: a change of learning rate changes the variance across seeds as well as the mean. Everything here
works from means, sample standard deviations (ddof=1) and counts, so the aggregate tables (mean, `COL_std`,
`n_seeds`) can be tested as well as raw per-seed values.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from scipy import stats as _st

NAN = float("nan")


@dataclass(frozen=True)
class Difference:
    """mean_a - mean_b, its confidence interval at `level` and the two-sided p-value (nan when not testable)."""

    diff: float
    low: float
    high: float
    p: float
    n_a: int
    n_b: int
    level: float = 0.95
    test: str = "Welch's t-test"

    @property
    def testable(self) -> bool:
        # A single seed has no spread to compare against: nothing can be said about noise.
        return self.n_a >= 2 and self.n_b >= 2 and not math.isnan(self.low)

    @property
    def beyond_noise(self) -> bool:
        # The CI excluding 0 is the same statement as p < 1 - level; the CI form also covers the zero-variance case,
        # where the interval collapses to [diff, diff].
        return self.testable and (self.low > 0 or self.high < 0)


def welch_from_stats(mean_a: float, std_a: float, n_a: int, mean_b: float, std_b: float, n_b: int,
                     level: float = 0.95) -> Difference:
    """Welch's t-test from summary statistics; std_a/std_b are sample standard deviations (ddof=1)."""
    n_a, n_b = int(n_a), int(n_b)
    diff = float(mean_a) - float(mean_b)
    if n_a < 2 or n_b < 2 or any(math.isnan(float(x)) for x in (mean_a, mean_b, std_a, std_b)):
        return Difference(diff, NAN, NAN, NAN, n_a, n_b, level)
    va, vb = float(std_a) ** 2 / n_a, float(std_b) ** 2 / n_b
    se = math.sqrt(va + vb)
    if se == 0.0:
        # Both groups constant (e.g. deterministic runs): any difference is real, none is noise.
        return Difference(diff, diff, diff, 1.0 if diff == 0 else 0.0, n_a, n_b, level)
    df = (va + vb) ** 2 / (va ** 2 / (n_a - 1) + vb ** 2 / (n_b - 1))
    half = float(_st.t.ppf(0.5 + level / 2, df)) * se
    p = float(2 * _st.t.sf(abs(diff) / se, df))
    return Difference(diff, diff - half, diff + half, p, n_a, n_b, level)


def one_sample(mean: float, std: float, n: int, level: float = 0.95) -> Difference:
    """Is a mean over seeds of a per-seed quantity (a curve's slope, a last epoch's change) different from zero?
    Welch's test against an exact zero is the one-sample t-test (n - 1 degrees of freedom)."""
    return welch_from_stats(mean, std, n, 0.0, 0.0, n, level)


def welch(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Difference:
    """Welch's t-test on raw samples (e.g. one value per seed from each build)."""
    a, b = [float(x) for x in a], [float(x) for x in b]

    def mean_std(xs: list[float]) -> tuple[float, float]:
        if not xs:
            return NAN, NAN
        m = math.fsum(xs) / len(xs)
        s = math.sqrt(math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else NAN
        return m, s

    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    return welch_from_stats(ma, sa, len(a), mb, sb, len(b), level)


@dataclass(frozen=True)
class Trend:
    """Least-squares slope of variant means over a setting x, with its confidence interval under seed noise."""

    slope: float
    low: float
    high: float
    n_min: int          # the fewest seeds behind any of the points
    points: int
    level: float = 0.95

    @property
    def testable(self) -> bool:
        return self.n_min >= 2 and not math.isnan(self.low)

    @property
    def beyond_noise(self) -> bool:
        return self.testable and (self.low > 0 or self.high < 0)


def trend_from_stats(x: Sequence[float], means: Sequence[float], stds: Sequence[float], ns: Sequence[int],
                     level: float = 0.95) -> Trend:
    """The slope of `means` over `x` (ordinary least squares) and its CI from the seed spread of each point.

    The slope is a fixed linear combination sum(w_i * mean_i) of the points' means, so its variance under seed noise
    is sum(w_i^2 * std_i^2 / n_i); the t quantile uses Welch–Satterthwaite degrees of freedom, as Welch's test does
    for two points (where this reduces to it, divided by the distance in x). The question it answers is "would the
    same sizes with other seeds give a slope of the same sign", not whether the relation is linear."""
    x = [float(v) for v in x]
    k = len(x)
    ns = [int(n) for n in ns]
    if k < 2:
        return Trend(NAN, NAN, NAN, min(ns, default=0), k, level)
    xbar = math.fsum(x) / k
    sxx = math.fsum((v - xbar) ** 2 for v in x)
    if sxx == 0:
        return Trend(NAN, NAN, NAN, min(ns), k, level)
    w = [(v - xbar) / sxx for v in x]
    slope = math.fsum(wi * float(m) for wi, m in zip(w, means))
    if min(ns) < 2 or any(math.isnan(float(s)) for s in stds):
        return Trend(slope, NAN, NAN, min(ns), k, level)
    parts = [wi ** 2 * float(s) ** 2 / n for wi, s, n in zip(w, stds, ns)]
    var = math.fsum(parts)
    if var == 0.0:
        return Trend(slope, slope, slope, min(ns), k, level)
    df = var ** 2 / math.fsum(p ** 2 / (n - 1) for p, n in zip(parts, ns))
    half = float(_st.t.ppf(0.5 + level / 2, df)) * math.sqrt(var)
    return Trend(slope, slope - half, slope + half, min(ns), k, level)
