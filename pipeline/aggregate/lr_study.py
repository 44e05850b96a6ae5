"""Learning-rate study: per-rate table with curve summaries, the loss and accuracy curves of every rate, and the
first-layer activation maps of the best rate's model on one training image."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data import images
from ..models.reference_cnn import first_conv_activations
from ..train import images_to_float
from . import history, summarise_with_curves, trained_model
from .style import FULL, HALF, integer_x, plt, save

CLASS_NAMES = {
    "mnist": [str(i) for i in range(10)],
    "fashion-mnist": ["T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                      "ankle boot"],
    "kmnist": ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"],
}
# A map counts as active at a pixel above this fraction of the largest activation among the eight maps, so
# near-zero responses do not count as "active".
ACTIVE_FRACTION = 0.05


def _curve_summary(h: pd.DataFrame) -> dict:
    """What the report says about a curve, computed here so the report only reads the table.

    Whether a curve still rises is read from its least-squares slope over the last quarter of the epochs: one
    epoch's change on 5,000 validation images is within their noise (the default build's mean curves moved by up to
    0.9 pp in one epoch where their trend was under 0.1 pp per epoch), so a single last step called a curve still
    rising by 0.3 pp per epoch "levelled off"."""
    best = int(h["val_acc"].idxmax())
    recent = max(1, len(h) // 4)
    tail = h["val_acc"].iloc[-recent - 1:].to_numpy(dtype=float)
    slope = float(np.polyfit(np.arange(len(tail)), tail, 1)[0]) if len(tail) > 1 else float("nan")
    return {"final_train_loss": float(h["train_loss"].iloc[-1]), "first_train_loss": float(h["train_loss"].iloc[0]),
            "best_val_acc": float(h["val_acc"].max()), "best_epoch": int(h["epoch"].iloc[best]),
            "recent_val_slope": slope, "recent_epochs": len(tail) if len(tail) > 1 else 0,
            "epochs_run": int(len(h))}


def table(cfg: dict, runs: pd.DataFrame) -> pd.DataFrame:
    return summarise_with_curves(cfg, "lr_study", runs, _curve_summary)


def best_variant(table: pd.DataFrame) -> str:
    """Chosen on validation accuracy: the test set only reports the choice."""
    return str(table.loc[table["val_acc"].idxmax(), "variant"])


def _curves(cfg: dict, runs: pd.DataFrame, table: pd.DataFrame, column: str) -> list[tuple[str, pd.DataFrame]]:
    """Per variant (ordered by rate): epoch, mean and min/max of `column` over seeds."""
    out = []
    for v in table.sort_values("lr")["variant"]:
        seeds = sorted(int(s) for s in runs.loc[runs["variant"] == v, "seed"])
        frames = [history(cfg, "lr_study", v, s)[["epoch", column]] for s in seeds]
        both = pd.concat(frames).groupby("epoch")[column]
        out.append((v, pd.DataFrame({"mean": both.mean(), "lo": both.min(), "hi": both.max()}).reset_index()))
    return out


def rate_label(lr: float) -> str:
    """Scientific notation without padding (1e-5, 5e-4, 1.5e-3), as learning rates are usually written."""
    mantissa, exponent = f"{float(lr):e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def _label(table: pd.DataFrame, v: str) -> str:
    return f"lr {rate_label(table.loc[table['variant'] == v, 'lr'].iloc[0])}"


def _curve_figure(cfg, runs, table, column: str, ylabel: str, scale: float, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(HALF, 2.2))
    curves = _curves(cfg, runs, table, column)
    for i, (v, c) in enumerate(curves):
        ax.plot(c["epoch"], scale * c["mean"], marker="o", markersize=2.5, color=f"C{i}", label=_label(table, v))
        if (c["hi"] > c["lo"]).any():  # the seed range, only where there is more than one seed
            ax.fill_between(c["epoch"], scale * c["lo"], scale * c["hi"], color=f"C{i}", alpha=0.2, lw=0)
    ax.set_xlabel("epoch")
    last = int(max(c["epoch"].max() for _, c in curves))
    # Explicit integer ticks: with one or two epochs a tick locator falls back to fractional epochs.
    ax.set_xticks(range(1, last + 1)) if last <= 12 else integer_x(ax)
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False)
    save(fig, path)


def training_example(params: dict, data_dir: Path) -> tuple[torch.Tensor, int]:
    """The first image of the run's own training split (same hold-out and limits as the run)."""
    s = images.splits(params["dataset"], data_dir, val_size=params["val_size"], split_seed=params["split_seed"],
                      train_limit=params.get("train_limit"), eval_limit=params.get("eval_limit"))
    return s.train[0][0], int(s.train[1][0])


def activation_figure(cfg: dict, runs: pd.DataFrame, table: pd.DataFrame, out: Path) -> dict:
    best = best_variant(table)
    seed = int(runs.loc[runs["variant"] == best, "seed"].min())
    model = trained_model(cfg, "lr_study", best, seed)
    params = json.loads(runs.loc[(runs["variant"] == best) & (runs["seed"] == seed), "params_json"].iloc[0])
    img, label = training_example(params, Path(cfg["data_dir"]))
    acts = first_conv_activations(model, images_to_float(img[None]))[0].numpy()
    top = float(acts.max()) or 1.0
    cls = CLASS_NAMES.get(params["dataset"], [str(i) for i in range(10)])[label]

    # Input spans both rows; the eight maps fill a 2x4 grid; the last column is the shared colour bar.
    fig = plt.figure(figsize=(FULL, 2.2))
    grid = fig.add_gridspec(2, 7, width_ratios=[2.1, 0.15, 1, 1, 1, 1, 0.08], wspace=0.1, hspace=0.25)
    ax = fig.add_subplot(grid[:, 0])
    ax.imshow(img.numpy(), cmap="gray_r")
    ax.set_title(f"input: {cls}", fontsize=8)
    ax.axis("off")
    for k in range(acts.shape[0]):
        ax = fig.add_subplot(grid[k // 4, 2 + k % 4])
        # One colour scale for all maps, so their strengths can be compared.
        im = ax.imshow(acts[k], cmap="magma", vmin=0, vmax=top)
        ax.set_title(f"map {k + 1}", fontsize=7, pad=2)
        ax.axis("off")
    cbar = fig.colorbar(im, cax=fig.add_subplot(grid[:, 6]))
    cbar.ax.tick_params(labelsize=7)
    save(fig, out / "activations.png")

    active = acts > ACTIVE_FRACTION * top
    info = {"variant": best, "seed": seed, "lr": float(params["lr"]), "dataset": params["dataset"],
            "label": label, "class_name": cls, "active_fraction_threshold": ACTIVE_FRACTION,
            "maps": [{"map": k + 1, "active_pixels": float(active[k].mean()), "max": float(acts[k].max()),
                      "mean": float(acts[k].mean())} for k in range(acts.shape[0])]}
    (out / "activations.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def figures(cfg: dict, runs: pd.DataFrame, table: pd.DataFrame, out: Path) -> None:
    _curve_figure(cfg, runs, table, "train_loss", "training loss (cross-entropy)", 1.0, out / "train_loss.svg")
    _curve_figure(cfg, runs, table, "val_acc", "validation accuracy (%)", 100.0, out / "val_acc.svg")
    activation_figure(cfg, runs, table, out)
