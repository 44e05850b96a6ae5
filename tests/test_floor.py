"""pipeline.bench.floor: a profile's training at pure compute, from every stage each run trains, against the job time
its built runs took."""
import csv
import json
import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from pipeline import config as cfglib
from pipeline import paths
from pipeline.bench import floor, output
from pipeline.bench.families import Setup
from pipeline.train import RunContext, adam


def _linear_stage(tmp_path: Path, sizes: list[int], n_in=96, n_out=40, epochs=3) -> Setup:
    model = nn.Linear(n_in, n_out)
    ctx = RunContext(family="test", variant="v", seed=0, params={}, device=torch.device("cpu"),
                     checkpoint_dir=tmp_path, precision="fp32", log=lambda m: None)
    batches = [(torch.randn(b, n_in), torch.randn(b, n_out)) for b in sizes]
    return Setup(family="test", variant="v", stage="train", params={}, ctx=ctx, model=model,
                 optimizer=adam(model.parameters(), 1e-3), scheduler=None,
                 loss_fn=lambda m, batch: F.mse_loss(m(batch[0]), batch[1]), batches=lambda epoch: iter(batches),
                 epochs=epochs)


def test_every_batch_of_an_epoch_counts_at_its_own_shape(tmp_path):
    """Three full batches and a last short one: two shapes, each step's products counted once and weighted by how
    many batches of the epoch have that shape, over every epoch."""
    n_in, n_out, epochs = 96, 40, 3
    stage = floor.record_stage(_linear_stage(tmp_path, [64, 64, 64, 10], n_in, n_out, epochs))
    assert stage.name == "train" and stage.epochs == epochs and stage.steps_per_epoch() == 4
    assert sorted(s["count"] for s in stage.shapes) == [1, 3]
    # A first layer: forward and weight gradient, 4 FLOPs per weight and example.
    assert {s["key"][0]: s["flops"] for s in stage.shapes} == {(64, n_in): 4 * 64 * n_in * n_out,
                                                                (10, n_in): 4 * 10 * n_in * n_out}
    # A timer that charges 1 s per GFLOP of the replayed calls: the total follows the epoch's batches exactly.
    row = floor.stage_seconds(stage, lambda calls, share: sum(c.flops for c in calls) / 1e9)
    want = epochs * (3 * 64 + 10) * 4 * n_in * n_out
    assert row["flops"] == want and math.isclose(row["seconds"], want / 1e9)
    assert row["steps_per_epoch"] == 4 and row["shapes"] == 2


def test_the_real_timer_charges_more_for_more_products(tmp_path):
    torch.set_num_threads(1)
    small = floor.record_stage(_linear_stage(tmp_path, [64] * 2, 256, 256, 1))
    large = floor.record_stage(_linear_stage(tmp_path, [64] * 20, 256, 256, 1))

    def timer(calls, share):
        return floor.pure_compute_seconds(calls, seconds=0.02, repeats=3)[0]
    t_small, t_large = floor.stage_seconds(small, timer)["seconds"], floor.stage_seconds(large, timer)["seconds"]
    assert 0 < t_small < t_large


def test_traced_stages_are_the_ones_the_runs_trained(smoke_workflow, data_dir, tmp_path):
    """For a run of every family (every stacked variant: their stages differ with depth), the trace finds exactly
    the stages, in order, and the epochs of each that the smoke build's run wrote to its history."""
    cfg = cfglib.load("smoke")
    cfg["data_dir"] = str(data_dir)
    picks = [(f, next(iter(spec["variants"]))) for f, spec in cfg["families"].items() if f != "stacked"]
    picks += [("stacked", v) for v in cfg["families"]["stacked"]["variants"]]
    timer_calls = []

    def timer(calls, share):
        timer_calls.append(len(calls))
        assert 0 < share <= 1
        return 1e-3
    for family, variant in picks:
        got = floor.variant_floor(cfg, family, variant, device=torch.device("cpu"), data_dir=data_dir,
                                  scratch=tmp_path, precision="fp32", timer=timer, full_data=False)
        history = paths.run_dir(smoke_workflow / "results", family, variant, 0) / paths.HISTORY
        epochs: dict[str, int] = {}
        with history.open() as f:
            for row in csv.DictReader(f):
                epochs[row["stage"]] = max(epochs.get(row["stage"], 0), int(row["epoch"]))
        assert [(s["stage"], s["epochs"]) for s in got["stages"]] == list(epochs.items()), (family, variant)
        assert all(s["steps_per_epoch"] > 0 and s["flops"] > 0 for s in got["stages"]), got
        assert got["steps"] == sum(s["epochs"] * s["steps_per_epoch"] for s in got["stages"])
        assert math.isclose(got["seconds"], 1e-3 * sum(s["epochs"] * s["steps_per_epoch"] for s in got["stages"]))
    assert timer_calls and all(n > 0 for n in timer_calls)  # every shape replays some products
    # The frozen stage trains the head only, so its step costs less than fine-tuning the same network.
    stacked = floor.variant_floor(cfg, "stacked", "sae512_256_128", device=torch.device("cpu"), data_dir=data_dir,
                                  scratch=tmp_path, precision="fp32", timer=lambda *_: 0.0, full_data=False)
    per_step = {s["stage"]: s["flops"] / (s["epochs"] * s["steps_per_epoch"]) for s in stacked["stages"]}
    assert per_step["frozen"] < 0.75 * per_step["finetune"], per_step


def _run_json(results: Path, family, variant, seed, seconds, profile="default"):
    path = paths.run_dir(results, family, variant, seed) / paths.RUN_INFO
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"family": family, "variant": variant, "seed": seed, "profile": profile,
                                "wall_seconds": seconds, "git_commit": "abc1234"}))


def test_built_job_time_is_shown_only_where_every_run_of_the_family_was_built(tmp_path):
    results = tmp_path / "results"
    for seed in (0, 1):
        _run_json(results, "cnn", "base", seed, 30.0)
        _run_json(results, "cnn", "wide", seed, 50.0)
    _run_json(results, "g2p", "attention", 0, 500.0)           # seed 1 missing
    _run_json(results, "g2p", "attention", 1, 9.0, "smoke")    # another profile's run
    measured = floor.measured_job_seconds(results, "default")
    assert measured["g2p"] == {"attention": {"0": {"seconds": 500.0, "commit": "abc1234"}}}

    def variant(seconds, family, name):
        return {"stages": [], "steps": 100, "flops": 1e12, "seconds": seconds,
                "measured_seconds": {s: r["seconds"] for s, r in measured.get(family, {}).get(name, {}).items()}}
    fams = {"cnn": floor._family_total({"base": variant(10.0, "cnn", "base"), "wide": variant(15.0, "cnn", "wide")},
                                       [0, 1], 2),
            "g2p": floor._family_total({"attention": variant(200.0, "g2p", "attention")}, [0, 1], 2)}
    assert fams["cnn"]["pure_seconds"] == 50.0 and fams["cnn"]["measured_seconds"] == 160.0
    assert fams["g2p"]["pure_seconds"] == 400.0 and fams["g2p"]["measured_seconds"] is None
    total = floor._totals(fams, [0, 1], measured)
    assert total["pure_seconds"] == 450.0 and total["measured_seconds"] is None
    # 450 s over 2 runs at once; no run is longer than that.
    assert total["wall_floor_seconds"] == 225.0 and total["measured_commits"] == ["abc1234"]
    text = "\n".join(output.floor_table(total))
    assert "cnn" in text and "3.20x" in text and "at least 3.8 min" in text
    g2p_line = next(line for line in text.splitlines() if line.startswith("g2p"))
    assert g2p_line.split()[-2:] == ["-", "-"]  # no job time shown for a family whose runs were not all built


def test_a_failed_variant_is_named_and_leaves_no_total(tmp_path):
    fams = {"vit": floor._family_total({"small": {"error": "RuntimeError: boom", "measured_seconds": {}}}, [0], 2)}
    total = floor._totals(fams, [0], {})
    assert total["pure_seconds"] is None and total["wall_floor_seconds"] is None
    text = "\n".join(output.floor_table(total))
    assert "FAILED: small: RuntimeError: boom" in text and "at least" not in text
