"""The build's console (snakemake --logger dflbench): ETA model, plain-text output, stale-lock line, discovery."""
import io
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from snakemake_interface_logger_plugins.common import LogEvent
from snakemake_interface_logger_plugins.tests import MockOutputSettings

from pipeline import config
from pipeline.progress import Build, CostCache

from .conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "console_wf" / "Snakefile"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # ESC included: no colours, no cursor movement


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def _cache(tmp_path, entries: dict | None = None) -> CostCache:
    cache = CostCache(tmp_path / "costs.json")
    cache.earlier = {"smoke": {k: [v] for k, v in (entries or {}).items()}}
    return cache


def test_eta_uses_earlier_costs_over_two_slots_and_follows_a_slower_machine(tmp_path):
    cfg = config.load("smoke")
    clock = Clock()
    runs = list(config.runs(cfg))[:4]
    build = Build(cfg={**cfg, "results_dir": str(tmp_path / "results")}, cores=2, clock=clock,
                  cache=_cache(tmp_path))
    build.cache.earlier = {"smoke": {build.cost_key("train", {"family": f, "variant": v}): [10.0]
                                     for f, v, _ in runs}}
    build.plan({"train": 4, "total": 4})
    left, source = build.eta()
    assert (left, source) == (20.0, "from earlier runs")  # 4 runs x 10 s over 2 slots
    for i, (f, v, s) in enumerate(runs[:2]):
        build.start(i, "train", {"family": f, "variant": v, "seed": s})
    clock.t += 20  # the machine is twice as slow as last time
    for i in range(2):
        build.finish(i)
    assert build.ratio() == pytest.approx(2.0)
    left, _ = build.eta()
    assert left == pytest.approx(20.0)  # the 2 runs left, 10 s each at the observed ratio 2, in parallel
    assert build.counts() == {"runs_done": 2, "runs_running": 0, "runs_failed": 0, "runs_left": 2,
                              "runs_total": 4, "jobs_done": 2, "jobs_total": 4}


def _cnn_and_g2p(tmp_path):
    """A smoke build of two CNN and two G2P runs on a fake clock: (cfg, clock, build, g2p runs, cnn runs)."""
    cfg = config.load("smoke")
    cfg = {**cfg, "results_dir": str(tmp_path / "results"),
           "families": {f: cfg["families"][f] for f in ("cnn", "g2p")}}
    clock = Clock()
    runs = list(config.runs(cfg))
    build = Build(cfg=cfg, cores=2, clock=clock, cache=_cache(tmp_path))
    return cfg, clock, build, [r for r in runs if r[0] == "g2p"][:2], [r for r in runs if r[0] == "cnn"][:2]


def test_a_family_with_new_code_or_settings_does_not_rescale_the_others(tmp_path):
    """G2P's new code made its runs twice as fast: its cached costs no longer apply, and its runs finishing early
    must not halve the ETA of the families whose costs were measured (a 28-minute ETA for a 50-minute build)."""
    cfg, clock, build, g2p, cnn = _cnn_and_g2p(tmp_path)
    build.cache.earlier = {"smoke": {**{build.cost_key("train", {"family": f, "variant": v}): [100.0]
                                        for f, v, _ in cnn},
                                     # what G2P cost before its code changed: another key
                                     **{f"train/{f}/{v}/0123456789ab": [400.0] for f, v, _ in g2p}}}
    assert build.expected("train", {"family": "g2p", "variant": g2p[0][1]})[1] is False
    other = {**cfg, "families": {**cfg["families"], "cnn": {**cfg["families"]["cnn"], "defaults": {
        **cfg["families"]["cnn"]["defaults"], "epochs": 7}}}}
    key = build.cost_key("train", {"family": "cnn", "variant": cnn[0][1]})
    assert Build(cfg=other, cache=_cache(tmp_path)).cost_key("train", {"family": "cnn", "variant": cnn[0][1]}) != key
    build.plan({"train": 4, "total": 4})
    for i, (f, v, s) in enumerate(g2p):
        build.start(i, "train", {"family": f, "variant": v, "seed": s})
    estimate = build.jobs[0].expected
    clock.t += estimate / 2  # G2P runs twice as fast as the profile estimate says
    for i in range(2):
        build.finish(i)
    assert build.ratio(True, "g2p") == pytest.approx(0.5)
    assert build.ratio() == 1.0  # no run with a measured cost has finished: the machine is as fast as before
    left, _ = build.eta()
    assert left == pytest.approx(100.0)  # the two CNN runs keep their measured 100 s each, in parallel


def test_a_faster_machine_does_not_rescale_costs_that_were_never_measured(tmp_path):
    """The mirror case, from a default build: G2P's costs were cached on a day the VM ran at a third of its speed,
    so its runs now take 0.36x of them; scaling the session3 families' profile estimates (never measured) by that
    ratio too gave a 16-minute ETA with 83 runs and about 35 minutes left."""
    _, clock, build, g2p, cnn = _cnn_and_g2p(tmp_path)
    build.cache.earlier = {"smoke": {build.cost_key("train", {"family": f, "variant": v}): [900.0]
                                     for f, v, _ in g2p}}
    cnn_estimate, measured = build.expected("train", {"family": "cnn", "variant": cnn[0][1]})
    assert measured is False
    build.plan({"train": 4, "total": 4})
    for i, (f, v, s) in enumerate(g2p):
        build.start(i, "train", {"family": f, "variant": v, "seed": s})
    clock.t += 300.0
    for i in range(2):
        build.finish(i)
    assert build.ratio() == pytest.approx(1 / 3)  # the machine against the day G2P's costs were measured
    left, source = build.eta()
    assert source == "estimated, corrected by finished runs"
    # The two CNN runs in parallel at their own estimates: no run has shown how far off those are.
    expected = max(build.expected("train", {"family": "cnn", "variant": v})[0] for _, v, _ in cnn)
    assert left == pytest.approx(expected)
    # Once an estimated run has finished, its ratio (actual / estimate) scales the other estimated runs.
    build.start(2, "train", {"family": "cnn", "variant": cnn[0][1], "seed": cnn[0][2]})
    clock.t += 2 * cnn_estimate
    build.finish(2)
    left, _ = build.eta()
    assert left == pytest.approx(2 * build.expected("train", {"family": "cnn", "variant": cnn[1][1]})[0])


@pytest.mark.parametrize("argv", [
    ["--cores", "2", "--config", "profile=default", "seeds=[0]"],               # make report SEEDS=0
    ["reports/hw2.pdf", "--cores", "2", "--config", "profile=smoke", "seeds=[0,1]"],
])
def test_the_console_reads_the_seeds_the_makefile_passes(argv):
    """`make report SEEDS=0` passes `--config seeds=[0]`: read as ['0'] the configuration failed to load, and the
    console costed every run at a flat 30 s (an ETA of 7 min for a build of 18) under cache keys no build reads."""
    from snakemake_logger_plugin_dflbench import _from_argv
    cfg, _ = _from_argv(argv)
    assert cfg is not None
    assert cfg["seeds"] == [int(v) for v in argv[-1].removeprefix("seeds=[").removesuffix("]").split(",")]
    assert cfg["profile"] == argv[-2].removeprefix("profile=")


def test_eta_without_earlier_runs_is_estimated_from_the_profile(tmp_path):
    cfg = config.load("smoke")
    build = Build(cfg={**cfg, "results_dir": str(tmp_path / "results")}, cores=2, cache=_cache(tmp_path))
    build.plan({"train": 33, "report": 2, "total": 35})
    left, source = build.eta()
    assert source == "estimated" and left > 0
    assert build.expected("train", {"family": "vit", "variant": "large"})[1] is False


def test_estimated_cost_grows_with_the_variants_model_and_orders_the_runs():
    """Without earlier runs, a variant's cost follows its model's FLOPs: ViT large (23x tiny's FLOPs) took 6.9x as
    long as tiny on the AMX Xeon, the CNN with 64 filters 2.1x the base CNN; one cost per family said 1x. The same
    estimate sets the rules' priorities, so the longest runs start first."""
    from pipeline.progress import estimate_run
    from pipeline.workflow import priority
    cfg = config.load("default")
    tiny, large = estimate_run(cfg, "vit", "tiny"), estimate_run(cfg, "vit", "large")
    assert 3 < large / tiny < 10
    assert 1.3 < estimate_run(cfg, "cnn", "filters64") / estimate_run(cfg, "cnn", "base") < 3
    # the stacked family's pretraining stages count its own layers: one for sae128, three for sae512_256_128
    assert estimate_run(cfg, "stacked", "sae512_256_128") > 1.5 * estimate_run(cfg, "stacked", "sae128")
    assert priority(cfg, "vit", "large") > priority(cfg, "vit", "small") > priority(cfg, "vit", "tiny")
    # G2P is not an image family: one cost per word for both variants
    assert estimate_run(cfg, "g2p", "attention") == estimate_run(cfg, "g2p", "no_attention")


def test_cost_cache_keeps_the_last_wall_times_per_host_and_profile(tmp_path):
    cache = CostCache(tmp_path / "c.json")
    for s in range(8):
        cache.add("smoke", "train/cnn/base", float(s))
    cache.save()
    again = CostCache(tmp_path / "c.json")
    assert again.get("smoke", "train/cnn/base") == 5.0  # median of the last 5: 3..7
    assert again.get("default", "train/cnn/base") is None


def _record(event, level=logging.INFO, msg="", **extra) -> logging.LogRecord:
    record = logging.LogRecord("snakemake", level, "x", 1, msg, (), None)
    if event is not None:
        record.event = event
    for k, v in extra.items():
        setattr(record, k, v)
    return record


def _handler(monkeypatch, tmp_path, stream):
    """The plugin's handler on a non-terminal stream, for the smoke profile in tmp_path."""
    from snakemake_logger_plugin_dflbench import LogHandler
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["snakemake", "--config", "profile=smoke", "--logger", "dflbench"])
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setenv("DFLBENCH_COST_CACHE", str(tmp_path / "costs.json"))
    monkeypatch.setenv("DFLBENCH_HEARTBEAT", "0")
    return LogHandler(MockOutputSettings(), None)


def test_plain_console_from_synthetic_events(monkeypatch, tmp_path):
    run = tmp_path / "results" / "runs" / "cnn" / "base" / "seed0"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"test_acc": 0.9912}))
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "bad.log").write_text("epoch 1\nRuntimeError: out of memory\n")
    (tmp_path / "reports").mkdir()
    for name, pages, limit in (("session3", 4, 4), ("hw2", 6, 8), ("cnn_vs_vit", 2, 2)):
        (tmp_path / "reports" / f"{name}.pdf").write_text("%PDF")
        (tmp_path / "reports" / f"{name}.json").write_text(json.dumps(
            {"pages": pages, "page_limit": limit, "previews": ["p.png"], "provenance": {"training_time": "3 s"}}))
    out = io.StringIO()
    handler = _handler(monkeypatch, tmp_path, out)
    for record in [
        _record(LogEvent.RESOURCES_INFO, cores=2),
        _record(LogEvent.RUN_INFO, stats={"train": 2, "report": 2, "all": 1, "total": 5}),
        _record(LogEvent.JOB_INFO, jobid=1, rule_name="train", wildcards={"family": "cnn", "variant": "base",
                "seed": "0"}, log=["logs/runs/cnn/base/seed0.log"], output=[str(run / "metrics.json")]),
        _record(LogEvent.JOB_FINISHED, job_id=1),
        _record(LogEvent.JOB_INFO, jobid=2, rule_name="train", wildcards={"family": "vit", "variant": "tiny",
                "seed": "0"}, log=["logs/bad.log"], output=[]),
        _record(LogEvent.JOB_ERROR, level=logging.ERROR, jobid=2, rule_name="train", log=["logs/bad.log"]),
        _record(None, level=logging.WARNING, msg="a Snakemake warning\nwith a second line"),
        _record(None, msg="Select jobs to execute..."),
    ]:
        handler.emit(record)
    handler.close()
    text = out.getvalue()
    assert not CONTROL.search(text.replace("\n", "")), repr(text)
    lines = text.splitlines()
    assert lines[0].startswith("Building 2 training runs, 2 reports (profile smoke, 2 cores); ETA ")
    assert any(l.startswith("run cnn/base/seed0: test_acc 0.9912, ") and "runs 1/2 done" in l and "ETA" in l
               for l in lines), text
    assert "FAILED train vit/tiny/seed0 after 0 s; log: logs/bad.log" in text
    assert "    RuntimeError: out of memory" in lines
    assert "a Snakemake warning" in lines and "with a second line" in lines
    assert "Select jobs" not in text  # Snakemake's chatter stays in its own log
    assert "reports/session3.pdf, 4 of 4 pages" in text and "reports/hw2.pdf, 6 of 8 pages" in text
    # The outcome line comes before one line per report (as many as the configuration has assignments).
    outcome = next(line for line in lines if line.startswith("FAILED after"))
    assert re.match(r"FAILED after \d+ s: 1 jobs failed: vit/tiny/seed0 \(logs/bad.log\)", outcome), outcome


def _snakemake(workdir, *args, env=None, timeout=300):
    exe = Path(sys.executable).parent / "snakemake"
    return subprocess.run([str(exe), "-s", str(FIXTURE), "--directory", str(workdir), "--cores", "2",
                           "--config", "profile=smoke", *args], cwd=workdir, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "DFLBENCH_COST_CACHE": str(workdir / "costs.json"),
                                                **(env or {})})


def test_real_build_off_a_terminal_prints_plain_lines_and_a_summary(tmp_path):
    proc = _snakemake(tmp_path, "--logger", "dflbench")
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    assert not CONTROL.search(text.replace("\n", "")), repr(text[-2000:])
    assert "Building 3 training runs, 3 reports (profile smoke, 2 cores); ETA" in text
    for line in ("run cnn/base/seed0: test_acc 0.9876, ", "run autoencoder/ae32/seed0: test_mse 0.0123, ",
                 "run g2p/attention/seed0: test_wer_greedy 0.31, "):
        assert line in text, text
    assert "warning (logs/report/hw2.log): pdftoppm not found (install poppler-utils)" in text
    assert "Done in " in text and "3 runs trained" in text
    assert "  reports/session3.pdf, 3 of 4 pages (+ appendix, 2 pages); training time 2 s" in text
    assert "  reports/hw2.pdf, 7 of 8 pages (+ appendix, 2 pages); training time 2 s" in text
    assert "fell back: hw2: no page previews" in text
    assert "rule train:" not in text and "jobid" not in text.lower()  # no Snakemake job blocks
    assert json.loads((tmp_path / "costs.json").read_text())  # the next build's ETA is measured

    again = _snakemake(tmp_path, "--logger", "dflbench")
    lines = [l for l in (again.stdout + again.stderr).splitlines() if not l.startswith("Using workflow")]
    assert again.returncode == 0
    assert lines == ["Up to date, nothing to build: reports/cnn_vs_vit.pdf, 1 of 2 pages (+ appendix, 2 pages); "
                     "reports/hw2.pdf, 7 of 8 pages (+ appendix, 2 pages); "
                     "reports/session3.pdf, 3 of 4 pages (+ appendix, 2 pages)"], lines


def test_dry_run_keeps_snakemakes_own_output(tmp_path):
    proc = _snakemake(tmp_path, "-n", "--logger", "dflbench")
    assert proc.returncode == 0
    assert "Job stats:" in proc.stdout + proc.stderr  # what `snakemake -n` users and tests read


@pytest.mark.parametrize("targets", [(), ("--", "reports/hw2.pdf")], ids=["all", "after --"])
def test_stale_lock_is_explained_in_one_line_with_the_fix(tmp_path, targets):
    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    # What a build killed with SIGKILL leaves behind: its lock files, and no Snakemake process.
    (locks / "0.output.lock").write_text("reports/hw2.pdf\n")
    proc = _snakemake(tmp_path, "--logger", "dflbench", *targets)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    line = next((l for l in text.splitlines() if l.startswith("Stale lock:")), None)
    assert line is not None, text
    assert f"no other Snakemake is running in {tmp_path}" in line and "--unlock" in line.split("`")[1]
    assert "--logger" not in line.split("`")[1]  # the fix is the same command without the console
    fix = subprocess.run(line.split("`")[1], shell=True, cwd=tmp_path, capture_output=True, text=True)
    assert fix.returncode == 0, fix.stderr
    assert not locks.exists() or not list(locks.iterdir())


def test_plugin_is_found_from_any_directory(tmp_path):
    # Snakemake scans sys.path for snakemake_logger_plugin_* modules; the editable install must put it there.
    code = ("from snakemake_interface_logger_plugins.registry import LoggerPluginRegistry as R; "
            "print('dflbench' in R().plugins)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert proc.stdout.strip() == "True", proc.stderr
