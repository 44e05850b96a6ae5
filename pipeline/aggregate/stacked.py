"""Stacked-autoencoder figure: test accuracy per architecture and condition, with all labels and with few."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .style import FULL, plt, save

CONDITIONS = [("acc_frozen", "pretrained, frozen + classifier"), ("acc_finetuned", "pretrained + fine-tuned"),
              ("acc_random", "random init, same budget")]


def figures(cfg: dict, runs, table, out: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(FULL, 2.2), sharey=False)
    x = np.arange(len(table))
    width = 0.26
    for ax, prefix, title in ((axes[0], "", "all labels"), (axes[1], "few_", "few labels")):
        for i, (key, label) in enumerate(CONDITIONS):
            col = prefix + key
            std = table[f"{col}_std"].to_numpy(float)   # NaN for a single seed: no bar (style.errorbar)
            ax.bar(x + (i - 1) * width, 100 * table[col], width, yerr=100 * std, capsize=2, label=label)
        n = int(table["n_labels_few"].iloc[0]) if prefix else int(table["n_labels"].iloc[0])
        ax.set_title(f"{title} ({n:,} labelled images)")
        ax.set_xticks(x, [v.replace("sae", "").replace("_", "-") for v in table["variant"]])
        ax.set_xlabel("hidden layers")
        lo = 100 * min(table[[prefix + k for k, _ in CONDITIONS]].min())
        ax.set_ylim(max(0, lo - 5), 100)
        ax.set_ylabel("test accuracy (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, frameon=False, loc="upper center", ncol=3, bbox_to_anchor=(0.5, 1.08))
    fig.tight_layout()
    save(fig, out / "accuracy_by_condition.svg")
