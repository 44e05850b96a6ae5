"""Vision Transformer for MNIST (wrapping vit_pytorch.ViT) and CLS attention maps."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from vit_pytorch import ViT


class Float32Softmax(nn.Softmax):
    """nn.Softmax whose output is float32 whatever its input's dtype.

    Under bf16 autocast on a CPU the attention scores arrive in bf16, and PyTorch's bf16 softmax over rows this short
    (17 tokens at patch 7) is slow: forward and backward took 1.4 ms a layer against 0.5 ms in float32, 12% of ViT
    small's training step (AMX Xeon, 1 thread). The next matmul casts the weights back to bf16."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.softmax(self.dim, dtype=torch.float32)


class ViTClassifier(nn.Module):
    """vit_pytorch.ViT fixed to 28x28 single-channel images and 10 classes.

    ``dim_head`` defaults to ``dim // heads`` (the usual "split the model width over the
    heads" convention); vit_pytorch itself would default to 64 whatever ``dim`` is, which for
    small ``dim`` makes the attention layers several times wider than the model.
    """

    def __init__(self, patch_size: int, dim: int, depth: int, heads: int, mlp_dim: int,
                 dropout: float = 0.0, emb_dropout: float = 0.0, dim_head: int | None = None,
                 image_size: int = 28, channels: int = 1, num_classes: int = 10):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"patch_size {patch_size} does not divide image_size {image_size}")
        if dim_head is None:
            dim_head = max(1, dim // heads)
        self.patch_size = patch_size
        self.image_size = image_size
        self.grid = image_size // patch_size
        self.config = dict(patch_size=patch_size, dim=dim, depth=depth, heads=heads,
                           mlp_dim=mlp_dim, dropout=dropout, emb_dropout=emb_dropout,
                           dim_head=dim_head)
        self.vit = ViT(image_size=image_size, patch_size=patch_size, num_classes=num_classes,
                       dim=dim, depth=depth, heads=heads, mlp_dim=mlp_dim, pool="cls",
                       channels=channels, dim_head=dim_head, dropout=dropout,
                       emb_dropout=emb_dropout)
        for attention, _ in self.vit.transformer.layers:
            attention.attend = Float32Softmax(dim=-1)

    @property
    def tokens(self) -> int:
        """The sequence the encoder reads: one token per patch and the class token."""
        return self.grid ** 2 + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vit(x)


def _last_softmax(vit: ViT) -> nn.Module:
    # In vit_pytorch.vit each transformer layer is ModuleList([Attention, FeedForward]) and
    # Attention.attend is the nn.Softmax producing the [B, heads, n, n] weights (before dropout).
    return vit.transformer.layers[-1][0].attend


@torch.no_grad()
def cls_attention_map(model: nn.Module, image: torch.Tensor, renormalize: bool = True) -> np.ndarray:
    """Attention of the CLS token over the patches in the last layer, averaged over heads.

    ``image``: [28,28], [1,28,28] or [1,1,28,28]. Returns [H/p, W/p]. The CLS token also
    attends to itself; with ``renormalize`` that weight is dropped and the patch weights are
    rescaled to sum to 1, so maps of different images are comparable distributions.
    """
    vit = model.vit if isinstance(model, ViTClassifier) else model
    if not isinstance(vit, ViT) or vit.pool != "cls":
        raise TypeError("cls_attention_map needs a vit_pytorch.ViT with pool='cls'")
    x = image
    while x.dim() < 4:
        x = x.unsqueeze(0)
    if x.shape[0] != 1:
        raise ValueError(f"expected one image, got batch of {x.shape[0]}")
    ref = next(vit.parameters())
    x = x.to(device=ref.device, dtype=ref.dtype)

    captured: list[torch.Tensor] = []
    handle = _last_softmax(vit).register_forward_hook(lambda _m, _i, out: captured.append(out))
    was_training = model.training
    try:
        model.eval()
        vit(x)
    finally:
        handle.remove()
        model.train(was_training)
    attn = captured[-1]  # [1, heads, 1 + n_patches, 1 + n_patches]
    cls_row = attn[0, :, 0, 1:].mean(dim=0)
    if renormalize:
        cls_row = cls_row / cls_row.sum()
    ph, pw = vit.patch_size
    return cls_row.reshape(x.shape[-2] // ph, x.shape[-1] // pw).float().cpu().numpy()
