"""CNN variants on MNIST: accuracy against parameters and multiply-accumulates (counted by the aggregate)."""
from __future__ import annotations

import torch

from ..models.cnn import CNN
from ..run import RunOutput
from ..train import RunContext
from .common import classifier_metrics, load_splits, one_cycle, train_classifier


def build(p: dict) -> CNN:
    # channels_last: oneDNN's convolutions and pooling run 1.2-2x faster in it on CPU (bench), as cuDNN's do on GPU.
    return CNN(p["channels"], kernel=p["kernel"], pool=p["pool"], batch_norm=p["batch_norm"],
               dropout=p["dropout"], head=p["head"]).to(memory_format=torch.channels_last)


def run(ctx: RunContext) -> RunOutput:
    data = load_splits(ctx)
    model = build(ctx.params).to(ctx.device)
    opt, sched = one_cycle(model, ctx.params, len(data.train[0]))
    train_classifier(ctx, model, data, optimizer=opt, scheduler=sched)
    metrics, predictions = classifier_metrics(model, data)
    return RunOutput(metrics=metrics, model=model, predictions=predictions)
