"""What one server worker serves: every endpoint's variants with their models loaded.

A background thread compares the endpoints' revisions in the store with what the
worker holds, twice a second, loads the models of anything new or changed (their
files checked against their checksums), and swaps the endpoint in whole: a request
sees the old variants or the new ones, never a mix, and never waits for a load.
A model that fails to load is logged and the endpoint keeps what it served.
Variants in ``MultiModel`` mode load their models on request instead, into a
cache per worker and variant (:mod:`sagelab.serving._multimodel`) kept across
revisions; this thread also unloads their idle models.
"""

from __future__ import annotations

import bisect
import logging
import random
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sagelab.serving._capture_config import DATA_CAPTURE_KEY, CaptureSpec, capture_spec
from sagelab.serving._endpoints import EndpointService, resolved_of
from sagelab.serving._multimodel import (
    DEFAULT_IDLE_SECONDS,
    DEFAULT_MEMORY_BUDGET_MB,
    MULTI_MODEL,
    MultiModelCache,
    MultiModelVariant,
)
from sagelab.serving._pipeline import ServedPipeline, load_pipeline
from sagelab.serving._shadow import SHADOW, ShadowVariant

if TYPE_CHECKING:
    from sagelab.algorithms import Algorithm

__all__ = ["EndpointTable", "ServedEndpoint", "ServedVariant", "Variant"]

_log = logging.getLogger("sagelab.serving")


@dataclass(frozen=True)
class ServedVariant:
    """A variant as a worker serves it."""

    name: str
    weight: float
    instances: int
    algorithm: Algorithm
    num_features: int
    #: The feature names JSON rows may be keyed by (None when known by position only).
    feature_names: tuple[str, ...] | None
    #: An inference pipeline's steps (then ``algorithm`` is its model step's model).
    pipeline: ServedPipeline | None = None


#: What the weighted draw picks: a variant with its model, or one that picks per request.
Variant = ServedVariant | MultiModelVariant


class ServedEndpoint:
    """An endpoint's variants and the weighted draw between them."""

    def __init__(
        self,
        name: str,
        revision: int,
        variants: list[Variant],
        model_keys: frozenset[Any] = frozenset(),
        capture: CaptureSpec | None = None,
        shadows: list[ShadowVariant] | None = None,
    ) -> None:
        self.name, self.revision, self.variants = name, revision, variants
        #: Shadow variants: copies of sampled requests go to them, off the request path.
        self.shadows = shadows or []
        #: The model cache keys its variants use.
        self.model_keys = model_keys
        #: What of its traffic is captured to the lake (None: nothing).
        self.capture = capture
        self.by_name = {v.name: v for v in variants}
        self._cumulative: list[float] = []
        total = 0.0
        for v in variants:
            total += v.weight
            self._cumulative.append(total)
        self._total = total

    def choose(self, draw: Callable[[], float] = random.random) -> Variant:
        """A variant drawn with probability ``weight / total``."""
        i = bisect.bisect_right(self._cumulative, draw() * self._total)
        return self.variants[min(i, len(self.variants) - 1)]


class EndpointTable:
    """The endpoints one worker serves, kept in step with the store.

    Args:
        service: reads the endpoints' revisions and variants.
        load: loads a stored variant's model (checks its checksums) into a folder.
        interval: seconds between two looks at the store.
        on_tick: called after every look (the worker publishes its metrics there).
    """

    def __init__(
        self,
        service: EndpointService,
        *,
        interval: float = 0.5,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        self.service = service
        self.interval = interval
        self.on_tick = on_tick
        self.endpoints: dict[str, ServedEndpoint] = {}
        self._models: dict[tuple[str, tuple[tuple[str, str], ...]], Algorithm] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._misses: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        #: Multi-model variants' caches by (endpoint, variant, prefix, budget, idle time).
        self._caches: dict[tuple[str, str, str, int, float], MultiModelCache] = {}
        # Few threads: loads are mostly reading and hashing files, and compete with requests.
        self._loader = ThreadPoolExecutor(2, thread_name_prefix="sagelab-model-load")

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="endpoint-table", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        for cache in list(self._caches.values()):
            cache.close()
        self._loader.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:  # the store may be briefly unreachable: serve on, retry
                _log.exception("Could not refresh the endpoints; serving what is loaded.")
            for cache in list(self._caches.values()):
                cache.unload_idle()
            if self.on_tick is not None:
                try:
                    self.on_tick()
                except Exception:
                    _log.exception("Could not publish the worker's metrics.")

    # ------------------------------------------------------------------ reading
    def get(self, name: str) -> ServedEndpoint | None:
        """The endpoint, looking in the store at once when it is unknown here (a deploy
        that finished an instant ago), at most five times a second per name."""
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            now = time.monotonic()
            if now - self._misses.get(name, 0.0) > 0.2:
                if len(self._misses) > 10_000:  # a flood of made-up names: forget them
                    self._misses.clear()
                self._misses[name] = now
                self.refresh(only=name)
                endpoint = self.endpoints.get(name)
        return endpoint

    def instances(self) -> dict[tuple[str, str], int]:
        return {(e.name, v.name): v.instances for e in self.endpoints.values() for v in e.variants}

    def loaded_models(self) -> dict[tuple[str, str], int]:
        """How many models each multi-model variant has loaded in this worker."""
        return {
            (e.name, v.name): v.models.loaded_count
            for e in self.endpoints.values()
            for v in e.variants
            if isinstance(v, MultiModelVariant)
        }

    # ------------------------------------------------------------------ refreshing
    def refresh(self, only: str | None = None) -> None:
        """Load what changed in the store; drop what is no longer served."""
        with self._lock:
            revisions = self.service.revisions()
            current = dict(self.endpoints)
            for name in list(current):
                if name not in revisions and only is None:
                    del current[name]
            for name, revision in revisions.items():
                if only is not None and name != only:
                    continue
                held = current.get(name)
                if held is not None and held.revision == revision:
                    continue
                loaded = self._load_endpoint(name)
                if loaded is not None:
                    current[name] = loaded
            self.endpoints = current  # one assignment: requests see old or new, whole
            used = {k for e in current.values() for k in e.model_keys}
            for key in [k for k in self._models if k not in used]:
                del self._models[key]
            kept = {
                id(v.models)
                for e in current.values()
                for v in e.variants
                if isinstance(v, MultiModelVariant)
            }
            for cache_key, cache in list(self._caches.items()):
                if id(cache) not in kept:
                    del self._caches[cache_key]
                    cache.close()

    def _load_endpoint(self, name: str) -> ServedEndpoint | None:
        served = self.service.served(name)
        if served is None:
            return None
        revision, records = served
        variants: list[Variant] = []
        shadows: list[ShadowVariant] = []
        try:
            for record in records:
                if record.get("Mode") == MULTI_MODEL:
                    variants.append(self._multi_model(name, record))
                    continue
                if record.get("Pipeline"):
                    pipeline = load_pipeline(
                        record["Pipeline"], self.service.registry, load_model=self._model
                    )
                    one = ServedVariant(
                        name=record["VariantName"],
                        weight=float(record["CurrentWeight"]),
                        instances=int(record["CurrentInstanceCount"]),
                        algorithm=pipeline.algorithm,
                        num_features=pipeline.num_features,
                        feature_names=pipeline.feature_names,
                        pipeline=pipeline,
                    )
                    variants.append(one)
                    continue
                algorithm = self._model(record)
                names = getattr(algorithm, "feature_names", None) or []
                one = ServedVariant(
                    name=record["VariantName"],
                    weight=float(record["CurrentWeight"]),
                    instances=int(record["CurrentInstanceCount"]),
                    algorithm=algorithm,
                    num_features=len(names),
                    feature_names=None if _positional(names) else tuple(names),
                )
                if record.get("VariantType") == SHADOW:
                    shadows.append(ShadowVariant(one, float(record["SamplingPercentage"])))
                else:
                    variants.append(one)
        except Exception:
            _log.exception(
                "A model of endpoint %s (revision %d) did not load; it keeps serving what it "
                "served.",
                name,
                revision,
            )
            return None
        keys = frozenset(_key(r) for r in records if r.get("Mode") != MULTI_MODEL)
        return ServedEndpoint(
            name, revision, variants, keys, capture=self._capture(name), shadows=shadows
        )

    def _capture(self, name: str) -> CaptureSpec | None:
        try:
            return capture_spec(self.service.served_options(name).get(DATA_CAPTURE_KEY))
        except Exception:  # serve the endpoint even when its capture cannot be applied
            _log.exception("Endpoint %s: its data capture config cannot be applied.", name)
            return None

    def _model(self, record: Mapping[str, Any]) -> Algorithm:
        key = _key(record)
        algorithm = self._models.get(key)
        if algorithm is None:
            with tempfile.TemporaryDirectory(prefix="sagelab-serve-") as tmp:
                model = self.service.registry.load(resolved_of(record), workdir=Path(tmp) / "m")
            algorithm = model.algorithm
            algorithm.set_prediction_threads(1)
            self._models[key] = algorithm
        return algorithm

    def _multi_model(self, endpoint: str, record: Mapping[str, Any]) -> MultiModelVariant:
        """The variant over its cache: the same cache as the last revision's when the
        prefix, budget and idle time are unchanged, so a weight change unloads nothing."""
        variant, prefix = str(record["VariantName"]), str(record["ModelDataUrl"])
        budget = int(record.get("MemoryBudgetBytes") or DEFAULT_MEMORY_BUDGET_MB * 1024 * 1024)
        idle = float(record.get("ModelIdleSeconds") or DEFAULT_IDLE_SECONDS)
        key = (endpoint, variant, prefix, budget, idle)
        cache = self._caches.get(key)
        if cache is None:

            def load(uri: str) -> tuple[ServedVariant, int]:
                return self._load_target(uri, variant)

            cache = MultiModelCache(
                endpoint,
                prefix,
                budget_bytes=budget,
                idle_seconds=idle,
                load=load,
                executor=self._loader,
            )
            self._caches[key] = cache
        return MultiModelVariant(
            name=variant,
            weight=float(record["CurrentWeight"]),
            instances=int(record["CurrentInstanceCount"]),
            models=cache,
        )

    def _load_target(self, uri: str, variant: str) -> tuple[ServedVariant, int]:
        """A multi-model variant's model at ``uri``, and its artifact's size in bytes.

        Raises:
            NotFound: no finished model at ``uri``.
            InvalidInput: its files do not check out or are not a sagelab model.
        """
        registry = self.service.registry
        resolved = registry.resolve(uri)
        with tempfile.TemporaryDirectory(prefix="sagelab-serve-") as tmp:
            folder = Path(tmp) / "m"
            model = registry.load(resolved, workdir=folder)
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        algorithm = model.algorithm
        algorithm.set_prediction_threads(1)
        names = list(getattr(algorithm, "feature_names", None) or [])
        # Weight and instances are the variant's; nothing reads them after the draw.
        served = ServedVariant(
            name=variant,
            weight=0.0,
            instances=1,
            algorithm=algorithm,
            num_features=len(names),
            feature_names=None if _positional(names) else tuple(names),
        )
        return served, size


def _key(record: Mapping[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return str(record["ModelData"]), tuple(sorted(dict(record["Checksums"]).items()))


def _positional(names: list[str]) -> bool:
    return all(n == f"f{i}" for i, n in enumerate(names))
