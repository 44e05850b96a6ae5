"""Snakemake logger plugin `dflbench` (`snakemake --logger dflbench`): the console of a dfl-bench build.

Snakemake finds logger plugins by module name (snakemake_logger_plugin_*), so this top-level package is the
plugin; the model (ETA, counts) is pipeline/progress.py and the wording pipeline/progress_summary.py.

On a terminal: a live bar (runs done / running / left, ETA) with the running runs' current epoch, and printed above
it one line per finished run or report, warnings and errors. Anywhere else (CI, a file, SLURM): the same lines as
plain text, each finished run carrying the counts and the ETA, and a status line when nothing was printed for a
while. Dry runs, and DFLBENCH_CONSOLE=snakemake, print exactly Snakemake's default output (tests and `make dag`
parse it). Snakemake's full log still goes to .snakemake/log/.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Optional

from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.common import LogEvent

from .lock import lock_message
from .output import PlainOutput, make_output

NOTHING_TO_DO = "Nothing to be done"
HEARTBEAT_S = float(os.environ.get("DFLBENCH_HEARTBEAT", 120))  # non-terminal: status line after this much quiet


def _from_argv(argv: list[str]) -> tuple[dict | None, Path]:
    """The dfl-bench configuration this Snakemake invocation builds, and its work directory, from its command line.

    A logger plugin sees events, not the workflow's globals; the planned runs and their expected costs need the
    profile, so the layers are loaded the way the Snakefile loads them. The config is None when that fails
    (Snakemake itself reports a bad config)."""
    try:
        from snakemake.cli import get_argument_parser, parse_config
        args, _ = get_argument_parser().parse_known_args(argv)
    except BaseException:  # argparse exits on some inputs; a console must never stop a build
        return None, Path.cwd()
    workdir = Path(args.directory or ".").resolve()
    try:
        from pipeline import config as cfglib
        # command_line_values as in the Snakefile: `make report SEEDS=0` passes seeds=[0], which parse_config alone
        # leaves as ['0']; the config then failed to load and the console costed every run at a flat 30 s.
        overrides = cfglib.command_line_values(parse_config(args.config or []))
        return cfglib.load(configfiles=args.configfile or (), overrides=overrides), workdir
    except Exception:
        return None, workdir


def _clip(message: str, width: int = 400) -> list[str]:
    """Snakemake's messages, line by line; a failed job's message repeats its whole shell command, whose --cfg
    JSON runs to thousands of characters, so very long lines are cut (Snakemake's log file has them whole)."""
    return [line if len(line) <= width else line[:width] + " ... (cut; whole in Snakemake's log)"
            for line in message.splitlines()]


class LogHandler(LogHandlerBase):
    def __post_init__(self) -> None:
        from pipeline.progress import Build
        self.lock = threading.RLock()
        stream = sys.stdout if self.common_settings.stdout else sys.stderr
        self.passthrough = bool(self.common_settings.dryrun) or os.environ.get("DFLBENCH_CONSOLE") == "snakemake"
        if self.passthrough:
            from snakemake.logging import ColorizingTextHandler, DefaultFilter, DefaultFormatter
            s = self.common_settings
            self.default = ColorizingTextHandler(nocolor=s.nocolor, stream=stream)
            self.default.addFilter(DefaultFilter(s.quiet, s.debug_dag, s.verbose, s.dryrun, s.printshellcmds))
            self.default.setFormatter(DefaultFormatter(s.quiet, s.show_failed_logs))
            return
        cfg, workdir = _from_argv(sys.argv[1:])
        self.build = Build(cfg=cfg, workdir=workdir, origin=Path.cwd())
        self.build.earlier_walls()  # before Snakemake deletes the outputs of the runs it redoes
        self.out = make_output(stream, self.build, self.lock)
        self.started = False
        self.logfile: Optional[str] = None
        self.last_print = time.monotonic()
        self.closed = threading.Event()
        if isinstance(self.out, PlainOutput) and HEARTBEAT_S > 0:
            threading.Thread(target=self._heartbeat, daemon=True).start()

    # Snakemake's interface: this handler writes to the terminal, filters and formats itself.
    @property
    def writes_to_stream(self) -> bool:
        return True

    @property
    def writes_to_file(self) -> bool:
        return False

    @property
    def has_filter(self) -> bool:
        return True

    @property
    def has_formatter(self) -> bool:
        return True

    @property
    def needs_rulegraph(self) -> bool:
        return False

    def emit(self, record: logging.LogRecord) -> None:
        if self.passthrough:
            self.default.handle(record)
            return
        try:
            with self.lock:
                self._emit(record)
        except Exception:
            self.handleError(record)

    def print(self, *lines: str) -> None:
        self.out.print(*lines)
        self.last_print = time.monotonic()

    def _emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "event", None)
        build = self.build
        if event == LogEvent.RESOURCES_INFO and getattr(record, "cores", None):
            build.cores = int(record.cores)
        elif event == LogEvent.RUN_INFO:
            build.plan(getattr(record, "stats", {}) or {})
            build.t0 = build.clock()
            self.started = True
            self.print(self._plan_line())
            self.out.start()
        elif event == LogEvent.JOB_INFO:
            build.start(int(record.jobid), record.rule_name, dict(getattr(record, "wildcards", {}) or {}),
                        log=getattr(record, "log", []) or [], output=getattr(record, "output", []) or [])
        elif event == LogEvent.JOB_FINISHED:
            self._finished(int(record.job_id))
        elif event == LogEvent.JOB_ERROR:
            job = build.fail(int(record.jobid))
            if job is None:
                job = build.start(int(record.jobid), record.rule_name, {}, log=getattr(record, "log", []) or [])
                build.fail(job.jobid)
            from pipeline.progress_summary import failure_lines
            self.print(*failure_lines(build, job))
        elif event == LogEvent.ERROR and getattr(record, "exception", None) == "LockException":
            self.print(lock_message(sys.argv))
        elif record.levelno >= logging.WARNING and event not in (LogEvent.JOB_ERROR, LogEvent.GROUP_ERROR):
            self.print(*_clip(record.getMessage()))  # Snakemake's own warnings and errors
        elif event is None and record.levelno >= logging.INFO:
            message = record.getMessage()
            if message.startswith(NOTHING_TO_DO):
                from pipeline.progress_summary import up_to_date_line
                build.up_to_date = True
                self.print(up_to_date_line(build))
            elif message.startswith("Unlock"):
                self.print(message)
            elif message.startswith("Complete log"):
                self.logfile = os.path.relpath(message.split(":", 1)[1].strip(), self.build.origin)

    def _plan_line(self) -> str:
        from pipeline.progress_summary import plan_line
        return plan_line(self.build)

    def _finished(self, jobid: int) -> None:
        from pipeline.progress_summary import job_line, log_warnings, status_line
        job = self.build.finish(jobid)
        if job is None:
            return
        line = job_line(self.build, job)
        warnings = log_warnings(self.build, job)
        if line is not None:
            # Off a terminal nothing redraws, so each run's line carries the counts and the ETA.
            if isinstance(self.out, PlainOutput) and job.rule == "train":
                line = f"{line}  [{status_line(self.build)}]"
            self.print(line)
        if warnings:
            self.print(*warnings)

    def _heartbeat(self) -> None:
        from pipeline.progress_summary import status_line
        while not self.closed.wait(5):
            with self.lock:
                if self.started and time.monotonic() - self.last_print >= HEARTBEAT_S:
                    running = ", ".join(j.name for j in self.build.jobs.values() if j.finished is None)
                    self.print(f"status: {status_line(self.build)}" + (f"; running {running}" if running else ""))

    def close(self) -> None:
        if not self.passthrough and not self.closed.is_set():
            self.closed.set()
            with self.lock:
                self.out.stop()
                if self.started:
                    from pipeline.progress_summary import summary_lines
                    self.print(*summary_lines(self.build, self.logfile))
                self.build.cache.save()
        super().close()
