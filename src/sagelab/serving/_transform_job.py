"""The batch transform job: stream every input through worker processes, write outputs in order.

It runs in the job's own process (kind ``transform``). Each worker process
fetches the model once, checks every file against the checksums resolved at
submit (:meth:`ModelRegistry.load`), loads it and predicts on one thread; the
job's process only reads the features the model takes. The job reads each input
object as blocks of whole records of at most MaxPayloadInMB and keeps at most
two blocks per worker in flight, so memory stays the same whatever the input's
size; results are written in the order blocks were sent, so each output holds
its records in input order. Outputs and error files are published whole when
their input is done (a failed or stopped job leaves no half-written object).
A small input (eight payloads at most) is transformed in the job's process
alone: starting workers would take longer.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import sys
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from multiprocessing.context import BaseContext
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sagelab.errors import AlgorithmError, InvalidInput
from sagelab.jobs import JobStopped
from sagelab.lake import Catalog, Lake, ObjectWriter, SqlEngine
from sagelab.registry import ResolvedModel
from sagelab.serving._transform_read import (
    Block,
    InputObject,
    Oversized,
    Span,
    arrow_blocks,
    file_blocks,
    list_inputs,
    open_input,
    span_blocks,
)
from sagelab.serving._transform_records import Layout, Plan, csv_layout, error, rows_layout
from sagelab.serving._transform_spec import CSV, JSON, JSONLINES, TransformSpec
from sagelab.serving._transform_worker import Task, TaskResult, Worker, run_task, warm_up
from sagelab.store import cached_store

if TYPE_CHECKING:
    from sagelab.jobs import JobContext

__all__ = ["ERRORS_FOLDER", "run_transform"]

#: Where, under the output location, each input's failed records go.
ERRORS_FOLDER = "_errors"
#: Blocks in flight per worker: one being predicted, one waiting.
_IN_FLIGHT_PER_WORKER = 2
#: What training writes beside a model's files: its features, target and algorithm.
_TRAINING_FILE = "sagelab-training.json"
#: Inputs of at most this many payloads are transformed in the job's own process: starting
#: workers costs about 2 CPU-seconds of imports, in which it gets through tens of megabytes.
_SMALL = 8
#: How often progress metrics are written.
_PROGRESS_SECONDS = 0.5


@dataclass
class _Counts:
    """One input's figures, as the job's result reports them."""

    obj: InputObject
    output: str
    errors: str | None = None
    records_in: int = 0
    records_out: int = 0
    failed: int = 0
    bytes_in: int = 0
    bytes_out: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "Input": self.obj.uri,
            "Output": self.output,
            "ErrorFile": self.errors,
            "RecordsIn": self.records_in,
            "RecordsOut": self.records_out,
            "RecordsFailed": self.failed,
            "BytesIn": self.bytes_in,
            "BytesOut": self.bytes_out,
        }


@dataclass
class _Sink:
    """An input's output object and (once a record fails) its errors file, being written."""

    counts: _Counts
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    out: ObjectWriter | None = None
    errors: ObjectWriter | None = None


class _Writer:
    """Writes results in order to one output per input, publishing each when its input ends."""

    def __init__(self, lake: Lake, output: str, inputs: list[InputObject]) -> None:
        self.lake, self.inputs = lake, inputs
        self.bucket, prefix = Lake.parse_uri(output)
        self.prefix = prefix if prefix.endswith("/") or not prefix else prefix + "/"
        lake.create_bucket(self.bucket, exist_ok=True)
        self.counts: list[_Counts] = []
        self.sink: _Sink | None = None

    def _key(self, obj: InputObject) -> str:
        return f"{self.prefix}{obj.name}.out"

    def _errors_key(self, obj: InputObject) -> str:
        return f"{self.prefix}{ERRORS_FOLDER}/{obj.name}.errors.jsonl"

    def _open(self, index: int) -> _Sink:
        if self.sink is not None and self.sink.counts.obj is self.inputs[index]:
            return self.sink
        obj = self.inputs[index]
        counts = _Counts(obj, Lake.uri(self.bucket, self._key(obj)))
        sink = _Sink(counts)
        sink.out = sink.stack.enter_context(self.lake.open_write(self.bucket, self._key(obj)))
        self.sink = sink
        return sink

    def write(self, result: TaskResult) -> None:
        sink = self._open(result.obj)
        counts = sink.counts
        if result.output and sink.out is not None:
            sink.out.write(result.output)
        if result.errors:
            if sink.errors is None:
                key = self._errors_key(counts.obj)
                sink.errors = sink.stack.enter_context(self.lake.open_write(self.bucket, key))
                counts.errors = Lake.uri(self.bucket, key)
            sink.errors.write(
                "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in result.errors).encode()
            )
        counts.records_in += result.records_in
        counts.records_out += result.records_out
        counts.failed += len(result.errors)
        counts.bytes_in += result.size
        counts.bytes_out += len(result.output)

    def finish(self, index: int) -> None:
        """The input is done: publish its output (and errors file), drop a stale errors file."""
        sink = self._open(index)
        sink.stack.close()
        self.sink = None
        self.counts.append(sink.counts)
        if sink.errors is None:
            key = self._errors_key(sink.counts.obj)
            if self.lake.exists(self.bucket, key):
                self.lake.delete(self.bucket, key)

    def abort(self) -> None:
        """Discard the output being written (nothing half-written is published)."""
        if self.sink is not None:
            self.sink.stack.__exit__(AlgorithmError, AlgorithmError("aborted"), None)
            self.sink = None


def _done(result: TaskResult | None) -> Future[TaskResult | None]:
    future: Future[TaskResult | None] = Future()
    future.set_result(result)
    return future


class _Pipeline:
    """Reads blocks, keeps a bounded number in flight on the workers, writes results in order."""

    def __init__(
        self,
        ctx: JobContext,
        spec: TransformSpec,
        plan: Plan,
        inputs: list[InputObject],
        lake: Lake,
        engine: SqlEngine,
    ) -> None:
        self.ctx, self.spec, self.plan, self.inputs = ctx, spec, plan, inputs
        self.lake, self.engine = lake, engine
        self.writer = _Writer(lake, spec.output, inputs)
        self.window = spec.workers * _IN_FLIGHT_PER_WORKER
        self.chunks = self.chunks_here = self.max_in_flight = 0
        self.done_bytes = self.done_records = self.failed = 0
        self._last_progress = 0.0
        #: When the first block's output came back (start-up ends there).
        self.first_output: float | None = None
        self.first_records = 0

    def run(self, pool: ProcessPoolExecutor | None) -> None:
        """Send every block to ``pool`` and write the results in order.

        Without a pool (a small input), blocks are transformed here, in the job's
        process, on every core.

        Raises:
            JobStopped: the job was stopped (the workers were ended with it).
            AlgorithmError: a worker process died.
        """
        pending: deque[tuple[int, Future[Any]]] = deque()
        here: Worker | None = None
        try:
            for obj, item in self._tasks():
                if isinstance(item, Task) and pool is not None:
                    pending.append((obj, pool.submit(run_task, self.plan, item)))
                    self.chunks += 1
                elif isinstance(item, Task):
                    here = here or Worker(self.plan, threads=None)
                    pending.append((obj, _done(here.run(item))))
                    self.chunks += 1
                    self.chunks_here += 1
                else:
                    pending.append((obj, _done(item)))
                self.max_in_flight = max(self.max_in_flight, len(pending))
                # Sent and not yet written stays below the window: memory is bounded by it.
                while len(pending) >= self.window or (pending and pending[0][1].done()):
                    self._settle(*pending.popleft())
            while pending:
                self._settle(*pending.popleft())
        except BrokenProcessPool:
            self.writer.abort()
            if self.ctx.stop_requested:
                raise JobStopped("The job was asked to stop.") from None
            raise AlgorithmError(
                "A transform worker process ended unexpectedly (see the job's log); it may have "
                "run out of memory. Lower MaxPayloadInMB or MaxConcurrentTransforms."
            ) from None
        except BaseException:
            self.writer.abort()
            raise
        self._progress(force=True)

    def _settle(self, obj: int, future: Future[Any]) -> None:
        result = future.result()
        if self.first_output is None and result is not None and result.records_out:
            self.first_output = time.perf_counter()
            self.first_records = result.records_in
        if result is None:
            self.writer.finish(obj)
        else:
            self.writer.write(result)
            self.done_bytes += result.size
            self.done_records += result.records_in
            self.failed += len(result.errors)
        self._progress()

    def _progress(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_progress >= _PROGRESS_SECONDS:
            self._last_progress = now
            self.ctx.log_metric("transform:bytes", self.done_bytes)
            self.ctx.log_metric("transform:records", self.done_records)
            self.ctx.log_metric("transform:failed", self.failed)

    # ------------------------------------------------------------------ reading
    def _tasks(self) -> Iterator[tuple[int, Task | TaskResult | None]]:
        """Blocks to predict, failed oversized records, and None when an input ends."""
        index = 0
        for number, obj in enumerate(self.inputs):
            layout: Layout | None = None
            for block in self._blocks(obj):
                if isinstance(block, Oversized):
                    reason = (
                        f"the record is {block.size} bytes, over MaxPayloadInMB "
                        f"({self.spec.max_payload_mb:g} MB)"
                    )
                    failed = TaskResult(index, number, b"", [error(block.line, block.head, reason)])
                    failed.records_in, failed.size = 1, block.size
                    yield number, failed
                    continue
                if layout is None:
                    layout = self._layout(obj, block)
                yield (
                    number,
                    Task(
                        index, number, block.first, block.data, block.size, layout, block.first == 1
                    ),
                )
                index += 1
            yield number, None

    def _blocks(self, obj: InputObject) -> Iterator[Block | Oversized]:
        if obj.kind == "rows":
            yield from arrow_blocks(self.engine, obj.uri, self.spec.payload_bytes)
            return
        whole = self.spec.split_type == "None"
        if obj.local is not None and not obj.gzip and not whole:
            yield from span_blocks(obj.local, self.spec.payload_bytes)
            return
        with open_input(obj, self.lake) as stream:
            yield from file_blocks(stream, self.spec.payload_bytes, whole=whole)

    def _layout(self, obj: InputObject, block: Block) -> Layout:
        if isinstance(block.data, pa.RecordBatch):
            return rows_layout(block.data.schema, self.plan)
        if obj.content_type == CSV:
            data = block.data.read() if isinstance(block.data, Span) else block.data
            return csv_layout(data, self.plan)
        return Layout(obj.content_type)

    def summary(self) -> dict[str, Any]:
        counts = [c.as_dict() for c in self.writer.counts]
        return {
            "RecordsIn": sum(c["RecordsIn"] for c in counts),
            "RecordsOut": sum(c["RecordsOut"] for c in counts),
            "RecordsFailed": sum(c["RecordsFailed"] for c in counts),
            "BytesIn": sum(c["BytesIn"] for c in counts),
            "BytesOut": sum(c["BytesOut"] for c in counts),
            "Objects": counts,
            "Chunks": self.chunks,
            "ChunkWindow": self.window,
            "ChunksInJobProcess": self.chunks_here,
            "MaxChunksInFlight": self.max_in_flight,
        }


def _start_pool(workers: int, algorithm: str) -> ProcessPoolExecutor:
    """Worker processes, started now, before this process predicts anything.

    When this process already has the model's library imported (a job forked from the
    warm job server has), the workers are forked from it: they start in milliseconds
    and share its imports. Otherwise they come from a fork server that imports the
    worker's modules (and the library the algorithm is named after) once, so starting
    W workers costs one import, not W. Either way no OpenMP threads (XGBoost, LightGBM)
    exist yet in the process that forks: the pool starts before any chunk is predicted
    here, and the fork server never predicts.
    """
    warm = algorithm in sys.modules or importlib.util.find_spec(algorithm) is None
    context: BaseContext
    if warm:
        context = get_context("fork")
    else:
        server = get_context("forkserver")
        server.set_forkserver_preload(["sagelab.serving._transform_worker", algorithm])
        context = server
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=warm_up, initargs=(algorithm,)
    )
    pool.submit(warm_up, algorithm)  # the first task starts every worker process
    return pool


def _metadata(lake: Lake, resolved: ResolvedModel) -> dict[str, Any]:
    """What training recorded beside the model (its features), checked against its checksum.

    Each worker fetches and checks every file of the model before loading it; the job's
    own process only needs this file, so it does not load the model (nor import its
    library) at all.

    Raises:
        InvalidInput: the file does not match its checksum, or lacks the feature names.
        NotFound: the file is gone.
    """
    bucket, prefix = Lake.parse_uri(resolved.model_data)
    body = lake.get(bucket, f"{prefix.rstrip('/')}/{_TRAINING_FILE}")
    digest = hashlib.sha256(body).hexdigest()
    if resolved.checksums.get(_TRAINING_FILE) != digest:
        raise InvalidInput(
            f"The model artifact at {resolved.model_data} does not match the checksum recorded "
            f"when it was resolved: {_TRAINING_FILE} has SHA-256 {digest}. It is damaged or was "
            "replaced, so it is not used. Resolve the reference again if the change was intended."
        )
    metadata: dict[str, Any] = json.loads(body)
    if not isinstance(metadata.get("FeatureNames"), list):
        raise InvalidInput(
            f"{_TRAINING_FILE} at {resolved.model_data} does not name the model's features; "
            "train the model again with this version of sagelab."
        )
    return metadata


def _accept(spec: TransformSpec, inputs: list[InputObject]) -> str:
    if spec.accept is not None:
        return spec.accept
    kind = inputs[0].content_type if inputs[0].kind == "file" else CSV
    return JSONLINES if kind in (JSON, JSONLINES) else CSV


def _timings(started: float, pipeline: _Pipeline, records: int) -> dict[str, Any]:
    """Start-up (to the first output back) and the pace after it, apart from the total."""
    ended = time.perf_counter()
    out: dict[str, Any] = {"TotalSeconds": round(ended - started, 3)}
    if pipeline.first_output is not None:
        out["StartSeconds"] = round(pipeline.first_output - started, 3)
        first = pipeline.first_records
        if ended > pipeline.first_output and records > first:
            out["RecordsPerSecondAfterStart"] = round(
                (records - first) / (ended - pipeline.first_output), 1
            )
    return out


def run_transform(
    ctx: JobContext, *, spec: dict[str, Any], model: dict[str, Any]
) -> dict[str, Any]:
    """Transform every input of ``spec`` with the resolved ``model``.

    Args:
        ctx: the job's context.
        spec: a :class:`TransformSpec`'s fields.
        model: the :class:`ResolvedModel`'s fields (resolved when the job was submitted).

    Returns:
        The job's result: the request as SageMaker describes it, the model, records
        in/out/failed and bytes in total and per input, chunks and timings.

    Raises:
        InvalidInput: inputs that do not fit the model (the job fails with ``ClientError:``).
        NotFound: nothing to read, or the model's files are gone.
    """
    started = time.perf_counter()
    request = TransformSpec.create(**spec)
    resolved = ResolvedModel(**model)
    store = cached_store(ctx.settings.db_url)
    lake = Lake.from_settings(ctx.settings)
    engine = SqlEngine(Catalog(store), lake)
    pool: ProcessPoolExecutor | None = None
    try:
        inputs = list_inputs(request, engine, lake)
        sizes = [o.size for o in inputs]
        small = (
            all(size is not None for size in sizes)
            and sum(size or 0 for size in sizes) <= _SMALL * request.payload_bytes
        )
        ctx.set_secondary_status("Downloading", f"Checking the model {resolved.reference}")
        metadata = _metadata(lake, resolved)
        plan = Plan(
            algorithm=resolved.algorithm,
            model=asdict(resolved),
            settings={
                "home": str(ctx.settings.home),
                "db_url": ctx.settings.db_url,
                "lake": ctx.settings.lake,
            },
            features=tuple(metadata["FeatureNames"]),
            positional=bool(metadata.get("PositionalFeatures", metadata.get("Target") is None)),
            whole=request.split_type == "None",
            single_record=request.batch_strategy == "SingleRecord",
            accept=_accept(request, inputs),
            assemble_line=request.assemble_with == "Line",
            join=request.join_source == "Input",
            input_filter=request.input_filter,
            output_filter=request.output_filter,
        )
        if not small:
            ctx.set_secondary_status("Downloading", f"Starting {request.workers} worker(s)")
            pool = _start_pool(request.workers, resolved.algorithm)
        if all(size is not None for size in sizes):
            ctx.log_metric("transform:bytes_total", sum(size or 0 for size in sizes), step=0)
        ctx.set_secondary_status(
            "Transforming",
            f"{len(inputs)} input(s) "
            + ("in the job's process" if small else f"on {request.workers} worker(s)")
            + f", {request.batch_strategy} up to {request.max_payload_mb:g} MB",
        )
        pipeline = _Pipeline(ctx, request, plan, inputs, lake, engine)
        pipeline.run(pool)
    finally:
        if pool is not None:
            # Workers end after the block in hand (at most one each); a stop already ended them.
            pool.shutdown(wait=True, cancel_futures=True)
        engine.close()
    seconds = time.perf_counter() - started
    summary = pipeline.summary()
    described = request.describe()
    described["TransformOutput"]["Accept"] = plan.accept
    if inputs[0].kind == "file":
        described["TransformInput"]["ContentType"] = request.content_type or inputs[0].content_type
    ctx.logger.info(
        "%d records in, %d out, %d failed, in %.1f s.",
        summary["RecordsIn"],
        summary["RecordsOut"],
        summary["RecordsFailed"],
        seconds,
    )
    return {
        "TransformJobName": ctx.job_name,
        **described,
        "ModelDataUrl": resolved.model_data,
        "ModelPackageArn": resolved.package,
        "TrainingJobName": resolved.training_job,
        "Algorithm": resolved.algorithm,
        **summary,
        "Workers": 0 if pipeline.chunks == pipeline.chunks_here else request.workers,
        "TransformTimeInSeconds": round(seconds, 3),
        "Timings": _timings(started, pipeline, summary["RecordsIn"]),
        "RecordsPerSecond": round(summary["RecordsIn"] / seconds, 1) if seconds > 0 else None,
    }
