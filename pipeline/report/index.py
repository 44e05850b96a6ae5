"""`python -m pipeline index`: reports/index.html, the build at a glance.

Built from the JSON summaries the renderer leaves next to each report (reports/NAME.json), so it
never re-renders anything. Like the reports, the page travels: thumbnails are data: URIs and links
are relative to reports/.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path, PurePosixPath

import jinja2

from .render import TEMPLATES_ROOT, atomic_write

TEMPLATE = "_base/index.html.j2"
# Keys every report summary has (render_report's return value); other JSON files are not reports.
SUMMARY_KEYS = {"name", "pdf", "pages"}


def load_summaries(reports_dir: Path) -> list[dict]:
    out = []
    for path in sorted(Path(reports_dir).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and SUMMARY_KEYS <= set(data) and path.stem == data["name"]:
            out.append(data)
    return out


def _rel(path: str | None, reports_dir: Path) -> str | None:
    """A link relative to reports/; summaries written before issue 17 hold absolute paths."""
    if not path:
        return None
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.relative_to(Path(reports_dir).resolve())
        except ValueError:
            p = Path(p.name)  # the file sits next to its summary
    return PurePosixPath(*p.parts).as_posix()


def _thumbnail(reports_dir: Path, name: str) -> str | None:
    png = Path(reports_dir) / "preview" / f"{name}-page-1.png"
    if not png.is_file():
        return None  # rendered without pdftoppm
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()


def _diff_counts(reports_dir: Path) -> dict | None:
    """reports/diff.json (`python -m pipeline diff`) as {verdict: count}: its "counts" mapping when it has one,
    else its top-level numbers (lists and mappings by length)."""
    path = Path(reports_dir) / "diff.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    counts = (data.get("counts") if isinstance(data.get("counts"), dict) else data) if isinstance(data, dict) else {}
    return {str(k): (len(v) if isinstance(v, (list, dict)) else v) for k, v in counts.items()
            if isinstance(v, (int, float, list, dict)) and not isinstance(v, bool)}


def report_rows(reports_dir: Path) -> list[dict]:
    rows = []
    for s in load_summaries(reports_dir):
        appendix = s.get("appendix") or {}
        limit = s.get("page_limit")
        rows.append({
            "name": s["name"],
            "title": s.get("title") or s["name"],
            "pages": s["pages"],
            "page_limit": limit,
            "within": limit is None or s["pages"] <= limit,
            "shrunk": s.get("shrunk"),
            "font_pt": s.get("font_pt"),
            "fig_scale": s.get("fig_scale"),
            "pdf": _rel(s.get("pdf"), reports_dir),
            "html": _rel(s.get("html"), reports_dir),
            "appendix_pdf": _rel(appendix.get("pdf"), reports_dir),
            "appendix_html": _rel(appendix.get("html"), reports_dir),
            "appendix_pages": appendix.get("pages"),
            "thumbnail": _thumbnail(reports_dir, s["name"]),
            "provenance": s.get("provenance") or {},
        })
    return rows


def write_index(reports_dir: Path) -> Path:
    reports_dir = Path(reports_dir)
    rows = report_rows(reports_dir)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_ROOT)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    # One build has one commit/profile; the page header shows them, each row repeats them only if they differ.
    builds = {tuple((r["provenance"].get(k) or "?") for k in ("commit", "profile", "device", "date")) for r in rows}
    html = env.get_template(TEMPLATE).render(
        reports=rows, build=sorted(builds)[0] if len(builds) == 1 else None,
        diff=_diff_counts(reports_dir),
        diff_links=[f for f in ("diff.html", "diff.pdf") if (reports_dir / f).is_file()])
    out = reports_dir / "index.html"
    reports_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out, html.encode())
    return out
