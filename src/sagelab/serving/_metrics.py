"""Invocation metrics: counted in each worker, summed across workers, kept as series.

Each worker counts in plain memory (a request pays a few float additions, not a
lock) and writes a snapshot of its totals to the server's run folder every
second. ``/metrics`` sums every worker's latest snapshot (its own live totals for
itself) and renders them in Prometheus' text format with ``prometheus_client``.
The server turns the growth of those sums over each period into points of the
endpoints' metric series in the store (CloudWatch's names: ``Invocations``,
``InvocationsPerInstance``, ``ModelLatency`` and ``OverheadLatency`` in
microseconds, ``Invocation4XXErrors``, ``Invocation5XXErrors``; for multi-model
variants ``ModelLoadingTime`` in microseconds per load, ``ModelCacheHit``, 1 or 0 per
invocation, and ``LoadedModelCount``, a gauge summed over the workers). Snapshots of
workers that have exited stay, so totals never go down while a server runs (a
worker that stops empties its caches first, so its loaded models count 0).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sagelab.serving._endpoints import MetricPoint

__all__ = ["COUNTS", "Counters", "deltas", "read_snapshots", "render_prometheus"]

#: What a worker counts per (endpoint, variant), in this order.
COUNTS = (
    "invocations",
    "errors_4xx",
    "errors_5xx",
    "model_us",
    "overhead_us",
    "timed",
    # Multi-model variants only: loads and their time, cache lookups and hits, and the
    # models loaded now (a gauge, not a total).
    "loads",
    "load_us",
    "lookups",
    "hits",
    "loaded_models",
    # Endpoints with data capture: records dropped because the capture writer fell behind.
    "capture_dropped",
    # Shadow variants: copies compared with the production answer, the sum of their mean
    # absolute differences, and copies dropped because the shadow fell behind.
    "shadow_compared",
    "shadow_diff",
    "shadow_dropped",
)
_INVOCATIONS, _E4, _E5, _MODEL, _OVERHEAD, _TIMED = range(6)
_LOADS, _LOAD_US, _LOOKUPS, _HITS, _LOADED = range(6, 11)
_DROPPED = 11
_COMPARED, _DIFF, _SHADOW_DROPPED = range(12, 15)


class Counters:
    """One worker's running totals per (endpoint, variant)."""

    def __init__(self) -> None:
        self.totals: dict[tuple[str, str], list[float]] = {}
        #: Reads how many models each multi-model variant has loaded now (set by the worker).
        self.loaded_models: Callable[[], Mapping[tuple[str, str], int]] | None = None

    def _row(self, endpoint: str, variant: str) -> list[float]:
        row = self.totals.get((endpoint, variant))
        if row is None:
            row = self.totals[(endpoint, variant)] = [0.0] * len(COUNTS)
        return row

    def served(self, endpoint: str, variant: str, model_us: float, overhead_us: float) -> None:
        """A request answered 2xx, with its model and overhead latency."""
        row = self._row(endpoint, variant)
        row[_INVOCATIONS] += 1
        row[_MODEL] += model_us
        row[_OVERHEAD] += overhead_us
        row[_TIMED] += 1

    def failed(self, endpoint: str, variant: str, status: int) -> None:
        """A request that got a 4xx or 5xx answer (it counts as an invocation too)."""
        row = self._row(endpoint, variant)
        row[_INVOCATIONS] += 1
        row[_E5 if status >= 500 else _E4] += 1

    def model_cache(self, endpoint: str, variant: str, *, hit: bool, load_us: float | None) -> None:
        """A multi-model request found its model loaded (``hit``) or not, and, when it
        loaded the model itself, how long that took."""
        row = self._row(endpoint, variant)
        row[_LOOKUPS] += 1
        row[_HITS] += hit
        if load_us is not None:
            row[_LOADS] += 1
            row[_LOAD_US] += load_us

    def capture_dropped(self, endpoint: str, variant: str, n: int) -> None:
        """Captured records of a variant that were dropped rather than written."""
        self._row(endpoint, variant)[_DROPPED] += n

    def shadow_compared(self, endpoint: str, shadow: str, difference: float) -> None:
        """A shadow's answer and how far it was from the production variant's (NaN: their
        shapes differed, not averaged in)."""
        if difference == difference:
            row = self._row(endpoint, shadow)
            row[_COMPARED] += 1
            row[_DIFF] += difference

    def shadow_dropped(self, endpoint: str, shadow: str) -> None:
        """A copy for a shadow variant dropped because its queue was full."""
        self._row(endpoint, shadow)[_SHADOW_DROPPED] += 1

    def snapshot(self) -> dict[str, list[float]]:
        out = {f"{e}\x1f{v}": list(row) for (e, v), row in list(self.totals.items())}
        if self.loaded_models is not None:
            for (e, v), n in self.loaded_models().items():
                row = out.setdefault(f"{e}\x1f{v}", [0.0] * len(COUNTS))
                row[_LOADED] = float(n)
        return out

    def write(self, folder: Path) -> None:
        """Publish the totals as ``metrics-<pid>.json`` in ``folder`` (atomically)."""
        path = folder / f"metrics-{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot()), encoding="utf-8")
        os.replace(tmp, path)


def read_snapshots(
    folder: Path, live: Counters | None = None
) -> dict[tuple[str, str], list[float]]:
    """Every worker's totals summed (``live``'s own in place of its snapshot)."""
    own = f"metrics-{os.getpid()}.json" if live is not None else None
    summed: dict[tuple[str, str], list[float]] = {}

    def add(items: Mapping[str, list[float]]) -> None:
        for key, values in items.items():
            endpoint, _, variant = key.partition("\x1f")
            row = summed.setdefault((endpoint, variant), [0.0] * len(COUNTS))
            for i, value in enumerate(values[: len(COUNTS)]):
                row[i] += float(value)

    for path in sorted(folder.glob("metrics-*.json")):
        if path.name == own:
            continue
        try:
            add(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):  # a worker mid-write on a filesystem without rename
            continue
    if live is not None:
        add(live.snapshot())
    return summed


def render_prometheus(
    totals: Mapping[tuple[str, str], list[float]], instances: Mapping[tuple[str, str], int]
) -> bytes:
    """The totals in Prometheus' text exposition format."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

    class _Collector:
        def collect(self) -> Iterator[Any]:
            labels = ["endpoint", "variant"]
            invocations = CounterMetricFamily(
                "sagelab_endpoint_invocations", "Requests sent to the variant.", labels=labels
            )
            e4 = CounterMetricFamily(
                "sagelab_endpoint_invocation_4xx_errors",
                "Requests answered with a 4xx status.",
                labels=labels,
            )
            e5 = CounterMetricFamily(
                "sagelab_endpoint_invocation_5xx_errors",
                "Requests answered with a 5xx status.",
                labels=labels,
            )
            model = SummaryMetricFamily(
                "sagelab_endpoint_model_latency_microseconds",
                "Time the model took to predict (ModelLatency).",
                labels=labels,
            )
            overhead = SummaryMetricFamily(
                "sagelab_endpoint_overhead_latency_microseconds",
                "Time spent around the model: reading, parsing, answering (OverheadLatency).",
                labels=labels,
            )
            count = GaugeMetricFamily(
                "sagelab_endpoint_instances", "Instances the variant asks for.", labels=labels
            )
            per_instance = GaugeMetricFamily(
                "sagelab_endpoint_invocations_per_instance",
                "Invocations divided by the variant's instance count (InvocationsPerInstance).",
                labels=labels,
            )
            for (endpoint, variant), row in sorted(totals.items()):
                key = [endpoint, variant]
                invocations.add_metric(key, row[_INVOCATIONS])
                e4.add_metric(key, row[_E4])
                e5.add_metric(key, row[_E5])
                model.add_metric(key, count_value=int(row[_TIMED]), sum_value=row[_MODEL])
                overhead.add_metric(key, count_value=int(row[_TIMED]), sum_value=row[_OVERHEAD])
                n = instances.get((endpoint, variant), 0)
                if n:
                    per_instance.add_metric(key, row[_INVOCATIONS] / n)
            for (endpoint, variant), n in sorted(instances.items()):
                count.add_metric([endpoint, variant], n)
            yield from (invocations, e4, e5, model, overhead, count, per_instance)
            yield from _multi_model_families(totals, labels)
            dropped = CounterMetricFamily(
                "sagelab_endpoint_capture_dropped_records",
                "Captured requests dropped because the capture writer fell behind "
                "(CaptureDroppedRecords).",
                labels=labels,
            )
            for (endpoint, variant), row in sorted(totals.items()):
                if len(row) > _DROPPED and row[_DROPPED]:
                    dropped.add_metric([endpoint, variant], row[_DROPPED])
            yield dropped
            yield from _shadow_families(totals, labels)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return bytes(generate_latest(registry))


def _shadow_families(
    totals: Mapping[tuple[str, str], list[float]], labels: list[str]
) -> Iterator[Any]:
    """ShadowPredictionDifference and ShadowDroppedRequests of shadow variants."""
    from prometheus_client.core import CounterMetricFamily, SummaryMetricFamily

    difference = SummaryMetricFamily(
        "sagelab_endpoint_shadow_prediction_difference",
        "Mean absolute difference per row between a shadow variant's predictions and the "
        "production variant's on the same requests (ShadowPredictionDifference).",
        labels=labels,
    )
    dropped = CounterMetricFamily(
        "sagelab_endpoint_shadow_dropped_requests",
        "Copies for a shadow variant dropped because it fell behind (ShadowDroppedRequests).",
        labels=labels,
    )
    for (endpoint, variant), row in sorted(totals.items()):
        if len(row) < len(COUNTS) or not (row[_COMPARED] or row[_SHADOW_DROPPED]):
            continue
        difference.add_metric(
            [endpoint, variant], count_value=int(row[_COMPARED]), sum_value=row[_DIFF]
        )
        dropped.add_metric([endpoint, variant], row[_SHADOW_DROPPED])
    yield from (difference, dropped)


def _multi_model_families(
    totals: Mapping[tuple[str, str], list[float]], labels: list[str]
) -> Iterator[Any]:
    """ModelLoadingTime, ModelCacheHit and LoadedModelCount of the multi-model variants."""
    from prometheus_client.core import GaugeMetricFamily, SummaryMetricFamily

    loading = SummaryMetricFamily(
        "sagelab_endpoint_model_loading_time_microseconds",
        "Time to download, check and load a model of a multi-model variant (ModelLoadingTime).",
        labels=labels,
    )
    hits = SummaryMetricFamily(
        "sagelab_endpoint_model_cache_hit",
        "1 per request whose model was loaded already, 0 otherwise; sum/count is the hit "
        "rate (ModelCacheHit).",
        labels=labels,
    )
    loaded = GaugeMetricFamily(
        "sagelab_endpoint_loaded_models",
        "Models a multi-model variant has loaded now, over every worker (LoadedModelCount).",
        labels=labels,
    )
    for (endpoint, variant), row in sorted(totals.items()):
        if len(row) < len(COUNTS) or not (row[_LOOKUPS] or row[_LOADED]):
            continue
        key = [endpoint, variant]
        loading.add_metric(key, count_value=int(row[_LOADS]), sum_value=row[_LOAD_US])
        hits.add_metric(key, count_value=int(row[_LOOKUPS]), sum_value=row[_HITS])
        loaded.add_metric(key, row[_LOADED])
    yield from (loading, hits, loaded)


def deltas(
    before: Mapping[tuple[str, str], list[float]],
    after: Mapping[tuple[str, str], list[float]],
    instances: Mapping[tuple[str, str], int],
    at: datetime,
) -> list[MetricPoint]:
    """One period's metric points: what grew between two sums of the totals.

    A period with no requests for a variant gives no points for it, except
    ``LoadedModelCount`` of a multi-model variant, given whenever it changed.
    """
    points: list[MetricPoint] = []
    for (endpoint, variant), now in sorted(after.items()):
        then = before.get((endpoint, variant), [0.0] * len(COUNTS))
        d = [max(a - b, 0.0) for a, b in zip(now, then, strict=True)]

        def point(name: str, value: float, samples: int) -> MetricPoint:
            return MetricPoint(endpoint, variant, name, value, samples, at)  # noqa: B023

        if (now[_LOOKUPS] or now[_LOADED]) and (d[_INVOCATIONS] or now[_LOADED] != then[_LOADED]):
            points.append(point("LoadedModelCount", now[_LOADED], 1))
        if d[_DROPPED]:
            points.append(point("CaptureDroppedRecords", d[_DROPPED], int(d[_DROPPED])))
        if d[_SHADOW_DROPPED]:
            dropped = d[_SHADOW_DROPPED]
            points.append(point("ShadowDroppedRequests", dropped, int(dropped)))
        if d[_COMPARED]:
            points.append(
                point("ShadowPredictionDifference", d[_DIFF] / d[_COMPARED], int(d[_COMPARED]))
            )
        if not d[_INVOCATIONS]:
            continue
        timed = int(d[_TIMED])
        n = max(instances.get((endpoint, variant), 1), 1)

        points += [
            point("Invocations", d[_INVOCATIONS], int(d[_INVOCATIONS])),
            point("InvocationsPerInstance", d[_INVOCATIONS] / n, int(d[_INVOCATIONS])),
            point("Invocation4XXErrors", d[_E4], int(d[_INVOCATIONS])),
            point("Invocation5XXErrors", d[_E5], int(d[_INVOCATIONS])),
        ]
        if timed:
            points += [
                point("ModelLatency", d[_MODEL] / timed, timed),
                point("OverheadLatency", d[_OVERHEAD] / timed, timed),
            ]
        if d[_LOOKUPS]:
            points.append(point("ModelCacheHit", d[_HITS] / d[_LOOKUPS], int(d[_LOOKUPS])))
        if d[_LOADS]:
            points.append(point("ModelLoadingTime", d[_LOAD_US] / d[_LOADS], int(d[_LOADS])))
    return points
