"""Scaled dot-product self-attention from the formulas, checked against PyTorch (no training).

    Q = X W_q,  K = X W_k,  V = X W_v
    A = softmax(Q K^T / sqrt(d_k))   (softmax over each row, i.e. over the keys)
    O = A V

Rows of X are tokens. Example sizes: n = 4 tokens, d_model = 6, d_k = d_v = 3.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

N_TOKENS, D_MODEL, D_K, D_V = 4, 6, 3, 3


def self_attention_numpy(X: np.ndarray, Wq: np.ndarray, Wk: np.ndarray, Wv: np.ndarray):
    """Returns (O, A) with O [n, d_v] and A [n, n]."""
    Q, K, V = X @ Wq, X @ Wk, X @ Wv
    scores = Q @ K.T / math.sqrt(Q.shape[-1])
    # subtracting the row max leaves softmax unchanged and keeps exp() from overflowing
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    A = e / e.sum(axis=-1, keepdims=True)
    return A @ V, A


def self_attention_torch(X: torch.Tensor, Wq: torch.Tensor, Wk: torch.Tensor, Wv: torch.Tensor):
    """Same as the numpy version; also works with leading batch dims on X."""
    Q, K, V = X @ Wq, X @ Wk, X @ Wv
    A = torch.softmax(Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1]), dim=-1)
    return A @ V, A


def _max_diff(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def compute(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N_TOKENS, D_MODEL))
    Wq = rng.standard_normal((D_MODEL, D_K))
    Wk = rng.standard_normal((D_MODEL, D_K))
    Wv = rng.standard_normal((D_MODEL, D_V))

    O_np, A_np = self_attention_numpy(X, Wq, Wk, Wv)
    t64 = [torch.from_numpy(m) for m in (X, Wq, Wk, Wv)]
    O_t, A_t = self_attention_torch(*t64)
    Xt, Wqt, Wkt, Wvt = t64
    O_sdpa = F.scaled_dot_product_attention((Xt @ Wqt)[None], (Xt @ Wkt)[None], (Xt @ Wvt)[None])[0]
    O_t32, A_t32 = self_attention_torch(*(m.float() for m in t64))

    shapes = [
        ("X", X.shape, "input: one row per token (n x d_model)"),
        ("W_q", Wq.shape, "query projection (d_model x d_k)"),
        ("W_k", Wk.shape, "key projection (d_model x d_k)"),
        ("W_v", Wv.shape, "value projection (d_model x d_v)"),
        ("Q", (N_TOKENS, D_K), "queries Q = X W_q"),
        ("K", (N_TOKENS, D_K), "keys K = X W_k"),
        ("V", (N_TOKENS, D_V), "values V = X W_v"),
        ("A", A_np.shape, "attention weights softmax(QK^T/sqrt(d_k)); row i: how much token i "
                          "attends to each token"),
        ("O", O_np.shape, "output O = A V: each row a weighted average of the rows of V"),
    ]
    return {
        "seed": seed,
        "sizes": {"n_tokens": N_TOKENS, "d_model": D_MODEL, "d_k": D_K, "d_v": D_V},
        "init": "X, W_q, W_k, W_v ~ N(0, 1) from numpy.random.default_rng(seed)",
        "shapes": [{"name": n, "shape": list(s), "meaning": m} for n, s, m in shapes],
        # NumPy, our torch code and scaled_dot_product_attention all compute in this; the *_float32_* entries
        # repeat our torch code in float32.
        "dtype": str(O_sdpa.dtype).removeprefix("torch."),
        "max_abs_diff": {
            "numpy_vs_torch_O": _max_diff(O_np, O_t),
            "numpy_vs_torch_A": _max_diff(A_np, A_t),
            "numpy_vs_sdpa_O": _max_diff(O_np, O_sdpa),
            "torch_vs_sdpa_O": _max_diff(O_t, O_sdpa),
            "numpy_vs_torch_float32_O": _max_diff(O_np, O_t32),
            "numpy_vs_torch_float32_A": _max_diff(A_np, A_t32),
        },
        "row_sums_A": A_np.sum(axis=1).tolist(),
        "A": A_np.tolist(),
        "O": O_np.tolist(),
    }


def plot_attention(result: dict, path) -> Path:
    """Heatmap of A with annotated cells, sized for a 3-inch column; PNG or SVG by suffix."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    A = np.asarray(result["A"])
    n = A.shape[0]
    labels = [f"t{i + 1}" for i in range(n)]
    fig, ax = plt.subplots(figsize=(3.0, 2.6), layout="constrained")
    im = ax.imshow(A, cmap="viridis", vmin=0.0, vmax=1.0)
    for i in range(n):
        for j in range(n):
            # dark text on the bright end of viridis, light text on the dark end
            ax.text(j, i, f"{A[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="black" if A[i, j] > 0.55 else "white")
    ax.set_xticks(range(n), labels, fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set_xlabel("key token j", fontsize=9)
    ax.set_ylabel("query token i", fontsize=9)
    ax.set_title("Attention weights A (rows sum to 1)", fontsize=9)
    cb = fig.colorbar(im, ax=ax, shrink=0.9)
    cb.ax.tick_params(labelsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=200 if path.suffix.lower() == ".png" else None)
    plt.close(fig)
    return path


if __name__ == "__main__":
    res = compute()
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(json.dumps(res, indent=2) + "\n")
        if len(sys.argv) > 2:
            plot_attention(res, sys.argv[2])
    else:
        print(json.dumps(res, indent=2))
