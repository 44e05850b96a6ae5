"""Command line: run / fetch-data / analyze / aggregate / report / index / snapshot / diff / verify / bench / config.

User errors (bad config, missing data, a report over its page limit) print one line naming the fix and exit 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import config as cfglib


def _load_cfg(args) -> dict:
    if args.cfg:  # the Snakefile passes the (already validated) part of the configuration a job depends on
        from .workflow import from_slice
        return from_slice(args.cfg)
    return cfglib.load(args.profile, configfiles=args.configfile or ())


def cmd_run(args) -> None:
    from .run import execute
    cfg = _load_cfg(args)
    out = execute(args.family, args.variant, args.seed, cfg, threads=args.threads)
    print(out)


def cmd_fetch_data(args) -> None:
    from .data import fetch, images
    from .registry import datasets
    from .workflow import datasets_used
    cfg = _load_cfg(args)
    unknown = [d for d in args.datasets if d not in datasets()]
    if unknown:
        raise images.DataError(f"unknown dataset {unknown[0]!r}; choose from {', '.join(datasets())}")
    # Validated here, not by argparse `choices`: with nargs="*" Python 3.11 checks the empty default against the
    # choices and refuses a bare `fetch-data` (what `make data` runs).
    for name in args.datasets or datasets_used(cfg):
        fetch.fetch(name, Path(cfg["data_dir"]), log=lambda m: print(m, file=sys.stderr))
    if args.stamp:
        Path(args.stamp).parent.mkdir(parents=True, exist_ok=True)
        Path(args.stamp).write_text("verified\n")


def cmd_analyze(args) -> None:
    from .analysis.registry import run_analysis
    cfg = _load_cfg(args)
    print(run_analysis(args.name, Path(cfg["results_dir"])))


def cmd_aggregate(args) -> None:
    from .aggregate import aggregate_family
    cfg = _load_cfg(args)
    for fam in args.families or cfglib.families_of(cfg):
        print(aggregate_family(cfg, fam))


def cmd_report(args) -> None:
    from .report.build import build_report
    cfg = _load_cfg(args)
    print(build_report(cfg, args.assignment))


def cmd_index(args) -> None:
    from .report.index import write_index
    print(write_index(Path(_load_cfg(args)["reports_dir"])))


def cmd_config_show(args) -> None:
    """A run's resolved parameters and, for each, the layer of the configuration that set it."""
    import json
    cfg, sources = cfglib.load_with_sources(args.profile, configfiles=args.configfile or ())
    params, where = cfglib.run_params_with_sources(cfg, sources, args.family, args.variant)
    spec = cfg["families"][args.family]
    seeds_at = ("families", args.family, "seeds") if "seeds" in spec else ("seeds",)
    settings = {
        "seeds": (cfglib.seeds(cfg, args.family), cfglib.source_of(sources, seeds_at)),
        "threads": (spec.get("threads", 1), cfglib.source_of(sources, ("families", args.family, "threads"))),
        "device": (cfg["device"], cfglib.source_of(sources, ("device",))),
        "precision": (cfg.get("precision"), cfglib.source_of(sources, ("precision",))),
    }
    rows = [(k, params[k], where[k]) for k in sorted(params)]
    rows += [(k, value, src or "not set (built-in default)") for k, (value, src) in settings.items()]
    shown = [(k, json.dumps(v), src) for k, v, src in rows]
    kw = max(len(k) for k, _, _ in shown)
    vw = max(len(v) for _, v, _ in shown)
    print(f"{args.family}/{args.variant} under profile {cfg['profile']} "
          f"(chosen by {cfglib.source_of(sources, ('profile',))}); value, then where it was set")
    for i, (k, v, src) in enumerate(shown):
        if i == len(params):
            print("run settings")
        print(f"  {k:<{kw}}  {v:<{vw}}  {src}")


def cmd_bench(args) -> None:
    from .bench import main as bench_main
    bench_main(args)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--profile", choices=cfglib.PROFILES, default=None,
                        help="config profile (default: the `profile` key of config/config.yaml)")
    common.add_argument("--configfile", action="append", type=Path, help="extra YAML merged over config/config.yaml")
    common.add_argument("--cfg", help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", parents=[common], help="train one variant with one seed")
    r.add_argument("family")
    r.add_argument("variant")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--threads", type=int, default=None)
    r.set_defaults(fn=cmd_run)

    from .registry import datasets
    f = sub.add_parser("fetch-data", parents=[common],
                       help="fetch and verify datasets (default: every dataset the configuration uses)")
    f.add_argument("datasets", nargs="*", metavar="DATASET", help=", ".join(datasets()))
    f.add_argument("--stamp", help="write this file after verification (for Snakemake)")
    f.set_defaults(fn=cmd_fetch_data)

    a = sub.add_parser("analyze", parents=[common], help="run an analysis that needs no training")
    a.add_argument("name")
    a.set_defaults(fn=cmd_analyze)

    g = sub.add_parser("aggregate", parents=[common], help="tables and figures of families")
    g.add_argument("families", nargs="*")
    g.set_defaults(fn=cmd_aggregate)

    rep = sub.add_parser("report", parents=[common], help="render an assignment's report")
    rep.add_argument("assignment")
    rep.set_defaults(fn=cmd_report)

    ix = sub.add_parser("index", parents=[common], help="write reports/index.html from the reports' JSON summaries")
    ix.set_defaults(fn=cmd_index)

    c = sub.add_parser("config", help="inspect the resolved configuration")
    csub = c.add_subparsers(dest="config_command", required=True)
    show = csub.add_parser("show", parents=[common],
                           help="a run's parameters and where each value came from (family default, variant, "
                                "profile, user file, command line)")
    show.add_argument("family")
    show.add_argument("variant")
    show.set_defaults(fn=cmd_config_show)

    from .review.cli import add_commands as review_commands
    review_commands(sub, common)  # snapshot / diff / verify

    from .bench import add_arguments as bench_arguments
    b = sub.add_parser("bench", parents=[common], help="measure throughput, workflow and report times")
    bench_arguments(b).set_defaults(fn=cmd_bench)
    return p


def user_errors() -> tuple[type[Exception], ...]:
    """The errors a user fixes (one line, exit status 2). Imported only once something failed: importing the
    renderer and the review for every `run` cost each training run about half a second."""
    from .data.images import DataError
    from .report.fit import PageLimitError
    from .report.render import ReportError
    from .review import ReviewError
    from .train import DiskFullError
    return cfglib.ConfigError, DataError, DiskFullError, PageLimitError, ReportError, ReviewError


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        rc = args.fn(args)  # diff --fail-on and verify return 1 to fail a CI gate
    except Exception as exc:
        if not isinstance(exc, user_errors()):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return rc or 0


if __name__ == "__main__":
    sys.exit(main())
