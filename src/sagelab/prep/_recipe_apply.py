"""``apply_recipe``: a SOURCE streamed through a fitted recipe into a catalog table, in batches.

Memory stays bounded: the engine reads the SOURCE batch by batch, each batch
is transformed and handed to DuckDB, which writes the Parquet table as the
batches come. Rows that fail a validation rule are streamed to a local file
and published to ``s3://warehouse/_errors/<db>/<table>/<run>/rejects.jsonl``,
as ingestion does with the records it cannot read.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sagelab.errors import InvalidInput
from sagelab.lake import WAREHOUSE_BUCKET, parse_table_name
from sagelab.prep._recipe import FittedRecipe, jsonl, load_recipe, require_lake

if TYPE_CHECKING:
    from sagelab.lake import SqlEngine

__all__ = ["ApplyResult", "apply_recipe"]


@dataclass
class ApplyResult:
    """What :func:`apply_recipe` did.

    Attributes:
        recipe: ``name`` and ``version`` of the recipe applied.
        output: the table written.
        rows_in, rows_out: rows read and written.
        dropped: rows removed, per step.
        rows_rejected: rows that failed a validation rule.
        error_location: the lake prefix holding ``rejects.jsonl``, or None.
        seconds: how long it took.
    """

    recipe: str
    version: int | None
    output: str
    rows_in: int
    rows_out: int
    dropped: list[dict[str, Any]]
    rows_rejected: int
    error_location: str | None
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "version": self.version,
            "output": self.output,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "dropped": self.dropped,
            "rows_rejected": self.rows_rejected,
            "error_location": self.error_location,
            "seconds": round(self.seconds, 3),
        }


def apply_recipe(
    artifact: FittedRecipe | str,
    source: str,
    *,
    engine: SqlEngine,
    output: str,
    version: int | None = None,
    mode: str = "overwrite",
    batch_size: int = 65_536,
) -> ApplyResult:
    """Stream a SOURCE through a fitted recipe into a table, batch by batch (bounded memory).

    Training-only steps (resampling) do not run. Rows that fail a validation
    rule go to ``s3://warehouse/_errors/<db>/<table>/<run>/rejects.jsonl``.

    Args:
        artifact: a fitted recipe, or its name, ``s3://`` URI or local folder.
        source: a SOURCE the engine reads (``db.table``, a query, files).
        engine: the SQL engine over the catalog and lake.
        output: ``database.table`` to write.
        version: with a name: the version (default the latest).
        mode: ``overwrite``, ``append`` or ``error``.
        batch_size: rows per batch.

    Raises:
        InvalidInput: the data lacks a fitted column, or a value cannot be read as fitted.
        NotFound: no such recipe or source.
        Conflict: ``output`` exists and ``mode`` is ``error``.
    """
    started = time.perf_counter()
    lake = require_lake(engine)
    recipe = (
        artifact
        if isinstance(artifact, FittedRecipe)
        else load_recipe(artifact, version, lake=lake)
    )
    database, table_name = parse_table_name(output)
    if mode not in ("overwrite", "append", "error"):
        raise InvalidInput(f"The mode {mode!r} is not one of overwrite, append, error.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInput(f"The batch size must be an integer >= 1; got {batch_size!r}.")
    run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    counts = {"rows_in": 0, "rows_out": 0, "rejected": 0}
    dropped: dict[int, int] = {}
    failure: list[BaseException] = []
    with tempfile.TemporaryDirectory(prefix="sagelab-prep-") as staging:
        log_path = os.path.join(staging, "rejects.jsonl")
        with engine.reader(source, batch_size) as reader, open(log_path, "wb") as log:
            recipe.check_columns(reader.schema.names)
            with_target = recipe.target is not None and recipe.target.name in reader.schema.names
            schema = recipe.output_schema(with_target=with_target)

            def batches() -> Iterator[pa.RecordBatch]:
                try:
                    for result in recipe.transform_batches(reader):
                        counts["rows_in"] += result.rows_in
                        counts["rows_out"] += result.rows_out
                        for d in result.dropped:
                            dropped[d["step"]] = dropped.get(d["step"], 0) + d["rows"]
                        if result.rejects:
                            counts["rejected"] += len(result.rejects)
                            log.write(jsonl(result.rejects, recipe, run_id))
                        yield from result.table.to_batches()
                except BaseException as exc:  # DuckDB would hide it behind its own error
                    failure.append(exc)
                    raise

            stream = pa.RecordBatchReader.from_batches(schema, batches())
            try:
                engine.write_reader(stream, output, mode=mode, created_by="prep.apply")
            except Exception:
                if failure:
                    raise failure[0] from None
                raise
        error_location = None
        if counts["rejected"]:
            prefix = f"_errors/{database}/{table_name}/{run_id}/"
            lake.create_bucket(WAREHOUSE_BUCKET, exist_ok=True)
            with lake.write_path(WAREHOUSE_BUCKET, f"{prefix}rejects.jsonl") as target:
                shutil.move(log_path, target)
            error_location = lake.uri(WAREHOUSE_BUCKET, prefix)
    return ApplyResult(
        recipe=recipe.name,
        version=recipe.version,
        output=f"{database}.{table_name}",
        rows_in=counts["rows_in"],
        rows_out=counts["rows_out"],
        dropped=[
            {"step": i, "name": recipe.spec.steps[i - 1].name, "rows": n}
            for i, n in sorted(dropped.items())
        ],
        rows_rejected=counts["rejected"],
        error_location=error_location,
        seconds=time.perf_counter() - started,
    )
