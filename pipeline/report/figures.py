"""Figures declared in assignment.yaml (`figures:`), drawn from the aggregated tables when the report renders.

They become data: URIs rather than files under results/: a report job writes only reports/, and the figure then
travels inside the HTML like every other. Kind `scatter`: a metric against a numeric setting, one colour per table.
"""
from __future__ import annotations

import base64
import io

import pandas as pd

from .findings import is_rate, lower_is_better, metric_name
from .render import ReportError

KINDS = ("scatter",)
# Drawn as wide as the text column (aggregate.style.FULL) and printed at that size, so 8 pt text stays 8 pt: two
# families' variants share one axis and each point carries a label, which at 5 in wide crowded one another.
HEIGHT_IN = 3.2
# Where a logit accuracy axis may put its ticks: round percentages, denser towards 0% and 100%.
LOGIT_TICKS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.96, 0.97,
               0.98, 0.985, 0.99, 0.992, 0.994, 0.995, 0.996, 0.998, 0.999)
KEYS = {"id", "kind", "tables", "x", "y", "caption", "width_pct"}


def check(entries, families: list[str], where: str) -> list[dict]:
    for i, e in enumerate(entries or []):
        name = e.get("id", "no id") if isinstance(e, dict) else e
        if not isinstance(e, dict) or not isinstance(e.get("id"), str):
            raise ReportError(f"{where}: figures[{i}] ({name}): must be a mapping with id, kind, tables, x, y")
        if e.get("kind") not in KINDS:
            raise ReportError(f"{where}: figures[{i}] ({name}): unknown kind {e.get('kind')!r}; use one of "
                              f"{', '.join(KINDS)}")
        unknown = sorted(set(e) - KEYS)
        missing = [t for t in e.get("tables") or [] if t not in families]
        if unknown or missing or not e.get("tables") or not e.get("x") or not e.get("y"):
            raise ReportError(f"{where}: figures[{i}] ({name}): needs tables (of {', '.join(families)}), x and y"
                              + (f"; unknown key(s) {', '.join(unknown)}" if unknown else "")
                              + (f"; not a family here: {', '.join(missing)}" if missing else ""))
    return list(entries or [])


def scatter(tables: dict[str, pd.DataFrame], x: str, y: str) -> str:
    """y (mean, seed spread as error bars) against x on a log axis, every point labelled with its variant.

    An accuracy goes on a logit axis (labelled in %): near 100% it spreads the variants that a linear axis would
    press into one band under a weaker family's points, which leaves their labels no room."""
    from ..aggregate.style import plt

    fig, _, _ = scatter_figure(tables, x, y)
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()


def scatter_figure(tables: dict[str, pd.DataFrame], x: str, y: str):
    """The figure behind `scatter`: (figure, axes, the point labels)."""
    from ..aggregate.style import FULL, errorbar, label_points, log_x, plt

    logit = is_rate(y) and not lower_is_better(y)
    scale = 100 if is_rate(y) and not logit else 1
    fig, ax = plt.subplots(figsize=(FULL, HEIGHT_IN))
    xs, ys, labels = [], [], []
    for i, (fam, t) in enumerate(tables.items()):
        std = t[f"{y}_std"] if f"{y}_std" in t.columns else [float("nan")] * len(t)
        errorbar(ax, t[x], scale * t[y], scale * pd.Series(std, index=t.index), fmt="o", color=f"C{i}", label=fam)
        xs += list(t[x])
        ys += list(scale * t[y])
        labels += list(t["variant"])
    log_x(ax)
    ax.margins(x=0.08)  # room for the labels of the smallest and largest variants
    ax.set_xlabel(f"{metric_name(x)} (log scale)")
    if logit:
        _percent_logit(ax, ys)
        ax.set_ylabel(metric_name(y) + " (%, logit scale)")
    else:
        ax.set_ylabel(metric_name(y) + (" (%)" if is_rate(y) else ""))
    ax.legend(frameon=False)
    texts = label_points(ax, xs, ys, labels)  # after the legend, which the labels then keep clear of
    return fig, ax, texts


def _percent_logit(ax, values) -> None:
    """A logit y axis over rates in (0, 1), ticked at round percentages."""
    import numpy as np
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
    from scipy.special import expit, logit

    v = logit(np.clip(np.asarray(values, dtype=float), 1e-4, 1 - 1e-4))
    pad = 0.1 * (v.max() - v.min()) + 0.05  # room for the error bars and the labels beside the extreme points
    lo, hi = expit(v.min() - pad), expit(v.max() + pad)
    ax.set_yscale("logit")
    ax.set_ylim(lo, hi)
    # At most about nine ticks, evenly spread on the axis: drop a candidate too close to the last one kept.
    step = (logit(hi) - logit(lo)) / 9
    ticks: list[float] = []
    for t in LOGIT_TICKS:
        if lo <= t <= hi and (not ticks or logit(t) - logit(ticks[-1]) >= step):
            ticks.append(t)
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:g}"))


def draw(entries: list[dict], tables: dict[str, pd.DataFrame]) -> dict[str, dict]:
    return {e["id"]: {"src": scatter({t: tables[t] for t in e["tables"]}, e["x"], e["y"]),
                      "caption": e.get("caption") or f"{metric_name(e['y'])} against {metric_name(e['x'])}.",
                      "width_pct": e.get("width_pct", 100)}
            for e in entries}
