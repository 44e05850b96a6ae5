"""pipeline.stats: Welch's t-test and its confidence interval, checked against scipy on constructed samples."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from pipeline.stats import Difference, welch, welch_from_stats


@pytest.mark.parametrize("seed,na,nb,shift", [(0, 3, 3, 0.0), (1, 5, 2, 0.5), (2, 2, 7, -1.0), (3, 10, 10, 0.05)])
def test_p_value_matches_scipy(seed, na, nb, shift):
    rng = np.random.default_rng(seed)
    a = rng.normal(1.0 + shift, 0.3, na)
    b = rng.normal(1.0, 1.2, nb)  # unequal spreads: the case Welch is for
    d = welch(a, b)
    ref = st.ttest_ind(a, b, equal_var=False)
    assert d.diff == pytest.approx(a.mean() - b.mean())
    assert d.p == pytest.approx(ref.pvalue, rel=1e-9)
    assert (d.n_a, d.n_b, d.level, d.test) == (na, nb, 0.95, "Welch's t-test")
    ci = ref.confidence_interval(0.95)
    assert (d.low, d.high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert d.beyond_noise == (ref.pvalue < 0.05)


def test_from_stats_equals_raw():
    a, b = [0.91, 0.93, 0.92], [0.88, 0.90]
    raw = welch(a, b, level=0.9)
    s = welch_from_stats(np.mean(a), np.std(a, ddof=1), 3, np.mean(b), np.std(b, ddof=1), 2, level=0.9)
    assert s == raw and s.level == 0.9


def test_ci_covers_true_difference_at_nominal_rate():
    rng = np.random.default_rng(42)
    true, trials, covered = 0.7, 2000, 0
    for _ in range(trials):
        d = welch(rng.normal(true, 1.0, 4), rng.normal(0.0, 2.0, 6))
        covered += d.low <= true <= d.high
    assert 0.93 <= covered / trials <= 0.97  # 95% nominal, binomial sd ~0.5% here


def test_clear_shift_is_beyond_noise_and_noise_is_not():
    d = welch([0.90, 0.91, 0.92], [0.80, 0.81, 0.82])
    assert d.beyond_noise and d.low > 0 and d.p < 0.05
    n = welch([0.90, 0.95, 0.85], [0.91, 0.86, 0.94])
    assert n.testable and not n.beyond_noise and n.low < 0 < n.high


def test_single_seed_is_not_testable():
    for d in (welch([0.9], [0.8, 0.7]), welch([0.9, 0.8], [0.7]),
              welch_from_stats(0.9, float("nan"), 1, 0.8, 0.01, 3)):
        assert not d.testable and not d.beyond_noise
        assert math.isnan(d.p) and math.isnan(d.low) and math.isnan(d.high)
    assert welch([0.9], [0.8]).diff == pytest.approx(0.1)  # the difference itself is still reported


def test_zero_variance_groups():
    same = welch([0.5, 0.5, 0.5], [0.5, 0.5])
    assert same.testable and not same.beyond_noise and (same.diff, same.low, same.high) == (0.0, 0.0, 0.0)
    assert same.p == 1.0
    moved = welch([0.6, 0.6], [0.5, 0.5])
    assert moved.beyond_noise and moved.low == moved.high == pytest.approx(0.1) and moved.p == 0.0
    # one group constant, the other not: a finite interval, df from the varying group alone
    one = welch([0.5, 0.5, 0.5], [0.4, 0.6, 0.5])
    assert one.testable and not one.beyond_noise and one.low < 0 < one.high


def test_frozen():
    d = welch([1, 2], [3, 4])
    assert isinstance(d, Difference)
    with pytest.raises(Exception):
        d.diff = 0.0  # type: ignore[misc]


def test_trend_of_two_points_is_welch_over_the_distance():
    a, b = [0.91, 0.93, 0.92], [0.88, 0.90, 0.87]
    from pipeline.stats import trend_from_stats
    t = trend_from_stats([1.0, 3.0], [np.mean(b), np.mean(a)], [np.std(b, ddof=1), np.std(a, ddof=1)], [3, 3])
    d = welch(a, b)
    assert t.slope == pytest.approx(d.diff / 2)
    assert (t.low, t.high) == (pytest.approx(d.low / 2), pytest.approx(d.high / 2))


def test_trend_ci_covers_true_slope_and_finds_a_real_one():
    from pipeline.stats import trend_from_stats
    rng = np.random.default_rng(7)
    x = np.array([10.0, 11.0, 12.5, 14.0])
    sd = np.array([0.3, 0.2, 0.5, 0.25])

    def fit(true_slope):
        runs = [rng.normal(true_slope * xi, s, 3) for xi, s in zip(x, sd)]
        return trend_from_stats(x, [r.mean() for r in runs], [r.std(ddof=1) for r in runs], [3] * 4)

    trials = 2000
    covered = sum(t.low <= 0.0 <= t.high for t in (fit(0.0) for _ in range(trials)))
    # Welch–Satterthwaite is approximate; coverage stays near the nominal 95%.
    assert 0.92 <= covered / trials <= 0.98
    assert all(fit(1.0).beyond_noise for _ in range(50))
    flat = fit(0.0)
    assert flat.testable and flat.points == 4 and flat.n_min == 3


def test_trend_single_seed_is_not_testable():
    from pipeline.stats import trend_from_stats
    t = trend_from_stats([1, 2, 3], [0.9, 0.95, 0.97], [float("nan")] * 3, [1, 1, 1])
    assert not t.testable and not t.beyond_noise and t.slope == pytest.approx(0.035)
