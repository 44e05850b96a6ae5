"""The stacked autoencoders' pretraining finding, on constructed tables: it may only call a difference noise (or not)
where seeds allow a test."""
import pandas as pd

from pipeline.report import session3


def _table(n_seeds: int, std: float) -> pd.DataFrame:
    rows = []
    for variant, params, finetuned, random_init, few_finetuned, few_random in [
            ("sae128", 101770, .9675, .9758, .8681, .8707),
            ("sae256_64", 218058, .9759, .9803, .8698, .8702),
            ("sae512_256_128", 567434, .9831, .9845, .8855, .8690)]:
        rows.append({"variant": variant, "params": params, "n_seeds": n_seeds, "val_acc_finetuned": finetuned,
                     "acc_finetuned": finetuned, "acc_frozen": finetuned - .08, "acc_random": random_init,
                     "few_acc_finetuned": few_finetuned, "few_acc_random": few_random,
                     "n_labels": 55000, "n_labels_few": 550})
    t = pd.DataFrame(rows)
    for col in ["val_acc_finetuned", "acc_finetuned", "acc_frozen", "acc_random", "few_acc_finetuned",
                "few_acc_random"]:
        t[f"{col}_std"] = std if n_seeds > 1 else float("nan")
    return t


def test_one_seed_per_variant_decides_nothing_about_pretraining():
    text = session3.stacked(_table(1, 0.0))["pretraining"]
    # It said "no difference exceeds seed noise" and "shows no consistent benefit" with no test behind either, and
    # "single seed: no test" after each of the six differences.
    assert "no difference exceeds seed noise" not in text
    assert "no consistent benefit" not in text
    assert "single seed" not in text
    assert "with all 55,000 labels 128 -0.83 pp, 256-64 -0.44 pp, 512-256-128 -0.14 pp" in text
    assert "with 550 labels 128 -0.26 pp, 256-64 -0.04 pp, 512-256-128 +1.65 pp" in text
    assert "One seed per variant cannot tell these from seed noise" in text
    assert "whether layer-wise pretraining pays is left open" in text


def test_three_seeds_word_the_pretraining_finding_by_the_test():
    # With a tiny spread every difference is beyond noise: random init wins with all labels, pretraining
    # pays for the deepest stack with few.
    text = session3.stacked(_table(3, 0.0005))["pretraining"]
    assert "With all 55,000 labels random initialisation is better for 128, 256-64, 512-256-128" in text
    assert "With 550 labels pretraining pays for 512-256-128 and costs for 128" in text
    assert "95% CI" in text
    # A spread as large as the differences: nothing beyond noise.
    wide = session3.stacked(_table(3, 0.02))["pretraining"]
    assert wide.count("no difference exceeds seed noise") == 2
    assert "shows no consistent benefit" in wide


def test_the_fine_tuning_lift_carries_its_test():
    # It gave the lift's range (+8.00 pp here) with no test behind it.
    text = session3.stacked(_table(3, 0.0005))["tuning"]
    assert "3 of 3 beyond seed noise; least clear, 128: beyond seed noise: 95% CI" in text
    assert "single seed: no test" in session3.stacked(_table(1, 0.0))["tuning"]
