"""Lazy imports of optional packages, with the fix in the error.

Every stage imports its heavy or optional packages through :func:`require` on
first use, so ``import sagelab`` stays fast and a missing package names the
extra that brings it in.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, purpose: str, package: str, extra: str) -> ModuleType:
    """Import ``module`` on first use, so importing sagelab stays fast and light.

    Args:
        module: the dotted module to import, e.g. ``"sklearn.metrics"``.
        purpose: what needs it, for the message (``"The evaluation report"``).
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
