"""One typed settings object, read from the environment, then a config file, then defaults.

=================  ==============================  =====================================
setting            environment variable            default
=================  ==============================  =====================================
home               ``SAGELAB_HOME``                ``~/.sagelab``
db_url             ``SAGELAB_DB_URL``              ``sqlite:///<home>/sagelab.db``
lake               ``SAGELAB_LAKE``                ``<home>/lake`` (any fsspec URL)
=================  ==============================  =====================================

The config file is ``SAGELAB_CONFIG`` or ``<home>/config.toml``; its keys are
the setting names (``db_url = "postgresql://..."``).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from sagelab.errors import InvalidInput

__all__ = ["Settings", "config_file_path", "get_settings"]


def _default_home() -> Path:
    return Path(os.environ.get("SAGELAB_HOME") or Path.home() / ".sagelab").expanduser()


def config_file_path() -> Path:
    """Where the config file is looked for."""
    explicit = os.environ.get("SAGELAB_CONFIG")
    return Path(explicit).expanduser() if explicit else _default_home() / "config.toml"


class _TomlFile(PydanticBaseSettingsSource):
    """The config file, below the environment and above the defaults."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._values().get(field_name), field_name, False

    def _values(self) -> dict[str, Any]:
        path = config_file_path()
        if not path.is_file():
            return {}
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInput(f"The config file {path} is not valid TOML: {exc}.") from exc
        section = data.get("sagelab", data)
        return {k: v for k, v in section.items() if k in self.settings_cls.model_fields}

    def __call__(self) -> dict[str, Any]:
        return self._values()


class Settings(BaseSettings):
    """Where sagelab keeps its metadata, its lake and its local state."""

    model_config = SettingsConfigDict(env_prefix="SAGELAB_", extra="ignore", frozen=True)

    home: Path = Path("~/.sagelab")
    db_url: str = ""
    lake: str = ""
    #: Where ``sagelab serve`` listens, for ``sagelab invoke`` and the SDK's Predictor.
    serve_url: str = "http://127.0.0.1:8080"
    #: The bearer token a server exposed beyond this machine requires (empty: none).
    serve_token: str = ""
    #: Start local jobs from a warm fork server (``sagelab.jobs._forkserver``) when one is ready.
    job_fork_server: bool = True
    #: How long an unused fork server waits for another launch before it exits.
    job_fork_server_idle_seconds: float = Field(default=600.0, gt=0)
    #: Modules the fork server imports, comma-separated (empty: the job kinds and algorithm
    #: libraries sagelab ships).
    job_preload: str = ""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlFile(settings_cls))

    @field_validator("home")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return Path(value).expanduser().absolute()

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        # Frozen model: defaults that depend on ``home`` are filled once, here.
        if not self.db_url:
            object.__setattr__(self, "db_url", f"sqlite:///{self.home / 'sagelab.db'}")
        if not self.lake:
            object.__setattr__(self, "lake", str(self.home / "lake"))
        return self

    @property
    def logs_dir(self) -> Path:
        """Where job logs are written."""
        return self.home / "logs"

    def as_dict(self) -> dict[str, str]:
        """The resolved settings, for ``sagelab config``."""
        return {
            "home": str(self.home),
            "db_url": _hide_password(self.db_url),
            "lake": self.lake,
            "serve_url": self.serve_url,
            "serve_token": "***" if self.serve_token else "",
            "job_fork_server": str(self.job_fork_server).lower(),
            "config_file": str(config_file_path()),
        }


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def get_settings(**overrides: Any) -> Settings:
    """Read the settings now (environment, config file, defaults), with ``overrides`` on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
