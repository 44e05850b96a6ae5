"""The one training loop every family uses: seeded, device-agnostic, checkpointed after every epoch.

A family describes an epoch as an iterable of batches and a loss; this module owns everything else:
optimizer steps, evaluation under inference mode, history rows, progress output and resume.
"""
from __future__ import annotations

import inspect
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn

from .paths import run_id

# Tests set this to "STAGE:EPOCH" to simulate an interruption right after that epoch's checkpoint.
INTERRUPT_ENV = "DFL_INTERRUPT_AFTER"


class Interrupted(RuntimeError):
    pass


class DiskFullError(OSError):
    """A one-line, user-facing report that a file could not be written for lack of space."""


def disk_full_message(path: Path, exc: BaseException) -> str | None:
    """One line naming the disk and what is free, when `exc` comes from a full disk (None otherwise).

    torch.save reports a full disk as a RuntimeError ("unexpected pos ..."), not as ENOSPC, so the free space
    decides: below 64 MiB free, the failed write is taken to be the disk's fault."""
    import errno
    import shutil
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return None
    nospace = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if not nospace and free >= 64 << 20:
        return None
    return (f"disk full: could not write {path} ({free / 2**20:.0f} MiB free on the disk of {probe}); free some "
            "space and run the same command again: finished runs and epoch checkpoints are kept")


class _Uncompiled:
    """An optimizer whose methods run as the plain functions inside torch.optim's torch.compile wrappers.

    torch.optim wraps `step` (to mark graph breaks) and `zero_grad`, `add_param_group`, `state_dict` and
    `load_state_dict` (to keep torch.compile from tracing them), and each wrapper imports torch._dynamo on first use:
    1.8-4.5 s of every run's process (sympy and the symbolic-shape machinery), more than a small CNN's epoch. Runs
    never compile, so the plain functions compute exactly what the wrapped ones do (tested step for step against
    torch.optim); `step` keeps the wrapper's no-grad mode.
    """
    zero_grad = inspect.unwrap(torch.optim.Optimizer.zero_grad)
    add_param_group = inspect.unwrap(torch.optim.Optimizer.add_param_group)
    state_dict = inspect.unwrap(torch.optim.Optimizer.state_dict)
    load_state_dict = inspect.unwrap(torch.optim.Optimizer.load_state_dict)
    _plain_step: Callable

    def step(self, closure=None):
        with torch.no_grad():
            return self._plain_step(closure)


class Adam(_Uncompiled, torch.optim.Adam):
    _plain_step = inspect.unwrap(torch.optim.Adam.step)


class AdamW(_Uncompiled, torch.optim.AdamW):
    _plain_step = inspect.unwrap(torch.optim.AdamW.step)


def adam(params, lr: float, weight_decay: float = 0.0, decoupled: bool = False) -> torch.optim.Optimizer:
    """Adam (AdamW when `decoupled`) with the fused kernel, on CPU as on CUDA: one pass over all parameters instead
    of a dozen small ops per tensor, which makes the optimizer step 2.5x faster for the MLPs here."""
    cls = AdamW if decoupled else Adam
    return cls(params, lr=lr, weight_decay=weight_decay, fused=True)


def pick_device(preference: str = "auto") -> torch.device:
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda requested but no CUDA device is visible; set device: auto or cpu")
    if preference in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16(device: torch.device) -> bool:
    """Whether this device multiplies bf16 matrices in hardware (a GPU with bf16, a CPU with AVX512-BF16 or AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return False


def resolve_precision(preference: str, device: torch.device) -> str:
    """'auto' -> bf16 autocast where the hardware has it natively (about 1.3-1.5x faster here), else fp32.
    Elsewhere bf16 is emulated and slower, so 'auto' never picks it there; 'bf16' forces it."""
    if preference not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {preference!r}")
    if preference == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return preference


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed blocks instead of handing them back to the OS after every step.

    PyTorch's CPU allocator has no cache: each step frees and re-allocates its activations, and glibc returns
    large blocks (mmap, or trimming the heap top) so the next step page-faults them in again. Keeping them cut a
    small CNN's step time by a third here; memory stays at its peak instead of shrinking between steps.
    A no-op (False) where the C library is not glibc.
    """
    try:
        import ctypes
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    # 32 MiB is glibc's largest mmap threshold on 64-bit; setting it also stops glibc adapting it.
    return bool(mallopt(M_TRIM_THRESHOLD, 1 << 30)) and bool(mallopt(M_MMAP_THRESHOLD, 32 << 20))


def flush_denormals() -> bool:
    """Treat subnormal floats (below 1.2e-38) as zero in CPU arithmetic.

    Adam's second moments and the gradients of rarely active weights drift into that range after a few hundred
    steps, and x86 cores handle such operands in microcode: on an AMX Xeon here the CNN's step slowed from 9 to
    14 ms and the stacked classifier's from 3.2 to 4.2 ms within 1,400 steps, and stayed flat with this set.
    Values that small are far below what bf16 or fp32 training resolves. False where the CPU cannot flush.
    """
    return torch.set_flush_denormal(True)


def tune_process() -> None:
    """The process-wide settings every run trains under (pipeline.run), and the benchmark measures with."""
    keep_freed_memory()
    flush_denormals()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def batch_indices(n: int, batch_size: int, *, shuffle: bool, seed: int = 0, device=None) -> Iterable[torch.Tensor]:
    """Index batches over n examples. The permutation depends only on `seed`, so a resumed epoch reshuffles alike."""
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    else:
        order = torch.arange(n)
    if device is not None:
        order = order.to(device)
    return order.split(batch_size)


def epoch_seed(run_seed: int, stage: str, epoch: int) -> int:
    # A stable mix (not Python's salted hash) so every process derives the same shuffle.
    return (run_seed * 1_000_003 + sum(ord(c) * 131 ** i for i, c in enumerate(stage)) * 7919 + epoch) % (2**63)


@dataclass
class RunContext:
    family: str
    variant: str
    seed: int
    params: dict[str, Any]
    device: torch.device
    checkpoint_dir: Path
    identity: dict[str, Any] = field(default_factory=dict)  # params, code and data digests: see run.identity
    data_dir: Path = Path("data")
    precision: str = "fp32"     # resolved: "fp32" or "bf16" (autocast; weights and optimizer stay fp32)
    history: list[dict] = field(default_factory=list)
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr, flush=True)

    @property
    def run_id(self) -> str:
        return run_id(self.family, self.variant, self.seed)

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")


def _rng_state() -> dict:
    """Every generator's state as tensors and plain values, so that a checkpoint loads with weights_only=True."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, words, gauss_next = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)},
             "python": {"version": version, "words": list(words), "gauss_next": gauss_next}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["words"]), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save to a temporary name, then rename: a reader never sees half a file, and a failed write (a full
    disk) leaves no temporary file behind and raises DiskFullError with one line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    try:
        torch.save(obj, tmp)
        tmp.replace(path)
    except (OSError, RuntimeError) as exc:
        tmp.unlink(missing_ok=True)
        message = disk_full_message(path, exc)
        if message:
            raise DiskFullError(message) from None
        raise


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict:
    """A checkpoint or model file, as data: weights_only=True refuses any pickled code in a file from elsewhere."""
    return torch.load(path, map_location=device, weights_only=True)


def _progress(iterable, total: int | None, desc: str):
    if sys.stderr.isatty():
        from tqdm import tqdm
        return tqdm(iterable, total=total, desc=desc, leave=False, file=sys.stderr)
    return iterable


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    ctx: RunContext,
    epochs: int,
    batches: Callable[[int], Iterable[Any]],
    loss_fn: Callable[[nn.Module, Any], torch.Tensor],
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
    stage: str = "train",
    steps_per_epoch: int | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> list[dict]:
    """Train `model` for `epochs`, resuming from this stage's checkpoint if one exists.

    `batches(epoch)` yields whatever `loss_fn(model, batch)` takes. `evaluate(model)` runs after every epoch under
    inference mode and returns metrics that become columns of the history. `scheduler`, if given, steps after
    every optimizer step. Returns this stage's history rows (they are also appended to ctx.history).
    """
    ckpt_path = ctx.checkpoint_dir / f"{stage}.pt"
    start, history = 0, []
    state = load_checkpoint(ckpt_path, ctx.device) if ckpt_path.exists() else None
    if state is not None and state.get("identity") != ctx.identity:
        # run.execute discards such checkpoints before training; this guards any other caller of fit.
        ctx.log(f"[{ctx.run_id}] {stage}: checkpoint is from other settings; ignored")
        state = None
    if state is not None:
        # Restoring the RNG of a finished stage too keeps later stages' random streams equal to a fresh run's.
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        start, history = state["epoch"], state["history"]
        if start < epochs:
            ctx.log(f"[{ctx.run_id}] {stage}: resuming after epoch {start}")
    interrupt = os.environ.get(INTERRUPT_ENV, "")
    for epoch in range(start + 1, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        total = torch.zeros((), device=ctx.device)
        steps = 0
        for batch in _progress(batches(epoch), steps_per_epoch, f"{stage} {epoch}/{epochs}"):
            optimizer.zero_grad(set_to_none=True)
            with ctx.autocast():
                loss = loss_fn(model, batch)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total += loss.detach().float()  # accumulate on device: no host sync per batch
            steps += 1
        row = {"stage": stage, "epoch": epoch, "train_loss": (total / max(steps, 1)).item()}
        if evaluate is not None:
            model.eval()
            with torch.inference_mode(), ctx.autocast():
                row.update(evaluate(model))
        row["seconds"] = round(time.perf_counter() - t0, 3)
        history.append(row)
        shown = ", ".join(f"{k}={v:.4g}" for k, v in row.items() if isinstance(v, float) and k != "seconds")
        ctx.log(f"[{ctx.run_id}] {stage} epoch {epoch}/{epochs}: {shown} "
                f"({row['seconds']:.1f}s)")
        save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": _rng_state(),
                     "scheduler": scheduler.state_dict() if scheduler is not None else None,
                     "epoch": epoch, "history": history, "identity": ctx.identity}, ckpt_path)
        if interrupt == f"{stage}:{epoch}":
            raise Interrupted(f"interrupted after {stage} epoch {epoch} (by {INTERRUPT_ENV})")
    model.eval()
    ctx.history.extend(history)
    return history


@torch.inference_mode()
def predict_classes(model: nn.Module, x: torch.Tensor, *, prepare: Callable, batch_size: int = 1000) -> torch.Tensor:
    """The predicted class of every example (argmax of the logits), in fp32, on the examples' device."""
    model.eval()
    return torch.cat([model(prepare(x[idx])).argmax(1) for idx in torch.arange(len(x), device=x.device).split(batch_size)]
                     or [torch.zeros(0, dtype=torch.long, device=x.device)])


def images_to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 [B,28,28] -> float [B,1,28,28] in [0,1], done per batch on the device."""
    return x.unsqueeze(1).float().div_(255.0)
