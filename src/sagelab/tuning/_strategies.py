"""The search behind each strategy, from Optuna: samplers, pruners, and the study's trials.

=========== ============================================ ======================================
strategy    sampler                                      stopping of weak trials
=========== ============================================ ======================================
Bayesian    ``TPESampler`` (``GPSampler`` with ``gp``)   ``MedianPruner`` with early stopping Auto
Random      ``RandomSampler``                            ``MedianPruner`` with early stopping Auto
Grid        ``GridSampler`` over the categorical ranges  ``MedianPruner`` with early stopping Auto
Hyperband   ``TPESampler``                               ``HyperbandPruner(min, max resource)``
=========== ============================================ ======================================

The study lives in memory, in the tuning job's process. Optuna's RDB storage on
the metadata database would add Optuna's own tables and migrations to the
schema, and would hold a second record of what the trials' job records already
hold (hyperparameters, status, metric series); a resumed job rebuilds its study
from those records instead (:func:`add_finished`). A trial's steps are the
resource it has used: iterations done, the metric's step + 1.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from sagelab._imports import require
from sagelab.tuning._ranges import CATEGORICAL, INTEGER, ParameterRange

if TYPE_CHECKING:
    import optuna

    from sagelab.tuning._spec import TuningSpec

__all__ = [
    "COMPLETED",
    "EARLY_STOPPED",
    "FAILED",
    "FinishedTrial",
    "add_finished",
    "distributions",
    "grid_combinations",
    "hyperparameters_of",
    "importances",
    "load_optuna",
    "new_study",
    "params_of",
]

#: How a finished trial counts for the search.
COMPLETED, EARLY_STOPPED, FAILED = "Completed", "EarlyStopped", "Failed"
#: Early stopping Auto compares a trial with the median of at least this many finished trials.
_MEDIAN_STARTUP_TRIALS = 3
#: ... and leaves the first tenth of the resource alone (noisy first iterations).
_MEDIAN_WARMUP_SHARE = 0.1
_HYPERBAND_REDUCTION_FACTOR = 3
#: Relative slack when a value read back from a job record is matched to a range.
_SLACK = 1e-9


def load_optuna() -> ModuleType:
    """Optuna, imported on first use.

    Raises:
        ImportError: Optuna is not installed; the message says how to install it.
    """
    return require("optuna", "Automatic model tuning", "optuna", "tuning")


@dataclass(frozen=True)
class FinishedTrial:
    """A trial that ended, as the search learns from it.

    Attributes:
        hyperparameters: the trial's hyperparameters (static and tuned).
        state: ``Completed``, ``EarlyStopped`` or ``Failed``.
        value: the objective (None for a failed trial).
        intermediate: the objective at each step (resource used).
    """

    hyperparameters: Mapping[str, Any]
    state: str
    value: float | None = None
    intermediate: Mapping[int, float] = field(default_factory=dict)


# --------------------------------------------------------------------------- ranges <-> params
def distributions(ranges: tuple[ParameterRange, ...]) -> dict[str, Any]:
    """Optuna's distribution per range.

    A ReverseLogarithmic range over x is searched as ``1 - x`` on a log scale, so
    values close to 1 get as much attention as a log scale gives values close to 0.
    """
    dist = load_optuna().distributions
    out: dict[str, Any] = {}
    for r in ranges:
        if r.type == CATEGORICAL:
            out[r.name] = dist.CategoricalDistribution(list(r.values))
            continue
        # build_spec has checked that numeric ranges have both bounds.
        low, high, scale = r.min_value or 0, r.max_value or 0, r.scale()
        if r.type == INTEGER:
            out[r.name] = dist.IntDistribution(int(low), int(high), log=scale == "Logarithmic")
        elif scale == "ReverseLogarithmic":
            out[r.name] = dist.FloatDistribution(1.0 - float(high), 1.0 - float(low), log=True)
        else:
            out[r.name] = dist.FloatDistribution(
                float(low), float(high), log=scale == "Logarithmic"
            )
    return out


def hyperparameters_of(
    ranges: tuple[ParameterRange, ...], params: Mapping[str, Any]
) -> dict[str, Any]:
    """The hyperparameter values an Optuna trial's params stand for."""
    out: dict[str, Any] = {}
    for r in ranges:
        value = params[r.name]
        if r.type != CATEGORICAL and r.scale() == "ReverseLogarithmic":
            value = 1.0 - float(value)
        out[r.name] = value
    return out


def params_of(
    ranges: tuple[ParameterRange, ...], hyperparameters: Mapping[str, Any]
) -> dict[str, Any] | None:
    """Optuna's params for recorded hyperparameter values, or None when one is off the ranges."""
    out: dict[str, Any] = {}
    for r in ranges:
        if r.name not in hyperparameters:
            return None
        value = _param(r, hyperparameters[r.name])
        if value is None:
            return None
        out[r.name] = value
    return out


def _param(r: ParameterRange, value: Any) -> Any:
    if r.type == CATEGORICAL:
        for choice in r.values:
            if choice == value or str(choice) == str(value):
                return choice
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    low, high = float(r.min_value or 0), float(r.max_value or 0)
    slack = _SLACK * max(1.0, abs(low), abs(high))
    if not (math.isfinite(number) and low - slack <= number <= high + slack):
        return None
    number = min(max(number, low), high)
    if r.type == INTEGER:
        return round(number) if abs(number - round(number)) <= slack else None
    if r.scale() == "ReverseLogarithmic":
        return min(max(1.0 - number, 1.0 - high), 1.0 - low)
    return number


def grid_combinations(ranges: tuple[ParameterRange, ...]) -> list[dict[str, Any]]:
    """Every combination of categorical ranges' values (the grid)."""
    names = [r.name for r in ranges]
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(r.values for r in ranges))
    ]


# --------------------------------------------------------------------------- the study
def _startup_trials(max_jobs: int) -> int:
    """Random trials before the GP sampler takes over: a quarter of the budget, 5-10."""
    return max(5, min(10, max_jobs // 4))


def _tpe_startup_trials(max_jobs: int) -> int:
    """Random trials before TPE takes over: a tenth of the budget, 3-10.

    TPE keeps exploring on its own (its prior, a wide density over each whole range,
    is part of every proposal), so it needs few random trials to start from; in a
    small budget every random trial is one the model did not guide. Measured with
    ``benchmarks/tuning.py``'s ranges over 20 seeds of 20 trials on flights and 6 on
    the generated set, 3 start-up trials beat 5 and 10 in median best objective.
    """
    return max(3, min(10, max_jobs // 10))


def _sampler(spec: TuningSpec, seed: int | None) -> Any:
    samplers = load_optuna().samplers
    if spec.strategy == "Random":
        return samplers.RandomSampler(seed=seed)
    if spec.strategy == "Grid":
        return _grid_sampler(samplers.GridSampler)(
            {r.name: list(r.values) for r in spec.ranges}, seed=seed
        )
    if spec.strategy == "Bayesian" and spec.sampler == "gp":
        return samplers.GPSampler(seed=seed, n_startup_trials=_startup_trials(spec.max_jobs))
    # constant_liar: trials still running count as bad guesses, so parallel trials spread out.
    # multivariate: one joint density over the ranges, so that ranges which work together
    # (a learning rate and the depth) are proposed together; independent densities need
    # more trials to find the same region.
    return samplers.TPESampler(
        seed=seed,
        n_startup_trials=_tpe_startup_trials(spec.max_jobs),
        constant_liar=True,
        multivariate=True,
    )


def _grid_sampler(base: type) -> type:
    """Optuna's GridSampler, minus its ``Study.stop()`` once the grid is done.

    ``GridSampler.after_trial`` stops the study when no grid point is left, which
    Optuna only allows inside ``Study.optimize``; the tuning job drives the study
    with ask and tell and stops after its ``max_jobs`` (the grid's size) itself.
    """

    class AskTellGridSampler(base):
        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            return None

    return AskTellGridSampler


def _pruner(spec: TuningSpec) -> Any:
    pruners = load_optuna().pruners
    if spec.hyperband is not None:
        return pruners.HyperbandPruner(
            min_resource=spec.hyperband.min_resource,
            max_resource=spec.hyperband.max_resource,
            reduction_factor=_HYPERBAND_REDUCTION_FACTOR,
        )
    if spec.early_stopping == "Auto":
        resource = _resource_value(spec)
        warmup = int(resource * _MEDIAN_WARMUP_SHARE) if resource else 0
        return pruners.MedianPruner(
            n_startup_trials=_MEDIAN_STARTUP_TRIALS, n_warmup_steps=warmup, interval_steps=1
        )
    return pruners.NopPruner()


def _resource_value(spec: TuningSpec) -> int | None:
    from sagelab.tuning._spec import RESOURCE_HYPERPARAMETERS

    if spec.hyperband is not None:
        return spec.hyperband.max_resource
    for name in RESOURCE_HYPERPARAMETERS:
        value = spec.hyperparameters.get(name)
        if value is None:
            continue
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return None
    return None


def new_study(spec: TuningSpec, name: str, *, resumed: bool = False) -> optuna.Study:
    """An in-memory study with the strategy's sampler and pruner, in the objective's direction.

    A resumed job's sampler is seeded anew from its name: with the first job's seed it
    would draw the first job's configurations again.
    """
    optuna = load_optuna()
    seed = spec.random_seed
    if resumed and seed is not None:
        seed = (seed + zlib.crc32(name.encode("utf-8"))) % 2**32
    return optuna.create_study(
        study_name=name,
        direction="maximize" if spec.maximize else "minimize",
        sampler=_sampler(spec, seed),
        pruner=_pruner(spec),
    )


def add_finished(
    study: optuna.Study, ranges: tuple[ParameterRange, ...], trial: FinishedTrial
) -> bool:
    """Tell the study about a trial that ran elsewhere (an earlier job); False if off the ranges."""
    optuna = load_optuna()
    params = params_of(ranges, trial.hyperparameters)
    if params is None:
        return False
    states = optuna.trial.TrialState
    state = {COMPLETED: states.COMPLETE, EARLY_STOPPED: states.PRUNED}.get(trial.state, states.FAIL)
    value = trial.value if state == states.COMPLETE else None
    if state == states.COMPLETE and value is None:
        state = states.FAIL
    study.add_trial(
        optuna.trial.create_trial(
            state=state,
            value=value,
            params=params,
            distributions=distributions(ranges),
            intermediate_values=dict(trial.intermediate) if state != states.FAIL else None,
        )
    )
    return True


def importances(
    spec: TuningSpec, trials: list[tuple[Mapping[str, Any], float]]
) -> dict[str, float]:
    """Optuna's parameter importances over completed trials ``(hyperparameters, objective)``.

    Raises:
        ValueError: too few trials (or values) to tell the parameters apart.
    """
    optuna = load_optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if spec.maximize else "minimize")
    dists = distributions(spec.ranges)
    for hyperparameters, value in trials:
        params = params_of(spec.ranges, hyperparameters)
        if params is not None:
            study.add_trial(
                optuna.trial.create_trial(value=value, params=params, distributions=dists)
            )
    if len(study.trials) < 2:
        raise ValueError("Parameter importances need at least two completed trials.")
    return {str(k): float(v) for k, v in optuna.importance.get_param_importances(study).items()}
