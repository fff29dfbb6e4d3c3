"""``driftline validate-models``: does every served model still pass its validation gate?

Before and after an upgrade (of scikit-learn, MLflow, numpy...) the monthly runbook asks
whether the models in service still load and still score as they did. "Served" means
what serving routes traffic (or a shadow copy) to: each registered model's champion
(the rollout state's ``champion_version`` when a promotion set it, else the registry
alias), its canary while its share is above 0, and its shadow. Each is scored on its
held-out data, the fixed validation split of :mod:`schemas.breast_cancer` that training
and the retrain gate score on, with :func:`retrain.training.evaluate`, and judged by
:func:`retrain.gate.evaluate_gate` with the gate's own settings
(``DRIFTLINE_RETRAIN_GATE_*``): the floors for every version, and for a canary or shadow
also the allowed regression against its champion, as the retrain worker judged it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import redis
import typer
from rich.console import Console
from rich.markup import escape

from retrain.gate import GateResult, evaluate_gate
from retrain.settings import RetrainSettings
from retrain.training import evaluate
from schemas.breast_cancer import load_split
from schemas.exceptions import ModelNotFoundError
from schemas.model_registry import ModelStore
from schemas.rollout_state import RolloutState, RolloutStore
from schemas.settings import RedisSettings
from serving.settings import ServingSettings


@dataclass(frozen=True)
class ServedVersion:
    """One version that serving routes to, and in which role."""

    model: str
    role: str  # champion, canary or shadow
    version: str


@dataclass(frozen=True)
class Validation:
    """A served version's held-out metrics and the gate's verdict (or why none)."""

    served: ServedVersion
    metrics: dict[str, float] = field(default_factory=dict)
    gate: GateResult | None = None
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and self.gate is not None and self.gate.passed


def served_versions(
    store: ModelStore, alias: str, rollouts: dict[str, RolloutState | None], models: list[str]
) -> list[ServedVersion]:
    """Champion, canary and shadow of each model in ``models`` that has a champion."""
    served: list[ServedVersion] = []
    for model in models:
        state = rollouts.get(model)
        champion = (state.champion_version if state else None) or store.alias_version(model, alias)
        if champion is None:
            continue
        served.append(ServedVersion(model, "champion", champion))
        if state is not None and state.active and state.canary_version:
            served.append(ServedVersion(model, "canary", state.canary_version))
        if state is not None and state.shadow_version:
            served.append(ServedVersion(model, "shadow", state.shadow_version))
    return served


def validate(
    store: ModelStore, served: list[ServedVersion], settings: RetrainSettings
) -> list[Validation]:
    """Score each version on the held-out split and apply the gate to it."""
    split = load_split()
    champions: dict[str, dict[str, float]] = {}
    results: list[Validation] = []
    for item in served:  # champions come first for each model
        try:
            model = store.load_version(item.model, item.version)
            metrics = evaluate(model, split.x_validation, split.y_validation)
        except Exception as exc:  # a model that cannot load or score fails, with the reason
            results.append(Validation(item, error=f"{type(exc).__name__}: {exc}"))
            continue
        if item.role == "champion":
            champions[item.model] = metrics
            baseline = None
        else:
            theirs = champions.get(item.model)
            baseline = {"holdout": theirs} if theirs is not None else None
        gate = evaluate_gate({"holdout": metrics}, baseline, settings)
        results.append(Validation(item, metrics, gate))
    return results


def validate_models(
    model: Annotated[
        list[str] | None,
        typer.Option(help="Only this registered model (repeatable); default: every one."),
    ] = None,
    rollout: Annotated[
        bool,
        typer.Option(
            "--rollout/--no-rollout",
            help="Read canary and shadow versions from Redis (off: champions only).",
        ),
    ] = True,
) -> None:
    """Score every served model version against its validation gate; exit 1 on a failure.

    Champion, canary and shadow, each on its held-out data, one line per version.
    """
    console = Console(highlight=False, soft_wrap=True)
    store = ModelStore.from_settings()
    alias = ServingSettings().model_alias
    try:
        for name in model or []:  # a typo is named as such, not as "no served model"
            store.require_model(name)
    except ModelNotFoundError as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(1) from None
    models = model or store.registered_models()
    rollouts: dict[str, RolloutState | None] = {}
    unread: str | None = None
    if rollout:
        try:
            rollouts = _rollouts(models)
        except redis.RedisError as exc:
            unread = f"{type(exc).__name__}: {exc}"
    served = served_versions(store, alias, rollouts, models)
    if not served:
        console.print(f"[red]no served model:[/] no model has a version with alias {alias!r}")
        raise typer.Exit(1)
    results = validate(store, served, RetrainSettings())
    for result in results:
        console.print(_line(result))
    if unread is not None:
        console.print(
            f"[red]rollout state not read[/] ({escape(unread)}): canary and shadow versions "
            "were not validated (--no-rollout checks champions only)"
        )
    failed = sum(not r.passed for r in results)
    console.print(
        f"[red]{failed} of {len(results)} served versions fail their gate[/]"
        if failed
        else f"[green]all {len(results)} served versions pass their gate[/]"
    )
    if failed or unread is not None:
        raise typer.Exit(1)


def _rollouts(models: list[str]) -> dict[str, RolloutState | None]:
    client = redis.Redis.from_url(
        RedisSettings().url.get_secret_value(), socket_timeout=3, socket_connect_timeout=3
    )
    try:
        store = RolloutStore(client)
        return {name: store.read(name) for name in models}
    finally:
        client.close()


def _line(result: Validation) -> str:
    served = result.served
    head = escape(f"{served.model} {served.role} version {served.version}")
    if result.error is not None or result.gate is None:
        return f"[bold red]FAIL[/] {head}: cannot score it: {escape(result.error or '?')}"
    numbers = " ".join(f"{name} {value:.4f}" for name, value in result.metrics.items())
    if result.gate.passed:
        return f"[green]PASS[/] {head}: {numbers}"
    return f"[bold red]FAIL[/] {head}: {numbers}; {escape(result.gate.reason)}"
