"""The object store's conformance suite, run on every backend: local folder, memory://, S3 (moto)."""

from __future__ import annotations

import hashlib
import io
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sagelab.config import Settings
from sagelab.errors import Conflict, InvalidInput, InvalidKey, NotFound
from sagelab.lake._keys import TEMP_PREFIX, check_key
from sagelab.lake._objects import Lake, ObjectInfo

BUCKET = "data"  # created in every lake_any lake


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def raw_names(lake: Lake, bucket: str = BUCKET) -> list[str]:
    """Every file the store holds under the bucket, hidden ones included."""
    fs = lake.filesystem
    root = lake.full_path(bucket)
    return sorted(p.rsplit("/", 1)[-1] for p in fs.find(root))


def temp_litter(lake: Lake) -> list[str]:
    return [name for name in raw_names(lake) if name.startswith(TEMP_PREFIX)]


# -- buckets ----------------------------------------------------------------------------------


def test_buckets_lifecycle(lake_any: Lake) -> None:
    assert lake_any.list_buckets() == [BUCKET]
    lake_any.create_bucket("raw-2")
    assert lake_any.bucket_exists("raw-2")
    assert lake_any.list_buckets() == [BUCKET, "raw-2"]
    with pytest.raises(Conflict, match="already exists"):
        lake_any.create_bucket("raw-2")
    lake_any.create_bucket("raw-2", exist_ok=True)

    lake_any.put("raw-2", "a/b.txt", b"x")
    with pytest.raises(Conflict, match="not empty"):
        lake_any.delete_bucket("raw-2")
    lake_any.delete_bucket("raw-2", force=True)
    assert not lake_any.bucket_exists("raw-2")
    assert lake_any.list_buckets() == [BUCKET]
    with pytest.raises(NotFound):
        lake_any.delete_bucket("raw-2")


def test_empty_bucket_survives_and_deletes(lake_any: Lake) -> None:
    lake_any.put(BUCKET, "only", b"1")
    lake_any.delete(BUCKET, "only")
    assert lake_any.bucket_exists(BUCKET)
    assert lake_any.list(BUCKET).objects == []
    lake_any.delete_bucket(BUCKET)
    assert lake_any.list_buckets() == []


def test_missing_bucket_is_not_found_with_hint(lake_any: Lake) -> None:
    with pytest.raises(NotFound, match=r"'dat' does not exist.*Did you mean 'data'"):
        lake_any.put("dat", "k", b"x")
    with pytest.raises(NotFound, match="'nope' does not exist"):
        lake_any.get("nope", "k")
    with pytest.raises(NotFound):
        lake_any.list("nope")
    assert not lake_any.exists("nope", "k")


# -- put, get, head ---------------------------------------------------------------------------


def test_put_get_head(lake_any: Lake) -> None:
    data = b"hello lake\n" * 100
    info = lake_any.put(BUCKET, "dir/sub/hello.txt", data)
    assert info == ObjectInfo(BUCKET, "dir/sub/hello.txt", len(data), md5(data), info.last_modified)
    assert info.last_modified.tzinfo is not None
    assert lake_any.get(BUCKET, "dir/sub/hello.txt") == data
    assert lake_any.head(BUCKET, "dir/sub/hello.txt") == info
    assert lake_any.exists(BUCKET, "dir/sub/hello.txt")
    assert not lake_any.exists(BUCKET, "dir/sub")
    with lake_any.open_read(BUCKET, "dir/sub/hello.txt") as fh:
        assert fh.read(5) == b"hello"


def test_put_replaces_and_accepts_files(lake_any: Lake) -> None:
    lake_any.put(BUCKET, "k", b"old content")
    info = lake_any.put(BUCKET, "k", io.BytesIO(b"new"))
    assert lake_any.get(BUCKET, "k") == b"new"
    assert info.etag == md5(b"new") == lake_any.head(BUCKET, "k").etag
    lake_any.put(BUCKET, "empty", b"")
    assert lake_any.get(BUCKET, "empty") == b""
    assert lake_any.head(BUCKET, "empty").size == 0
    lake_any.put(BUCKET, "view", memoryview(b"abc"))
    assert lake_any.get(BUCKET, "view") == b"abc"


def test_put_refuses_text(lake_any: Lake) -> None:
    with pytest.raises(InvalidInput, match="Encode text first"):
        lake_any.put(BUCKET, "k", "text")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        lake_any.put(BUCKET, "k", 42)  # type: ignore[arg-type]
    assert not lake_any.exists(BUCKET, "k")


def test_missing_object_is_not_found(lake_any: Lake) -> None:
    for call in (lake_any.get, lake_any.head, lake_any.open_read, lake_any.delete):
        with pytest.raises(NotFound, match="'ghost' does not exist in bucket 'data'"):
            call(BUCKET, "ghost")
    lake_any.put(BUCKET, "folder/inner", b"x")
    with pytest.raises(NotFound):
        lake_any.get(BUCKET, "folder")  # a folder is not an object
    with pytest.raises(NotFound):
        lake_any.delete(BUCKET, "folder")
    assert lake_any.get(BUCKET, "folder/inner") == b"x"


def test_head_etag_of_object_written_outside_the_lake(lake_any: Lake) -> None:
    data = b"written by someone else" * 1000
    lake_any.filesystem.pipe_file(lake_any.full_path(BUCKET, "outside.bin"), data)
    info = lake_any.head(BUCKET, "outside.bin")
    assert info.etag == md5(data)
    assert info.size == len(data)
    assert lake_any.head(BUCKET, "outside.bin") == info  # stable


def test_key_and_folder_of_the_same_name(lake_any: Lake, lake_kind: str) -> None:
    lake_any.put(BUCKET, "a/b", b"inner")
    # A file system cannot hold an object 'a' and a folder 'a'; S3 can.
    try:
        lake_any.put(BUCKET, "a", b"outer")
    except Conflict:
        assert lake_kind == "local"
    assert lake_any.get(BUCKET, "a/b") == b"inner"
    assert temp_litter(lake_any) == []


# -- streaming writes -------------------------------------------------------------------------


def test_open_write_streams_and_reports_md5(lake_any: Lake) -> None:
    chunks = [bytes([i]) * 100_000 for i in range(20)]
    with lake_any.open_write(BUCKET, "big.bin") as fh:
        for chunk in chunks:
            fh.write(chunk)
        assert not lake_any.exists(BUCKET, "big.bin")  # not before the block ends
        assert fh.tell() == 2_000_000
    whole = b"".join(chunks)
    assert fh.info is not None
    assert fh.info.etag == md5(whole)
    assert fh.info.size == len(whole)
    assert lake_any.get(BUCKET, "big.bin") == whole
    assert lake_any.head(BUCKET, "big.bin").etag == md5(whole)


def test_open_write_takes_pyarrow_writers(lake_any: Lake) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"x": list(range(100))})
    with lake_any.open_write(BUCKET, "t.parquet") as fh:
        pq.write_table(table, fh)
    with lake_any.open_read(BUCKET, "t.parquet") as source:
        assert pq.read_table(source).equals(table)


def test_failing_open_write_leaves_nothing(lake_any: Lake) -> None:
    lake_any.put(BUCKET, "keep", b"previous version")
    with pytest.raises(RuntimeError, match="boom"), lake_any.open_write(BUCKET, "new") as fh:
        fh.write(b"half an object")
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError), lake_any.open_write(BUCKET, "keep") as fh:
        fh.write(b"half a replacement")
        raise RuntimeError("boom")
    assert not lake_any.exists(BUCKET, "new")
    assert lake_any.get(BUCKET, "keep") == b"previous version"
    assert lake_any.list(BUCKET).keys == ["keep"]
    assert temp_litter(lake_any) == []


def test_open_write_refuses_text(lake_any: Lake) -> None:
    with pytest.raises(TypeError, match="bytes"), lake_any.open_write(BUCKET, "t") as fh:
        fh.write("text")  # type: ignore[arg-type]
    assert not lake_any.exists(BUCKET, "t")


def test_write_path_with_duckdb_and_pyarrow(lake_any: Lake) -> None:
    duckdb = pytest.importorskip("duckdb")
    pq = pytest.importorskip("pyarrow.parquet")
    with lake_any.write_path(BUCKET, "tables/t/part-0.parquet") as path:
        assert path.endswith(".parquet")
        assert lake_any.list(BUCKET).keys == []  # the staged file is hidden
        duckdb.sql(f"COPY (SELECT range AS x FROM range(1000)) TO '{path}' (FORMAT parquet)")
    table = pq.read_table(
        lake_any.full_path(BUCKET, "tables/t/part-0.parquet"), filesystem=lake_any.filesystem
    )
    assert table.column("x").to_pylist() == list(range(1000))

    with lake_any.write_path(BUCKET, "tables/t/part-1.parquet") as path:
        pq.write_table(table.slice(0, 10), path)
    assert lake_any.list(BUCKET, "tables/t/").keys == [
        "tables/t/part-0.parquet",
        "tables/t/part-1.parquet",
    ]
    assert temp_litter(lake_any) == []


def test_failing_write_path_publishes_nothing(lake_any: Lake) -> None:
    with (
        pytest.raises(ValueError, match="writer failed"),
        lake_any.write_path(BUCKET, "x.csv") as path,
    ):
        Path(path).write_bytes(b"a,b\n1,")
        raise ValueError("writer failed")
    assert not Path(path).exists()
    assert not lake_any.exists(BUCKET, "x.csv")
    assert temp_litter(lake_any) == []


def test_write_path_refuses_a_folder(lake_any: Lake) -> None:
    with pytest.raises(InvalidInput, match="one file"), lake_any.write_path(BUCKET, "p") as path:
        Path(path).unlink()
        Path(path).mkdir()
        (Path(path) / "part.csv").write_bytes(b"x")
    assert not Path(path).exists()
    assert lake_any.list(BUCKET).keys == []
    assert temp_litter(lake_any) == []


def test_concurrent_reader_sees_nothing_or_everything(lake_any: Lake, lake_kind: str) -> None:
    size = 8 * 1024 * 1024 if lake_kind == "s3" else 32 * 1024 * 1024
    chunk = b"0123456789abcdef" * 4096
    expected_md5 = md5(chunk * (size // len(chunk)))
    done = threading.Event()
    seen: list[str] = []

    def writer() -> None:
        try:
            with lake_any.open_write(BUCKET, "large.bin") as fh:
                for _ in range(size // len(chunk)):
                    fh.write(chunk)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        finished = done.is_set()
        try:
            data = lake_any.get(BUCKET, "large.bin")
        except NotFound:
            seen.append("nothing")
        else:
            assert len(data) == size, f"a reader saw {len(data)} of {size} bytes"
            assert md5(data) == expected_md5
            seen.append("whole")
        if finished:
            break
    thread.join()
    assert "nothing" in seen, "the reader never looked during the write"
    assert seen[-1] == "whole"
    assert temp_litter(lake_any) == []


# -- listing ----------------------------------------------------------------------------------

KEYS = [
    "a.txt",
    "logs/2024-01.csv",
    "logs/2024-02.csv",
    "logs/2025/01.csv",
    "logs/archive/old.csv",
    "logs2/x",
    "z/y/x/w",
]


@pytest.fixture
def lake_listed(lake_any: Lake) -> Lake:
    for key in KEYS:
        lake_any.put(BUCKET, key, key.encode())
    return lake_any


def test_list_everything_sorted(lake_listed: Lake) -> None:
    result = lake_listed.list(BUCKET)
    assert result.keys == sorted(KEYS)
    assert result.common_prefixes == []
    assert [o.size for o in result.objects] == [len(k) for k in sorted(KEYS)]


@pytest.mark.parametrize(
    ("prefix", "delimiter", "keys", "prefixes"),
    [
        ("logs", None, [k for k in KEYS if k.startswith("logs")], []),
        ("logs/", None, [k for k in KEYS if k.startswith("logs/")], []),
        ("logs/2024", None, ["logs/2024-01.csv", "logs/2024-02.csv"], []),
        ("", "/", ["a.txt"], ["logs/", "logs2/", "z/"]),
        ("logs/", "/", ["logs/2024-01.csv", "logs/2024-02.csv"], ["logs/2025/", "logs/archive/"]),
        ("logs", "/", [], ["logs/", "logs2/"]),
        ("logs/20", "/", ["logs/2024-01.csv", "logs/2024-02.csv"], ["logs/2025/"]),
        ("logs/", "-", ["logs/2025/01.csv", "logs/archive/old.csv"], ["logs/2024-"]),
        ("z/y/", "/", [], ["z/y/x/"]),
        ("nothing/", "/", [], []),
        ("a.txt", "/", ["a.txt"], []),
    ],
)
def test_list_prefix_and_delimiter(
    lake_listed: Lake, prefix: str, delimiter: str | None, keys: list[str], prefixes: list[str]
) -> None:
    result = lake_listed.list(BUCKET, prefix, delimiter)
    assert result.keys == keys
    assert result.common_prefixes == prefixes


def test_list_not_recursive_means_slash_delimiter(lake_listed: Lake) -> None:
    assert lake_listed.list(BUCKET, "logs/", recursive=False) == lake_listed.list(
        BUCKET, "logs/", "/"
    )


def test_list_hides_stale_temp_files_and_sweep_removes_them(lake_any: Lake) -> None:
    lake_any.put(BUCKET, "real", b"1")
    folder = lake_any.full_path(BUCKET, "dir")
    lake_any.filesystem.makedirs(folder, exist_ok=True)
    lake_any.filesystem.pipe_file(f"{folder}/{TEMP_PREFIX}crashed.parquet", b"half")
    assert lake_any.list(BUCKET).keys == ["real"]
    assert lake_any.list(BUCKET, delimiter="/").common_prefixes == []
    with pytest.raises(Conflict):
        lake_any.delete_bucket(BUCKET)  # 'real' is there; temp files alone would not count
    assert lake_any.sweep_temp(older_than=timedelta(hours=1)) == 0
    assert lake_any.sweep_temp(older_than=timedelta(0)) == 1
    assert temp_litter(lake_any) == []
    assert lake_any.get(BUCKET, "real") == b"1"


# -- delete, copy -----------------------------------------------------------------------------


def test_delete_and_delete_prefix(lake_listed: Lake) -> None:
    lake_listed.delete(BUCKET, "a.txt")
    assert not lake_listed.exists(BUCKET, "a.txt")
    with pytest.raises(NotFound):
        lake_listed.delete(BUCKET, "a.txt")
    assert lake_listed.delete_prefix(BUCKET, "logs/20") == 3
    assert lake_listed.list(BUCKET).keys == ["logs/archive/old.csv", "logs2/x", "z/y/x/w"]
    assert lake_listed.list(BUCKET, "logs/", "/").common_prefixes == ["logs/archive/"]
    assert lake_listed.delete_prefix(BUCKET, "") == 3
    assert lake_listed.list(BUCKET).keys == []
    assert lake_listed.bucket_exists(BUCKET)


def test_copy(lake_any: Lake) -> None:
    lake_any.create_bucket("other")
    lake_any.put(BUCKET, "src/one", b"payload")
    info = lake_any.copy(BUCKET, "src/one", "other", "dst/two")
    assert info.etag == md5(b"payload") and info.bucket == "other"
    assert lake_any.get("other", "dst/two") == b"payload"
    assert lake_any.get(BUCKET, "src/one") == b"payload"
    lake_any.copy(BUCKET, "src/one", BUCKET, "src/one")  # onto itself: unchanged
    assert lake_any.get(BUCKET, "src/one") == b"payload"
    with pytest.raises(NotFound):
        lake_any.copy(BUCKET, "ghost", "other", "x")
    with pytest.raises(NotFound):
        lake_any.copy(BUCKET, "src/one", "missing-bucket", "x")
    assert lake_any.list("other").keys == ["dst/two"]


# -- addresses --------------------------------------------------------------------------------


def test_uris() -> None:
    assert Lake.parse_uri("s3://data/key/parts.csv") == ("data", "key/parts.csv")
    assert Lake.parse_uri("s3://data") == ("data", "")
    assert Lake.parse_uri("s3://data/folder/") == ("data", "folder/")
    assert Lake.uri("data", "key/parts.csv") == "s3://data/key/parts.csv"
    assert Lake.parse_uri(Lake.uri("data", "a b/c")) == ("data", "a b/c")
    with pytest.raises(InvalidInput, match="s3://bucket/key"):
        Lake.parse_uri("gs://data/x")
    with pytest.raises(InvalidInput, match="lowercase"):
        Lake.parse_uri("s3://Data/x")
    with pytest.raises(InvalidKey):
        Lake.parse_uri("s3://data/../other/x")


def test_full_path_and_filesystem_reach_objects(lake_any: Lake, lake_kind: str) -> None:
    lake_any.put(BUCKET, "dir/obj.bin", b"bytes")
    with lake_any.filesystem.open(lake_any.full_path(BUCKET, "dir/obj.bin"), "rb") as fh:
        assert fh.read() == b"bytes"
    assert lake_any.filesystem.isdir(lake_any.full_path(BUCKET, "dir/"))
    local = lake_any.local_path(BUCKET, "dir/obj.bin")
    if lake_kind == "local":
        assert local is not None and Path(local).read_bytes() == b"bytes"
    else:
        assert local is None


def test_local_root_is_created_and_file_urls_are_local(tmp_path: Path) -> None:
    root = tmp_path / "new" / "lake"
    lake = Lake(f"file://{root}")
    assert root.is_dir()
    lake.create_bucket("abc")
    assert lake.local_path("abc") == str(root.resolve() / "abc")
    (root / "Not_A_Bucket").mkdir()
    assert lake.list_buckets() == ["abc"]


def test_from_settings(tmp_path: Path) -> None:
    lake = Lake.from_settings(Settings(home=tmp_path))
    assert Path(lake.root) == (tmp_path / "lake").resolve()
    assert Lake.from_settings(Settings(home=tmp_path, lake="memory://from-settings")).root == (
        "memory://from-settings"
    )


# -- properties -------------------------------------------------------------------------------

# Lowercase only, so keys stay distinct on case-insensitive file systems too.
_segment = st.text(alphabet="abcxyz019-_.é", min_size=1, max_size=12).filter(
    lambda s: s not in (".", "..")
)
_key = st.lists(_segment, min_size=1, max_size=4).map("/".join)
_any_key = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"], exclude_characters="/"),
    min_size=1,
    max_size=30,
)


def _valid(key: str) -> bool:
    try:
        check_key(key)
    except InvalidKey:
        return False
    return True


def _fresh_bucket(lake: Lake) -> str:
    name = f"p-{uuid.uuid4().hex[:16]}"
    lake.create_bucket(name)
    return name


_PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_PROPERTY
@given(
    key=st.one_of(_key, st.lists(_any_key, min_size=1, max_size=3).map("/".join)),
    data=st.binary(max_size=4096),
)
def test_put_then_get_returns_the_same_bytes(lake_any: Lake, key: str, data: bytes) -> None:
    if not _valid(key):
        return
    info = lake_any.put(BUCKET, key, data)
    assert lake_any.get(BUCKET, key) == data
    assert info.etag == md5(data) == lake_any.head(BUCKET, key).etag
    lake_any.delete(BUCKET, key)


def _prefix_free(keys: set[str]) -> set[str]:
    """Drop keys that are a folder of another key: a file system cannot hold both."""
    return {k for k in keys if not any(o.startswith(k + "/") for o in keys)}


@_PROPERTY
@given(
    keys=st.sets(_key, max_size=12).map(_prefix_free), prefix=st.sampled_from(["", "a", "x/", "é"])
)
def test_listing_returns_exactly_the_keys_put(lake_any: Lake, keys: set[str], prefix: str) -> None:
    bucket = _fresh_bucket(lake_any)
    for key in keys:
        lake_any.put(bucket, key, b"")
    wanted = sorted(k for k in keys if k.startswith(prefix))
    assert lake_any.list(bucket, prefix).keys == wanted

    grouped = lake_any.list(bucket, prefix, "/")
    rest = {k: k[len(prefix) :] for k in wanted}
    assert grouped.keys == sorted(k for k, r in rest.items() if "/" not in r)
    assert grouped.common_prefixes == sorted(
        {prefix + r.split("/")[0] + "/" for r in rest.values() if "/" in r}
    )
    lake_any.delete_bucket(bucket, force=True)
