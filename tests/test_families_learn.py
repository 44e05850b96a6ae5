"""Each image family learns on a few thousand images: accuracy far above chance (10%), reconstruction below PCA."""
import json

import pytest

from pipeline.run import execute


def _run(cfg, family, variant, **over):
    cfg["train_limit"], cfg["eval_limit"] = 4000, 1000
    cfg["families"][family]["defaults"].update(over)
    return json.loads((execute(family, variant, 0, cfg) / "metrics.json").read_text())


@pytest.mark.parametrize("family, variant, over, key, floor", [
    ("cnn", "base", {"epochs": 2}, "test_acc", 0.70),
    ("vit", "small", {"epochs": 2}, "test_acc", 0.60),
    ("stacked", "sae256_64", {"pretrain_epochs": 1, "classifier_epochs": 1, "finetune_epochs": 2,
                              "few_label_epochs": 3}, "acc_finetuned", 0.60),
])
def test_classifiers_learn(smoke_cfg, family, variant, over, key, floor):
    metrics = _run(smoke_cfg, family, variant, **over)
    assert metrics[key] >= floor, metrics


def test_autoencoder_reconstructs_far_better_than_the_mean_image(smoke_cfg, data_dir):
    from pipeline.data import images
    split = images.splits("mnist", data_dir, train_limit=4000, eval_limit=1000)
    train, test = split.train[0].float() / 255, split.test[0].float() / 255
    mean_image_mse = ((test - train.mean(0)) ** 2).mean().item()
    metrics = _run(smoke_cfg, "autoencoder", "ae32", epochs=8)
    assert metrics["test_mse"] < 0.5 * mean_image_mse, (metrics, mean_image_mse)
    # PCA on the same images is the reference the default profile must beat; here it is only sanity-checked.
    assert 0 < metrics["pca_test_mse"] < mean_image_mse
