"""The blue/green options of ``sagelab deploy --update`` and ``sagelab endpoints wait``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from sagelab.cli._output import JSON_OPTION, console, print_json

if TYPE_CHECKING:
    from sagelab.serving import DeploymentConfig, EndpointService

__all__ = ["deployment_config", "follow_update", "json_option", "wait_command"]

_ALARM = re.compile(r"^\s*([A-Za-z0-9]+)\s*>\s*([0-9.eE+-]+)\s*(%|us|µs|ms)?\s*$")


def deployment_config(
    config: str | None,
    traffic: str | None,
    bake: float | None,
    termination_wait: float | None,
    alarms: list[str] | None,
    max_seconds: float | None,
) -> DeploymentConfig | dict[str, Any] | None:
    """The update's deployment config: ``--deployment-config`` (a JSON file or text in
    SageMaker's shape) or the shortcuts, not both; None when neither is given.

    Raises:
        InvalidInput: both given, a shortcut that does not parse, a file that is not JSON.
    """
    from sagelab.errors import InvalidInput
    from sagelab.serving import DeploymentConfig, RollbackAlarm

    shortcuts = [traffic, bake, termination_wait, alarms or None, max_seconds]
    if config is not None:
        if any(x is not None for x in shortcuts):
            raise InvalidInput(
                "Give --deployment-config or the shortcuts (--traffic, --bake, "
                "--termination-wait, --alarm, --max-update-seconds), not both."
            )
        parsed = json_option(config, "--deployment-config")
        return dict(parsed) if isinstance(parsed, dict) else parsed
    if all(x is None for x in shortcuts):
        return None
    routing, size = _traffic(traffic or "all")
    return DeploymentConfig(
        routing=routing,
        size=size,
        wait_seconds=bake if bake is not None else 0.0,
        termination_wait_seconds=termination_wait or 0.0,
        max_execution_seconds=max_seconds if max_seconds is not None else 3600.0,
        alarms=tuple(_alarm(text, RollbackAlarm) for text in alarms or []),
    )


def json_option(text: str, option: str) -> Any:
    """An option's JSON: the content of the file it names, or the JSON text it is.

    Raises:
        InvalidInput: neither a file of JSON nor JSON text (the option named).
    """
    from sagelab.errors import InvalidInput

    path = Path(text)
    source = path.read_text(encoding="utf-8") if path.is_file() else text
    try:
        return json.loads(source)
    except ValueError as exc:
        raise InvalidInput(
            f"{option} takes a JSON file or JSON text; {text!r} is neither ({exc})."
        ) from None


def _traffic(text: str) -> tuple[str, float]:
    """``all``, ``canary:PERCENT`` or ``linear:PERCENT``."""
    from sagelab.errors import InvalidInput

    kind, _, value = text.partition(":")
    kind = kind.strip().lower()
    if kind in ("all", "all-at-once") and not value:
        return "ALL_AT_ONCE", 100.0
    if kind in ("canary", "linear") and value:
        try:
            return kind.upper(), float(value.rstrip("%"))
        except ValueError:
            pass
    raise InvalidInput(
        f"--traffic takes all, canary:PERCENT or linear:PERCENT (e.g. canary:10); got {text!r}."
    )


def _alarm(text: str, cls: Any) -> Any:
    """``METRIC>THRESHOLD``: ``Invocation5XXErrors>5%`` or ``ModelLatency>20ms``."""
    from sagelab.errors import InvalidInput

    match = _ALARM.match(text)
    if match is None:
        raise InvalidInput(
            "--alarm takes METRIC>THRESHOLD, e.g. Invocation5XXErrors>1% or "
            f"ModelLatency>20ms; got {text!r}."
        )
    metric, number, unit = match.group(1), float(match.group(2)), match.group(3)
    scale = {"%": 0.01, "ms": 1000.0}.get(unit or "", 1.0)
    return cls(name=text.replace(" ", ""), metric=metric, threshold=number * scale)


def follow_update(service: EndpointService, name: str, timeout: float) -> dict[str, Any]:
    """Wait for an update, printing each change of status, step or traffic share."""

    def show(d: dict[str, Any]) -> None:
        pending = d.get("PendingDeploymentSummary")
        status = d["EndpointStatus"]
        if pending and status == "Updating":
            console.print(
                f"{name}: Updating, step {pending['Step']}/{pending['Steps']}: the new "
                f"fleet takes {pending['TrafficShare']:.0%} of the traffic"
            )
        elif status == "RollingBack":
            console.print(f"[yellow]{name}: RollingBack: {d.get('FailureReason') or ''}[/yellow]")
        else:
            last = d.get("LastDeployment") or {}
            colour = "green" if last.get("Status", "Completed") == "Completed" else "yellow"
            console.print(f"[{colour}]{name}: {status}[/{colour}]")

    return service.wait(name, timeout=timeout, on_change=show)


def wait_command(
    name: str,
    timeout: float = typer.Option(3600.0, "--timeout", help="Seconds to wait at most."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Wait until an endpoint's update (or creation) has ended, showing its steps."""
    from sagelab.cli._app import session

    service = session().endpoints
    if json_out:
        print_json(service.wait(name, timeout=timeout))
        return
    follow_update(service, name, timeout)
