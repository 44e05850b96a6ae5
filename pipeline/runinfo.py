"""Provenance facts about this process: code version, packages, hardware."""
from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from importlib import metadata

from .config import ROOT

PACKAGES = ("torch", "torchvision", "numpy", "pandas", "matplotlib", "vit-pytorch", "snakemake", "weasyprint")


@lru_cache(maxsize=None)
def git_commit() -> str:
    """Short commit hash, with '-dirty' when tracked files differ from it; 'unknown' outside git."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    try:
        head = git("rev-parse", "--short=10", "HEAD")
        if head.returncode != 0:
            return "unknown"
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


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
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_device(device) -> str:
    import torch
    if getattr(device, "type", str(device)) == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{cpu_model()} ({torch.get_num_threads()} threads)"
