"""Aggregate a family's runs into one table (mean and std over seeds per variant) and its figures."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .. import config as cfglib
from .. import paths, registry


def load_runs(cfg: dict, family: str) -> pd.DataFrame:
    """One row per finished run: variant, seed, every metric, the variant's parameters and timing."""
    rows = []
    fam = cfg["families"][family]
    for variant in fam["variants"]:
        for seed in cfglib.seeds(cfg, family):
            folder = paths.run_dir(cfg["results_dir"], family, variant, seed)
            metrics = json.loads((folder / paths.METRICS).read_text())
            info = json.loads((folder / paths.RUN_INFO).read_text())
            history = pd.read_csv(folder / paths.HISTORY)
            row = {"variant": variant, "seed": seed}
            row.update({k: v for k, v in metrics.items() if not isinstance(v, (dict, list))})
            row["seconds_per_epoch"] = float(history["seconds"].mean()) if len(history) else np.nan
            extras = folder / paths.EXTRAS
            if extras.exists():  # wall-clock measurements a run keeps out of its (deterministic) metrics.json
                row.update(json.loads(extras.read_text()).get("timing", {}))
            row["wall_seconds"] = info["wall_seconds"]
            row["params_json"] = json.dumps(info["params"], sort_keys=True)
            rows.append(row)
    return pd.DataFrame(rows)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Per variant (config order): n_seeds, then MEAN and MEAN_std for each numeric column."""
    numeric = [c for c in runs.columns if c not in ("variant", "seed", "params_json")
               and pd.api.types.is_numeric_dtype(runs[c])]
    order = list(dict.fromkeys(runs["variant"]))
    grouped = runs.groupby("variant", sort=False)
    table = pd.DataFrame({"variant": order})
    table["n_seeds"] = grouped.size().reindex(order).to_numpy()
    for col in numeric:
        table[col] = grouped[col].mean().reindex(order).to_numpy()
        # std over seeds (ddof=1); NaN with one seed, which the report states rather than hiding
        table[f"{col}_std"] = grouped[col].std(ddof=1).reindex(order).to_numpy()
    return table


def with_macs(family: str, runs: pd.DataFrame) -> pd.DataFrame:
    """`macs`: the multiply-adds of one image through each run's model (registry.Family.forward_flops), the cost that
    seconds per epoch measure only as well as the machine kept its speed through the build. Counted here, not by
    the runs: it depends on the parameters alone."""
    macs = {p: registry.family(family).forward_flops(json.loads(p)) // 2 for p in set(runs["params_json"])}
    return runs.assign(macs=runs["params_json"].map(macs))


def describe_variant(cfg: dict, family: str, variant: str) -> str:
    """The variant's own settings, i.e. how it differs from its family's defaults ("defaults" if not at all)."""
    own = cfg["families"][family]["variants"][variant] or {}
    parts = []
    for key, value in own.items():
        if isinstance(value, list):
            value = "-".join(map(str, value))
        elif isinstance(value, bool):
            value = "on" if value else "off"
        parts.append(f"{key} {value}")
    return ", ".join(parts) or "defaults"


def history(cfg: dict, family: str, variant: str, seed: int) -> pd.DataFrame:
    return pd.read_csv(paths.run_dir(cfg["results_dir"], family, variant, seed) / paths.HISTORY)


def extras(cfg: dict, family: str, variant: str, seed: int) -> dict:
    """A run's extras.json ({} when it wrote none)."""
    path = paths.run_dir(cfg["results_dir"], family, variant, seed) / paths.EXTRAS
    return json.loads(path.read_text()) if path.exists() else {}


def trained_model(cfg: dict, family: str, variant: str, seed: int):
    """A run's trained model, rebuilt by its experiment (registry.load_run)."""
    return registry.load_run(paths.run_dir(cfg["results_dir"], family, variant, seed))


def summarise_with_curves(cfg: dict, family: str, runs: pd.DataFrame, curve_summary) -> pd.DataFrame:
    """summarise() after adding `curve_summary(history)`'s numbers to each run, so reports read only the table."""
    runs = runs.copy()
    extra = [curve_summary(history(cfg, family, r["variant"], int(r["seed"]))) for _, r in runs.iterrows()]
    for key in extra[0] if extra else []:
        runs[key] = [e[key] for e in extra]
    return summarise(runs)


def aggregate_family(cfg: dict, family: str) -> Path:
    module = registry.family(family).aggregate()
    runs = load_runs(cfg, family)
    table = module.table(cfg, runs) if hasattr(module, "table") else summarise(runs)
    table.insert(1, "change", [describe_variant(cfg, family, v) for v in table["variant"]])
    out = paths.table(cfg["results_dir"], family)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig_dir = paths.figures(cfg["results_dir"], family)
    fig_dir.mkdir(parents=True, exist_ok=True)
    module.figures(cfg, runs, table, fig_dir)
    tmp = out.with_suffix(".csv.tmp")
    table.to_csv(tmp, index=False, float_format="%.10g")  # enough digits for exact counts
    tmp.replace(out)
    return out
