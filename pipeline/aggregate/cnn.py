"""CNN figures: accuracy vs parameters, learning curves of the main variants, first-layer filters of the best."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import history, summarise, trained_model, with_macs
from .style import HALF, accuracy_vs_params, integer_x, plt, save

MAIN = ("base", "one_conv", "three_conv", "batch_norm", "best_combo")


def best_variant(table) -> str:
    """Chosen on validation accuracy, as the report chooses it: the test set only reports the choice."""
    return str(table.loc[table["val_acc"].idxmax(), "variant"])


def table(cfg: dict, runs):
    return summarise(with_macs("cnn", runs))


def figures(cfg: dict, runs, table, out: Path) -> None:
    accuracy_vs_params(table, out / "accuracy_vs_params.svg", height=2.5)

    fig, ax = plt.subplots(figsize=(HALF, 2.3))
    for v in [v for v in MAIN if v in set(table["variant"])]:
        seed = int(runs[runs["variant"] == v]["seed"].min())
        h = history(cfg, "cnn", v, seed)
        ax.plot(h["epoch"], 100 * h["val_acc"], marker="o", label=v)
    ax.set_xlabel("epoch")
    integer_x(ax)
    ax.set_ylabel("validation accuracy (%)")
    ax.legend(frameon=False, ncol=2)
    save(fig, out / "learning_curves.svg")

    best = best_variant(table)
    seed = int(runs[runs["variant"] == best]["seed"].min())
    model = trained_model(cfg, "cnn", best, seed)
    conv = next(m for m in model.modules() if m.__class__.__name__ == "Conv2d")
    w = conv.weight.detach()[:, 0].numpy()
    n = min(len(w), 16)
    cols = 8
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(HALF, 0.45 * rows + 0.25), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            lim = np.abs(w[i]).max()
            ax.imshow(w[i], cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.suptitle(f"first-layer filters of {best}", fontsize=8, y=1.0)
    save(fig, out / "filters.png")
