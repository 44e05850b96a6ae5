"""Review a rebuild: snapshot a finished build, diff two builds number by number, verify that runs reproduce.

- snapshot.py: a small copy of a build (tables, analyses, each run's metrics, run.json, predictions; no weights).
- build.py:    reads a snapshot or a results folder into one view, so diff and verify never care which it is.
- diff.py:     every table cell and analysis number, old vs new, with a verdict (Welch's t on the per-seed values).
- render.py:   reports/diff.html, diff.pdf and diff.json from a diff.
- verify.py:   reruns a sample of recorded runs into a scratch folder and checks they reproduce.
"""
from __future__ import annotations

# Bumped whenever the snapshot layout or manifest changes meaning; older snapshots are refused with one line.
FORMAT_VERSION = 1


class ReviewError(ValueError):
    """A one-line, user-facing problem with the builds given to snapshot/diff/verify (exit 2)."""
