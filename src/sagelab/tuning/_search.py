"""The search loop of a tuning job: ask Optuna, start trials, follow them, tell Optuna.

Up to ``max_parallel`` trials run at once, each a training job in its own
process. Every half second the loop reads each running trial's objective series
from the store and reports the new points to its Optuna trial; when the pruner
(median rule or Hyperband) says a trial is weak, the trial's job is stopped
through the job service and ends ``Stopped``, as SageMaker marks early-stopped
trials. A finished trial is told to the study, then the completion criteria are
checked, then new trials fill the free slots.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sagelab.errors import AlgorithmError, Conflict, InvalidInput
from sagelab.tuning._check import build_spec
from sagelab.tuning._describe import search_trials
from sagelab.tuning._strategies import (
    COMPLETED,
    EARLY_STOPPED,
    FAILED,
    FinishedTrial,
    add_finished,
    distributions,
    grid_combinations,
    hyperparameters_of,
    load_optuna,
    new_study,
    params_of,
)
from sagelab.tuning._trials import (
    BEST_METRIC,
    EARLY_STOPPED_METRIC,
    OBJECTIVE_METRIC,
    TrialSummary,
    trial_name,
)

if TYPE_CHECKING:
    from sagelab.jobs import JobContext, JobInfo, JobService
    from sagelab.training import TrainingService
    from sagelab.tuning._spec import TuningSpec

__all__ = ["Search"]

#: How often the search looks at its trials: a weak trial's stop waits for this and for the
#: trial's metric flush (``JobContext``'s 0.25 s), and a free slot for a new trial waits for
#: it too, so it is short beside a trial's length (trials of well under a second are common).
_POLL_SECONDS = 0.1
#: How long a stopping tuning job waits for its trials to end (the executor kills it at 10 s).
_STOP_WAIT_SECONDS = 8.0
#: The tuning job fails when its first trials all fail (a mistake every trial repeats).
_FAIL_FAST_TRIALS = 3
#: Convergence: over the last ``window`` finished trials the best objective moved by less
#: than this share of the spread of the objectives seen.
_CONVERGENCE_SHARE = 0.01
_CONVERGENCE_MIN_WINDOW = 5


@dataclass
class _Running:
    number: int
    name: str
    trial: Any  # optuna.Trial
    reported: int = 0
    last: float | None = None
    stopped_at: int | None = None


class Search:
    """One tuning job's search, run in the job's process.

    Args:
        ctx: the tuning job's context.
        spec: the checked spec.
        training: starts the trials.
        resumed_from: the tuning job this one continues, if any.
    """

    def __init__(
        self,
        ctx: JobContext,
        spec: TuningSpec,
        training: TrainingService,
        resumed_from: str | None = None,
    ) -> None:
        self.ctx, self.spec, self.training = ctx, spec, training
        self.jobs: JobService = training.jobs
        self.resumed_from = resumed_from
        self.study = new_study(spec, ctx.job_name, resumed=resumed_from is not None)
        self.distributions = distributions(spec.ranges)
        self.running: dict[str, _Running] = {}
        self.budget = spec.max_jobs
        self.launched = 0
        self.next_number = 1
        self.reason: str | None = None
        self.best: float | None = None
        self.bests: list[float] = []  # the best after each finished trial
        self.objectives: list[float] = []
        self.since_improvement = 0
        self.completed = 0
        self.failures: list[str] = []
        self.inherited = 0
        self.warm_started = 0
        self.started = time.monotonic()

    # ------------------------------------------------------------------ before the loop
    def restore(self) -> None:
        """Take in the finished trials of the resumed job and the warm-start parents.

        Raises:
            NotFound: a job named by the spec has gone.
        """
        if self.resumed_from is not None:
            self._resume(self.resumed_from)
        if self.spec.warm_start is not None:
            self._warm_start(self.spec.warm_start.parents)

    def _resume(self, parent: str) -> None:
        info = self.jobs.describe(parent)
        trials = search_trials(self.jobs, build_spec(info.parameters["spec"]), info)
        rerun = []
        for t in trials:
            self.next_number = max(self.next_number, t.number + 1)
            if t.finished:
                if add_finished(self.study, self.spec.ranges, _finished(t)):
                    self.inherited += 1
                    self._count(t)
            else:  # interrupted by the crash or the stop: run its configuration again
                rerun.append(t)
        if self.spec.strategy == "Grid":
            # A new GridSampler knows nothing of the points already run: queue the rest.
            done = {
                _key(params_of(self.spec.ranges, t.hyperparameters)) for t in trials if t.finished
            }
            left = [c for c in grid_combinations(self.spec.ranges) if _key(c) not in done]
            for combination in left:
                self.study.enqueue_trial(combination)
        else:
            for t in rerun:
                params = params_of(self.spec.ranges, t.hyperparameters)
                if params is not None:
                    self.study.enqueue_trial(params)
        self.budget = max(self.spec.max_jobs - self.inherited, 0)
        self.ctx.logger.info(
            "Resuming %s: %d finished trial(s) kept, %d interrupted one(s) to run again, "
            "%d training job(s) left.",
            parent,
            self.inherited,
            len(rerun),
            self.budget,
        )

    def _warm_start(self, parents: tuple[str, ...]) -> None:
        for parent in parents:
            info = self.jobs.describe(parent)
            parent_spec = build_spec(info.parameters["spec"])
            kept = skipped = 0
            for t in search_trials(self.jobs, parent_spec, info):
                if not t.finished or t.status == "Failed":
                    continue
                merged = {**parent_spec.hyperparameters, **t.hyperparameters}
                if add_finished(self.study, self.spec.ranges, _finished(t, merged)):
                    kept += 1
                else:
                    skipped += 1
            self.warm_started += kept
            self.ctx.logger.info(
                "Warm start from %s: %d trial(s) taken in, %d outside the ranges left out.",
                parent,
                kept,
                skipped,
            )

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        """Run trials until the budget, a completion criterion, the max runtime or a stop.

        Raises:
            InvalidInput: the first trials failed on bad input, or a trial completed without
                emitting the objective (the tuning job fails with ``ClientError:``).
            AlgorithmError: the first trials failed inside the algorithm.
        """
        spec = self.spec
        self.ctx.set_secondary_status(
            "Tuning",
            f"{spec.strategy} search over {len(spec.ranges)} hyperparameter(s): up to "
            f"{self.budget} training job(s), {spec.max_parallel} at a time",
        )
        try:
            while True:
                if self.ctx.stop_requested:
                    self.reason = "Stopped"
                    self.stop_running("The tuning job was stopped.")
                    break
                if self._out_of_time():
                    self.reason = "MaxRuntimeInSecondsReached"
                    self.stop_running("The tuning job reached its max runtime.")
                    break
                for run in list(self.running.values()):
                    self._follow(run, prune=True)
                self._fail_fast()
                if self.reason is None:
                    self.reason = self._completion()
                while (
                    self.reason is None
                    and len(self.running) < spec.max_parallel
                    and self.launched < self.budget
                    and not self.ctx.stop_requested
                ):
                    self._launch()
                if not self.running and (self.reason is not None or self.launched >= self.budget):
                    break
                time.sleep(_POLL_SECONDS)
        except BaseException:
            self.stop_running("The tuning job failed.")
            raise
        if self.reason is None:
            self.reason = "MaxNumberOfTrainingJobsReached"

    def _out_of_time(self) -> bool:
        limit = self.spec.max_runtime_seconds
        return limit is not None and time.monotonic() - self.started >= limit

    def _launch(self) -> None:
        spec = self.spec
        trial = self.study.ask(self.distributions)
        tuned = hyperparameters_of(spec.ranges, trial.params)
        hyperparameters = {**spec.hyperparameters, **tuned}
        if spec.hyperband is not None:
            hyperparameters[spec.hyperband.resource] = spec.hyperband.max_resource
        number = self.next_number
        self.next_number += 1
        self.launched += 1
        for attempt in range(3):
            name = trial_name(self.ctx.job_name, number)
            try:
                self.training.submit(
                    spec.algorithm,
                    spec.inputs,
                    hyperparameters=hyperparameters,
                    target=spec.target,
                    content_type=spec.content_type,
                    holdout=spec.holdout,
                    split_by=spec.split_by,
                    seed=spec.seed,
                    name=name,
                    max_runtime_seconds=spec.trial_max_runtime_seconds,
                    # A trial is never resumed (a resumed tuning job runs an interrupted
                    # configuration again), so it writes no checkpoints.
                    checkpoint_every=0,
                )
                break
            except Conflict:
                if attempt == 2:
                    raise
            except InvalidInput as exc:  # this combination is refused before it trains
                self.ctx.logger.warning("Trial %03d was refused: %s", number, exc)
                self.study.tell(trial, state=load_optuna().trial.TrialState.FAIL)
                self.failures.append(f"ClientError: {exc}")
                return
        self.running[name] = _Running(number, name, trial)
        self.ctx.logger.info(
            "Trial %03d started as %s: %s",
            number,
            name,
            ", ".join(f"{k}={_show(v)}" for k, v in tuned.items()),
        )

    def _follow(self, run: _Running, *, prune: bool) -> None:
        """Report a running trial's new points; stop it if weak; finish it if it ended."""
        info = self.jobs.describe(run.name)
        for point in self.jobs.metrics(run.name, self.spec.objective):
            step = point.step + 1
            if step > run.reported:
                run.trial.report(point.value, step)
                run.reported, run.last = step, point.value
        weak = prune and not info.is_terminal and run.stopped_at is None and run.reported > 0
        if weak and run.trial.should_prune():
            self._stop_early(run)
            info = self.jobs.describe(run.name)
        if info.is_terminal:
            self._finish(run, info)

    def _stop_early(self, run: _Running) -> None:
        try:
            self.jobs.stop(run.name)
        except Conflict:  # it ended meanwhile: it is finished, not stopped
            return
        run.stopped_at = run.reported
        self.ctx.log_metric(EARLY_STOPPED_METRIC, run.reported, step=run.number)
        self.ctx.logger.info(
            "Trial %03d stopped early at step %d (%s=%s).",
            run.number,
            run.reported,
            self.spec.objective,
            _show(run.last),
        )

    def _finish(self, run: _Running, info: JobInfo) -> None:
        states = load_optuna().trial.TrialState
        self.running.pop(run.name, None)
        if info.status == "Completed":
            final = (info.result.get("FinalMetrics") or {}).get(self.spec.objective)
            value = float(final) if isinstance(final, int | float) else run.last
            if value is None or not math.isfinite(value):
                self.study.tell(run.trial, state=states.FAIL)
                emitted = ", ".join(sorted(info.result.get("FinalMetrics") or {})) or "none"
                raise InvalidInput(
                    f"The training job {run.name} completed without emitting the objective "
                    f"{self.spec.objective} (its final metrics: {emitted}). Set the "
                    f"hyperparameter that chooses {self.spec.algorithm}'s metrics (e.g. "
                    "eval_metric) so that it emits the objective."
                )
            self.study.tell(run.trial, value)
            self.completed += 1
            self._record(value, improved_possible=True, number=run.number)
            self.ctx.logger.info(
                "Trial %03d completed: %s=%s.", run.number, self.spec.objective, _show(value)
            )
        elif info.status == "Stopped":
            self.study.tell(run.trial, state=states.PRUNED)
            if run.last is not None:
                self._record(run.last, improved_possible=False, number=run.number)
            self.ctx.logger.info("Trial %03d ended Stopped.", run.number)
        else:
            self.study.tell(run.trial, state=states.FAIL)
            self.failures.append(info.failure_reason or "AlgorithmError: unknown")
            self.ctx.logger.warning("Trial %03d failed: %s", run.number, info.failure_reason)

    def _record(self, value: float, *, improved_possible: bool, number: int | None) -> None:
        """Update the best and the not-improving count with a finished trial's objective;
        log it (and the best) in the tuning job's series under the trial's ``number``."""
        if number is not None:
            self.ctx.log_metric(OBJECTIVE_METRIC, value, step=number)
        self.objectives.append(value)
        maximize = self.spec.maximize
        better = self.best is None or (value > self.best if maximize else value < self.best)
        if improved_possible and better:
            self.best, self.since_improvement = value, 0
        else:
            self.since_improvement += 1
        if self.best is not None:
            self.bests.append(self.best)
            if number is not None:
                self.ctx.log_metric(BEST_METRIC, self.best, step=number)

    def _count(self, t: TrialSummary) -> None:
        """Count an inherited trial toward the best and the completion criteria."""
        if t.status == "Completed" and t.objective is not None:
            self.completed += 1
            self._record(t.objective, improved_possible=True, number=None)
        elif t.early_stopped and t.objective is not None:
            self._record(t.objective, improved_possible=False, number=None)

    def _fail_fast(self) -> None:
        n = min(_FAIL_FAST_TRIALS, self.spec.max_jobs)
        if self.completed or len(self.failures) < n:
            return
        first = self.failures[0]
        message = f"The first {n} training job(s) failed; the first said: {first}"
        if first.startswith("ClientError:"):
            raise InvalidInput(message.replace("ClientError: ", ""))
        raise AlgorithmError(message.replace("AlgorithmError: ", ""))

    def _completion(self) -> str | None:
        criteria = self.spec.completion
        target = criteria.target_objective_value
        reached = (
            target is not None
            and self.best is not None
            and (self.best >= target if self.spec.maximize else self.best <= target)
        )
        if reached:
            return "TargetObjectiveMetricValueReached"
        limit = criteria.max_jobs_not_improving
        if limit is not None and self.best is not None and self.since_improvement >= limit:
            return "MaxNumberOfTrainingJobsNotImproving"
        if criteria.complete_on_convergence and self._converged():
            return "ConvergenceDetected"
        return None

    def _converged(self) -> bool:
        """Whether the best objective has stopped moving.

        SageMaker does not publish its convergence rule, and Optuna's terminator
        needs a Gaussian process (torch), so the rule is written here: over the last
        ``window`` finished trials (a tenth of the budget, at least 5) the best moved by
        less than 1% of the spread of the objectives seen, after at least two windows.
        """
        window = max(_CONVERGENCE_MIN_WINDOW, self.spec.max_jobs // 10)
        if len(self.bests) < 2 * window:
            return False
        spread = max(self.objectives) - min(self.objectives)
        moved = abs(self.bests[-1] - self.bests[-1 - window])
        return spread > 0 and moved < _CONVERGENCE_SHARE * spread

    # ------------------------------------------------------------------ ending
    def stop_running(self, message: str) -> None:
        """Stop every running trial and wait a little for them to end; completed ones stay."""
        if not self.running:
            return
        self.ctx.logger.warning("%s Stopping %d running trial(s).", message, len(self.running))
        for run in list(self.running.values()):
            with contextlib.suppress(Conflict):
                self.jobs.stop(run.name)
        deadline = time.monotonic() + _STOP_WAIT_SECONDS
        while self.running and time.monotonic() < deadline:
            for run in list(self.running.values()):
                try:
                    self._follow(run, prune=False)
                except (InvalidInput, AlgorithmError):
                    self.running.pop(run.name, None)
            if self.running:
                time.sleep(0.2)


def _finished(t: TrialSummary, hyperparameters: dict[str, Any] | None = None) -> FinishedTrial:
    state = COMPLETED if t.status == "Completed" else EARLY_STOPPED if t.early_stopped else FAILED
    return FinishedTrial(
        hyperparameters=hyperparameters if hyperparameters is not None else t.hyperparameters,
        state=state,
        value=t.objective,
        intermediate=t.intermediate,
    )


def _key(params: dict[str, Any] | None) -> str:
    return repr(sorted((params or {}).items()))


def _show(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
