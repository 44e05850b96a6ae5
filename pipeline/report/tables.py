"""Reading results/ for a report, and the cell formats every report's tables share.

Cells are strings: the PDF then shows exactly what the tests read back, and every report writes a number the same way.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .findings import mean_std


def read_table(results: Path, family: str) -> pd.DataFrame:
    return pd.read_csv(Path(results) / "tables" / f"{family}.csv")


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def row(table: pd.DataFrame, variant: str) -> pd.Series:
    return table.loc[table["variant"] == variant].iloc[0]


def integer(x) -> str:
    return f"{int(x):,}"


def seconds(x) -> str:
    return f"{float(x):.1f}"


def spread(table: pd.DataFrame, col: str, **kw) -> list[str]:
    """Mean ± std over seeds per row (percent for accuracies and error rates, see findings.mean_std)."""
    return [mean_std(r, col, **kw) for _, r in table.iterrows()]


# How a column of an aggregated table reads in a report, by name: label and cell format. A declared table
# (assignment.yaml `tables:`) may show any of these; findings.METRICS names the same columns in sentences.
COLUMNS = {
    "family": ("Family", str),
    "variant": ("Variant", str),
    "change": ("Change", str),
    "params": ("Params", integer),
    "macs": ("MACs/image", integer),
    "seconds_per_epoch": ("s/epoch", seconds),
    "wall_seconds": ("Wall time (s)", seconds),
}
PERCENT = {"val_acc": "Val. acc. (%)", "test_acc": "Test acc. (%)", "train_acc": "Train acc. (%)"}


def column_label(col: str) -> str:
    if col in COLUMNS:
        return COLUMNS[col][0]
    return PERCENT.get(col, col)


def display(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """`columns` of an aggregated table (several families' rows may be stacked, with a `family` column), formatted."""
    out = {}
    for col in columns:
        if col in PERCENT:
            out[column_label(col)] = spread(table, col)
        else:
            fmt = COLUMNS.get(col, (col, str))[1]
            out[column_label(col)] = [fmt(v) for v in table[col]]
    return pd.DataFrame(out)


TABLE_KEYS = {"id", "tables", "columns", "sort", "caption"}


def check_declared(entries, families: list[str], where: str) -> list[dict]:
    """assignment.yaml `tables:` entries: {id, tables: [FAMILY, ...], columns: [...], sort, caption}."""
    from .render import ReportError
    for i, e in enumerate(entries or []):
        name = e.get("id", "no id") if isinstance(e, dict) else e
        ok = isinstance(e, dict) and isinstance(e.get("id"), str) and e.get("tables") and e.get("columns")
        unknown = sorted(set(e) - TABLE_KEYS) if isinstance(e, dict) else []
        missing = [t for t in (e.get("tables") or []) if t not in families] if isinstance(e, dict) else []
        if not ok or unknown or missing:
            raise ReportError(f"{where}: tables[{i}] ({name}): needs id, tables (of {', '.join(families)}) and "
                              "columns" + (f"; unknown key(s) {', '.join(unknown)}" if unknown else "")
                              + (f"; not a family here: {', '.join(missing)}" if missing else ""))
    return list(entries or [])


def declared(entry: dict, tables: dict[str, pd.DataFrame], where: str) -> pd.DataFrame:
    """One declared table: the rows of its families stacked (with a `family` column), sorted, formatted."""
    from .render import ReportError
    rows = pd.concat([tables[f].assign(family=f) for f in entry["tables"]], ignore_index=True)
    absent = [c for c in entry["columns"] + [entry.get("sort") or "variant"] if c not in rows.columns]
    if absent:
        raise ReportError(f"{where}: tables ({entry['id']}): no column {', '.join(absent)} in "
                          f"{', '.join('results/tables/' + f + '.csv' for f in entry['tables'])}; fix columns or sort")
    if entry.get("sort"):
        rows = rows.sort_values(entry["sort"], kind="stable")
    return display(rows, entry["columns"])
