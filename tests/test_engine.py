"""The run engine: atomic outputs with provenance, identical results for the same seed, and resume."""
import copy
import csv
import importlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pipeline import config
from pipeline.paths import checkpoint_dir, run_dir
from pipeline.run import execute
from pipeline.train import INTERRUPT_ENV, Interrupted, adam, native_bf16, resolve_precision

from .conftest import ROOT


def _metrics(path: Path) -> str:
    return (path / "metrics.json").read_text()


def test_run_writes_metrics_history_model_and_provenance(smoke_cfg):
    out = execute("autoencoder", "ae16", 0, smoke_cfg)
    assert out == run_dir(smoke_cfg["results_dir"], "autoencoder", "ae16", 0)
    assert sorted(p.name for p in out.iterdir()) == ["history.csv", "metrics.json", "model.pt", "run.json"]
    rows = list(csv.DictReader(open(out / "history.csv")))
    epochs = config.variant_params(smoke_cfg, "autoencoder", "ae16")["epochs"]
    assert [int(r["epoch"]) for r in rows] == list(range(1, epochs + 1))
    assert {"train_loss", "val_mse", "seconds"} <= set(rows[0])
    info = json.loads((out / "run.json").read_text())
    for key in ("params", "seed", "profile", "git_commit", "packages", "device", "threads", "wall_seconds"):
        assert key in info
    assert info["profile"] == "smoke" and info["packages"]["torch"].startswith("2.14")
    assert info["precision"] == resolve_precision("auto", torch.device("cpu"))
    assert not checkpoint_dir(smoke_cfg["results_dir"], "autoencoder", "ae16", 0).exists()


def test_same_seed_gives_identical_metrics(smoke_cfg, tmp_path):
    first = execute("cnn", "base", 3, smoke_cfg)
    smoke_cfg["results_dir"] = str(tmp_path / "again")
    second = execute("cnn", "base", 3, smoke_cfg)
    assert _metrics(first) == _metrics(second)
    smoke_cfg["results_dir"] = str(tmp_path / "other_seed")
    assert _metrics(execute("cnn", "base", 4, smoke_cfg)) != _metrics(first)


@pytest.mark.parametrize("family, variant, stop", [("autoencoder", "ae32", "train:1"),
                                                   ("stacked", "sae128", "finetune:1")])
def test_interrupted_run_resumes_to_the_same_result(smoke_cfg, tmp_path, monkeypatch, family, variant, stop):
    # An extra epoch so the interruption falls in the middle of a stage.
    fam = smoke_cfg["families"][family]
    fam["defaults"]["epochs" if family == "autoencoder" else "finetune_epochs"] = 2
    reference = execute(family, variant, 0, smoke_cfg)

    smoke_cfg["results_dir"] = str(tmp_path / "interrupted")
    monkeypatch.setenv(INTERRUPT_ENV, stop)
    with pytest.raises(Interrupted):
        execute(family, variant, 0, smoke_cfg)
    ckpts = checkpoint_dir(smoke_cfg["results_dir"], family, variant, 0)
    assert (ckpts / f"{stop.split(':')[0]}.pt").exists()
    assert not (run_dir(smoke_cfg["results_dir"], family, variant, 0) / "metrics.json").exists()

    monkeypatch.delenv(INTERRUPT_ENV)
    resumed = execute(family, variant, 0, smoke_cfg)
    assert _metrics(resumed) == _metrics(reference)
    assert not ckpts.exists()


def test_precision_auto_picks_bf16_only_where_the_hardware_has_it():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bf16" if native_bf16(cpu) else "fp32")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp16", cpu)


def test_configured_precision_reaches_the_run_and_changes_its_numbers(smoke_cfg, tmp_path):
    smoke_cfg["precision"] = "fp32"
    fp32 = execute("autoencoder", "ae16", 0, smoke_cfg)
    assert json.loads((fp32 / "run.json").read_text())["precision"] == "fp32"
    smoke_cfg.update(precision="bf16", results_dir=str(tmp_path / "bf16"))
    bf16 = execute("autoencoder", "ae16", 0, smoke_cfg)
    assert json.loads((bf16 / "run.json").read_text())["precision"] == "bf16"
    a, b = (json.loads(_metrics(p)) for p in (fp32, bf16))
    # Different arithmetic, nearly the same model: the test MSE agrees to a few percent.
    assert a["test_mse"] != b["test_mse"] and abs(a["test_mse"] - b["test_mse"]) < 0.1 * a["test_mse"]


def test_engine_adam_is_the_fused_kernel_and_matches_the_reference_step():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(50, 20))
    ref = torch.nn.Parameter(w.detach().clone())
    fused, plain = adam([w], 1e-2, weight_decay=1e-3), torch.optim.Adam([ref], lr=1e-2, weight_decay=1e-3)
    assert fused.param_groups[0]["fused"]
    for _ in range(5):
        for p, opt in ((w, fused), (ref, plain)):
            opt.zero_grad()
            (p ** 2).sum().backward()
            opt.step()
    torch.testing.assert_close(w, ref)


@pytest.mark.parametrize("decoupled", [False, True])
def test_engine_adam_steps_and_checkpoints_exactly_as_torch_optim(decoupled):
    # train.adam calls torch.optim's plain functions, without their torch.compile wrappers: the same arithmetic,
    # under a schedule, through a state_dict round trip halfway.
    torch.manual_seed(0)
    ours = torch.nn.Linear(20, 5)
    ref = copy.deepcopy(ours)
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    opts = [adam(ours.parameters(), 1e-2, 1e-2, decoupled=decoupled),
            cls(ref.parameters(), lr=1e-2, weight_decay=1e-2, fused=True)]
    assert isinstance(opts[0], cls)
    scheds = [torch.optim.lr_scheduler.OneCycleLR(o, max_lr=1e-2, total_steps=12) for o in opts]
    x = torch.randn(64, 20)
    for step in range(12):
        if step == 6:
            saved = [(o.state_dict(), s.state_dict()) for o, s in zip(opts, scheds)]
            assert str(saved[0]) == str(saved[1])
            opts[0] = adam(ours.parameters(), 1e-2, 1e-2, decoupled=decoupled)
            scheds[0] = torch.optim.lr_scheduler.OneCycleLR(opts[0], max_lr=1e-2, total_steps=12)
            opts[0].load_state_dict(saved[0][0])
            scheds[0].load_state_dict(saved[0][1])
        for model, opt, sched in zip((ours, ref), opts, scheds):
            opt.zero_grad(set_to_none=True)
            model(x).square().mean().backward()
            opt.step()
            sched.step()
    for a, b in zip(ours.parameters(), ref.parameters()):
        assert torch.equal(a, b)


def test_a_run_does_not_import_torch_dynamo(smoke_cfg, tmp_path):
    # torch.optim's wrappers import torch._dynamo (1.8-4.5 s of a run's process) on first use; runs never compile.
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(smoke_cfg))
    code = ("import sys, json; from pipeline.run import execute; "
            f"execute('stacked', 'sae128', 0, json.load(open({str(cfg)!r}))); "
            "print('dynamo imported' if 'torch._dynamo' in sys.modules else 'no dynamo')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "no dynamo"


@pytest.mark.parametrize("module", ["torch", "torch.nn.modules.module", "numpy", "snakemake"])
def test_the_environment_holds_the_bytecode_every_job_imports(module):
    # Where PYTHONDONTWRITEBYTECODE is set no job writes it, so `make setup` must (3.3 s to import torch without).
    source = importlib.import_module(module).__file__
    assert Path(importlib.util.cache_from_source(source)).exists(), f"no bytecode for {source}: run `make setup`"


def test_runs_treat_subnormal_floats_as_zero(smoke_cfg):
    # Subnormal operands take a slow microcode path on x86 (the CNN's step grew 1.5x once Adam's moments got there).
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush subnormal floats")
    torch.set_flush_denormal(False)
    tiny = torch.tensor([1e-39])
    assert (tiny * 1.0).item() > 0  # kept by default
    try:
        execute("autoencoder", "ae16", 0, smoke_cfg)
        assert (tiny * 1.0).item() == 0.0
    finally:
        torch.set_flush_denormal(False)
