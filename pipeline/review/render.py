"""Write a diff out: reports/diff.json (counts per verdict, for the reports index and CI), diff.html and diff.pdf."""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

import jinja2

from ..report.render import atomic_write
from . import FORMAT_VERSION
from .diff import VERDICTS, Result

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _clean(v):
    """JSON has no NaN: missing statistics become null."""
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def summary(result: Result) -> dict:
    preds = [r for r in result.runs if r.predictions_total is not None]
    return {
        "format": FORMAT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "old": result.old.describe(), "new": result.new.describe(),
        "verdicts": VERDICTS,
        "counts": result.counts(),
        "per_family": {f: result.counts(f) for f in result.families()},
        "beyond_noise": result.beyond_noise,
        "settings_changed": result.settings,
        "notes": result.notes,
        "predictions": {"runs_compared": len(preds),
                        "runs_with_changes": sum(1 for r in preds if r.predictions_changed),
                        "changed": sum(r.predictions_changed for r in preds),
                        "total": sum(r.predictions_total for r in preds)},
        "changed": [it.to_json() for it in result.items if it.verdict != "identical"],
        "runs": [vars(r) for r in result.runs],
    }


def _num(v, digits: int = 6) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def _signed(v) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.4g}"


def html(result: Result, data: dict) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters.update(num=_num, signed=_signed)
    order = ["beyond_noise", "not_comparable", "within_noise", "timing"]
    changed = sorted((it for it in result.items if it.verdict != "identical"),
                     key=lambda it: (order.index(it.verdict), it.family, it.variant, it.name))
    return env.get_template("diff.html").render(d=data, verdicts=VERDICTS, changed=changed, runs=result.runs)


def write(result: Result, out_dir: Path, pdf: bool = True) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = summary(result)
    paths = {"json": out_dir / "diff.json", "html": out_dir / "diff.html"}
    text = html(result, data)
    atomic_write(paths["json"], (json.dumps(_clean(data), indent=2) + "\n").encode())
    atomic_write(paths["html"], text.encode())
    if pdf:
        from weasyprint import HTML

        from ..report.portable import ReportFetcher
        paths["pdf"] = out_dir / "diff.pdf"
        # The diff holds strings from results/ (variant and column names): it may load nothing but data: URIs.
        atomic_write(paths["pdf"], HTML(string=text, base_url=str(out_dir), url_fetcher=ReportFetcher([])).write_pdf())
    return paths



def console(result: Result, limit: int = 20) -> str:
    """The few lines a terminal or a CI log needs: counts, then the numbers that changed beyond noise."""
    c = result.counts()
    lines = [f"{result.old.label} -> {result.new.label}: " + ", ".join(f"{n} {VERDICTS[v]}" for v, n in c.items())]
    lines += [f"note: {n}" for n in result.notes]
    for key, changes in result.settings.items():
        lines.append(f"settings changed: {key}: {'; '.join(changes)}")
    beyond = [it for it in result.items if it.verdict == "beyond_noise"]
    for it in beyond[:limit]:
        lines.append(f"  beyond noise: {it.family}/{it.variant} {it.name}: {_num(it.old)} -> {_num(it.new)} "
                     f"({_signed(it.diff)}; {it.reason}) [{it.runs or it.source}]")
    if len(beyond) > limit:
        lines.append(f"  ... and {len(beyond) - limit} more (see diff.html)")
    if c["timing"]:
        lines.append(f"{c['timing']} timing numbers differ: wall-clock varies between runs, reported but not judged")
    changed_runs = [r for r in result.runs if r.predictions_changed]
    if changed_runs:
        lines.append("test predictions changed in " + ", ".join(
            f"{r.where} ({r.predictions_changed}/{r.predictions_total})" for r in changed_runs))
    return "\n".join(lines)
