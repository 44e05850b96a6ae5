"""Context of the hw2 report (convolution as a matrix, learning-rate study, G2P): every number and finding is read
or derived from results/; the only typed-in numbers are the published reference figures below, kept here as data.
"""
from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from .. import paths
from ..aggregate.g2p import beam_sizes
from ..aggregate.lr_study import rate_label
from ..models.reference_cnn import ReferenceCNN

from .findings import (best, change_ci, change_test, compare, contrast, join, mean_std, pct, plural, pp,
                       seeds_note)
from .runs import run_index
from .tables import integer as _int
from .tables import read_json as _json
from .tables import read_table as _table
from .tables import row as _row

DATASET_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "kmnist": "Kuzushiji-MNIST"}

# The reference report's final validation accuracies per learning rate (Kuzushiji-MNIST, same architecture).
LR_REFERENCE = {"dataset": "kmnist", "val_acc": {1e-5: 0.8938, 5e-4: 0.9571, 1e-2: 0.1000}}
# Published word error rates on the standard CMUdict train/test split, and the reference report's own test error
# rate (mean per-word edit distance over the reference length, on characters of a transliteration task).
G2P_REFERENCE = [
    {"model": "LSTM, no attention", "wer": 0.286, "report_ned": 0.5002, "variant": "no_attention"},
    {"model": "LSTM, attention", "wer": 0.217, "report_ned": 0.3808, "variant": "attention"},
    {"model": "Transformer", "wer": 0.221, "report_ned": None, "variant": None},
]
VARIANT_NAMES = {"attention": "with attention", "no_attention": "without attention"}


@cache
def reference_cnn() -> ReferenceCNN:
    """The network of Q2.4, built on first use (not at import): its shapes are read from it, never typed in."""
    return ReferenceCNN()


def pool_size() -> int:
    return reference_cnn().pool.kernel_size


def n_classes() -> int:
    return reference_cnn().fc3.out_features


def first_kernel() -> int:
    return next(m for m in reference_cnn().modules() if isinstance(m, nn.Conv2d)).kernel_size[0]
# A classifier at or below this test accuracy has learned (nearly) nothing: chance is 1 / n_classes().
CHANCE_MARGIN = 0.15
# Float64 results this close count as equal (rounding, not a different formula).
EXACT = 1e-9
# A first-layer map active on fewer pixels than this is called weak.
WEAK_MAP = 0.02
# A validation accuracy rising faster than this (fraction per epoch, least squares over the last quarter of the
# epochs) counts as "still improving".
STILL_IMPROVING = 0.001


# ---------------------------------------------------------------------------------------------------- question 1

def question1(conv: dict) -> dict:
    ex = conv["example"]
    grid = pd.DataFrame(conv["param_counts"]["grid"])
    shown = pd.DataFrame({
        "Image H×W": [f"{h}×{w}" for h, w in zip(grid["H"], grid["W"])],
        "Kernel M×N": [f"{m}×{n}" for m, n in zip(grid["M"], grid["N"])],
        "H′×W′": [f"{h - m + 1}×{w - n + 1}" for h, w, m, n in zip(grid["H"], grid["W"], grid["M"], grid["N"])],
        "Pooled P": grid["pooled"].map(_int),
        "A: with biases": grid["conv_numel"].map(_int), "A: weights only": grid["conv_nobias_numel"].map(_int),
        "B: with biases": grid["fc_numel"].map(_int), "B: weights only": grid["fc_nobias_numel"].map(_int),
        "B / A": (grid["fc_numel"] / grid["conv_numel"]).map(lambda v: f"{v:,.0f}×"),
    })
    cases = conv["conv_vs_torch"]["cases"]
    n_out = int(grid["n_out"].iloc[0])
    ratio = grid["fc_numel"] / grid["conv_numel"]
    matches = ex["matrix_times_vec_x"] == ex["torch_conv2d"]
    sides = [d for c in cases for d in (c["H"], c["W"])]
    diff = conv["conv_vs_torch"]["max_abs_diff"]
    verdict = "equals" if diff < EXACT else "DIFFERS from"
    findings = [
        f"K vec(x) {verdict} F.conv2d on {len(cases)} random cases (images {min(sides)}–{max(sides)} "
        f"pixels a side, every kernel size up to the image): largest absolute difference {diff:.1e}.",
        ("The closed forms, with and without biases, equal the modules' numel() sums in all " if
         conv["param_counts"]["all_equal"] else "The closed forms DISAGREE with numel() in some of the ")
        + f"{len(grid)} configurations; replacing the convolution by a fully connected layer multiplies the "
        f"parameter count by {ratio.min():,.0f}× to {ratio.max():,.0f}×.",
    ]
    # The MNIST-sized case, for the text: 28x28 image, 5x5 filter if the grid has it.
    mnist = grid[(grid["H"] == 28) & (grid["W"] == 28)]
    pick = mnist[(mnist["M"] == 5) & (mnist["N"] == 5)]
    pick = (pick if len(pick) else mnist if len(mnist) else grid).iloc[0]
    att = conv["attention"]
    return {"ex": ex, "matches": matches, "grid": shown, "n_out": n_out, "findings": findings, "att": att,
            "flat": conv["flattened_attention"], "pick": pick,
            "ex_h": len(ex["x"]), "ex_w": len(ex["x"][0]), "ex_m": len(ex["w"]), "ex_n": len(ex["w"][0])}


def why_convolutions(q1: dict, q2: dict) -> dict:
    """Q2.1-Q2.3, tied to the Q1 counts and the reference CNN that Q2.4 trains."""
    g = q1["pick"]
    h, w, m, n = int(g["H"]), int(g["W"]), int(g["M"]), int(g["N"])
    ho, wo = h - m + 1, w - n + 1
    return {
        "fewer": (f"A convolution reuses one small kernel at every position, so its weights do not grow with the image: "
                  f"for a {h}×{w} image and a {m}×{n} filter, network A has {int(g['conv_numel']):,} parameters and "
                  f"network B, whose first layer must connect each of the {ho * wo:,} outputs to all {h * w:,} pixels, "
                  f"{int(g['fc_numel']):,} ({g['fc_numel'] / g['conv_numel']:,.0f}× more). The reference CNN of Q2.4 "
                  f"has {q2['n_params']:,} parameters, most of them in its fully connected layers."),
        "generalise": ("Sharing and locality are assumptions that hold for images: a stroke or an edge means the same "
                       "thing anywhere, and the pixels that form it are neighbours. A convolution therefore detects a "
                       "pattern wherever it appears (its output shifts with the input) and learns it from every position "
                       "at once, while a fully connected layer must learn each position separately from fewer examples "
                       "per weight, with thousands of times more parameters to fit: more capacity to memorise, "
                       "less evidence per parameter."),
        "no_gain": ("When the inputs have no spatial or temporal order, e.g. readings of independent sensors or columns "
                    "of a table: permuting the inputs changes nothing for a fully connected network, but destroys the "
                    "neighbourhoods a convolution relies on, so its sharing and locality only restrict the model. The "
                    "same holds when every output depends on specific far-apart positions (no translation symmetry)."),
    }


# ---------------------------------------------------------------------------------------------------- question 2

def _behaviour(r: pd.Series) -> str:
    """One clause on how a rate trained, from the curve summaries in the table."""
    name = f"Rate {rate_label(r['lr'])}"
    if r["test_acc"] <= CHANCE_MARGIN:
        return (f"{name} does not learn: test accuracy {pct(r['test_acc'])} (chance is {pct(1 / n_classes())}), "
                f"training loss {r['first_train_loss']:.3f} in the first epoch and {r['final_train_loss']:.3f} in the "
                f"last (ln {n_classes()} = {math.log(n_classes()):.3f} is the loss of a uniform guess)")
    epochs = int(r["epochs_run"])
    slope, d = r["recent_val_slope"], change_test(r, "recent_val_slope")
    trend = (f"validation accuracy {pp(slope)} per epoch over the last {int(r['recent_epochs'])} epochs, least "
             f"squares; {change_ci(d)}")
    # Each seed's slope is one sample: "still improving" needs the rise beyond seed noise, "levelled off" a CI
    # that stays below the threshold; between the two the seeds cannot tell.
    if slope > STILL_IMPROVING and (d.beyond_noise or not d.testable):
        return (f"{name} is still improving after {plural(epochs, 'epoch')} ({trend}; training loss "
                f"{r['final_train_loss']:.3f})")
    if (d.high <= STILL_IMPROVING) if d.testable else (slope <= STILL_IMPROVING):
        state = "has levelled off"
    elif d.beyond_noise and slope > 0:
        state = "still rises slowly"
    else:
        state, trend = "shows no clear rise at the end", f"{trend}: not distinguishable from flat"
    return (f"{name} {state} ({trend}): best validation accuracy {pct(r['best_val_acc'])}, reached on "
            f"average at epoch {mean_epoch(r['best_epoch'])} of {epochs} (training loss {r['final_train_loss']:.3f})")


def mean_epoch(x: float) -> str:
    """An epoch averaged over seeds: whole where the seeds agree, else to one decimal (not 17.66667)."""
    return f"{round(float(x), 1):g}"


def describe_architecture(model: torch.nn.Module) -> str:
    """The layer sequence of the reference network, read from the module itself so the text cannot drift."""
    parts = []
    for mod in model.children():
        if isinstance(mod, nn.Conv2d):
            pad = f", padding {mod.padding[0]}" if mod.padding[0] else ", no padding"
            parts.append(f"conv {mod.in_channels}\u2192{mod.out_channels} "
                         f"({mod.kernel_size[0]}\u00d7{mod.kernel_size[1]}{pad}) + ReLU + "
                         f"{pool_size()}\u00d7{pool_size()} max-pool")
        elif isinstance(mod, nn.Linear):
            parts.append(f"fully connected {mod.in_features}\u2192{mod.out_features}")
    # ReLU after every hidden fully connected layer; dropout after the first (see ReferenceCNN.forward).
    fc = [i for i, p in enumerate(parts) if p.startswith("fully")]
    for i in fc[:-1]:
        parts[i] += " + ReLU"
    parts[fc[0]] += f" + dropout {model.drop.p:g}"
    return ", ".join(parts)


def question2(t: pd.DataFrame, activations: dict, params: dict) -> dict:
    t = t.sort_values("lr").reset_index(drop=True)
    top = best(t, "val_acc")
    others = [r for _, r in t.iterrows() if r["variant"] != top["variant"]]
    findings = [
        f"Best rate by validation accuracy: lr {rate_label(top['lr'])}, with test accuracy {pct(top['test_acc'])} "
        f"(validation {pct(top['val_acc'])}, training subset {pct(top['train_acc'])}).",
    ]
    findings += [f"Against lr {rate_label(r['lr'])}: " + compare(top, r, "test_acc", f"lr {rate_label(top['lr'])}",
                                                             f"lr {rate_label(r['lr'])}") + "." for r in others]
    findings += [_behaviour(r) + "." for _, r in t.iterrows()]

    ref = LR_REFERENCE["val_acc"]
    ours_by_rate = {float(r["lr"]): float(r["val_acc"]) for _, r in t.iterrows()}
    common = [lr for lr in sorted(ref) if any(math.isclose(lr, o) for o in ours_by_rate)]
    ours = {lr: next(v for o, v in ours_by_rate.items() if math.isclose(lr, o)) for lr in common}
    rank_ref = sorted(common, key=lambda lr: -ref[lr])
    rank_ours = sorted(common, key=lambda lr: -ours[lr])
    dataset = params["dataset"]
    same = rank_ref == rank_ours
    ranking = " > ".join(rate_label(lr) for lr in rank_ours)
    ref_findings = []
    if common:
        largest = max(common)
        fails = ours[largest] <= CHANCE_MARGIN
        ref_fails = ref[largest] <= CHANCE_MARGIN
        who = {(True, True): "both stay", (False, True): "only the reference stays",
               (True, False): "only ours stays", (False, False): "neither stays"}[(fails, ref_fails)]
        ref_findings.append(
            (f"Same ranking of the rates as the reference ({ranking})" if same else
             f"Different ranking: ours {ranking}, reference {' > '.join(rate_label(lr) for lr in rank_ref)}")
            + f"; at the largest rate ({rate_label(largest)}) {who} at chance level. The datasets differ "
            f"({DATASET_NAMES[dataset]} here, {DATASET_NAMES[LR_REFERENCE['dataset']]} in the reference), so the "
            "comparison is qualitative: rankings and failures, not accuracy levels.")
    ref_table = pd.DataFrame({
        "Learning rate": [rate_label(lr) for lr in common],
        f"Reference, {DATASET_NAMES[LR_REFERENCE['dataset']]} (%)": [f"{100 * ref[lr]:.2f}" for lr in common],
        f"Ours, {DATASET_NAMES[dataset]} (%)": [f"{100 * ours[lr]:.2f}" for lr in common],
    })

    maps = activations["maps"]
    dead = [m["map"] for m in maps if m["max"] <= 0]
    weak = [m["map"] for m in maps if m["max"] > 0 and m["active_pixels"] < WEAK_MAP]
    broad = max(maps, key=lambda m: m["active_pixels"])
    act_findings = [
        (f"{plural(len(dead), 'map')} ({', '.join(map(str, dead))}) {'is' if len(dead) == 1 else 'are'} zero "
         "everywhere on this image (the ReLU cuts the whole response)" if dead else "Every map responds somewhere")
        + (f"; {plural(len(weak), 'map')} ({', '.join(map(str, weak))}) fire on under {pct(WEAK_MAP, 0)} of the "
           "pixels" if weak else "")
        + f". Map {broad['map']} is the broadest, active on {pct(broad['active_pixels'], 1)} of the pixels "
        f"(active: above {pct(activations['active_fraction_threshold'], 0)} of the strongest response).",
        f"Each map is the image filtered by one learned {first_kernel()}×{first_kernel()} kernel and cut at zero: narrow maps trace edges of one "
        "direction or contrast (parts of the outline), broad ones respond to filled regions; together they are the "
        "local features the second convolution combines, and where a map stays dark its pattern is absent.",
    ]

    display = pd.DataFrame({
        "Learning rate": t["lr"].map(rate_label),
        "Train loss, first → last epoch": [f"{r['first_train_loss']:.3f} → {r['final_train_loss']:.3f}"
                                           for _, r in t.iterrows()],
        "Best val. acc. (%) [epoch]": [f"{mean_std(r, 'best_val_acc')} [{mean_epoch(r['best_epoch'])}]"
                                       for _, r in t.iterrows()],
        "Val. acc. (%)": [mean_std(r, "val_acc") for _, r in t.iterrows()],
        "Test acc. (%)": [mean_std(r, "test_acc") for _, r in t.iterrows()],
        "Train acc. (%)": [mean_std(r, "train_acc") for _, r in t.iterrows()],
        "s/epoch": t["seconds_per_epoch"].map(lambda s: f"{s:.1f}"),
    })
    return {"table": t, "display": display, "best": top, "findings": findings, "ref_findings": ref_findings,
            "ref_table": ref_table, "act": activations, "architecture": describe_architecture(reference_cnn()),
            "best_rate": rate_label(top["lr"]), "act_findings": act_findings, "seeds": seeds_note(t),
            "dataset": DATASET_NAMES[dataset], "ref_dataset": DATASET_NAMES[LR_REFERENCE["dataset"]],
            "params": params, "n_params": int(t["params"].iloc[0]), "n_train": int(t["n_train"].iloc[0]),
            "n_eval": int(t["n_val"].iloc[0]), "n_test": int(t["n_test"].iloc[0])}


# ---------------------------------------------------------------------------------------------------- question 3

def question3(t: pd.DataFrame, examples: dict, params: dict) -> dict:
    beams = beam_sizes(t)
    variants = list(t["variant"])
    name = {v: VARIANT_NAMES.get(v, v) for v in variants}
    decodings = [("greedy", "greedy")] + [(f"beam{k}", f"beam {k}") for k in beams]

    # One row per model and measure, one column per decoding: stays narrow however many beams are run.
    rows = []
    for v in variants:
        r = _row(t, v)
        for label, fmt in (("WER (%)", lambda key: mean_std(r, f"test_wer_{key}")),
                           ("PER (%)", lambda key: mean_std(r, f"test_per_{key}")),
                           ("NED (%)", lambda key: mean_std(r, f"test_ned_{key}")),
                           ("decoding time (s)", lambda key: f"{r[f'test_seconds_{key}']:.1f}")):
            rows.append({"Model": name[v], "Measure": label, **{col: fmt(key) for key, col in decodings}})
    display = pd.DataFrame(rows)

    # One list per question: without attention (Q3.1.a), with attention (Q3.1.b), beam search (Q3.1.c).
    answers = {"no_attention": [], "attention": [], "beam": []}

    def test_errors(r: pd.Series) -> str:
        return (f"test error, greedy: WER {pct(r['test_wer_greedy'])}, PER {pct(r['test_per_greedy'])}, "
                f"NED {pct(r['test_ned_greedy'])}")

    for v in variants:
        r = _row(t, v)
        text = f"{name[v].capitalize()}: {test_errors(r)}"
        if int(r["epochs_run"]) > 1:
            change, d = r["last_epoch_val_wer_change"], change_test(r, "last_epoch_val_wer_change")
            falling = change < -STILL_IMPROVING and (d.beyond_noise or not d.testable)
            trend = "still falling" if falling else ("flat" if change >= -STILL_IMPROVING else "with no clear fall")
            text += (f"; validation WER {pct(r['first_val_wer'])} after epoch 1, {pct(r['val_wer'])} after epoch "
                     f"{r['epochs_run']:.0f}, {trend} at the end ({pp(change)} in the last epoch; {change_ci(d)})")
        answers["attention" if v == "attention" else "no_attention"].append(text + ".")
    if {"attention", "no_attention"} <= set(variants):
        a, b = _row(t, "attention"), _row(t, "no_attention")
        answers["attention"].append(
            "Attention against none, greedy test WER: " + compare(a, b, "test_wer_greedy", "with", "without")
            + "; PER: " + compare(a, b, "test_per_greedy", "with", "without") + ". Without attention the decoder "
            "must carry the whole word in one state vector; with it, each output phoneme looks up the letters it "
            "depends on (the alignment in the attention figure).")
    for v in variants if beams else []:
        r = _row(t, v)
        if 1 in beams:
            same = (r["test_wer_beam1"] == r["test_wer_greedy"]) and (r["test_per_beam1"] == r["test_per_greedy"])
            check = ("beam 1 reproduces greedy exactly" if same else
                     "beam 1 DIFFERS from greedy (it should not)")
        else:
            check = "beam 1 not run"
        widest = max(beams)
        # Ties at the precision shown: "lowest at beam 5 (26.40%)" beside a beam 10 of 26.40% read as a contradiction.
        shown = {k: pct(r[f"test_wer_beam{k}"]) for k in beams}
        top_k = min(beams, key=lambda k: (r[f"test_wer_beam{k}"], k))
        tied = [k for k in sorted(beams) if shown[k] == shown[top_k]]
        d = change_test(r, f"wer_change_beam{widest}")
        gain = contrast(f"beam {widest}", r[f"test_wer_beam{widest}"], "greedy", r["test_wer_greedy"], d,
                        test="paired t")
        lowest = (f"the lowest WER, {shown[top_k]}, is at beam{'s' if len(tied) > 1 else ''} {join(tied)}"
                  if r[f"test_wer_beam{top_k}"] < r["test_wer_greedy"] else "no beam size beats greedy")
        cost = r[f"test_seconds_beam{widest}"] / max(r["test_seconds_greedy"], 1e-9)
        answers["beam"].append(f"{name[v].capitalize()}: {check}; test WER {gain}; {lowest}; "
                               f"beam {widest} takes {cost:.1f}× the greedy decoding time.")

    ref_rows = []
    for ref in G2P_REFERENCE:
        ours = _row(t, ref["variant"]) if ref["variant"] in variants else None
        ref_rows.append({
            "Model": ref["model"],
            "Reference report: error rate (%)": f"{100 * ref['report_ned']:.2f}" if ref["report_ned"] else "\u2014",
            "Ours: NED (%)": f"{100 * ours['test_ned_greedy']:.2f}" if ours is not None else "\u2014",
            "Published CMUdict WER (%)": f"{100 * ref['wer']:.1f}",
            "Ours: WER (%)": f"{100 * ours['test_wer_greedy']:.2f}" if ours is not None else "\u2014"})
    ref_table = pd.DataFrame(ref_rows)
    ref_findings = []
    if "attention" in variants and "no_attention" in variants:
        rep = {r["variant"]: r["report_ned"] for r in G2P_REFERENCE if r["variant"]}
        ours_ned = {v: _row(t, v)["test_ned_greedy"] for v in ("attention", "no_attention")}
        ref_findings.append(
            f"The reference report's error rate ({pct(rep['no_attention'])} without, {pct(rep['attention'])} with "
            "attention) is the mean over test words of the edit distance divided by the reference length, on "
            "characters of a transliteration task that is not available here; NED is the same formula on CMUdict "
            f"phonemes ({pct(ours_ned['no_attention'])} and {pct(ours_ned['attention'])}). The tasks differ, so only "
            f"the relative effect of attention compares: it removes {1 - rep['attention'] / rep['no_attention']:.0%} "
            f"of the reference's error and {1 - ours_ned['attention'] / max(ours_ned['no_attention'], 1e-12):.0%} "
            "of ours.")
        pub = {r["variant"]: r["wer"] for r in G2P_REFERENCE if r["variant"]}
        gap = _row(t, "attention")["test_wer_greedy"] - _row(t, "no_attention")["test_wer_greedy"]
        pub_gap = pub["attention"] - pub["no_attention"]
        direction = ("the same direction" if gap * pub_gap > 0 else "no change here" if gap == 0
                     else "the opposite direction")
        ref_findings.append(
            f"Attention changes the greedy test WER by {pp(gap)} here and by {pp(pub_gap)} in the published "
            f"results ({direction}). Our split is "
            "different (by word hash, stress removed, any listed pronunciation accepted), so the levels are not "
            "directly comparable.")

    first = t.iloc[0]
    ex_variant = examples.get("attention_variant")
    by_variant = examples.get("by_variant", {})
    ex_rows = []
    base = by_variant.get(ex_variant) or (by_variant.get(variants[0]) if variants else []) or []
    for i, e in enumerate(base):
        row = {"Word": e["word"], "Reference(s)": " | ".join(e["references"])}
        for v in variants:
            other = by_variant.get(v) or []
            if i < len(other):
                row[f"Greedy, {name[v]}"] = other[i]["greedy"]
                row[f"Beam {max(beams)}, {name[v]}"] = other[i]["beams"].get(str(max(beams)), "")
        ex_rows.append(row)
    return {"table": t, "display": display, "answers": answers, "ref_table": ref_table,
            "ref_findings": ref_findings, "examples": pd.DataFrame(ex_rows), "beams": beams,
            "n_train_words": int(first["n_train_words"]), "n_train_pairs": int(first["n_train_pairs"]),
            "n_val_words": int(first["n_val_words"]), "n_test_words": int(first["n_test_words"]),
            "n_graphemes": int(first["n_graphemes"]), "n_phonemes": int(first["n_phonemes"]),
            "params": params, "n_params": {v: int(_row(t, v)["params"]) for v in variants}, "names": name,
            "seeds": seeds_note(t), "has_attention_figure": ex_variant is not None,
            "anneal_start": pct(params["anneal_start"], 0), "anneal_floor": pct(params["anneal_floor"], 0)}


def context(cfg: dict, results: Path) -> dict:
    results = Path(results)
    lr_params = dict(cfg["families"]["lr_study"].get("defaults", {}))
    g2p_params = dict(cfg["families"]["g2p"].get("defaults", {}))
    conv = _json(paths.analysis(results, "conv_matrix"))
    q1 = question1(conv)
    ctx = {
        "profile": cfg["profile"],
        "q1": q1,
        "q2": question2(_table(results, "lr_study"), _json(results / "figures" / "lr_study" / "activations.json"),
                        lr_params),
        "q3": question3(_table(results, "g2p"), _json(results / "figures" / "g2p" / "examples.json"), g2p_params),
        "raw": {f: _table(results, f) for f in ("lr_study", "g2p")},
        "runs": {f: run_index(cfg, results, f, Path(cfg["reports_dir"])) for f in ("lr_study", "g2p")},
        "plural": plural, "pct": pct,
    }
    ctx["why"] = why_convolutions(q1, ctx["q2"])
    return ctx
