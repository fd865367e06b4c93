"""ETL jobs: SQL or Python transforms from catalog tables into catalog tables, run as jobs."""

from __future__ import annotations

from sagelab.etl._jobs import run_python, run_sql

__all__ = ["run_python", "run_sql"]
