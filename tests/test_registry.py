"""The family registry: what the workflow, the command line and the code digest read; and rebuilding a run's model."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from pipeline import config, registry, workflow
from pipeline.run import RunOutput, execute

ROOT = config.ROOT


def test_every_configured_family_resolves():
    families = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["families"]
    assert set(families) == set(registry.FAMILIES)
    for name in families:
        entry = registry.family(name)
        assert callable(entry.experiment().run) and callable(entry.experiment().build)
        assert callable(entry.aggregate().figures)
        for rel in entry.code + entry.aggregate_code:
            assert (ROOT / rel).is_file(), rel


def test_schema_allows_exactly_the_registered_families_and_datasets():
    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    assert set(schema["properties"]["families"]["properties"]) == set(registry.FAMILIES)
    assert schema["$defs"]["dataset"]["enum"] == list(registry.datasets())


def test_unknown_family_is_one_line():
    with pytest.raises(config.ConfigError) as err:
        registry.family("resnet")
    assert "unknown family 'resnet'" in str(err.value) and "\n" not in str(err.value)
    assert "cnn" in str(err.value)


def test_unknown_family_on_the_command_line_is_one_line(capsys):
    from pipeline.__main__ import main
    assert main(["run", "resnet", "base", "--profile", "smoke"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown family 'resnet'") and "\n" not in err


def test_code_digest_files_unchanged():
    """The files each family's runs depend on (Snakemake inputs, checkpoint identity), as before the registry."""
    engine = ["pipeline/train.py", "pipeline/run.py", "pipeline/experiments/common.py", "pipeline/data/images.py"]
    assert workflow.family_code("g2p") == engine + [
        "pipeline/models/seq2seq.py", "pipeline/data/cmudict.py", "pipeline/analysis/metrics.py",
        "pipeline/experiments/g2p.py"]
    assert workflow.family_code("lr_study") == engine + ["pipeline/models/reference_cnn.py",
                                                         "pipeline/experiments/lr_study.py"]
    assert workflow.aggregate_code("cnn") == [str(ROOT / f) for f in (
        "pipeline/aggregate/__init__.py", "pipeline/aggregate/style.py", "pipeline/aggregate/cnn.py")]


def test_how_data_is_fetched_is_outside_what_a_run_computes():
    # The fetch code sat in the module every run's digest covers, so a lock added to it retrained all 90 runs of a
    # build; the files a run reads are pinned by their SHA-256 (in images.py and run.json), whatever fetched them.
    import inspect
    from pipeline.data import fetch, images

    def rel(fn):
        return str(Path(inspect.getsourcefile(fn)).relative_to(ROOT))
    for fam in registry.FAMILIES.values():
        assert rel(fetch.fetch) not in fam.code
        if fam.data == "images":
            assert {rel(images.verify), rel(images.splits)} <= set(fam.code)
    # ... and no run imports it, so it cannot change what a run computes unseen.
    imports = "; ".join(f"import {f.experiment_module}" for f in registry.FAMILIES.values())
    probe = f"import sys, pipeline.run; {imports}; print('pipeline.data.fetch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_fetch_data_folders_map_back_to_datasets():
    for name, source in registry.datasets().items():
        assert registry.dataset_of_folder(source.folder) == name


def _outputs(family: str, model, params: dict):
    torch.manual_seed(0)
    if family == "g2p":
        from pipeline.data.cmudict import pad_sequences
        data = registry.family("g2p").experiment().load_g2p(params["train_limit"], params["eval_limit"])
        src, src_len = pad_sequences([data.graphemes.encode(list(w)) for w in ("cat", "pipeline")])
        return model.greedy_decode(src, src_len, max_len=8)[0]
    return model(torch.rand(4, 1, 28, 28))


@pytest.mark.parametrize("family", list(registry.FAMILIES))
def test_load_run_rebuilds_the_saved_model(family, smoke_cfg, monkeypatch):
    """A model saved by the run machinery comes back from its run folder with the same weights and outputs."""
    exp = registry.family(family).experiment()
    variant = next(iter(smoke_cfg["families"][family]["variants"]))
    params = config.variant_params(smoke_cfg, family, variant)
    params.update(train_limit=100, eval_limit=20)
    kept = {}

    def untrained_run(ctx):
        torch.manual_seed(1)
        kept["model"] = exp.build(ctx.params).eval()
        return RunOutput(metrics={"done": 1}, model=kept["model"])
    monkeypatch.setattr(exp, "run", untrained_run)
    folder = execute(family, variant, 0, smoke_cfg, params=params)

    loaded = registry.load_run(folder)
    assert type(loaded) is type(kept["model"]) and not loaded.training
    original = kept["model"].state_dict()
    assert loaded.state_dict().keys() == original.keys()
    assert all(torch.equal(loaded.state_dict()[k], original[k]) for k in original)
    with torch.inference_mode():
        assert torch.equal(_outputs(family, loaded, params), _outputs(family, kept["model"], params))


def test_load_run_of_a_trained_run(smoke_cfg):
    folder = execute("autoencoder", "ae16", 0, smoke_cfg)
    model = registry.load_run(folder)
    state = torch.load(folder / "model.pt", weights_only=True)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state["state_dict"].items())


def test_a_familys_code_digest_is_the_one_its_runs_record():
    """The console keys its measured costs by this digest; a run's identity (and run.json) carries the same."""
    from pipeline.run import identity
    for name in ("cnn", "g2p"):
        assert identity(name, {}, 0, "fp32")["code"] == registry.family(name).code_digest()
    assert registry.family("cnn").code_digest() != registry.family("g2p").code_digest()


def test_a_training_run_does_not_import_the_renderer():
    """Every run is its own process: the renderer's imports (pandas, Jinja) cost each of a build's 90 runs about half
    a second on a slow VM, and came in through the command line's parser, pipeline.workflow and the error classes."""
    code = ("import sys\nfrom pipeline.__main__ import parser\nfrom pipeline import run, workflow\n"
            "import pipeline.experiments.cnn, pipeline.experiments.g2p\nparser()\n"
            "print(sorted(m for m in ('pandas', 'jinja2', 'weasyprint', 'pipeline.report.render') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_workflow_profile_keeps_snakemakes_rescheduling_timers_rare():
    """Snakemake re-schedules one timespan after every pass and each finished job adds a chain of such timers: at its
    default of 1 s the scheduler ran ~90 times a second by the end of a default build. The profile's limit must stay
    above the build's job count (never throttle) with a timespan of at least 5 s."""
    from snakemake.settings.types import MaxJobsPerTimespan
    profile = yaml.safe_load((ROOT / "profiles" / "default" / "config.yaml").read_text())
    limit = MaxJobsPerTimespan.parse_choice(profile["max-jobs-per-timespan"])
    assert limit.timespan >= 5 and limit.max_jobs >= 200
