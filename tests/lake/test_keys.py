"""Hostile names: every way a key could leave its bucket is refused, and nothing lands outside."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sagelab.errors import InvalidInput, InvalidKey
from sagelab.lake._keys import (
    MAX_KEY_BYTES,
    check_bucket,
    check_key,
    check_prefix,
    confine,
)
from sagelab.lake._objects import Lake

BUCKET = "data"

# (id, key): each must be refused with InvalidKey by every operation.
HOSTILE_KEYS: list[tuple[str, object]] = [
    ("empty", ""),
    ("absolute", "/etc/passwd"),
    ("root", "/"),
    ("parent", "../secret"),
    ("parent-deep", "a/../../secret"),
    ("parent-late", "a/b/../../../c"),
    ("dot-segment", "a/./b"),
    ("dot", "."),
    ("dotdot", ".."),
    ("trailing-dotdot", "a/.."),
    ("backslash", "a\\b"),
    ("backslash-traversal", "..\\..\\windows"),
    ("nul", "a\x00b"),
    ("newline", "a\nb"),
    ("del", "a\x7fb"),
    ("escape", "a\x1b[31mb"),
    ("c1-control", "a\x85b"),
    ("pct-lower", "%2e%2e%2fsecret"),
    ("pct-upper", "%2E%2E/secret"),
    ("pct-double", "%252e%252e%252fsecret"),
    ("pct-triple", "%25252e%25252e%25252fsecret"),
    ("pct-mixed-slash", "..%2fsecret"),
    ("pct-mixed-dot", "%2e./secret"),
    ("pct-mixed-dot2", ".%2e/secret"),
    ("pct-inner", "a/%2e%2e/%2e%2e/b"),
    ("pct-absolute", "%2fetc/passwd"),
    ("pct-backslash", "a%5c..%5cb"),
    ("pct-nul", "a%00b"),
    ("pct-overlong-utf8", "%c0%ae%c0%ae/secret"),
    ("fullwidth-traversal", "．．／secret"),
    ("fullwidth-inner", "a/．．/b"),
    ("two-dot-leader", "‥/secret"),
    ("fullwidth-backslash", "a＼b"),
    ("fullwidth-percent", "％２ｅ％２ｅ／secret"),
    ("overlong-ascii", "x" * (MAX_KEY_BYTES + 1)),
    ("overlong-utf8", "é" * 513),
    ("long-segment", "a" * 256),
    ("reserved-temp", ".sagelab-tmp-0123abcd"),
    ("reserved-inner", "a/.sagelab-tmp-x/b"),
    ("reserved-marker", ".sagelab-bucket"),
    ("empty-segment", "a//b"),
    ("folder-marker", "a/"),
    ("drive-letter", "C:/windows/system32"),
    ("drive-relative", "c:secret"),
    ("lone-surrogate", "a\ud800b"),
    ("sibling-bucket", "../data-evil/x"),
    ("sibling-prefix", "../dataX"),
    ("not-a-string", 123),
]

HOSTILE_PREFIXES = ["/", "../", "a/../", "%2e%2e/", "．．/", "a//", "/abs", "a\\", ".sagelab-tmp-"]

VALID_KEYS = [
    "a",
    "a b.csv",
    "100%.csv",
    "x%2Fy",  # decodes to 'x/y': a literal name, no traversal
    "données/été.csv",
    "...",
    "a..b",
    "..a",
    ".hidden",
    "~/x",
    "emoji/😀.bin",
    "/".join(["s" * 200] * 5),  # 1004 bytes
    "/".join(["k" * 204] * 5),  # exactly MAX_KEY_BYTES
]

BAD_BUCKETS = {
    "ab": "3 to 63",
    "a" * 64: "3 to 63",
    "Data": "lowercase",
    "da_ta": "lowercase",
    "-data": "start and end",
    "data-": "start and end",
    "da..ta": "two dots",
    "192.168.1.1": "IP address",
    "xn--data": "xn--",
    "data-s3alias": "-s3alias",
    "../x": "lowercase",
}
GOOD_BUCKETS = ["abc", "raw-data", "my.bucket.v2", "0ab", "a" * 63]


def _snapshot(top: Path) -> set[tuple[str, int, bool]]:
    """Every entry under ``top`` (symlinks not followed): path, size, is-link."""
    seen: set[tuple[str, int, bool]] = set()
    for folder, dirs, files in os.walk(top):
        for name in dirs + files:
            path = Path(folder, name)
            seen.add((str(path.relative_to(top)), path.lstat().st_size, path.is_symlink()))
    return seen


def _every_operation(lake: Lake, key: object) -> list[tuple[str, BaseException | None]]:
    """Try every operation with ``key``; what each raised."""
    outcomes: list[tuple[str, BaseException | None]] = []

    def attempt(name: str, call: object) -> None:
        try:
            call()  # type: ignore[operator]
        except Exception as exc:
            outcomes.append((name, exc))
        else:
            outcomes.append((name, None))

    def write_path() -> None:
        with lake.write_path(BUCKET, key) as path:  # type: ignore[arg-type]
            Path(path).write_bytes(b"pwned")

    def open_write() -> None:
        with lake.open_write(BUCKET, key) as fh:  # type: ignore[arg-type]
            fh.write(b"pwned")

    attempt("put", lambda: lake.put(BUCKET, key, b"pwned"))  # type: ignore[arg-type]
    attempt("open_write", open_write)
    attempt("write_path", write_path)
    attempt("copy-to", lambda: lake.copy(BUCKET, "seed", BUCKET, key))  # type: ignore[arg-type]
    attempt("get", lambda: lake.get(BUCKET, key))  # type: ignore[arg-type]
    attempt("open_read", lambda: lake.open_read(BUCKET, key))  # type: ignore[arg-type]
    attempt("head", lambda: lake.head(BUCKET, key))  # type: ignore[arg-type]
    attempt("exists", lambda: lake.exists(BUCKET, key))  # type: ignore[arg-type]
    attempt("delete", lambda: lake.delete(BUCKET, key))  # type: ignore[arg-type]
    attempt("copy-from", lambda: lake.copy(BUCKET, key, BUCKET, "out"))  # type: ignore[arg-type]
    return outcomes


@pytest.mark.parametrize(("case", "key"), HOSTILE_KEYS, ids=[c for c, _ in HOSTILE_KEYS])
def test_hostile_key_refused_everywhere_and_nothing_written(
    case: str, key: object, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    lake = Lake(tmp_path / "lake")
    lake.create_bucket(BUCKET)
    lake.create_bucket("data-evil")
    lake.put(BUCKET, "seed", b"seed")
    before = _snapshot(tmp_path)

    for name, raised in _every_operation(lake, key):
        assert isinstance(raised, InvalidKey), f"{name}({key!r}) gave {raised!r}"
    assert _snapshot(tmp_path) == before, "a refused key changed the file system"


@pytest.mark.parametrize(("case", "key"), HOSTILE_KEYS, ids=[c for c, _ in HOSTILE_KEYS])
def test_hostile_key_refused_on_memory_store(case: str, key: object) -> None:
    lake = Lake("memory://hostile-keys")
    lake.create_bucket(BUCKET, exist_ok=True)
    lake.put(BUCKET, "seed", b"seed")
    store = lake.filesystem.store
    before = {path: bytes(f.getbuffer()) for path, f in store.items()}

    for name, raised in _every_operation(lake, key):
        assert isinstance(raised, InvalidKey), f"{name}({key!r}) gave {raised!r}"
    assert {path: bytes(f.getbuffer()) for path, f in store.items()} == before


def test_message_names_key_problem_and_fix() -> None:
    with pytest.raises(InvalidKey) as info:
        check_key("a/../../etc/passwd")
    message = str(info.value)
    assert "'a/../../etc/passwd'" in message
    assert "'..'" in message
    assert "Use a relative key" in message

    with pytest.raises(InvalidKey, match="once decoded"):
        check_key("%252e%252e%252fsecret")
    with pytest.raises(InvalidKey, match="1024"):
        check_key("x" * 2000)
    with pytest.raises(InvalidKey, match="folder markers"):
        check_key("logs/")


def test_long_key_is_shown_truncated() -> None:
    with pytest.raises(InvalidKey) as info:
        check_key("../" + "x" * 5000)
    assert len(str(info.value)) < 400


@pytest.mark.parametrize("prefix", HOSTILE_PREFIXES)
def test_hostile_prefix_refused(prefix: str, lake_local: Lake) -> None:
    with pytest.raises(InvalidKey):
        check_prefix(prefix)
    with pytest.raises(InvalidKey):
        lake_local.list(BUCKET, prefix)
    with pytest.raises(InvalidKey):
        lake_local.delete_prefix(BUCKET, prefix)
    with pytest.raises(InvalidKey):
        lake_local.full_path(BUCKET, prefix)


@pytest.mark.parametrize("key", VALID_KEYS)
def test_valid_keys_round_trip(key: str, lake_local: Lake) -> None:
    assert check_key(key) == key
    lake_local.put(BUCKET, key, key.encode())
    assert lake_local.get(BUCKET, key) == key.encode()
    assert key in lake_local.list(BUCKET).keys


@pytest.mark.parametrize("prefix", ["", "a", "a/", "logs/2024-", "a/b/"])
def test_valid_prefixes(prefix: str) -> None:
    assert check_prefix(prefix) == prefix


@pytest.mark.parametrize(("name", "rule"), BAD_BUCKETS.items())
def test_bad_bucket_names_name_the_rule(name: str, rule: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=rule):
        check_bucket(name)
    lake = Lake(tmp_path / "lake")
    with pytest.raises(InvalidInput, match=rule):
        lake.create_bucket(name)
    assert list((tmp_path / "lake").iterdir()) == []


@pytest.mark.parametrize("name", GOOD_BUCKETS)
def test_good_bucket_names(name: str) -> None:
    assert check_bucket(name) == name


def test_confine_refuses_sibling_prefixes(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    (root / "bucket").mkdir()
    (root / "bucket-evil").mkdir()
    (root / "bucketX").mkdir()
    base = root / "bucket"
    # A naive str(path).startswith(str(base)) would let both of these through.
    for sneaky in ("../bucket-evil/x", "../bucketX", "../bucket-evil"):
        assert str((base / sneaky).resolve()).startswith(str(base))
        with pytest.raises(InvalidKey, match="outside its bucket"):
            confine(base, sneaky)
    assert confine(base, "a/b") == base / "a" / "b"


def test_symlinks_out_of_the_lake_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    lake = Lake(tmp_path / "lake")
    lake.create_bucket(BUCKET)
    bucket_dir = tmp_path / "lake" / BUCKET
    (bucket_dir / "link").symlink_to(outside, target_is_directory=True)
    (bucket_dir / "file-link").symlink_to(outside / "secret")
    (tmp_path / "lake" / "evil-bucket").symlink_to(outside, target_is_directory=True)
    before = _snapshot(tmp_path)

    with pytest.raises(InvalidKey):
        lake.put(BUCKET, "link/planted", b"pwned")
    with pytest.raises(InvalidKey):
        lake.get(BUCKET, "link/secret")
    with pytest.raises(InvalidKey):
        lake.get(BUCKET, "file-link")
    with pytest.raises(InvalidKey):
        lake.full_path(BUCKET, "link/secret")
    with pytest.raises(InvalidKey):
        lake.list(BUCKET, "link/")
    with pytest.raises(InvalidKey):
        lake.put("evil-bucket", "planted", b"pwned")
    with pytest.raises(InvalidKey):
        lake.get("evil-bucket", "secret")
    assert _snapshot(tmp_path) == before
    # Listings neither follow nor show links.
    assert lake.list(BUCKET).keys == []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_any_text_is_refused_or_stays_inside(text: str) -> None:
    root = Path("/lake-root/bucket")
    try:
        check_key(text)
    except InvalidKey:
        return
    # Accepted keys resolve (lexically) under the bucket and never traverse.
    joined = os.path.normpath(os.path.join(root, *text.split("/")))
    assert Path(joined).is_relative_to(root) and Path(joined) != root
    assert ".." not in text.split("/")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["..", ".", "%2e", "%2E", "%25", "2e", "%2f", "/", "a", "．", "／"]))
)
def test_encoded_traversal_fragments_never_pass_as_traversal(parts: list[str]) -> None:
    text = "".join(parts)
    try:
        check_key(text)
    except InvalidKey:
        return
    from urllib.parse import unquote

    decoded = text
    for _ in range(10):
        decoded = unquote(decoded)
    assert ".." not in decoded.split("/") and "." not in decoded.split("/")
