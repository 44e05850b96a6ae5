"""Stacked autoencoder: greedy layer-wise pretraining pieces and the fine-tuned classifier.

Typical use: train ``DenseAE(784, h1, sigmoid_output=True)`` on pixels, then
``DenseAE(h1, h2)`` on the codes of the first one, and so on; copy their encoders into a
``StackedEncoder`` with ``load_pretrained`` and put a ``StackedClassifier`` head on top.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class DenseAE(nn.Module):
    """One-layer autoencoder: Linear+ReLU encoder, Linear decoder.

    Only the first layer of the stack reconstructs pixels in [0, 1], so only it should use
    ``sigmoid_output=True``; deeper layers reconstruct non-negative ReLU codes of unbounded size,
    which a sigmoid could not reach.
    """

    def __init__(self, in_dim: int, out_dim: int, sigmoid_output: bool = False):
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.sigmoid_output = sigmoid_output
        self.encoder = nn.Sequential(nn.Linear(in_dim, out_dim), nn.ReLU())
        dec: list[nn.Module] = [nn.Linear(out_dim, in_dim)]
        if sigmoid_output:
            dec.append(nn.Sigmoid())
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.reshape(x.shape[0], -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(x)).reshape(x.shape)


class StackedEncoder(nn.Module):
    """Linear+ReLU layers in_dim -> layers[0] -> ... -> layers[-1]."""

    def __init__(self, layers: Sequence[int], in_dim: int = 784, dropout: float = 0.0):
        super().__init__()
        if not layers:
            raise ValueError("StackedEncoder needs at least one layer")
        self.in_dim = in_dim
        self.dims = [in_dim, *layers]
        self.out_dim = self.dims[-1]
        self.layers = nn.ModuleList(
            # Dropout after each layer regularises supervised training; autoencoder weights load into [0] alike.
            nn.Sequential(nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout))
            for a, b in zip(self.dims[:-1], self.dims[1:])
        )

    @torch.no_grad()
    def load_pretrained(self, aes: Sequence[DenseAE]) -> "StackedEncoder":
        """Copy the encoder weights of pretrained DenseAEs, first layer first.

        Fewer autoencoders than layers is allowed (the remaining layers keep their random
        initialisation); shapes must match exactly.
        """
        if len(aes) > len(self.layers):
            raise ValueError(f"{len(aes)} autoencoders for {len(self.layers)} layers")
        for i, (layer, ae) in enumerate(zip(self.layers, aes)):
            src, dst = ae.encoder[0], layer[0]
            if src.weight.shape != dst.weight.shape:
                raise ValueError(f"layer {i}: DenseAE encoder {tuple(src.weight.shape)} "
                                 f"does not fit {tuple(dst.weight.shape)}")
            dst.weight.copy_(src.weight)
            dst.bias.copy_(src.bias)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(x.shape[0], -1)
        for layer in self.layers:
            h = layer(h)
        return h


class StackedClassifier(nn.Module):
    """Encoder followed by a linear classification head (logits)."""

    def __init__(self, encoder: StackedEncoder, n_classes: int = 10):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.out_dim, n_classes)

    def freeze_encoder(self, flag: bool = True) -> "StackedClassifier":
        # Frozen = only the head trains, which measures how linearly separable the pretrained
        # features are; unfrozen = full fine-tuning.
        for p in self.encoder.parameters():
            p.requires_grad_(not flag)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))
