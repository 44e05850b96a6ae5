"""What the console of a build knows: which jobs are planned, running and done, and when it will end.

The Snakemake logger plugin (snakemake_logger_plugin_dflbench) feeds job events into a `Build`; this module has no
Snakemake or terminal code, so the ETA model is tested with plain numbers.

ETA model: each job has an expected cost (seconds of wall time). For a training run it comes, in this order, from
 1. earlier builds on this machine: job wall times this console recorded (see `CostCache`), for the same profile,
    family, variant, parameters and code;
 2. the run.json (`wall_seconds`, plus the process start-up) of an earlier run of that variant and code under
    results/;
 3. an estimate from the profile and the model: epochs x training images x a per-family cost measured on the reference
    machine, scaled by the variant's forward FLOPs (a larger ViT or a wider CNN costs more than its family's smallest).
The remaining time is a greedy schedule of the pending jobs over the parallel slots (cores / threads per run),
after the running jobs' expected remainders. Measured costs are scaled by the ratio actual/expected that this build's
runs with measured costs show (a busy machine or a slower CPU moves all runs alike); an estimated cost by the ratio
of its own family's runs, since an estimate's error (or a family's new code) says nothing about the other families,
and until one has finished by that of all estimated runs (1 before any): the measured runs' ratio compares this
build with the cached one, not with the estimate.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import socket
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from .paths import METRICS, RUN_INFO, parse_run_dir, run_dir, run_files, run_id

# The number a finished run is judged by; classifiers (cnn, vit, lr_study) report test accuracy.
HEADLINE = {"autoencoder": "test_mse", "stacked": "acc_finetuned", "g2p": "test_wer_greedy"}
DEFAULT_HEADLINE = "test_acc"

# Seconds per training example and epoch, 1 thread, bf16, evaluation after every epoch included: for the image families
# at a forward cost of 1 MFLOP per example, scaled by each variant's own forward FLOPs ** FLOP_EXPONENT (its layers'
# sizes, kernels, depth); for G2P per word. Fitted to the default build of b4fe0f0 on the Intel Xeon with AMX
# (2026-12-02; ViT's then bf16 softmax, 1.1x slower than now): within a family that exponent predicted each variant's
# run time to 20% rms (at worst 1.7x: the batch-norm CNNs), where one cost per family had missed by up to 4x (ViT tiny
# and large). Another CPU moves all families alike; the ETA's ratio of actual to expected corrects that.
PER_EXAMPLE = {"autoencoder": 1 / 28000, "stacked": 1 / 22000, "cnn": 1 / 13500, "vit": 1 / 7500,
               "lr_study": 1 / 14000, "g2p": 1 / 5000}
FLOP_EXPONENT = 0.5
EXTRA = {"g2p": 3.0}      # CMUdict parsing and beam-search evaluation, independent of the epochs
STARTUP = 6.0            # python + torch import + data load, measured per job on the smoke profile
TRAIN_SIZE = 55000       # MNIST / Fashion-MNIST training images after the 5,000-image validation hold-out
G2P_WORDS = 120000       # CMUdict words in the training split
# Jobs other than training, when no earlier build recorded them (smoke-profile measurements, 2 busy cores).
OTHER_COST = {"report": 15.0, "aggregate": 6.0, "analyze": 6.0, "fetch_data": 15.0, "all": 0.0}


def family_epochs(defaults: dict, family: str) -> float:
    """Full passes over the training set that one run of `family` makes (stacked: every stage)."""
    if family == "stacked":
        layers = len(defaults.get("layers", [512, 256, 128]))
        return (defaults.get("pretrain_epochs", 3) * layers + defaults.get("classifier_epochs", 3)
                + defaults.get("finetune_epochs", 10)
                + defaults.get("few_label_epochs", 30) * defaults.get("few_labels", 0.01))
    return float(defaults.get("epochs", 1))


def estimate_run(cfg: dict, family: str, variant: str) -> float:
    """Seconds one run should take on the reference machine, from the profile and the variant's model alone."""
    from .config import variant_params
    params = variant_params(cfg, family, variant)
    n = G2P_WORDS if family == "g2p" else TRAIN_SIZE
    if cfg.get("train_limit"):
        n = min(n, int(cfg["train_limit"]))
    per_example = PER_EXAMPLE.get(family, 1 / 5000)
    mflops = forward_mflops(family, json.dumps(params, sort_keys=True))
    if mflops:
        per_example *= mflops ** FLOP_EXPONENT
    return STARTUP + EXTRA.get(family, 0.0) + family_epochs(params, family) * n * per_example


@functools.lru_cache(maxsize=256)
def forward_mflops(family: str, params_json: str) -> float | None:
    """MFLOPs of one image through the variant's model, built by its experiment's `build` (None: not an image family,
    or a model the counter cannot follow). Called for every planned run by the ETA and the rules' priorities: about
    40 ms per variant, once."""
    from . import registry
    if registry.family(family).data != "images":
        return None
    try:
        return registry.family(family).forward_flops(json.loads(params_json)) / 1e6 or None
    except Exception:  # an estimate only: a family whose build needs more than its parameters costs the plain rate
        return None


def key_of(rule: str, wildcards: dict) -> str:
    """Cost-cache key: what makes two jobs cost the same (the seed does not)."""
    if rule == "train":
        return f"train/{wildcards.get('family')}/{wildcards.get('variant')}"
    name = wildcards.get("assignment") or wildcards.get("family") or wildcards.get("name") or ""
    return f"{rule}/{name}"


class CostCache:
    """Job wall times of earlier builds on this machine, per profile: ~/.cache/dfl-bench/job-seconds.json.

    Kept outside the work directory so `make clean` (or a new checkout) still starts from measured costs.
    DFLBENCH_COST_CACHE overrides the path (tests); the host name keys it, so a shared home is safe.
    """

    KEEP = 5  # last N wall times per job kind: a median that follows a machine that got faster or slower

    def __init__(self, path: Path | None = None):
        default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dfl-bench" / "job-seconds.json"
        self.path = Path(os.environ.get("DFLBENCH_COST_CACHE", path or default))
        self.host = socket.gethostname()
        try:
            self.data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.data = {}
        # Expectations come from earlier builds only: a run of this build is already in the ratio actual/expected,
        # and counting it in the expected cost of its other seeds as well would correct twice.
        self.earlier = json.loads(json.dumps(self.data.get(self.host, {})))

    def get(self, profile: str, key: str) -> float | None:
        values = self.earlier.get(profile, {}).get(key)
        return statistics.median(values) if values else None

    def get_rule(self, profile: str, rule: str) -> float | None:
        """Median over every job of `rule` (a pending report whose name Snakemake has not told yet)."""
        values = [v for k, vs in self.earlier.get(profile, {}).items() if k.startswith(f"{rule}/") for v in vs]
        return statistics.median(values) if values else None

    def add(self, profile: str, key: str, seconds: float) -> None:
        values = self.data.setdefault(self.host, {}).setdefault(profile, {}).setdefault(key, [])
        values.append(round(seconds, 2))
        del values[:-self.KEEP]

    def save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
            tmp.replace(self.path)
        except OSError:
            pass  # a read-only home only costs the next build its measured ETA


@dataclass
class Job:
    jobid: int
    rule: str
    wildcards: dict
    log: list[str]
    output: list[str]
    expected: float
    measured: bool          # expected cost from an earlier build (True) or the profile estimate (False)
    started: float
    finished: float | None = None
    failed: bool = False

    @property
    def name(self) -> str:
        w = self.wildcards
        if self.rule == "train":
            return run_id(w.get("family"), w.get("variant"), w.get("seed"))
        return "/".join(str(v) for v in w.values()) or self.rule


@dataclass
class Build:
    """One Snakemake invocation as the console follows it."""
    RECENT = 8  # finished jobs that set the ratio actual/expected: 4 rounds of 2 parallel runs
    cfg: dict | None
    cores: int = 2
    cache: CostCache = field(default_factory=CostCache)
    clock: callable = time.monotonic
    planned: dict[str, int] = field(default_factory=dict)   # rule -> jobs this build runs (Snakemake's stats)
    jobs: dict[int, Job] = field(default_factory=dict)
    t0: float = 0.0
    up_to_date: bool = False
    errors: list[str] = field(default_factory=list)
    workdir: Path = Path(".")           # Snakemake's --directory; relative paths of the config resolve against it
    origin: Path = Path(".")            # where the command was typed: paths are shown relative to it
    _walls: dict | None = None
    _code_digests: dict = field(default_factory=dict)       # family -> its code's digest
    _settings_digests: dict = field(default_factory=dict)   # (family, variant) -> digest of parameters and code

    def __post_init__(self):
        self.t0 = self.clock()
        self.workdir, self.origin = Path(self.workdir).resolve(), Path(self.origin).resolve()

    # --- what the config and earlier builds say --------------------------------------------------------------

    @property
    def profile(self) -> str:
        return (self.cfg or {}).get("profile", "default")

    def results_dir(self) -> Path:
        return Path(self.workdir) / (self.cfg or {}).get("results_dir", "results")

    def path(self, p) -> Path:
        """A path of the workflow (relative to its work directory) as the file system sees it."""
        return self.workdir / p

    def show(self, p) -> str:
        """A path as the person who typed the command can use it."""
        return os.path.relpath(self.path(p), self.origin)

    def expected(self, rule: str, wildcards: dict) -> tuple[float, bool]:
        """(expected seconds, whether measured on this machine before) for one job."""
        if wildcards:
            cached = self.cache.get(self.profile, self.cost_key(rule, wildcards))
        else:
            cached = self.cache.get_rule(self.profile, rule)
        if cached is not None:
            return cached, True
        if rule != "train":
            return OTHER_COST.get(rule, 10.0), False
        fam, var = wildcards.get("family"), wildcards.get("variant")
        walls = self.earlier_walls().get(f"{fam}/{var}")
        if walls:
            return statistics.median(walls), True
        try:
            return estimate_run(self.cfg, fam, var), False
        except Exception:  # no config (or an unknown variant): a typical smoke-sized run
            return 30.0, False

    def cost_key(self, rule: str, wildcards: dict) -> str:
        """`key_of`, and for a training run a digest of its parameters and its family's code: a run whose code or
        settings changed costs what nobody has measured yet."""
        key = key_of(rule, wildcards)
        if rule == "train" and self.cfg:
            settings = self._settings(wildcards.get("family"), wildcards.get("variant"))
            if settings:
                key += "/" + settings
        return key

    def _settings(self, family: str, variant: str) -> str:
        if (family, variant) not in self._settings_digests:
            from .config import variant_params
            try:
                blob = json.dumps([variant_params(self.cfg, family, variant), self._code(family)], sort_keys=True)
                self._settings_digests[family, variant] = hashlib.sha256(blob.encode()).hexdigest()[:12]
            except Exception:  # an unknown family or variant: no digest, the plain key
                self._settings_digests[family, variant] = ""
        return self._settings_digests[family, variant]

    def _code(self, family: str) -> str:
        if family not in self._code_digests:
            from . import registry
            self._code_digests[family] = registry.family(family).code_digest()
        return self._code_digests[family]

    def earlier_walls(self) -> dict[str, list[float]]:
        """FAMILY/VARIANT -> job seconds from the run.json files of earlier builds (same profile and code) under
        results/.

        Read once, at the start: Snakemake deletes a job's outputs when the job starts (a forced or changed run),
        and a run.json this build writes is already counted in ratio()."""
        if self._walls is None:
            self._walls = {}
            for run_json in run_files(self.results_dir(), RUN_INFO):
                try:
                    info = json.loads(run_json.read_text())
                except (OSError, ValueError):
                    continue
                if info.get("profile") == self.profile and isinstance(info.get("wall_seconds"), (int, float)):
                    family, variant, _ = parse_run_dir(run_json.parent)
                    try:
                        if info.get("code_sha256") != self._code(family):
                            continue
                    except Exception:  # a family this checkout does not have
                        continue
                    key = f"{family}/{variant}"
                    self._walls.setdefault(key, []).append(info["wall_seconds"] + STARTUP)
        return self._walls

    def pending_runs(self) -> list[tuple[float, bool, str | None]]:
        """(expected cost, measured, family) of the training runs planned but not started yet.

        Snakemake tells the logger how many `train` jobs it plans, not which: runs without metrics.json are
        certainly among them; any further ones are reruns of existing runs, costed at their mean (family None)."""
        n = self.planned.get("train", 0) - sum(1 for j in self.jobs.values() if j.rule == "train")
        if n <= 0:
            return []
        started = {j.name for j in self.jobs.values() if j.rule == "train"}
        missing, present = [], []
        if self.cfg:
            from .config import runs
            for fam, var, seed in runs(self.cfg):
                if run_id(fam, var, seed) in started:
                    continue
                done = (run_dir(self.results_dir(), fam, var, seed) / METRICS).exists()
                cost, measured = self.expected("train", {"family": fam, "variant": var})
                (present if done else missing).append((cost, measured, fam))
        costs = missing[:n]
        if len(costs) < n:
            pool = present or missing or [(30.0, False, None)]
            mean = statistics.mean(c for c, _, _ in pool)
            costs += [(mean, all(m for _, m, _ in pool), None)] * (n - len(costs))
        return costs

    # --- events ---------------------------------------------------------------------------------------------

    def plan(self, stats: dict) -> None:
        self.planned = {k: int(v) for k, v in stats.items() if k != "total" and str(v).isdigit()}

    def start(self, jobid: int, rule: str, wildcards: dict, log=(), output=()) -> Job:
        cost, measured = self.expected(rule, wildcards)
        job = Job(jobid, rule, dict(wildcards), list(log), list(output), cost, measured, self.clock())
        self.jobs[jobid] = job
        return job

    def finish(self, jobid: int) -> Job | None:
        job = self.jobs.get(jobid)
        if job is None or job.finished is not None:
            return None
        job.finished = self.clock()
        self.cache.add(self.profile, self.cost_key(job.rule, job.wildcards), job.finished - job.started)
        return job

    def fail(self, jobid: int) -> Job | None:
        job = self.jobs.get(jobid)
        if job is not None and job.finished is None:
            job.finished, job.failed = self.clock(), True
        return job

    # --- the numbers the console shows ------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Training runs done, running and left, and all jobs done / planned."""
        runs = [j for j in self.jobs.values() if j.rule == "train"]
        done = sum(1 for j in runs if j.finished is not None and not j.failed)
        running = sum(1 for j in runs if j.finished is None)
        total = self.planned.get("train", len(runs))
        jobs_done = sum(1 for j in self.jobs.values() if j.finished is not None)
        return {"runs_done": done, "runs_running": running, "runs_failed": sum(1 for j in runs if j.failed),
                "runs_left": max(total - len(runs), 0), "runs_total": total,
                "jobs_done": jobs_done, "jobs_total": sum(self.planned.values()) or len(self.jobs)}

    def ratio(self, train: bool = True, family: str | None = None) -> float:
        """actual / expected over the jobs of this build so far (1 until there is one): training runs whose costs
        were measured before (the machine's speed now against then; all runs while none was), the runs of one
        `family`, or (train=False) the other jobs, which a busy machine slows differently (process start-up, I/O)."""
        if train and family is None:
            return self._machine_ratio(self.pending_runs())
        found = self._ratio(train, family)
        return 1.0 if found is None else found

    def _machine_ratio(self, pending: list[tuple[float, bool, str | None]]) -> float:
        """The training runs' ratio over those with measured costs, or over all while no run has one."""
        any_measured = (any(j.measured for j in self.jobs.values() if j.rule == "train")
                        or any(m for _, m, _ in pending))
        found = self._ratio(True, None, measured=True if any_measured else None)
        return 1.0 if found is None else found

    def _ratio(self, train: bool, family: str | None, measured: bool | None = None) -> float | None:
        """actual / expected over the kind of job asked for; `measured` True or False keeps only the jobs whose
        cost was measured before or only the estimated ones, None keeps both."""
        now = self.clock()
        kind = [j for j in self.jobs.values() if (j.rule == "train") == train and j.rule != "all" and not j.failed]
        if family is not None:
            kind = [j for j in kind if j.wildcards.get("family") == family]
        if measured is not None:
            kind = [j for j in kind if j.measured == measured]
        # The last RECENT finished jobs, and running ones already past their expected cost: on a shared machine
        # the load changes within a build, and a slow-down shows before any job ends.
        done = sorted((j for j in kind if j.finished is not None), key=lambda j: j.finished)[-self.RECENT:]
        pairs = [(j.finished - j.started, j.expected) for j in done]
        pairs += [(now - j.started, j.expected) for j in kind if j.finished is None and now - j.started > j.expected]
        expected = sum(e for _, e in pairs)
        if not pairs or expected <= 0:
            return None
        return min(max(sum(a for a, _ in pairs) / expected, 0.2), 5.0)

    def _run_ratios(self, machine: float):
        """(family, measured) -> the ratio that scales one run's expected cost: the machine's for a measured cost,
        its family's for an estimated one; until a run of that family has finished, that of the estimated runs of
        any family, and 1 until one of those has. The machine's ratio compares this build with the one whose costs
        were cached (a VM that ran at a third of its speed that day gave 0.36), which says nothing about how far
        off a profile estimate is. Each ratio is computed once per call of eta."""
        own: dict[str, float | None] = {}
        estimated: list[float | None] = []

        def ratio(family: str | None, measured: bool) -> float:
            if measured or family is None:
                return machine
            if family not in own:
                own[family] = self._ratio(True, family)
            if own[family] is not None:
                return own[family]
            if not estimated:
                estimated.append(self._ratio(True, None, measured=False))
            return 1.0 if estimated[0] is None else estimated[0]
        return ratio

    def eta(self) -> tuple[float, str]:
        """(seconds left, where the estimate comes from: 'from earlier runs' or 'estimated')."""
        now, pending = self.clock(), self.pending_runs()
        r = self._machine_ratio(pending)
        run_ratio = self._run_ratios(r)
        # Until an aggregate or report has finished, the runs' ratio stands for the machine's load on them too.
        r_other = self.ratio(train=False) if self._other_done() else r
        slots = max(1, self.cores // max(1, self._threads()))
        free = sorted(max(j.expected * rj - (now - j.started), 0.1 * j.expected * rj)
                      for j in self.jobs.values() if j.finished is None
                      for rj in [run_ratio(j.wildcards.get("family"), j.measured) if j.rule == "train" else r_other])
        free = (free + [0.0] * slots)[:max(slots, len(free))]
        measured = all(m for _, m, _ in pending) and all(
            j.measured for j in self.jobs.values() if j.finished is None and j.rule == "train")
        # longest first: the tail Snakemake also avoids
        costs = sorted((c * run_ratio(f, m) for c, m, f in pending), reverse=True)
        started = {}
        for j in self.jobs.values():
            started[j.rule] = started.get(j.rule, 0) + 1
        for rule, n in self.planned.items():
            if rule != "train":
                # after the runs: aggregates and reports wait for them
                costs += [self.expected(rule, {})[0] * r_other] * max(n - started.get(rule, 0), 0)
        for c in costs:
            free.sort()
            free[0] += c
        left = max(free) if free else 0.0
        if any(j.rule == "train" and j.finished is not None for j in self.jobs.values()) and not measured:
            return left, "estimated, corrected by finished runs"
        return left, "from earlier runs" if measured else "estimated"

    def _other_done(self) -> bool:
        return any(j.rule not in ("train", "all") and j.finished is not None and not j.failed
                   for j in self.jobs.values())

    def _threads(self) -> int:
        try:
            return max(int(f.get("threads", 1)) for f in (self.cfg or {}).get("families", {}).values())
        except ValueError:
            return 1

    def elapsed(self) -> float:
        return self.clock() - self.t0


def headline(family: str, metrics: dict) -> tuple[str, float] | None:
    key = HEADLINE.get(family, DEFAULT_HEADLINE)
    value = metrics.get(key)
    return (key, value) if isinstance(value, (int, float)) else None


def duration(seconds: float) -> str:
    """'42 s', '3 min 05 s', '1 h 02 min': the report footer's format (never negative)."""
    from .report.provenance import format_duration
    return format_duration(max(seconds, 0.0))
