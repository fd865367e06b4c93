from __future__ import annotations

from sagelab.cli import entry_point

entry_point()
