"""MNIST-style image datasets as a run reads them: verified by SHA-256, loaded into memory, split.

Files live uncompressed where torchvision's dataset classes look for them (`data/<Folder>/raw/`), so
`torchvision.datasets.MNIST(data_dir, download=False)` and our loader read the very same bytes. Where the files come
from is pipeline/data/fetch.py: this module is part of every run's code digest, that one is not, so a change to how
data is fetched retrains nothing (what a run reads is pinned by the digests here).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

SPLIT_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


class DataError(RuntimeError):
    """A one-line, user-facing data problem that names the fix."""


@dataclass(frozen=True)
class Dataset:
    folder: str                       # torchvision's folder name under the data root
    sha256: dict[str, str] | None     # file name -> digest of the uncompressed file; None = trust torchvision's MD5


DATASETS: dict[str, Dataset] = {
    "mnist": Dataset(
        folder="MNIST",
        sha256={
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        }),
    "fashion-mnist": Dataset(
        folder="FashionMNIST",
        sha256={
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        }),
    # No digests of the uncompressed KMNIST files are pinned here: torchvision checks the archives' MD5s on download.
    "kmnist": Dataset(folder="KMNIST", sha256=None),
}


def source(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}") from None


def raw_dir(name: str, data_dir: Path) -> Path:
    return Path(data_dir) / source(name).folder / "raw"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(name: str, data_dir: Path) -> None:
    """Raise DataError naming the first missing or corrupted file, its expected digest and the fix."""
    src = source(name)
    folder = raw_dir(name, data_dir)
    for fname in SPLIT_NAMES.values():
        path = folder / fname
        fix = f"run `python -m pipeline fetch-data {name}`"
        if not path.exists():
            raise DataError(f"{name}: missing {path}; {fix}")
        if src.sha256 is None:
            continue
        got = sha256(path)
        if got != src.sha256[fname]:
            raise DataError(f"{name}: {path} has SHA-256 {got[:12]}…, expected {src.sha256[fname]}; "
                            f"delete it and {fix}")


def _read_idx(path: Path) -> np.ndarray:
    raw = path.read_bytes()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(name: str, data_dir: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Verified train and test sets as uint8 images [N,28,28] and int64 labels, held in memory."""
    verify(name, data_dir)
    folder = raw_dir(name, data_dir)
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x = torch.from_numpy(_read_idx(folder / f"{prefix}-images-idx3-ubyte").copy())
        y = torch.from_numpy(_read_idx(folder / f"{prefix}-labels-idx1-ubyte").astype(np.int64))
        out[split] = (x, y)
    return out


@dataclass
class Splits:
    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]

    def to(self, device) -> "Splits":
        move = lambda pair: (pair[0].to(device), pair[1].to(device))  # noqa: E731
        return Splits(move(self.train), move(self.val), move(self.test))


def splits(name: str, data_dir: Path, val_size: int = 5000, split_seed: int = 1234,
           train_limit: int | None = None, eval_limit: int | None = None) -> Splits:
    """A fixed, seeded hold-out of the training images for validation; the official test set for test."""
    data = load(name, data_dir)
    x, y = data["train"]
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(split_seed))
    val_idx, train_idx = perm[:val_size], perm[val_size:]
    if train_limit:
        train_idx = train_idx[:train_limit]
    if eval_limit:
        val_idx = val_idx[:eval_limit]
    xt, yt = data["test"]
    if eval_limit:
        xt, yt = xt[:eval_limit], yt[:eval_limit]
    return Splits((x[train_idx], y[train_idx]), (x[val_idx], y[val_idx]), (xt, yt))
