"""Preparation recipes: fitted once on training data, then applied the same way everywhere.

:func:`fit_recipe` checks a recipe against the training data's columns, fits
its steps one after the other, writes the prepared training rows, and saves
the fitted recipe as a new version in the lake. :meth:`FittedRecipe.transform`
is the one function that applies it, at training, batch and serving time;
:func:`apply_recipe` streams a SOURCE through it in batches into a table.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from sagelab._version import __version__
from sagelab.errors import Conflict, InvalidInput, NotFound, SagelabError
from sagelab.lake import ARTIFACTS_BUCKET, Lake, parse_table_name
from sagelab.prep import _recipe_artifact as store
from sagelab.prep._recipe_frame import (
    KINDS,
    OTHER,
    Frame,
    as_table,
    from_arrow,
    iter_batches,
    output_type,
    to_arrow,
)
from sagelab.prep._recipe_params import RecipeError, show_columns
from sagelab.prep._recipe_spec import (
    RecipeSpec,
    check_name,
    parse_recipe,
    plan_recipe,
    source_kinds,
)
from sagelab.prep._recipe_step import ApplyContext, FitContext

if TYPE_CHECKING:
    from sagelab.lake import SqlEngine

__all__ = [
    "FittedRecipe",
    "RecipeColumn",
    "RecipeResult",
    "fit_recipe",
    "jsonl",
    "load_recipe",
    "recipe_versions",
    "require_lake",
]


@dataclass(frozen=True)
class RecipeColumn:
    """A column a recipe reads or writes.

    Attributes:
        name: the column's name.
        kind: ``number``, ``string``, ``datetime`` or ``other``.
        type: its Arrow type (as fitted, for inputs; as written, for outputs).
    """

    name: str
    kind: str
    type: pa.DataType

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "kind": self.kind, "type": str(self.type)}


@dataclass
class RecipeResult:
    """What one transform did.

    Attributes:
        table: the prepared rows.
        rows_in: rows given.
        row_index: for each output row, its position in the input (plus the rows of
            earlier batches); -1 for a row a resampling step made up.
        dropped: per step that removed rows: ``{"step": 3, "name": "validate", "rows": 2}``.
        rejects: one record per row that failed a validation rule (rule, column, value,
            reason and the row as given).
    """

    table: pa.Table
    rows_in: int
    row_index: np.ndarray
    dropped: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rows_out(self) -> int:
        return self.table.num_rows


class FittedRecipe:
    """A recipe fitted on training data: apply it with :meth:`transform`.

    Attributes:
        spec: the recipe, its steps fitted.
        name: its name.
        version: its version in the lake (None until saved there).
        uri: ``s3://artifacts/recipes/<name>/v<N>/`` once saved.
        inputs: the columns the data must have (the label aside).
        target: the label column, if any, and how it was read.
        outputs: the columns a transform writes, in order (the label among them).
        fit_summary: what the fit did: rows in and out, rows dropped per step,
            rejects and where they went, the output table.
    """

    def __init__(
        self,
        spec: RecipeSpec,
        *,
        name: str,
        inputs: list[RecipeColumn],
        target: RecipeColumn | None,
        outputs: list[RecipeColumn],
        fitted_at: str,
        fit_summary: dict[str, Any] | None = None,
        version: int | None = None,
    ) -> None:
        self.spec = spec
        self.name = name
        self.inputs = inputs
        self.target = target
        self.outputs = outputs
        self.fitted_at = fitted_at
        self.fit_summary: dict[str, Any] = dict(fit_summary or {})
        self.version = version

    def __repr__(self) -> str:
        return f"FittedRecipe({self.name!r}, version={self.version}, steps={len(self.spec.steps)})"

    @property
    def uri(self) -> str | None:
        if self.version is None:
            return None
        return f"s3://{ARTIFACTS_BUCKET}/{store.recipe_prefix(self.name, self.version)}"

    @property
    def input_columns(self) -> list[str]:
        return [c.name for c in self.inputs]

    @property
    def output_columns(self) -> list[str]:
        return [c.name for c in self.outputs]

    def output_schema(self, *, with_target: bool = True) -> pa.Schema:
        """The Arrow schema of a transform's output (without the label when it is absent)."""
        label = self.target.name if self.target else None
        return pa.schema(
            [pa.field(c.name, c.type) for c in self.outputs if with_target or c.name != label]
        )

    # -------------------------------------------------------------- applying
    def transform(self, data: Any) -> pa.Table:
        """Prepare data as the recipe was fitted: the one function used at training, batch
        and serving time.

        Args:
            data: a pyarrow Table or RecordBatch, a pandas DataFrame, a list of row
                mappings, or one row mapping. Columns the recipe was not fitted with are
                ignored; the label may be absent.

        Returns:
            The prepared rows, with :meth:`output_schema`. Rows removed by validation,
            de-duplication, dropping missing values or outliers are left out; use
            :meth:`transform_with_report` to learn which and why.

        Raises:
            InvalidInput: the data lacks a column the recipe was fitted with, or a
                column's values cannot be read as they were at fit time.
        """
        return self.transform_with_report(data).table

    def transform_with_report(self, data: Any) -> RecipeResult:
        """Like :meth:`transform`, with which rows were removed and rejected and why.

        Raises:
            InvalidInput: as for :meth:`transform`.
        """
        table = as_table(data)
        return self._run(table, ApplyContext(source=table))

    def transform_batches(
        self, batches: Iterable[pa.RecordBatch | pa.Table]
    ) -> Iterator[RecipeResult]:
        """Transform a stream of batches; a de-duplication step remembers rows across them,
        and row positions count from the first batch.

        Raises:
            InvalidInput: as for :meth:`transform`.
        """
        seen: dict[int, set[tuple[int, int]]] = {}
        offset = 0
        for table in iter_batches(batches):
            yield self._run(table, ApplyContext(source=table, offset=offset, seen=seen))
            offset += table.num_rows

    def check_columns(self, names: Iterable[str]) -> None:
        """Check that data with these columns can be transformed.

        Raises:
            InvalidInput: a column the recipe was fitted with is missing, naming it.
        """
        given = list(names)
        missing = [c.name for c in self.inputs if c.name not in given]
        if missing:
            raise InvalidInput(
                f"The data lacks the column(s) {', '.join(map(repr, missing))} that the recipe "
                f"{self.name!r}{_v(self.version)} was fitted with. Columns given: "
                f"{show_columns(given)}. Add them (a missing value may be null)."
            )

    def _run(self, table: pa.Table, ctx: ApplyContext) -> RecipeResult:
        self.check_columns(table.column_names)
        label = self.target.name if self.target and self.target.name in table.column_names else None
        wanted = {c.name: c.kind for c in self.inputs}
        types = {c.name: c.type for c in self.inputs if c.kind == OTHER}
        if label is not None and self.target is not None:
            wanted[label] = self.target.kind
        frame = from_arrow(table, wanted, types=types)
        ctx.target = label
        for step in self.spec.steps:
            if frame.n_rows == 0:
                break
            if step.training_only and not ctx.training:
                continue
            frame = step.transform(frame, ctx)
        return self._result(frame, table.num_rows, ctx, with_target=label is not None)

    def _result(
        self, frame: Frame, rows_in: int, ctx: ApplyContext, *, with_target: bool
    ) -> RecipeResult:
        schema = self.output_schema(with_target=with_target)
        if frame.n_rows == 0:
            out = schema.empty_table()
        else:
            kinds = {c.name: c.kind for c in self.outputs}
            out = to_arrow(frame, [(f.name, kinds[f.name], f.type) for f in schema])
        index = frame.index + ctx.offset if frame.n_rows else np.empty(0, dtype=np.int64)
        index = np.where(frame.index >= 0, index, -1) if frame.n_rows else index
        dropped = [
            {"step": i, "name": self.spec.steps[i - 1].name, "rows": n}
            for i, n in sorted(ctx.dropped.items())
        ]
        return RecipeResult(out, rows_in, index, dropped, ctx.rejects)

    # -------------------------------------------------------------- storage
    def files(self) -> dict[str, bytes]:
        """The files of this recipe as saved, without the metadata file."""
        estimators = {
            f"{step.index}/{key}": est
            for step in self.spec.steps
            for key, est in step.estimators.items()
        }
        files = {store.SPEC_FILE: (self.spec.text or "").encode("utf-8")}
        if estimators:
            files[store.ESTIMATORS_FILE] = store.dump_estimators(estimators)
        return files

    def metadata(self, files: dict[str, bytes]) -> bytes:
        """The metadata file for this recipe and its other ``files``."""
        meta = {
            "format_version": store.FORMAT_VERSION,
            "name": self.name,
            "version": self.version,
            "fitted_at": self.fitted_at,
            "spec": self.spec.as_dict(),
            "inputs": [c.as_dict() for c in self.inputs],
            "target": self.target.as_dict() if self.target else None,
            "outputs": [c.as_dict() for c in self.outputs],
            "schema": _schema_b64(self.inputs, self.target, self.outputs),
            "steps": [
                {
                    "index": s.index,
                    "step": s.name,
                    "state": s.get_state(),
                    "estimators": sorted(s.estimators),
                }
                for s in self.spec.steps
            ],
            "fit": self.fit_summary,
            "sha256": {name: store.sha256(data) for name, data in files.items()},
            "versions": _library_versions(),
        }
        return json.dumps(meta, indent=2, default=_json_default).encode("utf-8")

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the recipe into a local folder (a model's, so that the model carries it);
        :func:`load_recipe` reads it back.

        Raises:
            InvalidInput: an estimator cannot be saved safely.
        """
        files = self.files()
        files[store.METADATA_FILE] = self.metadata(files)
        return store.write_dir(directory, files)

    def describe(self) -> dict[str, Any]:
        """What a person wants to know: name, version, steps, columns in and out, the fit."""
        return {
            "name": self.name,
            "version": self.version,
            "uri": self.uri,
            "fitted_at": self.fitted_at,
            "target": self.target.name if self.target else None,
            "steps": [f"{s.index}. {s.name}" for s in self.spec.steps],
            "inputs": [c.as_dict() for c in self.inputs],
            "outputs": [c.as_dict() for c in self.outputs],
            "fit": self.fit_summary,
        }


# ------------------------------------------------------------------------------ fitting
def fit_recipe(
    spec_or_path: Any,
    source: str | pa.Table | Any,
    *,
    engine: SqlEngine,
    output: str | None = None,
    name: str | None = None,
    mode: str = "overwrite",
) -> FittedRecipe:
    """Fit a recipe on training data, write the prepared rows, and save a new version.

    Every step is checked against the data's columns before anything is fitted,
    and all problems are reported together. The training data is read into
    memory (steps like quantiles and imputers need all of it); rows that fail a
    validation rule go to ``s3://artifacts/recipes/<name>/v<N>/rejects/``.

    Args:
        spec_or_path: a YAML file path, YAML text, plain data, or a :class:`RecipeSpec`.
        source: a SOURCE the engine reads (``db.table``, a query, files) or a table.
        engine: the SQL engine over the catalog and lake.
        output: ``database.table`` for the prepared training rows (None: not written).
        name: the recipe's name (default: its ``name:``, else the file's name).
        mode: for ``output``: ``overwrite``, ``append`` or ``error``.

    Returns:
        The fitted recipe, saved as ``s3://artifacts/recipes/<name>/v<N>/``.

    Raises:
        RecipeError: the recipe is malformed or does not fit the data (one line per problem).
        InvalidInput: no rows, no lake, or a step cannot be fitted on these values.
        NotFound: the recipe file or the source does not exist.
        Conflict: ``output`` exists and ``mode`` is ``error``.
    """
    started = time.perf_counter()
    lake = require_lake(engine)
    spec = parse_recipe(spec_or_path, lake=lake)
    recipe_name = check_name(name or spec.name or "")
    if output is not None:
        database, table_name = parse_table_name(output)
        if mode not in ("overwrite", "append", "error"):
            raise InvalidInput(f"The mode {mode!r} is not one of overwrite, append, error.")
        if mode == "error" and engine.catalog.table_exists(database, table_name):
            raise Conflict(
                f"The table '{output}' already exists; pass mode='overwrite' or 'append', or "
                "choose another output."
            )
    table = _read_source(source, engine, spec)
    fitted, prepared, ctx = _fit(spec, table, recipe_name)
    if output is not None:
        reader = pa.RecordBatchReader.from_batches(prepared.schema, prepared.to_batches())
        engine.write_reader(reader, output, mode=mode, created_by="prep.fit")
    files = fitted.files()
    if ctx.rejects:
        files[store.REJECTS_FILE] = jsonl(ctx.rejects, fitted, None)
    version = store.write_lake(lake, recipe_name, files)
    fitted.version = version
    fitted.fit_summary.update(
        source=source if isinstance(source, str) else "(in memory)",
        output=output,
        error_location=(f"{fitted.uri}rejects/" if ctx.rejects else None),
        seconds=round(time.perf_counter() - started, 3),
    )
    store.publish_metadata(lake, recipe_name, version, fitted.metadata(files))
    return fitted


def require_lake(engine: SqlEngine) -> Lake:
    """The engine's lake.

    Raises:
        InvalidInput: the engine has none.
    """
    if engine.lake is None:
        raise InvalidInput("Recipes are saved in the lake, but the SQL engine has no lake.")
    return engine.lake


def _read_source(source: Any, engine: SqlEngine, spec: RecipeSpec) -> pa.Table:
    if not isinstance(source, str):
        table = as_table(source)
        _plan(spec, table.schema)
        return table
    with engine.reader(source) as reader:
        _plan(spec, reader.schema)  # before a row is read
        table = reader.read_all()
    return table


def _plan(spec: RecipeSpec, schema: pa.Schema) -> None:
    problems = plan_recipe(spec, source_kinds(spec, schema))
    if problems:
        raise RecipeError(problems)


def _fit(
    spec: RecipeSpec, table: pa.Table, name: str
) -> tuple[FittedRecipe, pa.Table, ApplyContext]:
    if table.num_rows == 0:
        raise InvalidInput(
            f"The training data has no rows; the recipe {name!r} must be fitted on data. "
            "Check the SOURCE (a WHERE that matches nothing? an empty file?)."
        )
    target = spec.target
    kinds = source_kinds(spec, table.schema)
    source_types = {f.name: f.type for f in table.schema}
    frame = from_arrow(
        table,
        kinds,
        types={n: t for n, t in source_types.items() if kinds[n] == OTHER},
    )
    fit_ctx = FitContext(seed=spec.seed, target=target)
    ctx = ApplyContext(training=True, target=target, source=table)
    reads: set[str] = set()
    for step in spec.steps:
        if frame.n_rows == 0:
            raise InvalidInput(
                f"No rows are left to fit {step.label}: the steps before it removed all "
                f"{table.num_rows} ({_dropped_text(ctx, spec)}). Loosen their rules."
            )
        step.resolve(frame, target)
        reads.update(step.reads(frame.names))
        step.fit(frame, fit_ctx)
        frame = step.transform(frame, ctx)
    outputs = [
        RecipeColumn(n, frame.kinds[n], output_type(frame.kinds[n], frame.types.get(n)))
        for n in frame.names
    ]
    kept = set(frame.names) | reads
    inputs = [
        RecipeColumn(f.name, kinds[f.name], f.type)
        for f in table.schema
        if f.name in kept and f.name != target
    ]
    target_col = RecipeColumn(target, kinds[target], source_types[target]) if target else None
    fitted = FittedRecipe(
        spec,
        name=name,
        inputs=inputs,
        target=target_col,
        outputs=outputs,
        fitted_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    result = fitted._result(frame, table.num_rows, ctx, with_target=target is not None)
    fitted.fit_summary = {
        "rows_in": table.num_rows,
        "rows_out": result.rows_out,
        "dropped": result.dropped,
        "rows_rejected": len(ctx.rejects),
        "resampled": [
            {
                "step": s.index,
                **{
                    k: s.state[k]
                    for k in ("rows_before", "rows_after", "classes_before", "classes_after")
                    if k in s.state
                },
            }
            for s in spec.steps
            if s.training_only
        ],
    }
    return fitted, result.table, ctx


def _dropped_text(ctx: ApplyContext, spec: RecipeSpec) -> str:
    return (
        ", ".join(f"{spec.steps[i - 1].label} removed {n}" for i, n in sorted(ctx.dropped.items()))
        or "none removed"
    )


# ------------------------------------------------------------------------------ loading
def recipe_versions(name: str, *, lake: Lake) -> list[int]:
    """The saved versions of a recipe, oldest first (empty when there are none).

    Raises:
        InvalidInput: the name is not a valid recipe name.
    """
    return store.versions(lake, check_name(name))


def load_recipe(
    uri_or_name: str | os.PathLike[str], version: int | None = None, *, lake: Lake | None = None
) -> FittedRecipe:
    """A fitted recipe: by name (the latest version, or ``version``), by its
    ``s3://artifacts/recipes/<name>/v<N>/`` URI, or from a local folder it was saved to.

    The metadata's SHA-256 of every file is checked before any is parsed, and the
    estimators are loaded by skops trusting only scikit-learn's and
    imbalanced-learn's types.

    Raises:
        NotFound: no such recipe, version or folder.
        InvalidInput: a bad name, a damaged or replaced file, an untrusted type.
    """
    target = os.fspath(uri_or_name)
    # A name has no slash; anything else that is not s3:// is a folder.
    if isinstance(uri_or_name, os.PathLike) or (
        not target.startswith("s3://") and ("/" in target or os.sep in target or target[:1] in ".~")
    ):
        if not Path(target).expanduser().is_dir():
            raise NotFound(f"There is no recipe folder at {target!r}.")
        files = store.read_dir(target)
        return _from_files(files, target)
    if lake is None:
        raise InvalidInput("Loading a recipe by name or s3:// URI needs the lake.")
    if target.startswith("s3://"):
        name, number = store.parse_recipe_uri(target)
        if version is not None and version != number:
            raise InvalidInput(
                f"{target!r} is version {number}, but version {version} was asked for."
            )
    else:
        name = check_name(target)
        number = version if version is not None else store.latest_version(lake, name)
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise InvalidInput(f"A recipe version is an integer >= 1; got {number!r}.")
    files = store.read_lake(lake, name, number)
    return _from_files(files, f"s3://{ARTIFACTS_BUCKET}/{store.recipe_prefix(name, number)}")


def _from_files(files: dict[str, bytes], where: str) -> FittedRecipe:
    meta = store.check_files(files, where)
    try:
        estimators = (
            store.load_estimators(files[store.ESTIMATORS_FILE], where)
            if store.ESTIMATORS_FILE in files
            else {}
        )
        spec = parse_recipe(meta["spec"])
        spec.text = files.get(store.SPEC_FILE, b"").decode("utf-8") or None
        states = {int(s["index"]): s for s in meta["steps"]}
        for step in spec.steps:
            state = states[step.index]
            if state["step"] != step.name:
                raise KeyError(f"step {step.index}")
            prefix = f"{step.index}/"
            mine = {k[len(prefix) :]: v for k, v in estimators.items() if k.startswith(prefix)}
            missing = [k for k in state.get("estimators", []) if k not in mine]
            if missing:
                raise KeyError(f"estimator {missing[0]} of step {step.index}")
            step.set_state(state["state"], mine)
        types = _types_from_b64(meta["schema"])
        inputs = [_column(c, types) for c in meta["inputs"]]
        outputs = [_column(c, types, output=True) for c in meta["outputs"]]
        target = _column(meta["target"], types) if meta.get("target") else None
        recipe = FittedRecipe(
            spec,
            name=check_name(meta["name"]),
            inputs=inputs,
            target=target,
            outputs=outputs,
            fitted_at=str(meta.get("fitted_at")),
            fit_summary=meta.get("fit") or {},
            version=meta.get("version"),
        )
    except SagelabError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"The recipe in {where} is damaged or was written by another tool ({exc}); fit it again."
        ) from None
    return recipe


def _column(
    data: dict[str, Any], types: dict[str, pa.DataType], *, output: bool = False
) -> RecipeColumn:
    kind = data["kind"]
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    key = ("out:" if output else "in:") + data["name"]
    return RecipeColumn(str(data["name"]), kind, types[key])


def _schema_b64(
    inputs: list[RecipeColumn], target: RecipeColumn | None, outputs: list[RecipeColumn]
) -> str:
    import base64

    fields = [pa.field("in:" + c.name, c.type) for c in [*inputs, *([target] if target else [])]]
    fields += [pa.field("out:" + c.name, c.type) for c in outputs]
    return base64.b64encode(pa.schema(fields).serialize().to_pybytes()).decode("ascii")


def _types_from_b64(text: str) -> dict[str, pa.DataType]:
    import base64

    schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))
    return {f.name: f.type for f in schema}


# ------------------------------------------------------------------------------ helpers
def jsonl(rejects: list[dict[str, Any]], recipe: FittedRecipe, run_id: str | None) -> bytes:
    """Reject records as JSON lines, each with the recipe, its version, the time and the run."""
    at = datetime.now(UTC).isoformat(timespec="seconds")
    lines = []
    for record in rejects:
        full = {**record, "recipe": recipe.name, "at": at}
        if recipe.version is not None:
            full["version"] = recipe.version
        if run_id is not None:
            full["run"] = run_id
        lines.append(json.dumps(full, ensure_ascii=False, default=_json_default))
    return ("\n".join(lines) + "\n").encode("utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _v(version: int | None) -> str:
    return f" v{version}" if version is not None else ""


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    found = {"sagelab": __version__, "numpy": np.__version__, "pyarrow": pa.__version__}
    for dist in ("scikit-learn", "skops", "imbalanced-learn"):
        try:
            found[dist] = dist_version(dist)
        except PackageNotFoundError:
            continue
    return found
