"""The run-folder layout (results/runs/FAMILY/VARIANT/seedN, checkpoints/...) is spelled in pipeline/paths.py only."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from pipeline import paths

ROOT = Path(__file__).resolve().parents[1]
# pipeline/report/* other than runs.py belongs to the report work of issue 13; provenance.py still joins
# results/"runs" itself and moves to paths.runs_root there.
NOT_YET: set[str] = set()


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def layout_spellings(source: str) -> list[str]:
    """Where Python code spells the run-folder layout: "runs/..." or "seed*" in a string, f"...seed{n}", or a path
    joined with "runs" or "checkpoints". Docstrings and comments may describe the layout."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if re.search(r"(^|/)runs/|seed\*", node.value):
                found.append(f"line {node.lineno}: {node.value!r}")
        elif isinstance(node, ast.JoinedStr):
            for part, after in zip(node.values, node.values[1:]):
                if (isinstance(part, ast.Constant) and str(part.value).endswith("seed")
                        and isinstance(after, ast.FormattedValue)):
                    found.append(f"line {node.lineno}: f-string ...seed{{...}}")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            for side in (node.left, node.right):
                if isinstance(side, ast.Constant) and side.value in (paths.RUNS, paths.CHECKPOINTS):
                    found.append(f"line {node.lineno}: path joined with {side.value!r}")
    return found


def test_run_layout_is_spelled_in_paths_only():
    offenders = {}
    for file in sorted((ROOT / "pipeline").rglob("*.py")):
        rel = file.relative_to(ROOT).as_posix()
        if rel == "pipeline/paths.py" or rel in NOT_YET:
            continue
        found = layout_spellings(file.read_text())
        if found:
            offenders[rel] = found
    for file in [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]:
        lines = [f"line {i}: {line.strip()}" for i, line in enumerate(file.read_text().splitlines(), 1)
                 if re.search(r"runs/|seed\{", line.split("#")[0])]
        if lines:
            offenders[file.relative_to(ROOT).as_posix()] = lines
    assert not offenders, f"the run-folder layout belongs in pipeline/paths.py: {offenders}"


def test_the_check_finds_the_old_spellings():
    old = ('folder = Path(cfg["results_dir"]) / "runs" / family / variant / f"seed{seed}"\n'
           'for p in root.glob("runs/*/*/seed*/metrics.json"): pass\n'
           'name = f"{family}/{variant}/seed{seed}"\n')
    assert len(layout_spellings(old)) == 4
    assert layout_spellings('"""results/runs/FAMILY/VARIANT/seedN"""\n') == []


def test_run_folder_round_trip():
    folder = paths.run_dir("results", "cnn", "base", 3)
    assert folder.as_posix() == "results/runs/cnn/base/seed3"
    assert paths.parse_run_dir(folder) == ("cnn", "base", 3)
    assert paths.run_dir("", "cnn", "base", 3).as_posix() == "runs/" + paths.run_id("cnn", "base", 3)
    assert paths.checkpoint_dir("r", "cnn", "base", 3).as_posix() == "r/checkpoints/cnn/base/seed3"


def test_run_files_finds_every_run(tmp_path):
    for family, variant, seed in (("cnn", "base", 0), ("cnn", "base", 1), ("vit", "tiny", 0)):
        folder = paths.run_dir(tmp_path, family, variant, seed)
        folder.mkdir(parents=True)
        (folder / paths.METRICS).write_text("{}")
    assert len(paths.run_files(tmp_path, paths.METRICS)) == 3
    assert [paths.parse_run_dir(p.parent) for p in paths.run_files(tmp_path, paths.METRICS, "cnn")] == [
        ("cnn", "base", 0), ("cnn", "base", 1)]
