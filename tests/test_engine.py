"""The run engine: atomic outputs with provenance, identical results for the same seed, and resume."""
import csv
import json
from pathlib import Path

import pytest

from pipeline import config
from pipeline.run import checkpoint_dir, execute, run_dir
from pipeline.train import INTERRUPT_ENV, Interrupted


def _metrics(path: Path) -> str:
    return (path / "metrics.json").read_text()


def test_run_writes_metrics_history_model_and_provenance(smoke_cfg):
    out = execute("autoencoder", "ae16", 0, smoke_cfg)
    assert out == run_dir(smoke_cfg["results_dir"], "autoencoder", "ae16", 0)
    assert sorted(p.name for p in out.iterdir()) == ["history.csv", "metrics.json", "model.pt", "run.json"]
    rows = list(csv.DictReader(open(out / "history.csv")))
    epochs = config.variant_params(smoke_cfg, "autoencoder", "ae16")["epochs"]
    assert [int(r["epoch"]) for r in rows] == list(range(1, epochs + 1))
    assert {"train_loss", "val_mse", "seconds"} <= set(rows[0])
    info = json.loads((out / "run.json").read_text())
    for key in ("params", "seed", "profile", "git_commit", "packages", "device", "threads", "wall_seconds"):
        assert key in info
    assert info["profile"] == "smoke" and info["packages"]["torch"].startswith("2.14")
    assert not checkpoint_dir(smoke_cfg["results_dir"], "autoencoder", "ae16", 0).exists()


def test_same_seed_gives_identical_metrics(smoke_cfg, tmp_path):
    first = execute("cnn", "base", 3, smoke_cfg)
    smoke_cfg["results_dir"] = str(tmp_path / "again")
    second = execute("cnn", "base", 3, smoke_cfg)
    assert _metrics(first) == _metrics(second)
    smoke_cfg["results_dir"] = str(tmp_path / "other_seed")
    assert _metrics(execute("cnn", "base", 4, smoke_cfg)) != _metrics(first)


@pytest.mark.parametrize("family, variant, stop", [("autoencoder", "ae32", "train:1"),
                                                   ("stacked", "sae128", "finetune:1")])
def test_interrupted_run_resumes_to_the_same_result(smoke_cfg, tmp_path, monkeypatch, family, variant, stop):
    # An extra epoch so the interruption falls in the middle of a stage.
    fam = smoke_cfg["families"][family]
    fam["defaults"]["epochs" if family == "autoencoder" else "finetune_epochs"] = 2
    reference = execute(family, variant, 0, smoke_cfg)

    smoke_cfg["results_dir"] = str(tmp_path / "interrupted")
    monkeypatch.setenv(INTERRUPT_ENV, stop)
    with pytest.raises(Interrupted):
        execute(family, variant, 0, smoke_cfg)
    ckpts = checkpoint_dir(smoke_cfg["results_dir"], family, variant, 0)
    assert (ckpts / f"{stop.split(':')[0]}.pt").exists()
    assert not (run_dir(smoke_cfg["results_dir"], family, variant, 0) / "metrics.json").exists()

    monkeypatch.delenv(INTERRUPT_ENV)
    resumed = execute(family, variant, 0, smoke_cfg)
    assert _metrics(resumed) == _metrics(reference)
    assert not ckpts.exists()
