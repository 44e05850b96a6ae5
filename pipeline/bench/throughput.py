"""Training throughput: our data path and engine against a notebook's, and G2P's length-bucketed batches.

One process measures every training throughput, so ratios between data paths share the same warm caches, threads
and background load. Every model, optimizer, schedule and loss comes from the family's own experiment
(`families.capture`), never rebuilt here.
"""
from __future__ import annotations

import math
import shutil
import time
from itertools import islice
from pathlib import Path
from typing import Iterator

from .common import Settings, family_threads, median as _median, precision as _precision, quiet_stderr as _quiet_stderr
from .common import sync as _sync
from .families import REFERENCE as _ALL_REFERENCE
from .families import _cached_splits, capture, params_for

# The variant each image family is measured with, and the speed-up over a notebook it should reach.
REFERENCE = {f: _ALL_REFERENCE[f] for f in ("autoencoder", "stacked", "cnn", "vit")}
TARGET_RATIO = {"autoencoder": 3.0, "stacked": 3.0, "cnn": 1.5}
G2P_VARIANT = _ALL_REFERENCE["g2p"]


class _ImageBench:
    """Everything one image family needs to be trained both ways in this process."""

    def __init__(self, cfg: dict, device, data_dir: Path, st: Settings, scratch: Path):
        self.cfg, self.device, self.data_dir, self.st, self.scratch = cfg, device, data_dir, st, scratch
        self._tv = None
        self.precision = _precision(cfg, st, device)
        self._n = 0

    def torchvision_set(self):
        if self._tv is None:
            from torchvision import datasets, transforms
            self._tv = datasets.MNIST(root=str(self.data_dir), train=True, download=False,
                                      transform=transforms.ToTensor())
        return self._tv

    def checkpoint_dir(self) -> Path:
        self._n += 1
        return self.scratch / f"ckpt{self._n}"

    def setup(self, family: str, variant: str, as_written: bool = False):
        """A fresh model with the optimizer, schedule, loss and batches of the family's experiment (its main
        stage); `as_written`: as a notebook would have them (fp32, the default memory format and torch.optim's
        default Adam implementation instead of the fused one)."""
        import torch
        setup = capture(self.cfg, family, variant, device=self.device, data_dir=self.data_dir,
                        checkpoint_dir=self.checkpoint_dir(), precision="fp32" if as_written else self.precision)
        if as_written:
            setup.model = setup.model.to(memory_format=torch.contiguous_format)
            for group in setup.optimizer.param_groups:  # before any step, so no state depends on the implementation
                group["fused"], group["foreach"] = None, None
        return setup

    def ours(self, batch_size: int) -> Iterator:
        """The image families' data path (`experiments.common.shuffled`) over the full training set, alone."""
        from ..experiments.common import shuffled
        from ..train import RunContext
        p = params_for(self.cfg, "cnn", REFERENCE["cnn"])
        x, y = _cached_splits(p["dataset"], self.data_dir, p["val_size"], p["split_seed"]).to(self.device).train
        ctx = RunContext(family="data", variant="path", seed=0, params={"batch_size": batch_size},
                         device=self.device, checkpoint_dir=self.checkpoint_dir(), log=lambda msg: None)
        make = shuffled(ctx, "bench", x, y)
        epoch = 0
        while True:
            epoch += 1
            yield from make(epoch)

    def notebook(self, batch_size: int, labels: bool) -> Iterator:
        from torch.utils.data import DataLoader
        loader = DataLoader(self.torchvision_set(), batch_size=batch_size, shuffle=True)
        dev = self.device
        while True:
            for xb, yb in loader:
                xb = xb.to(dev)
                yield (xb, yb.to(dev)) if labels else xb

    def train_seconds(self, family: str, variant: str, path: str, steps: int) -> float:
        """Fresh model; `warmup` steps, then `steps` timed steps through `fit`, the loop every run uses.
        Paths: "ours" and "notebook" differ in the data path only; "as_written" is the notebook data path with
        fp32, the default memory format and torch.optim's default Adam: a notebook as people write it."""
        from ..train import fit
        labels = family != "autoencoder"
        s = self.setup(family, variant, as_written=path == "as_written")
        stream = s.stream() if path == "ours" else self.notebook(s.params["batch_size"], labels)
        ctx = s.ctx
        with _quiet_stderr():
            if self.st.warmup:
                fit(s.model, s.optimizer, ctx=ctx, epochs=1, stage="warmup",
                    batches=lambda e: islice(stream, self.st.warmup), loss_fn=s.loss_fn, scheduler=s.scheduler)
            row = fit(s.model, s.optimizer, ctx=ctx, epochs=1, stage="timed", batches=lambda e: islice(stream, steps),
                      loss_fn=s.loss_fn, scheduler=s.scheduler)[-1]
        shutil.rmtree(ctx.checkpoint_dir, ignore_errors=True)
        return row["seconds"]

    def family(self, family: str) -> dict:
        variant = REFERENCE[family]
        params = params_for(self.cfg, family, variant)
        bs = params["batch_size"]
        st = self.st
        limit = self.setup(family, variant).step_limit()  # what the experiment's schedule allows
        limit = None if limit is None else max(1, limit - st.warmup)

        # Size each measurement on our path (the faster one) so it lasts about `seconds`; both paths of a pair run
        # the same steps. Re-sized after every pair from its own timing, since the background load drifts.
        def sized(seconds_per_step: float) -> int:
            return st.sized(seconds_per_step, limit)

        probe = max(st.min_steps // 2, 3)
        steps = sized(self.train_seconds(family, variant, "ours", probe) / probe)
        paths = ("ours", "notebook", "as_written")
        runs: dict[str, list[float]] = {path: [] for path in paths}
        ratios, end_to_end, all_steps = [], [], []
        for r in range(st.repeats):
            order = paths[r % 3:] + paths[:r % 3]  # none always goes first
            rate = {}
            for path in order:
                rate[path] = steps * bs / self.train_seconds(family, variant, path, steps)
                runs[path].append(round(rate[path], 1))
            ratios.append(rate["ours"] / rate["notebook"])
            end_to_end.append(rate["ours"] / rate["as_written"])
            all_steps.append(steps)
            steps = sized(bs / rate["ours"])
        out = {
            "variant": variant, "batch_size": bs, "steps": all_steps, "repeats": st.repeats,
            "ours_images_per_s": round(_median(runs["ours"]), 1),
            "notebook_images_per_s": round(_median(runs["notebook"]), 1),
            # Median of paired ratios: load that drifts between repeats cancels within a pair.
            "ratio": round(_median(ratios), 3),
            "ours_runs": runs["ours"], "notebook_runs": runs["notebook"],
            "precision": self.precision,
            "as_written_images_per_s": round(_median(runs["as_written"]), 1),
            "as_written_runs": runs["as_written"],
            "end_to_end_ratio": round(_median(end_to_end), 3),
        }
        if family in TARGET_RATIO:
            # Judged against the notebook as people write it; "ratio" (same engine) is the data path's share.
            out["target_ratio"] = TARGET_RATIO[family]
            out["meets_target"] = out["end_to_end_ratio"] >= TARGET_RATIO[family]
        return out

    def data_only(self, batch_size: int) -> dict:
        """Images/s of producing float batches alone: the cost each data path adds to every step. Each path is
        timed over its own number of batches (sized to its speed): these are rates, with no training to share."""
        streams = {"ours": lambda: self.ours(batch_size), "notebook": lambda: self.notebook(batch_size, True)}
        runs: dict[str, list[float]] = {"ours": [], "notebook": []}
        for path, make in streams.items():
            stream = make()
            for _ in islice(stream, self.st.warmup):
                pass
            t0 = time.perf_counter()
            probe = 0
            while time.perf_counter() - t0 < self.st.seconds / 10 or probe < 3:
                next(stream)
                probe += 1
            per_batch = (time.perf_counter() - t0) / probe
            steps = max(3, math.ceil(self.st.seconds / 2 / per_batch))
            for _ in range(self.st.repeats):
                t0 = time.perf_counter()
                for _ in islice(stream, steps):
                    pass
                _sync(self.device)
                runs[path].append(round(steps * batch_size / (time.perf_counter() - t0), 1))
        ours, nb = _median(runs["ours"]), _median(runs["notebook"])
        return {"batch_size": batch_size, "ours_images_per_s": round(ours, 1), "notebook_images_per_s": round(nb, 1),
                "ratio": round(ours / nb, 2), "ours_runs": runs["ours"], "notebook_runs": runs["notebook"]}


def bench_throughput(cfg: dict, st: Settings, device, data_dir: Path, scratch: Path) -> tuple[dict, dict]:
    import torch
    bench = _ImageBench(cfg, device, data_dir, st, scratch)
    out = {}
    for family in REFERENCE:
        torch.set_num_threads(family_threads(cfg, st, family))
        out[family] = bench.family(family)
        out[family]["threads"] = torch.get_num_threads()
    sizes = sorted({v["batch_size"] for v in out.values()})
    data = {"by_batch_size": [bench.data_only(bs) for bs in sizes]}
    return out, data


# ----------------------------------------------------------------------------------------------- g2p

def _naive_batches(pairs, src_vocab, tgt_vocab, batch_size: int, seed: int) -> list[tuple]:
    """The same batches (same order, same tensors) built the plain-Python way: pad each word's list by hand."""
    import torch
    from ..data.cmudict import PAD
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed)).tolist()
    out = []
    for start in range(0, len(order), batch_size):
        chunk = [pairs[i] for i in order[start:start + batch_size]]
        src = [src_vocab.encode(list(w)) for w, _ in chunk]
        tgt_in = [tgt_vocab.encode(p, add_bos=True) for _, p in chunk]
        tgt_out = [tgt_vocab.encode(p, add_eos=True) for _, p in chunk]
        padded = []
        for rows in (src, tgt_in, tgt_out):
            width = max(len(r) for r in rows)
            padded.append(torch.tensor([r + [PAD] * (width - len(r)) for r in rows], dtype=torch.long))
        out.append((padded[0], torch.tensor([len(s) for s in src]), padded[1], padded[2]))
    return out


def load_g2p_data(st: Settings):
    """CMUdict as the g2p benchmarks use it (`--quick`: the first 2,000 training words); (data, seconds)."""
    from ..data import cmudict as cd
    t0 = time.perf_counter()
    data = cd.load_g2p(limit_train=st.g2p_words)
    return data, time.perf_counter() - t0


def bench_g2p(cfg: dict, st: Settings, device, scratch: Path, data=None) -> dict:
    """Words/s of g2p training with the family's own batches (length-bucketed, built inside the loop, as in a run)
    and with plain pre-built batches in random order; and the batching alone against a naive padding loop."""
    import torch
    from ..data import cmudict as cd
    from ..train import fit

    torch.set_num_threads(family_threads(cfg, st, "g2p"))
    p = params_for(cfg, "g2p", G2P_VARIANT, full_data=False)
    load_s = 0.0
    if data is None:
        data, load_s = load_g2p_data(st)
    pairs = cd.expand_pairs(data.train)
    bs = p["batch_size"]

    builders = {"ours": lambda seed: cd.make_batches(pairs, data.graphemes, data.phonemes, bs, shuffle=True, seed=seed),
                "naive": lambda seed: _naive_batches(pairs, data.graphemes, data.phonemes, bs, seed)}
    batching: dict[str, list[float]] = {"ours": [], "naive": []}
    for r in range(st.repeats):
        for name in (("ours", "naive") if r % 2 == 0 else ("naive", "ours")):
            t0 = time.perf_counter()
            builders[name](r)
            batching[name].append(round(len(pairs) / (time.perf_counter() - t0), 1))

    prebuilt = [b.to(device) for b in builders["ours"](0)]
    measured = 0

    def stream(path: str, setup) -> Iterator:
        if path == "family":  # the experiment's own train_batches
            yield from setup.stream()
        while True:
            yield from prebuilt

    def words_per_s(path: str, steps: int) -> float:
        nonlocal measured
        measured += 1
        s = capture(cfg, "g2p", G2P_VARIANT, device=device, data_dir=Path(cfg["data_dir"]),
                    checkpoint_dir=scratch / f"g2p{measured}", precision=_precision(cfg, st, device), params=p,
                    g2p_data=data)
        batches = stream(path, s)
        words = 0

        def timed_batches(epoch):
            nonlocal words
            for b in islice(batches, steps):
                words += len(b.words)
                yield b
        with _quiet_stderr():
            fit(s.model, s.optimizer, ctx=s.ctx, epochs=1, stage="warmup",
                batches=lambda e: islice(batches, st.warmup or 1), loss_fn=s.loss_fn, scheduler=s.scheduler)
            row = fit(s.model, s.optimizer, ctx=s.ctx, epochs=1, stage="timed", batches=timed_batches,
                      loss_fn=s.loss_fn, scheduler=s.scheduler)[-1]
        shutil.rmtree(s.ctx.checkpoint_dir, ignore_errors=True)
        return words / row["seconds"]

    probe = max(st.min_steps // 4, 2)
    steps = int(min(st.max_steps, max(st.min_steps // 2, 2,
                                      math.ceil(st.seconds * words_per_s("family", probe) / bs))))
    runs: dict[str, list[float]] = {"family": [], "plain": []}
    ratios = []
    for r in range(st.repeats):
        rate = {}
        for path in (("family", "plain") if r % 2 == 0 else ("plain", "family")):
            rate[path] = words_per_s(path, steps)
            runs[path].append(round(rate[path], 1))
        ratios.append(rate["family"] / rate["plain"])
    train = _median(runs["family"])
    ours_rate, naive_rate = _median(batching["ours"]), _median(batching["naive"])
    return {
        "variant": G2P_VARIANT, "batch_size": bs, "steps": steps, "pairs": len(pairs), "words": len(data.train),
        "threads": torch.get_num_threads(), "load_seconds": round(load_s, 2),
        "train_words_per_s": round(train, 1), "train_runs": runs["family"],
        "plain_train_words_per_s": round(_median(runs["plain"]), 1), "plain_train_runs": runs["plain"],
        "bucketing_ratio": round(_median(ratios), 3),
        "batching_words_per_s": round(ours_rate, 1), "batching_runs": batching["ours"],
        "naive_batching_words_per_s": round(naive_rate, 1), "naive_batching_runs": batching["naive"],
        "batching_ratio": round(ours_rate / naive_rate, 3),
        "unit": "word-pronunciation pairs (a word with two pronunciations counts twice)",
        "paths": {"family": "pipeline.experiments.g2p.train_batches: length-bucketed, built per batch in the loop",
                  "model": "captured from pipeline.experiments.g2p.run (build, Adam, final_anneal schedule)",
                  "plain": "make_batches in random order, built before timing"},
    }


