"""The model, optimizer, schedule, loss and batches each family's experiment trains, taken from the experiment itself.

The benchmark builds nothing by hand: `capture` runs `pipeline.experiments.<family>.run(ctx)` with the variant's
parameters (`pipeline.config.variant_params`), with `fit` replaced by a stand-in that skips every earlier stage and
stops at the family's main training stage, handing back exactly what `fit` would have been given. A change to an
experiment (a layer, dropout, the optimizer, the schedule, the batches) is therefore measured without touching the
benchmark. Each family's `run` builds its model with the experiment's `build(params)`, found through
pipeline/registry.py; the stacked classifier's fine-tuned model is built in `run` from its layer-wise pretraining, whose
`fit` calls are skipped, so its encoder holds untrained autoencoder weights: the same shapes and the same step.
"""
from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from unittest import mock

from .. import config as cfglib
from .. import registry

# The stage whose steps make up most of a family's training time, i.e. the one its throughput is about.
MAIN_STAGE = {"autoencoder": "train", "stacked": "finetune", "cnn": "train", "vit": "train", "lr_study": "train",
              "g2p": "train"}
# The variant measured per family (the LR study's variants differ in the rate only: the same reference CNN).
REFERENCE = {"autoencoder": "ae32", "stacked": "sae512_256_128", "cnn": "base", "vit": "small",
             "lr_study": "lr5e-4", "g2p": "attention"}


@dataclass
class Setup:
    """What `fit` receives in the family's main stage."""
    family: str
    variant: str
    stage: str
    params: dict
    ctx: Any                      # the RunContext the experiment ran with
    model: Any
    optimizer: Any
    scheduler: Any
    loss_fn: Callable
    batches: Callable[[int], Any]  # batches(epoch), the experiment's own data path
    steps_per_epoch: int | None = None
    epochs: int | None = None      # the stage's epochs in the run
    extra: dict = field(default_factory=dict)

    def stream(self):
        """The experiment's batches, epoch after epoch, without end."""
        epoch = 0
        while True:
            epoch += 1
            yield from self.batches(epoch)

    def step_limit(self) -> int | None:
        """Steps the schedule allows (OneCycleLR refuses to step past its end); None: no limit."""
        total = getattr(self.scheduler, "total_steps", None)
        return None if total is None else total - 1


class _Captured(Exception):
    def __init__(self, setup: Setup):
        super().__init__(setup.stage)
        self.setup = setup


@functools.lru_cache(maxsize=8)
def _splits(name: str, data_dir: str, val_size: int, split_seed: int, train_limit, eval_limit):
    from ..data import images
    load = _ORIGINAL_SPLITS.get("fn", images.splits)
    return load(name, Path(data_dir), val_size=val_size, split_seed=split_seed, train_limit=train_limit,
                eval_limit=eval_limit)


_ORIGINAL_SPLITS: dict = {}  # images.splits itself, while `capture` has it replaced by _cached_splits


def _cached_splits(name, data_dir, val_size=5000, split_seed=1234, train_limit=None, eval_limit=None):
    # One load per process: every measurement captures a fresh model, not fresh data.
    return _splits(name, str(data_dir), val_size, split_seed, train_limit, eval_limit)


def params_for(cfg: dict, family: str, variant: str, full_data: bool = True) -> dict:
    """The variant's parameters as a run gets them; `full_data` drops the profile's train_limit, so a 1,500-image
    smoke subset does not sit in cache and flatter the data path (it changes the data, not the step)."""
    p = cfglib.variant_params(cfg, family, variant)
    if full_data:
        p["train_limit"] = None
    return p


def capture(cfg: dict, family: str, variant: str | None = None, *, device, data_dir: Path, checkpoint_dir: Path,
            precision: str, params: dict | None = None, g2p_data=None, seed: int = 0) -> Setup:
    """Run the family's experiment up to its main training stage and return what that stage trains.

    `g2p_data`: an already loaded `G2PData` to use instead of loading CMUdict again (vocabularies do not depend on
    its size)."""
    variant = variant or REFERENCE[family]
    p = params if params is not None else params_for(cfg, family, variant)
    target = MAIN_STAGE[family]

    def stop_at_target(setup: Setup) -> None:
        if setup.stage == target:
            raise _Captured(setup)

    try:
        trace(cfg, family, variant, device=device, data_dir=data_dir, checkpoint_dir=checkpoint_dir,
              precision=precision, params=p, on_stage=stop_at_target, g2p_data=g2p_data, seed=seed)
    except _Captured as got:
        return got.setup
    module = registry.family(family).experiment_module
    raise RuntimeError(f"{module}.run finished without a {target!r} stage to measure")


def trace(cfg: dict, family: str, variant: str, *, device, data_dir: Path, checkpoint_dir: Path, precision: str,
          params: dict, on_stage: Callable[[Setup], None], g2p_data=None, seed: int = 0) -> None:
    """Run the variant's experiment to its end with no training: each `fit` hands its stage to `on_stage` (while the
    model is as that stage trains it: frozen layers frozen) and returns untrained. What follows the training
    (evaluation, analyses) runs on the untrained models: keep it cheap with a small `eval_limit` in `params`."""
    from .. import train
    from ..data import images
    from ..train import RunContext

    def fake_fit(model, optimizer, *, ctx, epochs, batches, loss_fn, evaluate=None, stage="train",
                 steps_per_epoch=None, scheduler=None):
        on_stage(Setup(family=family, variant=variant, stage=stage, params=params, ctx=ctx, model=model,
                       optimizer=optimizer, scheduler=scheduler, loss_fn=loss_fn, batches=batches,
                       steps_per_epoch=steps_per_epoch, epochs=epochs))
        model.eval()
        return []

    exp = registry.family(family).experiment()
    ctx = RunContext(family=family, variant=variant, seed=seed, params=params, device=device,
                     checkpoint_dir=Path(checkpoint_dir), data_dir=Path(data_dir), precision=precision,
                     log=lambda msg: None)
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(train, "fit", fake_fit))
        if hasattr(exp, "fit"):  # imported by name at the top of the experiment
            stack.enter_context(mock.patch.object(exp, "fit", fake_fit))
        _ORIGINAL_SPLITS.setdefault("fn", images.splits)
        stack.enter_context(mock.patch.object(images, "splits", _cached_splits))
        if g2p_data is not None and hasattr(exp, "load_g2p"):
            stack.enter_context(mock.patch.object(exp, "load_g2p", lambda *a, **k: g2p_data))
        train.seed_everything(seed)  # as pipeline.run.execute does before `run`
        exp.run(ctx)
