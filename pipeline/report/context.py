"""The context any assignment gets from its assignment.yaml alone: its families' tables, the runs behind them, and
the findings, tables and figures it declares. An assignment without a module of its own (pipeline/report/NAME.py)
is rendered from this context only.
"""
from __future__ import annotations

from pathlib import Path

from . import declarative, figures
from .assignments import TEMPLATES, families
from .findings import pct, plural, seeds_note
from .render import _show, load_assignment
from .runs import run_index
from .tables import check_declared, declared as declared_table, read_table


def declared(cfg: dict, results: Path, name: str) -> dict:
    """assignment.yaml's `findings:`, `tables:` and `figures:`, computed from results/tables/FAMILY.csv.

    findings: id -> Finding; by_section: section id -> its findings in declaration order; tables: id -> formatted
    DataFrame; figures: id -> {src (a data: URI), caption, width_pct}."""
    adir = TEMPLATES / name
    spec = load_assignment(adir)
    where = _show(adir / "assignment.yaml")
    fams = families(cfg, name)
    entries = declarative.check(spec.get("findings"), {f: list(cfg["families"][f]["variants"]) for f in fams}, where)
    table_entries = check_declared(spec.get("tables"), fams, where)
    figure_entries = figures.check(spec.get("figures"), fams, where)
    if not (entries or table_entries or figure_entries):
        return {"findings": {}, "by_section": {}, "tables": {}, "figures": {}}
    raw = {f: read_table(results, f) for f in fams}
    found = declarative.compute(entries, raw, cfg, where)
    by_section: dict[str, list] = {}
    for f in found.values():
        by_section.setdefault(f.section, []).append(f)
    return {"findings": found, "by_section": by_section,
            "tables": {e["id"]: declared_table(e, raw, where) for e in table_entries},
            "figures": figures.draw(figure_entries, raw)}


def context(cfg: dict, results: Path, name: str) -> dict:
    fams = families(cfg, name)
    raw = {f: read_table(results, f) for f in fams}
    return {
        "profile": cfg["profile"],
        "families": fams,
        "raw": raw,
        "runs": {f: run_index(cfg, results, f, Path(cfg["reports_dir"])) for f in fams},
        "seeds": {f: seeds_note(raw[f]) for f in fams},
        "params": {f: cfg["families"][f].get("defaults", {}) for f in fams},
        "plural": plural, "pct": pct,
    }
