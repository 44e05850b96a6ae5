"""Declarative findings (pipeline/report/declarative.py) on constructed tables: each kind's numbers and wording,
and a one-line error for every kind of mistake in assignment.yaml."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from pipeline.report import declarative as dec
from pipeline.report.assignments import discover, families, table_needs

WHERE = "templates/x/assignment.yaml"
CFG = {"families": {
    "cnn": {"assignment": "a", "defaults": {"kernel": 3, "pool": "max"},
            "variants": {"base": {}, "k5": {"kernel": 5}, "k7": {"kernel": 7}, "avg": {"pool": "avg"}}},
    "vit": {"assignment": "a", "defaults": {}, "variants": {"s": {}, "m": {}, "l": {}}}}}
VARIANTS = {f: list(s["variants"]) for f, s in CFG["families"].items()}


def table(rows: list[tuple], n_seeds: int = 3) -> pd.DataFrame:
    """rows: (variant, params, val_acc, test_acc, test_acc_std)."""
    return pd.DataFrame([{"variant": v, "params": p, "val_acc": va, "test_acc": ta, "test_acc_std": sd,
                          "val_acc_std": sd, "n_seeds": n_seeds} for v, p, va, ta, sd in rows])


def run(entry: dict, tables: dict) -> dec.Finding:
    entries = dec.check([{"id": "f", **entry}], VARIANTS, WHERE)
    return dec.compute(entries, tables, CFG, WHERE)["f"]


CNN = table([("base", 1000, 0.90, 0.91, 0.002), ("k5", 2000, 0.95, 0.93, 0.002), ("k7", 4000, 0.97, 0.92, 0.002),
             ("avg", 1000, 0.80, 0.99, 0.002)])


def test_best_is_chosen_on_validation_and_reported_on_test():
    f = run({"kind": "best", "table": "cnn", "metric": "test_acc"}, {"cnn": CNN})
    # avg has the best test accuracy but not the best validation accuracy: k7 is the honest choice.
    assert f.numbers["variant"] == "k7" and f.numbers["chosen_on"] == "val_acc"
    assert "k7" in f.text and "92.00%" in f.text and "validation accuracy" in f.text


def test_a_clear_difference_is_beyond_seed_noise_and_a_tiny_one_is_not():
    clear = table([("base", 1, 0.9, 0.900, 0.001), ("k5", 1, 0.9, 0.910, 0.001)])
    f = run({"kind": "compare", "table": "cnn", "metric": "test_acc", "variants": ["k5", "base"]}, {"cnn": clear})
    assert f.numbers["beyond_noise"] and f.numbers["low"] > 0
    assert "beyond seed noise" in f.text and "+1.00 pp" in f.text

    tiny = table([("base", 1, 0.9, 0.900, 0.01), ("k5", 1, 0.9, 0.901, 0.01)])
    f = run({"kind": "compare", "table": "cnn", "metric": "test_acc", "variants": ["k5", "base"]}, {"cnn": tiny})
    assert not f.numbers["beyond_noise"] and f.numbers["low"] < 0 < f.numbers["high"]
    assert "not distinguishable from seed noise with 3 seeds" in f.text


def test_a_single_seed_allows_no_test():
    one = table([("base", 1, 0.9, 0.90, float("nan")), ("k5", 1, 0.9, 0.95, float("nan"))], n_seeds=1)
    f = run({"kind": "compare", "table": "cnn", "metric": "test_acc", "variants": ["k5", "base"]}, {"cnn": one})
    assert not f.numbers["testable"] and "single seed: no test" in f.text


def test_compare_across_tables_matches_the_closest_sizes():
    vit = table([("s", 900, 0.9, 0.80, 0.001), ("m", 3900, 0.9, 0.85, 0.001), ("l", 100000, 0.9, 0.95, 0.001)])
    f = run({"kind": "compare", "tables": ["cnn", "vit"], "match": "params", "metric": "test_acc"},
            {"cnn": CNN, "vit": vit})
    # k7 (4,000) and m (3,900) are closer on a log scale than any other pair.
    assert (f.numbers["a"], f.numbers["b"]) == ("cnn/k7", "vit/m")
    assert math.isclose(f.numbers["diff"], 0.07) and f.numbers["beyond_noise"]
    assert "ratio 1.03" in f.text


def test_each_pair_matches_every_variant_of_the_second_table_to_its_closest_in_the_first():
    vit = table([("s", 900, 0.9, 0.80, 0.001), ("m", 3900, 0.9, 0.921, 0.02), ("l", 100000, 0.9, 0.99, 0.001)])
    f = run({"kind": "compare", "tables": ["cnn", "vit"], "match": "params", "pairs": "each", "metric": "test_acc"},
            {"cnn": CNN, "vit": vit})
    # s (900) is closest to base (1,000, the first of the two at that size), m (3,900) to k7, l (100,000) to k7.
    got = [(q["b"], q["a"], round(q["ratio"], 3)) for q in f.numbers["pairs"]]
    assert got == [("vit/s", "cnn/base", 0.9), ("vit/m", "cnn/k7", 0.975), ("vit/l", "cnn/k7", 25.0)]
    # s is 11 pp below base, l 7 pp above k7, both far beyond their 0.1-0.2 pp spreads; m is 0.1 pp above k7 with a
    # 2 pp spread: not distinguishable.
    assert [q["verdict"] for q in f.numbers["pairs"]] == ["lower", "within", "higher"]
    assert (f.numbers["higher"], f.numbers["lower"], f.numbers["within"]) == (1, 1, 1)
    assert "vit higher beyond seed noise in 1 of 3 pairs, lower in 1, not distinguishable in 1" in f.text
    assert "0.90 to 25.00" in f.text
    assert list(f.table["vit variant"]) == ["s (900)", "m (3,900)", "l (100,000)"]
    assert list(f.table["cnn variant"]) == ["base (1,000)", "k7 (4,000)", "k7 (4,000)"]
    assert list(f.table["Verdict"]) == ["lower", "within\u00a0noise", "higher"]
    assert f.table["vit \u2212 cnn"].iloc[0] == "-11.00 pp" and f.table["95% CI"].iloc[0].startswith("-11.")
    one = run({"kind": "compare", "tables": ["cnn", "vit"], "match": "params", "pairs": "each", "metric": "test_acc"},
              {"cnn": table([("base", 1000, 0.9, 0.91, float("nan"))], n_seeds=1),
               "vit": table([("s", 900, 0.9, 0.80, float("nan"))], n_seeds=1)})
    assert "single seed: no test" in one.text and not one.numbers["testable"]


def test_trend_is_the_least_squares_slope_per_doubling():
    # +1 pp per doubling exactly, whatever the offset.
    t = table([(v, p, 0.5, 0.50 + 0.01 * i, 0.0) for i, (v, p) in enumerate([("s", 100), ("m", 200), ("l", 400)])])
    f = run({"kind": "trend", "table": "vit", "metric": "test_acc", "over": "params"}, {"vit": t})
    assert math.isclose(f.numbers["slope"], 1.0) and "+1.00 pp per doubling" in f.text
    flat = table([("s", 100, 0.5, 0.9, 0.0), ("m", 200, 0.5, 0.9, 0.0), ("l", 400, 0.5, 0.9, 0.0)])
    f = run({"kind": "trend", "table": "vit", "metric": "test_acc"}, {"vit": flat})
    assert abs(f.numbers["slope"]) < 1e-9


def test_trend_is_tested_against_seed_noise():
    # +1 pp per doubling with a 0.1 pp spread per point is real; +0.2 pp with a 2 pp spread is noise.
    clear = table([(v, p, 0.5, 0.50 + 0.01 * i, 0.001) for i, (v, p) in enumerate([("s", 100), ("m", 200), ("l", 400)])])
    f = run({"kind": "trend", "table": "vit", "metric": "test_acc"}, {"vit": clear})
    assert f.numbers["beyond_noise"] and f.numbers["low"] > 0 and "beyond seed noise" in f.text
    noisy = table([(v, p, 0.5, 0.50 + 0.002 * i, 0.02) for i, (v, p) in enumerate([("s", 100), ("m", 200), ("l", 400)])])
    f = run({"kind": "trend", "table": "vit", "metric": "test_acc"}, {"vit": noisy})
    assert f.numbers["testable"] and not f.numbers["beyond_noise"] and f.numbers["low"] < 0 < f.numbers["high"]
    assert "not distinguishable from no trend with 3 seeds" in f.text
    single = table([(v, p, 0.5, 0.50 + 0.01 * i, float("nan")) for i, (v, p) in enumerate([("s", 100), ("m", 200)])],
                   n_seeds=1)
    f = run({"kind": "trend", "table": "vit", "metric": "test_acc"}, {"vit": single})
    assert not f.numbers["testable"] and "single seed: no test" in f.text


def test_dimensions_group_variants_by_the_settings_they_change():
    f = run({"kind": "dimensions", "table": "cnn", "metric": "test_acc", "against": "base"}, {"cnn": CNN})
    rows = f.table.set_index("Changes")
    assert list(rows.index) == ["kernel", "pool"]
    assert rows.loc["kernel", "Variants"] == "k5, k7" and rows.loc["kernel", "Best"] == "k5"
    assert rows.loc["kernel", "Test accuracy vs base"] == "+1.00 pp to +2.00 pp"
    assert rows.loc["pool", "Test accuracy vs base"] == "+8.00 pp"
    # Each variant is tested against base: it gave the ranges alone.
    assert rows.loc["kernel", "Beyond seed noise"] == "2 of 2"
    assert "kernel (+1.00 pp to +2.00 pp, 2 of 2 beyond seed noise)" in f.text
    assert "Welch's t on 3 seeds at 95%" in f.text
    wide = table([("base", 1000, 0.90, 0.91, 0.05), ("k5", 2000, 0.95, 0.93, 0.05), ("k7", 4000, 0.97, 0.92, 0.05),
                  ("avg", 1000, 0.80, 0.99, 0.05)])
    f = run({"kind": "dimensions", "table": "cnn", "metric": "test_acc", "against": "base"}, {"cnn": wide})
    assert "kernel (+1.00 pp to +2.00 pp, 0 of 2 beyond seed noise)" in f.text
    settings = [("base", 1000, 0.9, 0.91), ("k5", 2000, 0.95, 0.93), ("k7", 4000, 0.97, 0.92), ("avg", 1000, 0.8, 0.99)]
    one = table([(*row, float("nan")) for row in settings], n_seeds=1)
    f = run({"kind": "dimensions", "table": "cnn", "metric": "test_acc", "against": "base"}, {"cnn": one})
    assert "Single seed: no test." in f.text and "Beyond seed noise" not in f.table.columns


@pytest.mark.parametrize("entry, words", [
    ({"kind": "median", "table": "cnn", "metric": "test_acc"}, "unknown kind 'median'; use one of best, compare"),
    ({"kind": "best", "table": "cnnn", "metric": "test_acc"}, "table 'cnnn' is not one of this assignment's"),
    ({"kind": "compare", "table": "cnn", "metric": "test_acc", "variants": ["base", "k9"]},
     "variant 'k9' is not in family 'cnn' (has: base, k5, k7, avg); fix the variant name"),
    ({"kind": "best", "table": "cnn"}, "needs a metric"),
    ({"kind": "best", "table": "cnn", "metric": "test_acc", "colour": "red"}, "unknown key(s) colour"),
    ({"kind": "compare", "tables": ["cnn", "vit"], "match": "params", "pairs": "all", "metric": "test_acc"},
     "pairs: 'all'; use pairs: closest (the one closest pair) or pairs: each"),
])
def test_a_mistake_in_assignment_yaml_is_one_line_naming_the_file_and_the_fix(entry, words):
    with pytest.raises(dec.FindingsError) as exc:
        dec.check([{"id": "f", **entry}], VARIANTS, WHERE)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(WHERE + ": findings[0] (f): ") and words in msg


def test_an_unknown_metric_names_the_columns():
    with pytest.raises(dec.FindingsError, match=r"'test_acc2' is not a column of results/tables/cnn.csv \(has: "):
        run({"kind": "best", "table": "cnn", "metric": "test_acc2"}, {"cnn": CNN})


def test_an_assignment_that_uses_configured_families_is_built_and_reads_exactly_their_tables():
    from pipeline import config
    cfg = config.load("smoke")
    assert "cnn_vs_vit" in discover(cfg)
    assert families(cfg, "cnn_vs_vit") == ["cnn", "vit"]
    assert table_needs("cnn_vs_vit") == ["tables/cnn.csv", "tables/vit.csv"]
    without_vit = {**cfg, "families": {f: s for f, s in cfg["families"].items() if f != "vit"}}
    assert "cnn_vs_vit" not in discover(without_vit)


def test_the_report_rule_depends_on_those_tables_and_no_assignment_code():
    from pipeline import config
    from pipeline import workflow as wf
    cfg = config.load("smoke")
    inputs = wf.report_inputs(cfg, "cnn_vs_vit")
    results = [i for i in inputs if i.startswith(cfg["results_dir"] + "/")]
    assert results == [f"{cfg['results_dir']}/tables/cnn.csv", f"{cfg['results_dir']}/tables/vit.csv"]
    assert not any(i.endswith("pipeline/report/cnn_vs_vit.py") for i in inputs)
    assert set(wf.from_slice(wf.assignment_slice(cfg, "cnn_vs_vit"))["families"]) == {"cnn", "vit"}
