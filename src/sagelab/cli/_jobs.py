"""``sagelab jobs``: list, describe, follow and stop jobs of every kind."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from sagelab.cli._output import JSON_OPTION, console, print_json, print_records

if TYPE_CHECKING:
    from sagelab.jobs import JobInfo, JobService

__all__ = ["app", "show_job"]

app = typer.Typer(help="Jobs of every kind: training, ETL, ...", no_args_is_help=True)


def _jobs() -> JobService:
    from sagelab.cli._app import session

    return session().jobs


def _summary(info: JobInfo) -> dict[str, Any]:
    data = info.as_dict()
    return {
        "name": data["JobName"],
        "kind": data["JobKind"],
        "status": data["JobStatus"],
        "secondary": data.get("SecondaryStatus"),
        "created": _short_time(data.get("CreationTime")),
        "ended": _short_time(data.get("EndTime")),
        "reason": (data.get("FailureReason") or "")[:80],
    }


def _short_time(value: str | None) -> str | None:
    """``2026-01-02T03:04:05.678+00:00`` → ``2026-01-02 03:04:05`` (the JSON keeps it whole)."""
    return value[:19].replace("T", " ") if value else value


@app.command("list")
def list_jobs(
    kind: str = typer.Option(None, "--kind", help="Only jobs of this kind."),
    status: str = typer.Option(
        None, "--status", help="InProgress, Completed, Failed, Stopping or Stopped."
    ),
    name_contains: str = typer.Option(None, "--name-contains", help="Only names containing this."),
    limit: int = typer.Option(
        50, "--limit", min=1, max=10_000, help="At most this many, newest first."
    ),
    json_out: bool = JSON_OPTION,
) -> None:
    """List jobs, newest first."""
    infos = _jobs().list(kind=kind, status=status, name_contains=name_contains, limit=limit)
    if json_out:
        print_json({"JobSummaries": [i.as_dict() for i in infos]})
    else:
        print_records([_summary(i) for i in infos])


def show_job(info: JobInfo) -> None:
    """Print a job's description for people."""
    data = info.as_dict()
    colour = {"Completed": "green", "Failed": "red", "Stopped": "yellow"}.get(
        data["JobStatus"], "cyan"
    )
    console.print(
        f"[bold]{data['JobName']}[/bold] ({data['JobKind']}): [{colour}]{data['JobStatus']}[/{colour}] / {data.get('SecondaryStatus')}"
    )
    if data.get("FailureReason"):
        console.print(f"[red]{data['FailureReason']}[/red]", highlight=False)
    for key in ("CreationTime", "StartTime", "EndTime", "LogUri"):
        if data.get(key):
            console.print(f"{key}: {data[key]}")
    if data.get("Parameters"):
        print_records(
            [{"parameter": k, "value": v} for k, v in data["Parameters"].items()],
            title="Parameters",
        )
    if data.get("Result"):
        print_records(
            [{"result": k, "value": v} for k, v in data["Result"].items()], title="Result"
        )
    metrics = data.get("FinalMetricDataList") or []
    if metrics:
        print_records(metrics, title="Final metrics")


@app.command("describe")
def describe(name: str, json_out: bool = JSON_OPTION) -> None:
    """Describe a job: status, times, parameters, result, final metrics."""
    info = _jobs().describe(name)
    print_json(info.as_dict()) if json_out else show_job(info)


@app.command("logs")
def logs(
    name: str,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until the job ends."),
) -> None:
    """Print a job's log."""
    for line in _jobs().logs(name, follow=follow):
        console.out(line.rstrip("\n"), highlight=False)


@app.command("stop")
def stop(name: str, json_out: bool = JSON_OPTION) -> None:
    """Stop a running job."""
    info = _jobs().stop(name)
    if json_out:
        print_json(info.as_dict())
    else:
        console.print(f"{info.as_dict()['JobName']}: {info.as_dict()['JobStatus']}")


@app.command("metrics")
def metrics(
    name: str,
    metric: str = typer.Option(None, "--metric", help="Only this metric."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Print a job's metric time series."""
    points = [p.as_dict() for p in _jobs().metrics(name, metric)]
    print_json({"Metrics": points}) if json_out else print_records(points)
