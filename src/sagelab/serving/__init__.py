"""Hosting: endpoints with weighted production variants served over HTTP, and batch transform."""

from __future__ import annotations

from sagelab.serving._app import MAX_BODY_BYTES, TARGET_VARIANT_HEADER, VARIANT_HEADER
from sagelab.serving._autoscale import EndpointAutoscaling, ScalingPolicy
from sagelab.serving._capture import INFERENCE_ID_HEADER
from sagelab.serving._capture_config import DEFAULT_CAPTURE_BUCKET, DataCaptureConfig
from sagelab.serving._endpoints import (
    ENDPOINT_METRICS,
    MAX_VARIANTS,
    EndpointService,
    MetricPoint,
    VariantSpec,
)
from sagelab.serving._multimodel import TARGET_MODEL_HEADER, model_footprint
from sagelab.serving._predictor import InvocationResult, Predictor, invoke_endpoint
from sagelab.serving._rollout import GREEN_SUFFIX, DeploymentConfig, RollbackAlarm
from sagelab.serving._server import ServerOptions, run_server
from sagelab.serving._transform import TRANSFORM_KIND, TransformProgress, TransformService
from sagelab.serving._transform_spec import TransformSpec
from sagelab.serving._transformer import Transformer

__all__ = [
    "DEFAULT_CAPTURE_BUCKET",
    "ENDPOINT_METRICS",
    "GREEN_SUFFIX",
    "INFERENCE_ID_HEADER",
    "MAX_BODY_BYTES",
    "MAX_VARIANTS",
    "TARGET_MODEL_HEADER",
    "TARGET_VARIANT_HEADER",
    "TRANSFORM_KIND",
    "VARIANT_HEADER",
    "DataCaptureConfig",
    "DeploymentConfig",
    "EndpointAutoscaling",
    "EndpointService",
    "InvocationResult",
    "MetricPoint",
    "Predictor",
    "RollbackAlarm",
    "ScalingPolicy",
    "ServerOptions",
    "TransformProgress",
    "TransformService",
    "TransformSpec",
    "Transformer",
    "VariantSpec",
    "invoke_endpoint",
    "model_footprint",
    "run_server",
]
