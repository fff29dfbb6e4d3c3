"""docs/reliability.md names the test proving each promise: every name must exist.

A renamed or deleted test would otherwise leave a promise that nothing proves.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "reliability.md"
#: `unit/test_x.py` or `integration/test_x.py::test_name` (a bare `::test_name` continues
#: the file named just before it).
_REFERENCE = re.compile(r"`(?:((?:unit|integration|regression)/[\w/]+\.py))?(?:::(\w+))?`")


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    return {n.name for n in tree.body if isinstance(n, functions) and n.name.startswith("test_")}


def test_every_test_the_reliability_doc_names_exists() -> None:
    missing: list[str] = []
    named = 0
    current: Path | None = None
    for match in _REFERENCE.finditer(DOC.read_text()):
        file, name = match.groups()
        if file:
            current = REPO / "tests" / file
            if not current.is_file():
                missing.append(file)
                continue
        if name:
            named += 1
            if current is None or name not in _tests_in(current):
                missing.append(f"{current}::{name}")
    assert not missing, f"docs/reliability.md names tests that do not exist: {missing}"
    assert named >= 10  # the pattern still finds the references
