"""How commands show results: a Rich table for people, JSON with ``--json``, progress bars."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

__all__ = [
    "JSON_OPTION",
    "console",
    "err_console",
    "print_json",
    "print_records",
    "progress_bar",
]

console = Console()
err_console = Console(stderr=True)

JSON_OPTION = typer.Option(False, "--json", help="Print the result as JSON.")

#: Inputs smaller than this finish before a bar is worth drawing.
_PROGRESS_MIN_BYTES = 8 * 1024 * 1024


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        # Integral decimals (DuckDB's HUGEINT sums) read best as numbers.
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON to stdout (no Rich markup, so pipes get clean JSON)."""
    sys.stdout.write(json.dumps(data, indent=2, default=_default, ensure_ascii=False) + "\n")


def print_records(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    title: str | None = None,
) -> None:
    """Show rows as a table."""
    if not rows:
        console.print("[dim](no rows)[/dim]" if title is None else f"[dim]{title}: none[/dim]")
        return
    columns = list(columns or rows[0].keys())
    table = Table(title=title, show_lines=False, header_style="bold")
    for col in columns:
        table.add_column(str(col), overflow="fold")
    for row in rows:
        table.add_row(*[_cell(row.get(c)) for c in columns])
    console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "[dim]NULL[/dim]"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict | list):
        return json.dumps(value, default=_default, ensure_ascii=False)
    return str(value).replace("[", r"\[")


@contextmanager
def progress_bar(
    description: str,
    *,
    enabled: bool = True,
    min_total: int = _PROGRESS_MIN_BYTES,
    in_bytes: bool = True,
) -> Iterator[Callable[[int, int], None]]:
    """A callback ``(done, total)`` that draws a Rich bar on stderr once the work is large.

    Args:
        description: the bar's label.
        enabled: False for ``--json`` output.
        min_total: below this total no bar is drawn (small work finishes first).
        in_bytes: the totals are bytes (size and speed shown), else plain counts.
    """
    if not enabled or not err_console.is_terminal:
        yield lambda done, total: None
        return
    columns = (
        [DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()]
        if in_bytes
        else [TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn()]
    )
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        *columns,
        console=err_console,
        transient=True,
    )
    task = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if total < min_total:
            return
        if task is None:
            progress.start()
            task = progress.add_task(description, total=total)
        progress.update(task, completed=done, total=total)

    try:
        yield update
    finally:
        progress.stop()
