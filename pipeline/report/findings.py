"""Sentences that state findings, generated from result tables, never typed by hand.

Every comparison says whether the difference exceeds the spread across seeds, or that there is only one seed.
"""
from __future__ import annotations

import math

import pandas as pd


def pct(x: float, digits: int = 2) -> str:
    return f"{100 * x:.{digits}f}%"


def pp(x: float, digits: int = 2) -> str:
    """A difference of two accuracies, in percentage points."""
    return f"{100 * x:+.{digits}f} pp"


def _std(row: pd.Series, col: str) -> float:
    v = row.get(f"{col}_std", float("nan"))
    return float(v) if v is not None else float("nan")


def spread_clause(a: pd.Series, b: pd.Series, col: str, scale: float = 100, unit: str = "pp") -> str:
    """Does |mean_a - mean_b| exceed the seed spread? Spread = the larger of the two std's (ddof=1)."""
    na, nb = int(a.get("n_seeds", 1)), int(b.get("n_seeds", 1))
    if min(na, nb) < 2:
        return "single seed"
    spread = max(_std(a, col), _std(b, col))
    diff = abs(float(a[col]) - float(b[col]))
    verdict = "exceeds" if diff > 2 * spread else "does not exceed"
    return (f"the difference {verdict} twice the seed spread "
            f"(std {scale * spread:.2f} {unit} over {min(na, nb)} seeds)")


def compare(a: pd.Series, b: pd.Series, col: str, name_a: str, name_b: str, fmt=pct, diff_fmt=pp) -> str:
    diff = float(a[col]) - float(b[col])
    return (f"{name_a} {fmt(float(a[col]))} vs {name_b} {fmt(float(b[col]))} ({diff_fmt(diff)}; "
            f"{spread_clause(a, b, col)})")


def best(table: pd.DataFrame, col: str, largest: bool = True) -> pd.Series:
    return table.loc[table[col].idxmax() if largest else table[col].idxmin()]


def seeds_note(table: pd.DataFrame) -> str:
    n = sorted(set(int(v) for v in table["n_seeds"]))
    if n == [1]:
        return "one seed per variant (no spread estimate)"
    return f"{'-'.join(map(str, n))} seeds per variant, mean ± std"


def mean_std(row: pd.Series, col: str, scale: float = 100, digits: int = 2) -> str:
    std = _std(row, col)
    base = f"{scale * float(row[col]):.{digits}f}"
    return base if math.isnan(std) else f"{base} ± {scale * std:.{digits}f}"
