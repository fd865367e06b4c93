"""One sagelab installation per test module, shared by its tests: jobs take a second to start."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _training_data import Env, end_jobs, write_files

from sagelab.session import Session
from sagelab.training import TrainingService


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """An isolated home (seen by job processes and the CLI), the data files, a training service."""
    root = tmp_path_factory.mktemp("training")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAGELAB_HOME", str(root / "home"))
        for var in ("SAGELAB_DB_URL", "SAGELAB_LAKE", "SAGELAB_CONFIG"):
            mp.delenv(var, raising=False)
        session = Session()
        training = TrainingService(session.jobs, session.catalog, session.lake)
        try:
            yield Env(session, training, write_files(root / "data"))
        finally:
            end_jobs(session.jobs)
            session.jobs.close()
