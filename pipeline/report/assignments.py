"""Which assignments a build renders, and which families each one reads.

An assignment is a folder templates/NAME/ with an assignment.yaml. It is built when a family of the configuration
names it (`assignment: NAME`), or when its assignment.yaml declares `uses: [FAMILY, ...]` and every one of those
families is configured: an assignment that reads only other assignments' results needs no training and no Python.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from .. import paths
from ..config import ROOT

TEMPLATES = ROOT / "templates"


def spec_path(name: str):
    return TEMPLATES / name / "assignment.yaml"


def spec(name: str) -> dict:
    path = spec_path(name)
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def uses(name: str) -> list[str]:
    return [str(f) for f in spec(name).get("uses") or []]


def discover(cfg: dict) -> list[str]:
    """Assignments with a template folder and either a configured family or `uses:` families all configured."""
    named = {f["assignment"] for f in cfg["families"].values()}
    folders = {p.parent.name for p in TEMPLATES.glob("*/assignment.yaml") if not p.parent.name.startswith("_")}
    used = {n for n in folders - named if uses(n) and set(uses(n)) <= set(cfg["families"])}
    return sorted((named & folders) | used)


def families(cfg: dict, name: str) -> list[str]:
    """The families whose results the report reads: its own, then those it `uses:`, in configuration order."""
    wanted = set(uses(name))
    return [f for f, s in cfg["families"].items() if s["assignment"] == name or f in wanted]


def table_needs(name: str) -> list[str]:
    """A `uses:` assignment depends on exactly its families' tables (paths under results/)."""
    return [str(paths.table("", f)) for f in uses(name)]


def needs(name: str) -> list[str]:
    """Everything under results/ the report reads: its `uses:` families' tables and its declared `needs:`."""
    return list(dict.fromkeys(table_needs(name) + [str(n) for n in spec(name).get("needs") or []]))


def missing_needs(name: str, results) -> list[str]:
    return [n for n in needs(name) if not (Path(results) / n).exists()]


# Modules of the report layer itself: an assignment folder of one of these names would be mistaken for its code.
LAYER = {"assignments", "build", "context", "declarative", "figures", "findings", "fit", "index", "portable",
         "provenance", "render", "runs", "tables"}


def own_module(name: str) -> str | None:
    """pipeline/report/NAME.py, relative to the repository, when the assignment brings Python of its own."""
    path = ROOT / "pipeline" / "report" / f"{name}.py"
    return None if name in LAYER or not path.is_file() else f"pipeline/report/{name}.py"
