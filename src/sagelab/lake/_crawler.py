"""The crawler (the Glue crawler's role): walk a location, infer tables, keep the catalog current.

How a location becomes tables:

* Hidden and underscore-prefixed files and folders (``_SUCCESS``, ``_errors/``,
  ``.sagelab-tmp-*``) and checksum files (``*.crc``) are ignored, as by Glue
  and Hive.
* Datasets: the location itself is one dataset when it directly holds files or
  holds only ``key=value`` folders; otherwise each direct sub-folder is one
  dataset, and its table is named after the folder (lowercased, other
  characters than ``[a-z0-9_]`` turned into ``_``, after ``table_prefix``).
  When that name is taken by a table at another location (or by another
  dataset of the same crawl), a hash of the location is appended, as Glue does.
* Partitions: ``key=value`` folders directly under a dataset (nested in a
  consistent order) become partition keys, ``bigint`` when every value is an
  integer, else ``string``; each distinct folder path is a partition. The
  layout held by most files wins; files in another layout are skipped with the
  reason. A partition key wins over a data column of the same name (noted).
* One dataset, one table: files of another format (or CSV dialect) than most
  of the dataset's files, and files whose columns cannot be merged with the
  others' (see :func:`~sagelab.lake._schema.unify_types`), are skipped with the
  reason rather than split into tables of their own, because a table reads
  every file under its location and a second table there would read them too.
  A column missing from some files is nullable. CSV columns are matched by
  position (that is how CSV is read), JSON and Parquet columns by name. Plain
  and gzip files mix; the table says ``gzip`` when all its files are.
* Re-crawl: the inferred table is compared with the catalog's. Policy
  ``update`` writes it (a schema change makes a new version; a removed column
  leaves the current version, the history keeps it); policy ``log`` only
  reports the changes. New partitions are added under both policies, like
  Glue's "add new partitions only" option, unless the partition keys
  themselves changed, which only ``update`` applies (it then re-registers the
  partitions). Partitions whose folders are gone are reported, never deleted.
* Skipped files stay where they are, and a reader of the table's location may
  still trip on them: the report says which, so they can be moved out (or into
  an ``_``-prefixed folder, which every reader ignores).

Files are inspected on a small thread pool, since on a remote store each head
read is a round trip.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sagelab.errors import InvalidInput, NotFound
from sagelab.lake._catalog import Catalog, TableInfo, partition_path, validate_name
from sagelab.lake._infer import (
    DataFile,
    FileSchema,
    SkipReason,
    TablePlan,
    Unusable,
    find_datasets,
    inspect_file,
    plan_table,
)
from sagelab.lake._locations import Location, resolve_location
from sagelab.lake._schema import SchemaDiff, diff_columns

if TYPE_CHECKING:
    from sagelab.lake._objects import Lake

__all__ = ["CrawlReport", "SkippedFile", "TableCrawl", "crawl"]

SchemaChangePolicy = Literal["update", "log"]
TableStatus = Literal["created", "updated", "unchanged", "logged"]

#: The ``created_by`` of the tables and versions a crawl writes.
CREATED_BY = "crawler"
_WORKERS = 8


# --------------------------------------------------------------------------- report
@dataclass(frozen=True)
class SkippedFile:
    """A file the crawl did not put in any table.

    Attributes:
        path: the file's URI, in the same form as the crawled location.
        reason: ``unreadable``, ``unknown_format``, ``empty`` or ``incompatible``.
        detail: what was wrong, for a person.
    """

    path: str
    reason: SkipReason
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "reason": self.reason, "detail": self.detail}


@dataclass
class TableCrawl:
    """What the crawl did to one table.

    Attributes:
        name: the table's name (in the crawl's database).
        location: the dataset's root URI.
        status: ``created``, ``updated`` (its definition changed), ``unchanged``, or
            ``logged`` (changes found and reported, table left alone: policy ``log``).
        classification: ``csv``, ``json`` or ``parquet``.
        version_id: the table's version after the crawl.
        files, bytes: the data files the table was inferred from.
        partitions: how many partitions its files are in.
        schema: columns added, removed and changed, against the catalog's table.
        properties: other changed properties, as ``{name: {"from": ..., "to": ...}}``.
        partitions_added: ``k=v/...`` paths of partitions new to the catalog.
        partitions_missing: cataloged partitions with no files any more (kept).
        notes: anything else the user should know.
    """

    name: str
    location: str
    status: TableStatus
    classification: str
    version_id: int
    files: int
    bytes: int
    partitions: int
    schema: SchemaDiff = field(default_factory=SchemaDiff)
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    partitions_added: list[str] = field(default_factory=list)
    partitions_missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "location": self.location,
            "status": self.status,
            "classification": self.classification,
            "version_id": self.version_id,
            "files": self.files,
            "bytes": self.bytes,
            "partitions": self.partitions,
            "changes": {
                **self.schema.as_dict(),
                "properties": self.properties,
                "partitions_added": list(self.partitions_added),
                "partitions_missing": list(self.partitions_missing),
            },
            "notes": list(self.notes),
        }


@dataclass
class CrawlReport:
    """The outcome of one crawl.

    Attributes:
        location: the crawled location, as given.
        database: the catalog database the tables are in.
        schema_change_policy: ``update`` or ``log``.
        tables: one entry per table, in name order.
        skipped: files left out of every table, with the reason.
        files, bytes: every file looked at (hidden and ``_`` files excluded).
    """

    location: str
    database: str
    schema_change_policy: SchemaChangePolicy
    tables: list[TableCrawl] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    files: int = 0
    bytes: int = 0

    def _named(self, status: TableStatus) -> list[str]:
        return [t.name for t in self.tables if t.status == status]

    @property
    def created(self) -> list[str]:
        return self._named("created")

    @property
    def updated(self) -> list[str]:
        return self._named("updated")

    @property
    def unchanged(self) -> list[str]:
        return self._named("unchanged")

    @property
    def logged(self) -> list[str]:
        return self._named("logged")

    def table(self, name: str) -> TableCrawl:
        """The entry of one table.

        Raises:
            NotFound: the crawl made no such table.
        """
        for t in self.tables:
            if t.name == name:
                return t
        known = ", ".join(t.name for t in self.tables) or "none"
        raise NotFound(f"The crawl of {self.location!r} has no table {name!r}. Tables: {known}.")

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "location": self.location,
            "database": self.database,
            "schema_change_policy": self.schema_change_policy,
            "tables_created": self.created,
            "tables_updated": self.updated,
            "tables_unchanged": self.unchanged,
            "tables_logged": self.logged,
            "tables": [t.as_dict() for t in self.tables],
            "skipped": [s.as_dict() for s in self.skipped],
            "totals": {
                "files": self.files,
                "bytes": self.bytes,
                "files_skipped": len(self.skipped),
                "tables": len(self.tables),
                "partitions_added": sum(len(t.partitions_added) for t in self.tables),
            },
        }


# --------------------------------------------------------------------------- the crawl
def crawl(
    location: str,
    database: str,
    *,
    catalog: Catalog,
    lake: Lake | None = None,
    table_prefix: str = "",
    schema_change_policy: SchemaChangePolicy = "update",
    progress: Callable[[int, int], None] | None = None,
) -> CrawlReport:
    """Crawl ``location`` and create or update one catalog table per dataset found.

    Args:
        location: ``s3://bucket/prefix`` in the lake, a local path, or an fsspec URL.
        database: the catalog database for the tables (created if missing).
        catalog: the catalog to write to.
        lake: the lake that resolves ``s3://`` locations.
        table_prefix: put before every table name (lowercase letters, digits, ``_``).
        schema_change_policy: what to do with a table that exists: ``update`` writes
            its changes (a schema change is a new version); ``log`` only reports them.
            New tables and new partitions are added under either policy.
        progress: called as ``progress(done, total)`` after each file is inspected,
            from the calling thread.

    Returns:
        What was created, updated and skipped, and why.

    Raises:
        InvalidInput: a bad database name, prefix or policy; an ``s3://`` location
            without a lake; the location is a file or holds no data files.
        NotFound: the location does not exist.
    """
    validate_name(database, "database")
    if schema_change_policy not in ("update", "log"):
        raise InvalidInput(
            f"The schema change policy must be 'update' or 'log'. Got {schema_change_policy!r}."
        )
    if not re.fullmatch(r"[a-z0-9_]*", table_prefix):
        raise InvalidInput(
            f"The table prefix {table_prefix!r} may hold only lowercase letters, digits and "
            "underscores (e.g. 'raw_')."
        )
    loc = resolve_location(location, lake)
    fs = loc.fs
    root = fs._strip_protocol(loc.path).rstrip("/") or "/"
    if not fs.exists(root):
        raise NotFound(f"The location {location!r} does not exist. Check the path or bucket.")
    if fs.isfile(root):
        raise InvalidInput(
            f"The location {location!r} is a file; crawl the folder that holds it, so the "
            "table can read every file of its dataset."
        )
    files = _list_files(fs, root)
    if not files:
        raise InvalidInput(
            f"There are no data files under {location!r} (hidden and '_'-prefixed files are "
            "ignored). Put CSV, JSON lines or Parquet files there and crawl again."
        )
    report = CrawlReport(
        location=location,
        database=database,
        schema_change_policy=schema_change_policy,
        files=len(files),
        bytes=sum(f.size for f in files),
    )
    root_uri = _root_uri(loc, root)
    schemas = _inspect_all(fs, files, root_uri, report, progress)
    used_names: set[str] = set()
    for dataset in find_datasets(files, _root_name(loc, root)):
        dataset_uri = _join(root_uri, dataset.rel)

        def skip(f: DataFile, reason: SkipReason, detail: str, base: str = dataset_uri) -> None:
            report.skipped.append(SkippedFile(_join(base, f.rel), reason, detail))

        plan = plan_table(dataset, schemas, skip)
        if plan is None:
            continue
        location_uri = dataset_uri + "/"
        name = _table_name(catalog, database, table_prefix, dataset.name, location_uri, used_names)
        used_names.add(name)
        report.tables.append(
            _apply(catalog, database, name, location_uri, plan, schema_change_policy)
        )
    report.tables.sort(key=lambda t: t.name)
    report.skipped.sort(key=lambda s: s.path)
    return report


def _list_files(fs: Any, root: str) -> list[DataFile]:
    found = fs.find(root, detail=True)
    files = []
    for path, info in found.items():
        if info.get("type") == "directory":
            continue
        rel = path[len(root) :].lstrip("/") if path.startswith(root) else posixpath.basename(path)
        if any(_ignored(part) for part in rel.split("/")):
            continue
        files.append(DataFile(rel, path, int(info.get("size") or 0)))
    return sorted(files, key=lambda f: f.rel)


def _ignored(name: str) -> bool:
    # Hadoop, Spark and Glue write markers and side files under these names.
    return name.startswith((".", "_")) or name.endswith((".crc", "_$folder$"))


def _inspect_all(
    fs: Any,
    files: list[DataFile],
    root_uri: str,
    report: CrawlReport,
    progress: Callable[[int, int], None] | None,
) -> dict[str, FileSchema]:
    schemas: dict[str, FileSchema] = {}
    with (
        tempfile.TemporaryDirectory(prefix="sagelab-crawl-") as workdir,
        ThreadPoolExecutor(max_workers=min(_WORKERS, len(files))) as pool,
    ):
        futures = {pool.submit(inspect_file, fs, f.path, f.size, workdir): f for f in files}
        for done, future in enumerate(as_completed(futures), start=1):
            f = futures[future]
            try:
                schemas[f.path] = future.result()
            except Unusable as exc:
                report.skipped.append(SkippedFile(_join(root_uri, f.rel), exc.reason, exc.detail))
            except Exception as exc:  # a crawl must survive any file's content
                report.skipped.append(
                    SkippedFile(
                        _join(root_uri, f.rel),
                        "unreadable",
                        f"The file cannot be read: {type(exc).__name__}: {exc}",
                    )
                )
            if progress is not None:
                progress(done, len(files))
    return schemas


# --------------------------------------------------------------------------- the catalog
def _apply(
    catalog: Catalog,
    database: str,
    name: str,
    location: str,
    plan: TablePlan,
    policy: SchemaChangePolicy,
) -> TableCrawl:
    parameters: dict[str, Any] = {
        "objectCount": plan.files,
        "sizeKey": plan.bytes,
        "typeOfData": "file",
    }
    if plan.record_count is not None:
        # Exact only when every file is Parquet (footers); CSV and JSON would be a guess.
        parameters["recordCount"] = plan.record_count
    table = TableInfo(
        database=database,
        name=name,
        location=location,
        classification=plan.classification,
        columns=plan.columns,
        partition_keys=plan.partition_keys,
        compression=plan.compression,
        serde_parameters=plan.serde,
        parameters=parameters,
        created_by=CREATED_BY,
    )
    wanted = {
        values: (location + rel + "/", params) for values, (rel, params) in plan.partitions.items()
    }
    entry = TableCrawl(
        name=name,
        location=location,
        status="created",
        classification=plan.classification,
        version_id=1,
        files=plan.files,
        bytes=plan.bytes,
        partitions=len(wanted),
        notes=list(plan.notes),
    )
    if not catalog.table_exists(database, name):
        created = catalog.create_table(table)
        entry.version_id = created.version_id
        _add_partitions(catalog, table, wanted, set(), entry, refresh=True)
        return entry

    old = catalog.get_table(database, name)
    entry.schema = diff_columns(old.columns, table.columns)
    entry.properties = _property_changes(old, table)
    keys_changed = [(c.name, c.type) for c in old.partition_keys] != [
        (c.name, c.type) for c in table.partition_keys
    ]
    known = {tuple(p.values) for p in catalog.get_partitions(database, name)}
    changed = bool(entry.schema or entry.properties or keys_changed)
    if policy == "update":
        updated = catalog.update_table(table, created_by=CREATED_BY)
        entry.version_id = updated.version_id
        entry.status = "updated" if changed else "unchanged"
        if keys_changed and known:
            # Partitions of the old keys cannot be read with the new ones.
            catalog.delete_partitions(database, name)
            entry.notes.append("The partition keys changed: the partitions were registered anew.")
            known = set()
        _add_partitions(catalog, table, wanted, known, entry, refresh=True)
    else:
        entry.version_id = old.version_id
        entry.status = "logged" if changed else "unchanged"
        if keys_changed:
            entry.notes.append(
                "The partition keys changed; under policy 'log' the table and its partitions "
                "were left alone. Crawl with policy 'update' to apply the change."
            )
        else:
            _add_partitions(catalog, table, wanted, known, entry, refresh=False)
    if not keys_changed:
        entry.partitions_missing = sorted(
            partition_path(table.partition_keys, list(v)) for v in known - set(wanted)
        )
    return entry


def _add_partitions(
    catalog: Catalog,
    table: TableInfo,
    wanted: dict[tuple[str, ...], tuple[str, dict[str, Any]]],
    known: set[tuple[str, ...]],
    entry: TableCrawl,
    *,
    refresh: bool,
) -> None:
    """Register new partitions; with ``refresh``, also update the counts of known ones."""
    if not table.partition_keys:
        return
    todo = [
        (list(values), loc, params)
        for values, (loc, params) in sorted(wanted.items())
        if refresh or values not in known
    ]
    if todo:
        catalog.add_partitions(table.database, table.name, todo)
    entry.partitions_added = [
        partition_path(table.partition_keys, list(v)) for v in sorted(wanted) if v not in known
    ]


def _property_changes(old: TableInfo, new: TableInfo) -> dict[str, dict[str, Any]]:
    before = {
        "classification": old.classification,
        "compression": old.compression,
        **old.serde_parameters,
    }
    after = {
        "classification": new.classification,
        "compression": new.compression,
        **new.serde_parameters,
    }
    return {
        k: {"from": before.get(k), "to": after.get(k)}
        for k in sorted(set(before) | set(after))
        if before.get(k) != after.get(k)
    }


# --------------------------------------------------------------------------- names and URIs
def _root_uri(loc: Location, root: str) -> str:
    """The crawl root as a URI of the same form as the location given."""
    if loc.bucket is not None:
        return f"s3://{loc.bucket}/{loc.key}".rstrip("/")
    if loc.uri.startswith("file://"):
        return "file://" + root
    if "://" in loc.uri:
        return str(loc.fs.unstrip_protocol(root)).rstrip("/")
    return root


def _join(base: str, rel: str) -> str:
    return f"{base}/{rel}" if rel else base


def _root_name(loc: Location, root: str) -> str:
    if loc.bucket is not None:
        return (loc.key or "").rstrip("/").rsplit("/", 1)[-1] or loc.bucket
    return posixpath.basename(root.rstrip("/")) or "root"


def _sanitize(name: str, prefix: str) -> str:
    cleaned = re.sub(r"[^a-z0-9_]", "_", name.lower())
    full = prefix + cleaned
    # A catalog name starts with a letter or '_' (see validate_name).
    if not full or full[0].isdigit():
        full = "_" + full
    return full[:200]


def _table_name(
    catalog: Catalog, database: str, prefix: str, base: str, location: str, used: set[str]
) -> str:
    """The dataset's table name; a hash of its location is appended when the name is taken."""
    name = _sanitize(base, prefix)
    taken = name in used
    if not taken and catalog.table_exists(database, name):
        taken = catalog.get_table(database, name).location.rstrip("/") != location.rstrip("/")
    if taken:
        name = f"{name}_{hashlib.sha1(location.encode()).hexdigest()[:8]}"
    return validate_name(name, "table")
