"""Multi-model endpoints: many models under one ``s3://`` prefix, loaded when first asked for.

A variant in ``MultiModel`` mode serves every model folder under its prefix (what
a training job writes to ``s3://artifacts/training/<job>/model/``, copied or saved
under ``s3://bucket/prefix/<name>/``); models added after the deploy are served
too. A request names its model with ``X-Amzn-SageMaker-Target-Model``, a path
relative to the prefix. Each worker keeps the models it loaded in a
:class:`MultiModelCache`: least recently used first out when the variant's memory
budget is exceeded, and unloaded after an idle time.

A model is loaded in a thread, so a slow load holds up only the requests for
that model; concurrent first requests for one model share one load. Its files
go through the registry (:meth:`~sagelab.registry.ModelRegistry.resolve` then
``load``): the local copy must match the lake's bytes, and the algorithm's
``load`` checks its native files against the SHA-256 recorded in
``sagelab-model.json`` when the model was saved, so a damaged file is refused
before any library parses it.

A model's footprint is estimated from its artifact, not measured: the bytes of
its files times :data:`FOOTPRINT_FACTOR`, plus :data:`MODEL_OVERHEAD_BYTES` for
the Python objects and the library's handle. Resident-memory deltas were the
alternative; with loads running in threads beside requests, and the allocator
reusing freed pages, they are noisy and can even be negative, while the budget
needs a figure that is the same for a model every time it is loaded.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from sagelab.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from sagelab.serving._table import ServedVariant

__all__ = [
    "DEFAULT_IDLE_SECONDS",
    "DEFAULT_MEMORY_BUDGET_MB",
    "FOOTPRINT_FACTOR",
    "MODEL_OVERHEAD_BYTES",
    "MULTI_MODEL",
    "SINGLE_MODEL",
    "TARGET_MODEL_HEADER",
    "MultiModelCache",
    "MultiModelVariant",
    "Selection",
    "TargetModelError",
    "check_target",
    "model_footprint",
]

SINGLE_MODEL = "SingleModel"
MULTI_MODEL = "MultiModel"
#: The request header naming the model, relative to the variant's prefix.
TARGET_MODEL_HEADER = "x-amzn-sagemaker-target-model"
#: Per worker (an instance) and variant, when the deploy names no budget.
DEFAULT_MEMORY_BUDGET_MB = 1024.0
#: A model unused this long is unloaded, when the deploy names no idle time.
DEFAULT_IDLE_SECONDS = 600.0
#: Memory per byte of artifact. Tree and linear models read back into structures
#: about as large as their files (XGBoost's UBJSON holds the node arrays it loads);
#: two leaves room for the copies libraries keep while predicting.
FOOTPRINT_FACTOR = 2
#: Memory every loaded model costs beside its artifact: the algorithm object, its
#: metadata and the native library's handle.
MODEL_OVERHEAD_BYTES = 64 * 1024
#: SageMaker's limit on the TargetModel header.
_MAX_TARGET = 1024


def model_footprint(artifact_bytes: int) -> int:
    """The bytes a loaded model is charged against its variant's memory budget."""
    return MODEL_OVERHEAD_BYTES + FOOTPRINT_FACTOR * int(artifact_bytes)


class TargetModelError(Exception):
    """A multi-model request that cannot be answered, with its HTTP status and error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def check_target(target: str | None, prefix: str, endpoint: str) -> tuple[str, str]:
    """The target model's path (no trailing ``/``) and its folder's URI under ``prefix``.

    Raises:
        TargetModelError: 400 when the header is missing, empty, too long, absolute,
            or would leave the prefix (``..``, ``.``, empty segments, backslashes,
            encoded traversal).
    """
    from sagelab.lake import Lake

    header = "X-Amzn-SageMaker-Target-Model"
    if not target:
        raise TargetModelError(
            400,
            "ValidationError",
            f"Endpoint {endpoint} is a multi-model endpoint: name the model with the {header} "
            f"header, a path under {prefix} such as 'churn-a' for {prefix}churn-a/.",
        )
    problem, uri = "", ""
    rel = target.rstrip("/")
    if len(target) > _MAX_TARGET:
        problem = f"it is {len(target)} characters long; the limit is {_MAX_TARGET}"
    elif target.startswith("/") or "://" in target:
        problem = "it is absolute; give a path relative to the prefix"
    elif "\\" in target:
        problem = "it holds a backslash; separate folders with '/'"
    elif any(seg in ("", ".", "..") for seg in rel.split("/")):
        problem = "it has an empty, '.' or '..' segment, which could leave the prefix"
    if not problem:
        try:
            bucket, key = Lake.parse_uri(prefix + rel + "/")
            uri = Lake.uri(bucket, key)
        except InvalidInput as exc:  # InvalidKey too: encoded traversal, reserved names
            problem = str(exc)
    if problem:
        raise TargetModelError(
            400, "ValidationError", f"The {header} header {target[:200]!r} is not valid: {problem}."
        )
    return rel, uri


class Selection(NamedTuple):
    """The model a request is served by, whether it was loaded already, and its load time."""

    variant: ServedVariant
    hit: bool
    #: Microseconds this request spent loading the model (None when it did not load it).
    load_us: float | None


@dataclass
class _Entry:
    variant: ServedVariant
    footprint: int
    last_used: float


class MultiModelCache:
    """One worker's loaded models of one multi-model variant: an LRU cache under a budget.

    Lookups and loads run on the worker's event loop; the background thread of the
    endpoint table unloads idle models (:meth:`unload_idle`) and empties the cache
    (:meth:`close`); a lock guards what both touch.

    Args:
        endpoint: the endpoint's name (for messages).
        prefix: the variant's ``s3://bucket/prefix/``.
        budget_bytes: what the loaded models' footprints may add up to.
        idle_seconds: a model unused this long is unloaded.
        load: loads the model in a folder URI, returning it served as the variant and
            its artifact's size in bytes (runs in ``executor``).
        executor: where loads run, off the event loop.
    """

    def __init__(
        self,
        endpoint: str,
        prefix: str,
        *,
        budget_bytes: int,
        idle_seconds: float,
        load: Callable[[str], tuple[ServedVariant, int]],
        executor: Executor | None = None,
    ) -> None:
        self.endpoint, self.prefix = endpoint, prefix
        self.budget_bytes, self.idle_seconds = int(budget_bytes), float(idle_seconds)
        self._load, self._executor = load, executor
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._used = 0
        self._lock = threading.Lock()
        self._closed = False
        # Touched on the event loop only.
        self._loading: dict[str, asyncio.Task[tuple[ServedVariant, float]]] = {}

    # ------------------------------------------------------------------ reading
    @property
    def loaded_count(self) -> int:
        return len(self._entries)

    @property
    def used_bytes(self) -> int:
        return self._used

    def loaded(self) -> list[str]:
        """The loaded models' paths, least recently used first."""
        with self._lock:
            return list(self._entries)

    async def get(self, target: str | None) -> Selection:
        """The model ``target`` names, loading it first when it is not loaded.

        Raises:
            TargetModelError: 400 for a missing or bad target, 404 when no model is
                there, 500 when its files do not load (damaged, not a sagelab model,
                or larger than the whole budget).
        """
        rel, uri = check_target(target, self.prefix, self.endpoint)
        with self._lock:
            entry = self._entries.get(rel)
            if entry is not None:
                self._entries.move_to_end(rel)
                entry.last_used = time.monotonic()
                return Selection(entry.variant, True, None)
        task = self._loading.get(rel)
        if task is not None:  # someone asked first: share their load
            variant, _ = await asyncio.shield(task)
            return Selection(variant, False, None)
        task = asyncio.ensure_future(self._load_and_keep(rel, uri))
        self._loading[rel] = task
        task.add_done_callback(lambda _: self._loading.pop(rel, None))
        variant, load_us = await asyncio.shield(task)
        return Selection(variant, False, load_us)

    async def _load_and_keep(self, rel: str, uri: str) -> tuple[ServedVariant, float]:
        started = time.perf_counter_ns()
        loop = asyncio.get_running_loop()
        try:
            variant, artifact_bytes = await loop.run_in_executor(self._executor, self._load, uri)
        except NotFound as exc:
            raise TargetModelError(
                404,
                "ValidationError",
                f"Endpoint {self.endpoint} has no model {rel!r}: {exc}",
            ) from None
        except Exception as exc:  # damaged or foreign files: the model's fault, not the caller's
            raise TargetModelError(
                500,
                "ModelError",
                f"The model {rel!r} of endpoint {self.endpoint} could not be loaded: "
                f"{type(exc).__name__}: {exc}",
            ) from None
        load_us = (time.perf_counter_ns() - started) / 1000
        footprint = model_footprint(artifact_bytes)
        if footprint > self.budget_bytes:
            raise TargetModelError(
                500,
                "ModelError",
                f"The model {rel!r} needs about {_mb(footprint)} MB, more than the whole memory "
                f"budget of endpoint {self.endpoint} ({_mb(self.budget_bytes)} MB per instance); "
                "deploy it with a larger --memory-budget-mb.",
            )
        self._keep(rel, variant, footprint)
        return variant, load_us

    # ------------------------------------------------------------------ keeping and dropping
    def _keep(self, rel: str, variant: ServedVariant, footprint: int) -> None:
        with self._lock:
            if self._closed:
                return
            old = self._entries.pop(rel, None)
            if old is not None:
                self._used -= old.footprint
            self._entries[rel] = _Entry(variant, footprint, time.monotonic())
            self._used += footprint
            # Requests still predicting with an evicted model keep it alive until they answer.
            while self._used > self.budget_bytes and len(self._entries) > 1:
                _, evicted = self._entries.popitem(last=False)
                self._used -= evicted.footprint

    def unload_idle(self, now: float | None = None) -> list[str]:
        """Unload the models unused for ``idle_seconds``; return their paths."""
        now = time.monotonic() if now is None else now
        with self._lock:
            cold = [k for k, e in self._entries.items() if now - e.last_used >= self.idle_seconds]
            for key in cold:
                self._used -= self._entries.pop(key).footprint
        return cold

    def close(self) -> None:
        """Unload everything; loads that finish later are not kept."""
        with self._lock:
            self._closed = True
            self._entries.clear()
            self._used = 0


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.3g}"


@dataclass(frozen=True)
class MultiModelVariant:
    """A variant in ``MultiModel`` mode as a worker serves it."""

    name: str
    weight: float
    instances: int
    models: MultiModelCache
