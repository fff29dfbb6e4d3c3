"""The import directions of /work/shared/DESIGN.md hold for every module (AST, not runtime).

A component that imports another's internals makes a cycle waiting to happen: serving
must never import retrain (``/models/train`` only opens a run and publishes a request),
shared pieces live in ``schemas`` (contracts) or ``stream.stats`` (pure statistics).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = ("schemas", "serving", "stream", "retrain", "driftline")
#: package -> import prefixes it may use (besides itself).
ALLOWED: dict[str, tuple[str, ...]] = {
    "schemas": (),
    "serving": ("schemas", "stream.stats"),
    "stream": ("schemas",),
    "retrain": ("schemas", "stream.stats"),
    "driftline": ("schemas", "serving", "stream", "retrain"),
}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return found


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("package", OURS)
def test_package_imports_only_what_the_design_allows(package: str) -> None:
    allowed = (package, *ALLOWED[package])
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in _imports(path)
        if name.split(".")[0] in OURS and not any(_within(name, p) for p in allowed)
    ]
    assert not wrong, "imports against DESIGN.md's table: " + "; ".join(wrong)
