"""The workflow's definition, without running it: lint-clean, its conda environment, and every configuration key
reaching the jobs."""
import os
import re
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from pipeline import config
from pipeline import workflow as wf

from .conftest import ROOT, snakemake


def test_snakemake_lint_finds_nothing(tmp_path):
    proc = snakemake(tmp_path, "--lint", "--config", "profile=smoke", timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Lints for" not in out, out[-3000:]


def _planned_priorities(text: str) -> dict[str, list[int]]:
    """rule name -> the priority of each job of that rule in a dry run's job list (0 where none is printed)."""
    out: dict[str, list[int]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", text)[1:]:
        rule = re.match(r"(?:local)?rule (\w+):", block).group(1)
        found = re.search(r"^\s+priority: (\d+)", block, re.M)
        out.setdefault(rule, []).append(int(found.group(1)) if found else 0)
    return out


def test_a_missing_dataset_is_fetched_before_any_run(tmp_path):
    """Snakemake starts the ready job of highest priority and does not raise a fetch's priority to that of the runs
    waiting for it: at 0, a fetch waited until no other run was ready, and the runs reading its data trained last."""
    proc = snakemake(tmp_path, "-n", "--cores", "2", "--config", "profile=default",
                     f"data_dir={tmp_path / 'empty'}", timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    planned = _planned_priorities(proc.stdout)
    assert len(planned["fetch_data"]) == len(wf.datasets_used(config.load(profile="default")))
    assert len(planned["train"]) > 20
    assert min(planned["fetch_data"]) > max(planned["train"])


def _pins(requirements) -> dict[str, str]:
    return {r.split("==")[0].strip().lower(): r.replace(" ", "") for r in requirements}


def test_conda_environment_names_the_projects_dependencies():
    env = yaml.safe_load(wf.JOB_ENV.read_text())
    assert wf.JOB_ENV == ROOT / "environment.yml" and env["name"] == "dfl-bench"
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    # The same pins as pyproject.toml, nothing missing and nothing extra; the project itself comes from PYTHONPATH.
    assert _pins(pip) == _pins(wanted)
    python = next(d for d in conda if d.startswith("python="))
    minimum = project["requires-python"].removeprefix(">=")
    assert tuple(map(int, python.split("=")[1].split("."))) >= tuple(map(int, minimum.split(".")))
    assert {"pango", "poppler", "pip"} <= {d.split("=")[0].split()[0] for d in conda}


def test_every_rule_that_runs_python_uses_the_conda_environment():
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        text = smk.read_text()
        assert text.count("shell:") == text.count("conda:\n        wf.JOB_ENV") > 0, smk
        assert text.count("shell:") == text.count('"{params.python:q} -m pipeline '), smk


def test_jobs_python_without_and_with_conda(monkeypatch):
    from snakemake.settings.types import DeploymentMethod
    plain = SimpleNamespace(deployment_settings=SimpleNamespace(deployment_method=set()))
    assert wf.job_python(plain) == Path(sys.executable)
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    conda = SimpleNamespace(deployment_settings=SimpleNamespace(deployment_method={DeploymentMethod.CONDA}))
    assert wf.job_python(conda) == Path("python")
    assert os.environ["PYTHONPATH"].split(os.pathsep) == [str(ROOT), "/elsewhere"]


def test_the_interpreter_is_no_params_trigger():
    # Snakemake records plain params (str, numbers, containers) to rerun jobs whose params changed; a Path it
    # leaves out. If an upgrade changes that, moving the .venv would rerun every job: params.python must change form.
    from snakemake.persistence import UNREPRESENTABLE, PersistenceBase
    assert PersistenceBase._serialize_param_builtin(None, wf.job_python(
        SimpleNamespace(deployment_settings=SimpleNamespace(deployment_method=set())))) is UNREPRESENTABLE
    assert PersistenceBase._serialize_param_builtin(None, "{}") == "'{}'"


def test_every_top_level_key_reaches_the_jobs():
    keys = config.top_level_keys()
    assert set(wf.SCALARS) | set(wf.ELSEWHERE) == set(keys)
    assert not set(wf.SCALARS) & set(wf.ELSEWHERE)
    cfg = config.load("smoke")
    for part in (wf.run_slice(cfg, "cnn", "base"), wf.family_slice(cfg, "cnn"), wf.assignment_slice(cfg, "hw2")):
        assert set(wf.SCALARS) <= set(wf.from_slice(part)), part


def test_a_key_added_to_the_schema_is_sent_to_every_job():
    schema = yaml.safe_load((config.CONFIG_DIR / "schema.yaml").read_text())
    schema["properties"]["new_setting"] = {"type": "integer"}
    assert "new_setting" in wf.shared_keys(config.top_level_keys(schema))
    # ... and a key the schema dropped cannot linger in ELSEWHERE unnoticed.
    with pytest.raises(config.ConfigError, match="ELSEWHERE names analyses"):
        wf.shared_keys([k for k in config.top_level_keys() if k != "analyses"])


def test_every_module_that_uses_the_smoke_build_is_scheduled_with_it(request):
    # `make test` puts the modules that _uses_smoke_workflow names on one worker; one it missed would build the
    # smoke workflow a second time on the other worker, beside the first, and slow both.
    from .conftest import SMOKE_MODULES, _uses_smoke_workflow
    uses = request.config.stash[SMOKE_MODULES]  # every collected test, before -k or -m deselected any
    assert {m for m, u in uses.items() if u} == {m for m in uses if _uses_smoke_workflow(m)}
