"""CSV writer: ``<run folder>/run_logs/<category>.csv`` with ``Step`` plus one column per key.

A new key rewrites the file atomically with the new column; otherwise a row is appended.
An existing file is continued (resume) unless ``clear_past_data`` is set (``--force``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fledge.files import atomic_write_text
from fledge.stats.reporter import StatSummary, StatsWriter

STEP_COLUMN = "Step"


@dataclass
class _Table:
    columns: list[str] = field(default_factory=lambda: [STEP_COLUMN])
    rows: list[dict[str, str]] = field(default_factory=list)


def _check_category(category: str) -> None:
    if not category or category in (".", "..") or "/" in category or "\\" in category or "\0" in category:
        raise ValueError(f"Stats category {category!r} cannot be used as a file name.")


def _csv_text(columns: list[str], rows: list[dict[str, str]], *, header: bool = True) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, restval="", lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


class CSVWriter(StatsWriter):
    """Scalar per key (``StatSummary.scalar``) per summary step; missing values are empty."""

    def __init__(
        self,
        base_dir: Path,
        *,
        clear_past_data: bool = False,
        hidden_keys: frozenset[str] = frozenset({STEP_COLUMN}),
    ) -> None:
        self._folder = Path(base_dir) / "run_logs"
        self._clear_past_data = clear_past_data
        self._hidden_keys = frozenset(hidden_keys) | {STEP_COLUMN}
        self._tables: dict[str, _Table] = {}

    def path(self, category: str) -> Path:
        _check_category(category)
        return self._folder / f"{category}.csv"

    def _table(self, category: str) -> _Table:
        table = self._tables.get(category)
        if table is None:
            path = self.path(category)
            table = _Table()
            if not self._clear_past_data and path.is_file():
                with path.open(encoding="utf-8", newline="") as f:
                    reader = csv.DictReader(f)
                    if reader.fieldnames and reader.fieldnames[0] == STEP_COLUMN:
                        table.columns = list(reader.fieldnames)
                        table.rows = [{k: v for k, v in row.items() if k in table.columns} for row in reader]
            elif path.exists():
                path.unlink()
            self._tables[category] = table
        return table

    def write_stats(self, category: str, summaries: Mapping[str, StatSummary], step: int) -> None:
        row = {STEP_COLUMN: str(int(step))}
        for key, summary in summaries.items():
            if key not in self._hidden_keys and summary.count:
                row[key] = repr(summary.scalar)
        if len(row) == 1:
            return
        table = self._table(category)
        path = self.path(category)
        new_columns = [key for key in row if key not in table.columns]
        table.rows.append(row)
        if new_columns or not path.is_file():
            table.columns.extend(new_columns)
            self._folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, _csv_text(table.columns, table.rows))
        else:
            with path.open("a", encoding="utf-8", newline="") as f:
                f.write(_csv_text(table.columns, [row], header=False))
                f.flush()
