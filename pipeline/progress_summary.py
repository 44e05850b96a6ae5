"""The console's words: one line per finished run or report, warnings found in job logs, the end summary.

Plain strings only (no colour, no control characters): the terminal and the non-terminal console print the same
text; the terminal adds only the live bar.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from . import paths
from .progress import Build, Job, duration, headline

# Job logs are plain text written by `python -m pipeline ...`; these words mark a line a person should see (the
# report's `pdftoppm not found ...` comes from logging's last-resort handler, without a WARNING prefix).
NOTEWORTHY = re.compile(r"(?i)\b(warn\w*|error|not found|skipping|fall(?:ing|s)? back|fell back|unavailable|"
                        r"failed|traceback)\b")
TAIL_LINES = 25


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def status_line(build: Build) -> str:
    """'runs 12/41 done, 2 running, 27 left | jobs 20/55 | 3 min 12 s | ETA 14 min 05 s (from earlier runs)'."""
    c = build.counts()
    left, source = build.eta()
    failed = f", {c['runs_failed']} failed" if c["runs_failed"] else ""
    return (f"runs {c['runs_done']}/{c['runs_total']} done, {c['runs_running']} running, {c['runs_left']} left"
            f"{failed} | jobs {c['jobs_done']}/{c['jobs_total']} | {duration(build.elapsed())} elapsed"
            f" | ETA {duration(left)} ({source})")


def plan_line(build: Build) -> str:
    """The first line: what this build will do, on how many cores."""
    kinds = {"train": ("training run", "training runs"), "aggregate": ("aggregate", "aggregates"),
             "analyze": ("analysis", "analyses"), "report": ("report", "reports"),
             "fetch_data": ("dataset fetch", "dataset fetches")}
    parts = [f"{n} {kinds.get(rule, (rule, rule))[n != 1]}" for rule, n in build.planned.items()
             if rule != "all" and n]
    left, source = build.eta()
    return (f"Building {', '.join(parts) or 'nothing'} (profile {build.profile}, {build.cores} cores); "
            f"ETA {duration(left)} ({source})")


def job_line(build: Build, job: Job) -> str | None:
    """One line for a finished run (its headline metric and wall time) or report (pages); None for other jobs."""
    took = duration(job.finished - job.started)
    if job.rule == "train":
        out = next((o for o in job.output if o.endswith("metrics.json")), None)
        metrics = read_json(build.path(out)) if out else None
        shown = headline(job.wildcards.get("family", ""), metrics or {})
        metric = f"{shown[0]} {shown[1]:.4g}" if shown else "no headline metric"
        return f"run {job.name}: {metric}, {took}"
    if job.rule == "report":
        name = job.wildcards.get("assignment", "")
        return f"report {name}: {report_text(build, name)}, {took}"
    return None


def failure_lines(build: Build, job: Job) -> list[str]:
    """A failed job: its name, its log and the log's last lines (the error in full)."""
    logs = [l for l in job.log if l]
    head = f"FAILED {job.rule} {job.name} after {duration((job.finished or job.started) - job.started)}"
    if not logs:
        return [head + " (no log file; see Snakemake's log below)"]
    lines = [f"{head}; log: {build.show(logs[0])}"]
    try:
        tail = build.path(logs[0]).read_text(errors="replace").splitlines()[-TAIL_LINES:]
    except OSError:
        tail = ["(log file not written)"]
    return lines + ["    " + t for t in tail]


def log_warnings(build: Build, job: Job) -> list[str]:
    """Noteworthy lines of a finished job's log, each with the log's path (it has the rest)."""
    out = []
    for log in job.log:
        try:
            text = build.path(log).read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            if NOTEWORTHY.search(line):
                out.append(f"warning ({build.show(log)}): {line.strip()}")
    return out


def report_names(build: Build) -> list[str]:
    if build.cfg:
        from .workflow import assignments
        try:
            return assignments(build.cfg)
        except Exception:
            pass
    return sorted(p.stem for p in reports_dir(build).glob("*.json"))


def reports_dir(build: Build) -> Path:
    return build.path((build.cfg or {}).get("reports_dir", "reports"))


def report_text(build: Build, name: str) -> str:
    """'reports/hw2.pdf, 4 of 8 pages (+ appendix, 2 pages)' from reports/NAME.json that the report job wrote."""
    pdf = reports_dir(build) / f"{name}.pdf"
    info = read_json(reports_dir(build) / f"{name}.json")
    if not pdf.exists() or info is None:
        return f"{build.show(pdf)} not built"
    text = f"{build.show(pdf)}, {info.get('pages')} of {info.get('page_limit')} pages"
    if (info.get("appendix") or {}).get("pages"):
        text += f" (+ appendix, {info['appendix']['pages']} pages)"
    return text


def fallbacks(build: Build, names: list[str]) -> list[str]:
    """What came out differently than on the reference machine, so a person does not have to find it in logs."""
    out = []
    for name in names:
        info = read_json(reports_dir(build) / f"{name}.json")
        if info is None:
            continue
        if not info.get("previews"):
            out.append(f"{name}: no page previews (pdftoppm missing or failed; install poppler-utils)")
        if info.get("shrunk"):
            out.append(f"{name}: shrunk to fit {info.get('page_limit')} pages (figures at "
                       f"{round(100 * info.get('fig_scale', 1))}%, font {info.get('font_pt')} pt)")
    precisions = {}
    for run in paths.run_files(build.results_dir(), paths.RUN_INFO):
        info = read_json(run) or {}
        precisions[info.get("precision")] = precisions.get(info.get("precision"), 0) + 1
    if (build.cfg or {}).get("precision", "auto") == "auto" and precisions.get("fp32"):
        out.append(f"bf16 unavailable on this machine: {precisions['fp32']} runs trained in fp32 (slower)")
    return out


def training_time(build: Build, name: str) -> str:
    """The report footer's training time when its JSON has it, else summed from its families' run.json files."""
    info = read_json(reports_dir(build) / f"{name}.json") or {}
    if (info.get("provenance") or {}).get("training_time"):
        return info["provenance"]["training_time"]
    if not build.cfg:
        return "n/a"
    from .report.assignments import families
    walls = [(read_json(p) or {}).get("wall_seconds") for fam in families(build.cfg, name)
             for p in paths.run_files(build.results_dir(), paths.RUN_INFO, fam)]
    walls = [w for w in walls if isinstance(w, (int, float))]
    return duration(sum(walls)) if walls else "n/a"


def summary_lines(build: Build, logfile: str | None = None) -> list[str]:
    """The end of a build: outcome, each report with pages against its limit and training time, fallbacks."""
    c = build.counts()
    names = report_names(build)
    failed = [j for j in build.jobs.values() if j.failed]
    if failed:
        logs = ", ".join(f"{j.name} ({build.show(j.log[0]) if j.log else 'no log'})" for j in failed[:5])
        more = f" (+{len(failed) - 5} more)" if len(failed) > 5 else ""
        lines = [f"FAILED after {duration(build.elapsed())}: {len(failed)} jobs failed: {logs}{more}. "
                 "Finished runs are kept; run the same command again to retry the rest."]
    else:
        lines = [f"Done in {duration(build.elapsed())}: {c['runs_done']} runs trained, "
                 f"{c['jobs_done']} jobs in all."]
    for name in names:
        lines.append(f"  {report_text(build, name)}; training time {training_time(build, name)}")
    lines += [f"  fell back: {f}" for f in fallbacks(build, names)]
    if logfile:
        lines.append(f"Snakemake's full log: {logfile}")
    return lines


def up_to_date_line(build: Build) -> str:
    names = report_names(build)
    shown = "; ".join(report_text(build, n) for n in names) or f"no reports in {reports_dir(build)}"
    return f"Up to date, nothing to build: {shown}"
