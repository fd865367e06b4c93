"""Plug-in registries: names mapped to ``module:attribute`` paths, imported only when used.

Job kinds, executors and algorithms are all found this way: a built-in table, extended by
entry points and by ``register_*`` calls, never importing what it names until
someone asks for it. A target is ``package.module:attribute`` or, for users'
scripts, ``path/to/file.py:attribute``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
import zlib
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from sagelab.errors import InvalidInput, closest

__all__ = ["Registry", "check_call", "load_target", "normalise_target"]

_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_TARGET_HELP = "'package.module:function' or 'path/to/file.py:function'"


def _split(target: str) -> tuple[str, str]:
    if not isinstance(target, str):
        raise InvalidInput(f"An entry point must be a string like {_TARGET_HELP}; got {target!r}.")
    module, sep, attr = target.rpartition(":")
    if not sep or not module or not _DOTTED.match(attr):
        raise InvalidInput(f"The entry point {target!r} must look like {_TARGET_HELP}.")
    if not module.endswith(".py") and not _DOTTED.match(module):
        raise InvalidInput(f"The entry point {target!r} must look like {_TARGET_HELP}.")
    return module, attr


def normalise_target(target: str) -> str:
    """Check a target's form; a script path is made absolute (against the working directory).

    Raises:
        InvalidInput: not of the form ``module:attribute`` or ``file.py:attribute``.
    """
    module, attr = _split(target)
    if module.endswith(".py"):
        module = str(Path(module).expanduser().absolute())
    normalised = f"{module}:{attr}"
    if len(normalised) > 255:
        raise InvalidInput(
            f"The entry point {target!r} is longer than 255 characters; move the script to a "
            "shorter path or make it importable as a module."
        )
    return normalised


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise InvalidInput(f"The script {str(path)!r} does not exist. Check the path.")
    stem = re.sub(r"\W", "_", path.stem)
    name = f"_sagelab_entry_{zlib.crc32(str(path).encode()):08x}_{stem}"
    if name in sys.modules:
        return sys.modules[name]
    # Like ``python path/to/file.py``: the script's folder comes first on sys.path.
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InvalidInput(f"The script {str(path)!r} cannot be loaded as Python.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_target(target: str) -> Any:
    """Import a target and return the attribute it names.

    Only a missing module, script or attribute is the caller's fault; an error
    raised while the module runs propagates as it is.

    Raises:
        InvalidInput: the target is malformed, or its module, script or attribute is missing.
    """
    module_name, attr = _split(target)
    if module_name.endswith(".py"):
        module = _import_file(Path(module_name).expanduser().absolute())
    else:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = exc.name or ""
            if module_name == missing or module_name.startswith(missing + "."):
                raise InvalidInput(
                    f"The entry point {target!r} cannot be imported: there is no module "
                    f"{missing!r}. Check the name, or install the package that provides it."
                ) from exc
            raise
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise InvalidInput(
                f"The entry point {target!r} names {attr!r}, which {module_name!r} does not "
                f"define.{closest(part, dir(obj))}"
            ) from None
    return obj


def check_call(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], what: str) -> None:
    """Check that ``fn(*args, **kwargs)`` fits ``fn``'s signature before calling it.

    Raises:
        InvalidInput: the arguments do not fit (an unknown or a missing parameter).
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # some callables have no signature to check
        return
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise InvalidInput(
            f"The parameters {sorted(kwargs)} do not fit {what}{signature}: {exc}."
        ) from exc


class Registry:
    """A table of ``name -> target`` for one kind of plug-in.

    Precedence, lowest first: entry points of ``group``, the built-ins, then
    names registered at run time.

    Args:
        what: what the names are ("job kind", "executor"), for messages.
        group: the entry-point group that extends the table.
        builtins: the names sagelab ships.
    """

    def __init__(self, what: str, group: str, builtins: Mapping[str, str]) -> None:
        self._what = what
        self._group = group
        self._builtins = dict(builtins)
        self._registered: dict[str, str] = {}
        self._plugins: dict[str, str] | None = None

    def _table(self) -> dict[str, str]:
        if self._plugins is None:
            self._plugins = {ep.name: ep.value for ep in entry_points(group=self._group)}
        return {**self._plugins, **self._builtins, **self._registered}

    def register(self, name: str, target: str) -> None:
        """Add or replace ``name``.

        Raises:
            InvalidInput: the name or the target is malformed.
        """
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidInput(
                f"The {self._what} name {name!r} is not valid: use 1-64 lowercase letters, "
                "digits, '.', '-' and '_', starting with a letter (e.g. 'training' or 'etl.sql')."
            )
        self._registered[name] = normalise_target(target)

    def names(self) -> list[str]:
        """Every known name, sorted."""
        return sorted(self._table())

    def target(self, name: str) -> str:
        """The target ``name`` stands for.

        Raises:
            InvalidInput: the name is unknown; the message lists the known names.
        """
        table = self._table()
        if name not in table:
            raise InvalidInput(
                f"Unknown {self._what} {name!r}.{closest(str(name), table)} "
                f"Known {self._what}s: {', '.join(sorted(table)) or 'none'}."
            )
        return table[name]

    def load(self, name: str) -> Any:
        """Import and return what ``name`` stands for.

        Raises:
            InvalidInput: the name is unknown or its target cannot be imported.
        """
        return load_target(self.target(name))
