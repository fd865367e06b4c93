"""Where the lake's bytes live: a local folder, or any fsspec filesystem.

Backends implement primitives only (read, stat, scan, remove, stage and
publish a file). Name checks, checksums and the atomic-write protocol live
once, in :class:`sagelab.lake.Lake`, above them.
"""

from __future__ import annotations

import abc
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from sagelab.errors import Conflict
from sagelab.lake._keys import RESERVED_PREFIX, TEMP_PREFIX, confine

__all__ = ["Entry", "FsspecBackend", "LocalBackend", "ObjectBackend", "backend_for"]

#: Marks a bucket on stores whose folders vanish when empty (S3 and friends).
BUCKET_MARKER = RESERVED_PREFIX + "bucket"
# Objects up to this size are published in one request from memory; see FsspecBackend.publish.
_PIPE_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Entry:
    """What a backend knows about one file or folder.

    Attributes:
        path: ``/``-separated, relative to the backend's root.
        size: bytes (0 for folders).
        mtime: last modification, timezone-aware.
        etag: the store's own ETag when it keeps one (S3), else None.
        is_dir: True for a folder.
    """

    path: str
    size: int
    mtime: datetime
    etag: str | None = None
    is_dir: bool = False


class ObjectBackend(abc.ABC):
    """A tree of files under one root, addressed by ``/``-separated relative paths.

    Contract:
        * Paths reaching a backend were already checked by :mod:`sagelab.lake._keys`;
          a backend only maps them under its root (and may refuse more, such as
          a symlink that leads outside).
        * A missing file raises :class:`FileNotFoundError`; the caller turns it
          into a user-facing error.
        * Writes go through :meth:`stage` then :meth:`publish`: a staged file is a
          local file no reader can see, and ``publish`` makes it appear at its
          path whole, in one step, or not at all. Folders are created as needed.
        * :meth:`scan` may yield the lake's own reserved names (temporary files,
          markers); the caller filters them.
    """

    @abc.abstractmethod
    def open_read(self, path: str) -> BinaryIO:
        """Open a file for reading. Raises FileNotFoundError if it is missing or a folder."""

    @abc.abstractmethod
    def stat(self, path: str) -> Entry:
        """Describe a file or folder. Raises FileNotFoundError if there is nothing there."""

    @abc.abstractmethod
    def scan(self, path: str, *, recursive: bool) -> Iterator[Entry]:
        """Recursive: every file beneath ``path``. Else: files and folders directly in it.

        A missing ``path`` yields nothing.
        """

    @abc.abstractmethod
    def remove(self, path: str, *, recursive: bool = False) -> None:
        """Delete a file, or (recursive) a folder and all it holds. Raises FileNotFoundError."""

    @abc.abstractmethod
    def make_dir(self, path: str) -> None:
        """Create a folder that persists while empty (a bucket)."""

    @abc.abstractmethod
    def stage(self, path: str) -> str:
        """Create an empty local file where the future content of ``path`` is written.

        Raises:
            Conflict: If a parent of ``path`` is a file.
        """

    @abc.abstractmethod
    def publish(self, staged: str, path: str) -> None:
        """Make the staged file's content appear at ``path`` atomically; the staged file is gone.

        Raises:
            Conflict: If ``path`` is a folder.
        """

    @abc.abstractmethod
    def native_path(self, path: str) -> str:
        """``path`` as the path on :attr:`filesystem`."""

    @property
    @abc.abstractmethod
    def filesystem(self) -> Any:
        """The fsspec filesystem that reaches :meth:`native_path` paths."""

    def read(self, path: str) -> bytes:
        """The whole content of a file. Raises FileNotFoundError."""
        with self.open_read(path) as fh:
            return fh.read()

    def local_path(self, path: str) -> str | None:
        """A real local path for ``path`` when the store is local, else None."""
        return None

    def discard(self, staged: str) -> None:
        """Forget a staged file that will not be published (idempotent)."""
        staged_path = Path(staged)
        if staged_path.is_dir() and not staged_path.is_symlink():
            shutil.rmtree(staged_path, ignore_errors=True)
        else:
            staged_path.unlink(missing_ok=True)


def backend_for(root: str | os.PathLike[str], storage_options: dict[str, Any]) -> ObjectBackend:
    """Pick the backend for a root: a plain path or ``file://`` is local, any other URL fsspec."""
    text = os.fspath(root)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return LocalBackend(Path(text))
    if scheme in ("file", "local"):
        return LocalBackend(Path(rest))
    return FsspecBackend(text, storage_options)


class LocalBackend(ObjectBackend):
    """A folder on this machine: temporary file in the target folder, fsync, ``os.replace``."""

    def __init__(self, root: Path) -> None:
        root = root.expanduser()
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()

    def _resolve(self, path: str) -> Path:
        if not path:
            return self.root
        # Confine to the bucket folder, not only the root, so nothing reaches a sibling bucket.
        bucket, _, rest = path.partition("/")
        base = confine(self.root, bucket)
        return confine(base, rest) if rest else base

    def open_read(self, path: str) -> BinaryIO:
        target = self._resolve(path)
        if target.is_dir():
            raise FileNotFoundError(path)
        return target.open("rb")

    def stat(self, path: str) -> Entry:
        st = self._resolve(path).stat()
        is_dir = stat.S_ISDIR(st.st_mode)
        return Entry(path, 0 if is_dir else st.st_size, _from_ns(st.st_mtime_ns), None, is_dir)

    def scan(self, path: str, *, recursive: bool) -> Iterator[Entry]:
        top = self._resolve(path)
        if not top.is_dir():
            return
        prefix = f"{path}/" if path else ""
        pending = [(top, prefix)]
        while pending:
            folder, rel = pending.pop()
            try:
                entries = list(os.scandir(folder))
            except FileNotFoundError:  # removed while we walked
                continue
            for item in entries:
                # Symlinks are neither listed nor followed: a link may lead outside the lake.
                if item.is_dir(follow_symlinks=False):
                    if recursive:
                        pending.append((Path(item.path), f"{rel}{item.name}/"))
                    else:
                        yield Entry(
                            rel + item.name, 0, _from_ns(item.stat().st_mtime_ns), None, True
                        )
                elif item.is_file(follow_symlinks=False):
                    st = item.stat(follow_symlinks=False)
                    yield Entry(rel + item.name, st.st_size, _from_ns(st.st_mtime_ns))

    def remove(self, path: str, *, recursive: bool = False) -> None:
        target = self._resolve(path)
        if recursive and target.is_dir():
            shutil.rmtree(target)
            return
        if target.is_dir():
            raise FileNotFoundError(path)
        target.unlink()
        self._prune(target.parent)

    def _prune(self, folder: Path) -> None:
        """Remove folders left empty by a delete, up to (not including) the bucket."""
        while folder.parent != self.root and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:  # not empty, or already gone: either way stop here
                return
            folder = folder.parent

    def make_dir(self, path: str) -> None:
        self._resolve(path).mkdir(parents=True, exist_ok=True)

    def stage(self, path: str) -> str:
        target = self._resolve(path)
        # Same folder as the target, so os.replace is a rename within one file system.
        name = TEMP_PREFIX + uuid.uuid4().hex + _suffix(target.name)
        for _ in range(5):
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                staged = target.parent / name
                staged.open("xb").close()
                return str(staged)
            except (FileExistsError, NotADirectoryError) as exc:
                raise _parent_is_file(path) from exc
            except FileNotFoundError:
                # A concurrent delete pruned the empty folder between mkdir and open; retry.
                continue
        raise Conflict(
            f"Could not create a temporary file for {path!r}: its folder keeps vanishing."
        )

    def publish(self, staged: str, path: str) -> None:
        target = self._resolve(path)
        fd = os.open(staged, os.O_RDWR)  # Windows cannot fsync a read-only descriptor
        try:
            os.fsync(fd)  # the data reaches the disk before the name points at it
        finally:
            os.close(fd)
        try:
            os.replace(staged, target)
        except IsADirectoryError as exc:
            raise _is_folder(path) from exc
        _fsync_dir(target.parent)

    def native_path(self, path: str) -> str:
        return str(self._resolve(path))

    def local_path(self, path: str) -> str | None:
        return str(self._resolve(path))

    @property
    def filesystem(self) -> Any:
        from fsspec.implementations.local import LocalFileSystem

        return LocalFileSystem()


class FsspecBackend(ObjectBackend):
    """Any fsspec filesystem (``memory://``, ``s3://`` through s3fs, ...).

    A staged file is a local temporary file; publishing uploads it. Object
    stores make an upload visible only once it is complete, which is the
    atomicity the lake needs, so nothing is renamed remotely. Like S3, object
    stores let ``a`` and ``a/b`` both be objects; a local lake cannot.
    """

    def __init__(self, url: str, storage_options: dict[str, Any]) -> None:
        import fsspec

        self.url = url
        self.fs, root = fsspec.core.url_to_fs(url, **storage_options)
        self.root = root.rstrip("/")

    def _full(self, path: str) -> str:
        return f"{self.root}/{path}" if path else self.root

    def _relative(self, full: str) -> str:
        full = self.fs._strip_protocol(full).rstrip("/")
        return str(PurePosixPath(full).relative_to(PurePosixPath(self.root or "/")))

    def _entry(self, info: dict[str, Any]) -> Entry:
        etag = info.get("ETag") or info.get("etag")
        is_dir = info.get("type") == "directory"
        return Entry(
            self._relative(info["name"]),
            0 if is_dir else int(info.get("size") or 0),
            _mtime(info),
            etag.strip('"') if isinstance(etag, str) else None,
            is_dir,
        )

    def open_read(self, path: str) -> BinaryIO:
        try:
            return self.fs.open(self._full(path), "rb")
        except IsADirectoryError as exc:
            raise FileNotFoundError(path) from exc

    def read(self, path: str) -> bytes:
        # One request, and a private copy: fsspec's memory filesystem hands every
        # opener the same file object, so concurrent readers would share a position.
        try:
            return self.fs.cat_file(self._full(path))
        except IsADirectoryError as exc:
            raise FileNotFoundError(path) from exc

    def stat(self, path: str) -> Entry:
        return self._entry(self.fs.info(self._full(path)))

    def scan(self, path: str, *, recursive: bool) -> Iterator[Entry]:
        full = self._full(path)
        self.fs.invalidate_cache(full)  # other processes write to shared stores
        try:
            if recursive:
                found = self.fs.find(full, detail=True).values()
            else:
                found = self.fs.ls(full, detail=True)
        except FileNotFoundError:
            return
        for info in found:
            if self.fs._strip_protocol(info["name"]).rstrip("/") != full:
                yield self._entry(info)

    def remove(self, path: str, *, recursive: bool = False) -> None:
        full = self._full(path)
        if recursive:
            if not self.fs.exists(full):
                raise FileNotFoundError(path)
            self.fs.rm(full, recursive=True)
        else:
            self.fs.rm_file(full)

    def make_dir(self, path: str) -> None:
        full = self._full(path)
        self.fs.makedirs(full, exist_ok=True)
        # Object stores have no empty folders: a marker object keeps the bucket alive.
        self.fs.pipe_file(f"{full}/{BUCKET_MARKER}", b"")

    def stage(self, path: str) -> str:
        fd, staged = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=_suffix(path.rsplit("/", 1)[-1]))
        os.close(fd)
        return staged

    def publish(self, staged: str, path: str) -> None:
        full = self._full(path)
        try:
            if os.path.getsize(staged) <= _PIPE_LIMIT:
                # One request; and fsspec's memory filesystem shows a put_file'd file
                # while it is still being written, but a piped one only when whole.
                with open(staged, "rb") as fh:
                    self.fs.pipe_file(full, fh.read())
            else:
                self.fs.put_file(staged, full)
        except (FileExistsError, NotADirectoryError) as exc:
            raise _parent_is_file(path) from exc
        except IsADirectoryError as exc:
            raise _is_folder(path) from exc
        os.unlink(staged)

    def native_path(self, path: str) -> str:
        return self._full(path)

    @property
    def filesystem(self) -> Any:
        return self.fs


def _parent_is_file(path: str) -> Conflict:
    return Conflict(
        f"Cannot write the object {path!r}: one of its parent folders is an object. "
        "On this store a key cannot be both an object and a folder of objects; choose another key."
    )


def _is_folder(path: str) -> Conflict:
    return Conflict(
        f"Cannot write the object {path!r}: a folder of other objects has that name. "
        "On this store a key cannot be both an object and a folder of objects; choose another "
        "key, or delete the objects under it first."
    )


def _suffix(name: str) -> str:
    """The file's extension(s), kept on temporary names so writers that infer formats still do."""
    suffixes = "".join(PurePosixPath(name).suffixes)
    if len(suffixes) > 40:
        suffixes = PurePosixPath(name).suffix
    return suffixes if len(suffixes) <= 40 else ""


def _from_ns(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


def _mtime(info: dict[str, Any]) -> datetime:
    """The modification time from an fsspec info dict, whatever the implementation calls it."""
    for name in ("LastModified", "mtime", "last_modified", "updated", "modified", "created"):
        value = info.get(name)
        if isinstance(value, datetime):
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, tz=UTC)
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.fromtimestamp(0, tz=UTC)


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself; not every platform can open a folder, so best effort."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
