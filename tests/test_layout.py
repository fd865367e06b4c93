"""The layering of docs/ARCHITECTURE.md, checked on the source: who may import whom."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "sagelab"
TESTS = Path(__file__).resolve().parent

#: Packages that are doors: nothing below them may import them.
DOORS = {"cli", "api", "console"}
#: The foundations may import only the base layer (and each other, store below jobs).
FOUNDATIONS = {"store": set(), "jobs": {"store"}}
BASE = {"errors", "config", "_version", "_plugins", "_imports", "_html"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "sagelab" or name.startswith("sagelab.")}


def _package_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py") if rel.parts else ""


MODULES = sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_follow_the_layers(path: Path) -> None:
    package = _package_of(path)
    for name in _imports(path):
        parts = name.split(".")
        target = parts[1] if len(parts) > 1 else ""
        if target == package or target in BASE or not target:
            continue
        if package in DOORS or package in {"session", "__init__", "__main__"}:
            continue  # doors and the composition root may use any stage's public names
        assert target not in DOORS, f"{path.relative_to(SRC)} imports the door {name}"
        assert target != "session", (
            f"{path.relative_to(SRC)} imports the session; stages get what they need passed in"
        )
        if package in FOUNDATIONS:
            assert target in FOUNDATIONS[package], (
                f"the foundation {package} imports the stage {name}"
            )
        if len(parts) > 2 and parts[2].startswith("_"):
            assert target in BASE, (
                f"{path.relative_to(SRC)} imports {name}, a private module of another package; "
                f"use the public names of sagelab.{target}"
            )


def test_test_modules_have_unique_names() -> None:
    # pytest's default import mode loads test modules by their base name.
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert [n for n, c in names.items() if c > 1] == []
