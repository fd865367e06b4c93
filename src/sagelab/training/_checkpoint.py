"""Checkpoints of iterative training in the lake, and resuming from them.

Like SageMaker's ``CheckpointConfig``, a training job has a checkpoint location in
the lake (by default ``s3://artifacts/training/<job>/checkpoints/``). An
algorithm that can checkpoint saves its state there every ``checkpoint_every``
iterations; a job that starts with checkpoints already at its location (a resumed
job, or any job given the same location) continues from the latest one, and logs
its metrics from that round on.

The algorithm contract has no checkpoint hook yet, so this module adapts the
algorithms that can resume, by name. The ``xgboost`` adapter wraps
``xgboost.train`` for the duration of ``fit`` in the job's own process: it adds
``xgb_model`` (the checkpoint), lowers ``num_boost_round`` by the rounds already
done, and appends a callback that saves the booster. The proposed hook is an
optional ``Algorithm.fit(..., checkpoint=Checkpoints)`` for algorithms whose
``capabilities.checkpoints`` is set; this module would then pass its store
instead of wrapping.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

from sagelab.errors import InvalidInput, NotFound
from sagelab.lake import Lake
from sagelab.training._callbacks import JobCallbacks

__all__ = ["CheckpointStore", "XGBoostCheckpoints", "checkpoint_adapter", "supports_checkpoints"]

_POINTER = "checkpoint.json"
#: Hyperparameters that may change between a run and its resumption without a warning.
_MAY_CHANGE = {"num_round", "early_stopping_rounds", "nthread"}


class CheckpointStore:
    """The checkpoints at one lake location: the latest state and a pointer to it.

    Args:
        lake: the lake.
        uri: ``s3://bucket/prefix/`` where the checkpoints live.

    Raises:
        InvalidInput: the URI is not a lake location.
    """

    def __init__(self, lake: Lake, uri: str) -> None:
        bucket, prefix = Lake.parse_uri(uri)
        self.lake, self.uri = lake, uri
        self.bucket, self.prefix = bucket, prefix.rstrip("/")

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def latest(self) -> dict[str, Any] | None:
        """The latest checkpoint's record, or None when there is none.

        Raises:
            InvalidInput: the pointer file is damaged.
        """
        try:
            raw = self.lake.get(self.bucket, self._key(_POINTER))
        except NotFound:
            return None
        try:
            meta = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                f"The checkpoint record at {self.uri} is not valid JSON ({exc}); delete it to "
                "train from the start."
            ) from None
        if not isinstance(meta, dict) or not isinstance(meta.get("Round"), int):
            raise InvalidInput(f"The checkpoint record at {self.uri} is not one sagelab wrote.")
        return meta

    def state(self, meta: Mapping[str, Any]) -> bytes:
        """The saved state a record points at.

        Raises:
            NotFound: the state file is gone.
        """
        return self.lake.get(self.bucket, self._key(str(meta["File"])))

    def save(self, state: bytes, meta: Mapping[str, Any]) -> None:
        """Write a new state, then point at it, then delete the state it replaces."""
        self.lake.create_bucket(self.bucket, exist_ok=True)
        previous = self.latest()
        self.lake.put(self.bucket, self._key(str(meta["File"])), state)
        self.lake.put(
            self.bucket, self._key(_POINTER), json.dumps(dict(meta), indent=2).encode("utf-8")
        )
        if previous is not None and previous.get("File") != meta["File"]:
            with suppress(NotFound):
                self.lake.delete(self.bucket, self._key(str(previous["File"])))


class XGBoostCheckpoints:
    """Checkpoint and resume ``xgboost`` training (see the module docstring).

    Args:
        store: where the checkpoints live.
        every: save the booster every this many rounds (when the last save is at least
            :attr:`min_interval_seconds` old).
        callbacks: the job's callbacks (their step offset is set on resume).
        identity: what a checkpoint must match to be resumed from: ``Features`` (count),
            and, warned about when they differ, ``Fingerprint`` and ``HyperParameters``.
    """

    algorithm = "xgboost"
    #: Saves are at least this far apart: a booster of thousands of trees is megabytes,
    #: and writing it every few milliseconds would cost more than the training.
    min_interval_seconds = 2.0

    def __init__(
        self,
        store: CheckpointStore,
        every: int,
        callbacks: JobCallbacks,
        identity: Mapping[str, Any],
    ) -> None:
        self.store, self.every, self.callbacks = store, every, callbacks
        self.identity = dict(identity)
        self.resumed_from: int | None = None
        self.saved = 0
        self.last_saved: int | None = None
        self._last_save_time: float | None = None

    def _resume_state(self) -> tuple[int, bytes] | None:
        meta = self.store.latest()
        if meta is None:
            return None
        logger = self.callbacks.logger
        if meta.get("Algorithm") != self.algorithm:
            raise InvalidInput(
                f"The checkpoint at {self.store.uri} was written by {meta.get('Algorithm')!r}, "
                f"not {self.algorithm}; give the job another checkpoint location."
            )
        if meta.get("Features") != self.identity.get("Features"):
            raise InvalidInput(
                f"The checkpoint at {self.store.uri} was trained on {meta.get('Features')} "
                f"features, but the train channel has {self.identity.get('Features')}; resume "
                "with the same data, or give the job another checkpoint location."
            )
        if meta.get("Fingerprint") != self.identity.get("Fingerprint"):
            logger.warning(
                "The checkpoint at %s was trained on other data (%s); this run's data is %s. "
                "Continuing from it anyway.",
                self.store.uri,
                meta.get("Fingerprint"),
                self.identity.get("Fingerprint"),
            )
        before = meta.get("HyperParameters") or {}
        now = self.identity.get("HyperParameters") or {}
        changed = sorted(
            k
            for k in set(before) | set(now)
            if k not in _MAY_CHANGE and before.get(k) != now.get(k)
        )
        if changed:
            logger.warning("Hyperparameters changed since the checkpoint: %s.", ", ".join(changed))
        return int(meta["Round"]), self.store.state(meta)

    @contextmanager
    def around_fit(self) -> Iterator[None]:
        """While the algorithm fits: resume from the latest checkpoint and save new ones.

        Raises:
            InvalidInput: a checkpoint of another algorithm or another feature count.
        """
        xgb: Any = importlib.import_module("xgboost")
        original = xgb.train
        resume = self._resume_state()
        adapter = self

        base: type = xgb.callback.TrainingCallback

        class _Saver(base):
            def __init__(self, start: int) -> None:
                super().__init__()
                self.start = start

            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                done = self.start + epoch + 1
                if done % adapter.every == 0 and adapter._due():
                    adapter._save(model, done)
                return False

        def train(params: Any, dtrain: Any, num_boost_round: int = 10, **kwargs: Any) -> Any:
            start = 0
            if resume is not None:
                start, state = resume
                kwargs["xgb_model"] = bytearray(state)
                adapter.resumed_from = start
                adapter.callbacks.step_offset = start
                adapter.callbacks.logger.info(
                    "Resuming from the checkpoint at round %d of %d (%s).",
                    start,
                    num_boost_round,
                    adapter.store.uri,
                )
                num_boost_round = max(0, num_boost_round - start)
                if num_boost_round == 0:
                    # Nothing left to train; early stopping has no rounds to watch.
                    kwargs["callbacks"] = []
            kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), _Saver(start)]
            return original(params, dtrain, num_boost_round=num_boost_round, **kwargs)

        xgb.train = train
        try:
            yield
        finally:
            xgb.train = original

    def _due(self) -> bool:
        return (
            self._last_save_time is None
            or time.monotonic() - self._last_save_time >= self.min_interval_seconds
        )

    def _save(self, booster: Any, done: int) -> None:
        with self.callbacks.deferred_stop():
            meta = {
                "Algorithm": self.algorithm,
                "Round": done,
                "File": f"xgboost-round-{done:07d}.ubj",
                "Time": dt.datetime.now(dt.UTC).isoformat(),
                **self.identity,
            }
            self.store.save(bytes(booster.save_raw("ubj")), meta)
            self.saved += 1
            self.last_saved = done
            self._last_save_time = time.monotonic()
            self.callbacks.logger.info("Checkpoint saved at round %d.", done)

    def summary(self) -> dict[str, Any]:
        """What the job records about its checkpoints."""
        return {
            "S3Uri": self.store.uri,
            "EveryRounds": self.every,
            "ResumedFromRound": self.resumed_from,
            "Saved": self.saved,
            "LastSavedRound": self.last_saved,
        }


_ADAPTERS = {"xgboost": XGBoostCheckpoints}


def supports_checkpoints(algorithm: str) -> bool:
    """Whether training ``algorithm`` can checkpoint and resume."""
    return algorithm in _ADAPTERS


def checkpoint_adapter(algorithm: str) -> type[XGBoostCheckpoints] | None:
    """The checkpoint adapter of ``algorithm``, or None when it trains in one go."""
    return _ADAPTERS.get(algorithm)
