"""Live rollout state of each model in Redis: the contract between its writers and serving.

The state of model ``M`` is the Redis hash ``driftline:rollout:M`` with fields
``canary_version`` (a registry version; absent = no canary), ``canary_share`` (0..1),
``shadow_version`` (a version that gets a copy of the traffic, off the request path;
absent = no shadow) and ``champion_version`` (written by promote, so every replica
reloads the champion alias when it changes), and ``canary_step_context`` (the canary
controller's record of the step it set, opaque to everyone else: any other write of the
canary fields deletes it, so it never outlives that step). Writers: the admin API
(``POST /admin/canary``, ``/admin/shadow``, ``/admin/promote``) and the retrain worker
(a candidate that passes its gate becomes the canary). Each writer changes only its own
fields. Serving re-reads it every ``rollout_poll_s`` (:mod:`serving.rollout`). It lives in
``schemas`` because serving must never import retrain (docs/decisions.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis

log = logging.getLogger(__name__)

KEY_PREFIX = "driftline:rollout:"
#: The canary controller's step record (``retrain.canary_step_context``), set with the share.
STEP_CONTEXT_FIELD = "canary_step_context"


def rollout_key(model_name: str) -> str:
    """The Redis hash holding ``model_name``'s rollout state."""
    return f"{KEY_PREFIX}{model_name}"


@dataclass(frozen=True)
class RolloutState:
    """One model's rollout: which version is the canary and what share it gets."""

    canary_version: str | None = None
    canary_share: float = 0.0
    shadow_version: str | None = None
    #: Set by promote: the champion every replica should serve (None: whatever the alias says).
    champion_version: str | None = None

    @property
    def active(self) -> bool:
        return self.canary_version is not None and self.canary_share > 0


class RolloutStore:
    """Read and write rollout state in Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def read(self, model_name: str) -> RolloutState | None:
        """The stored state, or None when nothing was ever written for the model."""
        raw = self.client.hgetall(rollout_key(model_name))
        if not raw:
            return None
        fields = {_text(k): _text(v) for k, v in raw.items()}
        version = fields.get("canary_version") or None
        try:
            share = min(1.0, max(0.0, float(fields.get("canary_share", "0"))))
        except ValueError:
            log.error("rollout state of %s has a bad canary_share; using 0", model_name)
            share = 0.0
        return RolloutState(
            version,
            share,
            fields.get("shadow_version") or None,
            fields.get("champion_version") or None,
        )

    def write(self, model_name: str, state: RolloutState) -> None:
        """Replace the stored state (one atomic HSET/HDEL transaction)."""
        self._write(model_name, {
            "canary_version": state.canary_version,
            "canary_share": repr(state.canary_share),
            "shadow_version": state.shadow_version,
            "champion_version": state.champion_version,
            STEP_CONTEXT_FIELD: None,
        })  # fmt: skip

    def write_canary(
        self, model_name: str, version: str | None, share: float, step_context: str | None = None
    ) -> None:
        """Change only the canary fields (a shadow or champion set by others stays);
        ``step_context`` is the canary controller's, written in the same transaction (any
        other writer passes none, which deletes a stale one)."""
        self._write(model_name, {
            "canary_version": version,
            "canary_share": repr(share),
            STEP_CONTEXT_FIELD: step_context,
        })  # fmt: skip

    def read_step_context(self, model_name: str) -> str | None:
        """The canary controller's record of the step in progress (None: none stored)."""
        raw = self.client.hget(rollout_key(model_name), STEP_CONTEXT_FIELD)
        return None if raw is None else _text(raw)

    def write_shadow(self, model_name: str, version: str | None) -> None:
        """Change only the shadow version (None clears it)."""
        self._write(model_name, {"shadow_version": version})

    def write_promotion(self, model_name: str, champion_version: str) -> None:
        """Record a promotion: the new champion, and no canary any more."""
        self._write(model_name, {
            "canary_version": None,
            "canary_share": repr(0.0),
            "champion_version": champion_version,
            STEP_CONTEXT_FIELD: None,
        })  # fmt: skip

    def write_shadow_promotion(self, model_name: str, champion_version: str) -> None:
        """Record a shadow's promotion: the new champion, and no shadow any more (a canary
        stays: it is judged against whatever the champion is)."""
        self._write(model_name, {"shadow_version": None, "champion_version": champion_version})

    def _write(self, model_name: str, fields: dict[str, str | None]) -> None:
        """HSET the given fields, HDEL those given as None, in one transaction."""
        key = rollout_key(model_name)
        pipe = self.client.pipeline(transaction=True)
        for name, value in fields.items():
            if value is None:
                pipe.hdel(key, name)
            else:
                pipe.hset(key, name, value)
        pipe.execute()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
