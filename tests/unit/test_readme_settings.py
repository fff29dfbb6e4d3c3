"""The README's configuration table names every setting the code reads.

Settings classes are discovered, not listed here, so a new ``DRIFTLINE_*`` variable that
is not documented fails this test.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

from pydantic_settings import BaseSettings

PACKAGES = ("schemas", "serving", "stream", "retrain", "driftline")
README = Path(__file__).resolve().parents[2] / "README.md"


def _settings_classes() -> list[type[BaseSettings]]:
    found: dict[str, type[BaseSettings]] = {}
    for package in PACKAGES:
        pkg = importlib.import_module(package)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
            if not info.name.endswith("settings"):
                continue
            module = importlib.import_module(info.name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, BaseSettings) and cls.__module__ == module.__name__:
                    found[cls.__qualname__] = cls
    # A shared base (no prefix of its own) is checked through its subclasses' fields.
    classes = list(found.values())
    return [c for c in classes if not any(o is not c and issubclass(o, c) for o in classes)]


def test_every_setting_is_in_the_readme() -> None:
    readme = README.read_text()
    classes = _settings_classes()
    assert classes, "no settings classes found"
    missing = [
        f"{cls.__name__}.{name} -> {(str(cls.model_config.get('env_prefix', '')) + name).upper()}"
        for cls in classes
        for name in cls.model_fields
        if f"`{(str(cls.model_config.get('env_prefix', '')) + name).upper()}`" not in readme
    ]
    assert not missing, f"document these in README.md's configuration table: {missing}"
