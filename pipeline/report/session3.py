"""Context of the Deep Feature Learning report: tables, analyses and generated findings from results/."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import paths
from .findings import (chosen, compare, contrast, difference, gain, mean_std, noise_clause, pct, per_doubling,
                       plural, pp, seeds_note, trend_clause)
from .runs import run_index
from .tables import integer, read_json, read_table, row, seconds, spread


def _table(results: Path, family: str) -> pd.DataFrame:
    return read_table(results, family)


def _json(results: Path, name: str) -> dict:
    return read_json(paths.analysis(results, name))


def stacked(t: pd.DataFrame) -> dict:
    t = t.copy()
    t["arch"] = [v.removeprefix("sae").replace("_", "-") for v in t["variant"]]
    small, large = t.loc[t["params"].idxmin()], t.loc[t["params"].idxmax()]
    top = chosen(t, "val_acc_finetuned")
    n_all, n_few = int(t["n_labels"].iloc[0]), int(t["n_labels_few"].iloc[0])
    size = [
        f"Chosen on validation accuracy after fine-tuning: {top['arch']} ({int(top['params']):,} parameters), "
        f"test accuracy {pct(top['acc_finetuned'])}. Largest against smallest stack: "
        + compare(large, small, "acc_finetuned", large["arch"], small["arch"]) + ".",
    ]
    lift = t["acc_finetuned"] - t["acc_frozen"]
    lifts = [difference(r, r, "acc_finetuned", "acc_frozen") for _, r in t.iterrows()]
    # The architecture whose lift is least certain (lowest CI bound) stands for the test of all of them.
    weakest = min(range(len(lifts)), key=lambda i: lifts[i].low if lifts[i].testable else lifts[i].diff)
    tested = (f"{sum(d.beyond_noise and d.diff > 0 for d in lifts)} of {len(lifts)} beyond seed noise; least clear, "
              f"{t['arch'].iloc[weakest]}: {noise_clause(lifts[weakest])}" if lifts[weakest].testable
              else "single seed: no test")
    tuning = [
        f"Fine-tuning the whole stack lifts the frozen-encoder classifier by {pp(lift.min())} to {pp(lift.max())} "
        f"(from {pct(t['acc_frozen'].min())}–{pct(t['acc_frozen'].max())} to "
        f"{pct(t['acc_finetuned'].min())}–{pct(t['acc_finetuned'].max())}; {tested}), most for "
        f"{t.loc[lift.idxmax(), 'arch']}: codes learnt only to reconstruct their input are not the features a "
        "classifier needs until the labels reach every layer.",
    ]

    def verdicts(prefix: str) -> tuple[str, list[str], bool]:
        """(verdict, each architecture's difference with its test, whether any difference could be tested)."""
        parts, helped, hurt, tested = [], [], [], False
        for _, r in t.iterrows():
            d = difference(r, r, f"{prefix}acc_finetuned", f"{prefix}acc_random")
            parts.append(f"{r['arch']} {gain(r, r, f'{prefix}acc_finetuned', f'{prefix}acc_random')}")
            tested |= d.testable
            if d.beyond_noise:
                (helped if d.diff > 0 else hurt).append(r["arch"])
        if helped and not hurt:
            verdict = f"pretraining pays for {', '.join(helped)}"
        elif hurt and not helped:
            verdict = f"random initialisation is better for {', '.join(hurt)}"
        elif helped:
            verdict = f"pretraining pays for {', '.join(helped)} and costs for {', '.join(hurt)}"
        else:
            verdict = "no difference exceeds seed noise"
        return verdict, parts, tested

    v_all, all_parts, tested_all = verdicts("")
    v_few, few_parts, tested_few = verdicts("few_")
    if not (tested_all or tested_few):
        # Without a test a verdict would be a guess ("no difference exceeds seed noise" said so): the differences
        # alone, once each, and what would decide them.
        def plain(prefix: str) -> str:
            return ", ".join(f"{r['arch']} {pp(r[f'{prefix}acc_finetuned'] - r[f'{prefix}acc_random'])}"
                             for _, r in t.iterrows())
        pretraining = [
            f"Fine-tuned minus random init: with all {n_all:,} labels {plain('')}; with {n_few:,} labels "
            f"{plain('few_')}. One seed per variant cannot tell these from seed noise, so whether layer-wise "
            "pretraining pays is left open here; more seeds (the default profile's three) test it.",
        ]
    else:
        pretraining = [
            f"With all {n_all:,} labels {v_all} (fine-tuned minus random init: " + "; ".join(all_parts) + ").",
            f"With {n_few:,} labels {v_few} (" + "; ".join(few_parts) + ").",
            ("So layer-wise pretraining is a way to use unlabelled images: it helps where labels are scarce and "
             "the network is deep, and a modern optimiser with dropout makes it unnecessary once labels are "
             "plentiful." if "pays" in v_few and "pays" not in v_all else
             "Layer-wise pretraining therefore shows no consistent benefit here; the answer depends on the label "
             "budget and depth, and more seeds would sharpen it." if "pays" not in v_few else
             "Pretraining helps with few and with all labels here."),
        ]
    # One paragraph per question: the template places it beside its question id.
    return {"table": t, "size": " ".join(size), "tuning": " ".join(tuning), "pretraining": " ".join(pretraining),
            "seeds": seeds_note(t),
            "n_few": n_few, "best": top}


# A train-test accuracy gap below this (fraction) is not called overfitting.
SMALL_GAP = 0.01
# What each CNN variant key changes: one line of the table per dimension of the design space.
CNN_DIMENSIONS = {"kernel": "kernel size", "pool": "pooling", "batch_norm": "normalisation",
                  "dropout": "regularisation", "head": "classifier head"}
WHY = {
    "depth (conv layers)": "more layers see a wider receptive field and build features of features",
    "filters per layer": "more filters give each layer more distinct detectors, at a quadratic cost in parameters",
    "kernel size": "larger kernels see more context per layer but multiply the MACs; stacked 3×3 layers see as much",
    "pooling": "max pooling keeps the strongest response (small-shift invariance); a strided conv learns its own "
               "down-sampling",
    "normalisation": "batch norm keeps activations well scaled, so the one-cycle schedule can use larger steps",
    "regularisation": "dropout fights overfitting, which a 4-epoch MNIST run barely has",
    "classifier head": "the hidden fully connected layer holds most parameters; without it the conv features must "
                       "be linearly separable",
    "combination": "the combination stacks the changes that helped on their own",
}


def cnn_dimension(defaults: dict, own: dict) -> str:
    keys = [k for k in own if own[k] != defaults.get(k)]
    if not keys:
        return "base"
    if len(keys) > 1:
        return "combination"
    key = keys[0]
    if key == "channels":
        same = len(own["channels"]) == len(defaults.get("channels", []))
        return "filters per layer" if same else "depth (conv layers)"
    return CNN_DIMENSIONS.get(key, key)


def cnn(t: pd.DataFrame, fam: dict) -> dict:
    t = t.copy()
    defaults = fam.get("defaults", {})
    t["dimension"] = [cnn_dimension(defaults, fam["variants"].get(v) or {}) for v in t["variant"]]
    top = chosen(t)
    base = row(t, "base") if "base" in set(t["variant"]) else t.iloc[0]
    findings = [
        f"Chosen on validation accuracy: {top['variant']} ({top['change']}), test accuracy {pct(top['test_acc'])} "
        f"with {int(top['params']):,} parameters and {int(top['macs']):,} MACs per image; the base network reaches "
        f"{pct(base['test_acc'])} with {int(base['params']):,} parameters. {top['variant']} vs base: "
        + gain(top, base, "test_acc") + ".",
    ]
    order = list(dict.fromkeys(d for d in t["dimension"] if d != "base"))
    rows = []
    for dim in order:
        part = t[t["dimension"] == dim]
        delta = part["test_acc"] - base["test_acc"]
        b = part.loc[delta.idxmax()]
        cost = part["params"] / base["params"]
        macs = part["macs"] / base["macs"]
        secs = part["seconds_per_epoch"] / base["seconds_per_epoch"]
        rows.append({"dim": dim, "variants": ", ".join(part["variant"]), "lo": delta.min(), "hi": delta.max(),
                     "best": b, "worst": part.loc[delta.idxmin()], "cost": (cost.min(), cost.max()),
                     "macs": (macs.min(), macs.max()), "secs": (secs.min(), secs.max())})

    def span(lo_hi, fmt="{:.2g}×"):
        lo, hi = lo_hi
        return fmt.format(lo) if abs(hi - lo) < 1e-9 else f"{fmt.format(lo)}–{fmt.format(hi)}"

    dims = pd.DataFrame({
        "Dimension": [r["dim"] for r in rows],
        "Variants": [r["variants"] for r in rows],
        "Test acc. vs base (pp)": [f"{100 * r['lo']:+.2f}" if abs(r["hi"] - r["lo"]) < 1e-12
                                   else f"{100 * r['lo']:+.2f} to {100 * r['hi']:+.2f}" for r in rows],
        "Params × base": [span(r["cost"]) for r in rows],
        "MACs × base": [span(r["macs"]) for r in rows],
        "Time × base": [span(r["secs"]) for r in rows],
    })
    findings += dimension_findings(rows, base)
    cheap = t.sort_values("params").iloc[0]
    spans = (f"parameters span {int(t['params'].min()):,}–{int(t['params'].max()):,} "
             f"({t['params'].max() / t['params'].min():.0f}×), test accuracy "
             f"{pct(t['test_acc'].min())}–{pct(t['test_acc'].max())}")
    if t["params"].nunique() >= 3:
        # Over every variant, not only those that change size alone: whether parameters, however spent, buy
        # accuracy.
        tr = per_doubling(t, "params", "test_acc")
        spans += (f", {100 * tr.slope:+.2f} pp per doubling of the parameters (least squares on log₂ parameters; "
                  f"{trend_clause(tr)})")
    findings.append(f"Parameters against accuracy, over all {len(t)} variants: {spans}; the smallest network "
                    f"({cheap['variant']}) reaches {pct(cheap['test_acc'])}.")
    if int(t["n_seeds"].max()) < 2:
        findings.append("One seed per variant: differences of a few tenths of a point are not tested against seed "
                        "noise and may not repeat.")
    return {"table": t, "dims": dims, "findings": findings, "best": top, "base": base, "seeds": seeds_note(t)}


def vit(t: pd.DataFrame, fam: dict) -> dict:
    top = chosen(t)
    patch_default = fam.get("defaults", {}).get("patch_size")

    def patch_of(variant: str) -> int:
        return (fam["variants"].get(variant) or {}).get("patch_size", patch_default)

    sizes = t[[patch_of(v) == patch_default for v in t["variant"]]].sort_values("params")
    findings = [f"Chosen on validation accuracy: {top['variant']} ({int(top['params']):,} parameters), test accuracy "
                f"{pct(top['test_acc'])}."]
    if len(sizes) >= 3:
        tr = per_doubling(sizes, "params", "test_acc")
        slope = 100 * tr.slope
        steps = [(a, b) for (_, a), (_, b) in zip(sizes.iloc[:-1].iterrows(), sizes.iloc[1:].iterrows())]
        step_gain = [100 * (b["test_acc"] - a["test_acc"]) / max(np.log2(b["params"] / a["params"]), 1e-9)
                     for a, b in steps]
        # Levels off at the first size after which no further step gains 0.1 pp per doubling.
        flat = next((i for i in range(len(step_gain)) if all(g < 0.1 for g in step_gain[i:])), None)
        trend = (f"Size matters little beyond the smallest model: over {len(sizes)} sizes "
                 f"({int(sizes['params'].min()):,}–{int(sizes['params'].max()):,} parameters) test accuracy rises by "
                 f"{slope:+.2f} pp per doubling of the parameters (least squares on log₂ parameters; "
                 f"{trend_clause(tr)})")
        if abs(slope) >= 0.3 and (tr.beyond_noise or not tr.testable):
            trend = trend.replace("Size matters little beyond the smallest model", "Size matters")
        if flat is not None:
            trend += f", and levels off from {steps[flat][0]['variant']} on (no larger model gains 0.1 pp per doubling)"
        findings.append(trend + "; per step: " + ", ".join(
            f"{a['variant']}→{b['variant']} {gain(b, a, 'test_acc')}" for a, b in steps) + ".")
    findings.append(overfitting(t, sizes))
    patch = t[[patch_of(v) != patch_default for v in t["variant"]]]
    ref = row(t, "small") if "small" in set(t["variant"]) else None
    if len(patch) and ref is not None:
        # The multiply-adds are the cost a reader can carry to another machine; the seconds are this build's, and
        # small models' steps do not shrink with their products (optimizer, casts and per-op overheads stay).
        findings.append("Patch size, against small: " + "; ".join(
            f"{r['change']}: {gain(r, ref, 'test_acc')}; {int(r['tokens'])} tokens instead of "
            f"{int(ref['tokens'])}, {r['macs'] / ref['macs']:.2f}× the multiply-adds per image and "
            f"{r['seconds_per_epoch'] / ref['seconds_per_epoch']:.2f}× the time per epoch"
            for _, r in patch.iterrows()) + ".")
    return {"table": t, "findings": findings, "best": top, "seeds": seeds_note(t)}


def dimension_findings(rows: list[dict], base: pd.Series) -> list[str]:
    """What helped and what hurt, one clause per dimension of the design space: by Welch's test of its best (and
    worst) variant against base where seeds allow it, else by the sign of the difference alone."""
    def why(r):
        return f" ({WHY[r['dim']]})" if r["dim"] in WHY else ""

    def test(v):
        d = difference(v, base, "test_acc")
        return d, f"{v['variant']} {pp(d.diff)} [{100 * d.low:+.2f}, {100 * d.high:+.2f}]"

    tested = [(r, test(r["best"]), test(r["worst"])) for r in rows]
    if not any(d_best.testable for _, (d_best, _), _ in tested):
        helped = sorted((r for r in rows if r["hi"] > 0), key=lambda r: -r["hi"])
        hurt = sorted((r for r in rows if r["hi"] <= 0), key=lambda r: r["lo"])
        out = []
        if helped:
            out.append("Helped most: " + "; ".join(
                f"{r['dim']}: {r['best']['variant']} {pp(r['hi'])}{why(r)}" for r in helped[:3]) + ".")
        if hurt:
            out.append("No gain or a loss: " + "; ".join(
                f"{r['dim']}: {pp(r['lo'])} at worst{why(r)}" for r in hurt[:3]) + ".")
        return out
    helped, hurt, neither = [], [], []
    for r, (d_best, best), (d_worst, worst) in tested:
        if d_best.beyond_noise and d_best.diff > 0:
            helped.append((-d_best.diff, f"{r['dim']}: {best}{why(r)}"))
        elif d_worst.beyond_noise and d_worst.diff < 0:
            hurt.append((d_worst.diff, f"{r['dim']}: {worst}{why(r)}"))
        else:
            neither.append(f"{r['dim']}: {best}")
    n = min(int(base.get("n_seeds", 1)), min(int(r["best"].get("n_seeds", 1)) for r in rows))
    out = []
    if helped:
        out.append(f"Helped beyond seed noise (test accuracy against base; in brackets the 95% CI of Welch's t on "
                   f"{n} seeds): " + "; ".join(text for _, text in sorted(helped)) + ".")
    if hurt:
        out.append("Hurt beyond seed noise: " + "; ".join(text for _, text in sorted(hurt)) + ".")
    if neither:
        out.append(f"Not distinguishable from base with {n} seeds (best variant of each): " + "; ".join(neither)
                   + ".")
    return out


def overfitting(t: pd.DataFrame, sizes: pd.DataFrame) -> str:
    """The train-test gap (the table's per-seed `gap`): its range, and over the sizes its change per doubling of the
    parameters, tested against seed noise like the accuracy trend."""
    worst = t.loc[t["gap"].idxmax()]
    small = t["gap"].max() < SMALL_GAP
    text = (("Overfitting stays small at this budget" if small else "The larger train-test gaps show overfitting")
            + f": train minus test accuracy is {pp(t['gap'].min())} to {pp(t['gap'].max())} (largest for "
            f"{worst['variant']})")
    if len(sizes) < 3:
        return text + "."
    tr = per_doubling(sizes, "params", "gap")
    grows = tr.slope > 0 and (tr.beyond_noise or not tr.testable)
    text += (f"; over the {len(sizes)} sizes it {'grows' if grows else 'changes'} by {100 * tr.slope:+.2f} pp per "
             f"doubling of the parameters ({trend_clause(tr)})")
    if small and not grows:
        return text + ": with few epochs the larger models are under- rather than over-trained."
    return text + "."


def autoencoder(t: pd.DataFrame) -> dict:
    t = t.copy()
    t["ratio"] = t["test_mse"] / t["pca_test_mse"]
    beats = bool((t["ratio"] < 1).all())
    findings = [
        ("Every autoencoder beats PCA at its code size" if beats else
         "NOT every autoencoder beats PCA at its code size: " + ", ".join(t.loc[t["ratio"] >= 1, "variant"]))
        + f" (test MSE {t['ratio'].min():.2f}-{t['ratio'].max():.2f}x PCA's).",
    ]
    return {"table": t, "findings": findings, "beats_pca": beats, "seeds": seeds_note(t)}


def why_cnns(conv: dict, cnn_part: dict, sae_part: dict) -> str:
    """3.2-Q1.c backed by measurements: parameter sharing, equivariance, and accuracy per parameter."""
    base, mlp = cnn_part["base"], sae_part["best"]
    return " ".join([
        f"Weight sharing: {conv['param_counts']['conv']['layer']} has {conv['param_counts']['conv']['numel']:,} "
        f"parameters, a fully connected {conv['param_counts']['fc']['layer']} with the same output "
        f"{conv['param_counts']['fc']['numel']:,} ({conv['param_counts']['ratio_fc_over_conv']:,.0f}× more).",
        f"Translation equivariance, measured: shifting a digit by ({', '.join(map(str, conv['equivariance']['shift']))}) "
        f"px shifts the conv feature map exactly (max difference {conv['equivariance']['conv']['max_abs_diff']:.1e} "
        f"away from the borders); the fully connected output changes by up to "
        f"{conv['equivariance']['fc']['max_abs_diff']:.2f}.",
        "Accuracy per parameter, measured here: " + contrast(
            f"the base CNN ({int(base['params']):,} parameters)", float(base["test_acc"]),
            f"the best fully connected stack of section 1 ({int(mlp['params']):,})", float(mlp["acc_finetuned"]),
            difference(base, mlp, "test_acc", "acc_finetuned")) + ".",
    ])


def context(cfg: dict, results: Path) -> dict:
    conv = _json(results, "conv_arithmetic")
    att = _json(results, "attention")
    n_train = 60000 - cfg["val_size"] if not cfg.get("train_limit") else cfg["train_limit"]
    ctx = {
        "setup": {"n_train": n_train, "n_val": cfg.get("eval_limit") or cfg["val_size"],
                  "n_test": cfg.get("eval_limit") or 10000, "profile": cfg["profile"]},
        "sae": stacked(_table(results, "stacked")),
        "cnn": cnn(_table(results, "cnn"), cfg["families"]["cnn"]),
        "vit": vit(_table(results, "vit"), cfg["families"]["vit"]),
        "ae": autoencoder(_table(results, "autoencoder")),
        "conv": conv,
        "att": att,
        "pct": pct, "pp": pp, "mean_std": mean_std, "plural": plural,
        "params": {f: family_params(cfg, f) for f in ("autoencoder", "stacked", "cnn", "vit")},
    }
    ctx["why_cnns"] = why_cnns(conv, ctx["cnn"], ctx["sae"])
    ctx["tables"] = display_tables(ctx, cfg)
    ctx["shape_fmt"] = lambda shape: " × ".join(str(d) for d in shape)
    ctx["row_sum_dev"] = max(abs(v - 1) for v in att["row_sums_A"])
    ctx["raw"] = {f: _table(results, f) for f in ("stacked", "cnn", "vit", "autoencoder")}
    ctx["runs"] = {f: run_index(cfg, results, f, Path(cfg["reports_dir"])) for f in ctx["raw"]}
    return ctx


def display_tables(ctx: dict, cfg: dict) -> dict:
    """Formatted tables for the templates: strings, so the PDF shows exactly what the tests read back."""
    sae, cnn_t, vit_t, ae_t = ctx["sae"]["table"], ctx["cnn"]["table"], ctx["vit"]["table"], ctx["ae"]["table"]
    out = {}
    out["sae"] = pd.DataFrame({
        "Hidden layers": sae["arch"], "Params": sae["params"].map(integer),
        "Frozen": spread(sae, "acc_frozen"),
        "Fine-tuned": spread(sae, "acc_finetuned"),
        "Random init": spread(sae, "acc_random"),
        "Few: frozen": spread(sae, "few_acc_frozen"),
        "Few: fine-tuned": spread(sae, "few_acc_finetuned"),
        "Few: random": spread(sae, "few_acc_random"),
    })
    cnn_t = cnn_t.assign(_order=cnn_t["dimension"].map({d: i for i, d in enumerate(
        dict.fromkeys(["base", *cnn_t["dimension"]]))})).sort_values("_order", kind="stable")
    out["cnn"] = pd.DataFrame({
        "Dimension": cnn_t["dimension"].where(cnn_t["dimension"] != cnn_t["dimension"].shift(), ""),
        "Variant": cnn_t["variant"], "Change from base": cnn_t["change"],
        "Val. acc. (%)": spread(cnn_t, "val_acc"),
        "Test acc. (%)": spread(cnn_t, "test_acc"),
        "Params": cnn_t["params"].map(integer), "MACs/image": cnn_t["macs"].map(integer),
        "s/epoch": cnn_t["seconds_per_epoch"].map(seconds),
    })
    out["vit"] = pd.DataFrame({
        "Variant": vit_t["variant"], "Change": vit_t["change"], "Params": vit_t["params"].map(integer),
        "Val. acc. (%)": spread(vit_t, "val_acc"),
        "Train acc. (%)": spread(vit_t, "train_acc"),
        "Test acc. (%)": spread(vit_t, "test_acc"),
        "Gap (pp)": vit_t["gap"].map(lambda g: f"{100 * g:+.2f}"),
        "MACs/image": vit_t["macs"].map(integer),
        "s/epoch": vit_t["seconds_per_epoch"].map(seconds),
    })
    out["ae"] = pd.DataFrame({
        "Variant": ae_t["variant"], "Code size": ae_t["encoding_dim"].map(integer), "Change": ae_t["change"],
        "AE test MSE": spread(ae_t, "test_mse", scale=1, digits=5),
        "PCA test MSE": ae_t["pca_test_mse"].map(lambda v: f"{v:.5f}"),
        "AE / PCA": ae_t["ratio"].map(lambda v: f"{v:.2f}"),
    })
    return out


def family_params(cfg: dict, family: str) -> dict:
    """The settings every variant of a family shares (after the profile), for the method notes."""
    return cfg["families"][family].get("defaults", {})
