"""Provenance facts about this process: code version, packages, hardware."""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from .config import ROOT

PACKAGES = ("torch", "torchvision", "numpy", "pandas", "matplotlib", "vit-pytorch", "snakemake", "weasyprint")


@lru_cache(maxsize=None)
def git_commit(repo_dir: Path = ROOT) -> str:
    """Short hash, with "-dirty" when tracked files differ from it; "unknown" outside git.

    DFL_GIT_COMMIT overrides it, for machines that run a copy of the code without its .git (cluster nodes).
    """
    if os.environ.get("DFL_GIT_COMMIT"):
        return os.environ["DFL_GIT_COMMIT"]
    if shutil.which("git") is None:
        return "unknown"
    # Optional locks off: provenance must never take index.lock from under someone's git.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        head = subprocess.run(["git", "-C", str(repo_dir), "rev-parse", "--short=10", "HEAD"],
                              capture_output=True, text=True, timeout=20, env=env)
        if head.returncode != 0 or not head.stdout.strip():
            return "unknown"
        status = subprocess.run(["git", "-C", str(repo_dir), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=60, env=env)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = head.stdout.strip()
    if status.returncode != 0 or status.stdout.strip():
        # An unreadable status counts as dirty: claiming a clean tree must be earned.
        commit += "-dirty"
    return commit


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


@lru_cache(maxsize=None)
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def describe_device(device) -> str:
    import torch
    if getattr(device, "type", str(device)) == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    n = torch.get_num_threads()
    return f"cpu:{cpu_model()} ({n} thread{'s' if n != 1 else ''})"
