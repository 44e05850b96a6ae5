"""Figure conventions: sized in inches for their printed width, so 8 pt here is 8 pt on the page."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import Locator  # noqa: E402

HALF = 3.3   # inches: one of two side-by-side figures on an A4 page with 15 mm margins
FULL = 6.9

matplotlib.rcParams.update({
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7.5, "ytick.labelsize": 7.5,
    "legend.fontsize": 7.5, "font.family": "DejaVu Sans", "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.alpha": 0.3, "lines.linewidth": 1.3, "lines.markersize": 4,
    "svg.fonttype": "none",      # text stays text: searchable in the PDF and small files
    "svg.hashsalt": "dfl-bench", "savefig.bbox": "tight", "savefig.pad_inches": 0.03,
    "figure.dpi": 100,
})


def save(fig, path: Path, dpi: int = 200) -> Path:
    """SVG for line plots; PNG (fixed dpi) for images and heatmaps, which WeasyPrint renders faster as bitmaps."""
    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs = {"dpi": dpi} if path.suffix == ".png" else {"metadata": {"Date": None}}
    fig.savefig(path, **kwargs)
    plt.close(fig)
    return path


def errorbar(ax, x, mean, std, **kw):
    """Mean with the seed spread as error bars. A single seed's std is missing and stays NaN, which matplotlib
    draws as no bar at all: as a zero it drew caps, a spread of zero that was never measured."""
    import numpy as np
    return ax.errorbar(x, mean, yerr=np.asarray(std, dtype=float), capsize=2, **kw)


def log_x(ax) -> None:
    """Log x axis labelled at round numbers in compact form (20k, 100k, 1M; `round_log_ticks`): the variants' sizes
    span one or two decades, where powers of ten alone gave a 20k-450k axis a single label. The ticks are chosen when
    the axis is drawn, so limits set later count."""
    from matplotlib.ticker import FuncFormatter, NullFormatter
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(RoundLogLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: compact_number(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def compact_number(v: float) -> str:
    """20000 -> '20k', 1500000 -> '1.5M', 0.5 -> '0.5'."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:g}{suffix}"
    return f"{v:g}"


def round_log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks in [lo, hi] (lo > 0) at 1, 2 and 5 times a power of ten; at powers of ten alone where those would be more
    than eight, at every digit where fewer than two."""
    import math
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)

    def at(mantissas):
        return [m * 10.0 ** d for d in decades for m in mantissas if lo <= m * 10.0 ** d <= hi]

    ticks = at((1, 2, 5))
    return at((1,)) if len(ticks) > 8 else at(range(1, 10)) if len(ticks) < 2 else ticks


class RoundLogLocator(Locator):
    """`round_log_ticks` over the axis's current view."""

    def __call__(self):
        return self.tick_values(*self.axis.get_view_interval())

    def tick_values(self, vmin, vmax):
        lo, hi = sorted((vmin, vmax))
        return round_log_ticks(max(lo, 1e-300), hi) if hi > 0 else []


def integer_x(ax) -> None:
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def label_points(ax, xs, ys, labels, fontsize: float = 6.5) -> list:
    """Label scatter points so that no label covers another label, a marker or the legend, no leader line crosses a
    label, a marker or another leader, and all labels stay inside the axes; returns the labels' Text objects.

    Each label takes the first free spot on ellipses of growing size around its point (right, left, then the
    diagonals, above and below); one set apart from its point gets a thin leader line. Points sharing an x value
    (variants of equal size) thus fan out into a readable column instead of printing over each other. Labels that
    found no free spot are placed again once all others are down; where still none is free the least covered spot
    is kept. Deterministic: sizes are measured with the figure's own renderer. Call it after the legend is placed.
    """
    import numpy as np
    from matplotlib.transforms import Bbox

    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    pt = fig.dpi / 72  # display pixels per typographic point
    anchors = ax.transData.transform(np.column_stack([np.asarray(xs, float), np.asarray(ys, float)]))
    marker = 2.5 * pt
    markers = [Bbox.from_bounds(x - marker, y - marker, 2 * marker, 2 * marker) for x, y in anchors]
    legend = ax.get_legend()
    legend_box = [legend.get_window_extent(renderer)] if legend is not None else []
    frame = ax.bbox
    angles = np.radians([0, 180, 30, -30, 150, -150, 60, -60, 120, -120, 90, -90, 15, -15, 165, -165, 45, -45, 135,
                         -135, 75, -75, 105, -105])
    gap = 1.5 * pt
    sizes = []
    for label, x, y in zip(labels, xs, ys):
        probe = ax.annotate(str(label), (x, y), fontsize=fontsize)
        sizes.append(probe.get_window_extent(renderer))
        probe.remove()
    placed: dict[int, tuple] = {}  # i -> (centre, reach, box, cost)

    def place(i: int) -> tuple:
        w, h = sizes[i].width, sizes[i].height
        anchor = tuple(anchors[i])
        boxes = [p[2].padded(pt) for j, p in placed.items() if j != i]
        leaders = [(tuple(anchors[j]), p[0]) for j, p in placed.items() if j != i and p[1] > 1]
        others = boxes + markers[:i] + markers[i + 1:]
        best = None
        for reach in (1.0, 1.4, 1.9, 2.6, 3.6, 5.0):
            for a in angles:
                # An ellipse shaped like the label: at reach 1 the label's edge just clears the marker.
                centre = (anchor[0] + reach * np.cos(a) * (w / 2 + marker + gap),
                          anchor[1] + reach * np.sin(a) * (h / 2 + marker + gap))
                box = Bbox.from_bounds(centre[0] - w / 2, centre[1] - h / 2, w, h)
                # Covering a point hides data: as bad as half a label's area, however small the overlap.
                cost = sum(_overlap(box, b) for b in legend_box + boxes)
                cost += sum(w * h / 2 for b in markers if box.overlaps(b))
                cost += sum(w * h / 4 for seg in leaders if _crosses_box(seg, box))
                if not (frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1):
                    cost += w * h
                if reach > 1:
                    seg = (anchor, centre)
                    cost += sum(w * h / 4 for b in others if _crosses_box(seg, b))
                    cost += sum(w * h / 4 for other in leaders if _crosses(seg, other))
                if best is None or cost < best[3]:
                    best = (centre, reach, box, cost)
                if cost == 0:
                    return best
        return best

    # The most crowded points choose first: an isolated point finds room wherever its neighbours' labels went.
    crowd = [sum(np.hypot(*(anchors[j] - anchors[i])) < 30 * pt for j in range(len(anchors)))
             for i in range(len(anchors))]
    order = sorted(range(len(labels)), key=lambda i: (-crowd[i], xs[i], ys[i]))
    for i in order:
        placed[i] = place(i)
    for _ in range(3):
        stuck = [i for i in order if placed[i][3] > 0]
        if not stuck:
            break
        for i in stuck:  # its current spot is among the candidates, so this never makes it worse
            placed[i] = place(i)
    texts = []
    for i in range(len(labels)):
        centre, reach, _, _ = placed[i]
        leader = dict(arrowstyle="-", lw=0.4, color="0.45", shrinkA=0, shrinkB=marker / pt) if reach > 1 else None
        texts.append(ax.annotate(str(labels[i]), (xs[i], ys[i]), fontsize=fontsize, ha="center", va="center",
                                 xytext=((centre[0] - anchors[i][0]) / pt, (centre[1] - anchors[i][1]) / pt),
                                 textcoords="offset points", arrowprops=leader))
    return texts


def _overlap(a, b) -> float:
    """Area shared by two display-space boxes."""
    from matplotlib.transforms import Bbox
    shared = Bbox.intersection(a, b)
    return shared.width * shared.height if shared is not None else 0.0


def _crosses(s, t) -> bool:
    """Whether segments s and t cross (touching at an end point does not count)."""
    def side(p, q, r):
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
    return side(*s, t[0]) * side(*s, t[1]) < 0 and side(*t, s[0]) * side(*t, s[1]) < 0


def _crosses_box(s, box) -> bool:
    """Whether segment s crosses an edge of box. A leader runs from its point to its label's centre; its own label's
    box is never among those tested."""
    corners = [(box.x0, box.y0), (box.x1, box.y0), (box.x1, box.y1), (box.x0, box.y1)]
    return any(_crosses(s, (corners[k], corners[(k + 1) % 4])) for k in range(4))


def accuracy_vs_params(table, path: Path, height: float) -> Path:
    """Test accuracy (mean, seed spread as error bars) against parameter count, every variant labelled."""
    fig, ax = plt.subplots(figsize=(HALF, height))
    errorbar(ax, table["params"], 100 * table["test_acc"], 100 * table["test_acc_std"], fmt="o", color="C0")
    log_x(ax)
    label_points(ax, list(table["params"]), list(100 * table["test_acc"]), list(table["variant"]))
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel("test accuracy (%)")
    return save(fig, path)
