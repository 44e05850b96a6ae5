"""Where the console's lines go: a rich live bar on a terminal, plain lines anywhere else."""
from __future__ import annotations

import os
import re
import threading
from pathlib import Path

# Everything but newline and tab: what must never reach a log file, a CI page or a SLURM output file.
CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")
EPOCH = re.compile(r"\] (\S+ )?epoch (\d+)/(\d+)")


def is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


def make_output(stream, build, lock):
    return RichOutput(stream, build, lock) if is_terminal(stream) else PlainOutput(stream)


class PlainOutput:
    def __init__(self, stream):
        self.stream = stream

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def print(self, *lines: str) -> None:
        for line in lines:
            for part in str(line).split("\n"):
                self.stream.write(CONTROL.sub("", part) + "\n")
        self.stream.flush()


def current_epoch(log: str) -> str | None:
    """'train epoch 3/15' from the last epoch line of a running run's log (train.py prints one per epoch)."""
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, Path(log).stat().st_size - 4096))
            tail = fh.read().decode(errors="replace")
    except OSError:
        return None
    found = EPOCH.findall(tail)
    if not found:
        return None
    stage, epoch, total = found[-1]
    return f"{stage}epoch {epoch}/{total}"


class _Status:
    """The live part: bar, counts, ETA and the running runs. Rendered by rich's refresh thread, so it takes the
    console's lock without waiting (the event thread may hold it while printing): on contention, last frame."""

    def __init__(self, build, lock):
        self.build, self.lock, self.last = build, lock, None

    def __rich__(self):
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        from pipeline.progress import duration
        from pipeline.progress_summary import status_line
        if not self.lock.acquire(timeout=0.05):
            return self.last or Text("")
        try:
            c = self.build.counts()
            bar = ProgressBar(total=max(c["runs_total"], 1), completed=c["runs_done"], width=30)
            row = Table.grid(padding=(0, 1))
            row.add_row(bar, Text(status_line(self.build)))
            now = self.build.clock()
            running = []
            for job in list(self.build.jobs.values()):
                if job.finished is None:
                    epoch = current_epoch(job.log[0]) if job.rule == "train" and job.log else None
                    running.append(Text(f"  {job.rule} {job.name}: {duration(now - job.started)}"
                                        + (f", {epoch}" if epoch else ""), style="dim"))
            self.last = Group(row, *running)
            return self.last
        finally:
            self.lock.release()


class RichOutput:
    def __init__(self, stream, build, lock):
        from rich.console import Console
        self.console = Console(file=stream, highlight=False)
        self.build, self.lock, self.live = build, lock, None
        self._started = threading.Event()

    def start(self) -> None:
        from rich.live import Live
        if self._started.is_set():
            return
        self._started.set()
        self.live = Live(_Status(self.build, self.lock), console=self.console, refresh_per_second=2,
                         transient=True, redirect_stdout=False, redirect_stderr=False)
        self.live.start()

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def print(self, *lines: str) -> None:
        from rich.text import Text
        for line in lines:
            style = "bold red" if line.startswith("FAILED") else "yellow" if line.startswith("warning") else None
            self.console.print(Text(str(line), style=style), soft_wrap=True)
