"""Blue/green updates of an endpoint: all at once, canary or linear, rolled back on an alarm.

SageMaker's deployment guardrails: an update given a ``DeploymentConfig`` does not
swap the endpoint's variants at once. The new config's variants (the *green* fleet)
are loaded next to the serving ones (the *blue* fleet) and take a growing share of
the traffic:

* ``ALL_AT_ONCE``: all of it in one step;
* ``CANARY``: ``CanarySize`` first (a percentage of the traffic, or a number of the
  green fleet's instances), then the rest;
* ``LINEAR``: ``LinearStepSize`` more at each step.

Each step *bakes* for ``WaitIntervalInSeconds``; after the last, the blue fleet is
kept ``TerminationWaitInSeconds`` more before it is let go. Throughout, the rollback
alarms are evaluated on the green fleet's own requests (its 5xx or 4xx error rate,
or its mean model or overhead latency, CloudWatch's ``Average`` of those metrics):
when one crosses its threshold, or the update outlasts
``MaximumExecutionTimeoutInSeconds``, all traffic goes back to the blue fleet at
once, the endpoint shows ``RollingBack`` while every worker follows, then
``InService`` on its old config with the reason in ``FailureReason``. A completed
update leaves the green variants as the endpoint's variants.

While an update runs, the green fleet's variants are served under their name with
``@green`` appended (so their metrics, and the ``X-Amzn-Invoked-Production-Variant``
header, tell the fleets apart); the endpoint is ``Updating``. The state lives in the
endpoint's ``options`` (``BlueGreenUpdate``), so any process can advance it:
``sagelab serve``'s supervisor does so twice a second with the alarms evaluated on
the traffic it serves, and :meth:`RolloutManager.advance` (called when an endpoint
is described or waited for) moves time-driven steps along when no server runs.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from sagelab.errors import InvalidInput, closest
from sagelab.store import Endpoint, Store, utcnow

__all__ = [
    "ALARM_METRICS",
    "GREEN_SUFFIX",
    "ROLLOUT_KEY",
    "ROUTING_TYPES",
    "DeploymentConfig",
    "RollbackAlarm",
    "RolloutManager",
    "served_variants",
]

ROLLOUT_KEY = "BlueGreenUpdate"
#: The last update's outcome, kept on the endpoint (SageMaker shows it in FailureReason).
LAST_DEPLOYMENT_KEY = "LastDeployment"
GREEN_SUFFIX = "@green"
ROUTING_TYPES = ("ALL_AT_ONCE", "CANARY", "LINEAR")
_SIZE_TYPES = ("CAPACITY_PERCENT", "INSTANCE_COUNT")
#: Metrics an alarm may watch: error metrics as a share of the green fleet's invocations,
#: latencies as their mean in microseconds.
ALARM_METRICS = ("Invocation5XXErrors", "Invocation4XXErrors", "ModelLatency", "OverheadLatency")
#: Counter columns (sagelab.serving._metrics.COUNTS) the alarms read.
_INVOCATIONS, _E4, _E5, _MODEL, _OVERHEAD, _TIMED = range(6)
_COLUMN = {
    "Invocation5XXErrors": (_E5, _INVOCATIONS),
    "Invocation4XXErrors": (_E4, _INVOCATIONS),
    "ModelLatency": (_MODEL, _TIMED),
    "OverheadLatency": (_OVERHEAD, _TIMED),
}
#: Seconds an endpoint stays RollingBack after the green fleet lost its traffic: long
#: enough for every worker (which looks at the store twice a second) to follow.
ROLLBACK_SETTLE_SECONDS = 2.0


@dataclass(frozen=True)
class RollbackAlarm:
    """An alarm on the green fleet that rolls the update back (CloudWatch's alarm shape).

    Attributes:
        name: the alarm's name, quoted in the rollback's reason.
        metric: one of :data:`ALARM_METRICS`.
        threshold: the value above which the alarm fires: a share of invocations
            (0.05 = 5 %) for error metrics, microseconds for latencies.
        min_invocations: green requests needed before the alarm is evaluated.
    """

    name: str
    metric: str
    threshold: float
    min_invocations: int = 10

    def problems(self, where: str) -> list[str]:
        out = []
        if not isinstance(self.name, str) or not self.name:
            out.append(f"{where}: AlarmName must be a non-empty string; got {self.name!r}.")
        if self.metric not in ALARM_METRICS:
            out.append(
                f"{where}: MetricName must be one of {', '.join(ALARM_METRICS)}; got "
                f"{self.metric!r}.{closest(str(self.metric), ALARM_METRICS)}"
            )
        if not _number(self.threshold) or self.threshold < 0:
            out.append(f"{where}: Threshold must be a number ≥ 0; got {self.threshold!r}.")
        elif self.metric in ("Invocation5XXErrors", "Invocation4XXErrors") and self.threshold > 1:
            out.append(
                f"{where}: the Threshold of an error metric is a share of invocations in "
                f"[0, 1] (0.05 = 5 %); got {self.threshold!r}."
            )
        if not _integer(self.min_invocations) or self.min_invocations < 1:
            out.append(
                f"{where}: MinimumInvocations must be an integer ≥ 1; got {self.min_invocations!r}."
            )
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "AlarmName": self.name,
            "MetricName": self.metric,
            "Statistic": "Average",
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": self.threshold,
            "MinimumInvocations": self.min_invocations,
        }

    def breached(self, green: Sequence[float]) -> str | None:
        """Why the alarm fires on the green fleet's counts since the update began, or None."""
        value_at, count_at = _COLUMN[self.metric]
        if green[_INVOCATIONS] < self.min_invocations or not green[count_at]:
            return None
        value = green[value_at] / green[count_at]
        if value <= self.threshold:
            return None
        shown = (
            f"{value:.1%} of {int(green[count_at])} requests"
            if count_at == _INVOCATIONS
            else f"a mean of {value:,.0f} µs over {int(green[count_at])} requests"
        )
        limit = f"{self.threshold:.1%}" if count_at == _INVOCATIONS else f"{self.threshold:,.0f} µs"
        return (
            f"the alarm {self.name!r} fired: the new fleet's {self.metric} was {shown} "
            f"(threshold {limit})"
        )


@dataclass(frozen=True)
class DeploymentConfig:
    """How an update moves traffic to the new config (SageMaker's ``DeploymentConfig``).

    Attributes:
        routing: ``ALL_AT_ONCE``, ``CANARY`` or ``LINEAR``.
        size_type: ``CAPACITY_PERCENT`` or ``INSTANCE_COUNT`` (of the green fleet).
        size: the canary's, or each linear step's, size in that unit.
        wait_seconds: how long each step bakes (``WaitIntervalInSeconds``).
        termination_wait_seconds: how long the blue fleet is kept after the last step
            (``TerminationWaitInSeconds``); alarms still roll back during it.
        max_execution_seconds: an update still running after this is rolled back
            (``MaximumExecutionTimeoutInSeconds``).
        alarms: the rollback alarms (``AutoRollbackConfiguration``).
    """

    routing: str = "ALL_AT_ONCE"
    size_type: str = "CAPACITY_PERCENT"
    size: float = 100.0
    wait_seconds: float = 0.0
    termination_wait_seconds: float = 0.0
    max_execution_seconds: float = 3600.0
    alarms: tuple[RollbackAlarm, ...] = field(default_factory=tuple)

    @classmethod
    def parse(cls, config: DeploymentConfig | Mapping[str, Any]) -> DeploymentConfig:
        """A checked config from SageMaker's ``DeploymentConfig`` mapping (or itself).

        Raises:
            InvalidInput: one message per problem, each naming its field.
        """
        parsed = config if isinstance(config, DeploymentConfig) else cls._from_mapping(config)
        problems = parsed.problems()
        if problems:
            raise InvalidInput("The DeploymentConfig is not valid: " + " ".join(problems))
        return parsed

    @classmethod
    def _from_mapping(cls, config: Mapping[str, Any]) -> DeploymentConfig:
        if not isinstance(config, Mapping):
            raise InvalidInput(
                "A DeploymentConfig is a mapping with BlueGreenUpdatePolicy and, optionally, "
                f"AutoRollbackConfiguration; got {type(config).__name__}."
            )
        problems = _unknown(config, ("BlueGreenUpdatePolicy", "AutoRollbackConfiguration"), "")
        policy = _mapping(config.get("BlueGreenUpdatePolicy"), "BlueGreenUpdatePolicy", problems)
        routing = _mapping(
            policy.get("TrafficRoutingConfiguration"), "TrafficRoutingConfiguration", problems
        )
        problems += _unknown(
            policy,
            (
                "TrafficRoutingConfiguration",
                "TerminationWaitInSeconds",
                "MaximumExecutionTimeoutInSeconds",
            ),
            "BlueGreenUpdatePolicy.",
        )
        problems += _unknown(
            routing,
            ("Type", "WaitIntervalInSeconds", "CanarySize", "LinearStepSize"),
            "TrafficRoutingConfiguration.",
        )
        kind = routing.get("Type", "ALL_AT_ONCE")
        size = routing.get("CanarySize") if kind == "CANARY" else routing.get("LinearStepSize")
        if kind in ("CANARY", "LINEAR") and not isinstance(size, Mapping):
            name = "CanarySize" if kind == "CANARY" else "LinearStepSize"
            problems.append(
                f"A {kind} update needs TrafficRoutingConfiguration.{name}, e.g. "
                '{"Type": "CAPACITY_PERCENT", "Value": 10}.'
            )
            size = {}
        size = size or {"Type": "CAPACITY_PERCENT", "Value": 100}
        alarms = []
        rollback = _mapping(
            config.get("AutoRollbackConfiguration"), "AutoRollbackConfiguration", problems
        )
        problems += _unknown(rollback, ("Alarms",), "AutoRollbackConfiguration.")
        alarm_list = rollback.get("Alarms") or []
        if not isinstance(alarm_list, list):
            problems.append(f"AutoRollbackConfiguration.Alarms must be a list; got {alarm_list!r}.")
            alarm_list = []
        for i, a in enumerate(alarm_list):
            if not isinstance(a, Mapping):
                problems.append(f"Alarm {i + 1} must be a mapping; got {a!r}.")
                continue
            problems += _unknown(
                a,
                (
                    "AlarmName",
                    "MetricName",
                    "Threshold",
                    "Statistic",
                    "ComparisonOperator",
                    "MinimumInvocations",
                ),
                f"Alarm {i + 1}.",
            )
            if a.get("Statistic", "Average") != "Average":
                problems.append(
                    f"Alarm {i + 1}: Statistic must be Average; got {a['Statistic']!r}."
                )
            if a.get("ComparisonOperator", "GreaterThanThreshold") != "GreaterThanThreshold":
                problems.append(
                    f"Alarm {i + 1}: ComparisonOperator must be GreaterThanThreshold; got "
                    f"{a['ComparisonOperator']!r}."
                )
            alarms.append(
                RollbackAlarm(
                    name=a.get("AlarmName", f"alarm-{i + 1}"),
                    metric=a.get("MetricName", ""),
                    threshold=a.get("Threshold", -1),
                    min_invocations=a.get("MinimumInvocations", 10),
                )
            )
        if problems:
            raise InvalidInput("The DeploymentConfig is not valid: " + " ".join(problems))
        return cls(
            routing=kind,
            size_type=size.get("Type", "CAPACITY_PERCENT"),
            size=size.get("Value", -1),
            wait_seconds=routing.get("WaitIntervalInSeconds", 0),
            termination_wait_seconds=policy.get("TerminationWaitInSeconds", 0),
            max_execution_seconds=policy.get("MaximumExecutionTimeoutInSeconds", 3600),
            alarms=tuple(alarms),
        )

    def problems(self) -> list[str]:
        """What is wrong with the config, one message per problem."""
        out = []
        if self.routing not in ROUTING_TYPES:
            out.append(
                f"TrafficRoutingConfiguration.Type must be one of {', '.join(ROUTING_TYPES)}; "
                f"got {self.routing!r}.{closest(str(self.routing), ROUTING_TYPES)}"
            )
        if self.size_type not in _SIZE_TYPES:
            out.append(
                f"The step size's Type must be CAPACITY_PERCENT or INSTANCE_COUNT; got "
                f"{self.size_type!r}."
            )
        elif self.size_type == "CAPACITY_PERCENT" and not (
            _number(self.size) and 0 < self.size <= 100
        ):
            out.append(f"A CAPACITY_PERCENT step size is in (0, 100]; got {self.size!r}.")
        elif self.size_type == "INSTANCE_COUNT" and not (_integer(self.size) and self.size >= 1):
            out.append(f"An INSTANCE_COUNT step size is an integer ≥ 1; got {self.size!r}.")
        for name, value in (
            ("WaitIntervalInSeconds", self.wait_seconds),
            ("TerminationWaitInSeconds", self.termination_wait_seconds),
        ):
            if not _number(value) or value < 0:
                out.append(f"{name} must be a number of seconds ≥ 0; got {value!r}.")
        if not _number(self.max_execution_seconds) or self.max_execution_seconds <= 0:
            out.append(
                "MaximumExecutionTimeoutInSeconds must be a number of seconds > 0; got "
                f"{self.max_execution_seconds!r}."
            )
        for i, alarm in enumerate(self.alarms):
            out += alarm.problems(f"Alarm {i + 1}")
        return out

    def as_dict(self) -> dict[str, Any]:
        """SageMaker's ``DeploymentConfig`` shape."""
        routing: dict[str, Any] = {"Type": self.routing, "WaitIntervalInSeconds": self.wait_seconds}
        if self.routing != "ALL_AT_ONCE":
            key = "CanarySize" if self.routing == "CANARY" else "LinearStepSize"
            routing[key] = {"Type": self.size_type, "Value": self.size}
        return {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": routing,
                "TerminationWaitInSeconds": self.termination_wait_seconds,
                "MaximumExecutionTimeoutInSeconds": self.max_execution_seconds,
            },
            "AutoRollbackConfiguration": {"Alarms": [a.as_dict() for a in self.alarms]},
        }

    def shares(self, green_instances: int) -> list[float]:
        """The green fleet's share of the traffic at each step; the last is 1."""
        if self.routing == "ALL_AT_ONCE":
            return [1.0]
        if self.size_type == "INSTANCE_COUNT":
            step = min(float(self.size) / max(green_instances, 1), 1.0)
        else:
            step = float(self.size) / 100.0
        if self.routing == "CANARY":
            return [step, 1.0] if step < 1.0 else [1.0]
        n = math.ceil(1.0 / step - 1e-9)
        return [min(step * (i + 1), 1.0) for i in range(n)]


def served_variants(
    blue: Sequence[Mapping[str, Any]], green: Sequence[Mapping[str, Any]], share: float
) -> list[dict[str, Any]]:
    """The variants a server serves while the green fleet takes ``share`` of the traffic.

    Each fleet keeps its own weights' proportions; the blue fleet stays loaded (at
    weight 0 once the green one takes everything) so a rollback is instant.
    """
    blue_total = sum(float(v.get("CurrentWeight", v["DesiredWeight"])) for v in blue) or 1.0
    green_total = sum(float(v["DesiredWeight"]) for v in green) or 1.0
    out = [
        {
            **v,
            "CurrentWeight": float(v.get("CurrentWeight", v["DesiredWeight"]))
            / blue_total
            * (1.0 - share),
        }
        for v in blue
    ]
    out += [
        {
            **v,
            "VariantName": v["VariantName"] + GREEN_SUFFIX,
            "CurrentWeight": float(v["DesiredWeight"]) / green_total * share,
            "CurrentInstanceCount": int(v["DesiredInstanceCount"]),
            "Fleet": "Green",
        }
        for v in green
    ]
    return out


def start_state(
    config: DeploymentConfig,
    blue: Sequence[Mapping[str, Any]],
    green: Sequence[Mapping[str, Any]],
    *,
    blue_config: str,
    green_config: str,
    green_options: Mapping[str, Any],
) -> dict[str, Any]:
    """The state an update starts in (stored under :data:`ROLLOUT_KEY`)."""
    now = utcnow().isoformat()
    instances = sum(int(v["DesiredInstanceCount"]) for v in green)
    return {
        "Id": uuid.uuid4().hex,
        "Status": "Shifting",
        "DeploymentConfig": config.as_dict(),
        "Shares": config.shares(instances),
        "Step": 0,
        "StepStartTime": now,
        "StartTime": now,
        "BlueConfig": blue_config,
        "GreenConfig": green_config,
        "GreenOptions": dict(green_options),
        "Blue": [dict(v) for v in blue],
        "Green": [dict(v) for v in green],
    }


class RolloutManager:
    """Advances endpoints' blue/green updates; rolls them back when an alarm fires.

    Keeps, per update, the green fleet's counts when it first saw the update, so a
    server's alarms judge only the requests made during it.

    Args:
        store: the metadata store.
        settle_seconds: how long an endpoint stays RollingBack.
    """

    def __init__(self, store: Store, *, settle_seconds: float = ROLLBACK_SETTLE_SECONDS) -> None:
        self.store = store
        self.settle_seconds = settle_seconds
        self._baselines: dict[str, list[float]] = {}
        self._last: Mapping[tuple[str, str], Sequence[float]] = {}

    def tick(
        self, read_totals: Callable[[], Mapping[tuple[str, str], Sequence[float]]] | None = None
    ) -> list[str]:
        """Advance every running update. ``read_totals`` gives the server's counts per
        (endpoint, variant) since it started (read only when an update runs; None:
        time-driven steps only, no alarms). Returns a line per change, for the log."""
        with self.store.read() as s:
            names = list(
                s.scalars(
                    select(Endpoint.name).where(Endpoint.status.in_(("Updating", "RollingBack")))
                ).all()
            )
        totals = read_totals() if names and read_totals is not None else None
        lines = []
        for name in names:
            line = self.advance(name, totals)
            if line:
                lines.append(line)
        if totals is not None:
            self._last = {k: list(v) for k, v in totals.items()}
        return lines

    def advance(
        self, endpoint: str, totals: Mapping[tuple[str, str], Sequence[float]] | None = None
    ) -> str | None:
        """Move one endpoint's update along; a line saying what changed, or None."""
        with self.store.read() as s:
            row = s.get(Endpoint, endpoint)
            state = dict((row.options or {}).get(ROLLOUT_KEY) or {}) if row is not None else {}
        if not state:
            return None
        config = DeploymentConfig.parse(state["DeploymentConfig"])
        reason = None
        if state["Status"] == "Shifting" and totals is not None:
            reason = self._alarm(endpoint, state, config, totals)
        now = utcnow()
        with self.store.session() as s:
            row = s.get(Endpoint, endpoint)
            current = (row.options or {}).get(ROLLOUT_KEY) if row is not None else None
            if row is None or not current or current.get("Id") != state["Id"]:
                return None  # finished or replaced meanwhile
            state = dict(current)  # same Id: the same DeploymentConfig
            started = _time(state["StartTime"])
            if state["Status"] == "RollingBack":
                if (now - _time(state["RollbackTime"])).total_seconds() < self.settle_seconds:
                    return None
                return self._finish_rollback(row, state, now)
            if reason is None and (now - started).total_seconds() > config.max_execution_seconds:
                reason = (
                    "the update took longer than MaximumExecutionTimeoutInSeconds "
                    f"({config.max_execution_seconds:g} s)"
                )
            if reason is not None:
                return self._roll_back(row, state, reason, now)
            baked = (now - _time(state["StepStartTime"])).total_seconds()
            step, shares = int(state["Step"]), list(state["Shares"])
            if step < len(shares) - 1:
                if baked < config.wait_seconds:
                    return None
                step += 1
                state.update(Step=step, StepStartTime=now.isoformat())
                row.variants = served_variants(state["Blue"], state["Green"], shares[step])
                self._save(row, state, now)
                return f"{endpoint}: the new fleet takes {shares[step]:.0%} of the traffic"
            if baked < config.wait_seconds + config.termination_wait_seconds:
                return None
            return self._complete(row, state, now)

    # ------------------------------------------------------------------ transitions
    def _alarm(
        self,
        endpoint: str,
        state: Mapping[str, Any],
        config: DeploymentConfig,
        totals: Mapping[tuple[str, str], Sequence[float]],
    ) -> str | None:
        if not config.alarms:
            return None
        names = [(endpoint, v["VariantName"] + GREEN_SUFFIX) for v in state["Green"]]
        now = _sum(totals, names)
        baseline = self._baselines.get(state["Id"])
        if baseline is None:  # first sight: count from the previous look at the totals
            baseline = self._baselines[state["Id"]] = _sum(self._last, names)
        green = [max(a - b, 0.0) for a, b in zip(now, baseline, strict=True)]
        for alarm in config.alarms:
            reason = alarm.breached(green)
            if reason:
                return reason
        return None

    def _roll_back(self, row: Endpoint, state: dict[str, Any], reason: str, now: datetime) -> str:
        state.update(Status="RollingBack", RollbackTime=now.isoformat(), Reason=reason)
        row.variants = [dict(v) for v in state["Blue"]]
        row.status = "RollingBack"
        row.failure_reason = f"Rolled back to {state['BlueConfig']}: {reason}."
        self._save(row, state, now)
        return f"{row.name}: rolling back, {reason}"

    def _finish_rollback(self, row: Endpoint, state: dict[str, Any], now: datetime) -> str:
        options = dict(row.options or {})
        options.pop(ROLLOUT_KEY, None)
        options[LAST_DEPLOYMENT_KEY] = _outcome(state, "RolledBack", now)
        row.options = options
        row.status = "InService"
        row.update_time = now
        self._baselines.pop(state["Id"], None)
        return f"{row.name}: rolled back, InService on {state['BlueConfig']}"

    def _complete(self, row: Endpoint, state: dict[str, Any], now: datetime) -> str:
        row.variants = [
            {
                **v,
                "CurrentWeight": v["DesiredWeight"],
                "CurrentInstanceCount": v["DesiredInstanceCount"],
            }
            for v in state["Green"]
        ]
        options = {**dict(row.options or {}), **dict(state["GreenOptions"])}
        options.pop(ROLLOUT_KEY, None)
        options[LAST_DEPLOYMENT_KEY] = _outcome(state, "Completed", now)
        row.options = options
        row.config_name = state["GreenConfig"]
        row.status, row.failure_reason = "InService", ""
        row.revision += 1
        row.update_time = now
        self._baselines.pop(state["Id"], None)
        return f"{row.name}: update complete, InService on {state['GreenConfig']}"

    def _save(self, row: Endpoint, state: dict[str, Any], now: datetime) -> None:
        row.options = {**dict(row.options or {}), ROLLOUT_KEY: state}
        row.revision += 1
        row.update_time = now


def describe_rollout(state: Mapping[str, Any]) -> dict[str, Any]:
    """SageMaker's ``PendingDeploymentSummary`` for a running update."""
    shares = state["Shares"]
    share = shares[int(state["Step"])] if state["Status"] == "Shifting" else 0.0
    green_total = sum(float(v["DesiredWeight"]) for v in state["Green"]) or 1.0
    status = "Baking" if state["Status"] == "Shifting" else "RollingBack"
    return {
        "EndpointConfigName": state["GreenConfig"],
        "StartTime": state["StartTime"],
        "DeploymentConfig": state["DeploymentConfig"],
        "TrafficShare": share,
        "Step": int(state["Step"]) + 1,
        "Steps": len(shares),
        "StepStartTime": state["StepStartTime"],
        **({"RollbackReason": state["Reason"]} if state.get("Reason") else {}),
        "ProductionVariants": [
            {
                "VariantName": v["VariantName"],
                "ServedAs": v["VariantName"] + GREEN_SUFFIX,
                "Model": v["Model"],
                "Algorithm": v["Algorithm"],
                "CurrentWeight": float(v["DesiredWeight"]) / green_total * share,
                "DesiredWeight": v["DesiredWeight"],
                "CurrentInstanceCount": v["DesiredInstanceCount"],
                "DesiredInstanceCount": v["DesiredInstanceCount"],
                "VariantStatus": [{"Status": status, "StartTime": state["StepStartTime"]}],
            }
            for v in state["Green"]
        ],
    }


def _outcome(state: Mapping[str, Any], status: str, now: datetime) -> dict[str, Any]:
    return {
        "Status": status,
        "EndpointConfigName": state["GreenConfig"],
        "PreviousEndpointConfigName": state["BlueConfig"],
        "StartTime": state["StartTime"],
        "EndTime": now.isoformat(),
        **({"Reason": state["Reason"]} if state.get("Reason") else {}),
    }


def _sum(
    totals: Mapping[tuple[str, str], Sequence[float]], keys: Sequence[tuple[str, str]]
) -> list[float]:
    out = [0.0] * 6
    for key in keys:
        row = totals.get(key)
        if row is not None:
            for i in range(6):
                out[i] += float(row[i])
    return out


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _integer(v: Any) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (
        _number(v) and float(v).is_integer()
    )


def _mapping(value: Any, name: str, problems: list[str]) -> Mapping[str, Any]:
    """``value`` when it is a mapping; {} (and a problem unless it is missing) otherwise."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append(f"{name} must be a mapping; got {value!r}.")
        return {}
    return value


def _unknown(mapping: Any, known: Sequence[str], where: str) -> list[str]:
    if not isinstance(mapping, Mapping):
        return []  # said by _mapping
    return [
        f"Unknown field {where}{k}.{closest(str(k), known)} Known: {', '.join(known)}."
        for k in mapping
        if k not in known
    ]
