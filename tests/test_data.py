"""Datasets are verified by SHA-256 on every use; a corrupted or missing file is named with its fix."""
import shutil

import pytest
import torch

from pipeline.data import fetch as fetching
from pipeline.data import images
from pipeline.data.images import DataError


def test_mnist_is_verified_and_matches_torchvision(data_dir):
    import torchvision
    tv = torchvision.datasets.MNIST(str(data_dir), train=True, download=False)
    ours = images.load("mnist", data_dir)
    x, y = ours["train"]
    assert x.shape == (60000, 28, 28) and x.dtype == torch.uint8
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert torch.equal(tv.data, x) and torch.equal(tv.targets, y)
    assert ours["test"][0].shape == (10000, 28, 28)


def test_fashion_mnist_verified(data_dir):
    images.verify("fashion-mnist", data_dir)
    assert images.load("fashion-mnist", data_dir)["test"][0].shape == (10000, 28, 28)


def test_corrupted_copy_is_rejected_naming_file_digest_and_fix(tmp_path, data_dir):
    raw = images.raw_dir("mnist", tmp_path)
    shutil.copytree(images.raw_dir("mnist", data_dir), raw)
    images.verify("mnist", tmp_path)  # the intact copy passes
    target = raw / "t10k-labels-idx1-ubyte"
    blob = bytearray(target.read_bytes())
    blob[100] ^= 0xFF
    target.write_bytes(bytes(blob))
    with pytest.raises(DataError) as err:
        images.load("mnist", tmp_path)
    msg = str(err.value)
    assert "t10k-labels-idx1-ubyte" in msg
    assert images.DATASETS["mnist"].sha256["t10k-labels-idx1-ubyte"] in msg
    assert "fetch-data mnist" in msg and "\n" not in msg


def test_missing_file_names_the_fix(tmp_path):
    with pytest.raises(DataError, match=r"missing .*train-images-idx3-ubyte.*fetch-data mnist"):
        images.verify("mnist", tmp_path)


def test_validation_split_is_fixed_and_disjoint(data_dir):
    a = images.splits("mnist", data_dir, val_size=5000, split_seed=1234)
    b = images.splits("mnist", data_dir, val_size=5000, split_seed=1234)
    assert torch.equal(a.val[0], b.val[0]) and len(a.train[0]) == 55000 and len(a.val[0]) == 5000
    limited = images.splits("mnist", data_dir, val_size=5000, split_seed=1234, train_limit=100, eval_limit=50)
    assert len(limited.train[0]) == 100 and len(limited.val[0]) == 50 and len(limited.test[0]) == 50
    # no validation image is also a training image (compare raw bytes of a sample)
    train_set = {bytes(img.numpy()) for img in a.train[0][:20000]}
    assert not any(bytes(img.numpy()) in train_set for img in a.val[0][:500])


def test_fetch_data_without_names_fetches_what_the_config_uses(tmp_path, data_dir, capsys):
    # `make data` runs a bare `fetch-data`; argparse `choices` with nargs="*" refused it on Python 3.11.
    from pipeline.__main__ import main
    from pipeline.workflow import datasets_used
    from pipeline import config
    local = tmp_path / "data"
    for name in ("MNIST", "FashionMNIST"):
        shutil.copytree(data_dir / name, local / name)
    user = tmp_path / "user.yaml"
    user.write_text(f"data_dir: {local}\n")
    assert main(["fetch-data", "--configfile", str(user)]) == 0
    assert datasets_used(config.load("default")) == ["fashion-mnist", "mnist"]
    assert main(["fetch-data", "mnst", "--configfile", str(user)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "error: unknown dataset 'mnst'; choose from mnist, fashion-mnist, kmnist"


@pytest.mark.skipif(not images.Path(fetching.ORIGINS["fashion-mnist"].debian_dir).is_dir(),
                    reason="needs the Debian package dataset-fashion-mnist")
def test_two_fetches_into_one_folder_at_once_both_succeed(tmp_path, monkeypatch):
    # Two builds (or pytest's two workers) fetching into one empty data folder wrote the same .part files and
    # renamed them from under each other: one failed ("no source worked") or fell through to another source.
    # A slow copy makes them overlap every time.
    import threading
    import time
    copy = fetching.shutil.copyfileobj

    def slow_copy(src, dst, *args):
        time.sleep(0.2)
        return copy(src, dst, *args)

    monkeypatch.setattr(fetching.shutil, "copyfileobj", slow_copy)
    errors, log = [], []

    def fetch():
        try:
            fetching.fetch("fashion-mnist", tmp_path, log=log.append)
        except Exception as exc:  # collected: a thread's exception would not fail the test
            errors.append(str(exc))

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # The second waits for the first and finds the files verified: one copy, not two racing.
    assert [m for m in log if "fetching" in m] == ["fashion-mnist: fetching from Debian package dataset-fashion-mnist"]
    images.verify("fashion-mnist", tmp_path)


def test_an_unknown_dataset_is_refused_before_anything_is_written(tmp_path):
    folder = tmp_path / "data"
    with pytest.raises(DataError, match=r"unknown dataset 'mnst'; choose one of: mnist, fashion-mnist, kmnist"):
        fetching.fetch("mnst", folder, log=lambda m: None)
    assert not folder.exists()  # no data folder and no lock file made for a name that has no source


def test_every_dataset_has_an_origin_and_every_origin_a_dataset():
    assert set(fetching.ORIGINS) == set(images.DATASETS)
