"""Vision Transformer variants on MNIST (vit-pytorch), from tiny to large, including the patch size."""
from __future__ import annotations

from ..models.vit import ViTClassifier
from ..run import RunOutput
from ..train import RunContext
from .common import classifier_metrics, load_splits, one_cycle, train_classifier


def build(p: dict) -> ViTClassifier:
    return ViTClassifier(patch_size=p["patch_size"], dim=p["dim"], depth=p["depth"], heads=p["heads"],
                         mlp_dim=p["mlp_dim"], dropout=p.get("dropout", 0.0))


def run(ctx: RunContext) -> RunOutput:
    p = ctx.params
    data = load_splits(ctx)
    model = build(p).to(ctx.device)
    opt, sched = one_cycle(model, p, len(data.train[0]), adamw=True)
    train_classifier(ctx, model, data, optimizer=opt, scheduler=sched)
    metrics, predictions = classifier_metrics(model, data)
    return RunOutput(metrics=metrics, model=model, predictions=predictions)
