"""Review a rebuild: snapshot, diff and verify on the smoke profile (two CNN variants x two seeds, seconds each)."""
from __future__ import annotations

import copy
import json
import shutil

import pandas as pd
import pytest

from pipeline.__main__ import main
from pipeline.review import ReviewError
from pipeline.review.build import Build, Run, open_build, read
from pipeline.review.diff import compare_predictions, diff
from pipeline.review.verify import check, within_spread

VARIANTS = ("base", "filters8")


# ------------------------------------------------------------------------------------------------ constructed data

def _build(label: str, rows: dict, table: pd.DataFrame | None = None, profile="smoke", precision="fp32") -> Build:
    """rows: (variant, seed) -> metrics; a Build as the reader would make it."""
    b = Build(label, label, "results")
    for (variant, seed), metrics in rows.items():
        info = {"profile": profile, "precision": precision, "params": {"lr": 0.001}}
        b.runs[("cnn", variant, seed)] = Run("cnn", variant, seed, metrics, info, None, {})
    return b


def _by(result, variant, name):
    return next(it for it in result.items if it.variant == variant and it.name == name)


def test_verdicts_on_constructed_runs():
    old = _build("old", {("a", 0): {"acc": 0.90, "params": 10}, ("a", 1): {"acc": 0.91, "params": 10},
                         ("b", 0): {"acc": 0.80, "params": 20}, ("b", 1): {"acc": 0.82, "params": 20},
                         ("c", 0): {"acc": 0.5, "params": 5}, ("solo", 0): {"acc": 0.7, "params": 1}})
    new = _build("new", {("a", 0): {"acc": 0.90, "params": 10}, ("a", 1): {"acc": 0.91, "params": 10},
                         ("b", 0): {"acc": 0.81, "params": 20}, ("b", 1): {"acc": 0.83, "params": 20},
                         ("c", 0): {"acc": 0.5, "params": 5}, ("solo", 0): {"acc": 0.6, "params": 2},
                         ("added", 0): {"acc": 0.1, "params": 1}})
    new.runs[("cnn", "c", 1)] = Run("cnn", "c", 1, {"acc": 0.5, "params": 5}, old.runs[("cnn", "c", 0)].info, None, {})
    old.runs[("cnn", "c", 1)] = new.runs[("cnn", "c", 1)]
    # a clear shift: both seeds of c move by 0.2 (constant spread 0): beyond noise
    for s in (0, 1):
        new.runs[("cnn", "c", s)] = Run("cnn", "c", s, {"acc": 0.7, "params": 5}, old.runs[("cnn", "c", 0)].info,
                                        None, {})
    r = diff(old, new)
    assert _by(r, "a", "acc").verdict == "identical"
    assert _by(r, "b", "acc").verdict == "within_noise"         # +0.01 with a 0.014 spread over two seeds
    assert _by(r, "b", "params").verdict == "identical"
    assert _by(r, "c", "acc").verdict == "beyond_noise"
    assert _by(r, "solo", "acc").verdict == "not_comparable" and "single seed" in _by(r, "solo", "acc").reason
    assert _by(r, "solo", "params").verdict == "beyond_noise"   # a count does not depend on the seed
    assert _by(r, "added", "acc").verdict == "not_comparable" and _by(r, "added", "acc").reason == "variant added"
    c = r.counts()
    assert c["beyond_noise"] == 2 and sum(c.values()) == len(r.items) == 10


def test_profile_or_precision_change_is_not_comparable():
    rows = {("a", 0): {"acc": 0.9}, ("a", 1): {"acc": 0.8}}
    moved = {k: {"acc": v["acc"] + 0.05} for k, v in rows.items()}
    assert _by(diff(_build("o", rows), _build("n", moved, precision="bf16")), "a", "acc").verdict == "not_comparable"
    r = diff(_build("o", rows), _build("n", moved, profile="default"))
    assert _by(r, "a", "acc").verdict == "not_comparable" and "profile" in _by(r, "a", "acc").reason
    assert r.notes


def test_nan_metrics_are_identical_and_a_one_sided_family_is_not_comparable():
    nan = float("nan")
    old = _build("o", {("a", 0): {"acc": nan}, ("a", 1): {"acc": nan}})
    new = _build("n", {("a", 0): {"acc": nan}, ("a", 1): {"acc": nan}})
    new.runs[("vit", "tiny", 0)] = Run("vit", "tiny", 0, {"acc": 0.5}, {}, None, {})
    r = diff(old, new)
    assert _by(r, "a", "acc").verdict == "identical"
    assert all(not rc.metrics_changed for rc in r.runs if rc.family == "cnn")
    assert _by(r, "tiny", "acc").verdict == "not_comparable" and _by(r, "tiny", "acc").reason == "family not in OLD"


def test_timing_columns_are_reported_not_judged():
    old = _build("o", {("a", 0): {"acc": 0.9}})
    new = _build("n", {("a", 0): {"acc": 0.9}})
    old.tables["cnn"] = pd.DataFrame({"variant": ["a"], "n_seeds": [1], "acc": [0.9], "seconds_per_epoch": [1.0]})
    new.tables["cnn"] = pd.DataFrame({"variant": ["a"], "n_seeds": [1], "acc": [0.9], "seconds_per_epoch": [9.0]})
    r = diff(old, new)
    assert _by(r, "a", "seconds_per_epoch").verdict == "timing" and not r.beyond_noise


def test_predictions_changed_counts():
    cls = lambda v: {"split": "test", "kind": "class", "values": v}  # noqa: E731
    assert compare_predictions(cls([1, 2, 3, 4]), cls([1, 2, 0, 0])) == (2, 4, "")
    assert compare_predictions(cls([1]), cls([1, 2]))[0] is None
    g = lambda k, v: {"split": "test", "kind": "phonemes", "keys": k, "values": v}  # noqa: E731
    changed, total, note = compare_predictions(g(["a", "b", "c"], ["AH0", "B IY1", "S IY1"]),
                                               g(["b", "a", "d"], ["B IY1", "EY1", "D IY1"]))
    assert (changed, total) == (1, 2) and "2 words" in note
    assert compare_predictions(None, None) == (None, None, "")
    assert compare_predictions(None, cls([1]))[2] == "predictions only in NEW"


def test_verify_judges_elsewhere_by_the_seed_spread():
    assert within_spread(0.905, [0.90, 0.91, 0.92]) is True
    assert within_spread(0.99, [0.90, 0.91, 0.92]) is False
    assert within_spread(0.9, [0.9]) is None
    info = {"device": "cpu:x", "precision": "fp32", "threads": 1, "packages": {"torch": "1"}, "params": {}}
    recorded = _build("r", {("a", 0): {"acc": 0.90}, ("a", 1): {"acc": 0.92}})
    old = Run("cnn", "a", 0, {"acc": 0.90, "params": 10}, info, None, {})
    here = check(recorded, old, Run("cnn", "a", 0, {"acc": 0.9001, "params": 10}, info, None, {}))
    assert not here.ok                                              # same machine: must be identical
    gpu = {**info, "device": "cuda:H100"}
    assert check(recorded, old, Run("cnn", "a", 0, {"acc": 0.9001, "params": 10}, gpu, None, {})).ok
    assert not check(recorded, old, Run("cnn", "a", 0, {"acc": 0.9, "params": 11}, gpu, None, {})).ok


# ------------------------------------------------------------------------------------------------ smoke builds

@pytest.fixture(scope="module")
def builds(tmp_path_factory, data_dir):
    """A: two CNN variants x two seeds + an analysis; B: A with one variant's setting changed and rerun (what
    Snakemake would rerun); a configfile pointing the CLI at A."""
    from pipeline import config
    from pipeline.aggregate import aggregate_family
    from pipeline.analysis.registry import run_analysis
    from pipeline.run import execute
    root = tmp_path_factory.mktemp("review")
    cfg = config.load("smoke")
    cfg.update(results_dir=str(root / "A"), reports_dir=str(root / "reports"), data_dir=str(data_dir), device="cpu",
               seeds=[0, 1])
    cfg["families"] = {"cnn": {**cfg["families"]["cnn"],
                               "variants": {v: cfg["families"]["cnn"]["variants"][v] for v in VARIANTS}}}
    for variant in VARIANTS:
        for seed in (0, 1):
            execute("cnn", variant, seed, cfg, threads=1)
    aggregate_family(cfg, "cnn")
    run_analysis("conv_arithmetic", root / "A")

    shutil.copytree(root / "A", root / "B")
    cfg_b = copy.deepcopy(cfg)
    cfg_b["results_dir"] = str(root / "B")
    cfg_b["families"]["cnn"]["variants"]["filters8"] = {**cfg["families"]["cnn"]["variants"]["filters8"], "head": 64}
    for seed in (0, 1):
        execute("cnn", "filters8", seed, cfg_b, threads=1)
    aggregate_family(cfg_b, "cnn")
    cf = root / "cf.yaml"
    cf.write_text(f"results_dir: {root / 'A'}\nreports_dir: {root / 'reports'}\ndata_dir: {data_dir}\n"
                  f"device: cpu\nseeds: [0, 1]\n")
    return {"root": root, "cfg": cfg, "cf": cf}


def cli(builds, *args) -> int:
    return main([*args, "--profile", "smoke", "--configfile", str(builds["cf"])])


def test_one_changed_setting_is_named_and_nothing_else(builds, capsys):
    root = builds["root"]
    assert cli(builds, "snapshot", "before") == 0
    assert (root / "A" / "snapshots" / "before" / "manifest.json").exists()
    assert not list((root / "A" / "snapshots").rglob("model.pt"))          # no weights in a snapshot
    capsys.readouterr()
    assert cli(builds, "diff", "before", str(root / "B"), "--fail-on", "beyond-noise") == 1
    out = capsys.readouterr().out
    assert "settings changed: cnn/filters8: head 128 -> 64" in out
    report = json.loads((root / "reports" / "diff.json").read_text())
    assert report["settings_changed"] == {"cnn/filters8": ["head 128 -> 64"]}
    assert report["counts"]["beyond_noise"] >= 1 and report["beyond_noise"]
    changed = [c for c in report["changed"] if c["verdict"] != "timing"]
    assert {c["variant"] for c in changed} == {"filters8"}                  # exactly that variant's numbers
    assert {"params", "test_acc"} <= {c["name"] for c in changed}
    assert all(c["verdict"] == "beyond_noise" for c in changed if c["name"] in ("params", "macs"))
    assert report["per_family"]["analysis"]["identical"] == sum(report["per_family"]["analysis"].values())
    for r in report["runs"]:
        assert bool(r["metrics_changed"]) == (r["where"].startswith("runs/cnn/filters8/"))
    assert (root / "reports" / "diff.pdf").read_bytes()[:4] == b"%PDF"
    html = (root / "reports" / "diff.html").read_text()
    assert html.index("Summary") < html.index("Every changed number")
    # the same build against itself: identical, and the gate passes
    assert cli(builds, "diff", "before", str(root / "A"), "--fail-on", "beyond-noise", "--no-pdf") == 0
    same = json.loads((root / "reports" / "diff.json").read_text())
    assert same["counts"]["identical"] == sum(same["counts"].values()) and not same["changed"]


def test_bad_input_is_one_line_exit_2(builds, capsys, tmp_path):
    root = builds["root"]
    cli(builds, "snapshot", "old-format", "--force")
    manifest = root / "A" / "snapshots" / "old-format" / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "format": 0}))
    other = tmp_path / "other"
    (other / "runs" / "autoencoder" / "ae16" / "seed0").mkdir(parents=True)
    (other / "runs" / "autoencoder" / "ae16" / "seed0" / "metrics.json").write_text('{"test_mse": 0.1}')
    for args, words in ((("diff", "no-such-snapshot", str(root / "A")), "unknown snapshot 'no-such-snapshot'"),
                        (("diff", "old-format", str(root / "A")), "format 0"),
                        (("diff", str(other), str(root / "B")), "share no family"),
                        (("snapshot", "old-format"), "exists")):
        capsys.readouterr()
        assert cli(builds, *args) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and words in err, err


def test_verify_reproduces_and_a_rebuild_diffs_identical(builds, capsys):
    """Every recorded run reruns to identical metrics here; the rerun build diffs as identical (timing aside)."""
    from pipeline.aggregate import aggregate_family
    from pipeline.review.verify import verify
    root, cfg = builds["root"], builds["cfg"]
    recorded = read(root / "A", "A", "results")
    checks = verify(recorded, cfg, "all", root / "C", log=lambda m: None)
    assert len(checks) == 4 and all(c.ok and c.same_env for c in checks), [c.problems for c in checks]
    aggregate_family({**cfg, "results_dir": str(root / "C")}, "cnn")
    shutil.copytree(root / "A" / "analysis", root / "C" / "analysis")
    r = diff(recorded, open_build(str(root / "C"), root / "A" / "snapshots"))
    c = r.counts()
    assert c["beyond_noise"] == c["within_noise"] == c["not_comparable"] == 0 and c["identical"] > 0
    assert all(it.name in ("seconds_per_epoch", "wall_seconds") for it in r.items if it.verdict == "timing")
    assert all(not rc.metrics_changed and not rc.predictions_changed for rc in r.runs)


def test_verify_cli_passes_then_fails_when_a_setting_is_broken(builds, capsys):
    root = builds["root"]
    capsys.readouterr()
    assert cli(builds, "verify", "--scratch", str(root / "V")) == 0           # one run per family: cnn/base/seed0
    assert "1 of 1 runs reproduce" in capsys.readouterr().out
    # Break determinism on purpose: the recorded settings no longer produce the recorded metrics.
    info_path = root / "A" / "runs" / "cnn" / "base" / "seed0" / "run.json"
    saved = info_path.read_text()
    try:
        info = json.loads(saved)
        info["params"]["lr"] = info["params"]["lr"] * 3
        info_path.write_text(json.dumps(info))
        assert cli(builds, "verify", "--scratch", str(root / "V"), "--sample", "cnn/base/0") == 1
        out = capsys.readouterr().out
        assert "FAIL runs/cnn/base/seed0" in out and "test_acc" in out
    finally:
        info_path.write_text(saved)


def test_unknown_verify_sample(builds):
    from pipeline.review.verify import choose
    with pytest.raises(ReviewError, match="no recorded run matches"):
        choose(read(builds["root"] / "A", "A", "results"), "vit/tiny", {})
