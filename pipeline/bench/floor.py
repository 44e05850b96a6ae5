"""A profile's training at pure compute: what its runs would cost if every training step took only its matrix products.

For each variant of each family in the profile, the run's experiment is traced (`families.trace`): every training
stage as the run trains it (the stacked family's pretraining, frozen, fine-tuned, random-init and few-label stages;
one stage elsewhere), with its epochs and one epoch of its batches. Each distinct batch shape (an image family's full
batches and its last, smaller one; G2P's length buckets) has one step's matrix products recorded
(`ceiling.count_step`) and replayed on random tensors (`ceiling.pure_compute_seconds`), and counts as often as the
epoch takes a batch of that shape. Summed over the stages' epochs and the profile's seeds, that is the runs' training
at pure compute. Evaluation, every other op of a step (element-wise work, autocast's copies, the optimizer) and each
process's start cost nothing here, so a build cannot get below it without less arithmetic or faster products; divided
by the runs that share the machine at once (its cores / a run's threads) it bounds the build's wall time from below.
The replay times products on random tensors, cold or hot in cache as it happens: an estimate, like the compute
table's pure compute. Beside it, where the results folder holds the profile's runs, the job time they took.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from .. import config as cfglib
from .. import paths
from .. import workflow as wf
from . import common
from .ceiling import count_step, pure_compute_seconds, replay_calls
from .families import Setup, params_for, trace

# The traced runs evaluate their untrained models on this many validation and test examples: evaluation is not
# training, and decoding G2P's whole test set with four beam widths would take longer than the rest of the trace.
EVAL_LIMIT = 64


def shape_key(batch) -> tuple:
    """What decides a batch's step cost: its tensors' shapes (and a word list's length), in order."""
    if hasattr(batch, "shape"):
        return tuple(batch.shape)
    if isinstance(batch, (tuple, list)):
        return tuple(shape_key(b) for b in batch)
    return (type(batch).__name__,)


@dataclasses.dataclass
class Stage:
    """One training stage of a run: its epochs and, per distinct batch shape, how many batches of an epoch have it
    and the matrix products of one step on such a batch."""
    name: str
    epochs: int
    shapes: list[dict]  # {"key", "count", "calls", "flops"}

    def steps_per_epoch(self) -> int:
        return sum(s["count"] for s in self.shapes)


def record_stage(setup: Setup) -> Stage:
    """One epoch of the stage's batches grouped by shape, and one step's products for each shape. Called while the
    model is as the stage trains it (a frozen encoder frozen), so the products are the ones this stage runs."""
    firsts: dict[tuple, Any] = {}
    counts: dict[tuple, int] = {}
    for batch in setup.batches(1):
        key = shape_key(batch)
        counts[key] = counts.get(key, 0) + 1
        firsts.setdefault(key, batch)
    shapes = []
    for key, batch in firsts.items():
        counted = count_step(setup, batch)
        shapes.append({"key": key, "count": counts[key], "calls": replay_calls(counted["calls"]),
                       "flops": counted["flops"]})
    return Stage(setup.stage, int(setup.epochs or 0), shapes)


def stage_seconds(stage: Stage, timer) -> dict:
    """The stage's pure-compute seconds in one run: per shape, `timer(calls, share)` seconds per step (`share`: the
    shape's share of the epoch's steps) times its steps."""
    per_epoch = flops = 0.0
    for s in stage.shapes:
        per_epoch += s["count"] * timer(s["calls"], s["count"] / stage.steps_per_epoch())
        flops += s["count"] * s["flops"]
    return {"stage": stage.name, "epochs": stage.epochs, "steps_per_epoch": stage.steps_per_epoch(),
            "shapes": len(stage.shapes), "flops": flops * stage.epochs, "seconds": per_epoch * stage.epochs}


def variant_floor(cfg: dict, family: str, variant: str, *, device, data_dir: Path, scratch: Path, precision: str,
                  timer, full_data: bool = True) -> dict:
    """Every training stage of one run of the variant, at pure compute."""
    params = {**params_for(cfg, family, variant, full_data=full_data), "eval_limit": EVAL_LIMIT}
    stages: list[Stage] = []
    trace(cfg, family, variant, device=device, data_dir=data_dir, checkpoint_dir=scratch / f"floor-{family}",
          precision=precision, params=params, on_stage=lambda setup: stages.append(record_stage(setup)))
    rows = [stage_seconds(s, timer) for s in stages]
    return {"stages": rows, "steps": sum(r["epochs"] * r["steps_per_epoch"] for r in rows),
            "flops": sum(r["flops"] for r in rows), "seconds": sum(r["seconds"] for r in rows)}


def measured_job_seconds(results_dir: Path, profile: str) -> dict[str, dict]:
    """Per family and variant, the wall seconds of the profile's runs in the results folder (run.json), by seed."""
    out: dict[str, dict] = {}
    for path in paths.run_files(results_dir, paths.RUN_INFO):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if info.get("profile") != profile or "wall_seconds" not in info:
            continue
        runs = out.setdefault(info["family"], {}).setdefault(info["variant"], {})
        runs[str(info["seed"])] = {"seconds": info["wall_seconds"], "commit": info.get("git_commit")}
    return out


def parallel_runs(cfg: dict, family: str) -> int:
    """The family's runs that share this machine at once: its cores over a run's threads in the workflow."""
    return max(1, common.available_cores() // max(1, int(wf.threads(cfg, family))))


def bench_floor(cfg: dict, st: common.Settings, device, data_dir: Path, scratch: Path, results_dir: Path) -> dict:
    """The profile's runs at pure compute, per family and in all, against the job time its built runs took."""
    import torch
    repeats = 1 if st.quick else 3

    def timer(calls, share: float) -> float:
        # Measuring time where the steps are: an image family's full batches get half a second a repeat, each of
        # G2P's length buckets its share of that (at least 20 ms).
        seconds = 0.02 if st.quick else max(0.02, 0.5 * share)
        return pure_compute_seconds(calls, seconds=seconds, repeats=repeats)[0]

    measured = measured_job_seconds(results_dir, cfg["profile"])
    saved = torch.get_num_threads()
    families: dict[str, Any] = {}
    try:
        for family, spec in cfg["families"].items():
            torch.set_num_threads(common.family_threads(cfg, st, family))
            variants: dict[str, Any] = {}
            for variant in spec["variants"]:
                t0 = time.perf_counter()
                try:
                    row = variant_floor(cfg, family, variant, device=device, data_dir=data_dir, scratch=scratch,
                                        precision=common.precision(cfg, st, device), timer=timer,
                                        full_data=not st.quick)
                except Exception as exc:  # one variant's failure must not lose the others
                    row = {"error": f"{type(exc).__name__}: {exc}"}
                row["trace_seconds"] = round(time.perf_counter() - t0, 1)
                ran = measured.get(family, {}).get(variant, {})
                row["measured_seconds"] = {seed: r["seconds"] for seed, r in ran.items()}
                variants[variant] = row
            families[family] = _family_total(variants, cfglib.seeds(cfg, family), parallel_runs(cfg, family))
    finally:
        torch.set_num_threads(saved)
    return _totals(families, list(cfg["seeds"]), measured)


def _family_total(variants: dict, seeds: list, slots: int) -> dict:
    ok = [v for v in variants.values() if "error" not in v]
    runs = len(variants) * len(seeds)
    measured = [s for v in variants.values() for s in v["measured_seconds"].values()]
    return {"variants": variants, "runs": runs, "parallel_runs": slots,
            "pure_seconds": sum(v["seconds"] for v in ok) * len(seeds) if len(ok) == len(variants) else None,
            "flops": sum(v["flops"] for v in ok) * len(seeds),
            # The build's job time for this family, where every one of its runs is in the results folder.
            "measured_seconds": round(sum(measured), 1) if len(measured) == runs else None}


def _totals(families: dict, seeds: list, measured: dict) -> dict:
    pure = [f["pure_seconds"] for f in families.values()]
    meas = [f["measured_seconds"] for f in families.values()]
    slots = min((f["parallel_runs"] for f in families.values()), default=1)
    total = sum(pure) if None not in pure else None
    # Runs are not split across cores: the longest one bounds the wall time too.
    longest = max((v.get("seconds", 0.0) for f in families.values() for v in f["variants"].values()), default=0.0)
    commits = sorted({r["commit"] for fam in measured.values() for var in fam.values() for r in var.values()
                      if r.get("commit")})
    return {"method": __doc__.split("\n\n", 1)[1].strip(), "seeds": seeds, "families": families,
            "pure_seconds": total, "parallel_runs": slots,
            "wall_floor_seconds": None if total is None else max(total / slots, longest),
            "measured_seconds": sum(meas) if None not in meas else None, "measured_commits": commits}
