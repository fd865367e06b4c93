"""A fitted recipe on storage: versioned in the lake, or in a folder that a model carries.

One version is a folder of files, ``s3://artifacts/recipes/<name>/v<N>/``:

* ``sagelab-recipe.json``: the metadata, written last (a folder without it
  holds no finished version): the recipe, every step's fitted values as JSON,
  the input and output columns, what the fit did, the versions of the
  libraries, and the SHA-256 of every other file.
* ``recipe.yaml``: the recipe as it was written.
* ``estimators.skops``: the fitted scikit-learn / imbalanced-learn objects.
* ``rejects/rejects.jsonl``: training rows that failed a validation rule.

**Why skops and not our own JSON + ``.npy``.** A recipe's estimators are
scikit-learn's own (``KNNImputer`` keeps its training rows, ``IterativeImputer``
a chain of fitted regressors, ``TfidfVectorizer`` a vocabulary): re-creating
them from hand-picked attributes would re-implement their state and break with
each scikit-learn release. skops stores them without pickle: loading builds
only the types it is told to trust. sagelab trusts skops' own defaults plus
the explicit list :data:`TRUSTED_TYPES`; it checks ``get_untrusted_types``
against that list before loading (and when saving, so it never writes what it
would refuse to read), and it checks each file's SHA-256 first, so a damaged
or replaced file is refused before any parser reads it. Plain fitted values
(bounds, edges, names) stay in the JSON, readable by people.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sagelab.errors import InvalidInput, NotFound
from sagelab.lake import ARTIFACTS_BUCKET
from sagelab.prep._recipe_step import require

if TYPE_CHECKING:
    from sagelab.lake import Lake

__all__ = [
    "ESTIMATORS_FILE",
    "METADATA_FILE",
    "REJECTS_FILE",
    "SPEC_FILE",
    "TRUSTED_TYPES",
    "check_files",
    "dump_estimators",
    "latest_version",
    "load_estimators",
    "parse_recipe_uri",
    "publish_metadata",
    "read_dir",
    "read_lake",
    "recipe_prefix",
    "sha256",
    "versions",
    "write_dir",
    "write_lake",
]

METADATA_FILE = "sagelab-recipe.json"
SPEC_FILE = "recipe.yaml"
ESTIMATORS_FILE = "estimators.skops"
REJECTS_FILE = "rejects/rejects.jsonl"
FORMAT_VERSION = 1

#: Types skops does not trust by default that a recipe's estimators are made of.
#: Anything else in an estimators file is refused, whatever its checksum says.
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "numpy.dtype",
        "sklearn.impute._iterative.IterativeImputer",
        "sklearn.impute._iterative._ImputerTriplet",
    }
)

_URI = re.compile(rf"^s3://{ARTIFACTS_BUCKET}/recipes/([a-z0-9][a-z0-9_-]*)/v([0-9]+)/?$")


def sha256(data: bytes) -> str:
    """The SHA-256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def recipe_prefix(name: str, version: int) -> str:
    """The key prefix of one version in the artifacts bucket."""
    return f"recipes/{name}/v{version}/"


def parse_recipe_uri(uri: str) -> tuple[str, int]:
    """``(name, version)`` of ``s3://artifacts/recipes/<name>/v<N>/``.

    Raises:
        InvalidInput: the URI does not name a recipe version.
    """
    match = _URI.match(uri)
    if match is None:
        raise InvalidInput(
            f"{uri!r} does not name a recipe version; expected "
            f"s3://{ARTIFACTS_BUCKET}/recipes/NAME/vN/."
        )
    return match.group(1), int(match.group(2))


# ------------------------------------------------------------------------------ estimators
def dump_estimators(estimators: Mapping[str, Any]) -> bytes:
    """The estimators as skops bytes, refused if they hold a type sagelab would not load.

    Raises:
        InvalidInput: an estimator holds an untrusted type (a custom function, a class
            outside scikit-learn).
    """
    sio = require("skops.io", "skops")
    data: bytes = sio.dumps(dict(estimators))
    _check_types(data, "the recipe being saved")
    return data


def load_estimators(data: bytes, where: str) -> dict[str, Any]:
    """Estimators from skops bytes whose checksum was checked.

    Raises:
        InvalidInput: the file holds a type outside skops' defaults and
            :data:`TRUSTED_TYPES`, or is not a skops file.
    """
    sio = require("skops.io", "skops")
    untrusted = _check_types(data, where)
    try:
        loaded = sio.loads(data, trusted=untrusted)
    except Exception as exc:  # skops raises many kinds on a damaged file
        raise InvalidInput(f"The estimators of {where} cannot be read: {exc}.") from None
    if not isinstance(loaded, dict):
        raise InvalidInput(
            f"The estimators of {where} are not a mapping; the file is not sagelab's."
        )
    return loaded


def _check_types(data: bytes, where: str) -> list[str]:
    sio = require("skops.io", "skops")
    try:
        untrusted = list(sio.get_untrusted_types(data=data))
    except Exception as exc:
        raise InvalidInput(f"The estimators of {where} are not a skops file: {exc}.") from None
    refused = sorted(t for t in untrusted if t not in TRUSTED_TYPES)
    if refused:
        raise InvalidInput(
            f"The estimators of {where} hold types sagelab does not trust: {', '.join(refused)}. "
            "sagelab loads only scikit-learn and imbalanced-learn estimators; refit the recipe."
        )
    return untrusted


# ------------------------------------------------------------------------------ checking
def check_files(files: Mapping[str, bytes], where: str) -> dict[str, Any]:
    """The metadata of a version's files, after checking it and every file's SHA-256.

    Raises:
        NotFound: the metadata or a file it lists is missing.
        InvalidInput: the metadata is not valid, is of a newer format, or a file does not
            match its recorded checksum.
    """
    if METADATA_FILE not in files:
        raise NotFound(
            f"{where} holds no fitted recipe: {METADATA_FILE} is missing (an unfinished save?)."
        )
    try:
        meta = json.loads(files[METADATA_FILE].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{METADATA_FILE} of {where} is not valid JSON: {exc}.") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("sha256"), dict):
        raise InvalidInput(f"{METADATA_FILE} of {where} is not a sagelab recipe.")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise InvalidInput(
            f"The recipe in {where} has format version {version!r}; this sagelab reads up to "
            f"{FORMAT_VERSION}. Upgrade sagelab to load it."
        )
    for name, digest in meta["sha256"].items():
        if name not in files:
            raise NotFound(f"The file {name!r} of {where} is missing; fit the recipe again.")
        if sha256(files[name]) != digest:
            raise InvalidInput(
                f"The file {name!r} of {where} does not match the checksum recorded when it was "
                "saved: it is damaged or was replaced. Fit the recipe again."
            )
    return meta


def _listed(meta_files: list[str]) -> list[str]:
    return [f for f in meta_files if f != METADATA_FILE]


# ------------------------------------------------------------------------------ folders
def write_dir(directory: str | os.PathLike[str], files: Mapping[str, bytes]) -> Path:
    """Write a version's files into a local folder (metadata last).

    Raises:
        InvalidInput: a file name would leave the folder.
    """
    root = Path(directory).expanduser()
    for name in [*_listed(list(files)), METADATA_FILE]:
        target = (root / name).resolve()
        if not target.is_relative_to(root.resolve()):
            raise InvalidInput(f"The file name {name!r} would leave {str(root)!r}.")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(files[name])
        tmp.replace(target)
    return root


def read_dir(directory: str | os.PathLike[str]) -> dict[str, bytes]:
    """A version's files from a local folder (those its metadata lists).

    Raises:
        NotFound: no metadata file there.
        InvalidInput: the metadata lists a file outside the folder.
    """
    root = Path(directory).expanduser()
    meta_path = root / METADATA_FILE
    if not meta_path.is_file():
        raise NotFound(f"There is no fitted recipe in {str(root)!r}: {METADATA_FILE} is missing.")
    files = {METADATA_FILE: meta_path.read_bytes()}
    for name in _names_in(files[METADATA_FILE]):
        path = (root / name).resolve()
        if not path.is_relative_to(root.resolve()):
            raise InvalidInput(f"The recipe in {str(root)!r} lists a file outside it: {name!r}.")
        if path.is_file():
            files[name] = path.read_bytes()
    return files


def _names_in(meta_bytes: bytes) -> list[str]:
    try:
        meta = json.loads(meta_bytes.decode("utf-8"))
        names = meta.get("sha256", {})
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return []  # check_files says what is wrong
    return [str(n) for n in names] if isinstance(names, dict) else []


# ------------------------------------------------------------------------------ the lake
def versions(lake: Lake, name: str) -> list[int]:
    """The finished versions of a recipe in the lake, oldest first."""
    if not lake.bucket_exists(ARTIFACTS_BUCKET):
        return []
    found = []
    listing = lake.list(ARTIFACTS_BUCKET, f"recipes/{name}/", delimiter="/")
    for prefix in listing.common_prefixes:
        tail = prefix.rstrip("/").rsplit("/", 1)[-1]
        if re.fullmatch(r"v[0-9]+", tail) and lake.exists(
            ARTIFACTS_BUCKET, f"{prefix}{METADATA_FILE}"
        ):
            found.append(int(tail[1:]))
    return sorted(found)


def latest_version(lake: Lake, name: str) -> int:
    """The newest finished version of a recipe.

    Raises:
        NotFound: the recipe has no version.
    """
    found = versions(lake, name)
    if not found:
        raise NotFound(
            f"There is no fitted recipe named {name!r} in the lake. Fit one with "
            f"'sagelab prep fit RECIPE.yaml --data SOURCE' (it is saved as s3://{ARTIFACTS_BUCKET}/recipes/NAME/vN/)."
        )
    return found[-1]


def write_lake(lake: Lake, name: str, files: Mapping[str, bytes]) -> int:
    """Save a new version of a recipe (one more than any version started before) and return it.

    The metadata goes last, so readers never see a half-written version.
    """
    lake.create_bucket(ARTIFACTS_BUCKET, exist_ok=True)
    listing = lake.list(ARTIFACTS_BUCKET, f"recipes/{name}/", delimiter="/")
    started = [
        int(p.rstrip("/").rsplit("/", 1)[-1][1:])
        for p in listing.common_prefixes
        if re.fullmatch(r"v[0-9]+", p.rstrip("/").rsplit("/", 1)[-1])
    ]
    version = max(started, default=0) + 1
    prefix = recipe_prefix(name, version)
    for file_name in _listed(list(files)):
        lake.put(ARTIFACTS_BUCKET, prefix + file_name, files[file_name])
    return version


def publish_metadata(lake: Lake, name: str, version: int, metadata: bytes) -> None:
    """Write the metadata file that makes a version finished."""
    lake.put(ARTIFACTS_BUCKET, recipe_prefix(name, version) + METADATA_FILE, metadata)


def read_lake(lake: Lake, name: str, version: int) -> dict[str, bytes]:
    """A version's files from the lake.

    Raises:
        NotFound: no such version.
    """
    prefix = recipe_prefix(name, version)
    if not lake.bucket_exists(ARTIFACTS_BUCKET) or not lake.exists(
        ARTIFACTS_BUCKET, prefix + METADATA_FILE
    ):
        have = versions(lake, name) if lake.bucket_exists(ARTIFACTS_BUCKET) else []
        listed = ", ".join(f"v{v}" for v in have) or "none"
        raise NotFound(f"The recipe {name!r} has no version {version} (versions: {listed}).")
    files = {METADATA_FILE: lake.get(ARTIFACTS_BUCKET, prefix + METADATA_FILE)}
    for file_name in _names_in(files[METADATA_FILE]):
        if lake.exists(ARTIFACTS_BUCKET, prefix + file_name):
            files[file_name] = lake.get(ARTIFACTS_BUCKET, prefix + file_name)
    return files
