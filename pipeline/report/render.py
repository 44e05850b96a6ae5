"""Render an assignment's Jinja templates into page-limited PDF reports with WeasyPrint.

An assignment folder (templates/NAME/) holds assignment.yaml, its templates and style.css; the
shared stylesheet and macros live in templates/_base/. See render_report for the outputs.
"""
from __future__ import annotations

import logging
import math
import numbers
import os
import re
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import jinja2
import yaml

from . import fit as fitting

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_ROOT = ROOT / "templates"
BASE_DIR = TEMPLATES_ROOT / "_base"
PREVIEW_DPI = 60
# The `document` macro emits this; without it the fitter's settings would never reach the CSS.
SETTINGS_MARKER = 'id="fit-settings"'

log = logging.getLogger(__name__)


class ReportError(RuntimeError):
    """A one-line, user-facing problem with an assignment or its inputs."""


# ---------------------------------------------------------------------------------------------
# assignment.yaml

def load_assignment(assignment_dir: Path) -> dict:
    assignment_dir = Path(assignment_dir)
    path = assignment_dir / "assignment.yaml"
    where = _show(path)
    if not path.is_file():
        raise ReportError(f"{where}: not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ReportError(f"{where}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise ReportError(f"{where}: expected a mapping at the top level")

    def bad(key: str, what: str) -> ReportError:
        return ReportError(f"{where}: {key} must be {what}, got {data.get(key)!r}")

    if not isinstance(data.get("title"), str) or not data["title"].strip():
        raise bad("title", "a non-empty string")
    limit = data.get("page_limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise bad("page_limit", "a positive integer or null")
    for key, required in (("main", True), ("appendix", False)):
        value = data.get(key)
        if value is None and not required:
            continue
        if not isinstance(value, str) or not value:
            raise bad(key, "a template file name")
        if not (assignment_dir / value).is_file():
            raise ReportError(f"{where}: {key} template {value!r} not found in {_show(assignment_dir)}")
    needs = data.get("needs") or []
    if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
        raise bad("needs", "a list of result paths")
    sections = data.get("sections") or []
    if not isinstance(sections, list) or not all(
            isinstance(s, dict) and isinstance(s.get("id"), str) and s["id"] for s in sections):
        raise bad("sections", "a list of {id, title} mappings")
    ids = [s["id"] for s in sections]
    if len(set(ids)) != len(ids):
        raise ReportError(f"{where}: section ids must be unique, got {ids}")
    fit_opts = data.get("fit") or {}
    if not isinstance(fit_opts, dict):
        raise bad("fit", "a mapping")
    unknown = set(fit_opts) - {"font_pt", "min_font_pt", "min_fig_scale", "fig_scales"}
    if unknown:
        raise ReportError(f"{where}: unknown fit option(s) {', '.join(sorted(unknown))}; "
                          "allowed: fig_scales, font_pt, min_fig_scale, min_font_pt")
    return {**data, "needs": needs, "sections": [{"title": s["id"], **s} for s in sections],
            "fit": fit_opts, "page_limit": limit, "dir": str(assignment_dir)}


# ---------------------------------------------------------------------------------------------
# Jinja

def make_environment(assignment_dir: Path, layout: dict | None = None) -> jinja2.Environment:
    """Templates resolve in the assignment folder first, then next to it, then in templates/.

    `layout` (fit settings, provenance, stylesheet URLs) becomes environment globals rather than
    render context so that macros imported without `with context` see it too.
    """
    assignment_dir = Path(assignment_dir).resolve()
    search = list(dict.fromkeys([assignment_dir, assignment_dir.parent, TEMPLATES_ROOT]))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in search]),
        autoescape=True,
        # A misspelt result key must fail the build, not leave a blank in the report.
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = format_value
    env.filters["per_variant"] = per_variant
    env.globals["table_model"] = table_model
    env.globals.update(layout or {})
    return env


def format_value(value: Any, spec: Any = None) -> str:
    """Format one table cell. spec: ".3f", "{:.1%}", "%.2e", a callable, or None."""
    if _missing(value):
        return "\u2014"
    if callable(spec):
        return str(spec(value))
    if spec:
        try:
            if "{" in spec:
                return spec.format(value)
            if spec.startswith("%"):
                return spec % value
            return format(value, spec)
        except (TypeError, ValueError):
            return str(value)  # a number format on a text cell: show the text rather than fail
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.4g}"
    return str(value)


def table_model(data: Any, columns: Any = None, formats: dict | None = None, bold: dict | None = None) -> dict:
    """Rows and columns for the `table` macro from a DataFrame or a list of dicts."""
    if hasattr(data, "to_dict") and hasattr(data, "columns"):
        if any(name is not None for name in getattr(data.index, "names", [None])):
            data = data.reset_index()  # a named index is a column the reader needs to see
        default_cols = [str(c) for c in data.columns]
        rows = [{str(k): v for k, v in r.items()} for r in data.to_dict("records")]
    else:
        rows = [dict(r) for r in (data or [])]
        default_cols = list(dict.fromkeys(k for r in rows for k in r))

    if columns is None:
        pairs = [(c, c) for c in default_cols]
    elif isinstance(columns, dict):
        pairs = [(str(k), str(v)) for k, v in columns.items()]
    else:
        pairs = [(c[0], c[1]) if isinstance(c, (list, tuple)) else (c, c) for c in columns]
    known = set(default_cols)
    missing = [k for k, _ in pairs if k not in known]
    if rows and missing:
        raise ReportError(f"table: column(s) {', '.join(map(repr, missing))} not in the data "
                          f"(has: {', '.join(default_cols)})")

    formats = formats or {}
    bold = bold or {}
    numeric = {k: any(_is_number(r.get(k)) for r in rows) for k, _ in pairs}
    body = []
    for r in rows:
        cells = []
        for k, _ in pairs:
            v = r.get(k)
            cls = []
            if numeric[k]:
                # Text in a numeric column (a transposed table's "change" row) may wrap; numbers never do.
                cls.append("num" if _is_number(v) or _missing(v) else "num wrap")
            if _missing(v):
                cls.append("missing")
            if k in bold and not _missing(v) and v == bold[k]:
                cls.append("best")
            cells.append({"text": format_value(v, formats.get(k)), "cls": " ".join(cls)})
        body.append(cells)
    return {"columns": [{"key": k, "label": label, "cls": "num" if numeric[k] else ""} for k, label in pairs],
            "rows": body}


def per_variant(df: Any) -> Any:
    """An aggregated table turned on its side: one column per variant, a row per table column. Wide tables (dozens of
    columns, few variants) then fit the page width."""
    return df.set_index("variant").T.rename_axis("column")


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Number) and not isinstance(v, bool) and not _missing(v)


def _missing(v: Any) -> bool:
    if v is None or type(v).__name__ in ("NAType", "NaTType"):
        return True
    try:
        return isinstance(v, numbers.Real) and math.isnan(v)
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------
# rendering

RESERVED = ("fig_scale", "font_pt", "provenance", "assignment", "base_href", "base_css_url",
            "style_css_url", "report_name", "part")


def render_html(assignment_dir: Path, template: str, context: dict, layout: dict) -> str:
    clash = sorted(set(context) & set(RESERVED))
    if clash:
        raise ReportError(f"report context must not set {', '.join(clash)}: the renderer owns them")
    # A fresh environment per render: the settings differ between the fitter's attempts.
    env = make_environment(assignment_dir, layout)
    try:
        return env.get_template(template).render(**context)
    except jinja2.UndefinedError as exc:
        raise ReportError(f"template {template}: {exc}") from None


@contextmanager
def _weasyprint_errors() -> Iterator[list[str]]:
    """Collect WeasyPrint's errors (an image or stylesheet that failed to load) during a render.

    WeasyPrint only logs these and carries on without the figure; a report missing a figure
    must fail instead.
    """
    errors: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            errors.append(" ".join(record.getMessage().split()))

    handler = Collect(level=logging.ERROR)
    logger = logging.getLogger("weasyprint")
    level = logger.level
    if logger.getEffectiveLevel() > logging.ERROR:
        logger.setLevel(logging.ERROR)  # a quiet root logger must not hide a missing figure
    logger.addHandler(handler)
    try:
        yield errors
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def render_report(assignment_dir: Path, context: dict, out_dir: Path, name: str, base_url: Path,
                  provenance: dict) -> dict:
    """Render templates/NAME into out_dir: NAME.html/.pdf, NAME-appendix.html/.pdf, previews.

    Figures and other relative URLs in the templates resolve against `base_url` (usually
    results/). The main document is shrunk (figures, then font) until it fits its page_limit;
    if it cannot fit, NAME.overlimit.pdf is written for inspection, earlier outputs are left
    alone and fit.PageLimitError is raised. Returns a JSON-able summary.
    """
    from weasyprint import HTML  # import cost (~1 s) only for callers that actually render

    started = time.perf_counter()
    assignment_dir = Path(assignment_dir)
    out_dir = Path(out_dir)
    base_url = Path(base_url).resolve()
    assignment = load_assignment(assignment_dir)
    yaml_hint = _show(assignment_dir / "assignment.yaml")

    missing = [n for n in assignment["needs"] if not (base_url / n).exists()]
    if missing:
        more = f" (+{len(missing) - 3} more)" if len(missing) > 3 else ""
        raise ReportError(f"report {name}: missing inputs under {_show(base_url)}: "
                          f"{', '.join(missing[:3])}{more}; run the workflow steps that produce them")

    style = assignment_dir / "style.css"
    base_layout = {
        "provenance": dict(provenance or {}),
        "assignment": assignment,
        "base_href": base_url.as_uri() + "/",
        "base_css_url": (BASE_DIR / "base.css").resolve().as_uri(),
        "style_css_url": style.resolve().as_uri() if style.is_file() else "",
        "report_name": name,
    }
    image_cache: dict = {}  # decoded figures are reused across the fitter's re-renders
    html_of: dict[tuple[str, fitting.Setting], str] = {}

    def render(template: str, part: str, setting: fitting.Setting):
        layout = {**base_layout, "part": part, "fig_scale": setting.fig_scale, "font_pt": setting.font_pt}
        html = render_html(assignment_dir, template, context, layout)
        if SETTINGS_MARKER not in html:
            raise ReportError(f"template {template} of {_show(assignment_dir)} must wrap its body in "
                              "{% call m.document() %} from _base/macros.html.j2 (it emits the page settings)")
        html_of[(part, setting)] = html
        with _weasyprint_errors() as errors:
            doc = HTML(string=html, base_url=base_layout["base_href"]).render(cache=image_cache)
        if errors:
            raise ReportError(f"report {name} ({template}): {errors[0]}"
                              + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""))
        return doc

    settings = fitting.ladder(**assignment["fit"])
    limit = assignment["page_limit"]
    out_dir.mkdir(parents=True, exist_ok=True)
    over = out_dir / f"{name}.overlimit.pdf"
    try:
        result = fitting.fit(lambda s: render(assignment["main"], "main", s), limit, settings,
                             name=name, sections=assignment["sections"], config_hint=yaml_hint)
    except fitting.PageLimitError as exc:
        if exc.document is not None:
            _atomic_write(over, exc.document.write_pdf())
        raise

    appendix_doc = None
    if assignment.get("appendix"):
        # No page limit, so the appendix keeps the default, most legible setting. Rendered before
        # anything is written, so that a broken appendix leaves the previous outputs as they were.
        appendix_doc = render(assignment["appendix"], "appendix", settings[0])

    main_pdf = out_dir / f"{name}.pdf"
    main_html = out_dir / f"{name}.html"
    _atomic_write(main_html, html_of[("main", result.setting)].encode())
    _atomic_write(main_pdf, result.document.write_pdf())
    over.unlink(missing_ok=True)  # a stale over-long draft would contradict the report beside it
    sections = fitting.section_pages(result.document, [s["id"] for s in assignment["sections"]])

    appendix = None
    if appendix_doc is not None:
        app_pdf = out_dir / f"{name}-appendix.pdf"
        app_html = out_dir / f"{name}-appendix.html"
        _atomic_write(app_html, html_of[("appendix", settings[0])].encode())
        _atomic_write(app_pdf, appendix_doc.write_pdf())
        appendix = {"pdf": str(app_pdf), "html": str(app_html), "pages": len(appendix_doc.pages)}

    previews = write_previews(main_pdf, out_dir / "preview", name)
    return {
        "name": name,
        "pdf": str(main_pdf),
        "html": str(main_html),
        "pages": result.pages,
        "page_limit": limit,
        "fig_scale": result.setting.fig_scale,
        "font_pt": result.setting.font_pt,
        "default_fig_scale": settings[0].fig_scale,
        "default_font_pt": settings[0].font_pt,
        "shrunk": result.setting != settings[0],
        "attempts": result.attempts,
        "sections": sections,
        "appendix": appendix,
        "previews": [str(p) for p in previews],
        "seconds": round(time.perf_counter() - started, 2),
    }


def write_previews(pdf: Path, preview_dir: Path, name: str, dpi: int = PREVIEW_DPI) -> list[Path]:
    """PNG per page as preview_dir/NAME-page-N.png (N from 1, unpadded); [] without pdftoppm."""
    exe = shutil.which("pdftoppm")
    if exe is None:
        log.warning("pdftoppm not found (install poppler-utils); skipping page previews of %s", name)
        return []
    preview_dir.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(rf"^{re.escape(name)}-page-(\d+)\.png$")
    for old in preview_dir.iterdir():
        if pattern.match(old.name):
            old.unlink()  # a shorter report must not leave the old last pages behind
    with tempfile.TemporaryDirectory(dir=preview_dir, prefix=f".{name}-") as tmp:
        # pdftoppm zero-pads page numbers to the page count's width; rename to plain N.
        run = subprocess.run([exe, "-png", "-r", str(dpi), str(pdf), str(Path(tmp) / "p")],
                             capture_output=True, text=True, timeout=300)
        if run.returncode != 0:
            log.warning("pdftoppm failed on %s: %s", pdf, " ".join(run.stderr.split())[:300])
            return []
        out = []
        for png in Path(tmp).glob("p-*.png"):
            n = int(png.stem.rsplit("-", 1)[1])
            target = preview_dir / f"{name}-page-{n}.png"
            os.replace(png, target)
            out.append((n, target))
    return [p for _, p in sorted(out)]


def _atomic_write(path: Path, data: bytes) -> None:
    # Snakemake (and a reader with the PDF open) must never see a half-written file.
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _show(path: Path) -> str:
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        try:
            return str(path.resolve().relative_to(ROOT))
        except ValueError:
            return str(path)
