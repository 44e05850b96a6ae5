"""Context of the Deep Feature Learning report: tables, analyses and generated findings from results/."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .findings import best, compare, mean_std, pct, pp, seeds_note, spread_clause


def _table(results: Path, family: str) -> pd.DataFrame:
    return pd.read_csv(results / "tables" / f"{family}.csv")


def _json(results: Path, name: str) -> dict:
    return json.loads((results / "analysis" / f"{name}.json").read_text())


def _row(table: pd.DataFrame, variant: str) -> pd.Series:
    return table.loc[table["variant"] == variant].iloc[0]


def stacked(t: pd.DataFrame) -> dict:
    t = t.copy()
    t["arch"] = [v.removeprefix("sae").replace("_", "-") for v in t["variant"]]
    small, large = t.loc[t["params"].idxmin()], t.loc[t["params"].idxmax()]
    top = best(t, "acc_finetuned")
    n_few = int(t["n_labels_few"].iloc[0])
    findings = [
        f"Best architecture after fine-tuning: {top['arch']} at {pct(top['acc_finetuned'])}. "
        f"Largest vs smallest: " + compare(large, small, "acc_finetuned", large["arch"], small["arch"]) + ".",
        f"Fine-tuning lifts the frozen-encoder classifier from {pct(t['acc_frozen'].mean())} to "
        f"{pct(t['acc_finetuned'].mean())} on average over architectures "
        f"({pp(t['acc_finetuned'].mean() - t['acc_frozen'].mean())}).",
    ]
    def gain(r, prefix):
        a = pd.Series({"v": r[f"{prefix}acc_finetuned"], "v_std": r[f"{prefix}acc_finetuned_std"],
                       "n_seeds": r["n_seeds"]})
        b = pd.Series({"v": r[f"{prefix}acc_random"], "v_std": r[f"{prefix}acc_random_std"], "n_seeds": r["n_seeds"]})
        text = pp(a["v"] - b["v"])
        if int(r["n_seeds"]) > 1:
            text += " (" + spread_clause(a, b, "v").split(" (")[0].replace("the difference ", "") + ")"
        return text

    findings.append(
        f"Layer-wise pretraining vs random initialisation with the same supervised budget (fine-tuned minus random): "
        f"with all {int(t['n_labels'].iloc[0]):,} labels "
        + "; ".join(f"{r['arch']}: {gain(r, '')}" for _, r in t.iterrows())
        + f". With {n_few:,} labels "
        + "; ".join(f"{r['arch']}: {gain(r, 'few_')}" for _, r in t.iterrows()) + ".")
    return {"table": t, "findings": findings, "seeds": seeds_note(t), "n_few": n_few,
            "best": top}


def cnn(t: pd.DataFrame) -> dict:
    top = best(t, "test_acc")
    base = _row(t, "base") if "base" in set(t["variant"]) else t.iloc[0]
    rel = t[t["variant"] != base["variant"]].copy()
    rel["delta"] = rel["test_acc"] - base["test_acc"]
    helped = rel.sort_values("delta", ascending=False).head(3)
    hurt = rel.sort_values("delta").head(3)
    cheapest_good = t[t["test_acc"] >= top["test_acc"] - 0.002].sort_values("params").iloc[0]

    def line(r):
        return f"{r['variant']} ({r['change']}: {pp(r['delta'])})"
    findings = [
        f"Best: {top['variant']} ({top['change']}) at {pct(top['test_acc'])} with {int(top['params']):,} "
        f"parameters; the base network reaches {pct(base['test_acc'])}.",
        "Largest gains over base: " + "; ".join(line(r) for _, r in helped.iterrows()) + ".",
        "Largest losses: " + "; ".join(line(r) for _, r in hurt.iterrows()) + ".",
        f"Within 0.2 pp of the best, the smallest network is {cheapest_good['variant']} "
        f"({int(cheapest_good['params']):,} parameters, {int(cheapest_good['macs']):,} MACs per image).",
        f"Best vs base: " + compare(top, base, "test_acc", top["variant"], "base") + ".",
    ]
    return {"table": t, "findings": findings, "best": top, "seeds": seeds_note(t)}


def vit(t: pd.DataFrame) -> dict:
    t = t.copy()
    t["gap"] = t["train_acc"] - t["test_acc"]
    top = best(t, "test_acc")
    small, large = t.loc[t["params"].idxmin()], t.loc[t["params"].idxmax()]
    worst_gap = t.loc[t["gap"].idxmax()]
    findings = [
        f"Best: {top['variant']} at {pct(top['test_acc'])} ({int(top['params']):,} parameters).",
        f"Size: the largest model ({large['variant']}, {int(large['params']):,} parameters) vs the smallest "
        f"({small['variant']}, {int(small['params']):,}): "
        + compare(large, small, "test_acc", large["variant"], small["variant"]) + ".",
        f"Overfitting stays small: the largest train-test gap is {pp(worst_gap['gap'])} ({worst_gap['variant']}).",
    ]
    patch = t[t["variant"].str.startswith("patch")]
    if len(patch) and "small" in set(t["variant"]):
        ref = _row(t, "small")
        for _, r in patch.iterrows():
            findings.append(f"Patch size {r['change'].split()[-1]} instead of the default: "
                            + compare(r, ref, "test_acc", r["variant"], "small") + f"; "
                            f"{r['seconds_per_epoch'] / ref['seconds_per_epoch']:.1f}x the time per epoch.")
    return {"table": t, "findings": findings, "best": top, "seeds": seeds_note(t)}


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


def context(cfg: dict, results: Path) -> dict:
    conv = _json(results, "conv_arithmetic")
    att = _json(results, "attention")
    n_train = 60000 - cfg["val_size"] if not cfg.get("train_limit") else cfg["train_limit"]
    ctx = {
        "setup": {"n_train": n_train, "n_val": cfg.get("eval_limit") or cfg["val_size"],
                  "n_test": cfg.get("eval_limit") or 10000, "profile": cfg["profile"]},
        "sae": stacked(_table(results, "stacked")),
        "cnn": cnn(_table(results, "cnn")),
        "vit": vit(_table(results, "vit")),
        "ae": autoencoder(_table(results, "autoencoder")),
        "conv": conv,
        "att": att,
        "pct": pct, "pp": pp, "mean_std": mean_std, "plural": plural,
        "params": {f: family_params(cfg, f) for f in ("autoencoder", "stacked", "cnn", "vit")},
    }
    ctx["tables"] = display_tables(ctx, cfg)
    ctx["shape_fmt"] = lambda shape: " × ".join(str(d) for d in shape)
    ctx["row_sum_dev"] = max(abs(v - 1) for v in att["row_sums_A"])
    ctx["raw"] = {f: _table(results, f) for f in ("stacked", "cnn", "vit", "autoencoder")}
    return ctx


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _fmt_int(x) -> str:
    return f"{int(x):,}"


def display_tables(ctx: dict, cfg: dict) -> dict:
    """Formatted tables for the templates: strings, so the PDF shows exactly what the tests read back."""
    sae, cnn_t, vit_t, ae_t = ctx["sae"]["table"], ctx["cnn"]["table"], ctx["vit"]["table"], ctx["ae"]["table"]
    ms = mean_std
    out = {}
    out["sae"] = pd.DataFrame({
        "Hidden layers": sae["arch"], "Params": sae["params"].map(_fmt_int),
        "Frozen": [ms(r, "acc_frozen") for _, r in sae.iterrows()],
        "Fine-tuned": [ms(r, "acc_finetuned") for _, r in sae.iterrows()],
        "Random init": [ms(r, "acc_random") for _, r in sae.iterrows()],
        "Few: frozen": [ms(r, "few_acc_frozen") for _, r in sae.iterrows()],
        "Few: fine-tuned": [ms(r, "few_acc_finetuned") for _, r in sae.iterrows()],
        "Few: random": [ms(r, "few_acc_random") for _, r in sae.iterrows()],
    })
    out["cnn"] = pd.DataFrame({
        "Variant": cnn_t["variant"], "Change from base": cnn_t["change"],
        "Test acc. (%)": [ms(r, "test_acc") for _, r in cnn_t.iterrows()],
        "Params": cnn_t["params"].map(_fmt_int), "MACs/image": cnn_t["macs"].map(_fmt_int),
        "s/epoch": cnn_t["seconds_per_epoch"].map(lambda s: f"{s:.1f}"),
    })
    out["vit"] = pd.DataFrame({
        "Variant": vit_t["variant"], "Change": vit_t["change"], "Params": vit_t["params"].map(_fmt_int),
        "Train acc. (%)": [ms(r, "train_acc") for _, r in vit_t.iterrows()],
        "Test acc. (%)": [ms(r, "test_acc") for _, r in vit_t.iterrows()],
        "Gap (pp)": vit_t["gap"].map(lambda g: f"{100 * g:+.2f}"),
        "s/epoch": vit_t["seconds_per_epoch"].map(lambda s: f"{s:.1f}"),
    })
    out["ae"] = pd.DataFrame({
        "Variant": ae_t["variant"], "Code size": ae_t["encoding_dim"].map(_fmt_int), "Change": ae_t["change"],
        "AE test MSE": [mean_std(r, "test_mse", scale=1, digits=5) for _, r in ae_t.iterrows()],
        "PCA test MSE": ae_t["pca_test_mse"].map(lambda v: f"{v:.5f}"),
        "AE / PCA": ae_t["ratio"].map(lambda v: f"{v:.2f}"),
    })
    return out


def family_params(cfg: dict, family: str) -> dict:
    """The settings every variant of a family shares (after the profile), for the method notes."""
    return cfg["families"][family].get("defaults", {})
