"""Stacked autoencoder: greedy layer-wise pretraining, a classifier on the deepest codes, then fine-tuning.

One run per architecture measures every condition the report compares, all sharing one pretraining:
frozen pretrained encoder + classifier, fine-tuned stack, the same network from random initialisation with the
same supervised budget, and all three again with few labels (pretraining still uses every training image).
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from ..models.stacked import DenseAE, StackedClassifier, StackedEncoder
from ..run import RunOutput
from ..train import RunContext, batch_indices, epoch_seed, fit, images_to_float
from .common import accuracy, adam_for, count_params, load_splits, one_cycle, predictions_on_test, train_classifier


FEW_LABEL_BATCH = 32


def build(p: dict) -> StackedClassifier:
    """The classifier a run keeps (model.pt), untrained: the encoder's layers and the head."""
    return StackedClassifier(StackedEncoder(p["layers"], dropout=p.get("dropout", 0.0)))


def _flat(x: torch.Tensor) -> torch.Tensor:
    return images_to_float(x).flatten(1)


def corrupt(x: torch.Tensor, fraction: float) -> torch.Tensor:
    """Masking noise (denoising autoencoders): zero a random fraction of the inputs; the target stays clean."""
    if fraction <= 0:
        return x
    return x * (torch.rand_like(x) >= fraction)


def pretrain(ctx: RunContext, x_train: torch.Tensor) -> list[DenseAE]:
    """Each layer is an autoencoder of the previous layer's codes; the first reconstructs pixels."""
    p = ctx.params
    dims = [784, *p["layers"]]
    aes: list[DenseAE] = []
    codes = None  # float codes of the previous layer for all training images (None: the uint8 pixels)
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
        ae = DenseAE(d_in, d_out, sigmoid_output=(i == 0)).to(ctx.device)
        source = x_train if codes is None else codes
        stage = f"pretrain{i + 1}"

        def batches(epoch, source=source, stage=stage):
            for idx in batch_indices(len(source), p["batch_size"], shuffle=True,
                                     seed=epoch_seed(ctx.seed, stage, epoch), device=source.device):
                yield _flat(source[idx]) if source.dtype == torch.uint8 else source[idx]

        fit(ae, adam_for(ae, p), ctx=ctx, epochs=p["pretrain_epochs"], batches=batches, stage=stage,
            loss_fn=lambda m, xb: F.mse_loss(m(corrupt(xb, p.get("noise", 0.0))), xb))
        with torch.inference_mode():
            parts = [ae.encode(_flat(c) if c.dtype == torch.uint8 else c) for c in source.split(4096)]
            codes = torch.cat(parts).clone()
        aes.append(ae)
    return aes


def few_label_subset(ctx: RunContext, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    n = max(10, round(ctx.params["few_labels"] * len(x)))
    # Fixed by the run seed, and independent of the training stream, so every condition sees the same labels.
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(10_000 + ctx.seed))[:n].to(x.device)
    return x[idx], y[idx]


def _conditions(ctx: RunContext, aes, data, x, y, epochs_frozen: int, epochs_tune: int, prefix: str,
                batch_size: int | None = None) -> dict:
    """frozen -> fine-tuned (continuing from frozen) and random init with the same supervised epochs."""
    p = ctx.params
    kw = {"x": x, "y": y, "batch_size": batch_size}
    drop = p.get("dropout", 0.0)

    def optimizer(model, epochs):
        """Adam, with the family's schedule; fine-tuning and random init always get the same one."""
        if p.get("schedule", "constant") == "constant":
            return {"optimizer": adam_for(model, p)}
        opt, sched = one_cycle(model, {**p, "epochs": epochs, "batch_size": batch_size or p["batch_size"]}, len(x))
        return {"optimizer": opt, "scheduler": sched}

    clf = StackedClassifier(StackedEncoder(p["layers"], dropout=drop).load_pretrained(aes)).to(ctx.device)
    clf.freeze_encoder(True)
    head_opt = adam_for(clf.head, {"lr": p["lr"]})
    train_classifier(ctx, clf, data, stage=f"{prefix}frozen", epochs=epochs_frozen, optimizer=head_opt, **kw)
    out = {f"{prefix}acc_frozen": accuracy(clf, *data.test)}
    clf.freeze_encoder(False)
    train_classifier(ctx, clf, data, stage=f"{prefix}finetune", epochs=epochs_tune, **optimizer(clf, epochs_tune),
                     **kw)
    out[f"{prefix}acc_finetuned"] = accuracy(clf, *data.test)
    out[f"{prefix}val_acc_finetuned"] = accuracy(clf, *data.val)  # the report picks architectures on this
    rand = build(p).to(ctx.device)
    train_classifier(ctx, rand, data, stage=f"{prefix}random", epochs=epochs_frozen + epochs_tune,
                     **optimizer(rand, epochs_frozen + epochs_tune), **kw)
    out[f"{prefix}acc_random"] = accuracy(rand, *data.test)
    return out, clf


def run(ctx: RunContext) -> RunOutput:
    p = ctx.params
    data = load_splits(ctx)
    x, y = data.train
    aes = pretrain(ctx, x)
    metrics, model = _conditions(ctx, aes, data, x, y, p["classifier_epochs"], p["finetune_epochs"], "")
    xf, yf = few_label_subset(ctx, x, y)
    few_epochs = p["few_label_epochs"]
    # Smaller batches with few labels, so every condition still gets a few hundred optimizer steps.
    few, _ = _conditions(ctx, aes, data, xf, yf, max(1, few_epochs // 3), few_epochs - max(1, few_epochs // 3),
                         "few_", batch_size=FEW_LABEL_BATCH)
    metrics.update(few)
    metrics.update({"params": count_params(model), "n_labels": len(y), "n_labels_few": len(yf),
                    "depth": len(p["layers"])})
    metrics["pretrain_gain"] = metrics["acc_finetuned"] - metrics["acc_random"]
    metrics["few_pretrain_gain"] = metrics["few_acc_finetuned"] - metrics["few_acc_random"]
    return RunOutput(metrics=metrics, model=model, predictions=predictions_on_test(model, data))
