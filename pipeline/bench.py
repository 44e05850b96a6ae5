"""`python -m pipeline bench`: measure what the pipeline's design is supposed to buy, on this machine.

One process measures every training throughput, so ratios between data paths share the same warm caches, threads
and background load. Workflow timings run Snakemake and `python -m pipeline` as subprocesses in temporary work
directories and never touch results/ or reports/ (the report re-render writes to a temporary reports folder).

    python -m pipeline bench [--profile P] [--default] [--out results/bench/bench.json]
    python -m pipeline.bench --quick ...   # the extra knobs below; DFL_BENCH_QUICK=1 also selects --quick

Numbers on a shared machine are noisy: every throughput is measured after a warm-up, repeated with the two data
paths alternating, and reported as a median; the load average at start and end is recorded next to them.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterator

from . import config as cfglib
from . import runinfo
from . import workflow as wf
from .config import ROOT

# The variant each image family is measured with, and the speed-up over a notebook it should reach.
REFERENCE = {"autoencoder": "ae32", "stacked": "sae512_256_128", "cnn": "base", "vit": "small"}
TARGET_RATIO = {"autoencoder": 3.0, "stacked": 3.0, "cnn": 1.5}
G2P_VARIANT = "attention"
# One variant's parameter change for the incremental-update timing, and the jobs it may cause (tests/test_workflow.py).
CHANGE = ("cnn", "kernel5", {"kernel": 3})
EXPECTED_JOBS = {"train": 1, "aggregate": 1, "report": 1, "all": 1}
# Candidates for the largest run; the peak over them is reported.
MEMORY_RUNS = [("vit", "patch4"), ("vit", "large"), ("cnn", "best_combo")]
THREAD_RUNS = [("cnn", "base"), ("cnn", "kernel5")]

SECTIONS = ("throughput", "g2p", "smoke_workflow", "report", "incremental", "peak_memory", "threads",
            "default_workflow")
QUICK_SECTIONS = ("throughput", "g2p")
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


# ----------------------------------------------------------------------------------------------- small helpers

def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def _sync(device) -> None:
    import torch
    if getattr(device, "type", "") == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _quiet_stderr():
    # Workflow jobs log to a file, so `fit` draws no progress bar there; time the very same loop here.
    saved = sys.stderr
    sys.stderr = io.StringIO()
    try:
        yield
    finally:
        sys.stderr = saved


def _precision(cfg: dict, st: "Settings", device) -> str:
    from .train import resolve_precision
    return resolve_precision(st.precision or cfg.get("precision", "auto"), device)


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


# ----------------------------------------------------------------------------------------------- 1. throughput

class _ImageBench:
    """Everything one image family needs to be trained both ways in this process."""

    def __init__(self, cfg: dict, device, data_dir: Path, st: Settings, scratch: Path):
        self.cfg, self.device, self.data_dir, self.st, self.scratch = cfg, device, data_dir, st, scratch
        self._splits = None
        self._tv = None
        self.precision = _precision(cfg, st, device)
        self._n = 0

    def splits(self, params: dict):
        # Full training set whatever the profile: a 1,500-image smoke subset would sit in cache and flatter us.
        if self._splits is None:
            from .data import images
            self._splits = images.splits(params["dataset"], self.data_dir, val_size=params["val_size"],
                                         split_seed=params["split_seed"]).to(self.device)
        return self._splits

    def torchvision_set(self):
        if self._tv is None:
            from torchvision import datasets, transforms
            self._tv = datasets.MNIST(root=str(self.data_dir), train=True, download=False,
                                      transform=transforms.ToTensor())
        return self._tv

    def ctx(self, family: str, variant: str, params: dict, precision: str | None = None):
        from .train import RunContext
        self._n += 1
        return RunContext(family=family, variant=variant, seed=0, params=params, device=self.device,
                          checkpoint_dir=self.scratch / f"ckpt{self._n}", data_dir=self.data_dir,
                          precision=precision or self.precision, log=lambda msg: None)

    def build(self, family: str, params: dict, total_steps: int, as_written: bool = False):
        """The family's model, optimizer, scheduler and loss; `as_written`: as a notebook would have them (the
        default memory format and torch.optim's default Adam implementation instead of the fused one)."""
        import torch
        model, opt, sched, loss = self._build(family, params, total_steps)
        if as_written:
            model = model.to(memory_format=torch.contiguous_format)
            for group in opt.param_groups:  # before any step, so no state depends on the implementation
                group["fused"], group["foreach"] = None, None
        return model, opt, sched, loss

    def _build(self, family: str, params: dict, total_steps: int):
        """The model, optimizer, scheduler and loss the family's experiment uses for its main training stage."""
        from torch.nn import functional as F
        from .experiments import common
        p = params
        if family == "autoencoder":
            from .models.autoencoder import Autoencoder
            model = Autoencoder(p["encoding_dim"], p.get("hidden", []), relu_code=False).to(self.device)
            return model, common.adam(model, p), None, (lambda m, xb: F.mse_loss(m(xb), xb))
        if family == "stacked":
            from .models.stacked import StackedClassifier, StackedEncoder
            model = StackedClassifier(StackedEncoder(p["layers"])).to(self.device)
            return model, common.adam(model, p), None, common.cross_entropy
        if family in ("cnn", "vit"):
            from importlib import import_module
            model = import_module(f"pipeline.experiments.{family}").build(p).to(self.device)
            # A one-cycle schedule exactly as long as this measurement, so it never steps past its end.
            opt, sched = common.one_cycle(model, {**p, "epochs": 1}, total_steps * p["batch_size"],
                                          adamw=family == "vit")
            return model, opt, sched, common.cross_entropy
        raise ValueError(f"no throughput setup for family {family!r}")

    def ours(self, ctx, labels: bool) -> Iterator:
        from .experiments.common import shuffled
        x, y = self._splits.train
        make = shuffled(ctx, "bench", x, y if labels else None)
        epoch = 0
        while True:
            epoch += 1
            yield from make(epoch)

    def notebook(self, batch_size: int, labels: bool) -> Iterator:
        from torch.utils.data import DataLoader
        loader = DataLoader(self.torchvision_set(), batch_size=batch_size, shuffle=True)
        dev = self.device
        while True:
            for xb, yb in loader:
                xb = xb.to(dev)
                yield (xb, yb.to(dev)) if labels else xb

    def train_seconds(self, family: str, variant: str, params: dict, path: str, steps: int) -> float:
        """Fresh model; `warmup` steps, then `steps` timed steps through `fit`, the loop every run uses.
        Paths: "ours" and "notebook" differ in the data path only; "as_written" is the notebook data path with
        fp32, the default memory format and torch.optim's default Adam: a notebook as people write it."""
        import torch
        from .train import fit
        labels = family != "autoencoder"
        torch.manual_seed(0)
        as_written = path == "as_written"
        ctx = self.ctx(family, variant, params, precision="fp32" if as_written else None)
        stream = self.ours(ctx, labels) if path == "ours" else self.notebook(params["batch_size"], labels)
        model, opt, sched, loss_fn = self.build(family, params, self.st.warmup + steps + 1, as_written)
        with _quiet_stderr():
            if self.st.warmup:
                fit(model, opt, ctx=ctx, epochs=1, stage="warmup", batches=lambda e: islice(stream, self.st.warmup),
                    loss_fn=loss_fn, scheduler=sched)
            row = fit(model, opt, ctx=ctx, epochs=1, stage="timed", batches=lambda e: islice(stream, steps),
                      loss_fn=loss_fn, scheduler=sched)[-1]
        shutil.rmtree(ctx.checkpoint_dir, ignore_errors=True)
        return row["seconds"]

    def family(self, family: str) -> dict:
        variant = REFERENCE[family]
        params = cfglib.variant_params(self.cfg, family, variant)
        self.splits(params)
        bs = params["batch_size"]
        st = self.st

        # Size each measurement on our path (the faster one) so it lasts about `seconds`; both paths of a pair run
        # the same steps. Re-sized after every pair from its own timing, since the background load drifts.
        def sized(seconds_per_step: float) -> int:
            return int(min(st.max_steps, max(st.min_steps, math.ceil(st.seconds / max(seconds_per_step, 1e-6)))))

        probe = max(st.min_steps // 2, 3)
        steps = sized(self.train_seconds(family, variant, params, "ours", probe) / probe)
        paths = ("ours", "notebook", "as_written")
        runs: dict[str, list[float]] = {path: [] for path in paths}
        ratios, end_to_end, all_steps = [], [], []
        for r in range(st.repeats):
            order = paths[r % 3:] + paths[:r % 3]  # none always goes first
            rate = {}
            for path in order:
                rate[path] = steps * bs / self.train_seconds(family, variant, params, path, steps)
                runs[path].append(round(rate[path], 1))
            ratios.append(rate["ours"] / rate["notebook"])
            end_to_end.append(rate["ours"] / rate["as_written"])
            all_steps.append(steps)
            steps = sized(bs / rate["ours"])
        out = {
            "variant": variant, "batch_size": bs, "steps": all_steps, "repeats": st.repeats,
            "ours_images_per_s": round(_median(runs["ours"]), 1),
            "notebook_images_per_s": round(_median(runs["notebook"]), 1),
            # Median of paired ratios: load that drifts between repeats cancels within a pair.
            "ratio": round(_median(ratios), 3),
            "ours_runs": runs["ours"], "notebook_runs": runs["notebook"],
            "precision": self.precision,
            "as_written_images_per_s": round(_median(runs["as_written"]), 1),
            "as_written_runs": runs["as_written"],
            "end_to_end_ratio": round(_median(end_to_end), 3),
        }
        if family in TARGET_RATIO:
            # Judged against the notebook as people write it; "ratio" (same engine) is the data path's share.
            out["target_ratio"] = TARGET_RATIO[family]
            out["meets_target"] = out["end_to_end_ratio"] >= TARGET_RATIO[family]
        return out

    def data_only(self, batch_size: int) -> dict:
        """Images/s of producing float batches alone: the cost each data path adds to every step. Each path is
        timed over its own number of batches (sized to its speed): these are rates, with no training to share."""
        ctx = self.ctx("data", "path", {"batch_size": batch_size})
        streams = {"ours": lambda: self.ours(ctx, True), "notebook": lambda: self.notebook(batch_size, True)}
        runs: dict[str, list[float]] = {"ours": [], "notebook": []}
        for path, make in streams.items():
            stream = make()
            for _ in islice(stream, self.st.warmup):
                pass
            t0 = time.perf_counter()
            probe = 0
            while time.perf_counter() - t0 < self.st.seconds / 10 or probe < 3:
                next(stream)
                probe += 1
            per_batch = (time.perf_counter() - t0) / probe
            steps = max(3, math.ceil(self.st.seconds / 2 / per_batch))
            for _ in range(self.st.repeats):
                t0 = time.perf_counter()
                for _ in islice(stream, steps):
                    pass
                _sync(self.device)
                runs[path].append(round(steps * batch_size / (time.perf_counter() - t0), 1))
        ours, nb = _median(runs["ours"]), _median(runs["notebook"])
        return {"batch_size": batch_size, "ours_images_per_s": round(ours, 1), "notebook_images_per_s": round(nb, 1),
                "ratio": round(ours / nb, 2), "ours_runs": runs["ours"], "notebook_runs": runs["notebook"]}


def bench_throughput(cfg: dict, st: Settings, device, data_dir: Path, scratch: Path) -> tuple[dict, dict]:
    import torch
    bench = _ImageBench(cfg, device, data_dir, st, scratch)
    out = {}
    for family in REFERENCE:
        torch.set_num_threads(st.threads or cfglib.family(cfg, family).get("threads", 1))
        out[family] = bench.family(family)
        out[family]["threads"] = torch.get_num_threads()
    sizes = sorted({v["batch_size"] for v in out.values()})
    data = {"by_batch_size": [bench.data_only(bs) for bs in sizes]}
    return out, data


# ----------------------------------------------------------------------------------------------- g2p

def _naive_batches(pairs, src_vocab, tgt_vocab, batch_size: int, seed: int) -> list[tuple]:
    """The same batches (same order, same tensors) built the plain-Python way: pad each word's list by hand."""
    import torch
    from .data.cmudict import PAD
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed)).tolist()
    out = []
    for start in range(0, len(order), batch_size):
        chunk = [pairs[i] for i in order[start:start + batch_size]]
        src = [src_vocab.encode(list(w)) for w, _ in chunk]
        tgt_in = [tgt_vocab.encode(p, add_bos=True) for _, p in chunk]
        tgt_out = [tgt_vocab.encode(p, add_eos=True) for _, p in chunk]
        padded = []
        for rows in (src, tgt_in, tgt_out):
            width = max(len(r) for r in rows)
            padded.append(torch.tensor([r + [PAD] * (width - len(r)) for r in rows], dtype=torch.long))
        out.append((padded[0], torch.tensor([len(s) for s in src]), padded[1], padded[2]))
    return out


def bench_g2p(cfg: dict, st: Settings, device, scratch: Path) -> dict:
    """Words/s of g2p training with the family's own batches (length-bucketed, built inside the loop, as in a run)
    and with plain pre-built batches in random order; and the batching alone against a naive padding loop."""
    import torch
    from .data import cmudict as cd
    from .experiments import g2p as family
    from .train import RunContext, adam, fit

    torch.set_num_threads(st.threads or cfglib.family(cfg, "g2p").get("threads", 1))
    p = cfglib.variant_params(cfg, "g2p", G2P_VARIANT)
    t0 = time.perf_counter()
    data = cd.load_g2p(limit_train=st.g2p_words)
    load_s = time.perf_counter() - t0
    pairs = cd.expand_pairs(data.train)
    bs = p["batch_size"]

    builders = {"ours": lambda seed: cd.make_batches(pairs, data.graphemes, data.phonemes, bs, shuffle=True, seed=seed),
                "naive": lambda seed: _naive_batches(pairs, data.graphemes, data.phonemes, bs, seed)}
    batching: dict[str, list[float]] = {"ours": [], "naive": []}
    for r in range(st.repeats):
        for name in (("ours", "naive") if r % 2 == 0 else ("naive", "ours")):
            t0 = time.perf_counter()
            builders[name](r)
            batching[name].append(round(len(pairs) / (time.perf_counter() - t0), 1))

    prebuilt = [b.to(device) for b in builders["ours"](0)]
    measured = 0

    def stream(path: str, ctx) -> Iterator:
        make = family.train_batches(ctx, pairs, data, "bench")[0] if path == "family" else None
        epoch = 0
        while True:
            epoch += 1
            yield from (make(epoch) if make else prebuilt)

    def words_per_s(path: str, steps: int) -> float:
        nonlocal measured
        measured += 1
        torch.manual_seed(0)
        ctx = RunContext(family="g2p", variant=G2P_VARIANT, seed=0, params=p, device=device,
                         checkpoint_dir=scratch / f"g2p{measured}", precision=_precision(cfg, st, device),
                         log=lambda m: None)
        model = family.build(p, data).to(device)
        opt = adam(model.parameters(), p["lr"])
        batches = stream(path, ctx)
        words = 0

        def timed_batches(epoch):
            nonlocal words
            for b in islice(batches, steps):
                words += len(b.words)
                yield b
        with _quiet_stderr():
            fit(model, opt, ctx=ctx, epochs=1, stage="warmup", batches=lambda e: islice(batches, st.warmup or 1),
                loss_fn=family.token_loss)
            row = fit(model, opt, ctx=ctx, epochs=1, stage="timed", batches=timed_batches,
                      loss_fn=family.token_loss)[-1]
        shutil.rmtree(ctx.checkpoint_dir, ignore_errors=True)
        return words / row["seconds"]

    probe = max(st.min_steps // 4, 2)
    steps = int(min(st.max_steps, max(st.min_steps // 2, 2,
                                      math.ceil(st.seconds * words_per_s("family", probe) / bs))))
    runs: dict[str, list[float]] = {"family": [], "plain": []}
    ratios = []
    for r in range(st.repeats):
        rate = {}
        for path in (("family", "plain") if r % 2 == 0 else ("plain", "family")):
            rate[path] = words_per_s(path, steps)
            runs[path].append(round(rate[path], 1))
        ratios.append(rate["family"] / rate["plain"])
    train = _median(runs["family"])
    ours_rate, naive_rate = _median(batching["ours"]), _median(batching["naive"])
    return {
        "variant": G2P_VARIANT, "batch_size": bs, "steps": steps, "pairs": len(pairs), "words": len(data.train),
        "threads": torch.get_num_threads(), "load_seconds": round(load_s, 2),
        "train_words_per_s": round(train, 1), "train_runs": runs["family"],
        "plain_train_words_per_s": round(_median(runs["plain"]), 1), "plain_train_runs": runs["plain"],
        "bucketing_ratio": round(_median(ratios), 3),
        "batching_words_per_s": round(ours_rate, 1), "batching_runs": batching["ours"],
        "naive_batching_words_per_s": round(naive_rate, 1), "naive_batching_runs": batching["naive"],
        "batching_ratio": round(ours_rate / naive_rate, 3),
        "unit": "word-pronunciation pairs (a word with two pronunciations counts twice)",
        "paths": {"family": "pipeline.experiments.g2p.train_batches: length-bucketed, built per batch in the loop",
                  "plain": "make_batches in random order, built before timing"},
    }


# ----------------------------------------------------------------------------------------------- 2-6. workflow

def bench_smoke_workflow(work: Path, data_dir: Path, profile: str = "smoke", timeout: float | None = 3600) -> dict:
    res = _snakemake(work, "--cores", "2", "--config", f"profile={profile}", f"data_dir={data_dir}",
                     timeout=timeout)
    out = {"profile": profile, "cores": 2, "seconds": res["seconds"], "returncode": res["returncode"],
           "jobs": wf.job_stats(res["output"])}
    if res["returncode"] != 0:
        out["error"] = _tail(res["output"])
    return out


def _missing_needs(results: Path, assignment: str) -> list[str]:
    return [n for n in wf.assignment_spec(assignment).get("needs", []) if not (results / n).exists()]


def _time_report(cfg: dict, results: Path, scratch: Path, repeats: int) -> dict:
    out = {}
    for name in wf.assignments(cfg):
        missing = _missing_needs(results, name)
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
        "planned_jobs": wf.job_stats(plan["output"]), "jobs_run": ran, "expected_jobs": EXPECTED_JOBS,
        "only_expected": counts == EXPECTED_JOBS and all(f"variant={variant}" in j for j in trains),
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


# ----------------------------------------------------------------------------------------------- driver

def machine(device, torch_threads_default: int) -> dict:
    import torch
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:
        available = os.cpu_count()
    return {
        "cpu": runinfo.cpu_model(), "cores": os.cpu_count(), "cores_available": available,
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
    from .train import keep_freed_memory, pick_device

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
    keep_freed_memory()  # as every run does (pipeline.run), for both data paths alike
    threads_default = torch.get_num_threads()
    started = time.perf_counter()
    out: dict[str, Any] = {
        "schema": 1,
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
            if "g2p" in wanted:
                out["g2p"] = _section("g2p", lambda: bench_g2p(cfg, st, device, scratch), log)
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


# ----------------------------------------------------------------------------------------------- output

def _fmt(x) -> str:
    if not isinstance(x, (int, float)) or not math.isfinite(x):
        return "-"
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def table(res: dict) -> str:
    m = res["machine"]
    lines = [f"dfl-bench {res['date']}  commit {res['git_commit']}  profile {res['profile']}"
             f"{'  (quick)' if res['quick'] else ''}",
             f"{m['cpu']}, {m['cores_available']} cores, {m['device']}; load average "
             f"{res['load_avg_start'][0]} -> {res['load_avg_end'][0]}"]
    tp = res.get("throughput", {})
    if "error" in tp or "skipped" in tp:
        lines.append(f"throughput: {tp.get('error') or tp.get('skipped')}")
    elif tp:
        lines.append("")
        first = next(iter(tp.values()))
        lines.append(f"training images/s, {first.get('threads', '?')} thread(s); ours: our data path and engine "
                     f"({first.get('precision')}, fused Adam, channels_last CNN)")
        lines.append("notebook: torchvision MNIST + ToTensor + DataLoader, fp32, torch.optim's default Adam; "
                     "same engine: that data path on our engine (the data path's share)")
        lines.append(f"{'':<34}{'ours':>10}{'notebook':>10}{'speed-up':>9}  {'target':<16}"
                     f"{'same engine':>12}{'ratio':>8}")
        for fam, row in tp.items():
            target = f">= {row['target_ratio']:g}x {'ok' if row['meets_target'] else 'MISSED'}" \
                if "target_ratio" in row else ""
            lines.append(f"{fam + ' ' + row['variant'] + ' (bs ' + str(row['batch_size']) + ')':<34}"
                         f"{_fmt(row['ours_images_per_s']):>10}"
                         f"{_fmt(row.get('as_written_images_per_s', float('nan'))):>10}"
                         f"{row.get('end_to_end_ratio', float('nan')):>8.2f}x  {target:<16}"
                         f"{_fmt(row['notebook_images_per_s']):>12}{row['ratio']:>7.2f}x")
        for row in res.get("data_path", {}).get("by_batch_size", []):
            lines.append(f"{'data path alone (bs ' + str(row['batch_size']) + ')':<34}"
                         f"{_fmt(row['ours_images_per_s']):>10}{_fmt(row['notebook_images_per_s']):>10}"
                         f"{row['ratio']:>7.2f}x")
    g = res.get("g2p", {})
    if "train_words_per_s" in g:
        lines.append(f"g2p {g['variant']} (bs {g['batch_size']}): train {_fmt(g['train_words_per_s'])} words/s "
                     f"bucketed, {_fmt(g['plain_train_words_per_s'])} plain ({g['bucketing_ratio']:.2f}x); "
                     f"batching alone {_fmt(g['batching_words_per_s'])} words/s vs naive loop "
                     f"{_fmt(g['naive_batching_words_per_s'])} ({g['batching_ratio']:.2f}x)")
    elif g:
        lines.append(f"g2p: {g.get('error') or g.get('skipped')}")
    lines.append("")

    def status(v: dict) -> str | None:
        if v.get("skipped"):
            return v["skipped"]
        if v.get("error"):  # the whole tail is in bench.json; show the line naming the cause
            lines_ = [ln.strip() for ln in v["error"].splitlines() if ln.strip()]
            causes = [ln for ln in lines_ if re.match(r"[\w.]*(Error|Exception)\b", ln)
                      and not ln.startswith("WorkflowError")]
            return "FAILED: " + ((causes or lines_ or ["?"])[-1])[:200]
        return None

    sw = res.get("smoke_workflow", {})
    lines.append("smoke workflow (2 cores): " + (status(sw) or f"{sw['seconds']:.0f} s, "
                                                   f"{sum(sw['jobs'].values())} jobs"))
    rep = res.get("report", {})
    if status(rep):
        lines.append(f"report / dry run: {status(rep)}")
    else:
        for where in ("results", "smoke"):
            part = rep.get(where, {})
            if status(part):
                lines.append(f"{where}: {status(part)}")
                continue
            for name, r in part.get("report", {}).items():
                lines.append(f"report {name} re-render ({where}): " + (status(r) or f"{r['seconds']:.1f} s"))
            d = part.get("dry_run", {})
            planned = sum(d.get("planned_jobs", {}).values())
            lines.append(f"snakemake -n ({where}): " + (status(d) or f"{d['seconds']:.1f} s, "
                                                        f"{planned or 'nothing'} to do"))
    inc = res.get("incremental", {})
    lines.append("one variant changed: " + (status(inc) or
                 f"{inc['change']} -> {inc['seconds']:.0f} s, ran {', '.join(inc['jobs_run'])}"
                 f" ({'only the expected jobs' if inc['only_expected'] else 'UNEXPECTED jobs'})"))
    mem = res.get("peak_memory", {})
    lines.append("peak RSS: " + (status(mem) or f"{mem['peak_rss_mib']:.0f} MiB ({mem['largest']}); "
                 + ", ".join(f"{r['run']} {r['peak_rss_mib']:.0f}" for r in mem["runs"])))
    th = res.get("threads", {})
    lines.append("threads: " + (status(th) or f"2 jobs x 1 thread {th['two_jobs_one_thread_seconds']:.1f} s vs "
                                f"1 job x 2 threads {th['one_job_two_threads_seconds']:.1f} s -> {th['faster']} "
                                f"faster ({th['speedup']:.2f}x)"))
    dw = res.get("default_workflow", {})
    lines.append("default workflow: " + (status(dw) or f"{dw['seconds'] / 60:.1f} min, "
                                             f"{sum(dw['jobs'].values())} jobs"))
    return "\n".join(lines)


def write(res: dict, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(res, indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)
    return path


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


if __name__ == "__main__":
    main(parser().parse_args())
