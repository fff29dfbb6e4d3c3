"""What a canary step needs from the step before it, kept beside the rollout state.

When the controller moves a canary to the next share it starts a :class:`StepState` with
the time of the change (windows that started before belong to the old step) and the old
step's baseline evidence: at a 100 % share the baseline serves nothing, so the canary is
judged against the previous step's newest baseline SloWindow and the baseline accuracy
windows its rule pooled. That evidence exists nowhere else once the step changed: the old
step's windows are committed (offsets are committed at each decision), and the
DeploymentEvent carries only the last pair's numbers. Kept only in memory, a controller
restarted at 100 % found no reference and waited for ever; so the controller writes it
into the rollout hash in the same transaction as the share (:meth:`RolloutStore.write_canary`),
and a restarted controller resumes the step from it with the same evidence rules.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, ValidationError

from retrain.canary import SloSummary
from retrain.canary_accuracy import VariantAccuracy

log = logging.getLogger(__name__)


class StepContext(BaseModel):
    """The step a controller set: canary ``version`` at ``share`` since ``since_ms``, and
    the previous step's baseline evidence."""

    model_config = ConfigDict(frozen=True)

    version: str
    share: float
    since_ms: int
    previous_baseline: SloSummary | None = None
    previous_baseline_accuracy: list[VariantAccuracy] = []

    def encode(self) -> str:
        return self.model_dump_json()


def decode_step_context(model_name: str, raw: str | None) -> StepContext | None:
    """The stored context, or None when absent or unreadable (the step then starts without
    it, as before: a bad record never stops the controller)."""
    if raw is None:
        return None
    try:
        return StepContext.model_validate_json(raw)
    except ValidationError as exc:
        log.warning(
            "canary step context of %s is unreadable (%d errors); judging the step without it",
            model_name, exc.error_count(),
        )  # fmt: skip
        return None
