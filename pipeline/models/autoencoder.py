"""Fully connected autoencoder for flattened MNIST digits."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _mlp(dims: Sequence[int], last_activation: nn.Module | None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    if last_activation is not None:
        layers.append(last_activation)
    return nn.Sequential(*layers)


class Autoencoder(nn.Module):
    """Encoder in_dim -> *hidden -> encoding_dim, decoder mirrored back to in_dim.

    The code layer has a ReLU by default, as in the classic Keras MNIST autoencoder the
    assignment is modelled on; ``relu_code=False`` leaves the code linear, which avoids dead
    code units when ``encoding_dim`` is very small. The sigmoid output matches pixels in [0, 1].
    """

    def __init__(self, encoding_dim: int, hidden: Sequence[int] = (), in_dim: int = 784,
                 relu_code: bool = True):
        super().__init__()
        self.in_dim = in_dim
        self.encoding_dim = encoding_dim
        self.hidden = tuple(hidden)
        enc_dims = [in_dim, *self.hidden, encoding_dim]
        self.encoder = _mlp(enc_dims, nn.ReLU() if relu_code else None)
        self.decoder = _mlp(enc_dims[::-1], nn.Sigmoid())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.reshape(x.shape[0], -1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)).reshape(x.shape)
