"""A recipe as written: YAML in, steps out, every problem found before anything is fitted.

The format::

    name: flights-delay          # optional: the artifact's name (default: the file's name)
    target: late                 # optional: the label column; kept as is, absent at inference
    seed: 0                      # optional: for every step that draws random numbers
    steps:
      - step: drop_columns
        columns: [year, tailnum]
      - step: impute
        columns: [dep_delay]
        strategy: median

A bare list of steps is a recipe too, and a step may also be written as a
one-key mapping (``- impute: {columns: [dep_delay], strategy: median}``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import yaml

from sagelab.errors import InvalidInput, NotFound, closest
from sagelab.prep._recipe_frame import Schema, kind_of
from sagelab.prep._recipe_params import RecipeError
from sagelab.prep._recipe_step import STEP_NAMES, Step, step_class, unknown_step_message

if TYPE_CHECKING:
    from sagelab.lake import Lake

__all__ = [
    "NAME_PATTERN",
    "RecipeSpec",
    "check_name",
    "parse_recipe",
    "plan_recipe",
    "source_kinds",
]

#: A recipe's name: it becomes part of the artifact's key.
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_TOP_KEYS = ("name", "target", "seed", "description", "steps")
_MAX_BYTES = 1 << 20


@dataclass
class RecipeSpec:
    """A parsed recipe, its steps checked for names and parameters (not yet against data).

    Attributes:
        steps: the steps, in order, not fitted.
        name: the recipe's name, if it gives one.
        target: the label column, if any.
        seed: the random seed for every step that draws numbers.
        description: free text.
        text: the YAML as written, kept in the artifact.
    """

    steps: list[Step]
    name: str | None = None
    target: str | None = None
    seed: int = 0
    description: str | None = None
    text: str | None = None
    raw_steps: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The recipe as plain data, every parameter filled in."""
        return {
            "name": self.name,
            "target": self.target,
            "seed": self.seed,
            "description": self.description,
            "steps": [{"step": s.name, **s.spec_values()} for s in self.steps],
        }


def check_name(name: str) -> str:
    """A recipe name, checked.

    Raises:
        InvalidInput: not lower-case letters, digits, ``-`` and ``_`` (at most 63, starting
            with a letter or digit).
    """
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise InvalidInput(
            f"The recipe name {name!r} is not valid: use lower-case letters, digits, '-' and "
            "'_' (at most 63), starting with a letter or digit, e.g. 'flights-delay'."
        )
    return name


def parse_recipe(source: Any, *, lake: Lake | None = None) -> RecipeSpec:
    """A recipe from a YAML file (a path, or ``s3://`` in the lake), YAML text, or plain data.

    Args:
        source: a :class:`RecipeSpec` (returned as is); a ``pathlib.Path`` or a string
            naming a file; a string holding YAML (it has a line break); or the loaded
            data, a list of steps or a mapping with ``steps``.
        lake: the lake, to read a recipe at an ``s3://`` location.

    Raises:
        NotFound: the file does not exist.
        RecipeError: malformed YAML, a wrong structure, unknown steps or parameters,
            wrong parameter values; one message per problem.
    """
    if isinstance(source, RecipeSpec):
        return source
    text: str | None = None
    where = "recipe"
    if isinstance(source, str | os.PathLike):
        text, where = _read(source, lake)
        data = _load_yaml(text, where)
    else:
        data = source
    spec = _build(data, where)
    spec.text = text if text is not None else yaml.safe_dump(spec.as_dict(), sort_keys=False)
    if spec.name is None and isinstance(source, str | os.PathLike) and where != "recipe":
        stem = Path(str(source)).name.split(".")[0].lower().replace(" ", "-")
        spec.name = stem if NAME_PATTERN.match(stem) else None
    return spec


def _read(source: str | os.PathLike[str], lake: Lake | None) -> tuple[str, str]:
    if isinstance(source, str) and "\n" in source:
        return source, "recipe"
    path = str(source)
    if path.startswith("s3://"):
        if lake is None:
            raise InvalidInput(f"The recipe {path!r} is in the lake, but no lake was given.")
        bucket, key = lake.parse_uri(path)
        data = lake.get(bucket, key)
    else:
        file = Path(path).expanduser()
        if not file.is_file():
            raise NotFound(
                f"There is no recipe file at {path!r}. Give the path of a YAML file of steps."
            )
        if file.stat().st_size > _MAX_BYTES:
            raise InvalidInput(f"The recipe file {path!r} is larger than 1 MiB; is it a recipe?")
        data = file.read_bytes()
    try:
        return data.decode("utf-8"), Path(path).name
    except UnicodeDecodeError:
        raise InvalidInput(f"The recipe file {path!r} is not UTF-8 text.") from None


def _load_yaml(text: str, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise RecipeError([f"{where} is not valid YAML{at}: {exc.problem}."]) from None
    except yaml.YAMLError as exc:
        raise RecipeError([f"{where} is not valid YAML: {exc}."]) from None


def _build(data: Any, where: str) -> RecipeSpec:
    problems: list[str] = []
    top: Mapping[str, Any]
    if isinstance(data, list):
        top = {"steps": data}
    elif isinstance(data, Mapping):
        top = data
    else:
        raise RecipeError(
            [f"{where} must be a list of steps, or a mapping with 'steps'; got {_what(data)}."]
        )
    for key in top:
        if key not in _TOP_KEYS:
            problems.append(
                f"{where}: unknown key {key!r}.{closest(str(key), _TOP_KEYS)} "
                f"The keys are {', '.join(_TOP_KEYS)}."
            )
    name, target, seed = top.get("name"), top.get("target"), top.get("seed", 0)
    if name is not None and (not isinstance(name, str) or not NAME_PATTERN.match(name)):
        problems.append(
            f"{where}: 'name' must be lower-case letters, digits, '-' and '_'; got {name!r}."
        )
    if target is not None and (not isinstance(target, str) or not target):
        problems.append(f"{where}: 'target' must be a column name; got {target!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        problems.append(f"{where}: 'seed' must be an integer in [0, 2**32); got {seed!r}.")
    description = top.get("description")
    raw = top.get("steps")
    if not isinstance(raw, list) or not raw:
        problems.append(f"{where}: 'steps' must be a non-empty list of steps; got {_what(raw)}.")
        raw = []
    steps: list[Step] = []
    raw_steps: list[dict[str, Any]] = []
    for index, entry in enumerate(raw, start=1):
        step, entry_problems, given = _step(index, entry)
        problems.extend(entry_problems)
        if step is not None:
            steps.append(step)
            raw_steps.append(given)
    if problems:
        raise RecipeError(problems)
    return RecipeSpec(
        steps=steps,
        name=name,
        target=target,
        seed=int(seed),
        description=str(description) if description is not None else None,
        raw_steps=raw_steps,
    )


def _step(index: int, entry: Any) -> tuple[Step | None, list[str], dict[str, Any]]:
    label = f"step {index}"
    if isinstance(entry, Mapping) and "step" not in entry and len(entry) == 1:
        ((name, params),) = entry.items()
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            return (
                None,
                [f"{label} ({name}): its parameters must be a mapping; got {_what(params)}."],
                {},
            )
        given = dict(params)
    elif isinstance(entry, Mapping):
        name = entry.get("step")
        given = {k: v for k, v in entry.items() if k != "step"}
    else:
        return None, [f"{label} must be a mapping with a 'step' key; got {_what(entry)}."], {}
    if name is None:
        return (
            None,
            [f"{label} has no 'step' key naming what it does ({', '.join(STEP_NAMES)})."],
            {},
        )
    cls = step_class(name) if isinstance(name, str) else None
    if cls is None:
        return None, [unknown_step_message(label, name)], {}
    step, problems = cls.parse(index, given)
    return step, problems, {"step": name, **given}


def source_kinds(spec: RecipeSpec, schema: pa.Schema) -> dict[str, str]:
    """The kind each source column is read as.

    A column of nulls only (all missing in the training data) has no type of its
    own: it is read as the first step naming it wants (text for an encoder,
    datetimes for a datetime step, numbers for a scaler), else as numbers.
    """
    kinds = {f.name: kind_of(f.type) for f in schema}
    for f in schema:
        if pa.types.is_null(f.type):
            wanted = (
                step.preferred_kind(f.name) for step in spec.steps if f.name in step.named_columns()
            )
            kinds[f.name] = next((k for k in wanted if k is not None), kinds[f.name])
    return kinds


def plan_recipe(spec: RecipeSpec, kinds: Mapping[str, str]) -> list[str]:
    """Check every step against the columns it will see, from the source's columns on.

    Args:
        spec: the parsed recipe.
        kinds: the source's columns and their kinds, in order.

    Returns:
        One message per problem (a missing column names the step, the column and the
        columns there are at that point).
    """
    problems: list[str] = []
    schema = Schema(dict(kinds))
    if spec.target is not None and spec.target not in kinds:
        problems.append(
            f"The label column {spec.target!r} (target) is not in the data.{closest(spec.target, kinds)} "
            f"Columns: {', '.join(kinds)}."
        )
    for step in spec.steps:
        problems.extend(step.plan(schema, spec.target))
    return problems


def _what(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    return f"a {type(value).__name__}"
