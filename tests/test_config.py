from __future__ import annotations

from pathlib import Path

import pytest

from sagelab.config import Settings, get_settings
from sagelab.errors import InvalidInput


def test_defaults_follow_home(home: Path) -> None:
    s = Settings()
    assert s.home == home
    assert s.db_url == f"sqlite:///{home / 'sagelab.db'}"
    assert s.lake == str(home / "lake")


def test_environment_beats_config_file_beats_defaults(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home.mkdir(parents=True)
    (home / "config.toml").write_text(
        'lake = "s3://from-file/prefix"\ndb_url = "sqlite:////tmp/file.db"\n'
    )
    s = Settings()
    assert s.lake == "s3://from-file/prefix"
    assert s.db_url == "sqlite:////tmp/file.db"
    monkeypatch.setenv("SAGELAB_LAKE", "memory://from-env")
    assert Settings().lake == "memory://from-env"
    assert get_settings(lake="memory://override").lake == "memory://override"


def test_config_file_named_by_env(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "other.toml"
    cfg.write_text('[sagelab]\nlake = "memory://section"\n')
    monkeypatch.setenv("SAGELAB_CONFIG", str(cfg))
    assert Settings().lake == "memory://section"


def test_broken_config_file_is_a_clear_error(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "config.toml").write_text("lake = [unclosed\n")
    with pytest.raises(InvalidInput, match="not valid TOML"):
        Settings()


def test_password_is_hidden(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGELAB_DB_URL", "postgresql://me:secret@db.internal/sagelab")
    shown = Settings().as_dict()
    assert "secret" not in shown["db_url"]
    assert shown["db_url"].startswith("postgresql://me:")
