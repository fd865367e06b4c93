"""Inference pipelines: 2–5 steps in series behind one variant, as SageMaker's PipelineModel.

A step is a mapping with a ``Type`` and an optional ``Name``:

* ``{"Type": "Recipe", "Recipe": "churn-prep"}``: a fitted preparation recipe
  (``NAME`` for its latest version, ``NAME:N``, or ``s3://artifacts/recipes/NAME/vN/``).
  Recipes come before the model; the last one must write exactly the model's
  features, in the model's order (its label aside).
* ``{"Type": "Model", "Model": "churn/3"}``: exactly one, a model reference the
  registry resolves (``GROUP/N``, ``GROUP``, a training job, an ``s3://`` model folder).
* ``{"Type": "Labels", "Labels": ["no", "yes"], "Threshold": 0.5, "KeepScore": false}``:
  after the model: one score per row becomes ``Labels[1]`` when above the threshold,
  else ``Labels[0]``; a row of class probabilities becomes the label of the most
  probable class. ``KeepScore`` keeps the score (or that class's probability).
* ``{"Type": "Script", "Target": "post.py:adjust"}``: after the model: a function
  (``file.py:function`` or ``module:function``) called on the previous step's
  output array (the model's scores, or its class probabilities; the labels of a
  Labels step; another script's rows) that returns one row per row.

:func:`check_pipeline` runs at deploy: it checks the steps (one message per
problem), pins what each names (the recipe's exact version, the model's files and
checksums, the script's SHA-256), loads every step once, and checks that each
step's output is what the next one reads. Its records are what the endpoint
config stores; :func:`load_pipeline` turns them into a :class:`ServedPipeline` in
each worker, whose :meth:`~ServedPipeline.invoke` takes one request and gives one
answer with each step's latency.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sagelab._plugins import check_call, load_target, normalise_target
from sagelab.algorithms import Prediction
from sagelab.errors import InvalidInput, SagelabError
from sagelab.serving._codec import (
    decode_rows,
    encode_prediction,
    media_type,
    negotiate,
)
from sagelab.serving._pipeline_codec import decode_records, encode_labels, encode_values
from sagelab.serving._pipeline_spec import (
    LABELS,
    MAX_STEPS,
    MIN_STEPS,
    MODEL,
    RECIPE,
    SCRIPT,
    STEP_TYPES,
    PipelineError,
    StepSpec,
    parse_recipe_reference,
    parse_steps,
)
from sagelab.serving._pipeline_steps import (
    Labelled,
    LabelsStep,
    ModelStep,
    RecipeStep,
    ScriptStep,
    Step,
    chain_problems,
    positional,
)

if TYPE_CHECKING:
    from sagelab.algorithms import Algorithm
    from sagelab.registry import ModelRegistry, ResolvedModel

__all__ = [
    "MAX_STEPS",
    "MIN_STEPS",
    "MODEL_FIELDS",
    "STEP_TYPES",
    "PipelineError",
    "ServedPipeline",
    "check_pipeline",
    "load_pipeline",
    "pipeline_model",
]

#: The fields of a Model step's record that ``resolved_of`` reads (as a variant stores them).
MODEL_FIELDS = (
    "Model",
    "ModelData",
    "Algorithm",
    "ProblemType",
    "Checksums",
    "ModelPackage",
    "TrainingJobName",
)


# ------------------------------------------------------------------------------ serving
class ServedPipeline:
    """A pipeline as a worker serves it: its steps loaded, run one after the other.

    Attributes:
        step_names: each step's name, in order (the names its latencies are reported by).
        feature_names: what the first step reads by name: the recipe's input columns, or
            the model's features (None when the model knows them by position only).
        num_features: how many values a row has for the first step.
        algorithm: the model step's model.
    """

    def __init__(self, steps: list[Step]) -> None:
        self._steps = steps
        self.step_names: tuple[str, ...] = tuple(s.name for s in steps)
        self._model = next(s for s in steps if isinstance(s, ModelStep))
        self.algorithm: Algorithm = self._model.algorithm
        first = steps[0]
        if isinstance(first, RecipeStep):
            self._columns = [(c.name, c.kind) for c in first.recipe.inputs]
            self.feature_names: tuple[str, ...] | None = tuple(n for n, _ in self._columns)
            self.num_features = len(self._columns)
        else:
            names = self._model.feature_names
            self._columns = []
            self.feature_names = None if positional(names) else tuple(names)
            self.num_features = len(names)

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str, list[int]]:
        """One request through every step: the answer, its type, and each step's latency.

        Args:
            body: the request body.
            content_type: its media type (as :func:`~sagelab.serving._codec.media_type` gives).
            accept: the answer's type (as :func:`~sagelab.serving._codec.negotiate` gives).

        Returns:
            The answer's body, its media type, and the nanoseconds each step took, in
            step order (reading the body and writing the answer are in none of them).

        Raises:
            BadRequest: the caller's mistake (a body that cannot be read, a missing
                column, a value a step cannot read, a row a recipe removes), naming the
                row and the step.
            Exception: whatever else a step raises (a fault of the model or a script).
        """
        content_type = media_type(content_type)
        accept = negotiate(accept, content_type or "text/csv")
        value: Any
        if self._columns:
            value = decode_records(body, content_type, self._columns, self._steps[0].what)
        else:
            value = decode_rows(body, content_type, self.num_features, self.feature_names)
        latencies: list[int] = []
        for step in self._steps:
            started = time.perf_counter_ns()
            value = step.run(value)
            latencies.append(time.perf_counter_ns() - started)
        return _encode(value, accept), accept, latencies


def _encode(value: Any, accept: str) -> bytes:
    if isinstance(value, Prediction):
        return encode_prediction(value, accept)
    if isinstance(value, Labelled):
        return encode_labels(value.labels, value.scores, accept)
    return encode_values(np.asarray(value), accept)


# ------------------------------------------------------------------------------ deploying
def check_pipeline(
    steps: Sequence[Mapping[str, Any]], registry: ModelRegistry
) -> list[dict[str, Any]]:
    """Check a pipeline, pin and load each of its steps once: the records to store.

    Args:
        steps: 2–5 step mappings (see the module's docstring).
        registry: resolves and loads the model; its lake holds the recipes.

    Returns:
        One JSON-serialisable record per step, with what it names pinned: a Recipe's
        exact version (``Recipe`` is its ``s3://`` URI), a Model's resolved fields as a
        variant stores them (``Model``, ``ModelData``, ``Algorithm``, ``ProblemType``,
        ``Checksums``, ``ModelPackage``, ``TrainingJobName``), a Script's normalised
        target and SHA-256; every record has its ``Type`` and ``Name``.

    Raises:
        PipelineError: the steps are malformed, out of order, or do not fit together
            (one message per problem, naming the step and the field).
        NotFound: a recipe or a model that does not exist (the step named).
        InvalidInput: a step that does not load: a file that fails its checksum, a
            script that cannot be imported (the step named).
    """
    records: list[dict[str, Any]] = []
    loaded: list[Step] = []
    for spec in parse_steps(steps):
        with _step_errors(spec.index, spec.kind):
            record, step = _pin(spec, registry)
        records.append(record)
        loaded.append(step)
    problems = chain_problems(loaded, probe=True)
    if problems:
        raise PipelineError(problems)
    return records


def load_pipeline(
    records: Sequence[Mapping[str, Any]],
    registry: ModelRegistry,
    *,
    load_model: Callable[[Mapping[str, Any]], Algorithm] | None = None,
) -> ServedPipeline:
    """The pipeline :func:`check_pipeline` pinned, loaded to serve (a worker calls this).

    The model is read from a temporary folder after its files are checked, and predicts
    on one thread; a recipe must still be the one deployed, a script's file unchanged.

    Args:
        records: what :func:`check_pipeline` returned.
        registry: loads the model; its lake holds the recipes.
        load_model: loads the Model step's record instead (a worker's cache of models
            keyed by ``ModelData`` and ``Checksums``); it checks the files and sets the
            prediction threads itself.

    Raises:
        NotFound: a recipe or model that is gone.
        InvalidInput: a step that no longer checks out or does not load (named), or
            records that are not a pipeline's.
    """
    kinds = [r.get("Type") if isinstance(r, Mapping) else None for r in records]
    if not MIN_STEPS <= len(kinds) <= MAX_STEPS or kinds.count(MODEL) != 1:
        raise InvalidInput(
            f"The stored pipeline has steps {kinds}; a pipeline's records hold {MIN_STEPS} to "
            f"{MAX_STEPS} steps with one Model. Deploy it again."
        )
    loaded: list[Step] = []
    for index, record in enumerate(records, start=1):
        with _step_errors(index, str(record.get("Type"))):
            try:
                loaded.append(_load(index, record, registry, load_model=load_model))
            except SagelabError:
                raise
            except (KeyError, TypeError, ValueError) as exc:
                raise InvalidInput(
                    f"the stored step is not a pipeline step's record ({exc}); deploy again"
                ) from None
    problems = chain_problems(loaded, probe=False)
    if problems:
        raise PipelineError(problems)
    return ServedPipeline(loaded)


def model_record(resolved: ResolvedModel) -> dict[str, Any]:
    """What a variant's (or a pipeline's Model step's) record holds of its resolved model."""
    return {
        "Model": resolved.reference,
        "ModelData": resolved.model_data,
        "Algorithm": resolved.algorithm,
        "ProblemType": resolved.problem_type,
        "Checksums": dict(resolved.checksums),
        "ModelPackage": resolved.package,
        "TrainingJobName": resolved.training_job,
    }


def pipeline_model(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The Model step's resolved fields (what a variant's record holds for its model).

    Raises:
        InvalidInput: the records hold no Model step.
    """
    for record in records:
        if record.get("Type") == MODEL:
            return {k: record[k] for k in MODEL_FIELDS}
    raise InvalidInput("The pipeline has no Model step.")


@contextmanager
def _step_errors(index: int, kind: str) -> Iterator[None]:
    """Name the step in what loading it raises; anything unexpected becomes InvalidInput."""
    prefix = f"Step {index} ({kind})"
    try:
        yield
    except PipelineError:
        raise
    except InvalidInput as exc:  # RecipeError and others whose arguments differ
        raise InvalidInput(f"{prefix}: {exc}") from exc
    except SagelabError as exc:
        raise type(exc)(f"{prefix}: {exc}") from exc
    except Exception as exc:
        raise InvalidInput(f"{prefix} did not load: {type(exc).__name__}: {exc}") from exc


# ------------------------------------------------------------------------------ pinning, loading
def _pin(spec: StepSpec, registry: ModelRegistry) -> tuple[dict[str, Any], Step]:
    """What a step names, pinned (its record), and the step loaded once."""
    fields, base = spec.fields, {"Type": spec.kind, "Name": spec.name}
    if spec.kind == RECIPE:
        from sagelab.prep import load_recipe

        name, version = parse_recipe_reference(fields["Recipe"])
        recipe = load_recipe(name, version, lake=registry.lake)
        record = {
            **base,
            "Recipe": recipe.uri,
            "Reference": fields["Recipe"],
            "FittedAt": recipe.fitted_at,
            "InputColumns": recipe.input_columns,
        }
        return record, RecipeStep(spec.index, spec.name, recipe)
    if spec.kind == MODEL:
        record = {**base, **model_record(registry.resolve(fields["Model"]))}
        return record, _load(spec.index, record, registry, threads=None)
    if spec.kind == LABELS:
        record = {
            **base,
            "Labels": list(fields["Labels"]),
            "Threshold": float(fields.get("Threshold", 0.5)),
            "KeepScore": bool(fields.get("KeepScore", False)),
        }
        return record, _load(spec.index, record, registry)
    target = normalise_target(fields["Target"])
    record = {**base, "Target": target, "Sha256": _script_digest(target)}
    return record, _load(spec.index, record, registry)


def _load(
    index: int,
    record: Mapping[str, Any],
    registry: ModelRegistry,
    *,
    threads: int | None = 1,
    load_model: Callable[[Mapping[str, Any]], Algorithm] | None = None,
) -> Step:
    """A step from its record, checked against what was pinned."""
    kind, name = record["Type"], str(record["Name"])
    if kind == RECIPE:
        from sagelab.prep import load_recipe

        recipe = load_recipe(str(record["Recipe"]), lake=registry.lake)
        if recipe.fitted_at != record["FittedAt"]:
            raise InvalidInput(
                f"the recipe at {record['Recipe']} was fitted at {recipe.fitted_at}, but the "
                f"pipeline was deployed with the one fitted at {record['FittedAt']}: that "
                "version was replaced. Deploy the pipeline again."
            )
        return RecipeStep(index, name, recipe)
    if kind == MODEL:
        if load_model is not None:
            algorithm = load_model(record)
        else:
            from sagelab.serving._endpoints import resolved_of  # _endpoints may import us

            with tempfile.TemporaryDirectory(prefix="sagelab-serve-") as tmp:
                model = registry.load(resolved_of(record), workdir=Path(tmp) / "m")
            algorithm = model.algorithm
            if threads is not None:
                algorithm.set_prediction_threads(threads)
        problem = str(record.get("ProblemType") or algorithm.problem_type())
        return ModelStep(index, name, str(record["Model"]), algorithm, problem)
    if kind == LABELS:
        return LabelsStep(
            index,
            name,
            list(record["Labels"]),
            float(record["Threshold"]),
            bool(record["KeepScore"]),
        )
    if kind == SCRIPT:
        target = str(record["Target"])
        digest = _script_digest(target)
        if digest != record.get("Sha256"):
            raise InvalidInput(
                f"the script {target!r} changed since the pipeline was deployed (its SHA-256 "
                "differs); deploy the pipeline again to serve the new script."
            )
        return ScriptStep(index, name, target, _function(target))
    raise InvalidInput(f"the stored Type {kind!r} is not one of {', '.join(STEP_TYPES)}")


def _script_digest(target: str) -> str | None:
    """The SHA-256 of a script file target (None for a module, which is installed code)."""
    path = target.rpartition(":")[0]
    if not path.endswith(".py"):
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise InvalidInput(f"The script {path!r} cannot be read: {exc.strerror}.") from None


def _function(target: str) -> Callable[[Any], Any]:
    function = load_target(target)
    if not callable(function):
        raise InvalidInput(
            f"The target {target!r} is a {type(function).__name__}, not a function; it must "
            "name a function that takes the previous step's output array."
        )
    check_call(function, (np.empty(0),), {}, f"the script {target!r}")
    return function
