"""Where every generated file lives: results/runs/FAMILY/VARIANT/seedN and its files, checkpoints, tables, figures,
analyses, reports and logs. Each layout is spelled here only (tests/test_paths.py checks that).

Functions take the folder a path is relative to (results_dir, reports_dir) and return a Path. The Snakefile builds
its wildcard patterns from the same functions (with "{family}" etc. for the parts), so a rule's outputs and the
targets other rules ask for cannot drift apart. With "" as the folder they give the path relative to it, as review
messages print it ("runs/cnn/base/seed0").
"""
from __future__ import annotations

from pathlib import Path

RUNS = "runs"
CHECKPOINTS = "checkpoints"
TABLES = "tables"
FIGURES = "figures"
ANALYSIS = "analysis"
LOGS = "logs"
SEED = "seed"

# The files of a run folder. METRICS is written last: its presence means the run is complete.
METRICS = "metrics.json"
HISTORY = "history.csv"
MODEL = "model.pt"
RUN_INFO = "run.json"
EXTRAS = "extras.json"
PREDICTIONS = "predictions.json"


def run_id(family: str, variant: str, seed) -> str:
    """FAMILY/VARIANT/seedN: how logs, the console and reports name a run; also its folder under runs/."""
    return f"{family}/{variant}/{SEED}{seed}"


def runs_root(results) -> Path:
    return Path(results) / RUNS


def family_runs(results, family: str) -> Path:
    return runs_root(results) / family


def run_dir(results, family: str, variant: str, seed) -> Path:
    return runs_root(results) / run_id(family, variant, seed)


def variant_dir(results, family: str, variant: str) -> Path:
    return family_runs(results, family) / variant


def checkpoint_dir(results, family: str, variant: str, seed) -> Path:
    return Path(results) / CHECKPOINTS / run_id(family, variant, seed)


def run_files(results, name: str, family: str = "*") -> list[Path]:
    """The file `name` of every run folder under `results` (of one family, or all), sorted."""
    return sorted(runs_root(results).glob(f"{family}/*/{SEED}*/{name}"))


def parse_run_dir(folder: Path) -> tuple[str, str, int]:
    """(family, variant, seed) of a run folder; ValueError when it is not one."""
    folder = Path(folder)
    if not folder.name.startswith(SEED) or folder.parent.parent.parent.name != RUNS:
        raise ValueError(f"{folder} is not a run folder ({RUNS}/FAMILY/VARIANT/{SEED}N)")
    return folder.parent.parent.name, folder.parent.name, int(folder.name.removeprefix(SEED))


def table(results, family: str) -> Path:
    return Path(results) / TABLES / f"{family}.csv"


def all_tables(results) -> list[Path]:
    return sorted((Path(results) / TABLES).glob("*.csv"))


def figures(results, name: str) -> Path:
    """The figure folder of a family or of an analysis."""
    return Path(results) / FIGURES / name


def analysis(results, name: str) -> Path:
    return Path(results) / ANALYSIS / f"{name}.json"


def all_analyses(results) -> list[Path]:
    return sorted((Path(results) / ANALYSIS).glob("*.json"))


# An assignment's report files: the PDF, its HTML, the appendix, and the JSON summary reports/index.html reads.
REPORT_SUFFIXES = {"pdf": ".pdf", "html": ".html", "appendix": "-appendix.pdf", "summary": ".json"}


def report_file(reports, name: str, kind: str) -> Path:
    return Path(reports) / f"{name}{REPORT_SUFFIXES[kind]}"


def index_html(reports) -> Path:
    return Path(reports) / "index.html"


def log(rule: str, name: str) -> Path:
    """A job's log, relative to the working directory: logs/RULE/NAME.log (NAME may be a run id)."""
    return Path(LOGS) / rule / f"{name}.log"
