"""What ``driftline config`` prints, and what a command says for a badly set variable.

Every ``DRIFTLINE_*`` setting lives in a typed settings class of its package. The
operator asking "what is in force?" should see all of them, not only the stack's, and
never a secret: ``SecretStr`` fields print masked, a password in a URL is masked, and so
is any librdkafka override whose property is a credential (``sasl.password``,
``ssl.key.password``, ``sasl.oauthbearer.client.secret``, ...), which the overrides' plain
JSON would otherwise show.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

import typer
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsError

from schemas.redaction import redact_credentials

#: Modules that hold the settings classes, in the order ``driftline config`` prints them.
SETTINGS_MODULES = (
    "schemas.settings",
    "driftline.settings",
    "serving.settings",
    "stream.settings",
    "stream.alerting.settings",
    "retrain.settings",
)
MASK = "**********"
#: Override properties (and any other mapping key) whose value is a credential.
_SECRET_KEY = re.compile(r"password|secret|jaas|credential|key\.pem|private", re.I)


def settings_classes() -> list[type[BaseSettings]]:
    """Every settings class of :data:`SETTINGS_MODULES` (leaf classes; shared bases left out)."""
    found: list[type[BaseSettings]] = []
    for name in SETTINGS_MODULES:
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseSettings) and cls.__module__ == module.__name__:
                found.append(cls)
    return [c for c in found if not any(o is not c and issubclass(o, c) for o in found)]


def group_name(cls: type[BaseSettings]) -> str:
    """``DriftProcessorSettings`` -> ``drift_processor``: the key of its group."""
    base = cls.__name__.removesuffix("Settings") or cls.__name__
    return re.sub(r"(?<!^)(?=[A-Z])", "_", base).lower()


def mask(value: Any, key: str = "") -> Any:
    """``value`` with credential-keyed entries and URL passwords masked, recursively."""
    if key and _SECRET_KEY.search(key) and value not in (None, "", MASK):
        return MASK
    if isinstance(value, dict):
        return {k: mask(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    if isinstance(value, str):
        return redact_credentials(value)
    return value


def effective_settings() -> dict[str, Any]:
    """Every settings group as read from the environment now, secrets masked.

    :raises ValidationError: a variable holds a value its setting does not accept.
    """
    return {group_name(cls): mask(cls().model_dump(mode="json")) for cls in settings_classes()}


def env_prefix(title: str) -> str:
    """The environment prefix of the settings class named ``title`` ('' if unknown)."""
    for cls in settings_classes():
        if cls.__name__ == title:
            return str(cls.model_config.get("env_prefix", ""))
    return ""


def describe(exc: ValidationError) -> str:
    """A settings ValidationError as one line per variable, never echoing the value.

    The value may be a secret (a password in a URL, a token), and the operator knows what
    they set: the variable's name and what it must be are what they need.
    """
    prefix = env_prefix(exc.title)
    lines = [f"invalid setting ({exc.error_count()} error{'s' * (exc.error_count() != 1)}):"]
    for error in exc.errors(include_input=False, include_url=False):
        location = [str(part) for part in error["loc"]]
        variable = (prefix + location[0]).upper() if location else exc.title
        inner = ".".join(location[1:])
        lines.append(f"  {variable}{f' ({inner})' if inner else ''}: {error['msg']}")
    return "\n".join(lines)


class DriftlineTyper(typer.Typer):
    """The ``driftline`` app: a badly set variable is a user mistake, not a traceback.

    Settings are read inside each command, so any command may meet a ``DRIFTLINE_*``
    value its setting refuses. It ends with the variable's name and the rule it broke on
    stderr and exit code 2 (click's code for a usage error).
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except ValidationError as exc:
            if exc.title not in _titles():
                raise  # not a settings class: a bug, shown as one
            typer.echo(describe(exc), err=True)
            raise SystemExit(2) from None
        except SettingsError as exc:  # a JSON-valued variable that is not JSON
            typer.echo(f"invalid setting: {exc}", err=True)
            raise SystemExit(2) from None


def _titles() -> set[str]:
    return {cls.__name__ for cls in settings_classes()}
