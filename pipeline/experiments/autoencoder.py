"""MLP autoencoder on MNIST, scored by per-pixel test MSE against PCA with as many components."""
from __future__ import annotations

import torch
from torch.nn import functional as F

from ..models.autoencoder import Autoencoder
from ..run import RunOutput
from ..train import RunContext, fit, images_to_float
from .common import adam_for, count_params, load_splits, shuffled


@torch.inference_mode()
def mse(model, x: torch.Tensor, batch_size: int = 2000) -> float:
    total = torch.zeros((), device=x.device, dtype=torch.float64)
    for chunk in x.split(batch_size):
        xb = images_to_float(chunk)
        total += F.mse_loss(model(xb).float(), xb, reduction="sum").double()
    return total.item() / x[0].numel() / len(x)


@torch.inference_mode()
def pca_mse(train: torch.Tensor, test: torch.Tensor, k: int) -> float:
    """Reconstruction MSE of the best rank-k linear code fitted on the training images (float64)."""
    xtr = train.reshape(len(train), -1).double() / 255
    xte = test.reshape(len(test), -1).double() / 255
    mean = xtr.mean(0)
    _, vecs = torch.linalg.eigh((xtr - mean).T @ (xtr - mean))
    basis = vecs[:, -k:]  # eigh sorts eigenvalues ascending
    centred = xte - mean
    recon = centred @ basis @ basis.T
    return ((centred - recon) ** 2).mean().item()


def build(p: dict) -> Autoencoder:
    # A linear code: a ReLU there leaves dead code units at small encoding sizes, which PCA would then beat.
    return Autoencoder(p["encoding_dim"], p.get("hidden", []), relu_code=False)


def run(ctx: RunContext) -> RunOutput:
    p = ctx.params
    data = load_splits(ctx)
    model = build(p).to(ctx.device)
    fit(model, adam_for(model, p), ctx=ctx, epochs=p["epochs"], batches=shuffled(ctx, "train", data.train[0]),
        loss_fn=lambda m, xb: F.mse_loss(m(xb), xb), evaluate=lambda m: {"val_mse": mse(m, data.val[0])})
    metrics = {
        "test_mse": mse(model, data.test[0]),
        "val_mse": mse(model, data.val[0]),
        "pca_test_mse": pca_mse(data.train[0], data.test[0], p["encoding_dim"]),
        "encoding_dim": p["encoding_dim"],
        "params": count_params(model),
    }
    return RunOutput(metrics=metrics, model=model)
