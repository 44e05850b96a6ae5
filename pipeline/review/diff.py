"""`python -m pipeline diff OLD NEW`: every number the reports print, old vs new, with a verdict.

Verdicts, in the order a reader should worry about them:
- beyond_noise:   changed beyond noise. Seed-dependent numbers: Welch's t on the per-seed values (each run's
                  metrics.json) excludes 0 from the 95% interval of the change. Numbers that do not depend on the
                  seed (parameter and MAC counts, learning rates, data sizes, analyses) have no noise: any change.
- not_comparable: a single seed on either side (no spread to judge against), a variant/column/analysis present on one
                  side only, or a different profile or training precision.
- within_noise:   changed, but by less than the spread across seeds explains.
- timing:         wall-clock columns (seconds per epoch, ...): they differ between any two runs and are reported,
                  never judged.
- identical.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field

import pandas as pd

from .. import paths
from ..stats import Difference, welch, welch_from_stats
from . import ReviewError
from .build import Build, Run

VERDICTS = {"beyond_noise": "changed beyond noise", "not_comparable": "not comparable",
            "within_noise": "within noise", "timing": "timing (not judged)", "identical": "identical"}
TIMING = re.compile(r"seconds|wall|(^|_)time($|_)|per_sec|throughput")
# Same value for every seed by construction; a change can only come from a change of settings or code.
NOT_SEEDED = re.compile(r"^(params|macs|lr|n_[a-z_]+)$")
NAN = float("nan")


@dataclass
class Item:
    family: str            # family, or "analysis"
    variant: str           # variant, or the analysis' name
    name: str              # table column, or the number's path in the analysis JSON
    old: float | None
    new: float | None
    verdict: str
    reason: str
    source: str            # tables/cnn.csv, analysis/attention.json
    runs: str = ""         # the runs behind a table cell: runs/cnn/base/seed{0,1}
    n_old: int = 0
    n_new: int = 0
    low: float = NAN
    high: float = NAN
    p: float = NAN

    @property
    def diff(self) -> float:
        return NAN if self.old is None or self.new is None else self.new - self.old

    def to_json(self) -> dict:
        return {**asdict(self), "diff": self.diff, "label": VERDICTS[self.verdict]}


@dataclass
class RunChange:
    family: str
    variant: str
    seed: int
    where: str
    metrics_changed: list[str] = field(default_factory=list)
    metrics_compared: int = 0
    predictions_changed: int | None = None   # None: nothing to compare (see note)
    predictions_total: int | None = None
    note: str = ""


@dataclass
class Result:
    old: Build
    new: Build
    items: list[Item]
    runs: list[RunChange]
    settings: dict[str, list[str]]          # "family/variant" -> ["lr 0.001 -> 0.01", ...]
    notes: list[str]

    def counts(self, family: str | None = None) -> dict[str, int]:
        out = dict.fromkeys(VERDICTS, 0)
        for it in self.items:
            if family in (None, it.family):
                out[it.verdict] += 1
        return out

    def families(self) -> list[str]:
        return list(dict.fromkeys(it.family for it in self.items))

    @property
    def beyond_noise(self) -> bool:
        return any(it.verdict == "beyond_noise" for it in self.items)


# ------------------------------------------------------------------------------------------------ helpers

def _num(v) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f


def same(a, b) -> bool:
    """Equal, counting NaN (a metric a run could not compute) as equal to NaN."""
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def _fmt(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def flatten(obj, prefix: str = "") -> dict[str, object]:
    """Leaves of a JSON document by path (a.b[2].c); strings and bools kept so settings diffs can name them."""
    if isinstance(obj, dict):
        out: dict[str, object] = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(obj, list):
        out = {}
        for i, v in enumerate(obj):
            out.update(flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: obj}


def param_changes(old: dict, new: dict) -> list[str]:
    a, b = flatten(old), flatten(new)
    return [f"{k} {_fmt(a.get(k, '(unset)'))} -> {_fmt(b.get(k, '(unset)'))}"
            for k in sorted(set(a) | set(b)) if a.get(k, "(unset)") != b.get(k, "(unset)")]


def _seed_list(runs: list[Run]) -> str:
    if not runs:
        return ""
    seeds = ",".join(str(r.seed) for r in runs)
    return (paths.run_dir("", runs[0].family, runs[0].variant, f"{{{seeds}}}").as_posix() if len(runs) > 1
            else runs[0].where)


def table_or_summary(build: Build, family: str) -> tuple[pd.DataFrame | None, str]:
    """The family's aggregate table; a results folder that was never aggregated is summarised from its runs."""
    if family in build.tables:
        return build.tables[family], paths.table("", family).as_posix()
    rows = [{"variant": r.variant, "seed": r.seed, **{k: v for k, v in r.metrics.items() if _num(v) is not None}}
            for k, r in sorted(build.runs.items()) if k[0] == family]
    if not rows:
        return None, ""
    from ..aggregate import summarise
    return summarise(pd.DataFrame(rows)), f"{paths.family_runs('', family).as_posix()} (no table: summarised)"


def value_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c not in ("variant", "change", "n_seeds") and not c.endswith("_std")
            and pd.api.types.is_numeric_dtype(table[c])]


# ------------------------------------------------------------------------------------------------ verdicts

def judge(name: str, ov: float, nv: float, o_runs: list[Run], n_runs: list[Run], o_row,
          n_row) -> tuple[str, str, Difference | None]:
    """Verdict for one table cell whose two sides are comparable (same profile and precision)."""
    if same(ov, nv):
        return "identical", "", None
    if TIMING.search(name):
        return "timing", "wall-clock: differs between any two runs; reported, not judged", None
    if NOT_SEEDED.match(name):
        return "beyond_noise", "does not depend on the seed: any change is real", None
    o_vals = [_num(r.metrics.get(name)) for r in o_runs]
    n_vals = [_num(r.metrics.get(name)) for r in n_runs]
    n_o, n_n = int(o_row.get("n_seeds", len(o_runs)) or 0), int(n_row.get("n_seeds", len(n_runs)) or 0)
    if len(o_vals) == n_o and len(n_vals) == n_n and None not in o_vals + n_vals:
        d = welch(n_vals, o_vals)                      # the per-seed values behind the table's means
    else:                                              # derived columns (curve summaries): the table's mean/std
        d = welch_from_stats(nv, n_row.get(f"{name}_std", NAN), n_n, ov, o_row.get(f"{name}_std", NAN), n_o)
    if not d.testable:
        side = " and ".join(s for s, n in (("OLD", d.n_b), ("NEW", d.n_a)) if n < 2)
        return "not_comparable", f"single seed in {side}: no spread to judge against", d
    ci = f"95% CI of the change [{d.low:+.4g}, {d.high:+.4g}], p={d.p:.3g}, {d.n_b} vs {d.n_a} seeds"
    if d.beyond_noise:
        return "beyond_noise", f"{ci}: excludes 0", d
    return "within_noise", f"{ci}: includes 0", d


def _precisions(runs: list[Run]) -> str:
    return ",".join(sorted({str(r.info.get("precision")) for r in runs})) or "unknown"


def compare_family(old: Build, new: Build, family: str) -> list[Item]:
    ot, osrc = table_or_summary(old, family)
    nt, nsrc = table_or_summary(new, family)
    items: list[Item] = []
    if ot is None or nt is None:
        side, t, src = ("NEW", ot, osrc) if nt is None else ("OLD", nt, nsrc)
        for _, row in t.iterrows():
            for c in value_columns(t):
                v = _num(row[c])
                items.append(Item(family, row["variant"], c, v if nt is None else None, v if ot is None else None,
                                  "not_comparable", f"family not in {side}", src))
        return items
    o_prof, n_prof = old.profiles(family), new.profiles(family)
    profile_note = "" if o_prof == n_prof else f"profile {','.join(sorted(o_prof))} -> {','.join(sorted(n_prof))}"
    orows = {r["variant"]: r for _, r in ot.iterrows()}
    nrows = {r["variant"]: r for _, r in nt.iterrows()}
    columns = list(dict.fromkeys(value_columns(ot) + value_columns(nt)))
    src = osrc if osrc == nsrc else f"{osrc} / {nsrc}"
    for variant in list(dict.fromkeys(list(orows) + list(nrows))):
        o_row, n_row = orows.get(variant), nrows.get(variant)
        o_runs, n_runs = old.seeds_of(family, variant), new.seeds_of(family, variant)
        runs = _seed_list(n_runs or o_runs)
        if o_runs and n_runs and _seed_list(o_runs) != _seed_list(n_runs):
            runs = f"{_seed_list(o_runs)} -> {_seed_list(n_runs)}"
        for c in columns:
            ov = _num(o_row[c]) if o_row is not None and c in o_row else None
            nv = _num(n_row[c]) if n_row is not None and c in n_row else None
            item = Item(family, variant, c, ov, nv, "not_comparable", "", src, runs,
                        int(o_row["n_seeds"]) if o_row is not None and "n_seeds" in o_row else len(o_runs),
                        int(n_row["n_seeds"]) if n_row is not None and "n_seeds" in n_row else len(n_runs))
            if o_row is None or n_row is None:
                item.reason = "variant added" if o_row is None else "variant removed"
            elif ov is None or nv is None:
                item.reason = "column only in " + ("NEW" if ov is None else "OLD")
            elif profile_note and not same(ov, nv):
                item.reason = profile_note
            elif o_runs and n_runs and _precisions(o_runs) != _precisions(n_runs) and not same(ov, nv):
                item.reason = f"precision {_precisions(o_runs)} -> {_precisions(n_runs)}"
            else:
                item.verdict, item.reason, d = judge(c, ov, nv, o_runs, n_runs, o_row, n_row)
                if d is not None:
                    item.low, item.high, item.p = d.low, d.high, d.p
            items.append(item)
    return items


def compare_analysis(old: Build, new: Build, name: str) -> list[Item]:
    """Analyses need no training and use no seed: each number is identical or changed."""
    o = flatten(old.analyses.get(name, {}))
    n = flatten(new.analyses.get(name, {}))
    items = []
    for path in list(dict.fromkeys(list(o) + list(n))):
        ov, nv = _num(o.get(path)), _num(n.get(path))
        if (path in o and ov is None) or (path in n and nv is None):
            continue                                     # text and flags: not numbers a report prints
        item = Item("analysis", name, path, ov, nv, "identical", "", paths.analysis("", name).as_posix())
        if ov is None or nv is None:
            where = "analysis" if name not in (old.analyses if ov is None else new.analyses) else "number"
            item.verdict, item.reason = "not_comparable", f"{where} only in {'NEW' if ov is None else 'OLD'}"
        elif not same(ov, nv):
            item.verdict, item.reason = "beyond_noise", "computed without a seed: any change is real"
        items.append(item)
    return items


def compare_predictions(o: dict | None, n: dict | None) -> tuple[int | None, int | None, str]:
    if o is None or n is None:
        return None, None, ("" if o is None and n is None else f"predictions only in {'NEW' if o is None else 'OLD'}")
    if o.get("kind") != n.get("kind") or o.get("split") != n.get("split"):
        return None, None, f"predictions of another kind ({o.get('kind')} -> {n.get('kind')})"
    if o.get("keys") is not None or n.get("keys") is not None:       # G2P: per word, matched by word
        ov, nv = dict(zip(o.get("keys") or [], o["values"])), dict(zip(n.get("keys") or [], n["values"]))
        common = [k for k in ov if k in nv]
        extra = len(set(ov) ^ set(nv))
        return (sum(ov[k] != nv[k] for k in common), len(common),
                f"{extra} words on one side only" if extra else "")
    ov, nv = o["values"], n["values"]
    if len(ov) != len(nv):
        return None, None, f"test sets differ in size ({len(ov)} -> {len(nv)})"
    return sum(a != b for a, b in zip(ov, nv)), len(ov), ""


def compare_runs(old: Build, new: Build) -> list[RunChange]:
    out = []
    for key in sorted(set(old.runs) | set(new.runs)):
        o, n = old.runs.get(key), new.runs.get(key)
        rc = RunChange(*key, where=(o or n).where)
        if o is None or n is None:
            rc.note = f"run only in {'NEW' if o is None else 'OLD'}"
        else:
            names = sorted(set(o.metrics) | set(n.metrics))
            rc.metrics_compared = len(names)
            rc.metrics_changed = [m for m in names if not same(o.metrics.get(m), n.metrics.get(m))]
            rc.predictions_changed, rc.predictions_total, rc.note = compare_predictions(o.predictions,
                                                                                         n.predictions)
        out.append(rc)
    return out


def settings_changes(old: Build, new: Build) -> dict[str, list[str]]:
    """What each variant was trained with, where the two builds differ (from run.json: the recorded params)."""
    out = {}
    for fam, var in sorted({k[:2] for k in old.runs} & {k[:2] for k in new.runs}):
        o, n = old.seeds_of(fam, var)[0].info, new.seeds_of(fam, var)[0].info
        changes = param_changes(o.get("params", {}), n.get("params", {}))
        for key in ("profile", "precision"):
            if o.get(key) != n.get(key):
                changes.append(f"{key} {o.get(key)} -> {n.get(key)}")
        if changes:
            out[f"{fam}/{var}"] = changes
    return out


def check_same_subject(old: Build, new: Build, assignment_of: dict[str, str]) -> None:
    """Two builds of different assignments (no family or analysis in common) have nothing to compare."""
    if set(old.families) & set(new.families) or set(old.analyses) & set(new.analyses):
        return

    def what(b: Build) -> str:
        names = b.families + sorted(b.analyses)
        subjects = sorted({assignment_of.get(f, "?") for f in names})
        return f"{', '.join(names) or 'nothing'} ({', '.join(subjects)})"

    raise ReviewError(f"{old.label} and {new.label} share no family or analysis: {what(old)} vs {what(new)}; "
                      f"compare builds of the same assignment")


def diff(old: Build, new: Build, assignment_of: dict[str, str] | None = None) -> Result:
    check_same_subject(old, new, assignment_of or {})
    items: list[Item] = []
    notes = []
    for family in list(dict.fromkeys(old.families + new.families)):
        items += compare_family(old, new, family)
    for name in sorted(set(old.analyses) | set(new.analyses)):
        items += compare_analysis(old, new, name)
    if old.profiles() != new.profiles():
        notes.append(f"profiles differ ({', '.join(sorted(old.profiles()))} -> {', '.join(sorted(new.profiles()))}):"
                     " changed training numbers are not comparable")
    return Result(old, new, items, compare_runs(old, new), settings_changes(old, new), notes)
