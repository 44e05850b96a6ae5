"""G2P figures: validation WER per epoch, test WER/PER against beam size, attention alignments of example words.

The example outputs are copied next to the figures (examples.json) so the report reads only aggregated results.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from . import extras, history, summarise_with_curves
from .style import FULL, HALF, integer_x, plt, save

LABELS = {"attention": "with attention", "no_attention": "without attention"}


def _label(v: str) -> str:
    return LABELS.get(v, v)


def _curve_summary(h: pd.DataFrame) -> dict:
    last = float(h["val_wer"].iloc[-1] - h["val_wer"].iloc[-2]) if len(h) > 1 else float("nan")
    return {"first_val_wer": float(h["val_wer"].iloc[0]), "best_val_wer": float(h["val_wer"].min()),
            "last_epoch_val_wer_change": last, "final_train_loss": float(h["train_loss"].iloc[-1]),
            "epochs_run": int(len(h))}


def table(cfg: dict, runs: pd.DataFrame) -> pd.DataFrame:
    """Per variant, with `wer_change_beamK` = beam K's test WER minus greedy's taken per seed: both decode the same
    model, so the change is tested on its own spread over seeds (a paired test), not on the two WERs' spreads."""
    runs = runs.assign(**{f"wer_change_beam{k}": runs[f"test_wer_beam{k}"] - runs["test_wer_greedy"]
                          for k in beam_sizes(runs)})
    return summarise_with_curves(cfg, "g2p", runs, _curve_summary)


def beam_sizes(table: pd.DataFrame) -> list[int]:
    return sorted(int(c.removeprefix("test_wer_beam")) for c in table.columns
                  if c.startswith("test_wer_beam") and not c.endswith("_std"))


def _first_seed(runs: pd.DataFrame, variant: str) -> int:
    return int(runs.loc[runs["variant"] == variant, "seed"].min())


def val_curve_figure(cfg, runs, table, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(HALF, 2.2))
    last = 1
    for i, v in enumerate(table["variant"]):
        seeds = sorted(int(s) for s in runs.loc[runs["variant"] == v, "seed"])
        h = pd.concat([history(cfg, "g2p", v, s)[["epoch", "val_wer", "val_per"]] for s in seeds]).groupby("epoch")
        mean, lo, hi = h.mean(), h.min(), h.max()
        last = max(last, int(mean.index.max()))
        ax.plot(mean.index, 100 * mean["val_wer"], marker="o", markersize=3, color=f"C{i}",
                label=f"{_label(v)}: WER")
        ax.plot(mean.index, 100 * mean["val_per"], marker="s", markersize=2.5, ls="--", color=f"C{i}",
                label=f"{_label(v)}: PER")
        if len(seeds) > 1:
            ax.fill_between(mean.index, 100 * lo["val_wer"], 100 * hi["val_wer"], color=f"C{i}", alpha=0.2, lw=0)
    ax.set_xlabel("epoch")
    # Explicit integer ticks: with one or two epochs a tick locator falls back to fractional epochs.
    ax.set_xticks(range(1, last + 1)) if last <= 12 else integer_x(ax)
    ax.set_xlim(0.5, last + 0.5)
    ax.set_ylabel("validation error rate (%)")
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False, fontsize=7)
    save(fig, path)


def beam_figure(table: pd.DataFrame, path: Path) -> None:
    beams = beam_sizes(table)
    fig, ax = plt.subplots(figsize=(HALF, 2.2))
    for i, (_, r) in enumerate(table.iterrows()):
        for metric, marker, ls in (("wer", "o", "-"), ("per", "s", "--")):
            mean = [100 * r[f"test_{metric}_beam{k}"] for k in beams]
            std = [100 * r.get(f"test_{metric}_beam{k}_std", np.nan) for k in beams]   # NaN: no bar
            ax.errorbar(beams, mean, yerr=std, marker=marker, ls=ls, color=f"C{i}", capsize=2, markersize=3,
                        label=f"{_label(r['variant'])}: {metric.upper()}")
    ax.set_xscale("log")
    ax.set_xticks(beams, [str(k) for k in beams])
    ax.minorticks_off()
    ax.set_xlabel("beam size (1 = greedy)")
    ax.set_ylabel("test error rate (%)")
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False, fontsize=7)
    save(fig, path)


def attention_figure(examples: list[dict], path: Path) -> bool:
    shown = [e for e in examples if e.get("attention")]
    if not shown:
        return False
    fig, axes = plt.subplots(1, len(shown), figsize=(FULL, 2.3), squeeze=False)
    for ax, e in zip(axes[0], shown):
        a = np.asarray(e["attention"])
        ax.imshow(a, cmap="Blues", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(e["word"])), list(e["word"]), fontsize=7)
        ax.set_yticks(range(len(e["attention_rows"])), e["attention_rows"], fontsize=7)
        ax.tick_params(length=0)
        ax.grid(False)
        mark = "correct" if e["greedy_correct"] else "wrong"
        ax.set_title(f"{e['word']} ({mark})", fontsize=8)
    fig.tight_layout(w_pad=0.8)
    save(fig, path)
    return True


def figures(cfg: dict, runs: pd.DataFrame, table: pd.DataFrame, out: Path) -> None:
    val_curve_figure(cfg, runs, table, out / "val_wer.svg")
    beam_figure(table, out / "beams.svg")
    examples = {v: extras(cfg, "g2p", v, _first_seed(runs, v)).get("examples", []) for v in table["variant"]}
    with_attention = next((v for v in table["variant"] if any(e.get("attention") for e in examples[v])), None)
    if with_attention is not None:
        attention_figure(examples[with_attention], out / "attention.png")
    (out / "examples.json").write_text(json.dumps(
        {"attention_variant": with_attention, "by_variant": examples}, indent=2) + "\n")
