"""What produced a report: commit, profile, date, device (and precision) and training time, for its footer."""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from collections import Counter
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from .. import paths
from ..runinfo import ROOT, cpu_model, git_commit

PACKAGES = ("torch", "weasyprint")


def collect(profile: str, results_dir: Path, repo_dir: Path | None = None,
            families: list[str] | None = None) -> dict:
    """Provenance of the results under `results_dir`, as plain JSON-able values.

    Device and training time come from the run.json files the training runs wrote
    (results/runs/FAMILY/VARIANT/seedN/run.json), since the report may be rendered on another
    machine than the one that trained; without any, this machine is described instead.
    """
    runs = _read_runs(Path(results_dir), families)
    seconds = sum(r["wall_seconds"] for r in runs if isinstance(r.get("wall_seconds"), (int, float)))
    # The arithmetic is part of the result: bf16 autocast and fp32 train to slightly different numbers.
    devices = [f"{_device(r)}, {r['precision']}" if r.get("precision") else _device(r) for r in runs if r.get("device")]
    # The runs may come from an older commit than the report code (re-rendering never retrains): say which.
    run_commits = list(dict.fromkeys(str(r["git_commit"]) for r in runs if r.get("git_commit")))
    return {
        "commit": git_commit(repo_dir or ROOT),
        "runs_commit": ", ".join(run_commits[:3]) + (f" (+{len(run_commits) - 3} more)" if len(run_commits) > 3 else ""),
        "profile": profile,
        "date": _today(),
        "device": _describe_devices(devices) if devices else this_machine(),
        "device_source": "runs" if devices else "renderer",
        "n_runs": len(runs),
        "training_seconds": round(float(seconds), 1),
        "training_time": format_duration(seconds) if runs else "n/a",
        "packages": {name: _version(name) for name in PACKAGES},
        "python": platform.python_version(),
    }


def format_duration(seconds: float) -> str:
    seconds = int(round(float(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min"


def this_machine() -> str:
    gpu = _cuda_name()
    cpu = cpu_model()
    return f"{gpu} ({cpu})" if gpu else cpu


def _read_runs(results_dir: Path, families: list[str] | None = None) -> list[dict]:
    """run.json of every run, or of the given families' runs only (a report counts its own training)."""
    runs = []
    files = ([p for f in families for p in paths.run_files(results_dir, paths.RUN_INFO, f)] if families is not None
             else paths.run_files(results_dir, paths.RUN_INFO))
    for path in sorted(files):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a run being written right now; the report's inputs list the finished ones
        if isinstance(data, dict):
            runs.append(data)
    return runs


def _device(run: dict) -> str:
    return str(run["device"]).replace("(1 threads)", "(1 thread)")  # as runs before 2026-11-23 wrote it


def _describe_devices(devices: list[str]) -> str:
    counts = Counter(devices)
    if len(counts) == 1:
        return devices[0]
    return " / ".join(f"{d} ({n} runs)" for d, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _today() -> str:
    # SOURCE_DATE_EPOCH lets a rebuild reproduce a report byte for byte.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    now = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch and epoch.isdigit() else datetime.now(timezone.utc)
    return now.date().isoformat()


def _cuda_name() -> str | None:
    torch = sys.modules.get("torch")  # importing torch just for a name would cost seconds
    if torch is not None:
        try:
            if torch.cuda.is_available():
                return torch.cuda.get_device_name(0)
        except Exception:
            pass
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=15)
            names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
            if out.returncode == 0 and names:
                return names[0] if len(set(names)) == 1 else f"{len(names)}x {names[0]}"
        except (OSError, subprocess.SubprocessError):
            pass
    return None


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"
