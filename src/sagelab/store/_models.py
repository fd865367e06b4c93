"""The metadata database's tables, as SQLAlchemy 2 models.

Names follow the AWS resources they stand for (Glue's databases, tables and
partitions; SageMaker's jobs), so a later wire API can answer in their shapes.
Every schema change here needs an Alembic migration under ``migrations/versions``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "Base",
    "CatalogDatabase",
    "CatalogPartition",
    "CatalogTable",
    "CatalogTableVersion",
    "Job",
    "JobEvent",
    "JobMetric",
    "utcnow",
]


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no time zone, so values come back naive there; this type
    makes both databases hand out the same aware datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


# Stable constraint names so migrations read the same on SQLite and PostgreSQL.
_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: UTCDateTime,
    }


# --------------------------------------------------------------------------- catalog
class CatalogDatabase(Base):
    """A Glue Data Catalog database: a namespace of tables."""

    __tablename__ = "catalog_databases"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    location_uri: Mapped[str] = mapped_column(Text, default="")
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    create_time: Mapped[datetime] = mapped_column(default=utcnow)

    tables: Mapped[list[CatalogTable]] = relationship(
        back_populates="database", cascade="all, delete-orphan", passive_deletes=True
    )


class CatalogTable(Base):
    """A Glue table: data at a location, in a format, with a schema and partitions."""

    __tablename__ = "catalog_tables"
    __table_args__ = (UniqueConstraint("database_name", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    database_name: Mapped[str] = mapped_column(
        ForeignKey("catalog_databases.name", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    table_type: Mapped[str] = mapped_column(String(32), default="EXTERNAL_TABLE")
    location: Mapped[str] = mapped_column(Text)
    #: Glue's classification: csv, json or parquet.
    classification: Mapped[str] = mapped_column(String(32))
    #: gzip, zstd, snappy or "" (none).
    compression: Mapped[str] = mapped_column(String(32), default="")
    #: Reader options: CSV delimiter, header, quote character.
    serde_parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: [{"name", "type", "nullable", "comment"}], types in Glue/Hive notation.
    columns: Mapped[list[Any]] = mapped_column(default=list)
    partition_keys: Mapped[list[Any]] = mapped_column(default=list)
    #: Glue's free-form parameters: recordCount, sizeKey, objectCount, ...
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version_id: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(255), default="")
    create_time: Mapped[datetime] = mapped_column(default=utcnow)
    update_time: Mapped[datetime] = mapped_column(default=utcnow)

    database: Mapped[CatalogDatabase] = relationship(back_populates="tables")
    versions: Mapped[list[CatalogTableVersion]] = relationship(
        back_populates="table",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="CatalogTableVersion.version_id",
    )
    partitions: Mapped[list[CatalogPartition]] = relationship(
        back_populates="table",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="CatalogPartition.values_key",
    )


class CatalogTableVersion(Base):
    """One past or present schema of a table (Glue's GetTableVersions)."""

    __tablename__ = "catalog_table_versions"
    __table_args__ = (UniqueConstraint("table_id", "version_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    table_id: Mapped[int] = mapped_column(ForeignKey("catalog_tables.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(Integer)
    columns: Mapped[list[Any]] = mapped_column(default=list)
    partition_keys: Mapped[list[Any]] = mapped_column(default=list)
    classification: Mapped[str] = mapped_column(String(32))
    #: What changed from the previous version: added, removed, changed columns.
    change: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(255), default="")
    create_time: Mapped[datetime] = mapped_column(default=utcnow)

    table: Mapped[CatalogTable] = relationship(back_populates="versions")


class CatalogPartition(Base):
    """A known partition of a table: its key values and where its files are."""

    __tablename__ = "catalog_partitions"
    __table_args__ = (UniqueConstraint("table_id", "values_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    table_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_tables.id", ondelete="CASCADE"), index=True
    )
    #: The partition's values, in the order of the table's partition keys, as strings.
    values: Mapped[list[Any]] = mapped_column(default=list)
    #: ``key=value/key=value``: unique per table and the partition's relative path.
    values_key: Mapped[str] = mapped_column(String(1024))
    location: Mapped[str] = mapped_column(Text)
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    create_time: Mapped[datetime] = mapped_column(default=utcnow)
    update_time: Mapped[datetime] = mapped_column(default=utcnow)

    table: Mapped[CatalogTable] = relationship(back_populates="partitions")


# --------------------------------------------------------------------------- jobs
class Job(Base):
    """A unit of long work (training, ETL, ingestion, ...) with SageMaker's lifecycle."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_kind", "status", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(63 * 4), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    #: InProgress | Completed | Failed | Stopping | Stopped
    status: Mapped[str] = mapped_column(String(32), default="InProgress")
    #: Starting | Downloading | Training | Uploading | Completed | Failed | Stopping | Stopped ...
    secondary_status: Mapped[str] = mapped_column(String(64), default="Starting")
    failure_reason: Mapped[str] = mapped_column(Text, default="")
    #: The dotted path of the function the job runs.
    target: Mapped[str] = mapped_column(String(255))
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: What the job produced: counts, output locations, ...
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    log_uri: Mapped[str] = mapped_column(Text, default="")
    executor: Mapped[str] = mapped_column(String(64), default="local")
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: The process's start time, so a recycled PID is not taken for the job.
    pid_start_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    max_runtime_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    creation_time: Mapped[datetime] = mapped_column(default=utcnow)
    start_time: Mapped[datetime | None] = mapped_column(nullable=True)
    end_time: Mapped[datetime | None] = mapped_column(nullable=True)
    last_modified_time: Mapped[datetime] = mapped_column(default=utcnow)

    events: Mapped[list[JobEvent]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="JobEvent.id"
    )


class JobEvent(Base):
    """A secondary-status transition (SageMaker's SecondaryStatusTransitions)."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text, default="")
    time: Mapped[datetime] = mapped_column(default=utcnow)


class JobMetric(Base):
    """One point of a job's metric time series (``validation:auc`` at step 12)."""

    __tablename__ = "job_metrics"
    __table_args__ = (Index("ix_job_metrics_job_name_step", "job_id", "name", "step"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    step: Mapped[int] = mapped_column(Integer, default=0)
    value: Mapped[float] = mapped_column(Float)
    timestamp: Mapped[datetime] = mapped_column(default=utcnow)
