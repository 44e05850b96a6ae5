"""How far each family's training step is from the CPU's own speed.

Per family (the model, batch and engine its experiment trains with: see `families.capture`):

- **FLOPs per step**: forward and backward of one real step of the real model on one real batch, counted by
  `torch.utils.flop_counter.FlopCounterMode` (matrix products and convolutions only: 2 FLOPs per multiply-add;
  elementwise work, softmax and the optimizer step count nothing). The LSTM layers oneDNN runs as one fused op
  (`mkldnn_rnn_layer`), which the counter does not know, are counted here as their gate matrix products.
- **step**: seconds per step as the engine runs it: `pipeline.train.fit`, with the precision runs get (bf16 autocast
  where the CPU has it), the fused optimizer and the schedule, over that same batch repeated (the data path is
  measured in the throughput section).
- **pure compute**: the same step's matrix products alone: every op the counter saw (mm, addmm, bmm, convolution
  and its backward, ...), replayed at the same shapes, strides and dtypes on random tensors, back to back.
  `step / pure compute` is then what everything else costs: elementwise ops, autocast copies, allocation, Python,
  the optimizer. The replay is an estimate of the products' share, not a bound: tensors that were hot in cache
  in the real step may be cold here and the other way round.
- **where the rest goes**: `torch.profiler` over a few of the same steps, each op's own (self) time: the share of
  the matrix-product ops above and the ops that cost most besides them (dropout masks, normalisation, pooling, ...).
  The profiler adds a little to every op, so the shares are of the profiled step, not of `step`.
- **CPU ceiling**: one-thread 1024x1024x1024 matrix products in bf16 and fp32, and the CPU's name and flags.
"""
from __future__ import annotations

import dataclasses
import itertools
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from . import common
from .families import REFERENCE, Setup, capture

CEILING_N = 1024
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


# ----------------------------------------------------------------------------------------------- the CPU

def cpu_info() -> dict:
    """The CPU's model name (lscpu, else /proc/cpuinfo) and the flags that decide its matrix speed."""
    from .. import runinfo
    name = None
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        m = re.search(r"^Model name:\s*(.+)$", text, re.M)
        name = m.group(1).strip() if m else None
    except (OSError, subprocess.SubprocessError):
        pass
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    return {"model": name or runinfo.cpu_model(), "flags": {f: f in flags for f in CPU_FLAGS},
            "amx": any(f.startswith("amx") for f in flags), "avx512_bf16": "avx512_bf16" in flags}


def matmul_gflops(dtype_name: str, n: int = CEILING_N, seconds: float = 0.5, repeats: int = 3,
                  threads: int = 1) -> dict:
    """GFLOP/s of an n x n x n matrix product with `threads` threads (median of `repeats` timed runs)."""
    import torch
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[dtype_name]
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        out = torch.empty(n, n, dtype=dtype)
        torch.mm(a, b, out=out)
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        reps = max(2, round(seconds / max(time.perf_counter() - t0, 1e-6)))
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(reps):
                torch.mm(a, b, out=out)
            runs.append(2 * n**3 * reps / (time.perf_counter() - t0) / 1e9)
    finally:
        torch.set_num_threads(saved)
    return {"gflops": round(common.median(runs), 1), "runs": [round(r, 1) for r in runs], "n": n,
            "threads": threads}


def ceiling(st: common.Settings) -> dict:
    seconds = 0.2 if st.quick else 1.0
    return {"cpu": cpu_info(), "matmul_1024": {d: matmul_gflops(d, seconds=seconds, repeats=st.repeats)
                                               for d in ("bf16", "fp32")}}


# ----------------------------------------------------------------------------------------------- counting

def _rnn_layer_flops(input_shape, w_ih_shape, w_hh_shape) -> int:
    rows = 1
    for s in input_shape[:-1]:
        rows *= s
    gates, n_in, hidden = w_ih_shape[0], w_ih_shape[1], w_hh_shape[1]
    return 2 * rows * gates * (n_in + hidden)


def _rnn_forward_flops(input, w_ih, w_hh, *args, out_shape=None, **kwargs) -> int:
    return _rnn_layer_flops(input, w_ih, w_hh)


def _rnn_backward_flops(input, w_ih, w_hh, *args, out_shape=None, **kwargs) -> int:
    # Gradients of the input and the state (one product each per gate matrix) and of both weight matrices.
    return 2 * _rnn_layer_flops(input, w_ih, w_hh)


def custom_flops() -> dict:
    """Formulas for the ops FlopCounterMode has none for, in the form its `custom_mapping` takes."""
    import torch
    out = {}
    for name, fn in (("mkldnn_rnn_layer", _rnn_forward_flops), ("mkldnn_rnn_layer_backward", _rnn_backward_flops)):
        op = getattr(torch.ops.aten, name, None)
        if op is not None:
            out[op] = fn
    return out


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    shape: tuple
    stride: tuple
    dtype: Any
    device: str = "cpu"

    @classmethod
    def of(cls, t) -> "TensorSpec":
        return cls(tuple(t.shape), tuple(t.stride()), t.dtype, str(t.device))

    def make(self):
        """Random values in a tensor of this shape, strides and dtype."""
        import torch
        span = 1 + sum((s - 1) * st for s, st in zip(self.shape, self.stride) if s > 0) if all(self.shape) else 0
        if self.dtype.is_floating_point:
            base = torch.randn(max(span, 1), device=self.device).to(self.dtype)
        else:
            base = torch.zeros(max(span, 1), dtype=self.dtype, device=self.device)
        return base.as_strided(self.shape, self.stride)


@dataclasses.dataclass
class Call:
    """One matrix-product op as the step ran it: `op(*args, **kwargs)` with TensorSpecs for its tensors."""
    op: Any
    args: tuple
    kwargs: dict
    flops: int

    def name(self) -> str:
        return str(self.op.overloadpacket).removeprefix("aten.")


def _mm(m: int, k: int, n: int, like: TensorSpec) -> Call:
    import torch
    a = TensorSpec((m, k), (k, 1), like.dtype, like.device)
    return Call(torch.ops.aten.mm.default, (a, TensorSpec((k, n), (n, 1), like.dtype, like.device)), {}, 2 * m * k * n)


def _rnn_as_products(call: Call) -> list[Call]:
    """A fused LSTM layer (or its backward) as the matrix products it contains: the input projection of all steps
    at once, one state product per time step, and in the backward the weight gradients."""
    x, w_ih, w_hh = call.args[:3]
    steps, batch = (x.shape[0], x.shape[1]) if len(x.shape) == 3 else (x.shape[0], 1)
    rows = steps * batch
    gates, n_in, hidden = w_ih.shape[0], w_ih.shape[1], w_hh.shape[1]
    if "backward" not in call.name():
        return [_mm(rows, n_in, gates, x)] + [_mm(batch, hidden, gates, x) for _ in range(steps)]
    return ([_mm(rows, gates, n_in, x), _mm(gates, rows, n_in, x), _mm(gates, rows, hidden, x)]
            + [_mm(batch, gates, hidden, x) for _ in range(steps)])


def _spec(value):
    import torch
    if isinstance(value, torch.Tensor):
        return TensorSpec.of(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_spec(v) for v in value)
    return value


def _build(value):
    if isinstance(value, TensorSpec):
        return value.make()
    if isinstance(value, (list, tuple)):
        return type(value)(_build(v) for v in value)
    return value


def _recorder(registry: dict, calls: list):
    from torch.utils._python_dispatch import TorchDispatchMode

    class Recorder(TorchDispatchMode):
        """Notes every op FlopCounterMode counts, with the shapes, strides and dtypes it ran at."""

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = registry.get(func.overloadpacket)
            if formula is not None:
                flops = formula(*args, **kwargs, out_val=out)
                calls.append(Call(func, _spec(tuple(args)), _spec(dict(kwargs)), int(flops)))
            return out
    return Recorder()


def train_step(setup: Setup, ctx, batch) -> None:
    """One step exactly as `pipeline.train.fit` takes it."""
    setup.optimizer.zero_grad(set_to_none=True)
    with ctx.autocast():
        loss = setup.loss_fn(setup.model, batch)
    loss.backward()
    setup.optimizer.step()
    if setup.scheduler is not None:
        setup.scheduler.step()


def count_step(setup: Setup, batch, ctx=None) -> dict:
    """FLOPs of one step's forward and backward (FlopCounterMode) and the matrix-product calls it made."""
    from torch.utils.flop_counter import FlopCounterMode
    ctx = ctx or setup.ctx
    setup.model.train()
    setup.optimizer.zero_grad(set_to_none=True)
    calls: list[Call] = []
    counter = FlopCounterMode(display=False, custom_mapping=custom_flops())
    with counter, _recorder(counter.flop_registry, calls):
        with ctx.autocast():
            loss = setup.loss_fn(setup.model, batch)
        loss.backward()
    setup.optimizer.zero_grad(set_to_none=True)
    by_op: dict[str, int] = {}
    for op, n in counter.get_flop_counts().get("Global", {}).items():
        by_op[str(op).removeprefix("aten.")] = int(n)
    dtypes = sorted({str(a.dtype).removeprefix("torch.") for c in replay_calls(calls) for a in c.args[:2]
                     if isinstance(a, TensorSpec)})  # the operands' dtypes (not e.g. a fused LSTM's workspace)
    return {"flops": int(counter.get_total_flops()), "flops_by_op": by_op, "calls": calls, "dtypes": dtypes}


def replay_calls(calls: list[Call]) -> list[Call]:
    """The calls to time as pure compute: each op as recorded, fused LSTM layers as their products."""
    out = []
    for c in calls:
        out += _rnn_as_products(c) if c.name().startswith("mkldnn_rnn_layer") else [c]
    return out


def pure_compute_seconds(calls: list[Call], seconds: float = 0.5, repeats: int = 3) -> tuple[float, list[float]]:
    """Seconds per pass over `calls` on random tensors of their shapes (median of `repeats` timed runs)."""
    import torch
    if not calls:
        return 0.0, []
    prepared = [(c.op, _build(c.args), _build(c.kwargs)) for c in calls]  # distinct tensors, as in the step

    device = next((a.device for c in calls for a in c.args if isinstance(a, TensorSpec)), "cpu")

    def one_pass():
        for op, args, kwargs in prepared:
            op(*args, **kwargs)
        common.sync(torch.device(device))
    with torch.no_grad():
        one_pass()  # oneDNN builds its primitives on first use
        t0 = time.perf_counter()
        one_pass()
        per = max(time.perf_counter() - t0, 1e-7)
        passes = max(1, round(seconds / per))
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(passes):
                one_pass()
            runs.append((time.perf_counter() - t0) / passes)
    return common.median(runs), runs


# ----------------------------------------------------------------------------------------------- per family

def _batch_size(batch) -> int:
    if hasattr(batch, "words"):
        return len(batch.words)
    return len(batch[0] if isinstance(batch, (tuple, list)) else batch)


def _batch_length(batch) -> int:
    """Sequence steps of a G2P batch (source + target); 0 for images, whose batches all have one shape."""
    return batch.src.shape[1] + batch.tgt_in.shape[1] if hasattr(batch, "src") else 0


def typical_batch(setup: Setup, look: int = 64):
    """A batch of the experiment's own stream with the configured size and the median length among the first
    `look` such batches (G2P's length-bucketed batches range from short to long words; images: the first)."""
    bs = setup.params.get("batch_size")
    full, first = [], None
    for batch in itertools.islice(setup.stream(), look):
        first = first if first is not None else batch
        if _batch_size(batch) == bs:
            full.append(batch)
            if not _batch_length(batch):
                break
    if not full:
        return first, _batch_size(first)
    full.sort(key=_batch_length)
    chosen = full[(len(full) - 1) // 2]
    return chosen, _batch_size(chosen)


def _batch_shape(batch) -> dict:
    if hasattr(batch, "src"):
        return {"src": list(batch.src.shape), "tgt": list(batch.tgt_in.shape)}
    x = batch[0] if isinstance(batch, (tuple, list)) else batch
    return {"input": list(x.shape)}


def step_seconds(setup: Setup, batch, steps: int, scratch: Path, tag: str) -> float:
    """Seconds per step of `fit` (the loop every run uses) over `batch` repeated `steps` times."""
    from ..train import fit
    ctx = dataclasses.replace(setup.ctx, checkpoint_dir=scratch / f"compute-{tag}", history=[], log=lambda m: None)
    with common.quiet_stderr():
        row = fit(setup.model, setup.optimizer, ctx=ctx, epochs=1, stage="compute",
                  batches=lambda e: itertools.repeat(batch, steps), loss_fn=setup.loss_fn,
                  scheduler=setup.scheduler)[-1]
    shutil.rmtree(ctx.checkpoint_dir, ignore_errors=True)
    return row["seconds"] / steps


# The ops that do a step's matrix products (and fused layers made of them), as the profiler names them.
MATRIX_OPS = frozenset({"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::addbmm",
                        "aten::mkldnn_convolution", "aten::convolution_backward", "aten::mkldnn_rnn_layer",
                        "aten::mkldnn_rnn_layer_backward", "aten::_scaled_dot_product_flash_attention_for_cpu",
                        "aten::_scaled_dot_product_flash_attention_for_cpu_backward"})


def time_shares(setup: Setup, batch, steps: int = 5, top: int = 4, warmup: int = 2) -> dict:
    """Each op's share of a profiled step by its self time: the matrix products together, and the `top` other
    ops that cost most (what stands between the step and its pure-compute time). Takes `warmup` + `steps` steps."""
    from torch.profiler import ProfilerActivity, profile
    # Kineto, the profiler's back end, logs each start and stop and, without a GPU driver, an "ERROR" that it
    # found no GPU: lines in the bench's output that say nothing about the measurement. Read at its first use.
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    ctx = setup.ctx
    setup.model.train()
    for _ in range(warmup):  # primitives and allocator warm, as in the timed steps
        train_step(setup, ctx, batch)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            train_step(setup, ctx, batch)
    self_us = {e.key: e.self_cpu_time_total for e in prof.key_averages() if e.self_cpu_time_total > 0}
    total = sum(self_us.values()) or 1.0
    matrix = sum(t for k, t in self_us.items() if k in MATRIX_OPS)
    others = sorted(((k, t) for k, t in self_us.items() if k not in MATRIX_OPS), key=lambda kv: -kv[1])
    return {"matrix_share": round(matrix / total, 3),
            "top_other": [[k.removeprefix("aten::"), round(t / total, 3)] for k, t in others[:top]],
            "profiled_steps": steps}


def family_compute(setup: Setup, st: common.Settings, scratch: Path) -> dict:
    """FLOPs, step time, achieved GFLOP/s and pure-compute time of one family's step."""
    batch, size = typical_batch(setup)
    counted = count_step(setup, batch)
    calls = replay_calls(counted["calls"])
    replay_flops = sum(c.flops for c in calls)
    limit = setup.step_limit()
    used = 0

    def run_steps(n: int, tag: str) -> float:
        nonlocal used
        if limit is not None:
            n = max(1, min(n, limit - used))
        used += n
        return step_seconds(setup, batch, n, scratch, tag)

    run_steps(max(st.warmup, 1), "warmup")
    probe = run_steps(max(st.min_steps // 2, 2), "probe")
    budget = None if limit is None else max(1, (limit - used) // st.repeats)
    steps = st.sized(probe, budget)
    step_runs, pure_runs = [], []
    for r in range(st.repeats):  # alternate, so load that drifts between repeats affects both alike
        order = ("step", "pure") if r % 2 == 0 else ("pure", "step")
        for what in order:
            if what == "step":
                step_runs.append(run_steps(steps, f"r{r}"))
            else:
                pure_runs.append(pure_compute_seconds(calls, seconds=min(st.seconds, steps * probe), repeats=1)[0])
    step_s, pure_s = common.median(step_runs), common.median(pure_runs)
    profiled, warmup = (2 if st.quick else 5), 2
    # A one-cycle schedule refuses to step past its end.
    shares = (time_shares(setup, batch, steps=profiled, warmup=warmup)
              if limit is None or used + warmup + profiled <= limit else None)
    flops = counted["flops"]
    ops: dict[str, int] = {}
    for c in counted["calls"]:
        ops[c.name()] = ops.get(c.name(), 0) + 1
    return {
        "variant": setup.variant, "stage": setup.stage, "batch_size": size, "batch": _batch_shape(batch),
        "precision": setup.ctx.precision, "dtypes": counted["dtypes"], "steps": steps, "repeats": st.repeats,
        "flops_per_step": flops, "flops_by_op": counted["flops_by_op"], "replayed_flops": replay_flops,
        "matrix_ops_per_step": ops,
        "step_ms": round(step_s * 1e3, 3), "step_runs_ms": [round(s * 1e3, 3) for s in step_runs],
        "gflops": round(flops / step_s / 1e9, 2),
        "pure_compute_ms": round(pure_s * 1e3, 3), "pure_compute_runs_ms": [round(s * 1e3, 3) for s in pure_runs],
        "pure_compute_gflops": round(replay_flops / pure_s / 1e9, 2) if pure_s > 0 else None,
        "step_over_pure_compute": round(step_s / pure_s, 2) if pure_s > 0 else None,
        # Fastest repeat of each: less sensitive to other work on the machine than the medians.
        "step_over_pure_compute_best": round(min(step_runs) / min(pure_runs), 2) if min(pure_runs) > 0 else None,
        "time_shares": shares,
    }


def bench_compute(cfg: dict, st: common.Settings, device, data_dir: Path, scratch: Path, g2p_data=None) -> dict:
    """`family_compute` for every family's reference variant, and the CPU's ceiling, with the families' threads."""
    import torch
    saved = torch.get_num_threads()
    out: dict[str, Any] = {"method": __doc__.split("\n\n", 1)[1].strip()}
    try:
        out["ceiling"] = ceiling(st)
        families = {}
        for family, variant in REFERENCE.items():
            torch.set_num_threads(common.family_threads(cfg, st, family))
            try:
                if family == "g2p" and g2p_data is None:
                    from ..data import cmudict
                    g2p_data = cmudict.load_g2p(limit_train=st.g2p_words)
                setup = capture(cfg, family, variant, device=device, data_dir=data_dir,
                                checkpoint_dir=scratch / f"capture-{family}",
                                precision=common.precision(cfg, st, device), g2p_data=g2p_data)
                row = family_compute(setup, st, scratch)
                row["threads"] = torch.get_num_threads()
            except Exception as exc:  # one family's failure must not lose the others
                row = {"variant": variant, "error": f"{type(exc).__name__}: {exc}"}
            families[family] = row
        out["families"] = families
    finally:
        torch.set_num_threads(saved)
    out["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    return out
