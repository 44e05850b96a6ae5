"""bench.json and the table `make bench` prints."""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path


def _fmt(x) -> str:
    if not isinstance(x, (int, float)) or not math.isfinite(x):
        return "-"
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def table(res: dict) -> str:
    m = res["machine"]
    lines = [f"dfl-bench {res['date']}  commit {res['git_commit']}  profile {res['profile']}"
             f"{'  (quick)' if res['quick'] else ''}",
             f"{m['cpu']}, {m['cores_available']} cores, {m['device']}; load average "
             f"{res['load_avg_start'][0]} -> {res['load_avg_end'][0]}"]
    tp = res.get("throughput", {})
    if "error" in tp or "skipped" in tp:
        lines.append(f"throughput: {tp.get('error') or tp.get('skipped')}")
    elif tp:
        lines.append("")
        first = next(iter(tp.values()))
        lines.append(f"training images/s, {first.get('threads', '?')} thread(s); ours: our data path and engine "
                     f"({first.get('precision')}, fused Adam, channels_last CNN)")
        lines.append("notebook: torchvision MNIST + ToTensor + DataLoader, fp32, torch.optim's default Adam; "
                     "same engine: that data path on our engine (the data path's share)")
        lines.append(f"{'':<34}{'ours':>10}{'notebook':>10}{'speed-up':>9}  {'target':<16}"
                     f"{'same engine':>12}{'ratio':>8}")
        for fam, row in tp.items():
            target = f">= {row['target_ratio']:g}x {'ok' if row['meets_target'] else 'MISSED'}" \
                if "target_ratio" in row else ""
            lines.append(f"{fam + ' ' + row['variant'] + ' (bs ' + str(row['batch_size']) + ')':<34}"
                         f"{_fmt(row['ours_images_per_s']):>10}"
                         f"{_fmt(row.get('as_written_images_per_s', float('nan'))):>10}"
                         f"{row.get('end_to_end_ratio', float('nan')):>8.2f}x  {target:<16}"
                         f"{_fmt(row['notebook_images_per_s']):>12}{row['ratio']:>7.2f}x")
        for row in res.get("data_path", {}).get("by_batch_size", []):
            lines.append(f"{'data path alone (bs ' + str(row['batch_size']) + ')':<34}"
                         f"{_fmt(row['ours_images_per_s']):>10}{_fmt(row['notebook_images_per_s']):>10}"
                         f"{row['ratio']:>7.2f}x")
    g = res.get("g2p", {})
    if "train_words_per_s" in g:
        lines.append(f"g2p {g['variant']} (bs {g['batch_size']}): train {_fmt(g['train_words_per_s'])} words/s "
                     f"bucketed, {_fmt(g['plain_train_words_per_s'])} plain ({g['bucketing_ratio']:.2f}x); "
                     f"batching alone {_fmt(g['batching_words_per_s'])} words/s vs naive loop "
                     f"{_fmt(g['naive_batching_words_per_s'])} ({g['batching_ratio']:.2f}x)")
    elif g:
        lines.append(f"g2p: {g.get('error') or g.get('skipped')}")
    lines += compute_table(res.get("compute", {}))
    lines += floor_table(res.get("floor", {}))
    lines.append("")

    def status(v: dict) -> str | None:
        if v.get("skipped"):
            return v["skipped"]
        if v.get("error"):  # the whole tail is in bench.json; show the line naming the cause
            lines_ = [ln.strip() for ln in v["error"].splitlines() if ln.strip()]
            causes = [ln for ln in lines_ if re.match(r"[\w.]*(Error|Exception)\b", ln)
                      and not ln.startswith("WorkflowError")]
            return "FAILED: " + ((causes or lines_ or ["?"])[-1])[:200]
        return None

    sw = res.get("smoke_workflow", {})
    lines.append("smoke workflow (2 cores): " + (status(sw) or f"{sw['seconds']:.0f} s, "
                                                   f"{sum(sw['jobs'].values())} jobs"))
    rep = res.get("report", {})
    if status(rep):
        lines.append(f"report / dry run: {status(rep)}")
    else:
        for where in ("results", "smoke"):
            part = rep.get(where, {})
            if status(part):
                lines.append(f"{where}: {status(part)}")
                continue
            for name, r in part.get("report", {}).items():
                lines.append(f"report {name} re-render ({where}): " + (status(r) or f"{r['seconds']:.1f} s"))
            d = part.get("dry_run", {})
            planned = sum(d.get("planned_jobs", {}).values())
            lines.append(f"snakemake -n ({where}): " + (status(d) or f"{d['seconds']:.1f} s, "
                                                        f"{planned or 'nothing'} to do"))
    inc = res.get("incremental", {})
    lines.append("one variant changed: " + (status(inc) or
                 f"{inc['change']} -> {inc['seconds']:.0f} s, ran {', '.join(inc['jobs_run'])}"
                 f" ({'only the expected jobs' if inc['only_expected'] else 'UNEXPECTED jobs'})"))
    mem = res.get("peak_memory", {})
    lines.append("peak RSS: " + (status(mem) or f"{mem['peak_rss_mib']:.0f} MiB ({mem['largest']}); "
                 + ", ".join(f"{r['run']} {r['peak_rss_mib']:.0f}" for r in mem["runs"])))
    th = res.get("threads", {})
    lines.append("threads: " + (status(th) or f"2 jobs x 1 thread {th['two_jobs_one_thread_seconds']:.1f} s vs "
                                f"1 job x 2 threads {th['one_job_two_threads_seconds']:.1f} s -> {th['faster']} "
                                f"faster ({th['speedup']:.2f}x)"))
    dw = res.get("default_workflow", {})
    lines.append("default workflow: " + (status(dw) or f"{dw['seconds'] / 60:.1f} min, "
                                             f"{sum(dw['jobs'].values())} jobs"))
    return "\n".join(lines)


def cpu_line(ceiling: dict) -> str:
    cpu = ceiling.get("cpu", {})
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in cpu.get("flags", {}).items()
                      if k in ("avx512_bf16", "amx_bf16", "amx_tile"))
    mm = ceiling.get("matmul_1024", {})
    speeds = ", ".join(f"{d} {_fmt(v.get('gflops'))}" for d, v in mm.items())
    return f"CPU {cpu.get('model', '?')} ({flags}); 1-thread 1024^3 matmul GFLOP/s: {speeds}"


def compute_table(comp: dict) -> list[str]:
    """Per family: FLOPs per step, step time, achieved GFLOP/s, pure-compute time and the step's multiple of it."""
    if not comp:
        return []
    if "error" in comp or "skipped" in comp:
        return [f"compute: {comp.get('error') or comp.get('skipped')}"]
    lines = ["", cpu_line(comp.get("ceiling", {})),
             "per training step as fit runs it (forward+backward FLOPs counted by FlopCounterMode); pure compute: "
             "the same step's matrix products alone, same shapes and dtypes",
             f"{'family':<34}{'prec':>5}{'MFLOP':>9}{'step ms':>9}{'GFLOP/s':>9}{'pure ms':>9}{'pure GF/s':>10}"
             f"{'step/pure':>10}"]
    for fam, r in comp.get("families", {}).items():
        name = f"{fam} {r.get('variant', '')} (bs {r.get('batch_size', '?')})"
        if "error" in r:
            lines.append(f"{name:<34}FAILED: {r['error'][:150]}")
            continue
        ratio = r.get("step_over_pure_compute")
        lines.append(f"{name:<34}{r['precision']:>5}{r['flops_per_step'] / 1e6:>9,.0f}{r['step_ms']:>9.2f}"
                     f"{r['gflops']:>9.1f}{r['pure_compute_ms']:>9.2f}{_fmt(r.get('pure_compute_gflops')):>10}"
                     f"{(f'{ratio:.1f}x' if ratio else '-'):>10}")
        shares = r.get("time_shares")
        if shares:
            rest = ", ".join(f"{op} {share:.0%}" for op, share in shares["top_other"])
            lines.append(f"{'':<4}profiled step: matrix products {shares['matrix_share']:.0%}; most of the rest: {rest}")
    return lines


def _duration(seconds) -> str:
    if not isinstance(seconds, (int, float)):
        return "-"
    return f"{seconds:.1f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def _range(values: list) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:,}" if lo == hi else f"{lo:,}-{hi:,}"


def floor_table(fl: dict) -> list[str]:
    """Per family: the profile's runs at pure compute against the job time its built runs took."""
    if not fl:
        return []
    if "error" in fl or "skipped" in fl:
        return [f"floor: {fl.get('error') or fl.get('skipped')}"]
    lines = ["", f"the profile's training at pure compute (seeds {', '.join(map(str, fl['seeds']))}): every step "
             "of every training stage at its matrix products' speed, nothing else",
             f"{'family':<14}{'runs':>5}{'steps/run':>15}{'TFLOP':>8}{'pure':>11}{'built':>11}{'built/pure':>12}"]
    for fam, f in fl["families"].items():
        errors = [f"{v}: {r['error'][:120]}" for v, r in f["variants"].items() if "error" in r]
        if errors:
            lines.append(f"{fam:<14}FAILED: {errors[0]}")
            continue
        steps = _range([r["steps"] for r in f["variants"].values()])
        pure, built = f["pure_seconds"], f["measured_seconds"]
        lines.append(f"{fam:<14}{f['runs']:>5}{steps:>15}{f['flops'] / 1e12:>8.1f}{_duration(pure):>11}"
                     f"{_duration(built):>11}{(f'{built / pure:.2f}x' if built and pure else '-'):>12}")
    total, built = fl.get("pure_seconds"), fl.get("measured_seconds")
    if total is not None:
        lines.append(f"{'all':<14}{sum(f['runs'] for f in fl['families'].values()):>5}{'':>15}{'':>8}"
                     f"{_duration(total):>11}{_duration(built):>11}{(f'{built / total:.2f}x' if built else '-'):>12}")
        lines.append(f"wall time at pure compute, {fl['parallel_runs']} run(s) at once: at least "
                     f"{_duration(fl['wall_floor_seconds'])}"
                     + (f"; built runs from commit {', '.join(fl['measured_commits'])}"
                        if fl.get("measured_commits") else "; no built runs of this profile in the results folder"))
    return lines


def write(res: dict, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(res, indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)
    return path

