"""Endpoint configs and endpoints: production variants, their weights and instance counts.

This is the control plane. It writes what should be served into the metadata store;
the server (:mod:`sagelab.serving._server`) reads it and serves it, picking up every
change (a new endpoint, new weights, more instances) without a restart. Statuses
follow SageMaker: ``Creating → InService``, ``Updating → InService``, ``Failed``,
``Deleting``. A deploy or update loads every variant's model once, checking its
files against the checksums recorded for it, before anything is switched: a model
that does not load leaves a new endpoint ``Failed`` and an existing one serving
what it served.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from sagelab.errors import Conflict, InvalidInput, NotFound, SagelabError, closest
from sagelab.serving._capture_config import (
    DATA_CAPTURE_KEY,
    DataCaptureConfig,
    capture_summary,
    check_data_capture,
)
from sagelab.serving._multimodel import (
    DEFAULT_IDLE_SECONDS,
    DEFAULT_MEMORY_BUDGET_MB,
    MULTI_MODEL,
    SINGLE_MODEL,
)
from sagelab.serving._pipeline import check_pipeline, model_record, pipeline_model
from sagelab.serving._rollout import (
    LAST_DEPLOYMENT_KEY,
    ROLLOUT_KEY,
    DeploymentConfig,
    RolloutManager,
    describe_rollout,
    served_variants,
    start_state,
)
from sagelab.serving._shadow import SHADOW
from sagelab.store import Endpoint, EndpointConfig, EndpointMetric, Store, utcnow

if TYPE_CHECKING:
    from sagelab.config import Settings
    from sagelab.registry import ModelRegistry, ResolvedModel
    from sagelab.serving._autoscale import EndpointAutoscaling

__all__ = [
    "ENDPOINT_METRICS",
    "MAX_VARIANTS",
    "EndpointService",
    "MetricPoint",
    "VariantSpec",
    "resolved_of",
]

#: SageMaker allows up to ten production variants per endpoint.
MAX_VARIANTS = 10
#: The metrics kept per endpoint and variant (CloudWatch's names; latencies in microseconds).
ENDPOINT_METRICS = (
    "Invocations",
    "InvocationsPerInstance",
    "ModelLatency",
    "OverheadLatency",
    "Invocation4XXErrors",
    "Invocation5XXErrors",
    # Multi-model variants: per load, 1/0 per invocation (its mean is the hit rate), a gauge.
    "ModelLoadingTime",
    "ModelCacheHit",
    "LoadedModelCount",
    # Endpoints with data capture: captured records dropped when the writer fell behind.
    "CaptureDroppedRecords",
    # Shadow variants: mean absolute difference from the production answers, copies dropped.
    "ShadowPredictionDifference",
    "ShadowDroppedRequests",
)
#: Metrics whose total over periods is their mean weighted by samples, not their sum.
_AVERAGED = (
    "ModelLatency",
    "OverheadLatency",
    "ModelLoadingTime",
    "ModelCacheHit",
    "ShadowPredictionDifference",
)
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_SERVED = ("InService", "Updating", "RollingBack")
#: Rows of records (a name of its own: ``list`` is a method of the service).
Records = list[dict[str, Any]]


@dataclass(frozen=True)
class VariantSpec:
    """One production variant to deploy.

    Attributes:
        name: the variant's name (``AllTraffic`` when there is one).
        model: a model reference the registry resolves (``GROUP/N``, ``GROUP``, a training
            job, an ``s3://`` model folder).
        instance_count: worker processes that serve it (at least 1).
        weight: its share of the traffic is ``weight / sum(weights)``.
        mode: ``SingleModel``, or ``MultiModel``: ``model`` is then an ``s3://bucket/prefix/``
            under which every model folder is served, picked per request by the
            ``X-Amzn-SageMaker-Target-Model`` header and loaded on its first request.
        memory_budget_mb: MultiModel only: what the models one instance keeps loaded may
            take (estimated from their artifacts; least recently used are unloaded first).
            Default 1024.
        model_idle_seconds: MultiModel only: a model unused this long is unloaded. Default 600.
        shadow: a shadow variant: it gets a copy of ``sampling_percentage`` % of the
            requests, answered off the request path, its answers compared with the
            production variant's and never returned (its ``weight`` is not used).
        sampling_percentage: Shadow only: the share of requests copied to it, in (0, 100].
            Default 100.
        pipeline: an inference pipeline instead of one model: 2–5 step mappings (a
            preparation recipe, the model, a postprocessor: see
            :mod:`sagelab.serving._pipeline`), one request in and one answer out, with
            each step's latency in the metrics (variant ``NAME/STEP``). ``model`` is
            then left empty.
    """

    name: str
    model: str
    instance_count: int = 1
    weight: float = 1.0
    mode: str = SINGLE_MODEL
    memory_budget_mb: float | None = None
    model_idle_seconds: float | None = None
    shadow: bool = False
    sampling_percentage: float | None = None
    pipeline: Sequence[Mapping[str, Any]] | None = None


@dataclass(frozen=True)
class MetricPoint:
    """One period's value of an endpoint variant's metric."""

    endpoint: str
    variant: str
    name: str
    value: float
    samples: int
    timestamp: datetime


def resolved_of(variant: Mapping[str, Any]) -> ResolvedModel:
    """The :class:`~sagelab.registry.ResolvedModel` a stored variant was deployed with."""
    from sagelab.registry import ResolvedModel

    return ResolvedModel(
        reference=str(variant["Model"]),
        model_data=str(variant["ModelData"]),
        algorithm=str(variant["Algorithm"]),
        problem_type=str(variant.get("ProblemType", "")),
        checksums=dict(variant["Checksums"]),
        package=variant.get("ModelPackage"),
        training_job=variant.get("TrainingJobName"),
    )


class EndpointService:
    """Deploy, update, describe and delete endpoints; keep their metric series.

    Args:
        store: the metadata store.
        registry: resolves model references and loads models with their checksums checked.
    """

    def __init__(self, store: Store, registry: ModelRegistry) -> None:
        self.store = store
        self.registry = registry
        #: Advances blue/green updates (a server's supervisor keeps its own, with alarms).
        self.rollouts = RolloutManager(store)

    @property
    def autoscaling(self) -> EndpointAutoscaling:
        """Scaling policies of these endpoints' variants (target tracking)."""
        from sagelab.serving._autoscale import EndpointAutoscaling

        return EndpointAutoscaling(self.store)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> EndpointService:
        """The service over the store and lake that ``settings`` name."""
        from sagelab.config import get_settings
        from sagelab.jobs import JobService
        from sagelab.lake import Lake
        from sagelab.registry import ModelRegistry
        from sagelab.store import cached_store

        settings = settings or get_settings()
        store = cached_store(settings.db_url)
        registry = ModelRegistry(store, Lake.from_settings(settings), JobService(store, settings))
        return cls(store, registry)

    # ------------------------------------------------------------------ deploy and update
    def deploy(
        self,
        endpoint: str,
        variants: Sequence[VariantSpec],
        *,
        update: bool = False,
        data_capture: DataCaptureConfig | Mapping[str, Any] | None = None,
        deployment_config: DeploymentConfig | Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create an endpoint (or, with ``update``, replace an existing one's variants).

        Every variant's model is resolved and loaded once (its files checked against
        their checksums) before the endpoint changes. ``data_capture`` (a
        :class:`DataCaptureConfig` or SageMaker's ``DataCaptureConfig`` mapping) makes
        the servers keep a share of the requests and answers in the lake; an update
        without one keeps the capture the endpoint has.

        An update with a ``deployment_config`` (a :class:`DeploymentConfig` or
        SageMaker's mapping) is blue/green (:mod:`sagelab.serving._rollout`): the
        endpoint stays ``Updating`` while the new variants take their share of the
        traffic step by step, and returns to ``InService`` on the new config, or on
        the old one after ``RollingBack`` when an alarm fires. This call returns once
        the update has started; :meth:`wait` follows it. Without one, an update
        switches every worker to the new variants at once.

        Raises:
            InvalidInput: bad names, counts or weights (one message per problem), a bad
                data capture config (refused before anything changes), or a model that
                does not load (the endpoint is then Failed when new, unchanged when
                updated).
            Conflict: the endpoint exists and ``update`` is False, or is being changed.
            NotFound: a model reference that resolves to nothing; ``update`` of a missing
                endpoint.
        """
        _check_name(endpoint, "endpoint")
        _check_variants(variants)
        capture = None if data_capture is None else check_data_capture(data_capture)
        policy = None if deployment_config is None else DeploymentConfig.parse(deployment_config)
        if policy is not None and not update:
            raise InvalidInput(
                "A deployment config applies to updates (blue/green); a new endpoint starts "
                "with all its variants at once. Deploy it first, then update it."
            )
        self._capture_bucket(capture)
        # A multi-model variant's models are resolved and checked when first requested; a
        # pipeline's steps are pinned and loaded once here.
        pipelines = [
            None if v.pipeline is None else check_pipeline(v.pipeline, self.registry)
            for v in variants
        ]
        resolved = [
            None
            if v.mode == MULTI_MODEL or v.pipeline is not None
            else self.registry.resolve(v.model)
            for v in variants
        ]
        records = [
            _variant_record(v, r, p) for v, r, p in zip(variants, resolved, pipelines, strict=True)
        ]
        config_name = f"{endpoint}-config-{utcnow().strftime('%Y%m%d%H%M%S%f')}"
        with self.store.session() as s:
            row = s.get(Endpoint, endpoint)
            if row is not None and not update:
                raise Conflict(
                    f"The endpoint {endpoint!r} exists ({row.status}). Update it "
                    "(deploy --update, or update-weights), or delete it first."
                )
            if row is None and update:
                raise NotFound(f"There is no endpoint {endpoint!r} to update.")
            if row is not None and row.status not in ("InService", "Failed"):
                raise Conflict(
                    f"The endpoint {endpoint!r} is {row.status}; wait until it is InService."
                )
            if capture is None and row is not None:  # an update keeps the endpoint's capture
                capture = (row.options or {}).get(DATA_CAPTURE_KEY)
            s.add(
                EndpointConfig(
                    name=config_name, variants=records, options=_with_capture({}, capture)
                )
            )
            if row is None:
                s.add(Endpoint(name=endpoint, config_name=config_name, status="Creating"))
            else:
                row.status, row.update_time = "Updating", utcnow()
        try:
            self._check_loads(resolved)
        except SagelabError as exc:
            self._failed(endpoint, new=not update, reason=str(exc))
            raise
        except Exception as exc:  # a model that breaks on load: same outcome, named
            self._failed(endpoint, new=not update, reason=f"{type(exc).__name__}: {exc}")
            raise InvalidInput(f"A model of {endpoint!r} did not load: {exc}") from exc
        with self.store.session() as s:
            row = s.get(Endpoint, endpoint)
            if row is None:  # deleted meanwhile
                raise NotFound(f"The endpoint {endpoint!r} was deleted while it was deployed.")
            if policy is not None and row.variants:  # blue/green: the old fleet serves on
                state = start_state(
                    policy,
                    row.variants,
                    records,
                    blue_config=row.config_name,
                    green_config=config_name,
                    green_options=_with_capture(row.options, capture),
                )
                row.variants = served_variants(row.variants, records, state["Shares"][0])
                row.options = {**dict(row.options or {}), ROLLOUT_KEY: state}
                row.failure_reason = ""
                row.revision += 1
                row.update_time = utcnow()
                return self._describe_row(row)
            row.config_name = config_name
            row.variants = [
                {
                    **r,
                    "CurrentWeight": r["DesiredWeight"],
                    "CurrentInstanceCount": r["DesiredInstanceCount"],
                }
                for r in records
            ]
            row.options = _with_capture(row.options, capture)
            row.status, row.failure_reason = "InService", ""
            row.revision += 1
            row.update_time = utcnow()
        return self.describe(endpoint)

    def update_data_capture(
        self, endpoint: str, data_capture: DataCaptureConfig | Mapping[str, Any]
    ) -> dict[str, Any]:
        """Start, change or stop an endpoint's data capture, keeping its variants as they are.

        Like the SageMaker SDK's ``update_data_capture_config``: a new endpoint config
        with the same variants and the new capture is deployed; workers pick it up
        within a second without loading any model again.

        Raises:
            InvalidInput: a bad data capture config (one message per problem).
            NotFound: no such endpoint.
            Conflict: the endpoint is not InService.
        """
        capture = check_data_capture(data_capture)
        self._capture_bucket(capture)
        config_name = f"{endpoint}-config-{utcnow().strftime('%Y%m%d%H%M%S%f')}"
        with self.store.session() as s:
            row = self._get(s, endpoint)
            if row.status != "InService":
                raise Conflict(f"The endpoint {endpoint!r} is {row.status}; it must be InService.")
            current = s.get(EndpointConfig, row.config_name)
            s.add(
                EndpointConfig(
                    name=config_name,
                    variants=list(current.variants) if current is not None else [],
                    options=_with_capture(current.options if current is not None else {}, capture),
                )
            )
            row.config_name = config_name
            row.options = _with_capture(row.options, capture)
            row.revision += 1
            row.update_time = utcnow()
        return self.describe(endpoint)

    def _capture_bucket(self, capture: Mapping[str, Any] | None) -> None:
        """Create the bucket captures go to, so that workers find it."""
        if capture and capture["EnableCapture"]:
            from sagelab.lake import Lake

            bucket, _ = Lake.parse_uri(capture["DestinationS3Uri"])
            self.registry.lake.create_bucket(bucket, exist_ok=True)

    def _check_loads(self, resolved: Sequence[ResolvedModel | None]) -> None:
        with tempfile.TemporaryDirectory(prefix="sagelab-deploy-") as tmp:
            for i, r in enumerate(resolved):
                if r is not None:
                    self.registry.load(r, workdir=Path(tmp) / str(i))

    def _failed(self, endpoint: str, *, new: bool, reason: str) -> None:
        with self.store.session() as s:
            row = s.get(Endpoint, endpoint)
            if row is None:
                return
            if new:
                row.status = "Failed"
            else:  # SageMaker rolls a failed update back: the old variants keep serving
                row.status = "InService" if row.variants else "Failed"
            row.failure_reason = reason
            row.update_time = utcnow()

    def update_weights(
        self,
        endpoint: str,
        weights: Mapping[str, float] | None = None,
        instance_counts: Mapping[str, int] | None = None,
    ) -> dict[str, Any]:
        """Change variants' weights and instance counts in place, without downtime.

        Raises:
            NotFound: no such endpoint, or a variant it does not have (named, with the
                closest).
            InvalidInput: a negative weight, all weights zero, an instance count below 1.
            Conflict: the endpoint is not InService.
        """
        weights, counts = dict(weights or {}), dict(instance_counts or {})
        if not weights and not counts:
            raise InvalidInput("Give at least one variant's weight or instance count to change.")
        with self.store.session() as s:
            row = self._get(s, endpoint)
            if row.status != "InService":
                raise Conflict(f"The endpoint {endpoint!r} is {row.status}; it must be InService.")
            names = [v["VariantName"] for v in row.variants]
            problems = [
                f"The endpoint {endpoint!r} has no variant {n!r}.{closest(n, names)} "
                f"It has: {', '.join(names)}."
                for n in [*weights, *counts]
                if n not in names
            ]
            problems += [
                f"The weight of {n!r} must be a number ≥ 0; got {w!r}."
                for n, w in weights.items()
                if not _is_weight(w)
            ]
            problems += [
                f"The instance count of {n!r} must be an integer ≥ 1; got {c!r}."
                for n, c in counts.items()
                if not (isinstance(c, int) and not isinstance(c, bool) and c >= 1)
            ]
            unknown = [p for p in problems if "has no variant" in p]
            if unknown:
                raise NotFound(" ".join(unknown))
            if problems:
                raise InvalidInput(" ".join(problems))
            variants = []
            for v in row.variants:
                v = dict(v)
                if v["VariantName"] in weights:
                    v["DesiredWeight"] = v["CurrentWeight"] = float(weights[v["VariantName"]])
                if v["VariantName"] in counts:
                    n = int(counts[v["VariantName"]])
                    v["DesiredInstanceCount"] = v["CurrentInstanceCount"] = n
                variants.append(v)
            if sum(v["CurrentWeight"] for v in variants) <= 0:
                raise InvalidInput(
                    f"The weights of {endpoint!r} would all be 0; at least one variant must "
                    "take traffic."
                )
            row.variants = variants
            row.revision += 1
            row.update_time = utcnow()
        return self.describe(endpoint)

    # ------------------------------------------------------------------ read and delete
    def describe(self, endpoint: str) -> dict[str, Any]:
        """SageMaker's DescribeEndpoint, with each variant's model and metric totals.

        While a blue/green update runs, ``ProductionVariants`` are the serving (blue)
        ones and ``PendingDeploymentSummary`` has the new ones with their share of the
        traffic; ``LastDeployment`` tells how the last update ended. Describing an
        endpoint moves its update's time-driven steps along.

        Raises:
            NotFound: no such endpoint (the closest name suggested).
        """
        self.rollouts.advance(endpoint)
        with self.store.read() as s:
            out = self._describe_row(self._get(s, endpoint))
        for v in [*out["ProductionVariants"], *out.get("ShadowProductionVariants", [])]:
            v["Metrics"] = self._variant_totals(endpoint, v["VariantName"])
        pending = out.get("PendingDeploymentSummary")
        for v in pending["ProductionVariants"] if pending else []:
            v["Metrics"] = self._variant_totals(endpoint, v["ServedAs"])
        return out

    def _describe_row(self, row: Endpoint) -> dict[str, Any]:
        out = _describe(row)
        options = row.options or {}
        capture = options.get(DATA_CAPTURE_KEY)
        if capture:
            out["DataCaptureConfig"] = capture_summary(capture)
        if options.get(ROLLOUT_KEY):
            out["PendingDeploymentSummary"] = describe_rollout(options[ROLLOUT_KEY])
        if options.get(LAST_DEPLOYMENT_KEY):
            out["LastDeployment"] = dict(options[LAST_DEPLOYMENT_KEY])
        return out

    def wait(
        self,
        endpoint: str,
        *,
        timeout: float = 3600.0,
        poll: float = 0.5,
        on_change: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Wait until the endpoint is no longer ``Creating``, ``Updating`` or ``RollingBack``.

        Args:
            timeout: seconds to wait at most.
            poll: seconds between two looks.
            on_change: called with the description whenever its status, step or
                traffic share changes (a progress display).

        Raises:
            NotFound: no such endpoint.
            WaitTimeout: still changing after ``timeout`` seconds.
        """
        from sagelab.jobs import WaitTimeout

        deadline = time.monotonic() + timeout
        seen: tuple[Any, ...] | None = None
        while True:
            d = self.describe(endpoint)
            pending = d.get("PendingDeploymentSummary") or {}
            key = (d["EndpointStatus"], pending.get("Step"), pending.get("TrafficShare"))
            if key != seen and on_change is not None:
                on_change(d)
            seen = key
            if d["EndpointStatus"] not in ("Creating", "Updating", "RollingBack"):
                return d
            if time.monotonic() > deadline:
                raise WaitTimeout(
                    f"The endpoint {endpoint!r} is still {d['EndpointStatus']} after {timeout:g} s."
                )
            time.sleep(poll)

    def _variant_totals(self, endpoint: str, variant: str) -> dict[str, float]:
        with self.store.read() as s:
            rows = s.execute(
                select(EndpointMetric.name, EndpointMetric.value, EndpointMetric.samples)
                .where(EndpointMetric.endpoint == endpoint, EndpointMetric.variant == variant)
                .order_by(EndpointMetric.timestamp, EndpointMetric.id)
            ).all()
        totals: dict[str, float] = {}
        weighted: dict[str, tuple[float, int]] = {}
        for name, value, samples in rows:
            if name == "LoadedModelCount":  # a gauge: its latest value (rows come in order)
                totals[name] = value
            elif name in _AVERAGED:
                total, n = weighted.get(name, (0.0, 0))
                weighted[name] = (total + value * samples, n + samples)
            else:
                totals[name] = totals.get(name, 0.0) + value
        for name, (total, n) in weighted.items():
            totals[name] = total / n if n else 0.0
        return {k: totals.get(k, 0.0) for k in ENDPOINT_METRICS}

    def list(self) -> Records:
        """Every endpoint, newest first (SageMaker's ListEndpoints summaries)."""
        with self.store.read() as s:
            rows = s.scalars(select(Endpoint).order_by(Endpoint.create_time.desc())).all()
            return [
                {
                    "EndpointName": r.name,
                    "EndpointStatus": r.status,
                    "EndpointConfigName": r.config_name,
                    "Variants": len(r.variants),
                    "CreationTime": r.create_time,
                    "LastModifiedTime": r.update_time,
                }
                for r in rows
            ]

    def delete(self, endpoint: str) -> None:
        """Delete an endpoint; servers stop serving it within a second. Its metrics stay.

        Raises:
            NotFound: no such endpoint.
        """
        with self.store.session() as s:
            row = self._get(s, endpoint)
            row.status = "Deleting"
        with self.store.session() as s:
            gone = s.get(Endpoint, endpoint)
            if gone is not None:
                s.delete(gone)

    # ------------------------------------------------------------------ for servers
    def revisions(self) -> dict[str, int]:
        """The revision of every endpoint that should be served (one cheap query)."""
        with self.store.read() as s:
            rows = s.execute(
                select(Endpoint.name, Endpoint.revision).where(Endpoint.status.in_(_SERVED))
            ).all()
        return {name: int(rev) for name, rev in rows}

    def served(self, endpoint: str) -> tuple[int, Records] | None:
        """An endpoint's revision and variants when it should be served, else None."""
        with self.store.read() as s:
            row = s.get(Endpoint, endpoint)
            if row is None or row.status not in _SERVED or not row.variants:
                return None
            return int(row.revision), [dict(v) for v in row.variants]

    def served_options(self, endpoint: str) -> dict[str, Any]:
        """The options an endpoint is served with (``DataCaptureConfig``...), {} if none."""
        with self.store.read() as s:
            row = s.get(Endpoint, endpoint)
            return dict(row.options or {}) if row is not None else {}

    def instance_total(self) -> int:
        """The instances every served endpoint asks for, all together."""
        with self.store.read() as s:
            rows = s.scalars(select(Endpoint).where(Endpoint.status.in_(_SERVED))).all()
            return sum(int(v.get("CurrentInstanceCount", 1)) for r in rows for v in r.variants)

    def record_metrics(self, points: Sequence[MetricPoint]) -> None:
        """Append one period's points to the endpoints' metric series."""
        if not points:
            return
        with self.store.session() as s:
            s.add_all(
                EndpointMetric(
                    endpoint=p.endpoint,
                    variant=p.variant,
                    name=p.name,
                    value=p.value,
                    samples=p.samples,
                    timestamp=p.timestamp,
                )
                for p in points
            )

    def metrics(
        self, endpoint: str, name: str | None = None, variant: str | None = None
    ) -> Records:
        """An endpoint's metric series, oldest first.

        Raises:
            InvalidInput: an unknown metric name (the known ones listed).
        """
        if name is not None and name not in ENDPOINT_METRICS:
            raise InvalidInput(
                f"Unknown endpoint metric {name!r}.{closest(name, ENDPOINT_METRICS)} "
                f"Known: {', '.join(ENDPOINT_METRICS)}."
            )
        query = select(EndpointMetric).where(EndpointMetric.endpoint == endpoint)
        if name is not None:
            query = query.where(EndpointMetric.name == name)
        if variant is not None:
            query = query.where(EndpointMetric.variant == variant)
        with self.store.read() as s:
            rows = s.scalars(query.order_by(EndpointMetric.timestamp, EndpointMetric.id)).all()
            return [
                {
                    "VariantName": r.variant,
                    "MetricName": r.name,
                    "Value": r.value,
                    "SampleCount": r.samples,
                    "Timestamp": r.timestamp,
                }
                for r in rows
            ]

    # ------------------------------------------------------------------ helpers
    def _get(self, s: Any, endpoint: str) -> Endpoint:
        row = s.get(Endpoint, endpoint)
        if row is None:
            names = list(s.scalars(select(Endpoint.name)).all())
            raise NotFound(f"There is no endpoint {endpoint!r}.{closest(endpoint, names)}")
        return row


def _with_capture(options: Mapping[str, Any] | None, capture: Any) -> dict[str, Any]:
    """``options`` with the data capture config set (or removed when None); other keys kept."""
    out = dict(options or {})
    if capture is None:
        out.pop(DATA_CAPTURE_KEY, None)
    else:
        out[DATA_CAPTURE_KEY] = capture
    return out


def _is_weight(w: Any) -> bool:
    return isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0 and w == w


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"The {what} name {name!r} is not valid: use 1–63 letters, digits and hyphens, "
            "starting and ending with a letter or digit."
        )


def _check_variants(variants: Sequence[VariantSpec]) -> None:
    problems: list[str] = []
    if not 1 <= len(variants) <= MAX_VARIANTS:
        problems.append(
            f"An endpoint has 1 to {MAX_VARIANTS} production variants; got {len(variants)}."
        )
    seen: set[str] = set()
    for v in variants:
        if not _NAME.match(v.name or ""):
            problems.append(
                f"The variant name {v.name!r} is not valid: use 1–63 letters, digits and hyphens."
            )
        if v.name in seen:
            problems.append(f"The variant name {v.name!r} is given twice.")
        seen.add(v.name)
        if not _is_weight(v.weight):
            problems.append(f"The weight of {v.name!r} must be a number ≥ 0; got {v.weight!r}.")
        if not (isinstance(v.instance_count, int) and v.instance_count >= 1):
            problems.append(
                f"The instance count of {v.name!r} must be an integer ≥ 1; got {v.instance_count!r}."
            )
        problems += _multi_model_problems(v)
        problems += _shadow_problems(v)
        problems += _pipeline_problems(v)
    production = [v for v in variants if not v.shadow]
    if variants and not production:
        problems.append("An endpoint needs a production variant besides its shadow variant.")
    if len(variants) - len(production) > 1:
        problems.append("An endpoint has at most one shadow variant.")
    weights = [v.weight for v in production]
    if weights and all(_is_weight(w) for w in weights) and sum(weights) <= 0:
        problems.append("The variants' weights are all 0; at least one must take traffic.")
    if problems:
        raise InvalidInput(" ".join(problems))


def _pipeline_problems(v: VariantSpec) -> list[str]:
    if v.pipeline is None:
        return []
    problems = []
    if v.model:
        problems.append(
            f"The variant {v.name!r} has a pipeline, whose Model step names its model; leave "
            f"its model empty (got {v.model!r})."
        )
    if v.mode != SINGLE_MODEL or v.shadow:
        problems.append(f"The pipeline variant {v.name!r} cannot be {MULTI_MODEL} or a shadow.")
    if isinstance(v.pipeline, (str, bytes)) or not isinstance(v.pipeline, Sequence):
        problems.append(
            f"The pipeline of {v.name!r} is a list of 2 to 5 step mappings; got {v.pipeline!r}."
        )
    return problems


def _shadow_problems(v: VariantSpec) -> list[str]:
    p = v.sampling_percentage
    if not v.shadow:
        if p is None:
            return []
        return [f"The sampling percentage of {v.name!r} applies to shadow variants only."]
    problems = []
    if p is not None and not (_is_weight(p) and 0 < p <= 100):
        problems.append(
            f"The sampling percentage of the shadow variant {v.name!r} must be in (0, 100]; "
            f"got {p!r}."
        )
    if v.mode != SINGLE_MODEL:
        problems.append(f"The shadow variant {v.name!r} must serve a single model.")
    return problems


def _multi_model_problems(v: VariantSpec) -> list[str]:
    from sagelab.lake import Lake

    if v.mode not in (SINGLE_MODEL, MULTI_MODEL):
        return [f"The mode of {v.name!r} is {SINGLE_MODEL} or {MULTI_MODEL}; got {v.mode!r}."]
    problems = []
    for what, value in (
        ("memory budget (MB)", v.memory_budget_mb),
        ("model idle time (seconds)", v.model_idle_seconds),
    ):
        if value is None:
            continue
        if v.mode != MULTI_MODEL:
            problems.append(f"The {what} of {v.name!r} applies to {MULTI_MODEL} variants only.")
        elif not _is_weight(value) or value <= 0 or value == float("inf"):
            problems.append(f"The {what} of {v.name!r} must be a positive number; got {value!r}.")
    if v.mode == MULTI_MODEL:
        try:
            _, key = Lake.parse_uri(v.model)
        except InvalidInput as exc:
            key, shown = "", f" ({exc})"
        else:
            shown = ""
        if not key.strip("/"):
            problems.append(
                f"A {MULTI_MODEL} variant's model is a folder inside a bucket under which each "
                f"model is a model folder, such as s3://models/churn/; {v.name!r} got "
                f"{v.model!r}{shown}."
            )
    return problems


def _variant_record(
    spec: VariantSpec,
    resolved: ResolvedModel | None,
    pipeline: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    if pipeline is not None:  # its model's fields are the Model step's
        return {
            "VariantName": spec.name,
            **pipeline_model(pipeline),
            "Pipeline": pipeline,
            "DesiredWeight": float(spec.weight),
            "DesiredInstanceCount": int(spec.instance_count),
        }
    if resolved is None:  # MultiModel: the prefix, and what bounds the models loaded under it
        budget = spec.memory_budget_mb or DEFAULT_MEMORY_BUDGET_MB
        prefix = spec.model.rstrip("/") + "/"
        return {
            "VariantName": spec.name,
            "Mode": MULTI_MODEL,
            "Model": spec.model,
            "ModelData": prefix,
            "ModelDataUrl": prefix,
            "Algorithm": "",
            "ProblemType": "",
            "Checksums": {},
            "ModelPackage": None,
            "TrainingJobName": None,
            "MemoryBudgetBytes": int(budget * 1024 * 1024),
            "ModelIdleSeconds": float(spec.model_idle_seconds or DEFAULT_IDLE_SECONDS),
            "DesiredWeight": float(spec.weight),
            "DesiredInstanceCount": int(spec.instance_count),
        }
    shadow = (
        {"VariantType": SHADOW, "SamplingPercentage": float(spec.sampling_percentage or 100.0)}
        if spec.shadow
        else {}
    )
    return {
        **shadow,
        "VariantName": spec.name,
        **model_record(resolved),
        "DesiredWeight": 0.0 if spec.shadow else float(spec.weight),
        "DesiredInstanceCount": int(spec.instance_count),
    }


def _multi_model_fields(v: Mapping[str, Any]) -> dict[str, Any]:
    if v.get("Mode") != MULTI_MODEL:
        return {}
    return {
        "ModelDataUrl": v["ModelDataUrl"],
        "MemoryBudgetMB": v["MemoryBudgetBytes"] / (1024 * 1024),
        "ModelIdleSeconds": v["ModelIdleSeconds"],
    }


def _describe(row: Endpoint) -> dict[str, Any]:
    serving = [v for v in row.variants if v.get("Fleet") != "Green"]  # the new fleet: pending
    shadows = [
        {
            "VariantName": v["VariantName"],
            "Model": v["Model"],
            "ModelData": v["ModelData"],
            "Algorithm": v["Algorithm"],
            "SamplingPercentage": v["SamplingPercentage"],
            "CurrentInstanceCount": v.get("CurrentInstanceCount", v["DesiredInstanceCount"]),
            "DesiredInstanceCount": v["DesiredInstanceCount"],
        }
        for v in serving
        if v.get("VariantType") == SHADOW
    ]
    return {
        "EndpointName": row.name,
        "EndpointArn": f"endpoint/{row.name}",
        "EndpointConfigName": row.config_name,
        "EndpointStatus": row.status,
        "FailureReason": row.failure_reason or None,
        "Revision": row.revision,
        "CreationTime": row.create_time,
        "LastModifiedTime": row.update_time,
        "ProductionVariants": [
            {
                "VariantName": v["VariantName"],
                "Model": v["Model"],
                "ModelData": v["ModelData"],
                "Algorithm": v["Algorithm"],
                "ModelPackage": v.get("ModelPackage"),
                "Mode": v.get("Mode", SINGLE_MODEL),
                **(
                    {"Pipeline": [{"Type": st["Type"], "Name": st["Name"]} for st in v["Pipeline"]]}
                    if v.get("Pipeline")
                    else {}
                ),
                **_multi_model_fields(v),
                "CurrentWeight": v.get("CurrentWeight", v["DesiredWeight"]),
                "DesiredWeight": v["DesiredWeight"],
                "CurrentInstanceCount": v.get("CurrentInstanceCount", v["DesiredInstanceCount"]),
                "DesiredInstanceCount": v["DesiredInstanceCount"],
            }
            for v in serving
            if v.get("VariantType") != SHADOW
        ],
        **({"ShadowProductionVariants": shadows} if shadows else {}),
        # Scaling policies and the last scaling activities (serving/_autoscale.py).
        **({"AutoScaling": row.options["AutoScaling"]} if _has(row, "AutoScaling") else {}),
    }


def _has(row: Endpoint, key: str) -> bool:
    return bool((row.options or {}).get(key))
