"""`python -m pipeline bench`: measure what the pipeline's design is supposed to buy, on this machine.

    python -m pipeline bench [--profile P] [--default] [--out results/bench/bench.json]
    python -m pipeline.bench --quick ...   # the extra knobs below; DFL_BENCH_QUICK=1 also selects --quick

Sections: `throughput` (our data path and engine against a notebook's) and `g2p` (pipeline.bench.throughput);
`compute` (FLOPs per step, achieved GFLOP/s, the step against its matrix products alone, the CPU's own ceiling:
pipeline.bench.ceiling); `floor` (the profile's whole training at pure compute, against its built runs' job time:
pipeline.bench.floor); the workflow timings (pipeline.bench.workflow). Every model the benchmark trains is the one
the family's experiment trains, taken from the experiment itself (pipeline.bench.families).

Numbers on a shared machine are noisy: every throughput is measured after a warm-up, repeated with the paths
alternating, and reported as a median; the load average at start and end is recorded next to them.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from .. import config as cfglib
from .. import runinfo
from .ceiling import bench_compute, cpu_info
from .floor import bench_floor
from .common import QUICK_ENV, QUICK_SECTIONS, SECTIONS, Settings, available_cores
from .families import capture
from .output import table, write
from .throughput import G2P_VARIANT, REFERENCE, TARGET_RATIO, _naive_batches, bench_g2p, bench_throughput
from .throughput import load_g2p_data
from .workflow import (CHANGE, MEMORY_RUNS, THREAD_RUNS, _jobs_run, bench_incremental,
                       bench_peak_memory, bench_report, bench_smoke_workflow, bench_threads)

__all__ = ["main", "add_arguments", "parser", "run_bench", "table", "write", "Settings", "capture", "REFERENCE",
           "TARGET_RATIO", "G2P_VARIANT", "CHANGE", "MEMORY_RUNS", "THREAD_RUNS", "SECTIONS",
           "QUICK_SECTIONS", "_naive_batches", "_jobs_run"]


def machine(device, torch_threads_default: int) -> dict:
    import torch
    return {
        "cpu": runinfo.cpu_model(), "cpu_info": cpu_info(), "cores": os.cpu_count(),
        "cores_available": available_cores(),
        "torch_threads_default": torch_threads_default,
        "device": f"cuda:{torch.cuda.get_device_name(device)}" if device.type == "cuda" else "cpu",
        "platform": platform.platform(), "host": socket.gethostname(), "packages": runinfo.package_versions(),
        "nice": os.nice(0) if hasattr(os, "nice") else None,
    }


def _load_cfg(args) -> dict:
    if getattr(args, "cfg", None):
        return json.loads(args.cfg)
    return cfglib.load(getattr(args, "profile", None), configfiles=getattr(args, "configfile", None) or ())


def _section(name: str, fn: Callable[[], Any], log) -> Any:
    log(f"bench: {name} ...")
    t0 = time.perf_counter()
    try:
        value = fn()
    except Exception as exc:  # one failed measurement must not lose the others
        value = {"error": f"{type(exc).__name__}: {exc}"}
    log(f"bench: {name} done in {time.perf_counter() - t0:.0f}s")
    return value


def run_bench(args) -> dict:
    import torch
    from ..train import pick_device, tune_process

    quick = bool(getattr(args, "quick", False)) or os.environ.get(QUICK_ENV, "") not in ("", "0")
    st = Settings.make(quick, repeats=getattr(args, "repeats", None), seconds=getattr(args, "seconds", None),
                       threads=getattr(args, "threads", None), precision=getattr(args, "precision", None),
                       sub_repeats=getattr(args, "sub_repeats", None))
    cfg = _load_cfg(args)
    profile = cfg["profile"]
    configfiles = list(getattr(args, "configfile", None) or ())
    data_dir = Path(cfg["data_dir"]).resolve()
    results = Path(cfg["results_dir"]).resolve()
    wanted = list(QUICK_SECTIONS if quick else SECTIONS[:-1])
    if getattr(args, "default", False):
        wanted.append("default_workflow")
    if getattr(args, "only", None):
        wanted = [s for s in SECTIONS if s in set(args.only.split(","))]
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731

    device = pick_device(cfg.get("device", "auto"))
    tune_process()  # as every run does (pipeline.run), for both data paths alike
    threads_default = torch.get_num_threads()
    started = time.perf_counter()
    out: dict[str, Any] = {
        "schema": 2,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": runinfo.git_commit(),
        "profile": profile, "quick": quick, "sections": wanted,
        "settings": asdict(st),
        "machine": machine(device, threads_default),
        "load_avg_start": [round(x, 2) for x in os.getloadavg()],
    }
    skipped = {name: {"skipped": "--quick" if quick else "not requested"} for name in SECTIONS if name not in wanted}
    try:
        with tempfile.TemporaryDirectory(prefix="dfl-bench-") as tmp:
            scratch = Path(tmp)
            if "throughput" in wanted:
                value = _section("throughput", lambda: bench_throughput(cfg, st, device, data_dir, scratch), log)
                out["throughput"], out["data_path"] = value if isinstance(value, tuple) else (value, value)
            g2p_data = load_g2p_data(st)[0] if {"g2p", "compute"} & set(wanted) else None
            if "g2p" in wanted:
                out["g2p"] = _section("g2p", lambda: bench_g2p(cfg, st, device, scratch, g2p_data), log)
            if "compute" in wanted:
                out["compute"] = _section("compute", lambda: bench_compute(cfg, st, device, data_dir, scratch,
                                                                           g2p_data), log)
            if "floor" in wanted:
                out["floor"] = _section("floor", lambda: bench_floor(cfg, st, device, data_dir, scratch, results), log)
            torch.set_num_threads(threads_default)
            smoke_work = None
            if "smoke_workflow" in wanted:
                work = scratch / "smoke"
                work.mkdir()
                out["smoke_workflow"] = _section("smoke_workflow", lambda: bench_smoke_workflow(work, data_dir), log)
                if out["smoke_workflow"].get("returncode") == 0:
                    smoke_work = work
            if "report" in wanted:
                out["report"] = _section("report", lambda: bench_report(
                    cfg, profile, configfiles, results, smoke_work, data_dir, scratch, st), log)
            if "incremental" in wanted and smoke_work is None:
                out["incremental"] = {"skipped": "needs a finished smoke_workflow"}
            elif "incremental" in wanted:
                out["incremental"] = _section("incremental", lambda: bench_incremental(smoke_work, data_dir, scratch),
                                              log)
            if "peak_memory" in wanted:
                out["peak_memory"] = _section("peak_memory", lambda: bench_peak_memory(configfiles, data_dir, scratch),
                                              log)
            if "threads" in wanted:
                out["threads"] = _section("threads", lambda: bench_threads(configfiles, data_dir, scratch, st), log)
            if "default_workflow" in wanted:
                work = scratch / "default"
                work.mkdir()
                out["default_workflow"] = _section("default_workflow", lambda: bench_smoke_workflow(
                    work, data_dir, profile="default", timeout=None), log)
    finally:
        torch.set_num_threads(threads_default)
    for name, value in skipped.items():
        out.setdefault(name, value)
    if "throughput" in skipped:
        out.setdefault("data_path", skipped["throughput"])
    out["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out



def main(args) -> None:
    res = run_bench(args)
    out = write(res, getattr(args, "out", None) or Path("results/bench/bench.json"))
    print(table(res))
    print(f"wrote {out}")


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options shared by `python -m pipeline bench` and `python -m pipeline.bench`."""
    p.add_argument("--default", action="store_true", help="also time the default profile's whole workflow")
    p.add_argument("--out", type=Path, default=Path("results/bench/bench.json"))
    p.add_argument("--quick", action="store_true", help="few steps, no workflow timings (what the test runs)")
    p.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    p.add_argument("--repeats", type=int, help="repeats per throughput measurement (median reported)")
    p.add_argument("--seconds", type=float, help="target seconds of one timed throughput measurement")
    p.add_argument("--threads", type=int, help="torch threads for throughput (default: the family's threads)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], help="training precision (default: configured)")
    p.add_argument("--sub-repeats", type=int, help="repeats of subprocess timings (median reported)")
    return p


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipeline.bench", description=__doc__.splitlines()[0])
    p.add_argument("--profile", choices=cfglib.PROFILES, default=None)
    p.add_argument("--configfile", action="append", type=Path)
    add_arguments(p)
    p.set_defaults(cfg=None)
    return p
