import json

import numpy as np
import torch

from pipeline.analysis.attention import (compute, plot_attention, self_attention_numpy,
                                         self_attention_torch)


def test_compute():
    r = compute(seed=0)
    json.dumps(r)
    assert all(v < 1e-5 for v in r["max_abs_diff"].values())
    # The report says "In float64, ... agree to within": the precision the three computed in, taken from them.
    assert r["dtype"] == "float64" and r["max_abs_diff"]["numpy_vs_sdpa_O"] < 1e-12
    assert np.allclose(r["row_sums_A"], 1.0)
    shapes = {row["name"]: tuple(row["shape"]) for row in r["shapes"]}
    assert shapes == {"X": (4, 6), "W_q": (6, 3), "W_k": (6, 3), "W_v": (6, 3), "Q": (4, 3),
                      "K": (4, 3), "V": (4, 3), "A": (4, 4), "O": (4, 3)}
    assert np.asarray(r["A"]).shape == (4, 4)


def test_numpy_torch_sdpa_agree_other_sizes():
    rng = np.random.default_rng(1)
    X, Wq, Wk, Wv = (rng.standard_normal(s) for s in [(5, 8), (8, 4), (8, 4), (8, 2)])
    O, A = self_attention_numpy(X, Wq, Wk, Wv)
    assert O.shape == (5, 2) and A.shape == (5, 5)
    t = [torch.from_numpy(m).float() for m in (X, Wq, Wk, Wv)]
    Ot, At = self_attention_torch(*t)
    Os = torch.nn.functional.scaled_dot_product_attention(
        (t[0] @ t[1])[None], (t[0] @ t[2])[None], (t[0] @ t[3])[None])[0]
    assert np.abs(O - Ot.numpy()).max() < 1e-5
    assert np.abs(A - At.numpy()).max() < 1e-5
    assert (Ot - Os).abs().max() < 1e-5
    assert np.allclose(A.sum(axis=1), 1.0)


def test_plot(tmp_path):
    r = compute()
    for name in ("a.png", "a.svg"):
        p = plot_attention(r, tmp_path / name)
        assert p.exists() and p.stat().st_size > 1000
