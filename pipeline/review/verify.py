"""`make verify`: rerun a sample of the recorded runs into a scratch folder and check that they reproduce.

Each run is retrained with exactly what its run.json recorded (params, seed, profile, threads). On the same machine
(same device, precision and package versions) training is deterministic, so every metric and every test prediction
must be identical. Elsewhere bitwise equality is not expected: each metric must fall within the spread the recorded
seeds of that variant show (a 95% prediction interval for one more seed); counts that do not depend on the seed
(parameters, MACs) must still be identical.
"""
from __future__ import annotations

import copy
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from scipy import stats as st

from .. import paths
from . import ReviewError
from .build import Build, Run, read_runs
from .diff import NOT_SEEDED, compare_predictions, same

SAMPLES = ("per-family", "all")


@dataclass
class Check:
    where: str
    same_env: bool
    env_note: str
    problems: list[str] = field(default_factory=list)   # any problem fails the run
    unjudged: list[str] = field(default_factory=list)   # elsewhere with a single recorded seed: nothing to judge by
    metrics: int = 0
    predictions: str = "–"

    @property
    def ok(self) -> bool:
        return not self.problems


def choose(build: Build, spec: str, variant_order: dict[str, list[str]]) -> list[Run]:
    """'per-family': one run per family (its first variant in config order, lowest seed); 'all'; or a comma list of
    FAMILY[/VARIANT[/SEED]]."""
    runs = sorted(build.runs.values(), key=lambda r: (r.family, _rank(variant_order, r), r.seed))
    if spec == "all":
        return runs
    if spec == "per-family":
        first: dict[str, Run] = {}
        for r in runs:
            first.setdefault(r.family, r)
        return list(first.values())
    chosen = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        bits = part.split("/")
        match = [r for r in runs if [r.family, r.variant, str(r.seed)][:len(bits)] ==
                 [bits[0], *bits[1:2], *(b.removeprefix("seed") for b in bits[2:3])]]
        if not match:
            raise ReviewError(f"verify sample {part!r}: no recorded run matches; use all, per-family or "
                              f"FAMILY[/VARIANT[/SEED]] (recorded families: {', '.join(build.families)})")
        chosen += [r for r in match if r not in chosen]
    return chosen


def _rank(order: dict[str, list[str]], r: Run) -> int:
    variants = order.get(r.family, [])
    return variants.index(r.variant) if r.variant in variants else len(variants)


def environment(info: dict) -> tuple:
    """What bitwise reproducibility depends on: the hardware path, the precision, the library versions, threads."""
    return info.get("device"), info.get("precision"), info.get("threads"), tuple(sorted(
        (info.get("packages") or {}).items()))


def rerun(run: Run, cfg: dict, scratch: Path) -> Run:
    from ..run import execute
    cfg = copy.deepcopy(cfg)
    cfg["results_dir"] = str(scratch)
    cfg["profile"] = run.info.get("profile", cfg.get("profile"))
    if run.info.get("precision") in ("fp32", "bf16"):
        cfg["precision"] = run.info["precision"]        # as recorded, not as the configuration now resolves it
    for stale in (paths.run_dir(scratch, *run.key), paths.checkpoint_dir(scratch, *run.key)):
        shutil.rmtree(stale, ignore_errors=True)          # never resume from an earlier verify's checkpoint
    execute(run.family, run.variant, run.seed, cfg, params=run.info["params"], threads=run.info.get("threads"))
    return read_runs(scratch)[run.key]


def within_spread(value: float, seeds: list[float], level: float = 0.95) -> bool | None:
    """Is `value` a plausible further seed of this variant? None when fewer than 2 recorded seeds."""
    if len(seeds) < 2:
        return None
    n = len(seeds)
    mean = math.fsum(seeds) / n
    sd = math.sqrt(math.fsum((s - mean) ** 2 for s in seeds) / (n - 1))
    half = float(st.t.ppf(0.5 + level / 2, n - 1)) * sd * math.sqrt(1 + 1 / n)
    return abs(value - mean) <= half


def check(recorded: Build, old: Run, new: Run) -> Check:
    here = environment(old.info) == environment(new.info)
    note = "same machine and precision" if here else (
        f"elsewhere ({old.info.get('device')}, {old.info.get('precision')} -> "
        f"{new.info.get('device')}, {new.info.get('precision')})")
    c = Check(old.where, here, note, metrics=len(set(old.metrics) | set(new.metrics)))
    changed, total, pnote = compare_predictions(old.predictions, new.predictions)
    if total is not None:
        c.predictions = f"{changed}/{total} changed"
    for name in sorted(set(old.metrics) | set(new.metrics)):
        a, b = old.metrics.get(name), new.metrics.get(name)
        if same(a, b):
            continue
        if here or NOT_SEEDED.match(name) or not all(isinstance(v, (int, float)) for v in (a, b)):
            c.problems.append(f"{name} {a} -> {b}")
            continue
        seeds = [r.metrics[name] for r in recorded.seeds_of(old.family, old.variant)
                 if isinstance(r.metrics.get(name), (int, float))]
        verdict = within_spread(float(b), [float(s) for s in seeds])
        if verdict is None:
            c.unjudged.append(f"{name} {a} -> {b} (single recorded seed)")
        elif not verdict:
            c.problems.append(f"{name} {a} -> {b}: outside the {len(seeds)} recorded seeds' spread")
    if here and changed:
        c.problems.append(f"{changed} of {total} test predictions changed")
    if pnote and here:
        c.problems.append(pnote)
    return c


def verify(recorded: Build, cfg: dict, sample: str = "per-family", scratch: Path | None = None,
           log=print) -> list[Check]:
    order = {f: list(spec.get("variants", {})) for f, spec in cfg.get("families", {}).items()}
    chosen = choose(recorded, sample, order)
    if not chosen:
        raise ReviewError(f"{recorded.label}: no finished runs to verify (build first: make report)")
    scratch = Path(scratch or Path(cfg["results_dir"]) / "verify")
    checks = []
    for run in chosen:
        if "params" not in run.info:
            raise ReviewError(f"{run.where}: run.json has no recorded params; it cannot be rerun as recorded")
        log(f"verify: rerunning {run.where} into {scratch} ...")
        c = check(recorded, run, rerun(run, cfg, scratch))
        checks.append(c)
        log(format_check(c))
    return checks


def format_check(c: Check) -> str:
    state = "PASS" if c.ok else "FAIL"
    what = "identical" if c.ok and not c.unjudged and c.same_env else (
        "within noise" if c.ok else "; ".join(c.problems))
    extra = f"; not judged: {'; '.join(c.unjudged)}" if c.unjudged else ""
    return f"{state} {c.where}: {c.env_note}; {c.metrics} metrics {what}; predictions {c.predictions}{extra}"
