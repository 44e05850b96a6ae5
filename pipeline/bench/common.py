"""What every part of the benchmark shares: its settings and a few small helpers."""
from __future__ import annotations

import contextlib
import io
import math
import os
import statistics
import sys
from dataclasses import dataclass

from .. import config as cfglib

SECTIONS = ("throughput", "g2p", "compute", "floor", "smoke_workflow", "report", "incremental", "peak_memory",
            "threads", "default_workflow")
QUICK_SECTIONS = ("throughput", "g2p", "compute")
QUICK_ENV = "DFL_BENCH_QUICK"


@dataclass
class Settings:
    quick: bool = False
    repeats: int = 5
    seconds: float = 2.0        # target duration of one timed measurement (our path; the notebook's takes longer)
    warmup: int = 10            # steps before timing: allocator, oneDNN primitives and caches settle
    min_steps: int = 20
    max_steps: int = 5000
    threads: int | None = None  # None: the family's configured threads, as its workflow jobs get
    g2p_words: int | None = None
    precision: str | None = None  # None: the configured precision, as runs get it
    sub_repeats: int = 1        # repeats of subprocess timings: threads comparison (four runs each); renders and
                                # dry runs always run at least twice

    @classmethod
    def make(cls, quick: bool, **over) -> "Settings":
        base = cls(quick=True, repeats=3, seconds=0.25, warmup=2, min_steps=3, max_steps=200, g2p_words=2000) \
            if quick else cls()
        for key, value in over.items():
            if value is not None:
                setattr(base, key, value)
        return base

    def sized(self, seconds_per_step: float, limit: int | None = None) -> int:
        """Steps for one timed measurement of about `seconds`, within [min_steps, max_steps] (and `limit`)."""
        steps = int(min(self.max_steps, max(self.min_steps, math.ceil(self.seconds / max(seconds_per_step, 1e-6)))))
        return max(1, min(steps, limit)) if limit is not None else steps


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), as many as the build's parallel jobs can use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def sync(device) -> None:
    import torch
    if getattr(device, "type", "") == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def quiet_stderr():
    # Workflow jobs log to a file, so `fit` draws no progress bar there; time the very same loop here.
    saved = sys.stderr
    sys.stderr = io.StringIO()
    try:
        yield
    finally:
        sys.stderr = saved


def precision(cfg: dict, st: Settings, device) -> str:
    from ..train import resolve_precision
    return resolve_precision(st.precision or cfg.get("precision", "auto"), device)


def family_threads(cfg: dict, st: Settings, family: str) -> int:
    """Threads as the family's workflow jobs get them (`threads:` in the config), unless --threads says otherwise."""
    return st.threads or cfglib.family(cfg, family).get("threads", 1)
