"""The data catalog (the Glue Data Catalog's role): databases, tables, schema history, partitions.

The catalog hands out plain snapshots (``TableInfo``), never live ORM rows, so
callers in other processes or threads cannot trip over a closed session.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sagelab.errors import Conflict, InvalidInput, NotFound, closest
from sagelab.lake._schema import Column, SchemaDiff, diff_columns
from sagelab.store import (
    CatalogDatabase,
    CatalogPartition,
    CatalogTable,
    CatalogTableVersion,
    Store,
    utcnow,
)

__all__ = [
    "Catalog",
    "DatabaseInfo",
    "PartitionInfo",
    "TableInfo",
    "parse_table_name",
    "partition_path",
    "validate_name",
]

# Glue allows more, but Athena and Hive only read lowercase letters, digits and
# underscores without quoting; keeping to those keeps names safe in paths and SQL.
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,254}$")


def validate_name(name: str, what: str = "table") -> str:
    """Check a database or table name; returns it.

    Raises:
        InvalidInput: the name is not lowercase letters, digits and underscores.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"The {what} name {name!r} is not valid: use 1-255 lowercase letters, digits and "
            "underscores, starting with a letter or underscore (e.g. 'sales_2024')."
        )
    return name


def parse_table_name(qualified: str) -> tuple[str, str]:
    """Split ``database.table`` and check both parts.

    Raises:
        InvalidInput: not of the form ``database.table`` or a part is not a valid name.
    """
    parts = qualified.split(".") if isinstance(qualified, str) else []
    if len(parts) != 2:
        raise InvalidInput(
            f"The table {qualified!r} must be named as DATABASE.TABLE (e.g. 'analytics.flights')."
        )
    return validate_name(parts[0], "database"), validate_name(parts[1], "table")


@dataclass(frozen=True)
class DatabaseInfo:
    name: str
    description: str
    location_uri: str
    create_time: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "Name": self.name,
            "Description": self.description,
            "LocationUri": self.location_uri,
            "CreateTime": self.create_time.isoformat(),
        }


@dataclass(frozen=True)
class PartitionInfo:
    values: list[str]
    location: str
    parameters: dict[str, Any]
    create_time: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "Values": self.values,
            "Location": self.location,
            "Parameters": self.parameters,
            "CreationTime": self.create_time.isoformat(),
        }


@dataclass(frozen=True)
class TableInfo:
    """A snapshot of a catalog table."""

    database: str
    name: str
    location: str
    classification: str
    columns: list[Column]
    partition_keys: list[Column] = field(default_factory=list)
    compression: str = ""
    serde_parameters: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    version_id: int = 1
    created_by: str = ""
    create_time: datetime | None = None
    update_time: datetime | None = None

    @property
    def qualified_name(self) -> str:
        return f"{self.database}.{self.name}"

    @property
    def row_count(self) -> int | None:
        count = self.parameters.get("recordCount")
        return int(count) if count is not None else None

    @property
    def all_columns(self) -> list[Column]:
        """Data columns then partition columns, as a query sees them."""
        return [*self.columns, *self.partition_keys]

    def as_dict(self) -> dict[str, Any]:
        """The table in the shape of Glue's GetTable answer."""
        return {
            "Name": self.name,
            "DatabaseName": self.database,
            "Description": self.description,
            "TableType": "EXTERNAL_TABLE",
            "CreateTime": self.create_time.isoformat() if self.create_time else None,
            "UpdateTime": self.update_time.isoformat() if self.update_time else None,
            "CreatedBy": self.created_by,
            "VersionId": str(self.version_id),
            "StorageDescriptor": {
                "Location": self.location,
                "Columns": [_glue_column(c) for c in self.columns],
                "Compressed": bool(self.compression),
                "SerdeInfo": {"Parameters": dict(self.serde_parameters)},
            },
            "PartitionKeys": [_glue_column(c) for c in self.partition_keys],
            "Parameters": {
                "classification": self.classification,
                "compressionType": self.compression or "none",
                **{k: str(v) for k, v in self.parameters.items()},
            },
        }


def _glue_column(col: Column) -> dict[str, Any]:
    out: dict[str, Any] = {"Name": col.name, "Type": col.type}
    if col.comment:
        out["Comment"] = col.comment
    if not col.nullable:
        out["Parameters"] = {"nullable": "false"}
    return out


def _table_info(row: CatalogTable) -> TableInfo:
    return TableInfo(
        database=row.database_name,
        name=row.name,
        location=row.location,
        classification=row.classification,
        columns=[Column.from_dict(c) for c in row.columns],
        partition_keys=[Column.from_dict(c) for c in row.partition_keys],
        compression=row.compression,
        serde_parameters=dict(row.serde_parameters),
        parameters=dict(row.parameters),
        description=row.description,
        version_id=row.version_id,
        created_by=row.created_by,
        create_time=row.create_time,
        update_time=row.update_time,
    )


def partition_path(keys: Sequence[Column], values: Sequence[str]) -> str:
    """``k1=v1/k2=v2``: a partition's relative path and its unique key."""
    return "/".join(f"{k.name}={v}" for k, v in zip(keys, values, strict=True))


class Catalog:
    """Databases and tables over the metadata store.

    Args:
        store: the metadata store.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    # ------------------------------------------------------------------ databases
    def create_database(
        self, name: str, *, description: str = "", location_uri: str = "", exist_ok: bool = False
    ) -> DatabaseInfo:
        """Create a database.

        Raises:
            InvalidInput: bad name.
            Conflict: it exists and ``exist_ok`` is false.
        """
        validate_name(name, "database")
        with self.store.session() as s:
            row = s.get(CatalogDatabase, name)
            if row is not None:
                if not exist_ok:
                    raise Conflict(f"The database {name!r} already exists.")
            else:
                row = CatalogDatabase(name=name, description=description, location_uri=location_uri)
                s.add(row)
                s.flush()
            return DatabaseInfo(row.name, row.description, row.location_uri, row.create_time)

    def list_databases(self) -> list[DatabaseInfo]:
        with self.store.read() as s:
            rows = s.scalars(select(CatalogDatabase).order_by(CatalogDatabase.name)).all()
            return [
                DatabaseInfo(r.name, r.description, r.location_uri, r.create_time) for r in rows
            ]

    def get_database(self, name: str) -> DatabaseInfo:
        with self.store.read() as s:
            row = s.get(CatalogDatabase, name)
            if row is None:
                raise self._no_database(s, name)
            return DatabaseInfo(row.name, row.description, row.location_uri, row.create_time)

    def delete_database(self, name: str) -> None:
        """Delete a database and its tables' metadata (never their data)."""
        with self.store.session() as s:
            row = s.get(CatalogDatabase, name)
            if row is None:
                raise self._no_database(s, name)
            s.delete(row)

    # ------------------------------------------------------------------ tables
    def create_table(self, table: TableInfo, *, replace: bool = False) -> TableInfo:
        """Register a table (its database is created if missing).

        Raises:
            Conflict: the table exists and ``replace`` is false.
        """
        validate_name(table.database, "database")
        validate_name(table.name, "table")
        self._check_columns(table)
        self.create_database(table.database, exist_ok=True)
        try:
            with self.store.session() as s:
                row = self._row(s, table.database, table.name, missing_ok=True)
                if row is not None and not replace:
                    raise Conflict(
                        f"The table {table.qualified_name!r} already exists. Drop it first, "
                        "or update it."
                    )
                if row is not None:
                    return self._apply_update(s, row, table, created_by=table.created_by)
                now = utcnow()
                row = CatalogTable(
                    database_name=table.database,
                    name=table.name,
                    description=table.description,
                    location=table.location,
                    classification=table.classification,
                    compression=table.compression,
                    serde_parameters=dict(table.serde_parameters),
                    columns=[c.as_dict() for c in table.columns],
                    partition_keys=[c.as_dict() for c in table.partition_keys],
                    parameters=dict(table.parameters),
                    version_id=1,
                    created_by=table.created_by,
                    create_time=now,
                    update_time=now,
                )
                s.add(row)
                s.flush()
                s.add(self._version_row(row, {}))
                return _table_info(row)
        except IntegrityError as exc:  # a concurrent creator won the race
            raise Conflict(f"The table {table.qualified_name!r} already exists.") from exc

    def update_table(self, table: TableInfo, *, created_by: str = "") -> TableInfo:
        """Replace a table's definition; a schema change makes a new version.

        Raises:
            NotFound: no such table.
        """
        self._check_columns(table)
        with self.store.session() as s:
            row = self._row(s, table.database, table.name)
            return self._apply_update(s, row, table, created_by=created_by or table.created_by)

    def set_parameters(self, database: str, name: str, **parameters: Any) -> TableInfo:
        """Merge Glue table parameters (recordCount, ...); no new version."""
        with self.store.session() as s:
            row = self._row(s, database, name)
            row.parameters = {**row.parameters, **parameters}
            row.update_time = utcnow()
            return _table_info(row)

    def get_table(self, database: str, name: str) -> TableInfo:
        """A table's snapshot.

        Raises:
            NotFound: naming the closest known table.
        """
        with self.store.read() as s:
            return _table_info(self._row(s, database, name))

    def table_exists(self, database: str, name: str) -> bool:
        with self.store.read() as s:
            return self._row(s, database, name, missing_ok=True) is not None

    def list_tables(self, database: str | None = None) -> list[TableInfo]:
        with self.store.read() as s:
            query = select(CatalogTable).order_by(CatalogTable.database_name, CatalogTable.name)
            if database is not None:
                if s.get(CatalogDatabase, database) is None:
                    raise self._no_database(s, database)
                query = query.where(CatalogTable.database_name == database)
            return [_table_info(r) for r in s.scalars(query).all()]

    def delete_table(self, database: str, name: str) -> None:
        """Forget a table (its files stay where they are)."""
        with self.store.session() as s:
            s.delete(self._row(s, database, name))

    def table_versions(self, database: str, name: str) -> list[dict[str, Any]]:
        """The table's schema history, oldest first."""
        with self.store.read() as s:
            row = self._row(s, database, name)
            return [
                {
                    "VersionId": str(v.version_id),
                    "Columns": v.columns,
                    "PartitionKeys": v.partition_keys,
                    "Classification": v.classification,
                    "Change": v.change,
                    "CreatedBy": v.created_by,
                    "CreateTime": v.create_time.isoformat(),
                }
                for v in row.versions
            ]

    # ------------------------------------------------------------------ partitions
    def add_partitions(
        self,
        database: str,
        name: str,
        partitions: Iterable[tuple[Sequence[str], str, dict[str, Any]]],
    ) -> int:
        """Register partitions as ``(values, location, parameters)``; returns how many were new.

        A partition already known keeps its place and gets the new parameters.

        Raises:
            InvalidInput: a partition has the wrong number of values.
        """
        with self.store.session() as s:
            row = self._row(s, database, name)
            keys = [Column.from_dict(c) for c in row.partition_keys]
            existing = {p.values_key: p for p in row.partitions}
            added = 0
            now = utcnow()
            for values, location, params in partitions:
                values = [str(v) for v in values]
                if len(values) != len(keys):
                    raise InvalidInput(
                        f"A partition of {database}.{name} needs {len(keys)} values "
                        f"({', '.join(k.name for k in keys)}); got {values!r}."
                    )
                key = partition_path(keys, values)
                if key in existing:
                    existing[key].parameters = {**existing[key].parameters, **params}
                    existing[key].update_time = now
                    continue
                part = CatalogPartition(
                    table_id=row.id,
                    values=values,
                    values_key=key,
                    location=location,
                    parameters=dict(params),
                    create_time=now,
                    update_time=now,
                )
                s.add(part)
                existing[key] = part
                added += 1
            if added:
                row.update_time = now
            return added

    def get_partitions(self, database: str, name: str) -> list[PartitionInfo]:
        """A table's known partitions, ordered by their ``k=v/...`` path.

        Raises:
            NotFound: no such table.
        """
        with self.store.read() as s:
            table_id = self._row(s, database, name).id
            # Plain columns, not ORM objects: a query engine asks for these on every query.
            rows = s.execute(
                select(
                    CatalogPartition.values,
                    CatalogPartition.location,
                    CatalogPartition.parameters,
                    CatalogPartition.create_time,
                )
                .where(CatalogPartition.table_id == table_id)
                .order_by(CatalogPartition.values_key)
            ).all()
            return [
                PartitionInfo(list(v), loc, dict(params), created)
                for v, loc, params, created in rows
            ]

    def delete_partitions(self, database: str, name: str) -> int:
        """Forget every partition of a table (used when a table is overwritten)."""
        with self.store.session() as s:
            row = self._row(s, database, name)
            result = s.execute(delete(CatalogPartition).where(CatalogPartition.table_id == row.id))
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _check_columns(table: TableInfo) -> None:
        seen: set[str] = set()
        for col in table.all_columns:
            lowered = col.name.lower()
            if lowered in seen:
                raise InvalidInput(
                    f"The table {table.qualified_name!r} names the column {col.name!r} twice "
                    "(names are compared without case, as in Athena). Rename one of them."
                )
            seen.add(lowered)

    def _apply_update(
        self, s: Session, row: CatalogTable, table: TableInfo, *, created_by: str
    ) -> TableInfo:
        old = [Column.from_dict(c) for c in row.columns]
        old_keys = [Column.from_dict(c) for c in row.partition_keys]
        diff: SchemaDiff = diff_columns(old, table.columns)
        keys_changed = old_keys != table.partition_keys
        row.location = table.location
        row.classification = table.classification
        row.compression = table.compression
        row.serde_parameters = dict(table.serde_parameters)
        row.parameters = {**row.parameters, **table.parameters}
        row.description = table.description or row.description
        row.columns = [c.as_dict() for c in table.columns]
        row.partition_keys = [c.as_dict() for c in table.partition_keys]
        row.update_time = utcnow()
        if diff or keys_changed:
            row.version_id += 1
            change = diff.as_dict()
            if keys_changed:
                change["partition_keys"] = {
                    "from": [c.name for c in old_keys],
                    "to": [c.name for c in table.partition_keys],
                }
            s.add(self._version_row(row, change, created_by))
        s.flush()
        return _table_info(row)

    @staticmethod
    def _version_row(
        row: CatalogTable, change: dict[str, Any], created_by: str = ""
    ) -> CatalogTableVersion:
        return CatalogTableVersion(
            table_id=row.id,
            version_id=row.version_id,
            columns=list(row.columns),
            partition_keys=list(row.partition_keys),
            classification=row.classification,
            change=change,
            created_by=created_by or row.created_by,
        )

    def _row(
        self, s: Session, database: str, name: str, *, missing_ok: bool = False
    ) -> CatalogTable:
        row = s.scalars(
            select(CatalogTable).where(
                CatalogTable.database_name == database, CatalogTable.name == name
            )
        ).one_or_none()
        if row is None and not missing_ok:
            if s.get(CatalogDatabase, database) is None:
                raise self._no_database(s, database)
            known = s.scalars(
                select(CatalogTable.name).where(CatalogTable.database_name == database)
            ).all()
            raise NotFound(
                f"The table '{database}.{name}' is not in the catalog."
                f"{closest(name, known)} Tables in {database!r}: {', '.join(known) or 'none'}."
            )
        return row  # type: ignore[return-value]

    @staticmethod
    def _no_database(s: Session, name: str) -> NotFound:
        known = s.scalars(select(CatalogDatabase.name)).all()
        return NotFound(
            f"The database {name!r} is not in the catalog.{closest(name, known)} "
            f"Known databases: {', '.join(sorted(known)) or 'none'}. "
            "Ingest or crawl data into it first."
        )
