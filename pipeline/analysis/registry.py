"""Analyses that need no training: each writes results/analysis/NAME.json and its figures."""
from __future__ import annotations

import importlib
import json
from pathlib import Path

from .. import paths


def _figures(name: str, result: dict, fig_dir: Path) -> None:
    if name == "attention":
        from .attention import plot_attention
        plot_attention(result, fig_dir / "attention_map.png")


def run_analysis(name: str, results_dir: Path) -> Path:
    try:
        module = importlib.import_module(f"pipeline.analysis.{name}")
    except ModuleNotFoundError:
        raise ValueError(f"unknown analysis {name!r}") from None
    result = module.compute()
    fig_dir = paths.figures(results_dir, name)
    fig_dir.mkdir(parents=True, exist_ok=True)
    _figures(name, result, fig_dir)
    out = paths.analysis(results_dir, name)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=float) + "\n")
    tmp.replace(out)
    return out
