"""One view of a finished build, whether it is a snapshot (results/snapshots/NAME/) or a live results folder.

Both share the layout runs/FAMILY/VARIANT/seedN/, tables/FAMILY.csv and analysis/NAME.json; a snapshot adds
manifest.json (format version, commit, profile). Only complete runs (metrics.json present, written last) count.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import paths
from . import FORMAT_VERSION, ReviewError

RUN_FILES = (paths.METRICS, paths.RUN_INFO, paths.PREDICTIONS, paths.EXTRAS, paths.HISTORY)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class Run:
    family: str
    variant: str
    seed: int
    metrics: dict
    info: dict                      # run.json: params, profile, precision, device, commit, ...
    predictions: dict | None        # predictions.json (absent for autoencoder runs and older builds)
    timing: dict                    # extras.json "timing": wall-clock numbers kept out of metrics.json

    @property
    def key(self) -> tuple[str, str, int]:
        return self.family, self.variant, self.seed

    @property
    def where(self) -> str:
        return paths.run_dir("", self.family, self.variant, self.seed).as_posix()


@dataclass
class Build:
    label: str                      # what the user named it (snapshot name or folder)
    path: Path
    kind: str                       # "snapshot" | "results"
    manifest: dict = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    analyses: dict[str, dict] = field(default_factory=dict)
    runs: dict[tuple[str, str, int], Run] = field(default_factory=dict)

    @property
    def families(self) -> list[str]:
        return sorted({k[0] for k in self.runs} | set(self.tables))

    def profiles(self, family: str | None = None) -> set[str]:
        found = {str(r.info.get("profile")) for r in self.runs.values() if family in (None, r.family)}
        if not found and self.manifest.get("profile"):
            found = {str(self.manifest["profile"])}
        return found

    def commits(self) -> list[str]:
        return sorted({str(r.info.get("git_commit", "unknown")) for r in self.runs.values()})

    def seeds_of(self, family: str, variant: str) -> list[Run]:
        return [r for k, r in sorted(self.runs.items()) if k[:2] == (family, variant)]

    def describe(self) -> dict:
        return {"label": self.label, "kind": self.kind, "path": str(self.path),
                "commit": self.manifest.get("commit") or ", ".join(self.commits()) or "unknown",
                "run_commits": self.commits(), "profile": ", ".join(sorted(self.profiles())) or "unknown",
                "runs": len(self.runs), "families": self.families, "analyses": sorted(self.analyses)}


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ReviewError(f"{path}: unreadable ({exc.__class__.__name__}: {exc})") from None


def read_runs(root: Path) -> dict[tuple[str, str, int], Run]:
    runs = {}
    for metrics in paths.run_files(root, paths.METRICS):
        folder = metrics.parent
        try:
            family, variant, seed = paths.parse_run_dir(folder)
        except ValueError:
            continue
        info = _json(folder / paths.RUN_INFO) if (folder / paths.RUN_INFO).exists() else {}
        preds = _json(folder / paths.PREDICTIONS) if (folder / paths.PREDICTIONS).exists() else None
        extras = _json(folder / paths.EXTRAS) if (folder / paths.EXTRAS).exists() else {}
        run = Run(family, variant, seed, _json(metrics), info, preds,
                  extras.get("timing", {}) if isinstance(extras, dict) else {})
        runs[run.key] = run
    return runs


def read(path: Path, label: str, kind: str) -> Build:
    path = Path(path)
    build = Build(label=label, path=path, kind=kind)
    if kind == "snapshot":
        build.manifest = _json(path / "manifest.json")
        fmt = build.manifest.get("format", 0)
        if fmt != FORMAT_VERSION:
            raise ReviewError(f"snapshot {label!r} is in format {fmt}, this version reads format {FORMAT_VERSION}: "
                              f"re-create it with `python -m pipeline snapshot NAME` from its build")
    build.runs = read_runs(path)
    for csv in paths.all_tables(path):
        build.tables[csv.stem] = pd.read_csv(csv)
    for js in paths.all_analyses(path):
        build.analyses[js.stem] = _json(js)
    if not (build.runs or build.tables or build.analyses):
        raise ReviewError(f"{label}: no runs, tables or analyses in {path} (not a finished build)")
    return build


def known_snapshots(snapshots_dir: Path) -> list[str]:
    return sorted(p.parent.name for p in Path(snapshots_dir).glob("*/manifest.json"))


def open_build(spec: str, snapshots_dir: Path) -> Build:
    """`spec` is a snapshot name (results/snapshots/NAME) or a folder: a snapshot or a results folder."""
    snap = Path(snapshots_dir) / spec
    if NAME_RE.match(spec) and (snap / "manifest.json").exists():
        return read(snap, spec, "snapshot")
    folder = Path(spec)
    if folder.is_dir():
        if (folder / "manifest.json").exists():
            return read(folder, spec, "snapshot")
        if any((folder / sub).is_dir() for sub in (paths.RUNS, paths.TABLES, paths.ANALYSIS)):
            return read(folder, spec, "results")
        raise ReviewError(f"{spec}: neither a snapshot (no manifest.json) nor a results folder "
                          f"(no runs/, tables/ or analysis/)")
    known = known_snapshots(snapshots_dir)
    raise ReviewError(f"unknown snapshot {spec!r}: known in {snapshots_dir}: {', '.join(known) or 'none'} "
                      f"(make one with `python -m pipeline snapshot NAME`, or give a results folder)")
