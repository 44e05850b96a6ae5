"""`python -m pipeline report NAME`: assemble the context of an assignment from results/ and render it."""
from __future__ import annotations

import importlib
import json
from pathlib import Path

from ..config import ROOT, families_of
from .provenance import collect
from .render import render_report


def build_report(cfg: dict, assignment: str) -> Path:
    adir = ROOT / "templates" / assignment
    results = Path(cfg["results_dir"]).resolve()
    builder = importlib.import_module(f"pipeline.report.{assignment}")
    context = builder.context(cfg, results)
    summary = render_report(adir, context, Path(cfg["reports_dir"]), assignment, base_url=results,
                            provenance=collect(cfg["profile"], results, families=families_of(cfg, assignment)))
    out = Path(cfg["reports_dir"]) / f"{assignment}.json"
    out.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return Path(cfg["reports_dir"]) / summary["pdf"]  # the summary's paths are relative to reports/
