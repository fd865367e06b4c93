"""Lazy imports of the packages profiles, explorations and their reports need."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, purpose: str, package: str, extra: str = "prep") -> ModuleType:
    """Import ``module`` on first use, so importing sagelab stays fast and light.

    Args:
        module: the dotted module to import, e.g. ``"scipy.stats"``.
        purpose: what needs it, for the message (``"The profile report"``).
        package: the distribution to install, e.g. ``"matplotlib"``.
        extra: the sagelab extra that brings it in.

    Raises:
        ImportError: the package is not installed; the message says how to install it.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs {package}, which is not installed: "
            f"pip install 'sagelab[{extra}]' (or pip install {package})."
        ) from exc
