"""``driftline validate``: one line per check against a running deployment; exit 1 on any
failure (skipped checks do not fail)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from driftline.settings import OperatorSettings, ValidateSettings
from driftline.validate import CheckResult, Validator
from serving.settings import AdminSettings, ServingSettings

console = Console()

_STYLE = {"pass": "green", "fail": "red", "skip": "yellow"}


def validate(
    url: Annotated[
        str | None, typer.Option(help="Serving's base URL (default: the local stack's).")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(help="Admin bearer token (default: DRIFTLINE_VALIDATE_ADMIN_TOKEN).",
                     show_default=False),
    ] = None,
    prometheus_url: Annotated[
        str | None, typer.Option(help="Prometheus to query (default: settings; none = skip).")
    ] = None,
) -> None:  # fmt: skip
    """Validate a running deployment: pipelines, features, training, inference, drift,
    monitoring, security, performance."""
    settings = ValidateSettings()
    target = url or settings.url or _local_url()
    admin = token or _default_token(settings)
    validator = Validator(
        target,
        admin_token=admin,
        prometheus_url=prometheus_url
        or settings.prometheus_url
        or OperatorSettings().prometheus_url,
        timeout_s=settings.timeout_s,
    )
    console.print(f"validating {target}", highlight=False)
    try:
        results = validator.run(_print)
    finally:
        validator.close()
    failed = [r.name for r in results if r.status == "fail"]
    passed = sum(r.status == "pass" for r in results)
    skipped = sum(r.status == "skip" for r in results)
    console.print(f"{passed} passed, {len(failed)} failed, {skipped} skipped", highlight=False)
    if failed:
        raise typer.Exit(1)


def _print(result: CheckResult) -> None:
    style = _STYLE[result.status]
    console.print(
        f"[{style}]{result.status.upper():4}[/] {result.name}: {result.detail}",
        highlight=False,
        soft_wrap=True,
    )


def _local_url() -> str:
    serving = ServingSettings()
    return f"http://{serving.host}:{serving.port}"


def _default_token(settings: ValidateSettings) -> str | None:
    if settings.admin_token is not None:
        return settings.admin_token.get_secret_value()
    tokens = AdminSettings().token_list()
    return tokens[0].decode() if tokens else None
