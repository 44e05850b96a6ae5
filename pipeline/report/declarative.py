"""Findings declared in assignment.yaml (`findings:`), computed from the aggregated tables.

Most findings of a report take one of four shapes, so an assignment states which, on what, and this module words it:

    best        the best variant of a table on a metric, chosen on validation, reported with its test value
    compare     variant A against variant B (or the two closest in size across two tables, or with `pairs: each`
                every variant of the second table against its closest in the first), Welch's t across seeds
    trend       least-squares slope of a metric over a numeric setting, per doubling of that setting
    dimensions  variants grouped by the settings they change, each group against a reference variant

Entry keys: id, kind, table (a family) or tables (two families), metric, variants, and optionally choose_on, over,
against, match, pairs, section and question (where the template places it and which question it answers). The wording of
tests and levels is findings.py's, so declared and hand-written findings read the same.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .findings import (LEVEL, difference, is_rate, level, lower_is_better, metric_name, noise_clause, per_doubling,
                       plural, pp, trend_clause)
from .render import ReportError

KINDS = ("best", "compare", "dimensions", "trend")
KEYS = {"id", "kind", "table", "tables", "metric", "variants", "choose_on", "over", "against", "match", "pairs",
        "section", "question"}
PAIRS = ("closest", "each")


class FindingsError(ReportError):
    """An assignment.yaml `findings:` entry that cannot be computed; one line naming the file and the fix."""


@dataclass
class Finding:
    id: str
    kind: str
    text: str
    numbers: dict = field(default_factory=dict)
    section: str | None = None
    question: str | None = None
    table: pd.DataFrame | None = None


def check(entries: Any, variants: dict[str, list[str]], where: str) -> list[dict]:
    """Validate the `findings:` list against the families (name -> variants) the assignment may read."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise FindingsError(f"{where}: findings must be a list of mappings, got {type(entries).__name__}")
    seen = set()
    for i, e in enumerate(entries):
        def bad(msg: str) -> FindingsError:
            name = e.get("id", "no id") if isinstance(e, dict) else repr(e)
            return FindingsError(f"{where}: findings[{i}] ({name}): {msg}")
        if not isinstance(e, dict):
            raise bad("must be a mapping with id and kind")
        if not isinstance(e.get("id"), str) or not e["id"]:
            raise bad("needs an id (a short name, unique in this file)")
        if e["id"] in seen:
            raise bad("id used twice; give each finding its own id")
        seen.add(e["id"])
        unknown = sorted(set(e) - KEYS)
        if unknown:
            raise bad(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(KEYS))}")
        if e.get("kind") not in KINDS:
            raise bad(f"unknown kind {e.get('kind')!r}; use one of {', '.join(KINDS)}")
        if not isinstance(e.get("metric"), str):
            raise bad("needs a metric (a column of results/tables/FAMILY.csv, e.g. test_acc)")
        tables = _tables(e)
        if not tables or (e["kind"] != "compare" and len(tables) != 1):
            raise bad("needs table: FAMILY" + (" (or tables: [A, B] with match: params)" if e["kind"] == "compare"
                                               else ""))
        for t in tables:
            if t not in variants:
                raise bad(f"table {t!r} is not one of this assignment's families ({', '.join(variants)}); "
                          "fix the table name or add it to uses:")
        for fam, v in _named_variants(e):
            if fam not in variants:
                raise bad(f"variant {fam}/{v}: {fam!r} is not one of this assignment's families "
                          f"({', '.join(variants)})")
            if v not in variants[fam]:
                raise bad(f"variant {v!r} is not in family {fam!r} (has: {', '.join(variants[fam])}); "
                          "fix the variant name")
        if e["kind"] == "compare":
            if len(_named_variants(e)) != 2 and not (len(tables) == 2 and e.get("match")):
                raise bad("compare needs variants: [A, B] (FAMILY/VARIANT across tables), "
                          "or tables: [A, B] with match: COLUMN (the closest pair on that column)")
            if e.get("pairs", "closest") not in PAIRS or (e.get("pairs") and not e.get("match")):
                raise bad(f"pairs: {e.get('pairs')!r}; use pairs: closest (the one closest pair) or pairs: each (every "
                          "variant of the second table against its closest in the first), with tables: [A, B] and "
                          "match: COLUMN")
    return entries


def _tables(e: dict) -> list[str]:
    t = e.get("tables", e.get("table"))
    return [t] if isinstance(t, str) else list(t or [])


def _named_variants(e: dict) -> list[tuple[str, str]]:
    """(family, variant) for each declared variant; a bare name belongs to the entry's first table."""
    out = []
    for name in e.get("variants") or []:
        fam, _, v = str(name).rpartition("/")
        out.append((fam or _tables(e)[0], v))
    if e.get("against"):
        out.append((_tables(e)[0], str(e["against"])))
    return out


def compute(entries: list[dict], tables: dict[str, pd.DataFrame], cfg: dict, where: str) -> dict[str, Finding]:
    """Every declared finding, by id, in declaration order."""
    out = {}
    for i, e in enumerate(entries):
        for t in _tables(e):
            for col in (e["metric"], e.get("choose_on"), e.get("over"), e.get("match")):
                if col and col not in tables[t].columns:
                    raise FindingsError(f"{where}: findings[{i}] ({e['id']}): {col!r} is not a column of "
                                        f"results/tables/{t}.csv (has: {', '.join(tables[t].columns)}); fix the "
                                        "metric name")
        f = KIND_FN[e["kind"]](e, tables, cfg)
        f.section, f.question = e.get("section"), e.get("question")
        out[e["id"]] = f
    return out


def _row(tables: dict[str, pd.DataFrame], fam: str, variant: str) -> pd.Series:
    t = tables[fam]
    return t.loc[t["variant"] == variant].iloc[0]


def _diff_text(d, metric: str) -> str:
    """'+0.42 pp' for rates, else the difference in the column's own unit."""
    return pp(d.diff) if is_rate(metric) else f"{d.diff:+.4g}"


def _clause(d, metric: str) -> str:
    return noise_clause(d) if is_rate(metric) else noise_clause(d, scale=1, unit="")


def _size(r: pd.Series) -> str:
    return f" ({int(r['params']):,} parameters)" if "params" in r.index else ""


def best(e: dict, tables: dict[str, pd.DataFrame], cfg: dict) -> Finding:
    fam = _tables(e)[0]
    t = tables[fam]
    metric = e["metric"]
    on = e.get("choose_on") or (metric.replace("test_", "val_", 1) if metric.replace("test_", "val_", 1) in t.columns
                                else metric)
    pick = t.loc[t[on].idxmin() if lower_is_better(on) else t[on].idxmax()]
    how = f"chosen on {metric_name(on)}" + (f" ({level(on, pick[on])})" if on != metric else "")
    text = (f"{fam}: {how}, {pick['variant']}{_size(pick)} reaches {metric_name(metric)} "
            f"{level(metric, pick[metric])}.")
    return Finding(e["id"], "best", text, {"family": fam, "variant": pick["variant"], "metric": metric,
                                           "value": float(pick[metric]), "chosen_on": on, "on_value": float(pick[on])})


def closest(a: pd.DataFrame, b: pd.DataFrame, col: str) -> tuple[pd.Series, pd.Series]:
    """The pair (one row of each table) whose `col` values are closest on a log scale (sizes span decades)."""
    import math
    pairs = [(abs(math.log(float(ra[col]) / float(rb[col]))), i, j)
             for i, ra in a.iterrows() for j, rb in b.iterrows() if ra[col] > 0 and rb[col] > 0]
    _, i, j = min(pairs)
    return a.loc[i], b.loc[j]


def each_pair(e: dict, tables: dict[str, pd.DataFrame]) -> Finding:
    """Every variant of the second table against the variant of the first closest to it in `match`, each pair by
    Welch's t across seeds: a table of the pairs and a count of the verdicts."""
    metric, col = e["metric"], e["match"]
    fa, fb = _tables(e)
    scale = 100 if is_rate(metric) else 1
    rows, pairs = [], []
    for j in tables[fb].index:
        if not tables[fb].loc[j, col] > 0:
            continue
        ra, rb = closest(tables[fa], tables[fb].loc[[j]], col)
        d = difference(rb, ra, metric)
        verdict = ("higher" if d.diff > 0 else "lower") if d.beyond_noise else "within"
        pairs.append({"a": f"{fa}/{ra['variant']}", "b": f"{fb}/{rb['variant']}",
                      "ratio": float(rb[col]) / float(ra[col]), "diff": d.diff, "low": d.low, "high": d.high,
                      "seeds": min(d.n_a, d.n_b), "testable": d.testable, "beyond_noise": d.beyond_noise,
                      "verdict": verdict})
        rows.append({f"{fb} variant": f"{rb['variant']} ({level(col, rb[col])})",
                     f"{fa} variant": f"{ra['variant']} ({level(col, ra[col])})",
                     f"{fb} / {fa}": f"{pairs[-1]['ratio']:.2f}", fb: level(metric, rb[metric]),
                     fa: level(metric, ra[metric]), f"{fb} \u2212 {fa}": _diff_text(d, metric),
                     # No-break spaces: a range or a verdict broken over two lines of a narrow column misreads.
                     f"{LEVEL:.0%} CI": (f"{scale * d.low:+.2f}\u00a0to\u00a0{scale * d.high:+.2f}" if d.testable
                                         else "-"),
                     "Verdict": {"higher": "higher", "lower": "lower", "within": "within\u00a0noise"}[verdict]
                     if d.testable else "single\u00a0seed"})
    tested = [q for q in pairs if q["testable"]]
    counts = {v: sum(q["verdict"] == v for q in tested) for v in ("higher", "lower", "within")}
    if not pairs:
        text = f"No {fb} variant has a positive {metric_name(col)} to match."
    else:
        verdicts = (f"{fb} higher beyond seed noise in {counts['higher']} of {len(tested)} pairs, lower in "
                    f"{counts['lower']}, not distinguishable in {counts['within']} (Welch's t on "
                    f"{min(q['seeds'] for q in tested)} seeds; each pair's {LEVEL:.0%} CI in the table)"
                    if tested else "single seed: no test")
        text = (f"Each {fb} variant against the {fa} variant closest to it in {metric_name(col)} "
                f"({plural(len(pairs), 'pair')}; {metric_name(col)} {fb}/{fa} {min(q['ratio'] for q in pairs):.2f} "
                f"to {max(q['ratio'] for q in pairs):.2f}), {metric_name(metric)}: {verdicts}.")
    return Finding(e["id"], "compare", text, {"pairs": pairs, "metric": metric, "level": LEVEL, **counts,
                                              "testable": bool(tested)}, table=pd.DataFrame(rows))


def compare(e: dict, tables: dict[str, pd.DataFrame], cfg: dict) -> Finding:
    if e.get("pairs") == "each":
        return each_pair(e, tables)
    metric = e["metric"]
    named = _named_variants(e)
    if len(named) == 2:
        (fa, va), (fb, vb) = named
        ra, rb = _row(tables, fa, va), _row(tables, fb, vb)
        lead = ""
    else:
        fa, fb = _tables(e)
        ra, rb = closest(tables[fa], tables[fb], e["match"])
        ratio = float(ra[e["match"]]) / float(rb[e["match"]])
        lead = (f"Closest in {metric_name(e['match'])}: {fa} {ra['variant']} ({level(e['match'], ra[e['match']])}) "
                f"and {fb} {rb['variant']} ({level(e['match'], rb[e['match']])}, ratio {ratio:.2f}). ")
    name_a = ra["variant"] if fa == fb else f"{fa} {ra['variant']}"
    name_b = rb["variant"] if fa == fb else f"{fb} {rb['variant']}"
    d = difference(ra, rb, metric)
    text = (f"{lead}{metric_name(metric).capitalize()}: {name_a} {level(metric, ra[metric])} vs {name_b} "
            f"{level(metric, rb[metric])} ({_diff_text(d, metric)}; {_clause(d, metric)}).")
    return Finding(e["id"], "compare", text, {
        "a": f"{fa}/{ra['variant']}", "b": f"{fb}/{rb['variant']}", "metric": metric, "diff": d.diff,
        "low": d.low, "high": d.high, "level": LEVEL, "testable": d.testable, "beyond_noise": d.beyond_noise})


def trend(e: dict, tables: dict[str, pd.DataFrame], cfg: dict) -> Finding:
    fam = _tables(e)[0]
    t = tables[fam]
    if e.get("variants"):
        t = t[t["variant"].isin([v for _, v in _named_variants(e)])]
    over, metric = e.get("over") or "params", e["metric"]
    t = t.sort_values(over)
    scale, unit = (100, "pp") if is_rate(metric) else (1, "")
    if t[over].nunique() < 2 or (t[over] <= 0).any():
        return Finding(e["id"], "trend", f"{fam}: too few distinct positive {metric_name(over)} for a trend of "
                                         f"{metric_name(metric)}.", {"slope": float("nan"), "n": len(t)})
    tr = per_doubling(t, over, metric)
    slope = scale * tr.slope
    text = (f"{fam}: {metric_name(metric)} changes by {slope:+.2f}{' ' + unit if unit else ''} per doubling of the "
            f"{metric_name(over)} (least squares on log\u2082 {metric_name(over)} over {plural(len(t), 'variant')}, "
            f"{level(over, t[over].min())} to {level(over, t[over].max())}; {trend_clause(tr, scale, unit)}).")
    return Finding(e["id"], "trend", text, {"family": fam, "slope": slope, "unit": unit, "n": len(t),
                                            "over": over, "lo": float(t[over].min()), "hi": float(t[over].max()),
                                            "low": scale * tr.low, "high": scale * tr.high,
                                            "testable": tr.testable, "beyond_noise": tr.beyond_noise})


def dimension(defaults: dict, own: dict) -> str:
    """What a variant changes: the settings it sets differently from its family's defaults."""
    keys = [k for k in (own or {}) if own[k] != defaults.get(k)]
    return " + ".join(keys) if keys else "reference"


def dimensions(e: dict, tables: dict[str, pd.DataFrame], cfg: dict) -> Finding:
    fam = _tables(e)[0]
    t = tables[fam]
    spec = cfg["families"][fam]
    ref_name = e.get("against") or ("base" if "base" in set(t["variant"]) else t["variant"].iloc[0])
    ref = _row(tables, fam, ref_name)
    metric = e["metric"]
    sign = -1 if lower_is_better(metric) else 1
    groups: dict[str, list[pd.Series]] = {}
    for _, r in t.iterrows():
        if r["variant"] != ref_name:
            groups.setdefault(dimension(spec.get("defaults", {}), spec["variants"].get(r["variant"])), []).append(r)
    rows, parts = [], []
    # Each variant against the reference by Welch's test: how many of a group differ beyond seed noise.
    tests = {r["variant"]: difference(r, ref, metric) for members in groups.values() for r in members}
    tested = all(d.testable for d in tests.values())
    for dim, members in groups.items():
        deltas = [float(r[metric]) - float(ref[metric]) for r in members]
        top = members[max(range(len(members)), key=lambda k: sign * deltas[k])]
        fmt = pp if is_rate(metric) else (lambda x: f"{x:+.4g}")
        span = fmt(min(deltas)) if len(deltas) == 1 else f"{fmt(min(deltas))} to {fmt(max(deltas))}"
        beyond = f"{sum(tests[r['variant']].beyond_noise for r in members)} of {len(members)}"
        rows.append({"Changes": dim, "Variants": ", ".join(r["variant"] for r in members),
                     f"{metric_name(metric).capitalize()} vs {ref_name}": span, "Best": top["variant"],
                     **({"Beyond seed noise": beyond} if tested else {})})
        parts.append(f"{dim} ({span}" + (f", {beyond} beyond seed noise" if tested else "") + ")")
    n = min(min(d.n_a, d.n_b) for d in tests.values()) if tests else int(ref.get("n_seeds", 1))
    text = (f"{fam}, {metric_name(metric)} against {ref_name} ({level(metric, ref[metric])}) by what the variants "
            f"change: " + "; ".join(parts) + "."
            + (f" Each variant is tested against {ref_name} with Welch's t on {n} seeds at {LEVEL:.0%}." if tested
               else " Single seed: no test."))
    return Finding(e["id"], "dimensions", text, {"family": fam, "reference": ref_name, "groups": list(groups)},
                   table=pd.DataFrame(rows))


KIND_FN = {"best": best, "compare": compare, "dimensions": dimensions, "trend": trend}
