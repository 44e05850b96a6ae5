"""Sentences that state findings, generated from result tables, never typed by hand.

Every comparison carries a test across seeds: Welch's t on the per-variant means, standard deviations and seed counts
of the aggregated tables, worded by its 95% confidence interval ("+0.42 pp, 95% CI +0.20 to +0.64") or as not
distinguishable from seed noise; with a single seed it says so instead.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from ..stats import Difference, Trend, one_sample, trend_from_stats, welch_from_stats


def pct(x: float, digits: int = 2) -> str:
    return f"{100 * x:.{digits}f}%"


def pp(x: float, digits: int = 2) -> str:
    """A difference of two accuracies, in percentage points."""
    return f"{100 * x:+.{digits}f} pp"


def _std(row: pd.Series, col: str) -> float:
    v = row.get(f"{col}_std", float("nan"))
    return float(v) if v is not None else float("nan")


LEVEL = 0.95


def difference(a: pd.Series, b: pd.Series, col: str, col_b: str | None = None) -> Difference:
    """Welch's t-test of row a's `col` against row b's `col_b` (default the same column), from the table's
    mean, `_std` and `n_seeds`."""
    col_b = col_b or col
    return welch_from_stats(float(a[col]), _std(a, col), int(a.get("n_seeds", 1)),
                            float(b[col_b]), _std(b, col_b), int(b.get("n_seeds", 1)), LEVEL)


def change_test(row: pd.Series, col: str) -> Difference:
    """A per-seed change (`col`, e.g. a slope per epoch) against zero, from the table's mean, `_std` and `n_seeds`."""
    return one_sample(float(row[col]), _std(row, col), int(row.get("n_seeds", 1)), LEVEL)


def change_ci(d: Difference, scale: float = 100, unit: str = "pp") -> str:
    """"95% CI +0.25 to +0.41 pp, t-test over 3 seeds", or "single seed: no test"."""
    if not d.testable:
        return "single seed: no test"
    return f"{LEVEL:.0%} CI {scale * d.low:+.2f} to {scale * d.high:+.2f} {unit}, t-test over {d.n_a} seeds"


def noise_clause(d: Difference, scale: float = 100, unit: str = "pp", test: str = "Welch's t") -> str:
    """The test result of a difference in words: its CI when it exceeds seed noise, else that it does not.
    test="paired t" for a per-seed difference of two measures of the same runs (one_sample on it)."""
    n = f"{min(d.n_a, d.n_b)} seeds" if d.n_a == d.n_b else f"{d.n_a} and {d.n_b} seeds"
    if not d.testable:
        return "single seed: no test"
    ci = f"{LEVEL:.0%} CI {scale * d.low:+.2f} to {scale * d.high:+.2f} {unit}"
    if d.beyond_noise:
        return f"beyond seed noise: {ci}, {test} on {n}"
    return f"not distinguishable from seed noise with {n}: {ci}" + (f", {test}" if test != "Welch's t" else "")


def compare(a: pd.Series, b: pd.Series, col: str, name_a: str, name_b: str, fmt=pct, diff_fmt=pp) -> str:
    """"A 98.40% vs B 98.10% (+0.30 pp; its test)": rows a and b of one table, Welch's t across their seeds."""
    return contrast(name_a, float(a[col]), name_b, float(b[col]), difference(a, b, col), fmt, diff_fmt)


def contrast(name_a: str, value_a: float, name_b: str, value_b: float, d: Difference, fmt=pct, diff_fmt=pp,
             test: str = "Welch's t") -> str:
    """Two levels, their difference and its test `d` (Welch's, or a paired t for two measures of the same runs)."""
    return (f"{name_a} {fmt(value_a)} vs {name_b} {fmt(value_b)} ({diff_fmt(value_a - value_b)}; "
            f"{noise_clause(d, test=test)})")


def gain(a: pd.Series, b: pd.Series, col: str, col_b: str | None = None) -> str:
    """"+0.42 pp (beyond seed noise: 95% CI ...)": a difference with its test, without the two levels."""
    d = difference(a, b, col, col_b)
    return f"{pp(d.diff)} ({noise_clause(d)})"


def best(table: pd.DataFrame, col: str, largest: bool = True) -> pd.Series:
    return table.loc[table[col].idxmax() if largest else table[col].idxmin()]


def chosen(table: pd.DataFrame, on: str = "val_acc", largest: bool = True) -> pd.Series:
    """The variant a careful experimenter would pick: best on validation (the test set only reports the choice)."""
    return best(table, on, largest)


def seeds_note(table: pd.DataFrame) -> str:
    n = sorted(set(int(v) for v in table["n_seeds"]))
    if n == [1]:
        return "one seed per variant (no spread estimate)"
    return f"{'-'.join(map(str, n))} seeds per variant, mean ± std"


def mean_std(row: pd.Series, col: str, scale: float = 100, digits: int = 2) -> str:
    std = _std(row, col)
    base = f"{scale * float(row[col]):.{digits}f}"
    return base if math.isnan(std) else f"{base} ± {scale * std:.{digits}f}"


def join(items) -> str:
    """"3", "3 and 5", "3, 5 and 10"."""
    items = [str(i) for i in items]
    return " and ".join(items) if len(items) < 3 else ", ".join(items[:-1]) + " and " + items[-1]


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


# Columns that hold a fraction (accuracy, error rate): printed as %, differences as pp.
RATE = re.compile(r"(acc|wer|per|ned)(_(greedy|beam\d+|frozen|finetuned|random))?$")
# Columns where smaller is better: errors and losses.
ERROR = re.compile(r"(^|_)(wer|per|ned|mse|loss)(_|$)")
METRICS = {"test_acc": "test accuracy", "val_acc": "validation accuracy", "train_acc": "train accuracy",
           "params": "parameters", "macs": "MACs per image", "seconds_per_epoch": "seconds per epoch",
           "test_wer_greedy": "greedy test WER", "test_mse": "test MSE"}


def metric_name(col: str) -> str:
    return METRICS.get(col, col.replace("_", " "))


def is_rate(col: str) -> bool:
    return bool(RATE.search(col))


def lower_is_better(col: str) -> bool:
    return bool(ERROR.search(col))


def level(col: str, value: float) -> str:
    """One value of a column as a sentence prints it."""
    if is_rate(col):
        return pct(value)
    if col in ("params", "macs"):
        return f"{int(value):,}"
    return f"{value:.4g}"


def per_doubling(t: pd.DataFrame, over: str, col: str) -> Trend:
    """Least-squares slope of `col` on log2(`over`) across a table's variants (the change each time `over`
    doubles), with its CI under seed noise from the rows' `_std` and `n_seeds`."""
    return trend_from_stats(np.log2(t[over].to_numpy(float)), t[col].to_numpy(float),
                            [_std(r, col) for _, r in t.iterrows()], [int(r.get("n_seeds", 1)) for _, r in t.iterrows()],
                            LEVEL)


def trend_clause(tr: Trend, scale: float = 100, unit: str = "pp") -> str:
    """A trend's test in words, as noise_clause words a difference."""
    if not tr.testable:
        return "single seed: no test"
    ci = f"{LEVEL:.0%} CI {scale * tr.low:+.2f} to {scale * tr.high:+.2f}{' ' + unit if unit else ''}"
    n = f"{tr.n_min} seeds"
    if tr.beyond_noise:
        return f"beyond seed noise: {ci}, {n} per point"
    return f"not distinguishable from no trend with {n} per point: {ci}"
