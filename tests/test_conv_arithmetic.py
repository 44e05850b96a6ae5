import json

import torch

from pipeline.analysis import conv_arithmetic as ca


def test_compute_is_json_and_correct():
    r = ca.compute()
    json.dumps(r)
    toy = r["toy_1d"]
    assert toy["own"] == toy["torch_conv1d"] == [6.0, 6.0, 7.0, 8.0]
    assert toy["true_convolution"] == [6.0, 6.0, 7.0, 8.0]  # symmetric kernel
    asym = toy["asymmetric_example"]
    assert asym["cross_correlation"] == [-2.0, 4.0, 1.0, -6.0]
    assert asym["true_convolution"] == [2.0, -4.0, -1.0, 6.0]

    # The sheet's matrix (question 3.2-Q1.a): each output adds the diagonal of one 2x2 block.
    m = r["sheet_2d_stride2"]
    assert m["input"] == [[2, 5, 4, 1], [3, 1, 2, 0], [4, 5, 7, 1], [1, 2, 3, 4]]
    assert m["own"] == m["torch_conv2d"] == [[2 + 1, 4 + 0], [4 + 2, 7 + 4]]

    o = r["output_size"]
    assert o["mismatches"] == 0 and o["cases_checked"] > 500

    p = r["param_counts"]
    assert p["conv"]["numel"] == p["conv"]["formula_value"] == 320
    assert p["fc"]["numel"] == p["fc"]["formula_value"] == 784 * 25088 + 25088

    e = r["equivariance"]
    assert e["conv"]["max_abs_diff"] < 1e-5
    assert e["fc"]["max_abs_diff"] > 1e-2
    assert e["fc"]["max_abs_diff"] > 1000 * max(e["conv"]["max_abs_diff"], 1e-9)


def test_output_size_examples():
    assert ca.output_size(28, 3, 1, 1) == 28
    assert ca.output_size(28, 3, 2, 1) == 14
    assert ca.output_size(7, 3, 1, 0, 2) == 3


def test_shift_no_wraparound():
    x = torch.arange(16.0).view(4, 4)
    s = ca.shift(x, 1, -1)
    assert s[0].abs().sum() == 0 and s[:, -1].abs().sum() == 0
    assert s[1, 0] == x[0, 1]
