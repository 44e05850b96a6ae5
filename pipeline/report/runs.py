"""The runs behind every number: for each variant of a family, its run ids, commit, profile and precision.

The appendix prints one row per variant (id `run-FAMILY-VARIANT`), and the main report's variant names link to it,
so a reader can go from a printed number to the seeds that produced it and their folders under results/runs/.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from .. import config as cfglib
from .. import paths

ANCHOR = "run-{family}-"


def anchor_prefix(family: str) -> str:
    """The id prefix of a family's rows in the appendix (templates get it as `run_anchor`)."""
    return ANCHOR.format(family=family)


def run_index(cfg: dict, results: Path, family: str, reports_dir: Path) -> pd.DataFrame:
    """One row per variant: runs (family/variant/seedN), commit(s), profile(s), precision(s), device(s), folder."""
    rows = []
    for variant in cfg["families"][family]["variants"]:
        infos, ids = [], []
        for seed in cfglib.seeds(cfg, family):
            info = paths.run_dir(results, family, variant, seed) / paths.RUN_INFO
            ids.append(paths.run_id(family, variant, seed))
            if info.exists():
                infos.append(json.loads(info.read_text()))

        def distinct(key: str) -> str:
            return ", ".join(dict.fromkeys(str(i.get(key, "?")) for i in infos)) or "—"
        folder = paths.variant_dir(results, family, variant)
        rows.append({"variant": variant, "runs": ", ".join(ids), "commit": distinct("git_commit"),
                     "profile": distinct("profile"), "precision": distinct("precision"),
                     "device": distinct("device"),
                     # Relative, so that the link works wherever reports/ and results/ travel together.
                     "folder": os.path.relpath(folder.resolve(), Path(reports_dir).resolve())})
    return pd.DataFrame(rows)
