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
from .runs import anchor_prefix

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_ROOT = ROOT / "templates"
BASE_DIR = TEMPLATES_ROOT / "_base"
PREVIEW_DPI = 60
# The `document` macro emits this; without it the fitter's settings would never reach the CSS.
SETTINGS_MARKER = 'id="fit-settings"'
ANSWER_PREFIX = "q-"
# Tagged PDF (structure tree, figure alt text, XMP metadata) for screen readers; see write_pdf's options.
PDF_VARIANT = "pdf/ua-1"

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
    uses = data.get("uses") or []
    if not isinstance(uses, list) or not all(isinstance(n, str) for n in uses):
        raise bad("uses", "a list of family names")
    # A `uses:` assignment reads its families' tables: they are needed whether or not `needs:` repeats them.
    needs = list(dict.fromkeys([f"tables/{f}.csv" for f in uses] + needs))
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
    env.globals["run_anchor"] = anchor_prefix
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


def table_model(data: Any, columns: Any = None, formats: dict | None = None, bold: dict | None = None,
                links: dict | None = None, anchors: dict | None = None) -> dict:
    """Rows and columns for the `table` macro from a DataFrame or a list of dicts.

    links: {column: URL prefix}: each cell of the column links to prefix + its value (a number to the appendix
    row of the runs behind it). anchors: {column: id prefix}: each row gets the id prefix + that column's value."""
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
    links = links or {}
    anchor_key, anchor_prefix = next(iter((anchors or {}).items()), (None, ""))
    # A column is numeric if it holds a number, or if every cell is a number already written as text (most report
    # cells are: "206,922", "98.74 ± 0.10"). A label column such as "128", "256-64" stays text.
    numeric = {k: any(_is_number(r.get(k)) for r in rows)
               or _all_numeric_text([r.get(k) for r in rows]) for k, _ in pairs}
    body, row_ids = [], []
    for r in rows:
        row_ids.append(f"{anchor_prefix}{r.get(anchor_key)}" if anchor_key else "")
        cells = []
        for k, _ in pairs:
            v = r.get(k)
            cls = []
            if numeric[k]:
                # Text in a numeric column (a transposed table's "change" row) may wrap; numbers never do.
                cls.append("num" if _is_number(v) or _missing(v) or _is_numeric_text(v) else "num wrap")
            if _missing(v):
                cls.append("missing")
            if k in bold and not _missing(v) and v == bold[k]:
                cls.append("best")
            href = f"{links[k]}{v}" if k in links and not _missing(v) and str(v) else ""
            cells.append({"text": format_value(v, formats.get(k)), "cls": " ".join(cls), "href": href})
        body.append(cells)
    return {"columns": [{"key": k, "label": label, "cls": "num" if numeric[k] else ""} for k, label in pairs],
            "rows": body, "row_ids": row_ids}


def per_variant(df: Any) -> Any:
    """An aggregated table turned on its side: one column per variant, a row per table column. Wide tables (dozens of
    columns, few variants) then fit the page width. A `_std` column that is zero or missing for every variant (a
    parameter count, or any column of a single-seed build) says nothing and is left out: it doubled the rows."""
    empty = [c for c in df.columns if c.endswith("_std") and not (df[c].fillna(0) != 0).any()]
    return df.drop(columns=empty).set_index("variant").T.rename_axis("column")


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Number) and not isinstance(v, bool) and not _missing(v)


# One value as a report writes it: a sign, digits with thousands separators, a unit, and "± spread"
# (mean ± std over seeds). Ranges ("0.5× to 2×") and lists are text.
_NUMERIC_TEXT = re.compile(r"[+\-\u2212]?\d[\d,]*(\.\d+)?\s?(%|pp|×|x|s)?( ± \d[\d,]*(\.\d+)?\s?(%|pp)?)?")


def _is_numeric_text(v: Any) -> bool:
    return isinstance(v, str) and _NUMERIC_TEXT.fullmatch(v.strip()) is not None


def _all_numeric_text(cells: list) -> bool:
    present = [v for v in cells if not _missing(v) and v != "\u2014"]
    return bool(present) and all(_is_number(v) or _is_numeric_text(v) for v in present)


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
            "style_css_url", "has_style_css", "report_name", "part", "answer_pages")


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
    """Collect WeasyPrint's errors (an image, stylesheet or attachment that failed to load, a figure
    without alt text in a tagged PDF) during a render or write_pdf.

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
    results/); nothing outside it and templates/ can be loaded (portable.ReportFetcher). The
    HTML files are self-contained (stylesheets inline, figures as data: URIs) and, like the
    returned paths (relative to out_dir), name no path of this machine. The PDFs are tagged
    (PDF/UA-1). The main document is shrunk (figures, then font) until it fits its page_limit;
    if it cannot fit, NAME.overlimit.pdf is written for inspection, earlier outputs are left
    alone and fit.PageLimitError is raised. Returns a JSON-able summary.
    """
    from weasyprint import HTML  # import cost (~1 s) only for callers that actually render

    from .portable import embed_images, report_fetcher

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
    base_href = base_url.as_uri() + "/"  # for WeasyPrint only: the HTML must not name this machine's paths
    fetcher = report_fetcher(base_url)
    base_layout = {
        "provenance": dict(provenance or {}),
        "assignment": assignment,
        # The document macro includes it (as template text, never as a value that would need marking safe).
        "has_style_css": style.is_file(),
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
            doc = HTML(string=html, base_url=base_href, url_fetcher=fetcher).render(cache=image_cache)
        check(template, errors)
        return doc

    def check(template: str, errors: list[str]) -> None:
        if fetcher.refused:  # the cause, rather than WeasyPrint's "failed to load" that follows it
            raise ReportError(f"report {name} ({template}): refused to load {fetcher.refused[0]!r}: "
                              f"{fetcher.allowed()}; is a value from results/ rendered with |safe?")
        if errors:
            raise ReportError(f"report {name} ({template}): {errors[0]}"
                              + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""))

    def pdf_bytes(doc, template: str) -> bytes:
        # Attachments (<a rel="attachment">) and alt text are only looked at while writing the PDF.
        with _weasyprint_errors() as errors:
            data = doc.write_pdf(pdf_variant=PDF_VARIANT)
        check(template, errors)
        return data

    def portable_html(part: str, setting: fitting.Setting) -> bytes:
        return embed_images(html_of[(part, setting)], base_href, fetcher).encode()

    settings = fitting.ladder(**assignment["fit"])
    limit = assignment["page_limit"]
    out_dir.mkdir(parents=True, exist_ok=True)
    over = out_dir / f"{name}.overlimit.pdf"
    try:
        result = fitting.fit_pages(lambda s: render(assignment["main"], "main", s), limit, settings,
                             name=name, sections=assignment["sections"], config_hint=yaml_hint)
    except fitting.PageLimitError as exc:
        if exc.document is not None:
            atomic_write(over, exc.document.write_pdf(pdf_variant=PDF_VARIANT))
        raise

    # Where each answer landed (ids q-QID from _base/answers.html.j2), for the appendix's checklist.
    answer_pages = fitting.anchor_pages(result.document, ANSWER_PREFIX)
    base_layout["answer_pages"] = answer_pages
    appendix_doc = None
    if assignment.get("appendix"):
        # No page limit, so the appendix keeps the default, most legible setting. Rendered before
        # anything is written, so that a broken appendix leaves the previous outputs as they were.
        appendix_doc = render(assignment["appendix"], "appendix", settings[0])
    # Every output is produced before the first is written, for the same reason.
    outputs = {f"{name}.html": portable_html("main", result.setting),
               f"{name}.pdf": pdf_bytes(result.document, assignment["main"])}
    if appendix_doc is not None:
        outputs[f"{name}-appendix.html"] = portable_html("appendix", settings[0])
        outputs[f"{name}-appendix.pdf"] = pdf_bytes(appendix_doc, assignment["appendix"])
    for file_name, data in outputs.items():
        atomic_write(out_dir / file_name, data)
    over.unlink(missing_ok=True)  # a stale over-long draft would contradict the report beside it
    sections = fitting.section_pages(result.document, [s["id"] for s in assignment["sections"]])

    appendix = None
    if appendix_doc is not None:
        appendix = {"pdf": f"{name}-appendix.pdf", "html": f"{name}-appendix.html", "pages": len(appendix_doc.pages)}

    previews = write_previews(out_dir / f"{name}.pdf", out_dir / "preview", name)
    # Paths relative to out_dir: the summary travels with the reports (index.html links through it).
    return {
        "name": name,
        "title": assignment["title"],
        "pdf": f"{name}.pdf",
        "html": f"{name}.html",
        "pages": result.pages,
        "page_limit": limit,
        "fig_scale": result.setting.fig_scale,
        "font_pt": result.setting.font_pt,
        "default_fig_scale": settings[0].fig_scale,
        "default_font_pt": settings[0].font_pt,
        "shrunk": result.setting != settings[0],
        "attempts": result.attempts,
        "sections": sections,
        # Questions of assignment.yaml and the page of their answer; the unanswered are listed, not hidden.
        "answers": {q["id"]: answer_pages.get(q["id"]) for q in assignment.get("questions") or []
                    if not q.get("appendix")},
        "appendix": appendix,
        "previews": [p.relative_to(out_dir).as_posix() for p in previews],
        "provenance": base_layout["provenance"],
        "seconds": round(time.perf_counter() - started, 2),
    }


def write_previews(pdf: Path, preview_dir: Path, name: str, dpi: int = PREVIEW_DPI) -> list[Path]:
    """PNG per page as preview_dir/NAME-page-N.png (N from 1, unpadded); [] without pdftoppm."""
    exe = shutil.which("pdftoppm")
    preview_dir.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(rf"^{re.escape(name)}-page-(\d+)\.png$")
    for old in preview_dir.iterdir():
        if pattern.match(old.name):
            old.unlink()  # previews of an older PDF (or a longer one) must not sit beside the new PDF
    if exe is None:
        log.warning("pdftoppm not found (install poppler-utils); skipping page previews of %s", name)
        return []
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


def atomic_write(path: Path, data: bytes) -> None:
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
