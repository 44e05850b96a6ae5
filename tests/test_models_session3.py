import copy
import json

import pandas as pd
import pytest
import torch
from torch import nn

from pipeline.aggregate import cnn as cnn_aggregate
from pipeline.models.autoencoder import Autoencoder
from pipeline.models.cnn import CNN, count_params
from pipeline.models.stacked import DenseAE, StackedClassifier, StackedEncoder
from pipeline.models.vit import ViTClassifier, cls_attention_map


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _images(b=3):
    return torch.rand(b, 1, 28, 28)


def test_autoencoder_shapes_and_range():
    ae = Autoencoder(8, hidden=(64, 32))
    x = _images()
    assert ae.encode(x).shape == (3, 8)
    y = ae(x)
    assert y.shape == x.shape
    assert 0 <= y.min() and y.max() <= 1
    dims = [m.out_features for m in ae.modules() if isinstance(m, nn.Linear)]
    assert dims == [64, 32, 8, 32, 64, 784]


def test_dense_ae_and_sigmoid_flag():
    first = DenseAE(784, 32, sigmoid_output=True)
    x = _images()
    assert first(x).shape == x.shape and first(x).max() <= 1
    assert isinstance(first.decoder[-1], nn.Sigmoid)
    deeper = DenseAE(32, 16)
    assert not any(isinstance(m, nn.Sigmoid) for m in deeper.modules())
    assert deeper(first.encode(x)).shape == (3, 32)


def test_stacked_encoder_matches_sequential_dense_aes():
    aes = [DenseAE(784, 64, sigmoid_output=True), DenseAE(64, 32), DenseAE(32, 16)]
    enc = StackedEncoder([64, 32, 16]).load_pretrained(aes)
    x = _images()
    h = x
    for ae in aes:
        h = ae.encode(h)
    assert torch.allclose(enc(x), h, atol=0, rtol=0)
    with pytest.raises(ValueError):
        StackedEncoder([64, 33]).load_pretrained(aes[:2])


def test_stacked_classifier_freeze():
    clf = StackedClassifier(StackedEncoder([32, 16]), n_classes=10)
    assert clf(_images()).shape == (3, 10)
    clf.freeze_encoder(True)
    assert count_params(clf, trainable_only=True) == 16 * 10 + 10
    clf.freeze_encoder(False)
    assert count_params(clf, trainable_only=True) == count_params(clf)


@pytest.mark.parametrize("pool", ["max", "avg", "stride"])
@pytest.mark.parametrize("head", [0, 32])
def test_cnn_forward(pool, head):
    m = CNN([8, 16, 16], kernel=5, pool=pool, batch_norm=True, dropout=0.2, head=head)
    assert m(_images()).shape == (3, 10)


def test_count_params_tiny_cnn_closed_form():
    m = CNN([4, 8], kernel=3, pool="max", head=16)
    # conv 1->4, conv 4->8 (3x3 + bias); 28 -> 14 -> 7 after pooling; fc 8*7*7 -> 16 -> 10
    closed = (1 * 4 * 9 + 4) + (4 * 8 * 9 + 8) + (8 * 7 * 7 * 16 + 16) + (16 * 10 + 10)
    assert count_params(m) == sum(p.numel() for p in m.parameters()) == closed == 6794
    bn = CNN([4, 8], kernel=3, pool="stride", batch_norm=True, head=0)
    # no conv bias with BN; stride-2 convs: 28 -> 14 -> 7
    closed_bn = (1 * 4 * 9 + 2 * 4) + (4 * 8 * 9 + 2 * 8) + (8 * 7 * 7 * 10 + 10)
    assert count_params(bn) == closed_bn


def test_macs_of_cnn_variants_follow_their_output_shapes():
    """The CNN table's multiply-adds per image (counted by the aggregate from each run's parameters) equal the
    closed form per layer: output elements x input channels x kernel area, then the head; stride convolutions
    halve the map where pooling would."""
    base = {"kernel": 3, "batch_norm": False, "dropout": 0.0, "head": 16, "channels": [4, 8]}
    runs = pd.DataFrame({"variant": ["max", "stride"], "seed": [0, 0], "test_acc": [0.9, 0.9],
                         "params_json": [json.dumps({**base, "pool": pool}, sort_keys=True)
                                         for pool in ("max", "stride")]})
    table = cnn_aggregate.table({}, runs).set_index("variant")
    head = 8 * 7 * 7 * 16 + 16 * 10
    assert table.loc["max", "macs"] == 28 * 28 * 4 * 9 + 14 * 14 * 8 * 4 * 9 + head
    assert table.loc["stride", "macs"] == 14 * 14 * 4 * 9 + 7 * 7 * 8 * 4 * 9 + head


def test_vit_params_and_forward():
    # vit_pytorch's own dim_head default (64) gives the widely quoted 893,164 parameters
    ref = ViTClassifier(patch_size=7, dim=64, depth=6, heads=8, mlp_dim=128, dim_head=64)
    assert count_params(ref) == 893_164
    # our default dim_head = dim // heads = 8
    small = ViTClassifier(patch_size=7, dim=64, depth=6, heads=8, mlp_dim=128)
    assert small.config["dim_head"] == 8
    assert count_params(small) == 205_036
    assert small(_images(2)).shape == (2, 10)


def test_vit_attention_weights_are_float32_under_bf16_autocast_and_the_same_function():
    """The attention softmax returns float32 under bf16 autocast (PyTorch's bf16 softmax over 17-token rows cost 12% of
    the training step); in float32 the model computes exactly what vit_pytorch's nn.Softmax computes."""
    torch.manual_seed(0)
    model = ViTClassifier(patch_size=7, dim=32, depth=2, heads=4, mlp_dim=64)
    plain = copy.deepcopy(model)
    for attention, _ in plain.vit.transformer.layers:
        attention.attend = nn.Softmax(dim=-1)
    x = _images(4)
    weights = []
    hooks = [a.attend.register_forward_hook(lambda _m, _i, out: weights.append(out))
             for a, _ in model.vit.transformer.layers]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = model(x)
    for h in hooks:
        h.remove()
    assert [w.dtype for w in weights] == [torch.float32, torch.float32]
    assert torch.allclose(weights[0].sum(-1), torch.ones(()), atol=1e-6)
    assert torch.equal(model(x), plain(x))
    model(x).sum().backward()
    plain(x).sum().backward()
    for (name, a), b in zip(model.named_parameters(), plain.parameters()):
        assert torch.equal(a.grad, b.grad), name
    assert torch.allclose(mixed.float(), plain(x), atol=0.1)


def test_cls_attention_map():
    m = ViTClassifier(patch_size=7, dim=32, depth=2, heads=4, mlp_dim=64, dropout=0.1)
    m.train()
    amap = cls_attention_map(m, torch.rand(1, 28, 28))
    assert amap.shape == (4, 4)
    assert abs(amap.sum() - 1) < 1e-5 and (amap >= 0).all()
    assert m.training
    raw = cls_attention_map(m, torch.rand(28, 28), renormalize=False)
    assert 0 < raw.sum() < 1  # the CLS token's weight on itself is left out


@pytest.mark.parametrize("batch_norm", [False, True])
def test_max_pooling_before_relu_trains_exactly_as_relu_before_pooling(batch_norm):
    """The CNN pools before its ReLU (a quarter of the ReLU work); values and gradients must equal the textbook order
    bit for bit, in bf16 autocast as the runs train."""
    model = CNN([8, 16], batch_norm=batch_norm)
    pools = [i for i, m in enumerate(model.features) if isinstance(m, nn.MaxPool2d)]
    assert pools and all(isinstance(model.features[i + 1], nn.ReLU) for i in pools)
    textbook = list(model.features)
    for i in pools:
        textbook[i], textbook[i + 1] = textbook[i + 1], textbook[i]
    reference = nn.Sequential(nn.Sequential(*textbook), model.classifier)
    x = torch.randn(16, 1, 28, 28)
    grads = []
    for net in (model, reference):
        net.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = net(x)
        out.float().square().sum().backward()
        grads.append((out.detach(), [p.grad.clone() for p in net.parameters()]))
    assert torch.equal(grads[0][0], grads[1][0])
    assert all(torch.equal(a, b) for a, b in zip(grads[0][1], grads[1][1]))
    avg = CNN([8], pool="avg").features  # avg pooling does not commute with ReLU: it stays after it
    assert [type(m) for m in avg] == [nn.Conv2d, nn.ReLU, nn.AvgPool2d]
