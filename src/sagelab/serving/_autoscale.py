"""Autoscaling of endpoint variants: target tracking on invocations per instance.

As Application Auto Scaling does for SageMaker (the ``SageMakerVariantInvocationsPerInstance``
predefined metric), a policy holds a variant's instance count between a minimum and a
maximum so that each instance takes about ``TargetValue`` invocations a minute:

* **scale out** when every metric period of the last ``ScaleOutWindow`` seconds was
  above the target, to ``ceil(instances × rate / target)``, at most once per
  ``ScaleOutCooldown``;
* **scale in** when every period of the last ``ScaleInWindow`` seconds (a longer
  window: scaling in too early costs failed capacity, too late only money) was below
  90 % of the target, to the count that brings the rate back to the target, at most
  once per ``ScaleInCooldown`` after any scaling.

A period without requests counts as a rate of 0. SageMaker's alarms look at one-minute
points (3 for scale-out, 15 for scale-in); here the windows are seconds and the
points are ``sagelab serve``'s metric periods, so a short ``--metrics-period`` and
short windows make scaling visible in a test or a demo.

The policies and the last scaling activities live in the endpoint's ``options``
(``AutoScaling``); the decisions are made by :class:`Autoscaler` in the server's
supervisor, which sees each period's counts as it records them. A new instance count
changes the endpoint's revision like ``update-weights`` does, and the server's pool
follows it: it starts workers, or drains surplus ones before it stops them.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sagelab.errors import Conflict, InvalidInput, NotFound, closest
from sagelab.store import Endpoint, Store, utcnow

__all__ = ["PREDEFINED_METRIC", "Autoscaler", "EndpointAutoscaling", "ScalingPolicy"]

PREDEFINED_METRIC = "SageMakerVariantInvocationsPerInstance"
#: Scale in only below this share of the target (Application Auto Scaling's 90 %).
_SCALE_IN_SHARE = 0.9
#: Scaling activities kept on an endpoint, newest last.
_KEEP_ACTIVITIES = 50
_KEY = "AutoScaling"


@dataclass(frozen=True)
class ScalingPolicy:
    """A target-tracking policy for one variant (SageMaker's names in :meth:`as_dict`).

    Attributes:
        min_capacity: the fewest instances (at least 1).
        max_capacity: the most instances.
        target_value: invocations per instance per minute to hold.
        scale_out_cooldown: seconds after a scale-out before another.
        scale_in_cooldown: seconds after any scaling before a scale-in.
        scale_out_window: seconds the rate must stay above the target to scale out.
        scale_in_window: seconds it must stay below 90 % of the target to scale in.
        disable_scale_in: never scale in.
    """

    min_capacity: int
    max_capacity: int
    target_value: float
    scale_out_cooldown: float = 300.0
    scale_in_cooldown: float = 300.0
    scale_out_window: float = 180.0
    scale_in_window: float = 900.0
    disable_scale_in: bool = False

    def problems(self) -> list[str]:
        """What is wrong with the policy, one message per problem."""
        out = []
        if not _is_int(self.min_capacity) or self.min_capacity < 1:
            out.append(f"MinCapacity must be an integer ≥ 1; got {self.min_capacity!r}.")
        if not _is_int(self.max_capacity) or self.max_capacity < 1:
            out.append(f"MaxCapacity must be an integer ≥ 1; got {self.max_capacity!r}.")
        elif _is_int(self.min_capacity) and self.max_capacity < self.min_capacity:
            out.append(
                f"MaxCapacity ({self.max_capacity}) must be at least MinCapacity "
                f"({self.min_capacity})."
            )
        if not _positive(self.target_value):
            out.append(
                "TargetValue (invocations per instance per minute) must be a number > 0; "
                f"got {self.target_value!r}."
            )
        for name, value in (
            ("ScaleOutCooldown", self.scale_out_cooldown),
            ("ScaleInCooldown", self.scale_in_cooldown),
        ):
            if not _positive(value, zero=True):
                out.append(f"{name} must be a number of seconds ≥ 0; got {value!r}.")
        for name, value in (
            ("ScaleOutWindow", self.scale_out_window),
            ("ScaleInWindow", self.scale_in_window),
        ):
            if not _positive(value):
                out.append(f"{name} must be a number of seconds > 0; got {value!r}.")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "PredefinedMetricType": PREDEFINED_METRIC,
            "MinCapacity": self.min_capacity,
            "MaxCapacity": self.max_capacity,
            "TargetValue": self.target_value,
            "ScaleOutCooldown": self.scale_out_cooldown,
            "ScaleInCooldown": self.scale_in_cooldown,
            "ScaleOutWindow": self.scale_out_window,
            "ScaleInWindow": self.scale_in_window,
            "DisableScaleIn": self.disable_scale_in,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ScalingPolicy:
        return cls(
            min_capacity=d["MinCapacity"],
            max_capacity=d["MaxCapacity"],
            target_value=d["TargetValue"],
            scale_out_cooldown=d["ScaleOutCooldown"],
            scale_in_cooldown=d["ScaleInCooldown"],
            scale_out_window=d["ScaleOutWindow"],
            scale_in_window=d["ScaleInWindow"],
            disable_scale_in=bool(d.get("DisableScaleIn", False)),
        )


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _positive(v: Any, *, zero: bool = False) -> bool:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    return ok and (v >= 0 if zero else v > 0)


@dataclass(frozen=True)
class ScalingTarget:
    """A variant under a policy, with its instance count now."""

    endpoint: str
    variant: str
    policy: ScalingPolicy
    instances: int


class EndpointAutoscaling:
    """Register and remove scaling policies, read them, and apply scaling decisions.

    Args:
        store: the metadata store the endpoints live in.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def put_policy(self, endpoint: str, variant: str, policy: ScalingPolicy) -> dict[str, Any]:
        """Register (or replace) a variant's policy; a count outside its range is moved in.

        Raises:
            NotFound: no such endpoint or variant (the closest named).
            InvalidInput: a bad policy (one message per problem).
            Conflict: the endpoint is not InService.
        """
        problems = policy.problems()
        if problems:
            raise InvalidInput(" ".join(problems))
        with self.store.session() as s:
            row = _endpoint(s, endpoint)
            if row.status != "InService":
                raise Conflict(f"The endpoint {endpoint!r} is {row.status}; it must be InService.")
            current = _instances(row, variant)
            state = _state(row)
            state["Policies"] = {**state["Policies"], variant: policy.as_dict()}
            row.options = {**(row.options or {}), _KEY: state}
            row.update_time = utcnow()
        wanted = min(max(current, policy.min_capacity), policy.max_capacity)
        if wanted != current:
            self.scale(endpoint, variant, wanted, "the count was outside the policy's range")
        return self.describe(endpoint)

    def delete_policy(self, endpoint: str, variant: str) -> dict[str, Any]:
        """Remove a variant's policy; its instance count stays as it is.

        Raises:
            NotFound: no such endpoint, variant or policy.
        """
        with self.store.session() as s:
            row = _endpoint(s, endpoint)
            _instances(row, variant)
            state = _state(row)
            if variant not in state["Policies"]:
                raise NotFound(f"The variant {variant!r} of {endpoint!r} has no scaling policy.")
            state["Policies"] = {k: v for k, v in state["Policies"].items() if k != variant}
            row.options = {**(row.options or {}), _KEY: state}
        return self.describe(endpoint)

    def describe(self, endpoint: str) -> dict[str, Any]:
        """The endpoint's policies per variant and its last scaling activities.

        Raises:
            NotFound: no such endpoint.
        """
        with self.store.read() as s:
            return _state(_endpoint(s, endpoint))

    def targets(self) -> list[ScalingTarget]:
        """Every InService endpoint's variants that have a policy."""
        from sqlalchemy import select

        out = []
        with self.store.read() as s:
            for row in s.scalars(select(Endpoint).where(Endpoint.status == "InService")).all():
                policies = _state(row)["Policies"]
                for v in row.variants:
                    policy = policies.get(v["VariantName"])
                    if policy is not None:
                        out.append(
                            ScalingTarget(
                                row.name,
                                v["VariantName"],
                                ScalingPolicy.from_dict(policy),
                                int(v.get("CurrentInstanceCount", 1)),
                            )
                        )
        return out

    def scale(self, endpoint: str, variant: str, count: int, cause: str) -> bool:
        """Set a variant's instance count and record why; False when the endpoint is busy.

        Raises:
            NotFound: no such endpoint or variant.
        """
        with self.store.session() as s:
            row = _endpoint(s, endpoint)
            before = _instances(row, variant)
            if row.status != "InService":
                return False
            if before == count:
                return True
            row.variants = [
                {**v, "DesiredInstanceCount": count, "CurrentInstanceCount": count}
                if v["VariantName"] == variant
                else v
                for v in row.variants
            ]
            state = _state(row)
            activity = {
                "Time": utcnow().isoformat(),
                "VariantName": variant,
                "From": before,
                "To": count,
                "Cause": cause,
            }
            state["Activities"] = [*state["Activities"], activity][-_KEEP_ACTIVITIES:]
            row.options = {**(row.options or {}), _KEY: state}
            row.revision += 1
            row.update_time = utcnow()
        return True


def _endpoint(s: Any, endpoint: str) -> Endpoint:
    from sqlalchemy import select

    row: Endpoint | None = s.get(Endpoint, endpoint)
    if row is None:
        names = list(s.scalars(select(Endpoint.name)).all())
        raise NotFound(f"There is no endpoint {endpoint!r}.{closest(endpoint, names)}")
    return row


def _instances(row: Endpoint, variant: str) -> int:
    for v in row.variants:
        if v["VariantName"] == variant:
            return int(v.get("CurrentInstanceCount", 1))
    names = [v["VariantName"] for v in row.variants]
    raise NotFound(
        f"The endpoint {row.name!r} has no variant {variant!r}.{closest(variant, names)} "
        f"It has: {', '.join(names)}."
    )


def _state(row: Endpoint) -> dict[str, Any]:
    state = dict((row.options or {}).get(_KEY) or {})
    return {
        "Policies": dict(state.get("Policies") or {}),
        "Activities": list(state.get("Activities") or []),
    }


class Autoscaler:
    """Decides scaling from each metric period's invocations (run by the server).

    Args:
        scaling: reads the policies and applies decisions.
        clock: seconds, monotonic (for cooldowns and windows).
    """

    def __init__(
        self, scaling: EndpointAutoscaling, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.scaling, self.clock = scaling, clock
        #: (endpoint, variant) -> (time, invocations per instance per minute) per period
        self._rates: dict[tuple[str, str], deque[tuple[float, float]]] = {}
        self._last_out: dict[tuple[str, str], float] = {}
        self._last_any: dict[tuple[str, str], float] = {}

    def period(self, invocations: Mapping[tuple[str, str], float], seconds: float) -> list[str]:
        """Take one period's invocations per variant (all instances), then decide.

        Returns:
            What was scaled, one line each.
        """
        now = self.clock()
        targets = self.scaling.targets()
        done = []
        for t in targets:
            key = (t.endpoint, t.variant)
            rate = invocations.get(key, 0.0) / max(t.instances, 1) * 60.0 / seconds
            series = self._rates.setdefault(key, deque())
            series.append((now, rate))
            horizon = max(t.policy.scale_in_window, t.policy.scale_out_window) + seconds
            while series and series[0][0] < now - horizon:
                series.popleft()
            line = self._decide(t, series, now, seconds)
            if line:
                done.append(line)
        known = {(t.endpoint, t.variant) for t in targets}
        for key in [k for k in self._rates if k not in known]:
            del self._rates[key]
        return done

    def _decide(
        self, t: ScalingTarget, series: deque[tuple[float, float]], now: float, seconds: float
    ) -> str | None:
        key, p = (t.endpoint, t.variant), t.policy
        out_window = _window(series, now, p.scale_out_window, seconds)
        if out_window and all(r > p.target_value for r in out_window):
            rate = sum(out_window) / len(out_window)
            wanted = min(math.ceil(t.instances * rate / p.target_value), p.max_capacity)
            if wanted > t.instances and now - self._last_out.get(key, -math.inf) >= (
                p.scale_out_cooldown
            ):
                cause = (
                    f"{rate:.0f} invocations per instance per minute over {p.scale_out_window:g} s"
                    f", above the target {p.target_value:g}"
                )
                if self.scaling.scale(t.endpoint, t.variant, wanted, cause):
                    self._last_out[key] = self._last_any[key] = now
                    series.clear()  # the next decision needs evidence at the new count
                    return f"{t.endpoint}/{t.variant}: {t.instances} -> {wanted} ({cause})"
            return None
        if p.disable_scale_in:
            return None
        in_window = _window(series, now, p.scale_in_window, seconds)
        limit = p.target_value * _SCALE_IN_SHARE
        if in_window and all(r < limit for r in in_window):
            rate = sum(in_window) / len(in_window)
            wanted = max(math.ceil(t.instances * rate / p.target_value), p.min_capacity)
            if wanted < t.instances and now - self._last_any.get(key, -math.inf) >= (
                p.scale_in_cooldown
            ):
                cause = (
                    f"{rate:.0f} invocations per instance per minute over {p.scale_in_window:g} s"
                    f", below {_SCALE_IN_SHARE:.0%} of the target {p.target_value:g}"
                )
                if self.scaling.scale(t.endpoint, t.variant, wanted, cause):
                    self._last_any[key] = now
                    series.clear()
                    return f"{t.endpoint}/{t.variant}: {t.instances} -> {wanted} ({cause})"
        return None


def _window(
    series: Sequence[tuple[float, float]], now: float, window: float, seconds: float
) -> list[float]:
    """The rates of the periods within ``window`` seconds, or [] while the series is shorter
    than the window (a decision needs the whole window's evidence)."""
    rates = [r for t, r in series if t > now - window]
    needed = max(1, math.floor(window / seconds + 1e-9))
    return rates if len(rates) >= needed else []
