"""The `snapshot`, `diff` and `verify` subcommands (registered by pipeline/__main__.py).

Each handler returns an exit code: 1 for a failed gate (`diff --fail-on beyond-noise`, a run that does not
reproduce); bad input raises ReviewError, which the CLI prints as one line with exit 2.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def _cfg(args) -> dict:
    from ..__main__ import _load_cfg
    return _load_cfg(args)


def cmd_snapshot(args) -> int:
    from .snapshot import snapshots_dir, take
    cfg = _cfg(args)
    src = Path(args.source or cfg["results_dir"])
    print(take(src, args.name, snapshots_dir(cfg), profile=cfg.get("profile"), force=args.force))
    return 0


def cmd_diff(args) -> int:
    from . import render
    from .build import open_build
    from .diff import diff
    from .snapshot import snapshots_dir
    cfg = _cfg(args)
    where = snapshots_dir(cfg)
    old, new = open_build(args.old, where), open_build(args.new, where)
    result = diff(old, new, {f: s.get("assignment", "?") for f, s in cfg["families"].items()}
                  | {a: n for a, n in cfg.get("analyses", {}).items()})
    paths = render.write(result, Path(args.out or cfg["reports_dir"]), pdf=not args.no_pdf)
    print(render.console(result))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 1 if args.fail_on == "beyond-noise" and result.beyond_noise else 0


def cmd_verify(args) -> int:
    from .build import read
    from .verify import verify
    cfg = _cfg(args)
    recorded = read(Path(cfg["results_dir"]), str(cfg["results_dir"]), "results")
    checks = verify(recorded, cfg, args.sample, Path(args.scratch) if args.scratch else None)
    failed = [c for c in checks if not c.ok]
    print(f"verify: {len(checks) - len(failed)} of {len(checks)} runs reproduce"
          + (f"; FAILED: {', '.join(c.where for c in failed)}" if failed else ""))
    return 1 if failed else 0


def add_commands(sub, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser("snapshot", parents=[common], help="keep a small copy of a finished build to diff against")
    s.add_argument("name")
    s.add_argument("--source", help="results folder to copy (default: results_dir of the configuration)")
    s.add_argument("--force", action="store_true", help="replace an existing snapshot of that name")
    s.set_defaults(fn=cmd_snapshot)

    d = sub.add_parser("diff", parents=[common], help="what changed between two builds beyond seed noise")
    d.add_argument("old", help="snapshot name (results/snapshots/NAME) or folder (a snapshot or a results folder)")
    d.add_argument("new", help="same, for the newer build")
    d.add_argument("--fail-on", choices=["beyond-noise", "never"], default="never",
                   help="exit 1 when a number changed beyond noise (a CI gate)")
    d.add_argument("--out", help="folder for diff.html, diff.pdf and diff.json (default: reports_dir)")
    d.add_argument("--no-pdf", action="store_true", help="skip diff.pdf")
    d.set_defaults(fn=cmd_diff)

    v = sub.add_parser("verify", parents=[common], help="rerun a sample of recorded runs and check they reproduce")
    v.add_argument("--sample", default="per-family",
                   help="per-family (one run each, default), all, or a comma list of FAMILY[/VARIANT[/SEED]]")
    v.add_argument("--scratch", help="where reruns go (default: RESULTS/verify)")
    v.set_defaults(fn=cmd_verify)
