"""What the Snakefile asks of the configuration: targets, inputs, and per-run config slices.

Each job gets only the part of the configuration it depends on, as JSON on its command line, so Snakemake's
params trigger reruns exactly the jobs whose settings changed (one variant's parameter -> that variant only).
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from . import config as cfglib
from .data.images import SPLIT_NAMES, source

ROOT = cfglib.ROOT
SCALARS = ("profile", "data_dir", "results_dir", "reports_dir", "device", "precision", "val_size", "split_seed",
           "train_limit", "eval_limit")

# Code each family runs, beyond the shared engine: a change to any of these reruns that family.
ENGINE = ["pipeline/train.py", "pipeline/run.py", "pipeline/experiments/common.py", "pipeline/data/images.py"]
FAMILY_CODE = {
    "autoencoder": ["pipeline/models/autoencoder.py"],
    "stacked": ["pipeline/models/stacked.py"],
    "cnn": ["pipeline/models/cnn.py"],
    "vit": ["pipeline/models/vit.py"],
    "lr_study": ["pipeline/models/reference_cnn.py"],
    "g2p": ["pipeline/models/seq2seq.py", "pipeline/data/cmudict.py", "pipeline/analysis/metrics.py"],
}


REPORT_CODE = ["pipeline/report/render.py", "pipeline/report/fit.py", "pipeline/report/findings.py",
               "pipeline/report/build.py", "pipeline/report/provenance.py"]
AGGREGATE_CODE = ["pipeline/aggregate/__init__.py", "pipeline/aggregate/style.py"]


def aggregate_code(family: str) -> list[str]:
    return [str(ROOT / f) for f in AGGREGATE_CODE + [f"pipeline/aggregate/{family}.py"]]


def scalars(cfg: dict) -> dict:
    return {k: cfg.get(k) for k in SCALARS}


def run_slice(cfg: dict, family: str, variant: str) -> str:
    fam = cfg["families"][family]
    part = scalars(cfg)
    part["families"] = {family: {"assignment": fam["assignment"], "defaults": fam.get("defaults", {}),
                                 "variants": {variant: fam["variants"][variant]}}}
    return json.dumps(part, sort_keys=True)


def family_slice(cfg: dict, family: str) -> str:
    """What an aggregate depends on: the shared settings and this family (its variants and seeds) only."""
    part = {**scalars(cfg), "seeds": cfg["seeds"], "families": {family: cfg["families"][family]}}
    return json.dumps(part)  # not sorted: variant order is the order tables and figures show


def assignment_slice(cfg: dict, name: str) -> str:
    """What a report depends on: the shared settings and its own families, not the other assignment's."""
    part = {**scalars(cfg), "seeds": cfg["seeds"],
            "families": {f: spec for f, spec in cfg["families"].items() if spec["assignment"] == name},
            "analyses": {a: n for a, n in cfg.get("analyses", {}).items() if n == name}}
    return json.dumps(part)


def to_json(cfg: dict) -> str:
    return json.dumps(cfg, sort_keys=True)


def run_dir(cfg: dict, family: str, variant: str, seed) -> str:
    return f"{cfg['results_dir']}/runs/{family}/{variant}/seed{seed}"


def run_files(cfg: dict, family: str) -> list[str]:
    return [f"{run_dir(cfg, family, v, s)}/metrics.json"
            for v in cfg["families"][family]["variants"] for s in cfglib.seeds(cfg, family)]


def dataset_files(cfg: dict, name: str) -> list[str]:
    folder = source(name).folder
    return [f"{cfg['data_dir']}/{folder}/raw/{f}" for f in SPLIT_NAMES.values()]


def run_inputs(cfg: dict, family: str) -> list[str]:
    dataset = cfg["families"][family].get("defaults", {}).get("dataset")
    data = dataset_files(cfg, dataset) if dataset else []
    return data + [str(ROOT / f) for f in ENGINE + FAMILY_CODE[family] + [f"pipeline/experiments/{family}.py"]]


def threads(cfg: dict, family: str) -> int:
    return cfg["families"][family].get("threads", 1)


def resource(cfg: dict, family: str, key: str, default):
    return cfg["families"][family].get("resources", {}).get(key, default)


def assignment_spec(name: str) -> dict:
    path = ROOT / "templates" / name / "assignment.yaml"
    if not path.exists():
        raise cfglib.ConfigError(f"no assignment {name!r}: {path} is missing")
    return yaml.safe_load(path.read_text())


def assignments(cfg: dict) -> list[str]:
    """Assignments with at least one family in the configuration and a template folder."""
    names = {f["assignment"] for f in cfg["families"].values()}
    return sorted(n for n in names if (ROOT / "templates" / n / "assignment.yaml").exists())


def report_inputs(cfg: dict, name: str) -> list[str]:
    res = cfg["results_dir"]
    files = [f"{res}/{need}" for need in assignment_spec(name).get("needs", [])]
    files += [str(p) for p in sorted((ROOT / "templates" / name).glob("*")) if p.is_file()]
    files += [str(ROOT / f) for f in REPORT_CODE + [f"pipeline/report/{name}.py"]]
    files += [str(p) for p in sorted((ROOT / "templates" / "_base").glob("*")) if p.is_file()]
    return files


def report_outputs(cfg: dict, name: str) -> list[str]:
    out = cfg["reports_dir"]
    return [f"{out}/{name}.pdf", f"{out}/{name}.html", f"{out}/{name}-appendix.pdf"]


def all_targets(cfg: dict) -> list[str]:
    return [t for a in assignments(cfg) for t in report_outputs(cfg, a)]


def abspath(p: str | Path) -> str:
    return str((ROOT / p) if not Path(p).is_absolute() else p)


def job_stats(text: str) -> dict[str, int]:
    """Snakemake's 'Job stats' table from its output: rule -> count ({} when nothing is to be done)."""
    lines = text.splitlines()
    if "Job stats:" not in lines:
        return {}
    jobs: dict[str, int] = {}
    for line in lines[lines.index("Job stats:") + 3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit() or parts[0] == "total":
            break
        jobs[parts[0]] = int(parts[1])
    return jobs
