"""Figure conventions: sized in inches for their printed width, so 8 pt here is 8 pt on the page."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

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
    """Mean with the seed spread as error bars (no bars where there is a single seed)."""
    import numpy as np
    std = np.nan_to_num(np.asarray(std, dtype=float), nan=0.0)
    return ax.errorbar(x, mean, yerr=std, capsize=2, **kw)


def log_x(ax) -> None:
    """Log x axis with labelled major ticks only (minor labels collide at these widths)."""
    from matplotlib.ticker import LogLocator, NullFormatter
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10))
    ax.xaxis.set_minor_formatter(NullFormatter())


def integer_x(ax) -> None:
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def label_points(ax, xs, ys, labels, fontsize: float = 6.5) -> None:
    """Label scatter points, moving each label to the first nearby spot that overlaps no earlier label.

    Deterministic and dependency-free; text extents are measured with the figure's renderer.
    """
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    placed = []
    offsets = [(4, 2), (4, -9), (-4, 2), (-4, -9), (4, 9), (-4, 9), (4, -16), (-4, -16), (0, 14), (0, -20)]
    order = sorted(range(len(labels)), key=lambda i: (xs[i], ys[i]))
    for i in order:
        best = None
        for dx, dy in offsets:
            ha = "left" if dx >= 0 else "right"
            text = ax.annotate(labels[i], (xs[i], ys[i]), xytext=(dx, dy), textcoords="offset points",
                               fontsize=fontsize, ha=ha)
            box = text.get_window_extent(renderer).expanded(1.05, 1.1)
            if not any(box.overlaps(p) for p in placed):
                best = box
                break
            text.remove()
        if best is None:  # every spot is taken: keep the first, overlapping, rather than drop a label
            text = ax.annotate(labels[i], (xs[i], ys[i]), xytext=offsets[0], textcoords="offset points",
                               fontsize=fontsize)
            best = text.get_window_extent(renderer)
        placed.append(best)


def accuracy_vs_params(table, path: Path, height: float) -> Path:
    """Test accuracy (mean, seed spread as error bars) against parameter count, every variant labelled."""
    fig, ax = plt.subplots(figsize=(HALF, height))
    errorbar(ax, table["params"], 100 * table["test_acc"], 100 * table["test_acc_std"], fmt="o", color="C0")
    log_x(ax)
    label_points(ax, list(table["params"]), list(100 * table["test_acc"]), list(table["variant"]))
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel("test accuracy (%)")
    return save(fig, path)
