"""The CNN design-space findings on constructed tables: what helped or hurt is decided by a test across seeds."""
import pandas as pd

from pipeline.report import session3

FAMILY = {"defaults": {"channels": [16, 32], "kernel": 3, "pool": "max", "batch_norm": False, "dropout": 0.0},
          "variants": {"base": {}, "kernel7": {"kernel": 7}, "avg_pool": {"pool": "avg"},
                       "batch_norm": {"batch_norm": True}, "dropout": {"dropout": 0.3}}}
TEST_ACC = {"base": 0.9874, "kernel7": 0.9899, "avg_pool": 0.9820, "batch_norm": 0.9904, "dropout": 0.9867}


def _table(n_seeds: int, std: float) -> pd.DataFrame:
    return pd.DataFrame([{"variant": v, "change": v, "n_seeds": n_seeds, "params": 206922, "macs": 1218048,
                          "seconds_per_epoch": 10.0, "val_acc": acc, "val_acc_std": std if n_seeds > 1 else float("nan"),
                          "test_acc": acc, "test_acc_std": std if n_seeds > 1 else float("nan")}
                         for v, acc in TEST_ACC.items()])


def _findings(table: pd.DataFrame) -> str:
    return " ".join(session3.cnn(table, FAMILY)["findings"])


def test_what_helped_is_decided_by_welchs_test_against_base():
    # It listed every positive mean difference under "Helped most" and every other one under "No gain or a loss",
    # with no test: dropout's -0.07 pp read as a loss.
    text = _findings(_table(3, 0.0005))
    assert "Helped beyond seed noise" in text and "Helped most" not in text
    assert "normalisation: batch_norm +0.30 pp [" in text and "kernel size: kernel7 +0.25 pp [" in text
    assert "Hurt beyond seed noise: pooling: avg_pool -0.54 pp [" in text
    assert "Not distinguishable from base with 3 seeds (best variant of each): regularisation: dropout -0.07 pp" in text
    # A spread as large as the differences: nothing helped or hurt.
    wide = _findings(_table(3, 0.01))
    assert "Helped beyond seed noise" not in wide and "Hurt beyond seed noise" not in wide
    assert "Not distinguishable from base with 3 seeds" in wide


def test_one_seed_keeps_the_sign_only_wording():
    text = _findings(_table(1, 0.0))
    assert "Helped most: normalisation: batch_norm +0.30 pp" in text and "beyond seed noise" not in text
    assert "One seed per variant" in text


def _sized(std: float) -> pd.DataFrame:
    """Base, half and double the parameters; accuracy +0.5 pp per doubling."""
    table = _table(3, std).iloc[:3].copy()
    table["params"] = [200000, 100000, 400000]
    table["test_acc"] = [0.985, 0.980, 0.990]
    return table


def test_parameters_against_accuracy_carries_a_trend_test():
    # It said "Cost and accuracy are loosely tied" from the two spans alone, whatever the seeds said.
    tight = next(f for f in session3.cnn(_sized(0.0005), FAMILY)["findings"] if f.startswith("Parameters"))
    assert "over all 3 variants: parameters span 100,000–400,000 (4×), test accuracy 98.00%–99.00%" in tight
    assert "+0.50 pp per doubling of the parameters (least squares on log₂ parameters; beyond seed noise" in tight
    wide = next(f for f in session3.cnn(_sized(0.02), FAMILY)["findings"] if f.startswith("Parameters"))
    assert "not distinguishable from no trend with 3 seeds per point" in wide
    # Every variant the same size: no trend to fit.
    same = next(f for f in session3.cnn(_table(3, 0.0005), FAMILY)["findings"] if f.startswith("Parameters"))
    assert "per doubling" not in same


def test_cnn_against_the_fully_connected_stack_is_tested_across_seeds():
    # 3.2-Q1.c gave the two accuracies side by side with no test of their difference.
    conv = {"param_counts": {"conv": {"layer": "Conv2d", "numel": 320}, "fc": {"layer": "Linear", "numel": 61544},
                             "ratio_fc_over_conv": 192.3},
            "equivariance": {"shift": [3, 2], "conv": {"max_abs_diff": 0.0}, "fc": {"max_abs_diff": 1.07}}}
    base = pd.Series({"test_acc": 0.9874, "test_acc_std": 0.001, "n_seeds": 3, "params": 206922})
    stack = pd.Series({"acc_finetuned": 0.9837, "acc_finetuned_std": 0.0005, "n_seeds": 3, "params": 567434})
    text = session3.why_cnns(conv, {"base": base}, {"best": stack})
    assert ("the base CNN (206,922 parameters) 98.74% vs the best fully connected stack of section 1 (567,434) "
            "98.37% (+0.37 pp; beyond seed noise: 95% CI") in text
    noisy = base.copy()
    noisy["test_acc_std"] = 0.01
    assert "(+0.37 pp; not distinguishable from seed noise with 3 seeds" in session3.why_cnns(
        conv, {"base": noisy}, {"best": stack})
