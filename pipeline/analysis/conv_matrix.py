"""Assignment 2, question 1: convolution as a matrix, parameter counts, identity-weight attention.

Conventions: convolution means deep-learning convolution (cross-correlation, as torch conv2d),
stride 1, no padding; vec() flattens row-major, so pixel (r, c) of an H x W image is entry r*W + c.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def conv_matrix(w: np.ndarray, H: int, W: int) -> np.ndarray:
    """Matrix K of shape (H'W', HW) with vec(w * x) = K @ vec(x), H' = H-M+1, W' = W-N+1."""
    M, N = w.shape
    Ho, Wo = H - M + 1, W - N + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(f"kernel {M}x{N} larger than image {H}x{W}")
    K = np.zeros((Ho * Wo, H * W), dtype=np.result_type(w, np.float64))
    for i in range(Ho):
        for j in range(Wo):
            # Output (i, j) reads kernel row a from image row i+a, columns j .. j+N-1.
            for a in range(M):
                K[i * Wo + j, (i + a) * W + j:(i + a) * W + j + N] = w[a]
    return K


def _conv_net(H, W, M, N, n_out, bias: bool = True) -> nn.Module:
    P = ((H - M + 1) // 2) * ((W - N + 1) // 2)
    return nn.Sequential(nn.Conv2d(1, 1, (M, N), bias=bias), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(P, n_out, bias=bias))


def _fc_net(H, W, M, N, n_out, bias: bool = True) -> nn.Module:
    Ho, Wo = H - M + 1, W - N + 1
    P = (Ho // 2) * (Wo // 2)
    return nn.Sequential(nn.Flatten(), nn.Linear(H * W, Ho * Wo, bias=bias), nn.Unflatten(1, (1, Ho, Wo)),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(P, n_out, bias=bias))


def _fc_to_pooled_net(H, W, M, N, n_out) -> nn.Module:
    """The replacement as a reference solution sizes it: HW -> H''W'' (the pooled size), then to n_out, no biases.
    Its output is not the convolution's (H'W'), so the pooling has nothing to pool: not the same network."""
    P = ((H - M + 1) // 2) * ((W - N + 1) // 2)
    return nn.Sequential(nn.Flatten(), nn.Linear(H * W, P, bias=False), nn.Linear(P, n_out, bias=False))


def _numel(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def param_counts(H: int, W: int, M: int, N: int, n_out: int = 3) -> dict:
    """conv(1 filter MxN + bias) -> 2x2 max-pool (stride 2, floor) -> fully connected to n_out,
    versus the conv replaced by a fully connected HW -> H'W' layer (with bias).
    Closed forms, with P = floor(H'/2) floor(W'/2) pooled units:
        conv net: (MN + 1) + (P + 1) n_out
        fc net:   (HW + 1) H'W' + (P + 1) n_out
    and the same counts from the torch modules (sum of numel), which must agree."""
    Ho, Wo = H - M + 1, W - N + 1
    if Ho < 2 or Wo < 2:
        raise ValueError("need H' >= 2 and W' >= 2 so that 2x2 pooling leaves at least one unit")
    P = (Ho // 2) * (Wo // 2)
    head = (P + 1) * n_out
    conv_closed = M * N + 1 + head
    fc_closed = (H * W + 1) * Ho * Wo + head
    nets = {"conv": _conv_net(H, W, M, N, n_out), "fc": _fc_net(H, W, M, N, n_out),
            "conv_nobias": _conv_net(H, W, M, N, n_out, bias=False), "fc_nobias": _fc_net(H, W, M, N, n_out, bias=False),
            "fc_to_pooled": _fc_to_pooled_net(H, W, M, N, n_out)}
    with torch.no_grad():  # every network must really accept an H x W image
        x = torch.zeros(1, 1, H, W)
        assert all(net(x).shape == (1, n_out) for net in nets.values())
    return {
        "H": H, "W": W, "M": M, "N": N, "n_out": n_out, "pooled": P,
        "conv_closed": conv_closed, "conv_numel": _numel(nets["conv"]),
        "fc_closed": fc_closed, "fc_numel": _numel(nets["fc"]),
        # Without biases (as a reference solution counts): MN + n_out P and HW H'W' + n_out P.
        "conv_nobias_closed": M * N + n_out * P, "conv_nobias_numel": _numel(nets["conv_nobias"]),
        "fc_nobias_closed": H * W * Ho * Wo + n_out * P, "fc_nobias_numel": _numel(nets["fc_nobias"]),
        "fc_to_pooled_closed": H * W * P + n_out * P, "fc_to_pooled_numel": _numel(nets["fc_to_pooled"]),
    }


def identity_attention(x: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Self-attention with W_Q = W_K = W_V = I on an H x W image whose rows are the tokens
    (sequence length H, token dimension d = W): softmax(scale * x x^T) x, softmax over each row.
    scale = 1 is the formula without 1/sqrt(d); pass 1/sqrt(W) for the scaled dot-product form."""
    s = scale * (x @ x.T)
    s = np.exp(s - s.max(axis=1, keepdims=True))  # shift for overflow safety; softmax is unchanged
    return (s / s.sum(axis=1, keepdims=True)) @ x


def flattened_attention(x: np.ndarray) -> dict:
    """Self-attention with W_Q = W_K = W_V = I on vec(x): a sequence of HW scalar tokens (d_k = 1).

    Q = K = V = x' (HW x 1), A = softmax(x' x'^T) (HW x HW; the 1/sqrt(d_k) scale is 1), Z = A x' (HW values), checked
    against F.scaled_dot_product_attention with its default scale on a [1, HW, 1] tensor."""
    xv = x.reshape(-1, 1).astype(np.float64)
    scores = xv @ xv.T
    a = np.exp(scores - scores.max(axis=1, keepdims=True))
    a /= a.sum(axis=1, keepdims=True)
    z = a @ xv
    t = torch.as_tensor(xv)[None]
    ref = F.scaled_dot_product_attention(t, t, t)[0].numpy()
    return {"image_shape": list(x.shape), "n_tokens": int(xv.shape[0]), "d_k": 1,
            "shapes": {"Q": list(xv.shape), "K": list(xv.shape), "V": list(xv.shape), "A": list(a.shape),
                       "Z": list(z.shape)},
            "max_abs_diff_sdpa": float(np.abs(z - ref).max()),
            "row_sums_max_dev": float(np.abs(a.sum(axis=1) - 1).max()),
            # A_ij grows with x_i x_j: for a positive pixel, the brightest pixels get the most weight.
            "z_between_min_and_max": bool((z >= xv.min() - 1e-12).all() and (z <= xv.max() + 1e-12).all())}


def torch_identity_attention(x: np.ndarray, scale: float | None = None) -> np.ndarray:
    """The same through torch modules: identity Linear projections and scaled_dot_product_attention
    with the given scale, or, for scale=None, nn.MultiheadAttention (1 head, identity in/out
    projections), whose fixed scale is 1/sqrt(d)."""
    t = torch.as_tensor(x, dtype=torch.float64)[None]  # [1, H, W]
    d = t.size(-1)
    with torch.no_grad():
        if scale is None:
            mha = nn.MultiheadAttention(d, num_heads=1, bias=False, batch_first=True).double()
            mha.in_proj_weight.copy_(torch.eye(d, dtype=torch.float64).repeat(3, 1))
            mha.out_proj.weight.copy_(torch.eye(d, dtype=torch.float64))
            out = mha(t, t, t, need_weights=False)[0]
        else:
            proj = [nn.Linear(d, d, bias=False).double() for _ in range(3)]
            for p in proj:
                p.weight.copy_(torch.eye(d, dtype=torch.float64))
            q, k, v = (p(t) for p in proj)
            out = F.scaled_dot_product_attention(q, k, v, scale=scale)
    return out[0].numpy()


def compute(seed: int = 0) -> dict:
    """JSON-serialisable summary of all checks for the report."""
    rng = np.random.default_rng(seed)

    conv_cases = []
    for _ in range(20):
        H, W = (int(v) for v in rng.integers(3, 13, size=2))
        M, N = int(rng.integers(1, H + 1)), int(rng.integers(1, W + 1))
        w, x = rng.standard_normal((M, N)), rng.standard_normal((H, W))
        ref = F.conv2d(torch.from_numpy(x)[None, None], torch.from_numpy(w)[None, None])[0, 0]
        diff = np.abs(conv_matrix(w, H, W) @ x.reshape(-1) - ref.numpy().reshape(-1)).max()
        conv_cases.append({"H": H, "W": W, "M": M, "N": N, "max_abs_diff": float(diff)})

    w_ex = np.array([[1, 2], [3, 4]])
    x_ex = np.arange(16).reshape(4, 4)
    K_ex = conv_matrix(w_ex, 4, 4)
    example = {
        "w": w_ex.tolist(), "x": x_ex.tolist(),
        "matrix": K_ex.astype(int).tolist(),
        "matrix_times_vec_x": (K_ex @ x_ex.reshape(-1)).astype(int).tolist(),
        "torch_conv2d": F.conv2d(torch.tensor(x_ex, dtype=torch.float64)[None, None],
                                 torch.tensor(w_ex, dtype=torch.float64)[None, None]).reshape(-1).int().tolist(),
    }

    grid = [param_counts(H, W, M, N) for H, W in [(8, 8), (16, 16), (28, 28), (32, 24)]
            for M, N in [(3, 3), (5, 5), (3, 5)]]
    all_equal = all(g[f"{k}_closed"] == g[f"{k}_numel"] for g in grid
                    for k in ("conv", "fc", "conv_nobias", "fc_nobias", "fc_to_pooled"))

    xa = rng.standard_normal((6, 5))
    attention = {
        "layout": "image rows are tokens: sequence length H, token dimension d = W",
        "shape": list(xa.shape),
        "max_abs_diff_scale_1": float(np.abs(identity_attention(xa, 1.0) - torch_identity_attention(xa, 1.0)).max()),
        "max_abs_diff_mha_scale_1_over_sqrt_d": float(np.abs(
            identity_attention(xa, 1 / np.sqrt(xa.shape[1])) - torch_identity_attention(xa, None)).max()),
    }

    flattened = flattened_attention(rng.standard_normal((4, 5)))
    return {
        "flattened_attention": flattened,
        "conv_vs_torch": {"cases": conv_cases, "max_abs_diff": max(c["max_abs_diff"] for c in conv_cases)},
        "example": example,
        "param_counts": {"grid": grid, "all_equal": all_equal},
        "attention": attention,
    }
