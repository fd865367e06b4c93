"""The lake's object store: buckets and keys with S3's semantics, on a folder or any fsspec URL.

Inside sagelab, ``s3://bucket/key`` names an object of the lake: the lake
plays S3's role. Every write is atomic (staged, then published whole) and
every name is checked by :mod:`sagelab.lake._keys` before it reaches storage.

ETags: objects written through :meth:`Lake.put`, :meth:`Lake.open_write` or
:meth:`Lake.copy` get the MD5 of their content, computed while the bytes
stream through. Where the store keeps its own ETag (S3), :meth:`Lake.head`
reports the store's, which is the same MD5 for objects written here in one
request. Elsewhere :meth:`Lake.head` computes the MD5 on demand (one read of
the object) and remembers it while the object's size and modification time
stay the same. :meth:`Lake.list` reports an ETag only when it is free (kept
by the store, or remembered); otherwise ``None``: call ``head`` for it.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from sagelab.errors import Conflict, InvalidInput, NotFound, closest
from sagelab.lake._backends import ObjectBackend, backend_for
from sagelab.lake._keys import TEMP_PREFIX, check_bucket, check_key, check_prefix, is_reserved

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

    from sagelab.config import Settings

__all__ = ["Lake", "ListResult", "ObjectInfo", "ObjectWriter"]

_CHUNK = 1024 * 1024
_ETAG_CACHE_SIZE = 4096
# A path that is missing, or runs through a file as if it were a folder.
_MISSING = (FileNotFoundError, NotADirectoryError)


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One object of the lake.

    Attributes:
        bucket: The bucket holding it.
        key: Its key within the bucket.
        size: Its size in bytes.
        etag: The MD5 hex of its content (see the module docstring), or None in listings
            when it is not known without reading the object.
        last_modified: When it was last written, timezone-aware.
    """

    bucket: str
    key: str
    size: int
    etag: str | None
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class ListResult:
    """The answer to :meth:`Lake.list`, sorted like S3's.

    Attributes:
        objects: The objects whose keys start with the prefix (and, with a delimiter,
            hold no delimiter after it).
        common_prefixes: With a delimiter, each distinct ``prefix + ... + delimiter``
            that groups deeper keys, like S3's CommonPrefixes.
    """

    objects: list[ObjectInfo] = field(default_factory=list)
    common_prefixes: list[str] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        """The keys of :attr:`objects`."""
        return [obj.key for obj in self.objects]


class ObjectWriter(io.BufferedIOBase):
    """A binary file whose bytes become an object when its ``open_write`` block ends well.

    It hashes what passes through, so the ETag costs no second read. After the
    block, :attr:`info` describes the published object.
    """

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._size = 0
        self.info: ObjectInfo | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer, /) -> int:
        if self.closed:
            raise ValueError("write to a closed lake object writer")
        if isinstance(data, str):
            raise TypeError("a lake object takes bytes, not str; encode the text first")
        view = memoryview(data).cast("B")
        self._raw.write(view)
        self._md5.update(view)
        self._size += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self._size

    def flush(self) -> None:
        if not self.closed:
            self._raw.flush()

    def close(self) -> None:
        if self.closed:
            return
        try:
            super().close()  # flushes while the raw file is still open
        finally:
            self._raw.close()


class Lake:
    """Buckets of objects under one root: a local folder or any fsspec URL.

    Args:
        root: A local path, ``file://`` URL, or fsspec URL (``memory://x``,
            ``s3://bucket/prefix``). A local root is created if missing.
        storage_options: Passed to fsspec for a remote root (credentials, endpoint).

    Example:
        >>> lake = Lake("memory://docs")
        >>> lake.create_bucket("raw", exist_ok=True)
        >>> lake.put("raw", "hello.txt", b"hi").size
        2
    """

    def __init__(
        self, root: str | os.PathLike[str], *, storage_options: Mapping[str, Any] | None = None
    ) -> None:
        self._backend: ObjectBackend = backend_for(root, dict(storage_options or {}))
        local = self._backend.local_path("")
        self.root: str = local if local is not None else os.fspath(root)
        self._etags: OrderedDict[tuple[str, int, datetime], str] = OrderedDict()
        self._etags_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Lake:
        """The lake named by ``settings.lake``."""
        return cls(settings.lake)

    def __repr__(self) -> str:
        return f"Lake({self.root!r})"

    # -- buckets ---------------------------------------------------------------------------

    def create_bucket(self, name: str, *, exist_ok: bool = False) -> None:
        """Create a bucket.

        Raises:
            InvalidInput: If the name breaks S3's bucket naming rules.
            Conflict: If the bucket exists and ``exist_ok`` is false.
        """
        check_bucket(name)
        if self.bucket_exists(name):
            if exist_ok:
                return
            raise Conflict(f"The bucket {name!r} already exists. Use it, or pick another name.")
        self._backend.make_dir(name)

    def delete_bucket(self, name: str, *, force: bool = False) -> None:
        """Delete a bucket; with ``force``, also every object in it.

        Raises:
            NotFound: If there is no such bucket.
            Conflict: If the bucket holds objects and ``force`` is false.
        """
        self._require_bucket(name)
        if not force:
            for entry in self._backend.scan(name, recursive=True):
                key = entry.path[len(name) + 1 :]
                if not is_reserved(key):
                    raise Conflict(
                        f"The bucket {name!r} is not empty (it holds {key!r}). Delete its "
                        "objects first, or pass force=True to delete them with it."
                    )
        self._backend.remove(name, recursive=True)

    def list_buckets(self) -> list[str]:
        """The names of all buckets, sorted."""
        names = []
        for entry in self._backend.scan("", recursive=False):
            if entry.is_dir:
                try:
                    names.append(check_bucket(entry.path))
                except InvalidInput:  # a stray folder under the root is not a bucket
                    continue
        return sorted(names)

    def bucket_exists(self, name: str) -> bool:
        """Whether the bucket exists.

        Raises:
            InvalidInput: If the name breaks S3's bucket naming rules.
        """
        check_bucket(name)
        try:
            return self._backend.stat(name).is_dir
        except _MISSING:
            return False

    # -- objects ---------------------------------------------------------------------------

    def put(
        self, bucket: str, key: str, data: bytes | bytearray | memoryview | BinaryIO
    ) -> ObjectInfo:
        """Store ``data`` (bytes, or a binary file read to its end) at ``key``, replacing any object.

        Raises:
            InvalidKey: If the key is not allowed.
            InvalidInput: If ``data`` is neither bytes nor a binary file.
            NotFound: If the bucket does not exist.
            Conflict: If the key collides with a folder of other keys on a file system.
        """
        is_bytes = isinstance(data, bytes | bytearray | memoryview)
        if not is_bytes and (isinstance(data, str) or not hasattr(data, "read")):
            raise InvalidInput(
                f"put() stores bytes or a binary file; got {type(data).__name__}. "
                "Encode text first, e.g. text.encode('utf-8')."
            )
        with self.open_write(bucket, key) as writer:
            if isinstance(data, bytes | bytearray | memoryview):
                writer.write(data)
            else:
                shutil.copyfileobj(data, writer, _CHUNK)
        # open_write sets info when its block ends well, which it did if we are here.
        return cast(ObjectInfo, writer.info)

    def get(self, bucket: str, key: str) -> bytes:
        """The content of an object.

        Raises:
            InvalidKey: If the key is not allowed.
            NotFound: If the bucket or the object does not exist.
        """
        rel = self._rel(bucket, key)
        try:
            return self._backend.read(rel)
        except _MISSING:
            raise self._not_found(bucket, key) from None

    def open_read(self, bucket: str, key: str) -> BinaryIO:
        """Open an object for streaming reads; close it when done.

        Raises:
            InvalidKey: If the key is not allowed.
            NotFound: If the bucket or the object does not exist.
        """
        rel = self._rel(bucket, key)
        try:
            return self._backend.open_read(rel)
        except _MISSING:
            raise self._not_found(bucket, key) from None

    @contextmanager
    def open_write(self, bucket: str, key: str) -> Iterator[ObjectWriter]:
        """Write an object as a stream; it appears only when the block exits without error.

        Example:
            >>> with lake.open_write("raw", "big.bin") as fh:  # doctest: +SKIP
            ...     fh.write(b"...")
            >>> fh.info.etag  # doctest: +SKIP

        Raises:
            InvalidKey: If the key is not allowed.
            NotFound: If the bucket does not exist.
            Conflict: If the key collides with a folder of other keys on a file system.
        """
        rel = self._writable(bucket, key)
        staged = self._backend.stage(rel)
        try:
            with ObjectWriter(open(staged, "wb")) as writer:
                yield writer
            self._backend.publish(staged, rel)
        except BaseException:
            # Whatever went wrong, including KeyboardInterrupt: no object, no litter.
            self._backend.discard(staged)
            raise
        writer.info = self._published(bucket, key, writer._md5.hexdigest(), writer.tell())

    @contextmanager
    def write_path(self, bucket: str, key: str) -> Iterator[str]:
        """A local file path to write (DuckDB ``COPY ... TO``, PyArrow), published at ``key`` on exit.

        The path is a hidden temporary file, on the lake's own folder when the
        lake is local, else on local disk and uploaded on exit. Keep the key's
        extension in mind: the path carries it, so writers that infer a format
        from the name still do. Nothing is published if the block raises.

        Raises:
            InvalidKey: If the key is not allowed.
            NotFound: If the bucket does not exist.
            InvalidInput: If the writer left a folder, not a file, at the path.
            Conflict: If the key collides with a folder of other keys on a file system.
        """
        rel = self._writable(bucket, key)
        staged = self._backend.stage(rel)
        try:
            yield staged
            if not os.path.isfile(staged):
                raise InvalidInput(
                    f"write_path() publishes one file, but the writer left "
                    f"{'a folder' if os.path.isdir(staged) else 'nothing'} at the path for "
                    f"{key!r}. Write a single file (e.g. COPY without PARTITION_BY)."
                )
            self._backend.publish(staged, rel)
        except BaseException:
            self._backend.discard(staged)
            raise

    def head(self, bucket: str, key: str) -> ObjectInfo:
        """Describe an object without reading it (except to compute an MD5 once, see above).

        Raises:
            InvalidKey: If the key is not allowed.
            NotFound: If the bucket or the object does not exist.
        """
        rel = self._rel(bucket, key)
        try:
            entry = self._backend.stat(rel)
            if entry.is_dir:
                raise FileNotFoundError(rel)
            etag = entry.etag or self._cached_etag(rel, entry.size, entry.mtime)
            if etag is None:
                etag = self._md5_of(rel)
                self._remember_etag(rel, entry.size, entry.mtime, etag)
        except _MISSING:
            raise self._not_found(bucket, key) from None
        return ObjectInfo(bucket, key, entry.size, etag, entry.mtime)

    def exists(self, bucket: str, key: str) -> bool:
        """Whether the object exists (False too when the bucket does not).

        Raises:
            InvalidKey: If the key is not allowed.
        """
        rel = self._rel(bucket, key)
        try:
            return not self._backend.stat(rel).is_dir
        except _MISSING:
            return False

    def list(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        *,
        recursive: bool = True,
    ) -> ListResult:
        """List objects whose keys start with ``prefix``, with S3's semantics.

        Args:
            bucket: The bucket to list.
            prefix: Keep keys starting with this string (not only whole folders:
                ``logs/2024`` matches ``logs/2024-01.csv``).
            delimiter: Group keys that hold this after the prefix into
                ``common_prefixes`` (``"/"`` lists one folder level).
            recursive: False is shorthand for ``delimiter="/"``.

        Raises:
            InvalidKey: If the prefix is not allowed.
            NotFound: If the bucket does not exist.
        """
        check_prefix(prefix)
        self._require_bucket(bucket)
        if delimiter is None and not recursive:
            delimiter = "/"
        folder = prefix.rpartition("/")[0]
        objects: list[ObjectInfo] = []
        groups: set[str] = set()
        for entry in self._backend.scan(f"{bucket}/{folder}" if folder else bucket, recursive=True):
            key = entry.path[len(bucket) + 1 :]
            if not key.startswith(prefix) or is_reserved(key):
                continue
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            if cut >= 0:
                groups.add(key[: cut + len(delimiter or "")])
                continue
            etag = entry.etag or self._cached_etag(entry.path, entry.size, entry.mtime)
            objects.append(ObjectInfo(bucket, key, entry.size, etag, entry.mtime))
        # Code point order is UTF-8 byte order, which is S3's order.
        objects.sort(key=lambda obj: obj.key)
        return ListResult(objects, sorted(groups))

    def delete(self, bucket: str, key: str) -> None:
        """Delete an object.

        Raises:
            InvalidKey: If the key is not allowed.
            NotFound: If the bucket or the object does not exist.
        """
        rel = self._rel(bucket, key)
        try:
            if self._backend.stat(rel).is_dir:
                raise FileNotFoundError(rel)
            self._backend.remove(rel)
        except _MISSING:
            raise self._not_found(bucket, key) from None

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        """Delete every object whose key starts with ``prefix`` (``""``: all); return how many.

        Raises:
            InvalidKey: If the prefix is not allowed.
            NotFound: If the bucket does not exist.
        """
        count = 0
        for obj in self.list(bucket, prefix).objects:
            try:
                self._backend.remove(f"{bucket}/{obj.key}")
            except _MISSING:  # deleted meanwhile by someone else: the goal holds
                continue
            count += 1
        return count

    def copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> ObjectInfo:
        """Copy an object (atomically at the destination, like every write).

        Raises:
            InvalidKey: If a key is not allowed.
            NotFound: If the source object or either bucket does not exist.
        """
        with (
            self.open_read(src_bucket, src_key) as source,
            self.open_write(dst_bucket, dst_key) as writer,
        ):
            shutil.copyfileobj(source, writer, _CHUNK)
        return cast(ObjectInfo, writer.info)

    def sweep_temp(self, older_than: timedelta = timedelta(hours=1)) -> int:
        """Remove temporary files left by writers that died mid-write; return how many.

        Only a process killed outright leaves them (any other failure cleans up),
        and listings already hide them; this frees their space.
        """
        cutoff = datetime.now(UTC) - older_than
        count = 0
        for bucket in self.list_buckets():
            for entry in self._backend.scan(bucket, recursive=True):
                if entry.path.rpartition("/")[2].startswith(TEMP_PREFIX) and entry.mtime < cutoff:
                    try:
                        self._backend.remove(entry.path)
                    except _MISSING:
                        continue
                    count += 1
        return count

    # -- addresses -------------------------------------------------------------------------

    @staticmethod
    def parse_uri(uri: str) -> tuple[str, str]:
        """Split ``s3://bucket/key`` into ``(bucket, key)``; the key may be empty or end in ``/``.

        Raises:
            InvalidInput: If the URI is not ``s3://`` or the bucket name is not allowed.
            InvalidKey: If the key is not allowed.
        """
        if not isinstance(uri, str) or not uri.startswith("s3://"):
            raise InvalidInput(
                f"A lake URI looks like 's3://bucket/key'. Got {uri!r}; inside sagelab "
                "'s3://' names a bucket of the lake."
            )
        bucket, _, key = uri[len("s3://") :].partition("/")
        return check_bucket(bucket), check_prefix(key)

    @staticmethod
    def uri(bucket: str, key: str = "") -> str:
        """The ``s3://bucket/key`` URI of an object or prefix.

        Raises:
            InvalidInput: If the bucket name is not allowed.
            InvalidKey: If the key is not allowed.
        """
        return f"s3://{check_bucket(bucket)}/{check_prefix(key)}"

    def full_path(self, bucket: str, key: str = "") -> str:
        """The path of an object, or of a folder when ``key`` is a prefix, on :attr:`filesystem`.

        Raises:
            InvalidInput: If the bucket name is not allowed.
            InvalidKey: If the key is not allowed.
        """
        return self._backend.native_path(self._path_rel(bucket, key))

    def local_path(self, bucket: str, key: str = "") -> str | None:
        """A real local path to the object (or folder) when the lake is local, else None.

        Raises:
            InvalidInput: If the bucket name is not allowed.
            InvalidKey: If the key is not allowed.
        """
        return self._backend.local_path(self._path_rel(bucket, key))

    @property
    def filesystem(self) -> Any:
        """The fsspec filesystem on which :meth:`full_path` paths live."""
        return self._backend.filesystem

    # -- internals -------------------------------------------------------------------------

    def _rel(self, bucket: str, key: str) -> str:
        return f"{check_bucket(bucket)}/{check_key(key)}"

    def _path_rel(self, bucket: str, key: str) -> str:
        check_bucket(bucket)
        key = check_prefix(key).rstrip("/")
        return f"{bucket}/{key}" if key else bucket

    def _writable(self, bucket: str, key: str) -> str:
        rel = self._rel(bucket, key)
        self._require_bucket(bucket)
        return rel

    def _require_bucket(self, bucket: str) -> None:
        if not self.bucket_exists(bucket):
            raise NotFound(
                f"The bucket {bucket!r} does not exist.{closest(bucket, self.list_buckets())} "
                f"Create it first with create_bucket({bucket!r})."
            )

    def _not_found(self, bucket: str, key: str) -> NotFound:
        if not self.bucket_exists(bucket):
            return NotFound(
                f"The bucket {bucket!r} does not exist, so neither does {key!r}."
                f"{closest(bucket, self.list_buckets())}"
            )
        return NotFound(
            f"The object {key!r} does not exist in bucket {bucket!r}. "
            f"List what is there with list({bucket!r}, prefix=...)."
        )

    def _published(self, bucket: str, key: str, md5: str, size: int) -> ObjectInfo:
        rel = f"{bucket}/{key}"
        entry = self._backend.stat(rel)
        if entry.etag is None and entry.size == size:
            self._remember_etag(rel, entry.size, entry.mtime, md5)
        return ObjectInfo(bucket, key, entry.size, entry.etag or md5, entry.mtime)

    def _md5_of(self, rel: str) -> str:
        digest = hashlib.md5(usedforsecurity=False)
        with self._backend.open_read(rel) as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def _cached_etag(self, rel: str, size: int, mtime: datetime) -> str | None:
        with self._etags_lock:
            return self._etags.get((rel, size, mtime))

    def _remember_etag(self, rel: str, size: int, mtime: datetime, etag: str) -> None:
        with self._etags_lock:
            self._etags[(rel, size, mtime)] = etag
            while len(self._etags) > _ETAG_CACHE_SIZE:
                self._etags.popitem(last=False)
