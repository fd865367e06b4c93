"""``sagelab train``, ``sagelab evaluate``, ``sagelab algorithms`` and ``sagelab experiments``.

A door: each command parses its arguments, calls the training service or the
algorithm registry, and shows what comes back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from sagelab.cli._output import JSON_OPTION, console, err_console, print_json, print_records

if TYPE_CHECKING:
    from sagelab.jobs import JobInfo
    from sagelab.training import TrainingService

__all__ = [
    "algorithms_app",
    "evaluate_command",
    "experiments_app",
    "train_command",
]

algorithms_app = typer.Typer(
    help="The built-in algorithms and their declarations.", no_args_is_help=True
)
experiments_app = typer.Typer(help="Training runs side by side.", no_args_is_help=True)


def _training() -> TrainingService:
    from sagelab.cli._app import session

    return session().training


def _hyperparameters(pairs: list[str] | None) -> dict[str, str]:
    from sagelab.errors import InvalidInput

    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--hp takes key=value (e.g. --hp num_round=100); got {pair!r}.")
        out[key.strip()] = value.strip()
    return out


def _follow(training: TrainingService, name: str) -> None:
    """Wait for the job, drawing a progress bar over its iterations on a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    updates = training.progress(name)
    if not err_console.is_terminal:
        for _ in updates:
            pass
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[metric]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(name, total=None, metric="")
        for p in updates:
            metric = f"{p.metric}={p.value:.6g}" if p.metric and p.value is not None else ""
            if p.secondary_status in ("Starting", "Running"):
                label = "Starting"
            else:
                label = p.secondary_status + (f" ({p.message})" if p.message else "")
            bar.update(
                task,
                description=label[:60],
                completed=min(p.step, p.total) if p.total else p.step,
                total=p.total,
                metric=metric,
            )


def _show_training(info: JobInfo) -> None:
    data = info.as_dict()
    result = data.get("Result") or {}
    colour = {"Completed": "green", "Failed": "red", "Stopped": "yellow"}.get(
        data["JobStatus"], "cyan"
    )
    params = data.get("Parameters") or {}
    console.print(
        f"[bold]{data['JobName']}[/bold]: [{colour}]{data['JobStatus']}[/{colour}] / "
        f"{data.get('SecondaryStatus')} ({params.get('algorithm')}"
        f"{', ' + result['ProblemType'] if result.get('ProblemType') else ''})",
        highlight=False,
    )
    if data.get("FailureReason"):
        console.print(f"[red]{data['FailureReason']}[/red]", highlight=False)
    artifacts = result.get("ModelArtifacts") or {}
    if artifacts:
        console.print(
            f"model: {artifacts.get('S3ModelArtifacts')} ({artifacts.get('SizeBytes')} bytes)",
            highlight=False,
        )
    split = result.get("Split") or {}
    if split.get("Method") and split["Method"] != "channel":
        by = f" by {split['SplitBy']} after {split.get('Cutoff')}" if split.get("SplitBy") else ""
        console.print(
            f"validation: {split['Method']} holdout of {split.get('HoldoutFraction', 0):.0%}{by} "
            f"({split.get('TrainRows')} train / {split.get('ValidationRows')} validation rows)",
            highlight=False,
        )
    if result.get("TrainingTimeInSeconds") is not None:
        console.print(f"training time: {result['TrainingTimeInSeconds']} s", highlight=False)
    checkpoint = result.get("Checkpoint") or {}
    if checkpoint.get("ResumedFromRound") is not None:
        console.print(
            f"resumed from the checkpoint at round {checkpoint['ResumedFromRound']}",
            highlight=False,
        )
    final = result.get("FinalMetrics") or {}
    if final:
        print_records(
            [{"metric": k, "value": v} for k, v in sorted(final.items())], title="Final metrics"
        )
    cv = (result.get("CrossValidation") or {}).get("Metrics") or {}
    if cv:
        print_records(
            [{"metric": k, "mean": v.get("Mean"), "std": v.get("Std")} for k, v in cv.items()],
            title=f"{result['CrossValidation'].get('Folds')}-fold cross-validation",
        )
    if not final and data.get("FinalMetricDataList"):
        print_records(data["FinalMetricDataList"], title="Last metrics")


def train_command(
    algorithm: str = typer.Option(
        None, "--algorithm", "-a", help="A built-in algorithm (sagelab algorithms list)."
    ),
    train: str = typer.Option(
        None, "--train", help="The train channel: a table, a SQL query, or a path/URL."
    ),
    validation: str = typer.Option(
        None, "--validation", help="The validation channel (default: held out from train)."
    ),
    test: str = typer.Option(None, "--test", help="A test channel, evaluated after training."),
    target: str = typer.Option(
        None,
        "--target",
        help="The label column; without it the label is the first column (CSV: no header).",
    ),
    hp: list[str] = typer.Option(
        None, "--hp", metavar="KEY=VALUE", help="A hyperparameter as key=value; repeatable."
    ),
    name: str = typer.Option(None, "--name", help="The job's name (default: generated)."),
    content_type: str = typer.Option(
        None,
        "--content-type",
        help="text/csv, text/libsvm, application/x-parquet (default: from the SOURCE).",
    ),
    holdout: float = typer.Option(
        0.2, "--holdout", help="Share of train held out for validation when none is given."
    ),
    split_by: str = typer.Option(
        None, "--split-by", help="Hold out the latest rows by this column (time-ordered)."
    ),
    cv: int = typer.Option(None, "--cv", help="Run k-fold cross-validation first."),
    seed: int = typer.Option(0, "--seed", help="Seeds the algorithm, the split and the folds."),
    max_runtime: int = typer.Option(
        None, "--max-runtime", help="Stop the job after this many seconds."
    ),
    checkpoint_uri: str = typer.Option(
        None, "--checkpoint-uri", help="Checkpoint location in the lake (default: the job's own)."
    ),
    checkpoint_every: int = typer.Option(
        10, "--checkpoint-every", help="Checkpoint every this many iterations (0: never)."
    ),
    resume: str = typer.Option(
        None,
        "--resume",
        help="Continue this stopped or failed job from its last checkpoint (with --hp overrides).",
    ),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait for the job and show it."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Train an algorithm as a job: metrics stream live, the model goes to the lake."""
    from sagelab.errors import InvalidInput

    training = _training()
    hyperparameters = _hyperparameters(hp)
    if resume is not None:
        info = training.resume(
            resume, hyperparameters=hyperparameters, name=name, max_runtime_seconds=max_runtime
        )
    else:
        if algorithm is None or train is None:
            raise InvalidInput("Give --algorithm and --train (or --resume JOB).")
        inputs = {"train": train}
        if validation is not None:
            inputs["validation"] = validation
        if test is not None:
            inputs["test"] = test
        info = training.submit(
            algorithm,
            inputs,
            hyperparameters=hyperparameters,
            target=target,
            content_type=content_type,
            holdout=holdout,
            split_by=split_by,
            cv=cv,
            seed=seed,
            name=name,
            max_runtime_seconds=max_runtime,
            checkpoint_uri=checkpoint_uri,
            checkpoint_every=checkpoint_every,
        )
    if wait:
        _follow(training, info.name)
        info = training.describe(info.name)
    if json_out:
        print_json(info.as_dict())
    else:
        _show_training(info)
    if info.status in ("Failed", "Stopped"):
        raise typer.Exit(1)


def evaluate_command(
    model: str = typer.Argument(..., help="A training job's name (or an s3:// model location)."),
    data: str = typer.Option(
        ..., "--data", help="Labelled data: a table, a SQL query, or a path/URL."
    ),
    report: str = typer.Option(
        None, "--report", help="Write an HTML report here (also kept in the lake)."
    ),
    threshold: str = typer.Option(
        None,
        "--threshold",
        help="Binary classifiers: a number, optimal-f1 or youden (default: the model's labels).",
    ),
    json_out: bool = JSON_OPTION,
) -> None:
    """Evaluate a trained model on labelled data, optionally with an HTML report."""
    chosen: float | str | None = threshold
    if threshold is not None:
        try:
            chosen = float(threshold)
        except ValueError:
            chosen = threshold
    result = _training().evaluate(model, data, threshold=chosen, report=report)
    if json_out:
        print_json(result.as_dict())
        return
    console.print(result.evaluation.summary(), highlight=False)
    if result.algorithm_metrics:
        print_records(
            [{"metric": k, "value": v} for k, v in sorted(result.algorithm_metrics.items())],
            title=f"{model}'s own metrics",
        )
    if result.report_path:
        console.print(f"report: {result.report_path}", highlight=False)
    if result.lake_uri:
        console.print(f"kept in the lake: {result.lake_uri}", highlight=False)


@algorithms_app.command("list")
def list_algorithms(json_out: bool = JSON_OPTION) -> None:
    """List the built-in algorithms."""
    from sagelab.algorithms import algorithm_names, get_algorithm

    described = [get_algorithm(n).describe() for n in algorithm_names()]
    if json_out:
        print_json({"Algorithms": described})
        return
    print_records(
        [
            {
                "name": d["AlgorithmName"],
                "problems": ", ".join(d["ProblemTypes"]),
                "content types": ", ".join(d["SupportedContentTypes"]),
                "capabilities": ", ".join(k for k, v in d["Capabilities"].items() if v),
            }
            for d in described
        ]
    )


@algorithms_app.command("show")
def show_algorithm(name: str, json_out: bool = JSON_OPTION) -> None:
    """Show an algorithm's hyperparameters, metrics and capabilities."""
    from sagelab.algorithms import get_algorithm

    cls = get_algorithm(name)
    d = cls.describe()
    if json_out:
        print_json({**d, "ExampleHyperParameters": dict(cls.example_hyperparameters)})
        return
    console.print(f"[bold]{d['AlgorithmName']}[/bold]: {d['Description']}", highlight=False)
    console.print(f"problems: {', '.join(d['ProblemTypes'])}", highlight=False)
    console.print(f"content types: {', '.join(d['SupportedContentTypes'])}", highlight=False)
    console.print(
        "capabilities: " + ", ".join(f"{k}={v}" for k, v in d["Capabilities"].items()),
        highlight=False,
    )
    print_records(
        [
            {
                "name": h["Name"],
                "range": h["Range"],
                "default": h["DefaultValue"],
                "required": h["IsRequired"],
                "tunable": h["IsTunable"],
                "help": h["Description"],
            }
            for h in d["Hyperparameters"]
        ],
        title="Hyperparameters",
    )
    print_records(
        [{"metric": m["MetricName"], "direction": m["Direction"]} for m in d["MetricDefinitions"]],
        title="Metrics",
    )


@experiments_app.command("compare")
def compare(
    jobs: list[str] = typer.Argument(..., help="Training jobs to compare."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Show training runs side by side: final metrics, time to train, model size."""
    comparison = _training().compare(jobs)
    if json_out:
        print_json(comparison.as_dict())
        return
    # Side by side: one column per job, one row per field, so many metrics still fit.
    fields = ["Status", "Algorithm", *comparison.metrics]
    fields += ["TrainSeconds", "TotalSeconds", "ModelSizeBytes", "Seed"]
    jobs_in_order = [row["Job"] for row in comparison.rows]
    table: list[dict[str, Any]] = [
        {"": field, **{row["Job"]: row.get(field) for row in comparison.rows}} for field in fields
    ]
    for key in sorted({k for values in comparison.hyperparameters.values() for k in values}):
        table.append(
            {"": f"hp:{key}", **{j: comparison.hyperparameters[j].get(key) for j in jobs_in_order}}
        )
    print_records(table, ["", *jobs_in_order])
