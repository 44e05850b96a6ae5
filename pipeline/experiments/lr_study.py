"""Learning-rate study: the fixed reference CNN trained with plain Adam at one learning rate per variant.

No schedule and no weight decay: a schedule would change the effective rate over training and blur the
very comparison the study is about.
"""
from __future__ import annotations

import torch

from ..models.reference_cnn import ReferenceCNN
from ..run import RunOutput
from ..train import RunContext
from .common import adam_for, classifier_metrics, load_splits, train_classifier


def build(p: dict | None = None) -> ReferenceCNN:
    return ReferenceCNN().to(memory_format=torch.channels_last)  # faster convolutions, as in the CNN family


def run(ctx: RunContext) -> RunOutput:
    data = load_splits(ctx)
    model = build(ctx.params).to(ctx.device)
    opt = adam_for(model, {"lr": ctx.params["lr"]})
    train_classifier(ctx, model, data, optimizer=opt)
    metrics, predictions = classifier_metrics(model, data)
    metrics["lr"] = float(ctx.params["lr"])
    metrics.update(n_train=len(data.train[0]), n_val=len(data.val[0]), n_test=len(data.test[0]))
    return RunOutput(metrics=metrics, model=model, predictions=predictions)
