import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipeline.analysis.conv_matrix import (compute, conv_matrix, identity_attention, param_counts,
                                           torch_identity_attention)


def _torch_conv(x, w):
    return F.conv2d(torch.from_numpy(x)[None, None], torch.from_numpy(w)[None, None])[0, 0].numpy()


def test_matrix_times_vec_equals_conv2d_for_random_sizes():
    rng = np.random.default_rng(123)
    for _ in range(30):
        H, W = rng.integers(2, 15, size=2)
        M, N = rng.integers(1, H + 1), rng.integers(1, W + 1)
        w, x = rng.standard_normal((M, N)), rng.standard_normal((H, W))
        K = conv_matrix(w, H, W)
        assert K.shape == ((H - M + 1) * (W - N + 1), H * W)
        np.testing.assert_allclose(K @ x.reshape(-1), _torch_conv(x, w).reshape(-1), atol=1e-12)


def test_small_example_written_out():
    K = conv_matrix(np.array([[1, 2], [3, 4]]), 3, 3)
    expected = [
        [1, 2, 0, 3, 4, 0, 0, 0, 0],
        [0, 1, 2, 0, 3, 4, 0, 0, 0],
        [0, 0, 0, 1, 2, 0, 3, 4, 0],
        [0, 0, 0, 0, 1, 2, 0, 3, 4],
    ]
    assert K.tolist() == expected


def test_cross_correlation_not_flipped():
    # A kernel that is not symmetric tells convolution and cross-correlation apart.
    x = np.arange(6.0).reshape(2, 3)
    K = conv_matrix(np.array([[1.0, 0.0]]), 2, 3)
    assert (K @ x.reshape(-1)).tolist() == [0.0, 1.0, 3.0, 4.0]


def test_kernel_larger_than_image_is_rejected():
    with pytest.raises(ValueError):
        conv_matrix(np.ones((4, 2)), 3, 3)


@pytest.mark.parametrize("H,W", [(6, 6), (8, 8), (9, 7), (28, 28), (17, 30)])
@pytest.mark.parametrize("M,N", [(1, 1), (3, 3), (5, 3), (2, 4)])
def test_closed_form_parameter_counts_match_numel(H, W, M, N):
    r = param_counts(H, W, M, N, n_out=3)
    assert r["conv_closed"] == r["conv_numel"]
    assert r["fc_closed"] == r["fc_numel"]
    assert r["fc_closed"] > r["conv_closed"]


def test_parameter_count_by_hand():
    # 8x8 image, 3x3 kernel: 6x6 map, pooled 3x3 = 9 units.
    r = param_counts(8, 8, 3, 3, n_out=3)
    assert r["conv_closed"] == (9 + 1) + (9 + 1) * 3 == 40
    assert r["fc_closed"] == (64 + 1) * 36 + (9 + 1) * 3 == 2370
    with pytest.raises(ValueError):
        param_counts(4, 4, 4, 4)  # 1x1 map: nothing left after 2x2 pooling


@pytest.mark.parametrize("scale", [1.0, 0.5, 0.1])
def test_identity_attention_closed_form_matches_torch(scale):
    x = np.random.default_rng(0).standard_normal((7, 4))
    np.testing.assert_allclose(identity_attention(x, scale), torch_identity_attention(x, scale), atol=1e-12)


def test_identity_attention_matches_multihead_attention_scaling():
    x = np.random.default_rng(1).standard_normal((5, 9))
    np.testing.assert_allclose(identity_attention(x, 1 / np.sqrt(9)), torch_identity_attention(x), atol=1e-12)
    # The unscaled closed form is a different function, so the comparison above is not vacuous.
    assert np.abs(identity_attention(x, 1.0) - torch_identity_attention(x)).max() > 1e-3


def test_identity_attention_output_is_convex_combination_of_rows():
    x = np.random.default_rng(2).standard_normal((6, 3))
    out = identity_attention(x)
    assert out.shape == x.shape
    assert np.all(out <= x.max(axis=0) + 1e-12) and np.all(out >= x.min(axis=0) - 1e-12)


def test_compute_summary():
    r = compute(seed=0)
    json.dumps(r)
    assert r["conv_vs_torch"]["max_abs_diff"] < 1e-10
    assert r["param_counts"]["all_equal"] is True
    assert r["example"]["matrix_times_vec_x"] == r["example"]["torch_conv2d"]
    assert len(r["example"]["matrix"]) == 9 and len(r["example"]["matrix"][0]) == 16
    assert r["attention"]["max_abs_diff_scale_1"] < 1e-10
    assert r["attention"]["max_abs_diff_mha_scale_1_over_sqrt_d"] < 1e-10


def test_parameter_counts_without_biases_and_the_pooled_sizing():
    from pipeline.analysis.conv_matrix import param_counts
    g = param_counts(28, 28, 5, 5)  # H' = W' = 24, pooled P = 12 x 12 = 144
    assert g["conv_nobias_numel"] == g["conv_nobias_closed"] == 5 * 5 + 3 * 144
    assert g["fc_nobias_numel"] == g["fc_nobias_closed"] == 784 * 576 + 3 * 144
    assert g["fc_to_pooled_numel"] == g["fc_to_pooled_closed"] == 784 * 144 + 3 * 144
    assert g["conv_numel"] - g["conv_nobias_numel"] == 1 + 3  # one conv bias, three output biases


def test_flattened_image_attention_is_hw_by_hw_and_matches_sdpa():
    from pipeline.analysis.conv_matrix import flattened_attention
    r = flattened_attention(np.arange(12.0).reshape(3, 4) / 10)
    assert r["n_tokens"] == 12 and r["d_k"] == 1
    assert r["shapes"]["A"] == [12, 12] and r["shapes"]["Z"] == [12, 1]
    assert r["max_abs_diff_sdpa"] < 1e-12 and r["row_sums_max_dev"] < 1e-12 and r["z_between_min_and_max"]
