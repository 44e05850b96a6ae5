"""Pieces the image families share: their data split, shuffled batches, and evaluation."""
from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch import nn

from .. import train
from ..data import images
from ..train import RunContext, batch_indices, epoch_seed, images_to_float


def load_splits(ctx: RunContext) -> images.Splits:
    p = ctx.params
    return images.splits(p["dataset"], ctx.data_dir, val_size=p["val_size"], split_seed=p["split_seed"],
                         train_limit=p.get("train_limit"), eval_limit=p.get("eval_limit")).to(ctx.device)


def shuffled(ctx: RunContext, stage: str, x: torch.Tensor, y: torch.Tensor | None = None,
             batch_size: int | None = None) -> Callable[[int], Iterator]:
    """batches(epoch) for `fit`: float images (and labels), reshuffled per epoch from the run seed."""
    bs = batch_size or ctx.params["batch_size"]

    def batches(epoch: int):
        for idx in batch_indices(len(x), bs, shuffle=True, seed=epoch_seed(ctx.seed, stage, epoch), device=x.device):
            # index_select: a row gather ~10x cheaper per batch than advanced indexing's general path.
            xb = images_to_float(x.index_select(0, idx))
            yield xb if y is None else (xb, y.index_select(0, idx))
    return batches


def cross_entropy(model: nn.Module, batch) -> torch.Tensor:
    xb, yb = batch
    return nn.functional.cross_entropy(model(xb), yb)


def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    return train.predict_classes(model, x, prepare=images_to_float, batch_size=batch_size)


def hit_rate(predicted: torch.Tensor, y: torch.Tensor) -> float:
    """The share of predictions equal to the labels; counts stay on the device until the end."""
    return (predicted == y).sum().item() / max(len(y), 1)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Classification accuracy on uint8 images."""
    return hit_rate(predict(model, x, batch_size), y)


def class_predictions(predicted: torch.Tensor) -> dict:
    """The predicted class of every test image, for review (`pipeline diff` counts the ones that changed)."""
    return {"split": "test", "kind": "class", "values": predicted.cpu().tolist()}


def predictions_on_test(model: nn.Module, data: images.Splits) -> dict:
    return class_predictions(predict(model, data.test[0]))


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def adam_for(model: nn.Module, params: dict) -> torch.optim.Optimizer:
    """train.adam over the model's parameters, at the run's rate and weight decay."""
    return train.adam(model.parameters(), params["lr"], params.get("weight_decay", 0.0))


def train_subset(x: torch.Tensor, y: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n training examples: a fixed sample for train accuracy, so the train/test gap is comparable."""
    return x[:n], y[:n]


def train_classifier(ctx: RunContext, model: nn.Module, data: images.Splits, *, stage: str = "train",
                     epochs: int | None = None, x=None, y=None, optimizer=None, scheduler=None,
                     batch_size: int | None = None) -> None:
    """Cross-entropy training with validation accuracy after every epoch."""
    x = data.train[0] if x is None else x
    y = data.train[1] if y is None else y
    from ..train import fit
    fit(model, optimizer or adam_for(model, ctx.params), ctx=ctx, stage=stage,
        epochs=ctx.params["epochs"] if epochs is None else epochs,
        batches=shuffled(ctx, stage, x, y, batch_size), loss_fn=cross_entropy, scheduler=scheduler,
        evaluate=lambda m: {"val_acc": accuracy(m, *data.val)})


def classifier_metrics(model: nn.Module, data: images.Splits) -> tuple[dict, dict]:
    """Test, validation and train-subset accuracy, and the test predictions for review: the test images are
    classified once for both, not once more for the predictions."""
    test = predict(model, data.test[0])
    metrics = {"test_acc": hit_rate(test, data.test[1]), "val_acc": accuracy(model, *data.val),
               "train_acc": accuracy(model, *train_subset(*data.train, len(test))), "params": count_params(model)}
    return metrics, class_predictions(test)


def one_cycle(model: nn.Module, params: dict, n_train: int, adamw: bool = False):
    """Adam(W) with a one-cycle schedule (warm-up, then decay) over the whole run: it converges in the few
    epochs a CPU budget allows, for CNNs and (even more so) for transformers trained from scratch."""
    opt = train.adam(model.parameters(), params["lr"], params.get("weight_decay", 0.0), decoupled=adamw)
    steps = -(-n_train // params["batch_size"]) * max(params["epochs"], 1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=params["lr"], total_steps=steps, pct_start=0.15)
    return opt, sched
