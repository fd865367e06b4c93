"""Every public package exports a sorted, complete ``__all__`` of names that exist."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import sagelab

PACKAGES = sorted(
    name
    for _, name, is_pkg in pkgutil.walk_packages(sagelab.__path__, "sagelab.")
    if is_pkg
    and not any(part.startswith("_") for part in name.split("."))
    and ".migrations" not in name
)


def test_packages_were_found() -> None:
    assert {
        "sagelab.lake",
        "sagelab.store",
        "sagelab.jobs",
        "sagelab.ingest",
        "sagelab.cli",
    } <= set(PACKAGES)


@pytest.mark.parametrize("name", ["sagelab", *PACKAGES])
def test_all_is_sorted_complete_and_real(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported, key=lambda n: (not n.isupper(), n)) or exported == sorted(
        exported
    )
    for item in exported:
        assert getattr(module, item, None) is not None, f"{name}.{item} is exported but missing"
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and getattr(v, "__module__", "").startswith(name)
        and not isinstance(v, type(module))
    }
    missing = public - set(exported)
    assert not missing, f"{name} defines public names not in __all__: {sorted(missing)}"
