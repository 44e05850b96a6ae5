"""Autoencoder figures: reconstructions next to the originals; test MSE vs code size, AE against PCA."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..data import images
from . import trained_model
from .style import HALF, errorbar, plt, save


def test_images(cfg: dict, dataset: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = images.load(dataset, Path(cfg["data_dir"]))["test"]
    return x[:n], y[:n]


def figures(cfg: dict, runs, table, out: Path) -> None:
    shallow = table[~table["variant"].str.contains("deep")]
    fig, ax = plt.subplots(figsize=(HALF, 2.2))
    errorbar(ax, shallow["encoding_dim"], shallow["test_mse"], shallow["test_mse_std"], marker="o", label="autoencoder")
    ax.plot(shallow["encoding_dim"], shallow["pca_test_mse"], "s--", label="PCA, same dimension")
    deep = table[table["variant"].str.contains("deep")]
    if len(deep):
        ax.plot(deep["encoding_dim"], deep["test_mse"], "^", color="C2", label="deeper autoencoder")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(set(table["encoding_dim"].astype(int))), labels=sorted(set(table["encoding_dim"].astype(int))))
    ax.set_xlabel("code size (encoding_dim)")
    ax.set_ylabel("test MSE per pixel")
    ax.legend(frameon=False)
    save(fig, out / "mse_vs_dim.svg")

    variants = list(table["variant"])
    x, _ = test_images(cfg, json.loads(runs.iloc[0]["params_json"])["dataset"], 8)
    rows = [x.float() / 255]
    for v in variants:
        seed = int(runs[runs["variant"] == v]["seed"].min())
        model = trained_model(cfg, "autoencoder", v, seed)
        with torch.inference_mode():
            rows.append(model(x.unsqueeze(1).float() / 255).squeeze(1))
    labels = ["original"] + variants
    fig, axes = plt.subplots(len(rows), 8, figsize=(HALF, 0.43 * len(rows) + 0.1))
    for r, (imgs, label) in enumerate(zip(rows, labels)):
        for c in range(8):
            ax = axes[r, c]
            ax.imshow(np.asarray(imgs[c]), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            ax.grid(False)
            for s in ax.spines.values():
                s.set_visible(False)
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    fig.subplots_adjust(wspace=0.03, hspace=0.03)
    save(fig, out / "reconstructions.png")
