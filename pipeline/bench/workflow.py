"""Workflow timings: the smoke workflow, report re-renders and dry runs, one changed variant, peak memory and
threads per job. They run Snakemake and `python -m pipeline` as subprocesses in temporary work directories and never
touch results/ or reports/ (the report re-render writes to a temporary reports folder)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .. import config as cfglib
from .. import workflow as wf
from ..config import ROOT
from ..report import assignments as report_assignments
from .common import Settings, median as _median

# One variant's parameter change for the incremental-update timing, and the jobs it may cause (tests/test_workflow.py).
CHANGE = ("cnn", "kernel5", {"kernel": 3})


def expected_jobs(cfg: dict, family: str) -> dict[str, int]:
    """The jobs one changed variant of `family` may rerun: its run, its family's aggregate, every report that reads
    that family's results (its own assignment's and any that `uses:` it), the index and the final target."""
    reports = [a for a in report_assignments.discover(cfg) if family in report_assignments.families(cfg, a)]
    return {"train": 1, "aggregate": 1, "report": len(reports), "index": 1, "all": 1}


# Candidates for the largest run; the peak over them is reported.
MEMORY_RUNS = [("vit", "large"), ("cnn", "best_combo")]
THREAD_RUNS = [("cnn", "base"), ("cnn", "kernel5")]


def _snakemake_exe() -> str | None:
    exe = Path(sys.executable).parent / "snakemake"
    return str(exe) if exe.exists() else shutil.which("snakemake")


def _tail(text: str, n: int = 1500) -> str:
    return text[-n:]


_RULE_RE = re.compile(r"^(?:local)?rule (\w+):\s*$")
_WILDCARDS_RE = re.compile(r"^\s+wildcards: (.*)$")


def _jobs_run(text: str) -> list[str]:
    """Each job Snakemake started, as 'rule' or 'rule family=..., variant=...' in order."""
    jobs: list[str] = []
    for line in text.splitlines():
        if m := _RULE_RE.match(line):
            jobs.append(m.group(1))
        elif (m := _WILDCARDS_RE.match(line)) and jobs and " " not in jobs[-1]:
            jobs[-1] += " " + m.group(1)
    return jobs


def _timed(cmd: list[str], cwd: Path, timeout: float | None = None, env: dict | None = None) -> dict:
    """Run a command; wall seconds, exit status and, on failure, the end of its output."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    return {"seconds": round(time.perf_counter() - t0, 2), "returncode": proc.returncode,
            "output": proc.stdout + proc.stderr}


def _snakemake(workdir: Path, *args: str, timeout: float | None = None) -> dict:
    exe = _snakemake_exe()
    if exe is None:
        raise RuntimeError("snakemake not found next to this Python or on PATH")
    return _timed([exe, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), *args], cwd=workdir,
                  timeout=timeout)


def _spawn(cmd: list[str], log: Path) -> subprocess.Popen:
    with open(log, "w") as fh:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)


# Linux carries the high-water RSS of the process that calls exec over into the new program's ru_maxrss, so a child
# of this (by then ~1 GB) process would report at least our own peak. A small Python in between, which starts the
# run and reports the run's rusage, keeps that floor at its own ~10 MB.
_RSS_HELPER = (
    "import os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[2:])\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def _peak_rss(cmd: list[str], log: Path) -> tuple[int, float, float]:
    """Run a command; (exit status, its peak RSS in MiB, wall seconds)."""
    rss_file = log.with_suffix(".rss")
    t0 = time.perf_counter()
    rc = _spawn([sys.executable, "-c", _RSS_HELPER, str(rss_file), *cmd], log).wait()
    seconds = time.perf_counter() - t0
    raw = int(rss_file.read_text()) if rss_file.exists() else 0
    mib = raw / 2**20 if sys.platform == "darwin" else raw / 1024  # macOS counts bytes, Linux KiB
    return rc, round(mib, 1), round(seconds, 2)


def _run_cmd(cfg: dict, family: str, variant: str, threads: int) -> list[str]:
    return [sys.executable, "-m", "pipeline", "run", family, variant, "--seed", "0", "--threads", str(threads),
            "--cfg", json.dumps(cfg, sort_keys=True)]


def _smoke_cfg(base_cfg_files, data_dir: Path, results: Path) -> dict:
    cfg = cfglib.load("smoke", configfiles=base_cfg_files)
    cfg.update(data_dir=str(data_dir), results_dir=str(results), reports_dir=str(results.parent / "reports"))
    return cfg


# ----------------------------------------------------------------------------------------------- 2-6. workflow

def bench_smoke_workflow(work: Path, data_dir: Path, profile: str = "smoke", timeout: float | None = 3600) -> dict:
    res = _snakemake(work, "--cores", "2", "--config", f"profile={profile}", f"data_dir={data_dir}",
                     timeout=timeout)
    out = {"profile": profile, "cores": 2, "seconds": res["seconds"], "returncode": res["returncode"],
           "jobs": wf.job_stats(res["output"])}
    if res["returncode"] != 0:
        out["error"] = _tail(res["output"])
    return out


def _time_report(cfg: dict, results: Path, scratch: Path, repeats: int) -> dict:
    out = {}
    for name in wf.assignments(cfg):
        missing = report_assignments.missing_needs(name, results)
        if missing:
            out[name] = {"skipped": f"results missing under {results}: {', '.join(missing[:4])}"
                                    + (" ..." if len(missing) > 4 else "")}
            continue
        reports = Path(tempfile.mkdtemp(prefix="reports-", dir=scratch))
        rcfg = {**cfg, "results_dir": str(results), "reports_dir": str(reports)}
        cmd = [sys.executable, "-m", "pipeline", "report", name, "--cfg", json.dumps(rcfg, sort_keys=True)]
        runs = [_timed(cmd, cwd=ROOT, timeout=1800) for _ in range(repeats)]
        bad = [r for r in runs if r["returncode"] != 0]
        out[name] = {"seconds": _median([r["seconds"] for r in runs]), "runs": [r["seconds"] for r in runs]}
        if bad:
            out[name]["error"] = _tail(bad[0]["output"])
    return out


def _time_dry_run(workdir: Path, config_args: list[str], extra: list[str], repeats: int) -> dict:
    # --nolock: a dry run changes nothing, and a workflow may be running in that folder right now.
    runs = [_snakemake(workdir, "-n", "--nolock", "--rerun-incomplete", "--cores", "2", "--config", *config_args,
                       *extra, timeout=900) for _ in range(repeats)]
    out = {"seconds": _median([r["seconds"] for r in runs]), "runs": [r["seconds"] for r in runs],
           "planned_jobs": wf.job_stats(runs[-1]["output"])}
    if runs[-1]["returncode"] != 0:
        out["error"] = _tail(runs[-1]["output"])
    return out


def bench_report(cfg: dict, profile: str, configfiles: list, results: Path, smoke_work: Path | None,
                 data_dir: Path, scratch: Path, st: Settings) -> dict:
    """Re-render and dry-run times with every result cached: on results/ when complete, and on the smoke work
    directory just built (always complete)."""
    repeats = max(st.sub_repeats, 2)
    out: dict[str, Any] = {"results": {"dir": str(results), "profile": profile}}
    out["results"]["report"] = _time_report(cfg, results, scratch, repeats)
    extra = [a for f in configfiles for a in ("--configfile", str(Path(f).resolve()))]
    out["results"]["dry_run"] = _time_dry_run(Path.cwd(), [f"profile={profile}"], extra, repeats)
    if smoke_work is not None:
        scfg = _smoke_cfg([], data_dir, smoke_work / "results")
        out["smoke"] = {"dir": str(smoke_work), "profile": "smoke",
                        "report": _time_report(scfg, smoke_work / "results", scratch, repeats),
                        "dry_run": _time_dry_run(smoke_work, ["profile=smoke", f"data_dir={data_dir}"], [],
                                                 repeats)}
    else:
        out["smoke"] = {"skipped": "no smoke work directory (smoke_workflow did not run or failed)"}
    return out


def bench_incremental(work: Path, data_dir: Path, scratch: Path) -> dict:
    import yaml
    family, variant, change = CHANGE
    expected = expected_jobs(_smoke_cfg([], data_dir, work / "results"), family)
    extra = scratch / "one_variant.yaml"
    extra.write_text(yaml.safe_dump({"families": {family: {"variants": {variant: change}}}}))
    base = ["--cores", "2", "--config", "profile=smoke", f"data_dir={data_dir}"]
    # Code edited since the smoke workflow ran would rerun its own jobs too; settle those first, untimed.
    catch_up = _snakemake(work, *base, timeout=1800)
    args = [*base, "--configfile", str(extra)]
    plan = _snakemake(work, "-n", *args, timeout=900)
    res = _snakemake(work, *args, timeout=1800)
    ran = _jobs_run(res["output"])
    counts: dict[str, int] = {}
    for job in ran:
        counts[job.split()[0]] = counts.get(job.split()[0], 0) + 1
    trains = [j for j in ran if j.startswith("train ")]
    out = {
        "change": f"{family}/{variant}: {json.dumps(change)}",
        "seconds": res["seconds"], "returncode": res["returncode"],
        "planned_jobs": wf.job_stats(plan["output"]), "jobs_run": ran, "expected_jobs": expected,
        "only_expected": counts == expected and all(f"variant={variant}" in j for j in trains),
        "catch_up": {"seconds": catch_up["seconds"], "jobs_run": _jobs_run(catch_up["output"])},
    }
    if res["returncode"] != 0:
        out["error"] = _tail(res["output"])
    return out


def bench_peak_memory(cfg_files, data_dir: Path, scratch: Path) -> dict:
    runs = []
    for family, variant in MEMORY_RUNS:
        results = scratch / f"mem-{family}-{variant}" / "results"
        cfg = _smoke_cfg(cfg_files, data_dir, results)
        log = results.parent / "log.txt"
        results.mkdir(parents=True)
        rc, mib, seconds = _peak_rss(_run_cmd(cfg, family, variant, 1), log)
        row = {"run": f"{family}/{variant}", "profile": "smoke", "peak_rss_mib": mib, "seconds": seconds,
               "returncode": rc}
        if rc != 0:
            row["error"] = _tail(log.read_text())
        runs.append(row)
    ok = [r for r in runs if r["returncode"] == 0]
    top = max(ok, key=lambda r: r["peak_rss_mib"]) if ok else None
    return {"largest": top["run"] if top else None, "peak_rss_mib": top["peak_rss_mib"] if top else None,
            "runs": runs,
            "method": "ru_maxrss of each `python -m pipeline run` subprocess, via os.wait4 in a small intermediate"}


def bench_threads(cfg_files, data_dir: Path, scratch: Path, st: Settings) -> dict:
    """Two runs as two 1-thread jobs side by side, or one after the other with 2 threads each."""
    def once(mode: str, k: int) -> float:
        threads = 1 if mode == "parallel" else 2
        base = scratch / f"threads-{mode}-{k}"
        base.mkdir(parents=True)

        def start(i: int, family: str, variant: str) -> subprocess.Popen:
            cfg = _smoke_cfg(cfg_files, data_dir, base / f"r{i}" / "results")
            return _spawn(_run_cmd(cfg, family, variant, threads), base / f"r{i}.log")

        t0 = time.perf_counter()
        if mode == "parallel":
            procs = [start(i, f, v) for i, (f, v) in enumerate(THREAD_RUNS)]
            codes = [p.wait() for p in procs]
        else:
            codes = [start(i, f, v).wait() for i, (f, v) in enumerate(THREAD_RUNS)]
        seconds = round(time.perf_counter() - t0, 2)
        if any(codes):
            failed = next(i for i, c in enumerate(codes) if c)
            raise RuntimeError(f"{mode} runs exited with {codes}: {_tail((base / f'r{failed}.log').read_text(), 500)}")
        return seconds

    times: dict[str, list[float]] = {"parallel": [], "sequential": []}
    for k in range(st.sub_repeats):
        for mode in (("parallel", "sequential") if k % 2 == 0 else ("sequential", "parallel")):
            times[mode].append(once(mode, k))
    par, seq = _median(times["parallel"]), _median(times["sequential"])
    return {
        "runs": [f"{f}/{v}" for f, v in THREAD_RUNS], "profile": "smoke",
        "two_jobs_one_thread_seconds": par, "one_job_two_threads_seconds": seq,
        "parallel_runs": times["parallel"], "sequential_runs": times["sequential"],
        "faster": "2 jobs x 1 thread" if par < seq else "1 job x 2 threads",
        "speedup": round(max(par, seq) / min(par, seq), 3),
    }
