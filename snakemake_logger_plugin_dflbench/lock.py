"""One line for Snakemake's LockException: is another build running here, or did a killed one leave its lock?

Snakemake's own message cannot tell the two apart and ends in a paragraph; a person needs the command. A lock is
stale when no other Snakemake process works in this directory (Linux: /proc/PID/cwd, which Snakemake moves to its
--directory); then `--unlock` is safe. Elsewhere (no /proc) the line names both possibilities.
"""
from __future__ import annotations

import os
import shlex
from pathlib import Path


def other_snakemakes(workdir: Path) -> list[int] | None:
    """PIDs of other Snakemake processes whose working directory is `workdir`; None where /proc is unavailable."""
    proc = Path("/proc")
    if not (proc / "self" / "cwd").exists():
        return None
    mine = {os.getpid(), os.getppid()}
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if not any(b"snakemake" in a for a in argv[:3]):  # the interpreter, the script, `-m snakemake`
                continue
            if Path(os.readlink(entry / "cwd")).resolve() == workdir.resolve():
                found.append(int(entry.name))
        except OSError:
            continue  # exited meanwhile, or not ours to inspect
    return found


def unlock_command(argv: list[str]) -> str:
    """This very command with --unlock added: it selects the same Snakefile, directory and config."""
    args, skip = [], False
    for a in argv:  # without this console: the unlock's own output is Snakemake's one line
        if skip and not a.startswith("-"):
            continue
        skip = a == "--logger"
        if not skip and not a.startswith("--logger="):
            args.append(a)
    if args and Path(args[0]).is_absolute():
        try:
            args[0] = os.path.relpath(args[0])
        except ValueError:
            pass
    # After a `--` every word is a target, so --unlock must come before it.
    at = args.index("--") if "--" in args else len(args)
    return shlex.join(args[:at] + ["--unlock"] + args[at:])


def lock_message(argv: list[str], workdir: Path | None = None) -> str:
    workdir = Path(workdir or os.getcwd())
    others = other_snakemakes(workdir)
    via_make = " (or `make report UNLOCK=1`)" if os.environ.get("MAKELEVEL") else ""
    if others:
        return (f"Locked: another Snakemake (pid {', '.join(map(str, others))}) is building in {workdir}; "
                "wait for it to finish or stop it, then run this again.")
    if others is None:
        return (f"Locked: {workdir} is locked by another Snakemake or by a killed build; if none is running, "
                f"`{unlock_command(argv)}`{via_make} removes the lock, then run this again.")
    return (f"Stale lock: no other Snakemake is running in {workdir}, a killed build left its lock; "
            f"`{unlock_command(argv)}`{via_make} removes it, then run this again.")
