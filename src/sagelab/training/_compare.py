"""Training runs side by side: final metrics, time to train, model size, what differs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sagelab.jobs import JobInfo

__all__ = ["Comparison", "compare_jobs"]


@dataclass(frozen=True)
class Comparison:
    """Training jobs side by side: final metrics, time to train, model size.

    Attributes:
        rows: one per job (``Job``, ``Status``, ``Algorithm``, each metric, ``TrainSeconds``,
            ``TotalSeconds``, ``ModelSizeBytes``, ``Seed``, ``TrainFingerprint``).
        metrics: the metric names, in the order shown.
        hyperparameters: the hyperparameters whose values differ between the jobs, per job.
    """

    rows: list[dict[str, Any]]
    metrics: list[str]
    hyperparameters: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "Jobs": self.rows,
            "Metrics": self.metrics,
            "DifferingHyperParameters": self.hyperparameters,
        }


def compare_jobs(infos: Sequence[JobInfo]) -> Comparison:
    """Training jobs' results side by side (failed and running jobs show their status only)."""
    rows: list[dict[str, Any]] = []
    metric_names: list[str] = []
    hps: dict[str, dict[str, Any]] = {}
    for info in infos:
        result = info.result or {}
        metrics = dict(result.get("FinalMetrics") or {})
        for name, summary in ((result.get("CrossValidation") or {}).get("Metrics") or {}).items():
            metrics[f"cv:{name}"] = summary.get("Mean")
            metrics[f"cv:{name}:std"] = summary.get("Std")
        for m in metrics:
            if m not in metric_names:
                metric_names.append(m)
        total = None
        if info.start_time is not None and info.end_time is not None:
            total = round((info.end_time - info.start_time).total_seconds(), 3)
        train_lineage: dict[str, Any] = next(
            (c for c in result.get("InputDataConfig") or [] if c.get("ChannelName") == "train"),
            {},
        )
        rows.append(
            {
                "Job": info.name,
                "Status": info.status,
                "Algorithm": info.parameters.get("algorithm"),
                **metrics,
                "TrainSeconds": result.get("TrainingTimeInSeconds"),
                "TotalSeconds": total,
                "ModelSizeBytes": (result.get("ModelArtifacts") or {}).get("SizeBytes"),
                "Seed": info.parameters.get("seed"),
                "TrainFingerprint": train_lineage.get("Fingerprint"),
            }
        )
        hps[info.name] = dict(
            result.get("HyperParameters") or info.parameters.get("hyperparameters") or {}
        )
    keys = sorted({k for hp in hps.values() for k in hp})
    differing = [k for k in keys if len({repr(hp.get(k)) for hp in hps.values()}) > 1]
    return Comparison(
        rows=rows,
        metrics=sorted(metric_names),
        hyperparameters={n: {k: hp.get(k) for k in differing} for n, hp in hps.items()},
    )
