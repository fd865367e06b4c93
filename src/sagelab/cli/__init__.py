"""The ``sagelab`` command-line door."""

from __future__ import annotations

from sagelab.cli._app import app, entry_point, main

__all__ = ["app", "entry_point", "main"]
