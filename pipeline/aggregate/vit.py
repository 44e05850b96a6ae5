"""ViT figures: test accuracy vs parameters, the train/test gap per size, the CLS attention on one digit."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import registry
from ..models.vit import cls_attention_map
from . import summarise, trained_model, with_macs
from .autoencoder import test_images
from .cnn import best_variant
from .style import HALF, accuracy_vs_params, plt, save


def table(cfg: dict, runs):
    """The family's table with `gap` = train minus test accuracy taken per seed, so that its spread over seeds (and
    a test of how it changes with size) comes from the runs, not from the two accuracies' separate spreads; `macs`
    (attention's products included) and `tokens`, the sequence the encoder reads."""
    family = registry.family("vit")
    tokens = {p: family.experiment().build(json.loads(p)).tokens for p in set(runs["params_json"])}
    runs = with_macs("vit", runs)
    return summarise(runs.assign(gap=runs["train_acc"] - runs["test_acc"], tokens=runs["params_json"].map(tokens)))


def figures(cfg: dict, runs, table, out: Path) -> None:
    accuracy_vs_params(table, out / "accuracy_vs_params.svg", height=2.3)

    fig, ax = plt.subplots(figsize=(HALF, 2.0))
    order = table.sort_values("params")
    gap = 100 * order["gap"]
    # NaN std (a single seed) draws no bar
    ax.bar(order["variant"], gap, yerr=100 * order["gap_std"].to_numpy(float), capsize=2,
           color=["C3" if g > 0 else "C2" for g in gap])
    ax.axhline(0, color="k", lw=0.6)
    ax.set_ylabel("train − test accuracy (pp)")
    ax.tick_params(axis="x", rotation=30)
    save(fig, out / "train_test_gap.svg")

    best = best_variant(table)
    seed = int(runs[runs["variant"] == best]["seed"].min())
    model = trained_model(cfg, "vit", best, seed)
    x, y = test_images(cfg, json.loads(runs.iloc[0]["params_json"])["dataset"], 1)
    img = x[0].float() / 255
    att = cls_attention_map(model, img)
    fig, axes = plt.subplots(1, 2, figsize=(HALF, 1.6))
    axes[0].imshow(img.numpy(), cmap="gray")
    axes[0].set_title(f"test digit ({int(y[0])})")
    p = 28 // att.shape[0]
    axes[1].imshow(img.numpy(), cmap="gray")
    axes[1].imshow(np.kron(att, np.ones((p, p))), cmap="inferno", alpha=0.6)
    axes[1].set_title(f"CLS attention, {best}")
    for ax in axes:
        ax.axis("off")
    save(fig, out / "cls_attention.png")
