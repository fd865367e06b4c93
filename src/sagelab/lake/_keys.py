"""Bucket names and object keys: what the lake accepts, and why the rest is refused.

Every name that reaches a backend passes through here first, so a key can
never name a file outside its bucket, however it is spelled.

Keys follow S3's model (``/``-separated, at most 1024 UTF-8 bytes) with the
rules a file system needs on top:

* no empty key, no leading ``/`` or drive letter, no ``.`` or ``..`` segment,
  no empty segment (``a//b``), no backslash, no control character;
* no trailing ``/``: S3's "folder marker" objects are refused, because the lake
  shows folders as common prefixes on its own and a file system cannot hold
  both a file ``a/`` and a folder ``a/``;
* each segment at most 255 UTF-8 bytes, the limit of common file systems;
* no segment starting with :data:`RESERVED_PREFIX`: those names belong to the
  lake's own temporary files and markers, which listings hide;
* the same traversal checks hold after percent-decoding (repeated until the
  text stops changing, so ``%252e%252e%252f`` is caught) and after Unicode
  NFKC normalisation (so fullwidth ``．．／`` is caught), because some reader
  further down the line may decode or normalise what we store.

Bucket names follow S3's rules; see :func:`check_bucket`.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

from sagelab.errors import InvalidInput, InvalidKey

__all__ = [
    "MAX_KEY_BYTES",
    "MAX_SEGMENT_BYTES",
    "RESERVED_PREFIX",
    "TEMP_PREFIX",
    "check_bucket",
    "check_key",
    "check_prefix",
    "confine",
    "is_reserved",
]

#: Names starting with this belong to the lake itself (temporary files, markers).
RESERVED_PREFIX = ".sagelab-"
#: Temporary objects are named ``.sagelab-tmp-<random><suffix>``.
TEMP_PREFIX = RESERVED_PREFIX + "tmp-"
MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 255
# Decoding more rounds than this is no longer a plausible key, only an attack.
_MAX_DECODE_ROUNDS = 8

_BUCKET_CHARS = re.compile(r"[a-z0-9.-]+")
_DRIVE = re.compile(r"[A-Za-z]:")
_EXAMPLE = "Use a relative key such as 'data/2024/part-0.parquet'."


def check_bucket(name: object) -> str:
    """Check a bucket name against S3's naming rules.

    Args:
        name: The proposed bucket name.

    Returns:
        The name, unchanged.

    Raises:
        InvalidInput: If the name breaks a rule; the message names the rule.
    """
    if not isinstance(name, str):
        raise InvalidInput(f"A bucket name must be a string. Got {type(name).__name__}.")
    rule = _bucket_rule_broken(name)
    if rule:
        raise InvalidInput(
            f"The bucket name {_show(name)} is not allowed: {rule}. Bucket names follow S3's "
            "rules: 3-63 characters of lowercase letters, digits, hyphens and dots, starting "
            "and ending with a letter or digit, such as 'raw-data'."
        )
    return name


def _bucket_rule_broken(name: str) -> str:
    if not 3 <= len(name) <= 63:
        return f"it has {len(name)} characters, and a bucket name needs 3 to 63"
    if not _BUCKET_CHARS.fullmatch(name):
        return "it may only hold lowercase letters, digits, hyphens and dots"
    if not (name[0].isalnum() and name[-1].isalnum()):
        return "it must start and end with a letter or digit"
    if ".." in name:
        return "it may not hold two dots in a row"
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        return "it may not be formatted as an IP address"
    if name.startswith(("xn--", "sthree-")):
        return "it may not start with 'xn--' or 'sthree-' (reserved by S3)"
    if name.endswith(("-s3alias", "--ol-s3")):
        return "it may not end with '-s3alias' or '--ol-s3' (reserved by S3)"
    return ""


def check_key(key: object) -> str:
    """Check an object key; see the module docstring for the rules.

    Args:
        key: The proposed object key, relative to its bucket.

    Returns:
        The key, unchanged.

    Raises:
        InvalidKey: If the key is empty, too long, or could leave its bucket.
    """
    return _check(key, what="object key", prefix=False)


def check_prefix(prefix: object) -> str:
    """Check a listing or deletion prefix: a key's rules, but it may be empty or end in ``/``.

    The last segment of a prefix may be partial (``logs/2024-`` matches
    ``logs/2024-01.csv``), yet ``.`` and ``..`` are refused there too.

    Args:
        prefix: The proposed prefix.

    Returns:
        The prefix, unchanged.

    Raises:
        InvalidKey: If the prefix could reach outside its bucket.
    """
    return _check(prefix, what="prefix", prefix=True)


def is_reserved(key: str) -> bool:
    """Whether any segment of ``key`` is one of the lake's own names."""
    return any(seg.startswith(RESERVED_PREFIX) for seg in key.split("/"))


def _check(text: object, *, what: str, prefix: bool) -> str:
    if not isinstance(text, str):
        raise InvalidKey(f"The {what} must be a string. Got {type(text).__name__}.")
    if not text:
        if prefix:
            return text
        raise InvalidKey(f"The {what} is empty. {_EXAMPLE}")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidKey(
            f"The {what} {_show(text)} is not valid Unicode text (it holds a lone "
            f"surrogate). {_EXAMPLE}"
        ) from None
    if size > MAX_KEY_BYTES:
        raise InvalidKey(
            f"The {what} {_show(text)} is {size} UTF-8 bytes long; the limit is "
            f"{MAX_KEY_BYTES}. Use a shorter key."
        )
    problem = _shape_problem(text, prefix=prefix) or _decoded_problem(text)
    if problem:
        raise InvalidKey(f"The {what} {_show(text)} is not allowed: {problem}. {_EXAMPLE}")
    return text


def _shape_problem(text: str, *, prefix: bool) -> str:
    """What is wrong with the literal text, or ''."""
    problem = _traversal_problem(text)
    if problem:
        return problem
    segments = text.split("/")
    if segments[-1] == "":
        if not prefix:
            return (
                "it ends with '/'; folder markers are not stored (folders appear as common "
                "prefixes on their own), so drop the trailing '/'"
            )
        segments.pop()
    for seg in segments:
        if not seg:
            return "it has an empty segment ('//'); separate segments with a single '/'"
        if seg.startswith(RESERVED_PREFIX):
            return f"a segment starts with {RESERVED_PREFIX!r}, which the lake reserves for itself"
        if len(seg.encode("utf-8")) > MAX_SEGMENT_BYTES:
            return (
                f"the segment starting {seg[:20]!r} is over {MAX_SEGMENT_BYTES} UTF-8 bytes, "
                "the limit of a file name; split it with '/'"
            )
    return ""


def _traversal_problem(text: str) -> str:
    """The checks that must also hold for every decoded or normalised form."""
    for ch in text:
        if ch == "\x00":
            return "it holds a NUL character"
        if unicodedata.category(ch) == "Cc":
            return f"it holds the control character {ch!r}"
    if "\\" in text:
        return "it holds a backslash; separate segments with '/'"
    if text.startswith("/"):
        return "it starts with '/', so it is an absolute path; keys are relative to the bucket"
    if _DRIVE.match(text):
        return "it starts with a drive letter, so it is an absolute path"
    for seg in text.split("/"):
        if seg in (".", ".."):
            return f"it has a {seg!r} segment, which would step outside the bucket"
    return ""


def _decoded_problem(text: str) -> str:
    """Decode and normalise until stable; a traversal in any form is refused."""
    current = text
    for _ in range(_MAX_DECODE_ROUNDS):
        try:
            decoded = unquote(current, errors="strict")
        except UnicodeDecodeError:
            # Overlong or stray UTF-8 (e.g. %c0%ae) is how old decoders were tricked into '.'.
            return "its percent-encoded bytes are not valid UTF-8"
        normal = unicodedata.normalize("NFKC", decoded)
        for form in (decoded, normal):
            problem = _traversal_problem(form)
            if problem:
                return f"once decoded ({form[:60]!r}) {problem}"
        if normal == current:
            return ""
        current = normal
    return f"it is percent-encoded more than {_MAX_DECODE_ROUNDS} times over"


def confine(base: Path, relative: str) -> Path:
    """The real path of ``relative`` under ``base``, refusing anything that resolves outside.

    Symlinks are followed, so a link inside the lake that points elsewhere is
    refused rather than written through. The comparison is by path parts
    (:meth:`Path.is_relative_to`), so ``<root>/bucket-evil`` is not "inside"
    ``<root>/bucket`` as a naive ``startswith`` would claim.

    Args:
        base: The directory that must contain the result (already resolved).
        relative: A ``/``-separated path already checked by :func:`check_key`.

    Returns:
        The resolved path.

    Raises:
        InvalidKey: If the resolved path is not inside ``base``.
    """
    target = base.joinpath(*relative.split("/")).resolve()
    if not target.is_relative_to(base):
        raise InvalidKey(
            f"The path {_show(relative)} resolves outside its bucket (through a symbolic "
            "link or a crafted name). Remove the link, or use a key that stays inside the bucket."
        )
    return target


def _show(text: str) -> str:
    """A safe, bounded rendering of user text for messages."""
    shown = repr(text)
    return shown if len(shown) <= 90 else shown[:80] + "...'"
