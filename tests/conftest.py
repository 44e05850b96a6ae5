"""Shared fixtures: verified datasets in the repository's data/ cache, fetched once if missing."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    from pipeline.data import images
    for name in ("mnist", "fashion-mnist"):
        images.fetch(name, DATA, log=lambda m: None)
    return DATA


@pytest.fixture
def smoke_cfg(tmp_path, data_dir) -> dict:
    from pipeline import config
    cfg = config.load("smoke")
    cfg["results_dir"] = str(tmp_path / "results")
    cfg["reports_dir"] = str(tmp_path / "reports")
    cfg["data_dir"] = str(data_dir)
    cfg["device"] = "cpu"
    return cfg


def run_cli(*args, cwd=ROOT, env=None, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def snakemake(workdir: Path, *args, timeout=900) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "snakemake"
    return subprocess.run([str(exe), "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), *args],
                          cwd=workdir, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def smoke_workflow(tmp_path_factory, data_dir) -> Path:
    """The whole smoke workflow, run once per test session into a temporary work directory."""
    work = tmp_path_factory.mktemp("smoke")
    proc = snakemake(work, "--cores", "2", "--config", "profile=smoke", f"data_dir={data_dir}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work


def planned_jobs(proc: subprocess.CompletedProcess) -> dict[str, int]:
    from pipeline.workflow import job_stats
    return job_stats(proc.stdout + proc.stderr)
