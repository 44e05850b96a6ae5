"""Shared fixtures: verified datasets in the repository's data/ cache, fetched once if missing."""
from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    from pipeline.data import fetch
    for name in ("mnist", "fashion-mnist"):
        fetch.fetch(name, DATA, log=lambda m: None)
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


@functools.cache
def _uses_smoke_workflow(module: str) -> bool:
    return re.search(r"def \w+\([^)]*\bsmoke_workflow\b", (ROOT / module).read_text()) is not None


SMOKE_MODULES = pytest.StashKey[dict]()


@pytest.hookimpl(tryfirst=True)  # before -k and -m deselect anything
def pytest_collection_modifyitems(config, items):
    """Which collected modules really use the smoke build (for a test of _uses_smoke_workflow)."""
    uses = config.stash.setdefault(SMOKE_MODULES, {})
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        uses[module] = uses.get(module, False) or "smoke_workflow" in item.fixturenames


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`make test` (pytest-xdist, --dist loadfile): each test module on one worker, as loadfile does, and every module
    that uses the smoke build on the same one, so that the build runs once. (xdist's loadgroup would do it with
    marks, but it renames test ids in a way pytest 9 ignores.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SmokeTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "smoke_workflow" if _uses_smoke_workflow(module) else module

    return SmokeTogether(config, log)


def planned_jobs(proc: subprocess.CompletedProcess) -> dict[str, int]:
    from pipeline.workflow import job_stats
    return job_stats(proc.stdout + proc.stderr)
