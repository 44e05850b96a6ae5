"""Nothing lost, nothing silently wrong, no code run from data: the faults and hostile inputs of issue 11."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from pipeline import config, workflow
from pipeline.paths import checkpoint_dir, run_dir
from pipeline.run import execute
from pipeline.train import INTERRUPT_ENV, Interrupted

from .conftest import ROOT, planned_jobs, run_cli, snakemake


class _Payload:
    """Pickles to a call that creates a file: what a hostile checkpoint or model file would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _hostile_file(path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {}, "epoch": 1, "history": [], "payload": _Payload(marker)}, path)


# ---------------------------------------------------------------- 1. no code runs from results/

def test_a_hostile_checkpoint_is_never_unpickled(smoke_cfg, tmp_path):
    marker = tmp_path / "pwned"
    _hostile_file(checkpoint_dir(smoke_cfg["results_dir"], "autoencoder", "ae16", 0) / "train.pt", marker)
    out = execute("autoencoder", "ae16", 0, smoke_cfg)
    assert not marker.exists(), "a checkpoint's pickled code ran"
    assert (out / "metrics.json").exists()


def test_a_hostile_model_file_is_refused_by_the_aggregate(smoke_cfg, tmp_path):
    from pipeline.aggregate import trained_model  # registry.load_run, as every aggregate loads a model
    marker = tmp_path / "pwned"
    _hostile_file(run_dir(smoke_cfg["results_dir"], "autoencoder", "ae16", 0) / "model.pt", marker)
    with pytest.raises(Exception):
        trained_model(smoke_cfg, "autoencoder", "ae16", 0)
    assert not marker.exists(), "a model file's pickled code ran"


def test_no_torch_load_without_weights_only():
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in (ROOT / "pipeline").rglob("*.py")
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if "torch.load(" in line and "weights_only=True" not in line]
    assert offenders == []


# ---------------------------------------------------------------- 2. a checkpoint from other settings

def _interrupt(cfg, monkeypatch, family="autoencoder", variant="ae32"):
    monkeypatch.setenv(INTERRUPT_ENV, "train:1")
    with pytest.raises(Interrupted):
        execute(family, variant, 0, cfg)
    monkeypatch.delenv(INTERRUPT_ENV)
    assert (checkpoint_dir(cfg["results_dir"], family, variant, 0) / "train.pt").exists()


def test_changed_learning_rate_discards_the_checkpoint(smoke_cfg, tmp_path, monkeypatch, capfd):
    smoke_cfg["families"]["autoencoder"]["defaults"]["epochs"] = 2
    fresh_cfg = {**smoke_cfg, "results_dir": str(tmp_path / "fresh")}
    fresh_cfg["families"] = json.loads(json.dumps(smoke_cfg["families"]))
    fresh_cfg["families"]["autoencoder"]["defaults"]["lr"] = 0.003
    fresh = execute("autoencoder", "ae32", 0, fresh_cfg)

    _interrupt(smoke_cfg, monkeypatch)            # one epoch at lr 0.001 ...
    smoke_cfg["families"]["autoencoder"]["defaults"]["lr"] = 0.003
    capfd.readouterr()
    resumed = execute("autoencoder", "ae32", 0, smoke_cfg)  # ... must not be continued at lr 0.003
    err = capfd.readouterr().err
    assert "discarding checkpoints" in err and "params.lr 0.001 -> 0.003" in err
    assert (resumed / "metrics.json").read_text() == (fresh / "metrics.json").read_text()
    assert json.loads((resumed / "run.json").read_text())["params"]["lr"] == 0.003


def test_changed_model_size_starts_afresh_instead_of_crashing(smoke_cfg, monkeypatch):
    smoke_cfg["families"]["autoencoder"]["defaults"]["epochs"] = 2
    _interrupt(smoke_cfg, monkeypatch)
    smoke_cfg["families"]["autoencoder"]["variants"]["ae32"]["encoding_dim"] = 24
    out = execute("autoencoder", "ae32", 0, smoke_cfg)
    assert json.loads((out / "run.json").read_text())["params"]["encoding_dim"] == 24


def test_an_unchanged_run_still_resumes(smoke_cfg, monkeypatch, capfd):
    smoke_cfg["families"]["autoencoder"]["defaults"]["epochs"] = 2
    _interrupt(smoke_cfg, monkeypatch)
    capfd.readouterr()
    execute("autoencoder", "ae32", 0, smoke_cfg)
    err = capfd.readouterr().err
    assert "resuming after epoch 1" in err and "discarding" not in err


# ---------------------------------------------------------------- 3. data verified by content, before planning

@pytest.fixture
def private_data(tmp_path, data_dir) -> Path:
    dest = tmp_path / "data"
    shutil.copytree(data_dir / "MNIST", dest / "MNIST")
    return dest


def test_corrupted_data_stops_the_build_and_deletes_nothing(tmp_path, private_data):
    work = tmp_path / "work"
    work.mkdir()
    target = "results/runs/autoencoder/ae16/seed0/metrics.json"
    args = ["--cores", "1", target, "--config", "profile=smoke", f"data_dir={private_data}"]
    first = snakemake(work, *args)
    assert first.returncode == 0, first.stderr[-2000:]
    finished = (work / target).read_text()

    # A byte-identical re-fetch (new modification time) retrains nothing.
    images = private_data / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes())
    assert planned_jobs(snakemake(work, "-n", *args)) == {}

    # One flipped byte: one line naming the file and the fix, and the finished run is still there.
    raw = bytearray(images.read_bytes())
    raw[5000] ^= 0xFF
    images.write_bytes(bytes(raw))
    proc = snakemake(work, *args)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "train-images-idx3-ubyte has SHA-256" in out and "fetch-data mnist" in out
    assert (work / target).read_text() == finished


# ---------------------------------------------------------------- 5. the user's settings win over the profile

def test_user_settings_override_the_profile(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"seeds": [0, 1, 2], "train_limit": 700,
                                    "families": {"cnn": {"defaults": {"epochs": 3}}}}))
    cfg = config.load("smoke", configfiles=[mine])
    assert cfg["seeds"] == [0, 1, 2] and cfg["train_limit"] == 700
    assert config.variant_params(cfg, "cnn", "base")["epochs"] == 3
    assert config.load("smoke", configfiles=[mine], overrides={"train_limit": 900})["train_limit"] == 900


def test_user_settings_are_validated_and_named(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"train_limit": 0}))
    with pytest.raises(config.ConfigError, match=f"train_limit.*fix {mine}"):
        config.load("smoke", configfiles=[mine])


def test_snakemake_applies_the_command_line_after_the_profile(tmp_path):
    proc = snakemake(tmp_path, "-n", "--cores", "1", "--config", "profile=smoke", "seeds=[0,1,2]",
                     f"data_dir={ROOT / 'data'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    smoke = config.load("smoke")
    assert planned_jobs(proc)["train"] == 3 * sum(len(f["variants"]) for f in smoke["families"].values())


# ---------------------------------------------------------------- 6. a full disk

@pytest.fixture
def tiny_disk(tmp_path):
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", str(mnt)])


def test_full_disk_says_so_in_one_line_and_leaves_no_temporary_files(tiny_disk, tmp_path, data_dir):
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"results_dir": str(tiny_disk / "results"), "data_dir": str(data_dir)}))
    proc = run_cli("run", "autoencoder", "ae32", "--profile", "smoke", "--configfile", str(mine))
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: disk full") and "Traceback" not in proc.stderr
    left = [p.name for p in tiny_disk.rglob("*") if ".tmp" in p.name]
    assert left == []


# ---------------------------------------------------------------- 7. smaller ones

def test_missing_configfile_is_one_line(tmp_path):
    proc = run_cli("run", "autoencoder", "ae16", "--profile", "smoke", "--configfile", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"error: config file {tmp_path / 'nope.yaml'} not found; check the path given to --configfile"


@pytest.mark.parametrize("name, first", [("cnn_vs_vit", "tables/cnn.csv"), ("hw2", "tables/lr_study.csv")])
def test_a_report_without_its_results_is_one_line_naming_them(tmp_path, name, first):
    """`python -m pipeline report NAME` before any run: the missing results and how to build them, in one line;
    it raised FileNotFoundError from pandas (cnn_vs_vit) or from reading an analysis (hw2), with a traceback."""
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"results_dir": str(tmp_path / "results"), "reports_dir": str(tmp_path / "r")}))
    proc = run_cli("report", name, "--profile", "smoke", "--configfile", str(mine))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    line = proc.stderr.strip()
    assert "\n" not in line and first in line and "make report PROFILE=smoke" in line, line
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_unwritable_results_folder_fails_before_training(tmp_path, data_dir):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"results_dir": str(blocker / "results"), "data_dir": str(data_dir)}))
    proc = run_cli("run", "autoencoder", "ae16", "--profile", "smoke", "--configfile", str(mine))
    assert proc.returncode == 2
    assert "cannot write to" in proc.stderr and "epoch" not in proc.stderr


@pytest.mark.parametrize("override", [{"results_dir": "../elsewhere"}, {"reports_dir": "out/../../x"},
                                      {"data_dir": ".."},
                                      {"families": {"cnn": {"variants": {"..": {"kernel": 5}}}}},
                                      {"families": {"cnn": {"variants": {"a/b": {"kernel": 5}}}}}])
def test_paths_and_variant_names_cannot_leave_their_folder(override):
    with pytest.raises(config.ConfigError, match="is refused"):
        config.load("smoke", overrides=override)


def test_restating_a_setting_changes_no_job_slice(tmp_path):
    base = config.load("smoke")
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"families": {"cnn": {"variants": {"kernel5": {"kernel": 5}, "base": {"kernel": 3}},
                                                         "seeds": [0]}}}))
    again = config.load("smoke", configfiles=[mine])
    for fam in base["families"]:
        assert workflow.family_slice(again, fam) == workflow.family_slice(base, fam) or fam == "cnn"
        for variant in base["families"][fam]["variants"]:
            assert workflow.run_slice(again, fam, variant) == workflow.run_slice(base, fam, variant)
    # The order tables show survives the round trip through the command line.
    sliced = workflow.from_slice(workflow.family_slice(again, "cnn"))
    assert list(sliced["families"]["cnn"]["variants"]) == list(base["families"]["cnn"]["variants"])
    vit = workflow.from_slice(workflow.family_slice(base, "vit"))["families"]["vit"]["variants"]
    assert all(list(vit[v]) == list(own) for v, own in base["families"]["vit"]["variants"].items())
