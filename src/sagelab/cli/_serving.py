"""``sagelab deploy``, ``sagelab endpoints``, ``sagelab serve`` and ``sagelab invoke``.

A door: each command parses its arguments, calls the serving stage, and shows what
comes back.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from sagelab.cli._output import JSON_OPTION, console, err_console, print_json, print_records
from sagelab.cli._rollout import json_option, wait_command

if TYPE_CHECKING:
    from sagelab.serving import DataCaptureConfig, EndpointService, VariantSpec

__all__ = ["deploy_command", "endpoints_app", "invoke_command", "serve_command"]

endpoints_app = typer.Typer(
    help="Endpoints: describe, update weights, delete.", no_args_is_help=True
)


def _service() -> EndpointService:
    from sagelab.cli._app import session

    return session().endpoints


def _variant(text: str) -> VariantSpec:
    """``NAME=MODEL:WEIGHT[:INSTANCES]``; MODEL may hold colons (``s3://…``)."""
    from sagelab.errors import InvalidInput
    from sagelab.serving import VariantSpec

    name, sep, rest = text.partition("=")
    parts = rest.split(":")
    numbers: list[str] = []
    while len(parts) > 1 and len(numbers) < 2 and _is_number(parts[-1]):
        numbers.insert(0, parts.pop())
    model = ":".join(parts)
    if not sep or not name or not model or not numbers:
        raise InvalidInput(
            f"--variant takes NAME=MODEL:WEIGHT[:INSTANCES], e.g. blue=churn/3:0.9:2; got {text!r}."
        )
    instances = numbers[1] if len(numbers) == 2 else "1"
    if not instances.isdigit():
        raise InvalidInput(f"The instance count in {text!r} must be a whole number.")
    return VariantSpec(
        name=name, model=model, weight=float(numbers[0]), instance_count=int(instances)
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def deploy_command(
    model: str | None = typer.Argument(
        None, help="The model: GROUP/N, GROUP (latest Approved), a training job, s3://…/model/."
    ),
    endpoint: str = typer.Option(..., "--endpoint", "-e", help="The endpoint's name."),
    variant: list[str] | None = typer.Option(
        None, "--variant", help="NAME=MODEL:WEIGHT[:INSTANCES]; repeat for several variants."
    ),
    instances: int = typer.Option(1, "--instances", help="Instances of the single variant."),
    update: bool = typer.Option(False, "--update", help="Replace an existing endpoint's variants."),
    multi_model: str | None = typer.Option(
        None,
        "--multi-model",
        help="Serve every model folder under s3://bucket/prefix/, picked per request by "
        "X-Amzn-SageMaker-Target-Model (invoke --target-model).",
    ),
    memory_budget_mb: float | None = typer.Option(
        None, "--memory-budget-mb", help="--multi-model: MB of models kept loaded per instance."
    ),
    model_idle_seconds: float | None = typer.Option(
        None, "--model-idle-seconds", help="--multi-model: unload a model unused this long."
    ),
    data_capture: int | None = typer.Option(
        None,
        "--data-capture",
        help="Capture this percentage (0-100) of requests and answers to the lake.",
    ),
    capture_destination: str | None = typer.Option(
        None,
        "--capture-destination",
        help="--data-capture: where, s3://bucket/prefix/ (default s3://data-capture/).",
    ),
    capture: str | None = typer.Option(
        None, "--capture", help="--data-capture: input, output or input,output (the default)."
    ),
    pipeline: str | None = typer.Option(
        None,
        "--pipeline",
        help="An inference pipeline instead of MODEL: a JSON file or text, a list of 2-5 steps "
        '(e.g. [{"Type": "Recipe", "Recipe": "prep"}, {"Type": "Model", "Model": "churn/3"}, '
        '{"Type": "Labels", "Labels": ["no", "yes"]}]).',
    ),
    shadow: str | None = typer.Option(
        None,
        "--shadow",
        help="A shadow variant, NAME=MODEL:PERCENT[:INSTANCES]: gets a copy of PERCENT % of "
        "the requests; its answers are compared and logged, never returned.",
    ),
    deployment_config: str | None = typer.Option(
        None,
        "--deployment-config",
        help="--update: blue/green, a JSON file or text in SageMaker's DeploymentConfig shape.",
    ),
    traffic: str | None = typer.Option(
        None,
        "--traffic",
        help="--update: blue/green traffic shifting, all, canary:PERCENT or linear:PERCENT.",
    ),
    bake: float | None = typer.Option(
        None, "--bake", help="--update: seconds each traffic step bakes (alarms watched)."
    ),
    termination_wait: float | None = typer.Option(
        None, "--termination-wait", help="--update: seconds the old fleet is kept after."
    ),
    alarm: list[str] | None = typer.Option(
        None,
        "--alarm",
        help="--update: roll back when the new fleet's METRIC>THRESHOLD, e.g. "
        "Invocation5XXErrors>1% or ModelLatency>20ms; repeat.",
    ),
    max_update_seconds: float | None = typer.Option(
        None, "--max-update-seconds", help="--update: roll back an update still running after."
    ),
    wait: bool = typer.Option(
        True, "--wait/--no-wait", help="Follow a blue/green update until it ends."
    ),
    json_out: bool = JSON_OPTION,
) -> None:
    """Deploy a model (or several weighted variants, or a multi-model prefix) to an endpoint.

    With --update and --traffic/--alarm/--deployment-config the update is blue/green:
    the new variants take the traffic step by step and are rolled back when an alarm fires.
    """
    from sagelab.cli._rollout import deployment_config as parse_deployment
    from sagelab.cli._rollout import follow_update
    from sagelab.errors import InvalidInput
    from sagelab.serving import VariantSpec

    if sum(x is not None and x != [] for x in (model, variant, multi_model, pipeline)) != 1:
        raise InvalidInput(
            "Give one of MODEL (one variant), --variant (repeated), --multi-model PREFIX or "
            "--pipeline STEPS."
        )
    if pipeline is not None:
        specs = [
            VariantSpec(
                "AllTraffic",
                "",
                instance_count=instances,
                pipeline=json_option(pipeline, "--pipeline"),
            )
        ]
    elif multi_model is not None:
        specs = [
            VariantSpec(
                "AllTraffic",
                multi_model,
                instance_count=instances,
                mode="MultiModel",
                memory_budget_mb=memory_budget_mb,
                model_idle_seconds=model_idle_seconds,
            )
        ]
    elif variant:
        specs = [_variant(v) for v in variant]
    else:
        specs = [
            VariantSpec(
                "AllTraffic",
                str(model),
                instance_count=instances,
                memory_budget_mb=memory_budget_mb,  # refused by the service: MultiModel only
                model_idle_seconds=model_idle_seconds,
            )
        ]
    if shadow is not None:
        spec = _variant(shadow)
        specs.append(
            VariantSpec(
                spec.name,
                spec.model,
                instance_count=spec.instance_count,
                shadow=True,
                sampling_percentage=spec.weight,
            )
        )
    policy = parse_deployment(
        deployment_config, traffic, bake, termination_wait, alarm, max_update_seconds
    )
    service = _service()
    described = service.deploy(
        endpoint,
        specs,
        update=update,
        data_capture=_data_capture(data_capture, capture_destination, capture),
        deployment_config=policy,
    )
    if policy is not None and wait and "PendingDeploymentSummary" in described:
        from sagelab.serving import DeploymentConfig

        timeout = DeploymentConfig.parse(policy).max_execution_seconds + 60
        if json_out:
            described = service.wait(endpoint, timeout=timeout)
        else:
            described = follow_update(service, endpoint, timeout)
    if json_out:
        print_json(described)
        return
    _show_endpoint(described)


endpoints_app.command("wait")(wait_command)


@endpoints_app.command("list")
def list_endpoints(json_out: bool = JSON_OPTION) -> None:
    """Every endpoint and its status."""
    rows = _service().list()
    if json_out:
        print_json(rows)
        return
    print_records(rows, ["EndpointName", "EndpointStatus", "Variants", "LastModifiedTime"])


@endpoints_app.command("describe")
def describe_endpoint(name: str, json_out: bool = JSON_OPTION) -> None:
    """An endpoint's status, variants, weights, instance counts and metrics."""
    described = _service().describe(name)
    if json_out:
        print_json(described)
        return
    _show_endpoint(described)


@endpoints_app.command("update-weights")
def update_weights(
    name: str,
    weight: list[str] | None = typer.Option(None, "--weight", help="VARIANT=WEIGHT; repeat."),
    instances: list[str] | None = typer.Option(None, "--instances", help="VARIANT=COUNT; repeat."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Change variants' weights and instance counts without downtime."""
    described = _service().update_weights(
        name, _pairs(weight, "--weight", float), _pairs(instances, "--instances", int)
    )
    if json_out:
        print_json(described)
        return
    _show_endpoint(described)


@endpoints_app.command("metrics")
def endpoint_metrics(
    name: str,
    metric: str | None = typer.Option(None, "--metric", help="One metric, e.g. ModelLatency."),
    json_out: bool = JSON_OPTION,
) -> None:
    """An endpoint's metric series (one point per period and variant)."""
    rows = _service().metrics(name, metric)
    if json_out:
        print_json(rows)
        return
    print_records(rows, ["Timestamp", "VariantName", "MetricName", "Value", "SampleCount"])


@endpoints_app.command("autoscale")
def autoscale_endpoint(
    name: str,
    variant: str = typer.Option(..., "--variant", help="The variant to scale."),
    min_capacity: int | None = typer.Option(None, "--min", help="The fewest instances."),
    max_capacity: int | None = typer.Option(None, "--max", help="The most instances."),
    target: float | None = typer.Option(
        None, "--target", help="Invocations per instance per minute to hold."
    ),
    scale_out_cooldown: float = typer.Option(300.0, "--scale-out-cooldown", help="Seconds."),
    scale_in_cooldown: float = typer.Option(300.0, "--scale-in-cooldown", help="Seconds."),
    scale_out_window: float = typer.Option(
        180.0, "--scale-out-window", help="Seconds above the target before a scale-out."
    ),
    scale_in_window: float = typer.Option(
        900.0, "--scale-in-window", help="Seconds below 90% of the target before a scale-in."
    ),
    disable_scale_in: bool = typer.Option(False, "--disable-scale-in", help="Never scale in."),
    off: bool = typer.Option(False, "--off", help="Remove the variant's policy."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Scale a variant's instances by target tracking on invocations per instance."""
    from sagelab.errors import InvalidInput
    from sagelab.serving import ScalingPolicy

    scaling = _service().autoscaling
    if off:
        described = scaling.delete_policy(name, variant)
    else:
        missing = [
            flag
            for flag, value in (
                ("--min", min_capacity),
                ("--max", max_capacity),
                ("--target", target),
            )
            if value is None
        ]
        if missing:
            raise InvalidInput(f"A scaling policy needs {', '.join(missing)} (or --off).")
        policy = ScalingPolicy(
            min_capacity=min_capacity,  # type: ignore[arg-type]
            max_capacity=max_capacity,  # type: ignore[arg-type]
            target_value=target,  # type: ignore[arg-type]
            scale_out_cooldown=scale_out_cooldown,
            scale_in_cooldown=scale_in_cooldown,
            scale_out_window=scale_out_window,
            scale_in_window=scale_in_window,
            disable_scale_in=disable_scale_in,
        )
        described = scaling.put_policy(name, variant, policy)
    if json_out:
        print_json(described)
        return
    rows = [{"Variant": v, **p} for v, p in described["Policies"].items()]
    if rows:
        print_records(rows)
    else:
        console.print(f"No scaling policies on {name}.")
    if described["Activities"]:
        print_records(described["Activities"][-10:])


@endpoints_app.command("data-capture")
def data_capture_endpoint(
    name: str,
    percent: int | None = typer.Option(
        None, "--percent", help="Capture this percentage (0-100) of requests and answers."
    ),
    destination: str | None = typer.Option(
        None, "--destination", help="Where: s3://bucket/prefix/ (default s3://data-capture/)."
    ),
    capture: str | None = typer.Option(
        None, "--capture", help="input, output or input,output (the default)."
    ),
    off: bool = typer.Option(False, "--off", help="Stop capturing."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Start, change or stop an endpoint's data capture, keeping its variants."""
    from sagelab.errors import InvalidInput
    from sagelab.serving import DataCaptureConfig

    if off == (percent is not None):
        raise InvalidInput("Give --percent PERCENT to capture, or --off to stop (one of them).")
    config = (
        DataCaptureConfig(enable_capture=False, sampling_percentage=0)
        if off
        else _data_capture(percent, destination, capture)
    )
    described = _service().update_data_capture(name, config)  # type: ignore[arg-type]
    if json_out:
        print_json(described)
        return
    _show_endpoint(described)


@endpoints_app.command("delete")
def delete_endpoint(name: str, json_out: bool = JSON_OPTION) -> None:
    """Delete an endpoint; servers stop serving it within a second."""
    _service().delete(name)
    if json_out:
        print_json({"EndpointName": name, "Deleted": True})
        return
    console.print(f"Deleted endpoint {name}.")


def serve_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (others need a token)."),
    port: int = typer.Option(8080, "--port", help="TCP port."),
    workers: int | None = typer.Option(
        None, "--workers", help="A fixed number of worker processes (default: the instances)."
    ),
    max_workers: int | None = typer.Option(None, "--max-workers", help="Most workers to run."),
    token: str | None = typer.Option(
        None, "--token", help="Bearer token invocations must carry (default: SAGELAB_SERVE_TOKEN)."
    ),
    metrics_period: float = typer.Option(
        60.0, "--metrics-period", help="Seconds per point of the metric series."
    ),
) -> None:
    """Serve every endpoint over HTTP until interrupted."""
    from sagelab.cli._app import session
    from sagelab.serving import ServerOptions, run_server

    s = session()
    defaults = ServerOptions()
    options = ServerOptions(
        host=host,
        port=port,
        workers=workers,
        max_workers=max_workers or defaults.max_workers,
        token=s.settings.serve_token if token is None else token,
        metrics_period=metrics_period,
    )

    def ready(bound: str, bound_port: int) -> None:
        err_console.print(
            f"Serving every endpoint on http://{bound}:{bound_port} "
            f"(POST /endpoints/NAME/invocations, GET /metrics). Ctrl-C stops."
        )

    run_server(s.settings, s.endpoints, options, on_ready=ready)


def invoke_command(
    endpoint: str,
    body: str = typer.Option(
        ..., "--body", help="The request body, @FILE to read a file, - for stdin."
    ),
    content_type: str = typer.Option("text/csv", "--content-type", help="The body's type."),
    accept: str | None = typer.Option(None, "--accept", help="The answer's type."),
    target_variant: str | None = typer.Option(None, "--target-variant", help="A variant to use."),
    target_model: str | None = typer.Option(
        None, "--target-model", help="A multi-model endpoint's model: a path under its prefix."
    ),
    url: str | None = typer.Option(None, "--url", help="The server (default: SAGELAB_SERVE_URL)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Send one request to an endpoint and print the answer."""
    from sagelab.cli._app import session
    from sagelab.serving import invoke_endpoint

    settings = session().settings
    if body == "-":
        payload = sys.stdin.buffer.read()
    elif body.startswith("@"):
        payload = Path(body[1:]).read_bytes()
    else:
        payload = body.encode()
    result = invoke_endpoint(
        url or settings.serve_url,
        endpoint,
        payload,
        content_type=content_type,
        accept=accept,
        target_variant=target_variant,
        token=settings.serve_token,
        target_model=target_model,
    )
    if json_out:
        print_json(
            {
                "ContentType": result["ContentType"],
                "InvokedProductionVariant": result["InvokedProductionVariant"],
                "Body": result["Body"].decode("utf-8", "replace"),
            }
        )
        return
    err_console.print(f"[dim]variant {result['InvokedProductionVariant']}[/dim]")
    text = result["Body"].decode("utf-8", "replace")
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _pairs(items: list[str] | None, option: str, kind: type) -> dict[str, Any]:
    from sagelab.errors import InvalidInput

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        try:
            out[key.strip()] = kind(value)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            raise InvalidInput(
                f"{option} takes VARIANT=VALUE (e.g. {option} blue=2); got {item!r}."
            )
    return out


def _data_capture(
    percent: int | None, destination: str | None, modes: str | None
) -> DataCaptureConfig | None:
    """``--data-capture PERCENT [--capture-destination URI] [--capture input,output]``."""
    from sagelab.errors import InvalidInput
    from sagelab.serving import DataCaptureConfig

    if percent is None:
        if destination is not None or modes is not None:
            raise InvalidInput(
                "--capture-destination and --capture go with --data-capture PERCENT."
            )
        return None
    return DataCaptureConfig(
        sampling_percentage=percent,
        destination_s3_uri=destination,
        capture_options=("Input", "Output")
        if modes is None
        else tuple(m.strip() for m in modes.split(",") if m.strip()),
    )


def _show_endpoint(d: dict[str, Any]) -> None:
    status = d["EndpointStatus"]
    colour = {"InService": "green", "Failed": "red"}.get(status, "yellow")
    console.print(f"[bold]{d['EndpointName']}[/bold]  [{colour}]{status}[/{colour}]")
    if d.get("FailureReason"):
        console.print(f"[red]{d['FailureReason']}[/red]")
    rows = []
    for v in d["ProductionVariants"]:
        m = v.get("Metrics", {})
        rows.append(
            {
                "Variant": v["VariantName"],
                "Model": v["Model"],
                "Weight": v["CurrentWeight"],
                "Instances": v["CurrentInstanceCount"],
                "Invocations": m.get("Invocations"),
                "ModelLatency µs": m.get("ModelLatency"),
                "OverheadLatency µs": m.get("OverheadLatency"),
                "4XX": m.get("Invocation4XXErrors"),
                "5XX": m.get("Invocation5XXErrors"),
            }
        )
    print_records(rows)
    for v in d["ProductionVariants"]:
        if v.get("Pipeline"):
            chain = " → ".join(f"{s['Name']} ({s['Type']})" for s in v["Pipeline"])
            console.print(f"{v['VariantName']} is an inference pipeline: {chain}")
    for v in d.get("ShadowProductionVariants", []):
        m = v.get("Metrics", {})
        console.print(
            f"Shadow {v['VariantName']} ({v['Model']}): {v['SamplingPercentage']:g}% of requests "
            f"copied; {m.get('Invocations', 0):g} answered, mean difference from production "
            f"{m.get('ShadowPredictionDifference', 0):.4g}, ModelLatency "
            f"{m.get('ModelLatency', 0):,.0f} µs, {m.get('ShadowDroppedRequests', 0):g} dropped"
        )
    pending = d.get("PendingDeploymentSummary")
    if pending:
        console.print(
            f"Blue/green update to {pending['EndpointConfigName']}: step {pending['Step']}/"
            f"{pending['Steps']}, the new fleet takes {pending['TrafficShare']:.0%} of the traffic"
        )
        print_records(
            [
                {
                    "Variant": v["ServedAs"],
                    "Model": v["Model"],
                    "Weight": v["CurrentWeight"],
                    "Instances": v["CurrentInstanceCount"],
                    "Invocations": v.get("Metrics", {}).get("Invocations"),
                    "5XX": v.get("Metrics", {}).get("Invocation5XXErrors"),
                }
                for v in pending["ProductionVariants"]
            ]
        )
    last = d.get("LastDeployment")
    if last and not pending:
        console.print(
            f"Last update: {last['Status']} ({last['EndpointConfigName']})"
            + (f": {last['Reason']}" if last.get("Reason") else "")
        )
    capture = d.get("DataCaptureConfig")
    if capture:
        modes = " and ".join(o["CaptureMode"].lower() for o in capture["CaptureOptions"])
        console.print(
            f"Data capture {capture['CaptureStatus']}: {capture['CurrentSamplingPercentage']}% "
            f"of requests ({modes}) to {capture['DestinationS3Uri']}"
        )
    for variant, policy in (d.get("AutoScaling") or {}).get("Policies", {}).items():
        console.print(
            f"Autoscaling {variant}: {policy['MinCapacity']}-{policy['MaxCapacity']} instances, "
            f"target {policy['TargetValue']:g} invocations per instance per minute"
        )
