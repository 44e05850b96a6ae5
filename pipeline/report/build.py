"""`python -m pipeline report NAME`: assemble the context of an assignment from results/ and render it."""
from __future__ import annotations

import importlib
import json
from pathlib import Path

from ..config import ROOT  # noqa: F401  (tests and callers locate templates/ through it)
from . import context as generic
from .assignments import TEMPLATES, families, missing_needs, own_module
from .provenance import collect
from .render import ReportError, render_report


def build_report(cfg: dict, assignment: str) -> Path:
    adir = TEMPLATES / assignment
    results = Path(cfg["results_dir"]).resolve()
    missing = missing_needs(assignment, results)
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ReportError(f"{assignment}: {shown} missing under {results}; build them first with `make report "
                          f"PROFILE={cfg['profile']}` (a report only re-renders what the runs wrote)")
    # An assignment may bring its own Python for findings no declaration covers; without it, its folder is enough.
    if own_module(assignment):
        context = importlib.import_module(f"pipeline.report.{assignment}").context(cfg, results)
    else:
        context = generic.context(cfg, results, assignment)
    context["declared"] = generic.declared(cfg, results, assignment)
    summary = render_report(adir, context, Path(cfg["reports_dir"]), assignment, base_url=results,
                            provenance=collect(cfg["profile"], results, families=families(cfg, assignment)))
    out = Path(cfg["reports_dir"]) / f"{assignment}.json"
    out.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return Path(cfg["reports_dir"]) / summary["pdf"]  # the summary's paths are relative to reports/
