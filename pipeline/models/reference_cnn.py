"""The reference network of the learning-rate study (assignment hw2, question 2).

Fixed on purpose: the study varies only the learning rate, so the architecture is not configurable.
Shapes for a 1x28x28 input: conv5 (pad 2) -> 8x28x28 -> pool -> 8x14x14 -> conv3 -> 16x12x12 -> pool -> 16x6x6 = 576.
"""
from __future__ import annotations

import torch
from torch import nn

FLAT = 16 * 6 * 6


class ReferenceCNN(nn.Module):
    def __init__(self, n_classes: int = 10, dropout: float = 0.3):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 5, padding=2)
        self.conv2 = nn.Conv2d(8, 16, 3)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(FLAT, 600)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(600, 120)
        self.fc3 = nn.Linear(120, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # relu(pool(.)) == pool(relu(.)) for max pooling, values and gradients alike; pooling first is cheaper.
        x = torch.relu(self.pool(self.conv1(x)))
        x = torch.relu(self.pool(self.conv2(x))).flatten(1)
        x = self.drop(torch.relu(self.fc1(x)))
        return self.fc3(torch.relu(self.fc2(x)))


@torch.no_grad()
def first_conv_activations(model: ReferenceCNN, x: torch.Tensor) -> torch.Tensor:
    """Feature maps after the first conv and its ReLU, before pooling: [B, 8, 28, 28] for [B, 1, 28, 28].

    Taken before pooling so the maps keep the input's resolution and can be shown next to it."""
    return torch.relu(model.conv1(x))
