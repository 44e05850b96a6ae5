"""Convolution arithmetic worked out by hand and checked against PyTorch (no training).

Everything here is deterministic and cheap (well under a second on CPU); ``compute()``
returns plain Python types so the result can be written straight to JSON.
"""
from __future__ import annotations

import itertools
import json
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

TOY_X = [2, 5, 4, 1, 3, 7]
TOY_W = [1, 0, 1]
# The input matrix and kernel the exercise sheet gives (question 3.2-Q1.a): stride 2, no padding.
SHEET_X = np.array([[2, 5, 4, 1], [3, 1, 2, 0], [4, 5, 7, 1], [1, 2, 3, 4]], dtype=np.float64)
IDENTITY_2X2 = np.array([[1.0, 0.0], [0.0, 1.0]])


def output_size(n: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    """Output length of a convolution along one axis: floor((n + 2p - d(k-1) - 1)/s) + 1."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def xcorr1d(x, w, stride: int = 1) -> list[float]:
    """What deep-learning libraries call convolution: slide w over x without flipping it."""
    n, k = len(x), len(w)
    return [float(sum(x[i + j] * w[j] for j in range(k))) for i in range(0, n - k + 1, stride)]


def conv1d_true(x, w, stride: int = 1) -> list[float]:
    """Convolution in the signal-processing sense ('valid' part): the kernel is flipped."""
    return xcorr1d(x, list(w)[::-1], stride)


def xcorr2d(x: np.ndarray, w: np.ndarray, stride: int = 1) -> np.ndarray:
    kh, kw = w.shape
    oh = output_size(x.shape[0], kh, stride)
    ow = output_size(x.shape[1], kw, stride)
    out = np.zeros((oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = x[i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[i, j] = float((patch * w).sum())
    return out


def _toy_1d() -> dict:
    x = torch.tensor(TOY_X, dtype=torch.float64).view(1, 1, -1)
    w = torch.tensor(TOY_W, dtype=torch.float64).view(1, 1, -1)
    own = xcorr1d(TOY_X, TOY_W)
    torch_res = F.conv1d(x, w, stride=1, padding=0).flatten().tolist()
    # A symmetric kernel hides the flip, so show an asymmetric one too.
    w_asym = [1, 0, -1]
    return {
        "x": TOY_X, "w": TOY_W, "stride": 1, "padding": 0,
        "own": own,
        "torch_conv1d": torch_res,
        "match": own == torch_res,
        "true_convolution": conv1d_true(TOY_X, TOY_W),
        "kernel_symmetric": TOY_W == TOY_W[::-1],
        "note": ("torch.nn.functional.conv1d (like every deep-learning 'convolution') computes "
                 "cross-correlation: y[i] = sum_j x[i+j] w[j], with no kernel flip. The true "
                 "convolution flips the kernel, y[i] = sum_j x[i+j] w[k-1-j]. For w=[1,0,1] the "
                 "kernel is symmetric, so both give the same numbers; the asymmetric example "
                 "shows the difference (the sign flips). Since kernels are learned, the flip "
                 "does not matter for training."),
        "asymmetric_example": {
            "w": w_asym,
            "cross_correlation": xcorr1d(TOY_X, w_asym),
            "true_convolution": conv1d_true(TOY_X, w_asym),
        },
    }


def _sheet_2d() -> dict:
    own = xcorr2d(SHEET_X, IDENTITY_2X2, stride=2)
    t = F.conv2d(torch.from_numpy(SHEET_X).view(1, 1, 4, 4),
                 torch.from_numpy(IDENTITY_2X2).view(1, 1, 2, 2), stride=2, padding=0)
    t = t[0, 0].numpy()
    return {
        "input": SHEET_X.tolist(),
        "kernel": IDENTITY_2X2.tolist(), "stride": 2, "padding": 0,
        "own": own.tolist(),
        "torch_conv2d": t.tolist(),
        "match": bool(np.array_equal(own, t)),
        "note": ("Stride 2 with a 2x2 kernel tiles the input into disjoint 2x2 blocks; the "
                 "identity kernel adds each block's diagonal (top-left + bottom-right)."),
    }


def _output_size_grid() -> dict:
    sizes = (5, 8, 13, 28)
    cases = mismatches = skipped = 0
    examples: list[dict] = []
    with torch.no_grad():
        for n, k, s, p, d in itertools.product(sizes, range(1, 8), range(1, 4), range(0, 4),
                                               range(1, 4)):
            if n + 2 * p < d * (k - 1) + 1:
                skipped += 1  # effective kernel larger than the padded input
                continue
            w = torch.zeros(1, 1, k, k)
            # non-square input so that rows and columns are checked independently
            got = F.conv2d(torch.zeros(1, 1, n, n + 1), w, stride=s, padding=p, dilation=d).shape
            want = (output_size(n, k, s, p, d), output_size(n + 1, k, s, p, d))
            cases += 1
            if tuple(got[-2:]) != want:
                mismatches += 1
                if len(examples) < 5:
                    examples.append(dict(n=n, k=k, s=s, p=p, d=d, got=list(got[-2:]),
                                         want=list(want)))
    return {
        "formula": "floor((n + 2p - d(k-1) - 1)/s) + 1",
        "grid": {"n": list(sizes), "k": [1, 7], "s": [1, 3], "p": [0, 3], "d": [1, 3]},
        "cases_checked": cases, "invalid_skipped": skipped, "mismatches": mismatches,
        "mismatch_examples": examples,
    }


def _param_counts() -> dict:
    c_in, c_out, k, h, w = 1, 32, 3, 28, 28
    conv = nn.Conv2d(c_in, c_out, k, padding=1)
    # meta device: counts 19.7M parameters without allocating ~79 MB
    fc = nn.Linear(c_in * h * w, c_out * h * w, device="meta")
    conv_formula = c_out * c_in * k * k + c_out
    fc_formula = (c_in * h * w) * (c_out * h * w) + c_out * h * w
    conv_numel = sum(p.numel() for p in conv.parameters())
    fc_numel = sum(p.numel() for p in fc.parameters())
    return {
        "conv": {"layer": f"Conv2d({c_in}, {c_out}, {k}x{k}, padding=1) on {h}x{w}",
                 "formula": "C_out*C_in*k*k + C_out", "formula_value": conv_formula,
                 "numel": conv_numel, "output_shape": [c_out, h, w]},
        "fc": {"layer": f"Linear({c_in * h * w}, {c_out * h * w})",
               "formula": "(C_in*H*W)*(C_out*H*W) + C_out*H*W", "formula_value": fc_formula,
               "numel": fc_numel, "output_shape": [c_out * h * w]},
        "match": conv_formula == conv_numel and fc_formula == fc_numel,
        "ratio_fc_over_conv": fc_numel / conv_numel,
        "note": ("Weight sharing makes the conv layer's parameter count independent of the image "
                 "size; the fully connected layer with the same output size needs one weight per "
                 "(input pixel, output unit) pair."),
    }


def digit_blob(size: int = 28) -> torch.Tensor:
    """A synthetic, digit-like stroke (an ellipse ring plus a slanted bar) in [0, 1], centred so
    that moderate shifts keep it inside the frame."""
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float64),
                            torch.arange(size, dtype=torch.float64), indexing="ij")
    c = (size - 1) / 2
    r = torch.sqrt(((yy - c + 3) / 4.5) ** 2 + ((xx - c) / 3.5) ** 2)
    ring = torch.exp(-((r - 1.0) ** 2) / 0.05)
    bar = torch.exp(-((xx - c - 3.5 + 0.3 * (yy - c)) ** 2) / 1.5) * ((yy > c - 4) & (yy < c + 8))
    return (ring + bar).clamp(0, 1)


def shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Translate the last two dims by (dy, dx), filling with zeros (no wrap-around)."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        x[..., max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def _equivariance(dy: int = 3, dx: int = 2, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    img = digit_blob().view(1, 1, 28, 28)
    k, c_out = 3, 8
    conv_w = torch.randn(c_out, 1, k, k, generator=g, dtype=torch.float64) / k
    conv_b = torch.randn(c_out, generator=g, dtype=torch.float64) * 0.1
    fc_w = torch.randn(784, 784, generator=g, dtype=torch.float64) / 28
    fc_b = torch.randn(784, generator=g, dtype=torch.float64) * 0.1

    def conv(x):
        return F.conv2d(x, conv_w, conv_b, padding=k // 2)

    def fc(x):
        return F.linear(x.flatten(1), fc_w, fc_b).view(1, 1, 28, 28)

    # Zero padding and the zeros shifted in at the border break equivariance within
    # |shift| + k//2 pixels of the edges, so compare only the interior.
    m = k // 2 + max(abs(dy), abs(dx))
    inner = (..., slice(m, 28 - m), slice(m, 28 - m))
    res = {"shift": [dy, dx], "dtype": "float64", "interior_margin_px": m,
           "input": "synthetic digit-like blob 28x28 (no dataset)"}
    for name, f in (("conv", conv), ("fc", fc)):
        a = shift(f(img), dy, dx)[inner]
        b = f(shift(img, dy, dx))[inner]
        res[name] = {"max_abs_diff": float((a - b).abs().max()),
                     "feature_scale_max_abs": float(b.abs().max())}
    res["note"] = ("conv(shift(x)) == shift(conv(x)) away from the borders: a convolution is "
                   "translation equivariant. A fully connected layer has a separate weight per "
                   "position, so shifting the input changes the output arbitrarily.")
    return res


def compute() -> dict:
    return {
        "toy_1d": _toy_1d(),
        "sheet_2d_stride2": _sheet_2d(),
        "output_size": _output_size_grid(),
        "param_counts": _param_counts(),
        "equivariance": _equivariance(),
    }


if __name__ == "__main__":
    text = json.dumps(compute(), indent=2)
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as fh:
            fh.write(text + "\n")
    else:
        print(text)
