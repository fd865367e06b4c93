"""Stopping, the max runtime, and resuming from a checkpoint: long jobs, really run."""

from __future__ import annotations

import json
import re
import time

import pytest
from _training_data import XGB_BINARY, Env

from sagelab.algorithms import _registry, register_algorithm
from sagelab.errors import Conflict, InvalidInput
from sagelab.jobs import JobInfo
from sagelab.lake import ARTIFACTS_BUCKET

#: Would train for minutes: only a stop or the max runtime ends it.
ENDLESS = {**XGB_BINARY, "num_round": 1_000_000, "eta": 0.001, "max_depth": 2}


@pytest.fixture(scope="module")
def runaway(env: Env) -> str:
    """A job with a 3 s max runtime, started first so it runs alongside the other tests."""
    info = env.training.submit(
        "xgboost",
        str(env.files.cancer_csv),
        hyperparameters=ENDLESS,
        max_runtime_seconds=3,
        checkpoint_every=0,
        name="runaway",
    )
    return info.name


def _wait_for(check, timeout: float = 30.0, what: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _last_step(env: Env, name: str) -> int:
    points = env.session.jobs.metrics(name, "train:auc")
    return points[-1].step if points else -1


def test_stop_within_seconds_then_resume_from_the_checkpoint(env: Env, runaway: str) -> None:
    jobs, training, lake = env.session.jobs, env.training, env.session.lake
    first = training.submit(
        "xgboost",
        str(env.files.cancer_csv),
        hyperparameters=ENDLESS,
        checkpoint_every=25,
        name="long-run",
    )
    pointer = "training/long-run/checkpoints/checkpoint.json"
    _wait_for(lambda: lake.exists(ARTIFACTS_BUCKET, pointer), what="a first checkpoint")
    _wait_for(lambda: _last_step(env, first.name) >= 60, what="60 rounds")
    with pytest.raises(Conflict, match="still InProgress"):
        training.resume(first.name)
    asked = time.monotonic()
    jobs.stop(first.name)
    stopped = jobs.wait(first.name, timeout=30)
    assert stopped.status == "Stopped"
    assert time.monotonic() - asked < 5, "the job did not stop within seconds"
    saved = json.loads(lake.get(ARTIFACTS_BUCKET, pointer))
    round_ = saved["Iteration"]
    assert round_ % 25 == 0 and round_ >= 25
    assert saved["Algorithm"] == "xgboost"
    # The pointer is copied after the state it names.
    assert lake.exists(
        ARTIFACTS_BUCKET, f"training/long-run/checkpoints/{saved['Folder']}/model.ubj"
    )
    last = _last_step(env, first.name)
    assert last + 1 >= round_

    target = last + 1 + 20
    resumed = training.resume(first.name, hyperparameters={"num_round": target}, wait=True)
    assert resumed.name == "long-run-r1"
    assert resumed.status == "Completed", resumed.failure_reason
    assert resumed.parameters["resumed_from"] == "long-run"
    checkpoint = resumed.result["Checkpoint"]
    assert checkpoint["ResumedFromRound"] == round_
    assert checkpoint["S3Uri"] == f"s3://{ARTIFACTS_BUCKET}/training/long-run/checkpoints/"
    log = "\n".join(jobs.logs(resumed.name))
    assert re.search(rf"Resuming from the checkpoint at round {round_} of {target}", log)
    steps = [p.step for p in jobs.metrics(resumed.name, "train:auc")]
    assert steps == list(range(round_, target))
    meta = json.loads(
        lake.get(ARTIFACTS_BUCKET, f"training/{resumed.name}/model/sagelab-model.json")
    )
    assert meta["num_boosted_rounds"] == target


def test_max_runtime_stops_a_runaway_job(env: Env, runaway: str) -> None:
    info: JobInfo = env.session.jobs.wait(runaway, timeout=60)
    assert info.status == "Stopped"
    assert info.secondary_status == "MaxRuntimeExceeded"
    assert info.start_time is not None and info.end_time is not None
    assert (info.end_time - info.start_time).total_seconds() < 3 + 5


def test_linear_learner_resumes_at_the_epoch_after_its_checkpoint(env: Env, runaway: str) -> None:
    jobs, training = env.session.jobs, env.training
    jobs.wait(runaway, timeout=60)
    hp = {"predictor_type": "binary_classifier", "epochs": 4, "early_stopping_patience": 10}
    first = training.submit(
        "linear-learner",
        str(env.files.cancer_csv),
        hyperparameters=hp,
        checkpoint_every=2,
        wait=True,
    )
    assert first.status == "Completed", first.failure_reason
    # The first checkpoint is always due; the next may fall inside the 2 s between saves.
    saved = first.result["Checkpoint"]["LastSavedRound"]
    assert saved in (2, 4) and first.result["Checkpoint"]["ResumedFromRound"] is None

    resumed = training.resume(first.name, hyperparameters={"epochs": 6}, wait=True)
    assert resumed.status == "Completed", resumed.failure_reason
    assert resumed.result["Checkpoint"]["ResumedFromRound"] == saved
    log = "\n".join(jobs.logs(resumed.name))
    assert f"Resuming from the checkpoint at epoch {saved} of 6" in log
    steps = [p.step for p in jobs.metrics(resumed.name, "train:objective_loss")]
    assert steps == list(range(saved, 6))

    # Other settings would make a model no single run makes: the job fails, saying why.
    changed = training.resume(first.name, hyperparameters={"mini_batch_size": 32}, wait=True)
    assert changed.status == "Failed"
    assert "mini_batch_size=1000 (now 32)" in (changed.failure_reason or "")


def test_resume_needs_an_algorithm_that_checkpoints(
    env: Env, runaway: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.session.jobs.wait(runaway, timeout=60)
    # A plug-in that trains in one go, registered in this process only (its job fails to
    # find it, which leaves a finished job to try resuming).
    table = _registry._ALGORITHMS
    monkeypatch.setattr(table, "_registered", dict(table._registered))
    register_algorithm("one-go", "_training_data:OneGoLearner")
    info = env.training.submit(
        "one-go",
        str(env.files.cancer_csv),
        hyperparameters={"predictor_type": "binary_classifier", "epochs": 1},
        wait=True,
    )
    with pytest.raises(InvalidInput, match="cannot resume"):
        env.training.resume(info.name)
