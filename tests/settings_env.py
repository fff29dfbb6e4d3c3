"""Every environment variable Driftline's settings classes read, derived from the classes.

The settings classes are discovered (every ``*settings`` module of the packages), not
listed, so a new class or field is known here without editing this file. Used by the
checks that deployment files (docker-compose.yml, infra/k8s) set only variables the
code reads: a misspelt ``DRIFTLINE_*`` name would otherwise be silently ignored
(``extra="ignore"``) and the service would run on its default.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from pydantic import AliasChoices
from pydantic_settings import BaseSettings

PACKAGES = ("schemas", "serving", "stream", "retrain", "driftline")


def settings_classes() -> list[type[BaseSettings]]:
    """The concrete settings classes (a shared base without a prefix of its own is left
    out: its fields are read through its subclasses)."""
    found: dict[str, type[BaseSettings]] = {}
    for package in PACKAGES:
        pkg = importlib.import_module(package)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
            if not info.name.endswith("settings"):
                continue
            module = importlib.import_module(info.name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, BaseSettings) and cls.__module__ == module.__name__:
                    found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    classes = list(found.values())
    return [c for c in classes if not any(o is not c and issubclass(o, c) for o in classes)]


def env_names() -> dict[str, str]:
    """Environment variable -> ``Class.field`` it sets, for every settings field."""
    names: dict[str, str] = {}
    for cls in settings_classes():
        prefix = str(cls.model_config.get("env_prefix", ""))
        for field_name, info in cls.model_fields.items():
            owner = f"{cls.__name__}.{field_name}"
            names[(prefix + field_name).upper()] = owner
            alias = info.validation_alias
            choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
            for choice in choices:
                if isinstance(choice, str):
                    names[choice.upper()] = owner
    return names
