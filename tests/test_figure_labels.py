"""Point labels of the accuracy-vs-size figures: crowded variants (six CNNs of one parameter count within 0.3 pp)
must come out readable, and an accuracy near 100% gets an axis that spreads it."""
import base64

import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from pipeline.aggregate import style
from pipeline.aggregate.style import HALF, label_points, log_x, plt
from pipeline.report import figures

# Shaped like the default build's CNN table: variants of equal size stacked at one x, accuracies 0.05 pp apart.
CNN = pd.DataFrame({
    "variant": ["base", "avg_pool", "stride_conv", "dropout", "batch_norm", "kernel5", "kernel7", "one_conv",
                "three_conv", "filters8", "filters64", "no_head", "best_combo"],
    "params": [206922, 206922, 206922, 206922, 206970, 215370, 228042, 402986, 98442, 103018, 421642, 20490,
               421738],
    "test_acc": [.990, .989, .988, .9905, .9915, .991, .9905, .986, .991, .988, .9915, .987, .9924],
    "test_acc_std": [.0005] * 13,
})
VIT = pd.DataFrame({"variant": ["tiny", "small", "large", "patch14"], "params": [30000, 140000, 470000, 150000],
                    "test_acc": [.96, .9809, .9843, .9826], "test_acc_std": [.001] * 4})
VIT_SMOKE = VIT.assign(test_acc=[.104, .266, .158, .358])


def _boxes(ax, texts):
    """The labels' own text boxes (an Annotation's window extent would include its leader line)."""
    renderer = ax.figure.canvas.get_renderer()
    return [Text.get_window_extent(t, renderer) for t in texts]


# A smoke build's CNN accuracies: three variants crowd the right edge of the plot.
SMOKE = CNN.assign(test_acc=[.374, .246, .182, .186, .55, .556, .452, .586, .086, .192, .582, .18, .536])


def _check_readable(ax, texts, points) -> None:
    """No two labels overlap, no label covers a point (x, y in data coordinates), all lie inside the axes."""
    ax.figure.canvas.draw()
    boxes = _boxes(ax, texts)
    for i, a in enumerate(boxes):
        for j, b in enumerate(boxes[:i]):
            assert not a.overlaps(b), f"labels {texts[i].get_text()} and {texts[j].get_text()} overlap"
    pt = ax.figure.dpi / 72
    for (x, y), name in zip(ax.transData.transform(np.asarray(points, dtype=float)), [t.get_text() for t in texts]):
        marker = Bbox.from_bounds(x - 2 * pt, y - 2 * pt, 4 * pt, 4 * pt)
        covering = [t.get_text() for t, b in zip(texts, boxes) if b.overlaps(marker)]
        assert not covering, f"label(s) {covering} cover the point of {name}"
    frame = ax.bbox
    for t, b in zip(texts, boxes):
        assert frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1, t.get_text()


@pytest.mark.parametrize("table", [CNN, SMOKE], ids=["default", "smoke"])
def test_crowded_labels_overlap_no_label_no_marker_and_stay_inside_the_axes(table):
    fig, ax = plt.subplots(figsize=(HALF, 2.5))
    ax.errorbar(table["params"], 100 * table["test_acc"], yerr=100 * table["test_acc_std"], fmt="o")
    log_x(ax)
    texts = label_points(ax, list(table["params"]), list(100 * table["test_acc"]), list(table["variant"]))
    assert [t.get_text() for t in texts] == list(table["variant"])
    _check_readable(ax, texts, np.column_stack([table["params"], 100 * table["test_acc"]]))
    plt.close(fig)


@pytest.mark.parametrize("cnn, vit", [(CNN, VIT), (SMOKE, VIT_SMOKE)], ids=["default", "smoke"])
def test_the_cnn_vs_vit_scatter_is_readable(cnn, vit):
    fig, ax, texts = figures.scatter_figure({"cnn": cnn, "vit": vit}, "params", "test_acc")
    both = pd.concat([cnn, vit])
    assert [t.get_text() for t in texts] == list(both["variant"])
    _check_readable(ax, texts, np.column_stack([both["params"], both["test_acc"]]))
    plt.close(fig)


def test_labels_keep_clear_of_the_legend():
    fig, ax = plt.subplots(figsize=(HALF, 2.5))
    ax.plot(CNN["params"], 100 * CNN["test_acc"], "o", label="cnn")
    log_x(ax)
    legend = ax.legend(loc="center right")
    texts = label_points(ax, list(CNN["params"]), list(100 * CNN["test_acc"]), list(CNN["variant"]))
    fig.canvas.draw()
    box = legend.get_window_extent(fig.canvas.get_renderer())
    assert not [t.get_text() for t, b in zip(texts, _boxes(ax, texts)) if b.overlaps(box)]
    plt.close(fig)


def test_the_same_table_gives_the_same_figure():
    first = figures.scatter({"cnn": CNN, "vit": VIT}, "params", "test_acc")
    assert figures.scatter({"cnn": CNN, "vit": VIT}, "params", "test_acc") == first


@pytest.mark.parametrize("y, scale", [("test_acc", "logit scale"), ("test_loss", None)])
def test_an_accuracy_gets_a_logit_axis_ticked_in_percent(y, scale):
    tables = {"cnn": CNN.assign(test_loss=np.linspace(0.02, 0.05, len(CNN))),
              "vit": VIT.assign(test_loss=[0.1, 0.06, 0.05, 0.055])}
    svg = base64.b64decode(figures.scatter(tables, "params", y).split(",", 1)[1]).decode()
    if scale:
        assert scale in svg
        # Ticks at round percentages inside the data's range, the CNN band (98.6-99.24%) among them.
        assert ">99<" in svg and ">96<" in svg
    else:
        assert "logit" not in svg


@pytest.mark.parametrize("figure, expected", [("cnn", ["20k", "50k", "100k", "200k"]),
                                              ("cnn_vs_vit", ["20k", "50k", "100k", "200k", "500k"])])
def test_a_size_axis_of_one_or_two_decades_is_labelled_at_round_numbers(figure, expected):
    """The default build's CNN and ViT sizes span 20k-455k parameters: powers of ten alone labelled that axis once
    ("10^5"), so no point's size could be read off it."""
    if figure == "cnn":
        fig, ax = plt.subplots(figsize=(HALF, 2.5))
        ax.plot(CNN["params"], 100 * CNN["test_acc"], "o")
        log_x(ax)
    else:
        fig, ax, _ = figures.scatter_figure({"cnn": CNN, "vit": VIT}, "params", "test_acc")
    fig.canvas.draw()
    lo, hi = ax.get_xlim()
    shown = [(t.get_position()[0], t.get_text()) for t in ax.get_xticklabels() if lo <= t.get_position()[0] <= hi]
    assert [text for _, text in shown] == expected
    boxes = [t.get_window_extent() for t in ax.get_xticklabels() if t.get_text()]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[:i])
    plt.close(fig)


@pytest.mark.parametrize("lo, hi, expected", [
    (15e3, 6e5, [2e4, 5e4, 1e5, 2e5, 5e5]),           # one to two decades: 1, 2, 5
    (1, 1e6, [1, 10, 100, 1e3, 1e4, 1e5, 1e6]),       # more than eight of those: powers of ten
    (3e4, 4.5e4, [3e4, 4e4]),                         # under two: every digit
])
def test_round_log_ticks(lo, hi, expected):
    assert style.round_log_ticks(lo, hi) == pytest.approx(expected)
    assert [style.compact_number(v) for v in (2e4, 1.5e6, 0.5, 512)] == ["20k", "1.5M", "0.5", "512"]
