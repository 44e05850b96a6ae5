"""The smoke workflow end to end, and Snakemake reruns exactly what changed."""
import json
import os
import time

import yaml

from pipeline import config

from .conftest import ROOT, planned_jobs, snakemake


def _dry(work, *extra):
    return snakemake(work, "-n", "--cores", "2", "--config", "profile=smoke",
                     f"data_dir={ROOT / 'data'}", *extra)


def test_smoke_workflow_produces_every_run_table_and_report(smoke_workflow):
    cfg = config.load("smoke")
    for family, variant, seed in config.runs(cfg):
        run = smoke_workflow / "results" / "runs" / family / variant / f"seed{seed}"
        assert (run / "metrics.json").exists(), run
        assert json.loads((run / "run.json").read_text())["profile"] == "smoke"
    for family in cfg["families"]:
        assert (smoke_workflow / "results" / "tables" / f"{family}.csv").exists()
    assert (smoke_workflow / "results" / "analysis" / "conv_arithmetic.json").exists()
    for name in ("session3", "hw2"):
        assert (smoke_workflow / "reports" / f"{name}.pdf").stat().st_size > 10_000
        assert (smoke_workflow / "reports" / f"{name}-appendix.pdf").exists()
        assert (smoke_workflow / "reports" / f"{name}.html").exists()
        assert list((smoke_workflow / "reports" / "preview").glob(f"{name}-page-*.png"))


def test_nothing_to_do_after_a_full_run(smoke_workflow):
    proc = _dry(smoke_workflow)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert planned_jobs(proc) == {}, proc.stdout[-2000:]


def test_changing_one_variant_reruns_only_that_variant(smoke_workflow, tmp_path):
    extra = tmp_path / "one_variant.yaml"
    extra.write_text(yaml.safe_dump({"families": {"cnn": {"variants": {"kernel5": {"kernel": 3}}}}}))
    proc = _dry(smoke_workflow, "--configfile", str(extra))
    assert proc.returncode == 0, proc.stderr[-2000:]
    # Two reports read results/tables/cnn.csv: session3 (its family) and cnn_vs_vit (uses: [cnn, vit]); hw2 does not.
    assert planned_jobs(proc) == {"train": 1, "aggregate": 1, "report": 2, "index": 1, "all": 1}
    # What `make bench` holds the same change to (it said "UNEXPECTED jobs" when it still expected one report).
    from pipeline.bench.workflow import expected_jobs
    assert planned_jobs(proc) == expected_jobs(config.load("smoke"), "cnn")
    assert expected_jobs(config.load("smoke"), "g2p")["report"] == 1
    assert "runs/cnn/kernel5/seed0" in proc.stdout
    assert "assignment=cnn_vs_vit" in proc.stdout and "assignment=hw2" not in proc.stdout


def test_template_change_rerenders_without_retraining(smoke_workflow):
    # Snakemake compares checksums: a touch alone changes nothing, an edit re-renders that report only.
    template = ROOT / "templates" / "session3" / "style.css"
    original, stat = template.read_text(), template.stat()
    try:
        os.utime(template, (time.time() + 5, time.time() + 5))
        assert planned_jobs(_dry(smoke_workflow)) == {}
        template.write_text(original + "\n/* edited by a test */\n")
        proc = _dry(smoke_workflow)
        assert planned_jobs(proc) == {"report": 1, "index": 1, "all": 1}, proc.stdout[-2000:]
        assert "output: reports/session3.pdf" in proc.stdout and "output: reports/hw2.pdf" not in proc.stdout
    finally:
        template.write_text(original)
        os.utime(template, (stat.st_atime, stat.st_mtime))


def test_bad_config_fails_before_any_job(tmp_path):
    proc = snakemake(tmp_path, "-n", "--cores", "1", "--config", "profile=smoke", "seedz=[1]")
    assert proc.returncode != 0
    assert "unknown key 'seedz'" in proc.stdout + proc.stderr
