"""Tuning jobs end to end: real trials as training jobs, grid, median early stopping, warm start."""

from __future__ import annotations

import itertools
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from _tuning_data import XGB_STATIC, Env, cancer_frame
from sklearn.metrics import roc_auc_score

from sagelab.training import Estimator
from sagelab.tuning import (
    ContinuousParameter,
    HyperparameterTuner,
    IntegerParameter,
    TuningDescription,
    TuningService,
    TuningSpecError,
)
from sagelab.tuning._trials import EARLY_STOPPED_METRIC, OBJECTIVE_METRIC


@dataclass(frozen=True)
class Searches:
    tuner: HyperparameterTuner
    sdk: TuningDescription
    grid: TuningDescription
    median: TuningDescription
    target: TuningDescription


def _tuning(env: Env) -> TuningService:
    return env.session.tuning


@pytest.fixture(scope="module")
def searches(env: Env) -> Searches:
    """Four tuning jobs started together, then awaited: SDK Bayesian, Grid, median stopping,
    a target objective."""
    tuning = _tuning(env)
    estimator = Estimator(
        "xgboost", {"num_round": 10, **XGB_STATIC}, target="diagnosis", seed=3, session=env.session
    )
    tuner = HyperparameterTuner(
        estimator,
        "validation:auc",
        {
            "eta": ContinuousParameter(0.05, 0.5, "Logarithmic"),
            "max_depth": IntegerParameter(2, 6),
        },
        max_jobs=3,
        max_parallel_jobs=2,
        random_seed=1,
        session=env.session,
    )
    tuner.fit({"train": str(env.cancer)}, job_name="sdk-search", wait=False)
    common = {
        "algorithm": "xgboost",
        "inputs": {"train": str(env.cancer)},
        "target": "diagnosis",
        "objective": "validation:auc",
        "max_parallel": 2,
    }
    tuning.submit(
        {
            **common,
            "hyperparameters": {"num_round": 5, **XGB_STATIC},
            "ranges": {"max_depth": [2, 3], "grow_policy": ["depthwise", "lossguide"]},
            "strategy": "Grid",
        },
        name="grid-search",
    )
    tuning.submit(
        {
            **common,
            # Many slow rounds and a wide learning rate: weak trials show early and are stopped.
            "hyperparameters": {"num_round": 1500, **XGB_STATIC},
            "ranges": {"eta": "0.0005:0.3:log", "max_depth": "1:6"},
            "strategy": "Random",
            "early_stopping": "Auto",
            "max_jobs": 6,
            "random_seed": 5,
        },
        name="median-search",
    )
    tuning.submit(
        {
            **common,
            "hyperparameters": {"num_round": 5, **XGB_STATIC},
            "ranges": {"eta": "0.1:0.5"},
            "max_jobs": 3,
            "max_parallel": 1,
            "completion": {"target_value": 0.5},  # any model beats a coin toss here
        },
        name="target-search",
    )
    tuner.wait()
    return Searches(
        tuner,
        tuning.describe("sdk-search"),
        tuning.wait("grid-search", timeout=600),
        tuning.wait("median-search", timeout=600),
        tuning.wait("target-search", timeout=600),
    )


def test_tuning_trials_are_training_jobs_of_their_own(env: Env, searches: Searches) -> None:
    d = searches.sdk
    assert d.status == "Completed", d.info.failure_reason
    assert d.counters() == {
        "Completed": 3,
        "InProgress": 0,
        "RetryableError": 0,
        "NonRetryableError": 0,
        "Stopped": 0,
    }
    jobs = env.session.jobs
    listed = {i.name for i in jobs.list(kind="training", name_contains="sdk-search-")}
    assert listed == {t.name for t in d.trials}
    for t in d.trials:
        assert re.fullmatch(r"sdk-search-\d{3}-[0-9a-f]{8}", t.name)
        assert len(jobs.metrics(t.name, "validation:auc")) == 10  # one point per round
        assert any("Final metrics" in line for line in jobs.logs(t.name))
    # Never more than max_parallel trials at once, and both slots were used.
    infos = [jobs.describe(t.name) for t in d.trials]
    events = sorted(
        [(i.creation_time, 1) for i in infos] + [(i.end_time, -1) for i in infos if i.end_time],
        key=lambda e: (e[0], e[1]),
    )
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    assert peak == 2


def test_tuning_best_training_job_is_the_best_completed_trial(env: Env, searches: Searches) -> None:
    jobs = env.session.jobs
    finals = {
        t.name: jobs.describe(t.name).result["FinalMetrics"]["validation:auc"]
        for t in searches.sdk.trials
    }
    best = max(finals, key=lambda n: finals[n])
    assert searches.tuner.best_training_job() == best
    assert searches.sdk.best is not None and searches.sdk.best.objective == finals[best]
    frame = cancer_frame()
    X = frame.drop(columns=["diagnosis"]).to_numpy()
    scores = searches.tuner.best_estimator().model.predict(X).values
    np.testing.assert_array_equal(scores, env.session.training.model(best).predict(X).values)
    evaluation = searches.tuner.evaluate(str(env.cancer)).evaluation
    assert evaluation.metrics["auc"] == pytest.approx(roc_auc_score(frame["diagnosis"], scores))


def test_tuning_trials_stay_within_their_ranges(env: Env, searches: Searches) -> None:
    for t in searches.sdk.trials:
        given = env.session.jobs.describe(t.name).parameters["hyperparameters"]
        assert 0.05 <= given["eta"] <= 0.5
        assert isinstance(given["max_depth"], int) and 2 <= given["max_depth"] <= 6
        assert {k: given[k] for k in ("num_round", *XGB_STATIC)} == {"num_round": 10, **XGB_STATIC}
        assert t.hyperparameters == {"eta": given["eta"], "max_depth": given["max_depth"]}


def test_tuning_analytics_and_report(searches: Searches, tmp_path: Path) -> None:
    frame = searches.tuner.analytics()
    assert len(frame) == 3 and {"eta", "max_depth", "FinalObjectiveValue"} <= set(frame.columns)
    assert frame["FinalObjectiveValue"].max() == searches.sdk.best.objective  # type: ignore[union-attr]
    path = searches.tuner.report(tmp_path / "tuning.html")
    page = path.read_text(encoding="utf-8")
    for section in (
        "summary",
        "objective",
        "hyperparameters",
        "parallel-coordinates",
        "importances",
        "trials",
    ):
        assert f'<section id="{section}">' in page
    files = {p.name for p in (tmp_path / "tuning_files").iterdir()}
    assert {
        "objective-per-trial.png",
        "hyperparameter-eta.png",
        "hyperparameter-max_depth.png",
        "parallel-coordinates.png",
        "parameter-importances.png",
    } <= files


def test_tuning_grid_runs_each_combination_once(env: Env, searches: Searches) -> None:
    d = searches.grid
    assert d.status == "Completed", d.info.failure_reason
    assert d.spec.max_jobs == 4
    ran = [(t.hyperparameters["max_depth"], t.hyperparameters["grow_policy"]) for t in d.trials]
    assert sorted(ran) == sorted(itertools.product([2, 3], ["depthwise", "lossguide"]))


def test_tuning_auto_early_stopping_follows_the_median_rule(env: Env, searches: Searches) -> None:
    d = searches.median
    assert d.status == "Completed", d.info.failure_reason
    jobs = env.session.jobs
    stopped = [t for t in d.trials if t.early_stopped]
    assert stopped, "no trial was stopped early"
    told = {p.step: p.timestamp for p in jobs.metrics(d.name, OBJECTIVE_METRIC)}
    decided = {p.step: p.timestamp for p in jobs.metrics(d.name, EARLY_STOPPED_METRIC)}
    for t in stopped:
        assert t.status == "Stopped" and t.stopped_at is not None
        step = t.stopped_at
        # The completed trials the search knew of when it stopped this one.
        known = [
            c
            for c in d.trials
            if c.status == "Completed" and c.number in told and told[c.number] < decided[t.number]
        ]
        assert len(known) >= 3  # the median rule waits for three finished trials
        at_step = [c.intermediate[step] for c in known if step in c.intermediate]
        best_so_far = max(v for s, v in t.intermediate.items() if s <= step)
        assert best_so_far < statistics.median(at_step)
    completed = [t for t in d.trials if t.status == "Completed"]
    assert all(t.training_seconds is not None for t in completed + stopped)


def test_tuning_ends_when_the_target_objective_is_reached(searches: Searches) -> None:
    d = searches.target
    assert d.status == "Completed", d.info.failure_reason
    assert d.completion_reason == "TargetObjectiveMetricValueReached"
    assert len(d.trials) == 1 and d.best is not None and d.best.objective > 0.5


def test_tuning_warm_start_learns_from_a_parent(env: Env, searches: Searches) -> None:
    tuning = _tuning(env)
    parent = searches.sdk
    spec = {**parent.spec.as_dict(), "max_jobs": 1, "warm_start": {"parents": [parent.name]}}
    spec.pop("random_seed")
    child = tuning.submit(spec, name="warm-search", wait=True)
    assert child.status == "Completed", child.info.failure_reason
    assert len(child.trials) == 1
    assert child.info.result["WarmStartTrials"] == len(parent.trials)
    pool = [*parent.trials, *child.trials]
    top = max(t.objective or 0.0 for t in pool)
    best = min((t for t in pool if t.objective == top), key=lambda t: t.end_time)  # ties: first
    assert child.overall_best is not None and child.overall_best.name == best.name
    assert child.as_dict()["OverallBestTrainingJob"]["TrainingJobName"] == best.name
    # Another objective, or other data with IdenticalDataAndAlgorithm: refused before a job.
    with pytest.raises(TuningSpecError, match="needs the same objective"):
        tuning.submit({**spec, "objective": "validation:aucpr"}, name="warm-bad")
    with pytest.raises(TuningSpecError, match="trained on other data"):
        tuning.submit({**spec, "inputs": {"train": str(env.cancer_other)}}, name="warm-bad")
    assert {i.name for i in env.session.jobs.list(name_contains="warm-bad")} == set()
