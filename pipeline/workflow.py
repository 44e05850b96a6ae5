"""What the Snakefile asks of the configuration: targets, inputs, and per-run config slices.

Each job gets only the part of the configuration it depends on, as JSON on its command line, so Snakemake's
params trigger reruns exactly the jobs whose settings changed (one variant's parameter -> that variant only).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from . import config as cfglib
from . import paths, registry
from .data.images import SPLIT_NAMES, source
from .report import assignments as report_assignments

ROOT = cfglib.ROOT

# The top-level keys that reach jobs otherwise than as shared settings, and how. Every other key of
# config/schema.yaml is a shared setting (SCALARS): every job receives it, so a key added to the schema reaches the
# jobs without being listed anywhere else (and, being part of every job's params, reruns them once).
ELSEWHERE = {
    "families": "each job's own part: run_slice, family_slice, assignment_slice",
    "seeds": "the seed wildcard of each run; aggregates and reports receive the list (family_slice, assignment_slice)",
    "analyses": "the name wildcard of rule analyze; each report receives its own (assignment_slice)",
}


def shared_keys(schema_keys: list[str]) -> tuple[str, ...]:
    """The top-level keys every job receives: all that the schema allows, less ELSEWHERE.

    Fails when ELSEWHERE names a key the schema no longer has, so that list cannot go stale either."""
    stale = sorted(set(ELSEWHERE) - set(schema_keys))
    if stale:
        raise cfglib.ConfigError(f"pipeline/workflow.py ELSEWHERE names {', '.join(stale)}, which config/schema.yaml "
                                 "no longer has; remove them there")
    return tuple(k for k in schema_keys if k not in ELSEWHERE)


SCALARS = shared_keys(cfglib.top_level_keys())

REPORT_CODE = ["pipeline/report/render.py", "pipeline/report/fit.py", "pipeline/report/findings.py",
               "pipeline/report/build.py", "pipeline/report/provenance.py", "pipeline/report/portable.py",
               "pipeline/report/runs.py", "pipeline/stats.py", "pipeline/report/assignments.py",
               "pipeline/report/context.py", "pipeline/report/declarative.py", "pipeline/report/figures.py",
               "pipeline/report/tables.py"]


# The conda environment of every rule that runs Python (`conda:` in rules/*.smk, for `snakemake --use-conda`).
JOB_ENV = ROOT / "environment.yml"


def job_python(workflow) -> Path:
    """The interpreter each job's shell command starts (`{params.python:q} -m pipeline ...`).

    Without --use-conda (`--software-deployment-method conda`): this one, the .venv's, where the project is installed.
    With it: the `python` of the job's conda environment (JOB_ENV), which holds the dependencies but not the project;
    it finds this checkout's `pipeline` through PYTHONPATH, set here for the jobs Snakemake starts.

    A Path, not a str: Snakemake's params trigger compares only plain values (str, numbers, containers), so where the
    interpreter lives (another .venv, conda or not) reruns no job; the software-env trigger covers the conda
    environment's content, and the code each job runs is among its inputs."""
    from snakemake.settings.types import DeploymentMethod
    if DeploymentMethod.CONDA not in workflow.deployment_settings.deployment_method:
        return Path(sys.executable)
    paths = [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(ROOT)]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    return Path("python")


def aggregate_code(family: str) -> list[str]:
    return [str(ROOT / f) for f in registry.family(family).aggregate_code]


def scalars(cfg: dict) -> dict:
    return {k: cfg.get(k) for k in SCALARS}


def run_slice(cfg: dict, family: str, variant: str) -> str:
    """A run's resolved parameters: restating a default in a variant, or moving a value between the defaults and
    the variant, changes nothing a run computes and so reruns nothing."""
    part = scalars(cfg)
    part["families"] = {family: {"assignment": cfg["families"][family]["assignment"],
                                 "defaults": cfglib.variant_params(cfg, family, variant), "variants": {variant: {}}}}
    return json.dumps(part, sort_keys=True)


def family_slice(cfg: dict, family: str) -> str:
    """What an aggregate depends on: the shared settings and this family (its variants and seeds) only."""
    return _ordered_json({**scalars(cfg), "seeds": cfg["seeds"], "families": {family: cfg["families"][family]}})


def assignment_slice(cfg: dict, name: str) -> str:
    """What a report depends on: the shared settings and its own families, not the other assignment's."""
    return _ordered_json({**scalars(cfg), "seeds": cfg["seeds"],
                          "families": {f: cfg["families"][f] for f in report_assignments.families(cfg, name)},
                          "analyses": {a: n for a, n in cfg.get("analyses", {}).items() if n == name}})


def _ordered_json(part: dict) -> str:
    """Sorted keys, so that the same settings always give the same text (Snakemake's params trigger compares
    text), with the config order of the variants and of each variant's keys kept beside them: tables and figures
    show variants in that order, and a variant's "change" column lists its settings in it."""
    order = {f: [[v, list(own or {})] for v, own in spec["variants"].items()] for f, spec in part["families"].items()}
    return json.dumps({**part, VARIANT_ORDER: order}, sort_keys=True)


VARIANT_ORDER = "_variant_order"


def from_slice(text: str) -> dict:
    """The configuration a job receives on its command line, with variants and their keys back in config order."""
    cfg = json.loads(text)
    for fam, order in cfg.pop(VARIANT_ORDER, {}).items():
        variants = cfg["families"][fam]["variants"]
        cfg["families"][fam]["variants"] = {
            v: None if variants[v] is None else {k: variants[v][k] for k in keys} for v, keys in order}
    return cfg


def to_json(cfg: dict) -> str:
    return json.dumps(cfg, sort_keys=True)


def run_dir(cfg: dict, family: str, variant: str, seed) -> str:
    return str(paths.run_dir(cfg["results_dir"], family, variant, seed))


# The wildcards of rule train, in the order of a run folder's parts.
RUN_WILDCARDS = ("{family}", "{variant}", "{seed}")


def run_output(cfg: dict, name: str) -> str:
    """Rule train's output pattern for the run file `name` (paths.METRICS, ...)."""
    return f"{run_dir(cfg, *RUN_WILDCARDS)}/{name}"


def run_files(cfg: dict, family: str) -> list[str]:
    return [f"{run_dir(cfg, family, v, s)}/{paths.METRICS}"
            for v in cfg["families"][family]["variants"] for s in cfglib.seeds(cfg, family)]


def datasets_used(cfg: dict) -> list[str]:
    return sorted({spec["defaults"]["dataset"] for spec in cfg["families"].values()
                   if spec.get("defaults", {}).get("dataset")})


def verify_present_data(cfg: dict) -> None:
    """Check every dataset already on disk against its pinned digests before any job is planned.

    A corrupted file then stops the workflow with one line (DataError) before Snakemake could plan reruns of every
    run that reads it (and delete their outputs). Missing files are left to the fetch_data rule."""
    from .data import images
    for name in datasets_used(cfg):
        if all(Path(f).exists() for f in dataset_files(cfg, name)):
            images.verify(name, Path(cfg["data_dir"]))


def dataset_files(cfg: dict, name: str) -> list[str]:
    return raw_files(cfg, source(name).folder)


def raw_files(cfg: dict, folder: str) -> list[str]:
    """A dataset's files under data/FOLDER/raw/, where torchvision looks for them (a pattern for "{folder}")."""
    return [f"{cfg['data_dir']}/{folder}/raw/{f}" for f in SPLIT_NAMES.values()]


def family_code(family: str) -> list[str]:
    """The source files (relative to the repository) whose content decides what a run of `family` computes."""
    return registry.family(family).code


def run_inputs(cfg: dict, family: str) -> list[str]:
    dataset = cfg["families"][family].get("defaults", {}).get("dataset")
    # Data files are verified by content when the workflow starts (verify_present_data), so their modification
    # time must not trigger reruns: a byte-identical re-fetch retrains nothing.
    from snakemake.io import ancient
    data = [ancient(f) for f in dataset_files(cfg, dataset)] if dataset else []
    return data + [str(ROOT / f) for f in family_code(family)]


def threads(cfg: dict, family: str) -> int:
    return cfg["families"][family].get("threads", 1)


def priority(cfg: dict, family: str, variant: str) -> int:
    """Longest runs first (the rule's `priority`): two slots then finish together instead of one long G2P run
    training alone at the end while the other slot idles. Ordered by the profile-based cost estimate."""
    from .progress import estimate_run
    return int(estimate_run(cfg, family, variant))


def fetch_priority(cfg: dict) -> int:
    """Above every run's priority: data first. Snakemake does not pass a job's priority on to the jobs it waits
    for, so a fetch left at 0 waited until no run was ready, and every run reading that dataset trained last (in a
    fresh clone's default build the LR study's 9 runs, each among the longest, started after all 81 others)."""
    return 1 + max((priority(cfg, family, variant) for family, spec in cfg["families"].items()
                    for variant in spec["variants"]), default=0)


def resource(cfg: dict, family: str, key: str, default):
    return cfg["families"][family].get("resources", {}).get(key, default)


def assignment_spec(name: str) -> dict:
    """report.assignments.spec, refusing a name without a template folder (a workflow target must have one)."""
    path = report_assignments.spec_path(name)
    if not path.is_file():
        raise cfglib.ConfigError(f"no assignment {name!r}: {path} is missing")
    return report_assignments.spec(name)


def assignments(cfg: dict) -> list[str]:
    """Assignments with a template folder and a family in the configuration, or `uses:` families all configured."""
    return report_assignments.discover(cfg)


def report_inputs(cfg: dict, name: str) -> list[str]:
    res = cfg["results_dir"]
    assignment_spec(name)  # refuses a name without a template folder
    files = [f"{res}/{need}" for need in report_assignments.needs(name)]
    files += [str(p) for p in sorted((ROOT / "templates" / name).glob("*")) if p.is_file()]
    files += [str(ROOT / f) for f in REPORT_CODE + [report_assignments.own_module(name)] if f]
    # _base/index.* shape reports/index.html only (rule index): editing them re-renders no report.
    files += [str(p) for p in sorted((ROOT / "templates" / "_base").glob("*"))
              if p.is_file() and not p.name.startswith("index.")]
    return files


def report_outputs(cfg: dict, name: str) -> list[str]:
    return [str(paths.report_file(cfg["reports_dir"], name, kind)) for kind in ("pdf", "html", "appendix")]


def report_output(cfg: dict, kind: str) -> str:
    """Rule report's output pattern for one kind of report file (paths.REPORT_SUFFIXES)."""
    return str(paths.report_file(cfg["reports_dir"], "{assignment}", kind))


def index_targets(cfg: dict) -> list[str]:
    """reports/index.html, for `rule all` (rule index in rules/report.smk)."""
    return [str(paths.index_html(cfg["reports_dir"]))]


def index_inputs(cfg: dict) -> list[str]:
    """The index reads only the reports' JSON summaries (and their first-page previews, written with them)."""
    return ([str(paths.report_file(cfg["reports_dir"], a, "summary")) for a in assignments(cfg)]
            + [str(ROOT / "pipeline/report/index.py"), str(ROOT / "templates/_base/index.html.j2")])


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


def log(rule: str, name: str) -> str:
    """A job's log file (a pattern when `name` holds wildcards)."""
    return str(paths.log(rule, name))


def run_log() -> str:
    return log("runs", paths.run_id(*RUN_WILDCARDS))


def table_output(cfg: dict) -> str:
    return str(paths.table(cfg["results_dir"], "{family}"))


def figures_output(cfg: dict, name: str) -> str:
    """The figure folder of a family or an analysis: `name` is the rule's wildcard ("{family}" or "{name}")."""
    return str(paths.figures(cfg["results_dir"], name))


def analysis_output(cfg: dict) -> str:
    return str(paths.analysis(cfg["results_dir"], "{name}"))


def dataset_name(folder: str) -> str:
    """The dataset rule fetch_data fetches into data/FOLDER."""
    return registry.dataset_of_folder(folder)
