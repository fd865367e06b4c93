"""Checkpoints of iterative training: the job's local folder, mirrored to the lake.

Like SageMaker's ``CheckpointConfig``, a training job has a checkpoint location in
the lake (by default ``s3://artifacts/training/<job>/checkpoints/``) and a local
folder (the job's :attr:`~sagelab.jobs.JobContext.checkpoint_dir`, like
``/opt/ml/checkpoints``). Before ``fit`` the location is copied into the folder;
an algorithm whose ``capabilities.checkpoints`` is set gets the folder through
``fit(..., checkpoint=...)``, saves its state there every ``checkpoint_every``
iterations and resumes from what it finds (a resumed job, or any job given the
same location); after each save, and once more when ``fit`` ends however it ends,
the folder is copied back, and then emptied. What the files hold is the algorithm's business (see
:class:`sagelab.algorithms.Algorithm` and its ``Checkpoint`` protocol): this
module moves files, and remembers the data the checkpoints were trained on.
"""

from __future__ import annotations

import json
import shutil
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from sagelab.errors import InvalidInput, NotFound
from sagelab.lake import Lake
from sagelab.training._callbacks import JobCallbacks

__all__ = ["LakeCheckpoint"]

#: The training stage's own record at a checkpoint location (the data it was trained on).
_RECORD = "sagelab-training.json"


def _stat(path: Path) -> tuple[int, int, int]:
    # A replaced file has a new inode, even when its size and time stamp are the same.
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


class LakeCheckpoint:
    """The checkpoint a training job hands to its algorithm: a local folder mirrored to a
    lake location (a :class:`~sagelab.algorithms._base.Checkpoint`).

    Args:
        lake: the lake.
        uri: ``s3://bucket/prefix/`` where the checkpoints live.
        directory: the job's local checkpoint folder (emptied by :meth:`pull`).
        every: save every this many iterations (when the last save is at least
            :attr:`min_interval_seconds` old).
        callbacks: the job's callbacks (log; copies are not cut short by a stop).
        job: the job's name, recorded at the location.
        fingerprint: the train channel's fingerprint, recorded at the location with the
            first checkpoint; a later job that pulls it is warned when its data differ.

    Raises:
        InvalidInput: the URI is not a lake location.
    """

    #: Saves are at least this far apart: a booster of thousands of trees is megabytes,
    #: and writing it every few milliseconds would cost more than the training.
    min_interval_seconds = 2.0

    def __init__(
        self,
        lake: Lake,
        uri: str,
        directory: Path,
        every: int,
        callbacks: JobCallbacks,
        *,
        job: str,
        fingerprint: str | None = None,
    ) -> None:
        bucket, prefix = Lake.parse_uri(uri)
        self.lake, self.uri = lake, uri
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.directory = Path(directory)
        self.every, self.callbacks = int(every), callbacks
        self.job, self.fingerprint = job, fingerprint
        self.resumed_from: int | None = None
        self.saves = 0
        self.last_saved: int | None = None
        self._last_save_time: float | None = None
        self._mirrored: dict[str, tuple[int, int, int]] = {}
        self._pulled = False
        self._recorded = False

    # ------------------------------------------------------------------ the Checkpoint protocol
    @property
    def location(self) -> str:
        return self.uri

    def due(self, iteration: int) -> bool:
        """Every ``every`` iterations, at most once per :attr:`min_interval_seconds`."""
        return iteration % self.every == 0 and (
            self._last_save_time is None
            or time.monotonic() - self._last_save_time >= self.min_interval_seconds
        )

    def saved(self, iteration: int) -> None:
        """Copy the new checkpoint to the lake (a stop waits for the copy to end).

        Raises:
            JobStopped: a stop arrived meanwhile (once the copy is complete).
        """
        with self.callbacks.deferred_stop():
            self.push()
            self.saves += 1
            self.last_saved = iteration
            self._last_save_time = time.monotonic()
            self.callbacks.logger.info(
                "Checkpoint of iteration %d saved to %s.", iteration, self.uri
            )

    def resumed(self, iteration: int) -> None:
        self.resumed_from = iteration

    # ------------------------------------------------------------------ moving the folder
    def _key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def _empty(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for child in self.directory.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()

    def pull(self) -> None:
        """Empty the local folder and copy the location's checkpoints into it.

        Raises:
            InvalidInput: the stage's record at the location is damaged.
        """
        self._empty()
        try:
            listing = self.lake.list(self.bucket, f"{self.prefix}/" if self.prefix else "")
        except NotFound:  # no bucket yet: nothing was saved
            listing = None
        root = self.directory.resolve()
        for obj in listing.objects if listing is not None else []:
            rel = obj.key[len(self.prefix) + 1 :] if self.prefix else obj.key
            if rel == _RECORD:
                self._check_record(self.lake.get(self.bucket, obj.key))
                continue
            target = (self.directory / rel).resolve()
            if not target.is_relative_to(root):  # the lake's keys cannot, but never trust
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with self.lake.open_read(self.bucket, obj.key) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            self._mirrored[rel] = _stat(target)
        self._pulled = True

    def _check_record(self, raw: bytes) -> None:
        try:
            record = json.loads(raw)
        except json.JSONDecodeError:
            raise InvalidInput(
                f"The record {_RECORD} at {self.uri} is not valid JSON; delete it, or give the "
                "job another checkpoint location."
            ) from None
        before = record.get("Fingerprint") if isinstance(record, dict) else None
        if before is not None and self.fingerprint is not None and before != self.fingerprint:
            self.callbacks.logger.warning(
                "The checkpoint at %s was trained on other data (%s); this run's data is %s. "
                "Continuing from it anyway.",
                self.uri,
                before,
                self.fingerprint,
            )

    def push(self) -> None:
        """Copy what changed in the local folder to the lake, and delete what it dropped.

        Files in subfolders go first and files at the top last, so the lake never has a
        pointer to state that is not there yet; names starting with ``.`` stay local.
        Only files this mirror copied are ever deleted. Nothing happens before
        :meth:`pull` (a folder never pulled could hide what is in the lake).
        """
        if not self._pulled:
            return
        with self.callbacks.deferred_stop():
            local: dict[str, Path] = {}
            for path in self.directory.rglob("*"):
                rel = path.relative_to(self.directory).as_posix()
                if path.is_file() and not any(p.startswith(".") for p in rel.split("/")):
                    local[rel] = path
            changed = [rel for rel, path in local.items() if self._mirrored.get(rel) != _stat(path)]
            if changed:
                self.lake.create_bucket(self.bucket, exist_ok=True)
            for rel in sorted(changed, key=lambda r: ("/" not in r, r)):
                stat = _stat(local[rel])
                with local[rel].open("rb") as f:
                    self.lake.put(self.bucket, self._key(rel), f)
                self._mirrored[rel] = stat
            for rel in sorted(set(self._mirrored) - set(local)):
                with suppress(NotFound):
                    self.lake.delete(self.bucket, self._key(rel))
                del self._mirrored[rel]
            if changed and not self._recorded:
                record = {"TrainingJobName": self.job, "Fingerprint": self.fingerprint}
                self.lake.put(self.bucket, self._key(_RECORD), json.dumps(record).encode())
                self._recorded = True

    def finish(self) -> None:
        """After ``fit``, however it ended: copy the last changes, then empty the local
        folder (the lake holds the checkpoints; a failed copy leaves them in place)."""
        if self._pulled:
            self.push()
            self._empty()

    def summary(self) -> dict[str, Any]:
        """What the job records about its checkpoints."""
        return {
            "S3Uri": self.uri,
            "EveryRounds": self.every,
            "ResumedFromRound": self.resumed_from,
            "Saved": self.saves,
            "LastSavedRound": self.last_saved,
        }
