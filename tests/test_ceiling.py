"""pipeline.bench.ceiling: FLOPs per training step as FlopCounterMode counts them, the step's pure-compute time (its
matrix products alone) and the CPU's own ceiling; and that the benchmark measures the models the experiments train."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from pipeline import config as cfglib
from pipeline.bench import ceiling, families, output
from pipeline.train import RunContext, adam, resolve_precision

from .conftest import ROOT


def _setup(tmp_path: Path, model: nn.Module, precision: str = "fp32") -> families.Setup:
    ctx = RunContext(family="test", variant="linear", seed=0, params={"batch_size": 64}, device=torch.device("cpu"),
                     checkpoint_dir=tmp_path / "ckpt", precision=precision, log=lambda m: None)
    return families.Setup(family="test", variant="linear", stage="train", params=ctx.params, ctx=ctx, model=model,
                          optimizer=adam(model.parameters(), 1e-3), scheduler=None,
                          loss_fn=lambda m, batch: F.mse_loss(m(batch[0]).float(), batch[1]), batches=lambda e: [])


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_linear_step_is_six_flops_per_weight_and_example(tmp_path, precision):
    b, n_in, n_out = 64, 96, 40
    setup = _setup(tmp_path, nn.Linear(n_in, n_out), precision)
    # Inside a network the layer's input needs a gradient: 2 (forward) + 2 (input grad) + 2 (weight grad).
    x = torch.randn(b, n_in, requires_grad=True)
    counted = ceiling.count_step(setup, (x, torch.randn(b, n_out)))
    assert counted["flops"] == 6 * b * n_in * n_out, counted["flops_by_op"]
    assert sum(c.flops for c in counted["calls"]) == counted["flops"]  # what the replay times is what was counted
    # The first layer gets no input gradient: 4 per weight and example.
    first = ceiling.count_step(setup, (x.detach(), torch.randn(b, n_out)))
    assert first["flops"] == 4 * b * n_in * n_out
    if precision == "bf16":
        assert counted["dtypes"] == ["bfloat16"]  # the products run at the step's precision


def test_fused_lstm_layers_are_counted_as_their_gate_products(tmp_path):
    steps, b, n_in, hidden = 7, 16, 24, 32
    lstm = nn.LSTM(n_in, hidden, batch_first=True)

    class Last(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = lstm

        def forward(self, x):
            return self.rnn(x)[0]
    setup = _setup(tmp_path, Last(), resolve_precision("auto", torch.device("cpu")))
    x = torch.randn(b, steps, n_in, requires_grad=True)
    counted = ceiling.count_step(setup, (x, torch.randn(b, steps, hidden)))
    if "mkldnn_rnn_layer" not in counted["flops_by_op"]:
        pytest.skip(f"this build runs the LSTM unfused: {counted['flops_by_op']}")
    forward = 2 * steps * b * 4 * hidden * (n_in + hidden)
    assert counted["flops"] == 3 * forward
    replayed = ceiling.replay_calls(counted["calls"])
    assert {c.name() for c in replayed} == {"mm"} and sum(c.flops for c in replayed) == 3 * forward


def test_pure_compute_is_positive_and_within_the_step(tmp_path):
    torch.set_num_threads(1)
    setup = _setup(tmp_path, nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 10)),
                   resolve_precision("auto", torch.device("cpu")))
    batch = (torch.randn(128, 784), torch.randn(128, 10))
    counted = ceiling.count_step(setup, batch)
    calls = ceiling.replay_calls(counted["calls"])
    assert {c.name() for c in calls} <= {"mm", "addmm"} and calls
    pure, runs = ceiling.pure_compute_seconds(calls, seconds=0.05, repeats=3)
    step = min(ceiling.step_seconds(setup, batch, 10, tmp_path, f"t{i}") for i in range(3))
    assert pure > 0 and len(runs) == 3
    # The step runs these very products plus everything else; the factor only absorbs a busy machine's noise.
    assert pure <= 3 * step, (pure, step)


def test_cpu_is_named_with_its_flags():
    info = ceiling.cpu_info()
    assert info["model"] and info["model"] != "unknown CPU"
    assert {"avx512_bf16", "amx_bf16", "amx_tile"} <= set(info["flags"])
    mm = ceiling.matmul_gflops("fp32", n=256, seconds=0.02, repeats=1)
    assert mm["gflops"] > 0 and mm["threads"] == 1
    line = output.cpu_line({"cpu": info, "matmul_1024": {"fp32": mm}})
    assert info["model"] in line and "avx512_bf16" in line


def test_compute_table_shows_every_family():
    row = {"variant": "v", "batch_size": 128, "precision": "bf16", "flops_per_step": 2e9, "step_ms": 10.0,
           "gflops": 200.0, "pure_compute_ms": 5.0, "pure_compute_gflops": 400.0, "step_over_pure_compute": 2.0,
           "time_shares": {"matrix_share": 0.45, "top_other": [["bernoulli_", 0.15], ["native_batch_norm", 0.1]]}}
    comp = {"ceiling": {"cpu": {"model": "Some CPU", "flags": {}}, "matmul_1024": {}},
            "families": {"cnn": row, "g2p": {"variant": "attention", "error": "RuntimeError: x"}}}
    text = "\n".join(output.compute_table(comp))
    assert "Some CPU" in text and "cnn v (bs 128)" in text and "2.0x" in text and "FAILED" in text
    assert "matrix products 45%" in text and "bernoulli_ 15%" in text


def test_capture_gives_the_experiments_own_models(tmp_path, data_dir):
    """The bench builds no model itself: each is the one the experiment's `run` trains in its main stage."""
    from pipeline.experiments import cnn, lr_study, vit
    cfg = cfglib.load("smoke")
    cfg["data_dir"] = str(data_dir)
    cpu = torch.device("cpu")

    def got(family):
        return families.capture(cfg, family, device=cpu, data_dir=data_dir, checkpoint_dir=tmp_path / family,
                                precision="fp32")

    def same_layers(a: nn.Module, b: nn.Module):
        assert [(k, v.shape) for k, v in a.state_dict().items()] == [(k, v.shape) for k, v in b.state_dict().items()]
        assert [type(m) for m in a.modules()] == [type(m) for m in b.modules()]

    for family, exp in (("cnn", cnn), ("vit", vit), ("lr_study", lr_study)):
        s = got(family)
        same_layers(s.model, exp.build(cfglib.variant_params(cfg, family, families.REFERENCE[family])))
    s = got("cnn")
    conv = next(m for m in s.model.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)  # as cnn.build leaves it
    assert type(s.scheduler).__name__ == "OneCycleLR" and s.optimizer.defaults["fused"]
    # The stacked classifier is fine-tuned with dropout and a one-cycle schedule (a hand-built copy had neither).
    s = got("stacked")
    p = cfglib.variant_params(cfg, "stacked", families.REFERENCE["stacked"])
    drops = [m.p for m in s.model.modules() if isinstance(m, nn.Dropout)]
    assert s.stage == "finetune" and drops and set(drops) == {p["dropout"]}
    assert type(s.scheduler).__name__ == "OneCycleLR"
    assert all(q.requires_grad for q in s.model.parameters())  # the encoder is not frozen while fine-tuning
    s = got("autoencoder")
    assert s.scheduler is None and next(iter(s.batches(1))).shape[0] == p["batch_size"]


def test_time_shares_name_what_costs_besides_the_products(tmp_path):
    """A step dominated by dropout's random mask: the profile names it and the products' share stays small;
    two wide layers without dropout spend most of their step in the products."""
    torch.set_num_threads(1)

    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin, self.drop = nn.Linear(16, 16), nn.Dropout(0.5)

        def forward(self, x):
            return self.lin(self.drop(x))  # the mask's random numbers cost far more than this small product
    batch = (torch.randn(4000, 16), torch.randn(4000, 16))
    noisy = ceiling.time_shares(_setup(tmp_path, Masked()), batch)
    ops = [op for op, _ in noisy["top_other"]]
    assert any(op.startswith(("bernoulli", "native_dropout")) for op in ops), noisy
    assert 0 <= noisy["matrix_share"] < 0.5 and all(0 < s <= 1 for _, s in noisy["top_other"])
    dense = ceiling.time_shares(_setup(tmp_path, nn.Sequential(nn.Linear(512, 512), nn.Linear(512, 512))),
                                (torch.randn(256, 512), torch.randn(256, 512)))
    assert dense["matrix_share"] > 0.5, dense


def test_profiling_a_step_prints_nothing():
    """torch.profiler's back end wrote "USDT ... profiler_start" lines, and on a machine without a GPU driver an
    "ERROR ... gpuGetDeviceCount failed", straight to the process's stderr, into `make bench`'s output. It reads
    its log level once per process, so this runs in a fresh one, as `make bench` does."""
    code = """
import torch
from torch import nn
from torch.nn import functional as F
from pipeline.bench import ceiling, families
from pipeline.train import RunContext, adam
model = nn.Linear(32, 8)
ctx = RunContext(family="t", variant="v", seed=0, params={}, device=torch.device("cpu"), checkpoint_dir=None,
                 precision="fp32", log=lambda m: None)
setup = families.Setup(family="t", variant="v", stage="train", params={}, ctx=ctx, model=model,
                       optimizer=adam(model.parameters(), 1e-3), scheduler=None,
                       loss_fn=lambda m, b: F.mse_loss(m(b[0]), b[1]), batches=lambda e: [])
print(ceiling.time_shares(setup, (torch.randn(16, 32), torch.randn(16, 8)), steps=1, warmup=1)["matrix_share"])
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 0 <= float(proc.stdout.strip()) <= 1
    assert proc.stderr == "", proc.stderr
