"""`python -m pipeline run FAMILY VARIANT`: train one variant with one seed and write its results atomically."""
from __future__ import annotations

import csv
import importlib
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from . import config as cfglib
from . import runinfo
from .train import RunContext, keep_freed_memory, pick_device, resolve_precision, seed_everything


@dataclass
class RunOutput:
    """What a family's `run(ctx)` returns: final numbers, the trained weights, and optional JSON extras."""
    metrics: dict[str, Any]
    model: torch.nn.Module | dict | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def run_dir(results_dir: Path, family: str, variant: str, seed: int) -> Path:
    return Path(results_dir) / "runs" / family / variant / f"seed{seed}"


def checkpoint_dir(results_dir: Path, family: str, variant: str, seed: int) -> Path:
    return Path(results_dir) / "checkpoints" / family / variant / f"seed{seed}"


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=float) + "\n")


def _write_history(path: Path, rows: list[dict]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns or ["epoch"])
        writer.writeheader()
        writer.writerows(rows)


def execute(family: str, variant: str, seed: int, cfg: dict, params: dict | None = None,
            threads: int | None = None) -> Path:
    params = params if params is not None else cfglib.variant_params(cfg, family, variant)
    results = Path(cfg["results_dir"])
    threads = threads or cfg["families"][family].get("threads", 1)
    torch.set_num_threads(threads)
    keep_freed_memory()
    device = pick_device(cfg.get("device", "auto"))
    seed_everything(seed)
    ctx = RunContext(family=family, variant=variant, seed=seed, params=params, device=device,
                     checkpoint_dir=checkpoint_dir(results, family, variant, seed),
                     data_dir=Path(cfg["data_dir"]),
                     precision=resolve_precision(cfg.get("precision", "auto"), device))
    module = importlib.import_module(f"pipeline.experiments.{family}")
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    out: RunOutput = module.run(ctx)
    wall = time.perf_counter() - t0

    final = run_dir(results, family, variant, seed)
    staging = final.parent / f".{final.name}.tmp{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    _write_history(staging / "history.csv", ctx.history)
    state = out.model.state_dict() if isinstance(out.model, torch.nn.Module) else (out.model or {})
    torch.save({"state_dict": {k: v.detach().cpu() for k, v in state.items()}, "params": params},
               staging / "model.pt")
    if out.extras:
        _write_json(staging / "extras.json", out.extras)
    _write_json(staging / "run.json", {
        "family": family, "variant": variant, "seed": seed, "profile": cfg["profile"], "params": params,
        "git_commit": runinfo.git_commit(), "packages": runinfo.package_versions(),
        "device": runinfo.describe_device(device), "precision": ctx.precision, "threads": torch.get_num_threads(),
        "host": socket.gethostname(), "started": started.isoformat(timespec="seconds"),
        "wall_seconds": round(wall, 2),
    })
    _write_json(staging / "metrics.json", out.metrics)
    final.mkdir(parents=True, exist_ok=True)
    # metrics.json goes last: its presence means the run is complete.
    for name in ("history.csv", "model.pt", "extras.json", "run.json", "metrics.json"):
        if (staging / name).exists():
            (staging / name).replace(final / name)
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(ctx.checkpoint_dir, ignore_errors=True)
    return final
