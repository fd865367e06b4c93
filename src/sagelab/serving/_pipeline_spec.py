"""An inference pipeline as written: its steps checked for form and order before anything loads.

Every problem is found and reported together, one message each, naming the step
(counted from 1) and the field; see :mod:`sagelab.serving._pipeline` for what
each kind of step does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sagelab._plugins import normalise_target
from sagelab.errors import InvalidInput, InvalidSpec, closest
from sagelab.lake import ARTIFACTS_BUCKET

__all__ = [
    "LABELS",
    "MAX_STEPS",
    "MIN_STEPS",
    "MODEL",
    "RECIPE",
    "SCRIPT",
    "STEP_TYPES",
    "PipelineError",
    "StepSpec",
    "parse_recipe_reference",
    "parse_steps",
]

MIN_STEPS, MAX_STEPS = 2, 5
RECIPE, MODEL, LABELS, SCRIPT = "Recipe", "Model", "Labels", "Script"
#: The kinds of step.
STEP_TYPES = (RECIPE, MODEL, LABELS, SCRIPT)
_FIELDS = {
    RECIPE: ("Type", "Name", "Recipe"),
    MODEL: ("Type", "Name", "Model"),
    LABELS: ("Type", "Name", "Labels", "Threshold", "KeepScore"),
    SCRIPT: ("Type", "Name", "Target"),
}
_REQUIRED = {RECIPE: "Recipe", MODEL: "Model", LABELS: "Labels", SCRIPT: "Target"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_RECIPE_NAME = re.compile(r"^([a-z0-9][a-z0-9_-]{0,62})(?::v?([0-9]{1,9}))?$")
_RECIPE_URI = re.compile(rf"^s3://{ARTIFACTS_BUCKET}/recipes/([a-z0-9][a-z0-9_-]*)/v([0-9]+)/?$")
_MAX_LABELS = 1000
_MAX_REFERENCE = 2048


class PipelineError(InvalidSpec):
    """An inference pipeline is wrong; ``problems`` lists one message per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__(problems, "inference pipeline")


@dataclass(frozen=True)
class StepSpec:
    """One step as given, checked for form.

    Attributes:
        index: its position, from 1.
        kind: ``Recipe``, ``Model``, ``Labels`` or ``Script``.
        name: its ``Name``, or one made from what it names (unique in the pipeline).
        fields: the mapping as given.
    """

    index: int
    kind: str
    name: str
    fields: dict[str, Any]

    @property
    def label(self) -> str:
        return f"Step {self.index} ({self.kind})"


def parse_recipe_reference(reference: str) -> tuple[str, int | None]:
    """``(name, version)`` of ``NAME``, ``NAME:N`` (or ``NAME:vN``) or
    ``s3://artifacts/recipes/NAME/vN/``; the version is None for the latest.

    Raises:
        InvalidInput: none of these forms.
    """
    for pattern in (_RECIPE_NAME, _RECIPE_URI):
        match = pattern.match(reference) if isinstance(reference, str) else None
        if match is not None:
            return match.group(1), int(match.group(2)) if match.group(2) else None
    raise InvalidInput(
        f"Recipe is {reference!r}; expected a recipe saved in the lake: NAME (its latest "
        f"version), NAME:N, or s3://{ARTIFACTS_BUCKET}/recipes/NAME/vN/."
    )


def parse_steps(steps: Any) -> list[StepSpec]:
    """The steps, checked for form, fields and order, each with its name.

    Raises:
        PipelineError: one message per problem, naming the step and the field.
    """
    if isinstance(steps, (str, bytes)) or not isinstance(steps, Sequence):
        raise PipelineError(
            [
                f"A pipeline is a list of {MIN_STEPS} to {MAX_STEPS} steps; got a "
                f"{type(steps).__name__}."
            ]
        )
    problems: list[str] = []
    if not MIN_STEPS <= len(steps) <= MAX_STEPS:
        problems.append(f"A pipeline has {MIN_STEPS} to {MAX_STEPS} steps; got {len(steps)}.")
    kinds: list[str | None] = []
    for index, step in enumerate(steps, start=1):
        kind, found = _step_problems(index, step)
        kinds.append(kind)
        problems += found
    problems += _order_problems(kinds)
    problems += _duplicate_names(steps, kinds)
    if problems:
        raise PipelineError(problems)
    fields = [dict(step) for step in steps]
    names = _names(fields, [str(k) for k in kinds])
    return [
        StepSpec(i, str(k), n, f)
        for i, (k, n, f) in enumerate(zip(kinds, names, fields, strict=True), start=1)
    ]


# ------------------------------------------------------------------------------ one step
def _step_problems(index: int, step: Any) -> tuple[str | None, list[str]]:
    if not isinstance(step, Mapping):
        return None, [
            f"Step {index} is a {type(step).__name__}; a step is a mapping with a Type "
            f"({', '.join(STEP_TYPES)})."
        ]
    kind = step.get("Type")
    if kind not in STEP_TYPES:
        got = f"the Type {kind!r}" if "Type" in step else "no Type"
        return None, [
            f"Step {index} has {got}; a step's Type is one of {', '.join(STEP_TYPES)}."
            f"{closest(str(kind), STEP_TYPES)}"
        ]
    label = f"Step {index} ({kind})"
    problems = [
        f"{label} has an unknown field {key!r}.{closest(str(key), _FIELDS[kind])} A {kind} "
        f"step has the fields {', '.join(_FIELDS[kind])}."
        for key in step
        if key not in _FIELDS[kind]
    ]
    name = step.get("Name")
    if "Name" in step and not (isinstance(name, str) and _NAME.match(name)):
        problems.append(
            f"{label}: Name {name!r} is not valid: use 1–63 letters, digits, '-' and '_', "
            "starting with a letter or digit."
        )
    required = _REQUIRED[kind]
    if required not in step:
        problems.append(f"{label} lacks its {required} field.")
    else:
        problems += _CHECKS[kind](label, step)
    return kind, problems


def _recipe_problems(label: str, step: Mapping[str, Any]) -> list[str]:
    try:
        parse_recipe_reference(step["Recipe"])
    except InvalidInput as exc:
        return [f"{label}: {exc}"]
    return []


def _model_problems(label: str, step: Mapping[str, Any]) -> list[str]:
    reference = step["Model"]
    if not isinstance(reference, str) or not reference.strip():
        return [
            f"{label}: Model is {reference!r}; expected a model reference: GROUP/N, GROUP, a "
            "training job's name or an s3:// model folder."
        ]
    if len(reference) > _MAX_REFERENCE:
        return [f"{label}: Model has {len(reference)} characters; at most {_MAX_REFERENCE}."]
    return []


def _labels_problems(label: str, step: Mapping[str, Any]) -> list[str]:
    labels = step["Labels"]
    problems = []
    if (
        not isinstance(labels, list)
        or not 2 <= len(labels) <= _MAX_LABELS
        or not all(_is_label(v) for v in labels)
    ):
        problems.append(
            f"{label}: Labels must be a list of 2 to {_MAX_LABELS} labels (strings or finite "
            f"numbers), one per class in class order; got {str(labels)[:80]}."
        )
    elif len({(type(v), v) for v in labels}) != len(labels):
        twice = sorted({str(v) for v in labels if labels.count(v) > 1})
        problems.append(f"{label}: Labels names {', '.join(twice)} more than once.")
    threshold = step.get("Threshold", 0.5)
    if not _is_finite(threshold):
        problems.append(f"{label}: Threshold must be a finite number; got {threshold!r}.")
    keep = step.get("KeepScore", False)
    if not isinstance(keep, bool):
        problems.append(f"{label}: KeepScore must be true or false; got {keep!r}.")
    return problems


def _script_problems(label: str, step: Mapping[str, Any]) -> list[str]:
    try:
        normalise_target(step["Target"])
    except InvalidInput as exc:
        return [f"{label}: Target: {exc}"]
    return []


_CHECKS = {
    RECIPE: _recipe_problems,
    MODEL: _model_problems,
    LABELS: _labels_problems,
    SCRIPT: _script_problems,
}


def _is_finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_label(value: Any) -> bool:
    return (isinstance(value, str) and bool(value)) or _is_finite(value)


# ------------------------------------------------------------------------------ the whole
def _order_problems(kinds: list[str | None]) -> list[str]:
    models = [i for i, k in enumerate(kinds, start=1) if k == MODEL]
    if len(models) != 1:
        where = f" (steps {', '.join(map(str, models))})" if models else ""
        return [f"A pipeline has exactly one Model step; got {len(models)}{where}."]
    model = models[0]
    problems = []
    for i, kind in enumerate(kinds, start=1):
        if kind == RECIPE and i > model:
            problems.append(
                f"Step {i} (Recipe) comes after the Model step (step {model}); a recipe "
                "prepares the model's input, so it goes before the model."
            )
        elif kind in (LABELS, SCRIPT) and i < model:
            problems.append(
                f"Step {i} ({kind}) comes before the Model step (step {model}); it works on "
                "the model's output, so it goes after the model."
            )
    return problems


def _duplicate_names(steps: Sequence[Any], kinds: list[str | None]) -> list[str]:
    seen: dict[str, int] = {}
    problems = []
    for i, step in enumerate(steps, start=1):
        name = step.get("Name") if isinstance(step, Mapping) else None
        if not isinstance(name, str):
            continue
        if name in seen:
            problems.append(
                f"Step {i} ({kinds[i - 1]}): Name {name!r} is step {seen[name]}'s too; step "
                "names must differ."
            )
        else:
            seen[name] = i
    return problems


def _names(fields: list[dict[str, Any]], kinds: list[str]) -> list[str]:
    """Each step's Name, or one made from what it names, unique in the pipeline."""
    taken = {f["Name"] for f in fields if "Name" in f}
    names = []
    for step, kind in zip(fields, kinds, strict=True):
        if "Name" in step:
            names.append(step["Name"])
            continue
        base = _default_name(step, kind)
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name)
        names.append(name)
    return names


def _default_name(step: dict[str, Any], kind: str) -> str:
    if kind == RECIPE:
        return parse_recipe_reference(step["Recipe"])[0]
    if kind == SCRIPT:
        function = str(step["Target"]).rpartition(":")[2].rpartition(".")[2]
        return function if _NAME.match(function) else "script"
    return kind.lower()
