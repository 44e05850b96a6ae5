"""`python -m pipeline snapshot NAME`: keep a small copy of a finished build to diff later builds against.

Everything a report prints and every number traces back to: tables, analyses, and per run metrics.json, run.json,
predictions.json, extras.json (timing) and history.csv. Model weights and figures stay behind (they are large and
regenerated from these). The manifest records the format version, the commit and the profile.
"""
from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

from .. import paths, runinfo
from . import FORMAT_VERSION, ReviewError
from .build import NAME_RE, RUN_FILES, read


def snapshots_dir(cfg: dict) -> Path:
    return Path(cfg["results_dir"]) / "snapshots"


def take(results_dir: Path, name: str, dest_root: Path, profile: str | None = None, force: bool = False) -> Path:
    if not NAME_RE.match(name):
        raise ReviewError(f"snapshot name {name!r}: use letters, digits, '.', '_' or '-'")
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ReviewError(f"no results folder at {results_dir}: build first (make report)")
    build = read(results_dir, str(results_dir), "results")  # refuses an empty folder with one line
    dest = Path(dest_root) / name
    if dest.exists() and not force:
        raise ReviewError(f"snapshot {name!r} exists at {dest}; choose another name or pass --force")

    # Written beside the destination and renamed, so a half-copied snapshot never looks finished.
    staging = dest.parent / f".{name}.tmp{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    for run in build.runs.values():
        src, out = results_dir / run.where, staging / run.where
        out.mkdir(parents=True)
        for f in RUN_FILES:
            if (src / f).exists():
                shutil.copy2(src / f, out / f)
    for f in paths.all_tables(results_dir) + paths.all_analyses(results_dir):
        out = staging / f.relative_to(results_dir)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, out)
    profiles = sorted(build.profiles()) or ([profile] if profile else [])
    manifest = {
        "format": FORMAT_VERSION, "name": name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": runinfo.git_commit(),          # the code that aggregated and snapshotted
        "run_commits": build.commits(),          # the code each run was trained with (may be older: caching)
        "profile": profiles[0] if len(profiles) == 1 else profiles,
        "precision": sorted({str(r.info.get("precision")) for r in build.runs.values()}),
        "devices": sorted({str(r.info.get("device")) for r in build.runs.values()}),
        "source": str(results_dir.resolve()),
        "families": build.families, "analyses": sorted(build.analyses), "runs": len(build.runs),
    }
    staging.mkdir(parents=True, exist_ok=True)
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if dest.exists():
        shutil.rmtree(dest)
    staging.replace(dest)
    return dest
