"""hw2 end to end: both families through `execute` on tiny data, and the hw2 report of the smoke workflow."""
import json

import pandas as pd
import pytest
import torch
import yaml
from pypdf import PdfReader

from pipeline import config
from pipeline.models.reference_cnn import ReferenceCNN, first_conv_activations
from pipeline.run import execute

from .conftest import ROOT

SPEC = yaml.safe_load((ROOT / "templates" / "hw2" / "assignment.yaml").read_text())


def _metrics(run_dir) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


# ------------------------------------------------------------------------------------------- reference CNN

def test_reference_cnn_shapes_and_parameter_count():
    model = ReferenceCNN().eval()
    x = torch.rand(3, 1, 28, 28)
    assert model(x).shape == (3, 10)
    acts = first_conv_activations(model, x)
    assert acts.shape == (3, 8, 28, 28) and (acts >= 0).all()
    # conv 1->8 5x5, conv 8->16 3x3, fc 576->600->120->10, all with biases
    expected = (8 * 25 + 8) + (16 * 8 * 9 + 16) + (576 * 600 + 600) + (600 * 120 + 120) + (120 * 10 + 10)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_reference_cnn_pools_before_relu_with_the_textbook_result():
    model = ReferenceCNN(dropout=0.0)
    x = torch.randn(8, 1, 28, 28)

    def textbook(m, x):
        x = m.pool(torch.relu(m.conv1(x)))
        x = m.pool(torch.relu(m.conv2(x))).flatten(1)
        return m.fc3(torch.relu(m.fc2(torch.relu(m.fc1(x)))))
    results = []
    for forward in (model, lambda x: textbook(model, x)):
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = forward(x)
        out.float().square().sum().backward()
        results.append([out.detach()] + [p.grad.clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*results))


# ------------------------------------------------------------------------------------------- lr_study

@pytest.mark.slow
def test_lr_study_run_learns_fashion_mnist(smoke_cfg):
    params = config.variant_params(smoke_cfg, "lr_study", "lr5e-4")
    assert params["dataset"] == "fashion-mnist" and params["lr"] == 5e-4
    # 5,000 images and 2 epochs: about 72% test accuracy in a few seconds, well above the 10% of chance.
    params.update(train_limit=5000, epochs=2)
    out = execute("lr_study", "lr5e-4", 0, smoke_cfg, params=params)
    m = _metrics(out)
    assert {"test_acc", "val_acc", "train_acc", "params"} <= set(m)
    assert m["params"] == sum(p.numel() for p in ReferenceCNN().parameters())
    assert m["test_acc"] >= 0.60, m
    history = pd.read_csv(out / "history.csv")
    assert list(history["epoch"]) == [1, 2]
    assert {"train_loss", "val_acc"} <= set(history.columns)
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]


# ------------------------------------------------------------------------------------------- g2p

def _tiny_g2p(cfg: dict, variant: str) -> dict:
    params = config.variant_params(cfg, "g2p", variant)
    params.update(train_limit=300, eval_limit=60, epochs=2, emb=16, enc_hidden=24, dec_hidden=32,
                  batch_size=64, beams=[1, 2, 4])
    return params


@pytest.mark.parametrize("variant", ["attention", "no_attention"])
def test_g2p_run_writes_metrics_beam1_equals_greedy(smoke_cfg, variant):
    params = _tiny_g2p(smoke_cfg, variant)
    out = execute("g2p", variant, 0, smoke_cfg, params=params)
    m = _metrics(out)
    assert m["n_train_words"] == 300 and m["n_test_words"] == 60 and m["n_train_pairs"] >= 300
    assert m["params"] > 0
    for name in ["greedy"] + [f"beam{k}" for k in params["beams"]]:
        for rate in ("wer", "per"):
            assert 0.0 <= m[f"test_{rate}_{name}"] <= 1.0, (name, rate, m)
    assert m["test_wer_beam1"] == m["test_wer_greedy"] and m["test_per_beam1"] == m["test_per_greedy"]

    history = pd.read_csv(out / "history.csv")
    assert list(history["epoch"]) == [1, 2]
    assert {"train_loss", "val_wer", "val_per"} <= set(history.columns)
    assert history["val_wer"].between(0, 1).all()

    extras = json.loads((out / "extras.json").read_text())
    assert extras["attention"] is params["attention"] and extras["examples"]
    for e in extras["examples"]:
        assert e["references"] and set(e["beams"]) == {str(k) for k in params["beams"]}
        if params["attention"]:
            att = torch.tensor(e["attention"])
            assert att.shape == (len(e["attention_rows"]), len(e["word"]))
            assert torch.allclose(att.sum(1), torch.ones(len(att)), atol=1e-3)
        else:
            assert "attention" not in e


def test_g2p_reruns_identically(smoke_cfg):
    """The shuffle and initialisation depend on the seed only: the same run twice gives the same numbers."""
    params = _tiny_g2p(smoke_cfg, "attention")
    params.update(epochs=1, beams=[1])
    first = _metrics(execute("g2p", "attention", 0, smoke_cfg, params=params))
    second = _metrics(execute("g2p", "attention", 0, smoke_cfg, params=params))
    assert first == second
    assert not any(k.startswith("test_seconds") for k in first)  # timings live in extras.json


# ------------------------------------------------------------------------------------------- the report

@pytest.fixture(scope="module")
def hw2_pdf(smoke_workflow) -> tuple[PdfReader, str]:
    reader = PdfReader(smoke_workflow / "reports" / "hw2.pdf")
    return reader, " ".join(" ".join(p.extract_text().split()) for p in reader.pages)


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


@pytest.mark.slow
def test_hw2_within_page_limit(hw2_pdf):
    reader, _ = hw2_pdf
    assert 1 <= len(reader.pages) <= SPEC["page_limit"] == 8


@pytest.mark.slow
def test_hw2_every_question_heading_in_order(hw2_pdf):
    _, text = hw2_pdf
    questions = [s["title"] for s in SPEC["sections"] if s["id"].startswith("q")]
    assert len(questions) == 3
    positions = [text.find(title) for title in questions]
    assert all(p >= 0 for p in positions), dict(zip(questions, positions))
    assert positions == sorted(positions)


@pytest.mark.slow
def test_hw2_lr_study_numbers_are_the_table_numbers(hw2_pdf, smoke_workflow):
    _, text = hw2_pdf
    table = pd.read_csv(smoke_workflow / "results" / "tables" / "lr_study.csv")
    assert len(table) == 3
    for _, row in table.iterrows():
        for col in ("test_acc", "val_acc", "train_acc", "best_val_acc"):
            assert _pct(row[col]) in text, (row["variant"], col, _pct(row[col]))
        assert f"{row['first_train_loss']:.3f} → {row['final_train_loss']:.3f}" in text, row["variant"]
        assert f"{row['seconds_per_epoch']:.1f}" in text
    assert f"{int(table['params'].iloc[0]):,} parameters" in text
    best = table.loc[table["val_acc"].idxmax()]
    assert f"with test accuracy {_pct(best['test_acc'])}%" in text


@pytest.mark.slow
def test_hw2_g2p_and_conv_numbers_come_from_results(hw2_pdf, smoke_workflow):
    _, text = hw2_pdf
    g2p = pd.read_csv(smoke_workflow / "results" / "tables" / "g2p.csv")
    for _, row in g2p.iterrows():
        for col in [c for c in g2p.columns if c.startswith(("test_wer_", "test_per_")) and not c.endswith("_std")]:
            assert _pct(row[col]) in text, (row["variant"], col)
        assert f"{int(row['params']):,}" in text
    conv = json.loads((smoke_workflow / "results" / "analysis" / "conv_matrix.json").read_text())
    assert "[" + ", ".join(map(str, conv["example"]["torch_conv2d"])) + "]" in text
    assert f"{conv['conv_vs_torch']['max_abs_diff']:.1e}" in text


def _rate_row(val_acc: list[float], lr: float = 1e-5) -> pd.Series:
    from pipeline.aggregate.lr_study import _curve_summary
    n = len(val_acc)
    h = pd.DataFrame({"epoch": range(1, n + 1), "val_acc": val_acc, "train_loss": [1.0 / (e + 1) for e in range(n)]})
    return pd.Series({**_curve_summary(h), "lr": lr, "test_acc": val_acc[-1]})


def test_a_curve_still_rising_is_not_called_levelled_off_for_a_small_last_step():
    from pipeline.report.hw2 import _behaviour
    # The default build's lr 1e-5: +0.33 pp per epoch over its last 6 epochs, only +0.18 pp in the last one.
    rising = [0.70 + 0.005 * e for e in range(14)] + [0.7719, 0.7839, 0.7861, 0.7927, 0.7945, 0.7963]
    text = _behaviour(_rate_row(rising))
    assert "still improving after 20 epochs" in text and "per epoch over the last 6 epochs" in text, text
    # A flat curve whose last epoch jumps by 0.9 pp (the noise of 5,000 validation images) has levelled off.
    flat = [0.88 + 0.01 * min(e, 10) / 10 for e in range(14)] + [0.8973, 0.8936, 0.8929, 0.893, 0.8903, 0.8993]
    text = _behaviour(_rate_row(flat, lr=1e-2))
    assert "has levelled off" in text, text


def _seeds_row(slope: float, std: float, lr: float = 5e-4) -> pd.Series:
    return pd.Series({"lr": lr, "test_acc": 0.91, "epochs_run": 20, "recent_epochs": 6, "n_seeds": 3,
                      "recent_val_slope": slope, "recent_val_slope_std": std, "best_val_acc": 0.92, "best_epoch": 19,
                      "final_train_loss": 0.17})


def test_the_end_of_a_learning_curve_is_worded_by_a_test_over_seeds():
    from pipeline.report.hw2 import _behaviour
    # It called a rate "still improving" or "levelled off" from the mean slope alone: the default build's lr 5e-4,
    # +0.09 pp per epoch with a 95% CI of -0.20 to +0.38 pp over 3 seeds, was "levelled off".
    text = _behaviour(_seeds_row(0.0033, 0.0003, lr=1e-5))
    assert "still improving after 20 epochs" in text and "95% CI +0.26 to +0.40 pp, t-test over 3 seeds" in text
    text = _behaviour(_seeds_row(0.0009, 0.0012))
    assert "shows no clear rise at the end" in text and "not distinguishable from flat" in text
    assert "levelled off" not in text and "still improving" not in text
    assert "has levelled off" in _behaviour(_seeds_row(0.0002, 0.0001))
    assert "still rises slowly" in _behaviour(_seeds_row(0.0008, 0.0001))


def test_one_sample_test_matches_scipy():
    import numpy as np
    from scipy import stats as st
    from pipeline.stats import one_sample
    x = np.array([0.0021, 0.0035, 0.0043])
    d = one_sample(x.mean(), x.std(ddof=1), len(x))
    ref = st.ttest_1samp(x, 0.0)
    low, high = ref.confidence_interval(0.95)
    assert d.p == pytest.approx(ref.pvalue) and (d.low, d.high) == (pytest.approx(low), pytest.approx(high))


def test_a_best_epoch_averaged_over_seeds_prints_with_at_most_one_decimal():
    from pipeline.report.hw2 import mean_epoch
    assert [mean_epoch(x) for x in (19.0, 53 / 3, 12.25)] == ["19", "17.7", "12.2"]
