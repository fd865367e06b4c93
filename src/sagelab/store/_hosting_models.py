"""Tables of the model registry and of hosting: model package groups and versions,
endpoint configs, endpoints and their metric time series (SageMaker's names)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from sagelab.store._models import Base, utcnow

__all__ = ["Endpoint", "EndpointConfig", "EndpointMetric", "ModelPackage", "ModelPackageGroup"]


class ModelPackageGroup(Base):
    """A named line of model versions (SageMaker's model package group)."""

    __tablename__ = "model_package_groups"

    name: Mapped[str] = mapped_column(String(63 * 4), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    create_time: Mapped[datetime] = mapped_column(default=utcnow)


class ModelPackage(Base):
    """One version of a group: an artifact, how it was made, and whether it may ship."""

    __tablename__ = "model_packages"
    __table_args__ = (UniqueConstraint("group_name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_name: Mapped[str] = mapped_column(
        ForeignKey("model_package_groups.name", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    #: PendingManualApproval | Approved | Rejected
    approval_status: Mapped[str] = mapped_column(String(32), default="PendingManualApproval")
    approval_description: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    #: Where the artifact folder lives (``s3://artifacts/training/<job>/model/``).
    model_data: Mapped[str] = mapped_column(Text)
    algorithm: Mapped[str] = mapped_column(String(255))
    problem_type: Mapped[str] = mapped_column(String(64), default="")
    training_job: Mapped[str | None] = mapped_column(String(63 * 4), nullable=True)
    #: File name -> SHA-256 of every file of the artifact, recorded at registration.
    checksums: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Lineage and anything else worth keeping (inputs, hyperparameters, recipe).
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    create_time: Mapped[datetime] = mapped_column(default=utcnow)
    update_time: Mapped[datetime] = mapped_column(default=utcnow)


class EndpointConfig(Base):
    """Production variants, each a model with an initial instance count and weight."""

    __tablename__ = "endpoint_configs"

    name: Mapped[str] = mapped_column(String(63 * 4), primary_key=True)
    #: ``[{"VariantName", "Model", "ModelData", "Checksums", "InitialInstanceCount",
    #: "InitialVariantWeight", ...}]``
    variants: Mapped[list[Any]] = mapped_column(default=list)
    #: What the config holds beside its production variants, by SageMaker's names
    #: (``DataCaptureConfig``, ``ShadowProductionVariants``, ...).
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    create_time: Mapped[datetime] = mapped_column(default=utcnow)


class Endpoint(Base):
    """A named endpoint: its config, its status and its variants' current weights and counts."""

    __tablename__ = "endpoints"

    name: Mapped[str] = mapped_column(String(63 * 4), primary_key=True)
    config_name: Mapped[str] = mapped_column(String(63 * 4))
    #: Creating | InService | Updating | Failed | Deleting
    status: Mapped[str] = mapped_column(String(32), default="Creating")
    failure_reason: Mapped[str] = mapped_column(Text, default="")
    #: The variants as served now: the config's, with current weights and instance counts.
    variants: Mapped[list[Any]] = mapped_column(default=list)
    #: Grows with every change, so servers can tell cheaply that they must reload.
    revision: Mapped[int] = mapped_column(Integer, default=1)
    #: The options served now (the config's ``options``), and the endpoint's own state
    #: beside them (autoscaling policies, a deployment in progress), by SageMaker's names.
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    create_time: Mapped[datetime] = mapped_column(default=utcnow)
    update_time: Mapped[datetime] = mapped_column(default=utcnow)


class EndpointMetric(Base):
    """One point of an endpoint variant's metric series (``Invocations`` over a minute)."""

    __tablename__ = "endpoint_metrics"
    __table_args__ = (Index("ix_endpoint_metrics_series", "endpoint", "name", "timestamp"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    endpoint: Mapped[str] = mapped_column(String(63 * 4))
    variant: Mapped[str] = mapped_column(String(63 * 4))
    name: Mapped[str] = mapped_column(String(64))
    #: The statistic's value over the period (a sum for counts, an average for latencies).
    value: Mapped[float] = mapped_column(Float)
    #: Requests behind the value (for latencies: the sample count).
    samples: Mapped[int] = mapped_column(Integer, default=0)
    timestamp: Mapped[datetime] = mapped_column(default=utcnow)
