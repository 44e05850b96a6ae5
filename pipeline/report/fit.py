"""Fit a report into its page limit by shrinking figures, then body text, re-rendering each time.

The search is deterministic: settings are tried in a fixed order (largest figures and font first)
and the first one that fits wins, so the same inputs always give the same layout. Nothing is ever
removed from the document; when even the smallest legible setting is too long we stop and say
which sections to shorten.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

# Below this the report stops being comfortably readable on paper; the fitter never goes lower
# whatever an assignment asks for.
MIN_FONT_PT = 9.0
DEFAULT_FONT_PT = 10.5
DEFAULT_MIN_FIG_SCALE = 0.7


class PageLimitError(RuntimeError):
    """The report does not fit its page limit even at the smallest legible settings.

    `document` is the rendered over-long WeasyPrint document (so the caller can write it out for
    inspection), `pages` its page count and `sections` the measured section lengths in pages.
    """

    def __init__(self, message: str, *, document=None, pages: int = 0, limit: int = 0,
                 setting: "Setting | None" = None, sections: dict[str, float] | None = None):
        super().__init__(message)
        self.document = document
        self.pages = pages
        self.limit = limit
        self.setting = setting
        self.sections = sections or {}


@dataclass(frozen=True, order=True)
class Setting:
    fig_scale: float
    font_pt: float

    def describe(self) -> str:
        return f"font {self.font_pt:g}pt, figures {round(self.fig_scale * 100)}%"


@dataclass
class FitResult:
    document: object
    setting: Setting
    pages: int
    attempts: list[dict] = field(default_factory=list)


def ladder(font_pt: float = DEFAULT_FONT_PT, min_font_pt: float = MIN_FONT_PT,
           min_fig_scale: float = DEFAULT_MIN_FIG_SCALE, fig_scales: Sequence[float] | None = None,
           fig_step: float = 0.1, font_step: float = 0.5) -> list[Setting]:
    """The settings to try, in order: figures shrink first (cheap for the reader), then the font.

    Values are rounded so that the CSS emitted for a setting, and therefore the layout, depends
    only on the arguments and never on float drift.
    """
    font_pt = max(float(font_pt), MIN_FONT_PT)
    min_font_pt = min(max(float(min_font_pt), MIN_FONT_PT), font_pt)
    if fig_scales is None:
        min_fig_scale = float(min_fig_scale)
        if not 0 < min_fig_scale <= 1:
            raise ValueError(f"min_fig_scale must be in (0, 1], got {min_fig_scale}")
        scales, s = [], 1.0
        while s >= min_fig_scale - 1e-9:
            scales.append(round(s, 3))
            s -= fig_step
        if scales[-1] > min_fig_scale + 1e-9:
            scales.append(round(min_fig_scale, 3))
    else:
        scales = sorted({round(float(x), 3) for x in fig_scales}, reverse=True)
        if not scales or scales[-1] <= 0:
            raise ValueError(f"fig_scales must be positive, got {list(fig_scales)}")

    fonts, f = [], font_pt
    while f >= min_font_pt - 1e-9:
        fonts.append(round(f, 2))
        f -= font_step
    if fonts[-1] > min_font_pt + 1e-9:
        fonts.append(round(min_font_pt, 2))

    out = [Setting(s, font_pt) for s in scales]
    out += [Setting(scales[-1], f) for f in fonts[1:]]
    return out


def section_pages(document, section_ids: Sequence[str]) -> dict[str, float]:
    """How many pages each section occupies, as a fraction-of-page estimate.

    WeasyPrint records, per page, the hit area of every element with an id that has a fragment on
    that page (`page.anchors[id] = (x1, y1, x2, y2)`), so a section's length is the sum of its
    fragments' heights over the page's content height. Older releases gave only the start point
    `(x, y)`; then we fall back to the distance to the next section's start.
    """
    wanted = list(dict.fromkeys(section_ids))
    spans = {sid: 0.0 for sid in wanted}
    starts: dict[str, float] = {}
    boxes = False
    for index, page in enumerate(document.pages):
        top, height = _content_area(page)
        for sid in wanted:
            anchor = page.anchors.get(sid)
            if anchor is None:
                continue
            if sid not in starts:
                starts[sid] = index + max(0.0, anchor[1] - top) / height
            if len(anchor) >= 4:
                boxes = True
                spans[sid] += max(0.0, min(anchor[3], top + height) - max(anchor[1], top)) / height
    if boxes or not starts:
        return {sid: round(v, 2) for sid, v in spans.items()}

    ordered = sorted(starts.items(), key=lambda kv: kv[1])
    end = float(len(document.pages))
    for (sid, start), nxt in zip(ordered, ordered[1:] + [(None, end)]):
        spans[sid] = round(nxt[1] - start, 2)
    return spans


def anchor_pages(document, prefix: str) -> dict[str, int]:
    """Page (from 1) of the first fragment of every element whose id starts with `prefix`, keyed by the rest of
    the id: where the answer tagged `q-3.2-Q1.a` landed, for the appendix's checklist."""
    pages: dict[str, int] = {}
    for index, page in enumerate(document.pages, 1):
        for anchor in page.anchors:
            if anchor.startswith(prefix):
                pages.setdefault(anchor[len(prefix):], index)
    return pages


def _content_area(page) -> tuple[float, float]:
    box = getattr(page, "_page_box", None)
    try:
        top, height = float(box.content_box_y()), float(box.height)
        if height > 0:
            return top, height
    except Exception:  # a private attribute; any change in WeasyPrint just costs precision
        pass
    return 0.0, float(page.height)


def fit_pages(render: Callable[[Setting], object], page_limit: int | None, settings: Sequence[Setting],
              *, name: str, sections: Sequence[dict] = (), config_hint: str = "") -> FitResult:
    """Render with the first setting in `settings` that fits within `page_limit` pages.

    `render(setting)` must return a WeasyPrint `Document`. Tries the first (largest) setting,
    then the last (smallest) one so that a hopeless report fails after two renders, then the
    ones in between in order. Raises PageLimitError if the smallest does not fit.
    """
    if not settings:
        raise ValueError("no settings to try")
    attempts: list[dict] = []
    rendered: dict[Setting, object] = {}

    def attempt(setting: Setting):
        if setting not in rendered:
            doc = render(setting)
            rendered[setting] = doc
            attempts.append({"fig_scale": setting.fig_scale, "font_pt": setting.font_pt,
                             "pages": len(doc.pages)})
        return rendered[setting]

    first = settings[0]
    doc = attempt(first)
    if page_limit is None or len(doc.pages) <= page_limit:
        return FitResult(doc, first, len(doc.pages), attempts)

    smallest = settings[-1]
    doc = attempt(smallest)
    if len(doc.pages) > page_limit:
        ids = [s["id"] for s in sections]
        spans = section_pages(doc, ids)
        raise PageLimitError(
            _too_long_message(name, len(doc.pages), page_limit, smallest, spans, sections, config_hint),
            document=doc, pages=len(doc.pages), limit=page_limit, setting=smallest, sections=spans)

    for setting in settings[1:-1]:
        doc = attempt(setting)
        if len(doc.pages) <= page_limit:
            return FitResult(doc, setting, len(doc.pages), attempts)
    return FitResult(rendered[smallest], smallest, len(rendered[smallest].pages), attempts)


def _too_long_message(name, pages, limit, setting, spans, sections, config_hint) -> str:
    titles = {s["id"]: s.get("title") or s["id"] for s in sections}
    longest = sorted(((v, sid) for sid, v in spans.items() if v > 0), key=lambda t: (-t[0], t[1]))[:3]
    if longest:
        what = "longest sections: " + ", ".join(f"{titles.get(sid, sid)} ({v:.1f} pages)" for v, sid in longest)
    else:
        what = "no declared section was found in the document (give the sections the ids listed under sections:)"
    where = config_hint or f"templates/{name}/assignment.yaml"
    msg = (f"report {name}: {pages} pages at the smallest legible settings ({setting.describe()}), "
           f"limit {limit}; {what}; shorten them or raise page_limit in {where}")
    return " ".join(msg.split())
