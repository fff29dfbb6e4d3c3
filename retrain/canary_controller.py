"""The canary controller: steps a canary up on live evidence, promotes it, or rolls it back.

A consumer group on ``slo.windows`` and ``drift.scores`` (``driftline canary run``). For
each model whose rollout state (Redis) has an active canary, it pairs the canary's
SloWindows (of the canary version) with the baseline's of the same window and judges the
current step with :func:`retrain.canary.analyse`; from the DriftScores of the same windows
it pools each variant's accuracy for the accuracy rule (:mod:`retrain.canary_accuracy`).
Pass: the next share of ``DRIFTLINE_CANARY_STEPS`` (rollout state + DeploymentEvent
``canary_step``), or, after the last step, promotion (alias ``champion`` moved, rollout
state, DeploymentEvent ``promoted``). Fail: rollback (canary cleared, DeploymentEvent
``rolled_back``), at the first failing window or as soon as the canary's pooled accuracy
is too far below the baseline's. Every decision's event carries its evidence.

Windows that started before the controller changed the share belong to the old step and
are ignored. Offsets are committed after each decision only, so a restarted controller
re-reads the windows of the step in progress from Kafka; what it needs from the steps
before (when the step began, the previous step's baseline that a 100 % step is judged
against) it reads from the rollout hash, written with the share
(:mod:`retrain.canary_step_context`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from retrain import metrics as m
from retrain.canary import CanaryVerdict, SloSummary, analyse, next_share
from retrain.canary_accuracy import VariantAccuracy, combine, judge_windows, variant_accuracy
from retrain.canary_report import canary_analysis
from retrain.canary_step_context import StepContext, decode_step_context
from retrain.retry_policy import FailureCounter, dead_letter_if_exhausted
from retrain.settings import CanaryAnalysisSettings
from retrain.shadow_controller import ShadowController, ShadowDecision
from schemas.canary_analysis import CanaryAnalysisStore
from schemas.catalog import DRIFT_SCORE, SHADOW_COMPARISON, SLO_WINDOW
from schemas.codec import Codec, make_codec
from schemas.consumer import RecordDecoder
from schemas.dead_letters import DeadLetterRouter
from schemas.deployments import deployment_event, publish_deployment_event
from schemas.events import now_ms
from schemas.kafka_config import consumer_config, once_assigned, producer_config
from schemas.model_registry import ModelStore
from schemas.promotion import execute_rollback, plan_rollback, promote_canary
from schemas.redaction import redact_credentials
from schemas.rollout_state import RolloutState, RolloutStore
from schemas.settings import KafkaSettings
from schemas.topics import DEAD_LETTERS, DRIFT_SCORES, SHADOW_COMPARISONS, SLO_WINDOWS

log = logging.getLogger(__name__)
#: A subscribed topic that does not exist (yet) is not fatal: the other still decides.
MISSING_TOPIC = (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC)


@dataclass
class StepState:
    """The step in progress for one model: its canary, share, and window pairs so far."""

    version: str
    share: float
    since_ms: int | None
    canary: dict[int, SloSummary] = field(default_factory=dict)
    baseline: dict[int, SloSummary] = field(default_factory=dict)
    canary_accuracy: dict[int, VariantAccuracy] = field(default_factory=dict)
    baseline_accuracy: dict[int, VariantAccuracy] = field(default_factory=dict)
    #: The previous step's newest baseline window: at a share of 100 % the baseline serves
    #: nothing, so there is no same-window pair and the canary is judged against this.
    previous_baseline: SloSummary | None = None
    #: Likewise for accuracy: the baseline windows the previous step's rule pooled.
    previous_baseline_accuracy: list[VariantAccuracy] = field(default_factory=list)

    def newest_baseline(self) -> SloSummary | None:
        return self.baseline[max(self.baseline)] if self.baseline else self.previous_baseline

    def pairs(self) -> list[tuple[int, SloSummary, SloSummary]]:
        fallback = self.newest_baseline() if self.share >= 1.0 else None
        found = [(s, c, self.baseline.get(s, fallback)) for s, c in self.canary.items()]
        return [(s, c, b) for s, c, b in found if b is not None]

    def accuracy_pairs(self) -> list[tuple[int, VariantAccuracy, VariantAccuracy]]:
        """DriftScore windows of the step that both the canary and the baseline have."""
        both = self.canary_accuracy.keys() & self.baseline_accuracy.keys()
        return [(s, self.canary_accuracy[s], self.baseline_accuracy[s]) for s in sorted(both)]

    def accuracy_windows(self) -> tuple[list[VariantAccuracy], list[VariantAccuracy]]:
        """(canary, baseline) windows the accuracy rule pools: the paired ones; at a 100 %
        share without baseline traffic, every canary window against the previous step's
        baseline windows."""
        if self.share >= 1.0 and not self.baseline_accuracy:
            canary = [self.canary_accuracy[s] for s in sorted(self.canary_accuracy)]
            return canary, list(self.previous_baseline_accuracy)
        pairs = self.accuracy_pairs()
        return [c for _, c, _ in pairs], [b for _, _, b in pairs]


@dataclass(frozen=True)
class CanaryDecision:
    """What the controller did: ``canary_step``, ``promoted`` or ``rolled_back``."""

    model_name: str
    action: str
    version: str
    share: float
    verdict: CanaryVerdict


def summary(record: Mapping[str, Any]) -> SloSummary:
    return SloSummary(
        int(record["request_count"]), float(record["error_rate"]), float(record["latency_p99_ms"])
    )


class CanaryController:
    """Judge and act; :meth:`observe` is the whole logic, the loop only feeds it."""

    def __init__(
        self,
        settings: CanaryAnalysisSettings,
        kafka: KafkaSettings,
        rollout: RolloutStore,
        store: ModelStore,
        codec: Codec | None = None,
        clock: Callable[[], int] = now_ms,
        analyses: CanaryAnalysisStore | None = None,
    ) -> None:
        self.settings = settings
        self.kafka = kafka
        self.rollout = rollout
        self.store = store
        self.codec = codec or make_codec()
        self.clock = clock
        self.steps: dict[str, StepState] = {}
        #: Where each analysis goes for serving's ``GET /analysis/{model}/canary``.
        self.analyses = analyses or CanaryAnalysisStore(rollout.client)

    def observe(self, record: Mapping[str, Any]) -> CanaryDecision | None:
        """Take one SloWindow or DriftScore; act and return the decision when the step is
        decided."""
        model = str(record["model_name"])
        step = self._step(model)
        if step is None:
            return None
        start = int(record["window_start"])
        if step.since_ms is not None and start < step.since_ms:
            return None
        if "window_kind" in record:  # a DriftScore: per-variant accuracy of one version
            if not self._take_accuracy(step, start, record):
                return None
        else:
            variant = record["variant"]
            if variant == "canary" and record.get("model_version") == step.version:
                step.canary[start] = summary(record)
            elif variant == "baseline":
                step.baseline[start] = summary(record)
            else:
                return None
        verdict = combine(
            analyse(step.pairs(), self.settings),
            judge_windows(*step.accuracy_windows(), self.settings),
            self.settings,
        )
        self._record(model, step, verdict)
        if verdict.decision == "inconclusive":
            return None
        decision = self._act(model, step, verdict)
        m.CANARY_DECISIONS.labels(model, decision.action).inc()
        m.CANARY_SHARE.labels(model).set(decision.share if decision.action == "canary_step" else 0)
        return decision

    def _step(self, model: str) -> StepState | None:
        """The step in progress per the rollout state (a new one when it changed)."""
        state = self.rollout.read(model)
        if state is None or not state.active or state.canary_version is None:
            self.steps.pop(model, None)
            m.CANARY_SHARE.labels(model).set(0.0)
            return None
        m.CANARY_SHARE.labels(model).set(state.canary_share)
        step = self.steps.get(model)
        if step is None or (step.version, step.share) != (state.canary_version, state.canary_share):
            step = self._resumed(model, state.canary_version, state.canary_share)
            self.steps[model] = step
        return step

    def _resumed(self, model: str, version: str, share: float) -> StepState:
        """A step this controller did not start here (a restart, or a retry after acting
        failed half-way): with the context stored when the share was set, if it is this
        step's; else a bare one (a canary started or moved by hand has no previous step)."""
        context = decode_step_context(model, self.rollout.read_step_context(model))
        if context is None or (context.version, context.share) != (version, share):
            return StepState(version, share, None)
        log.info("%s: resuming canary %s at share %g", model, version, share)
        return StepState(
            version, share, context.since_ms, previous_baseline=context.previous_baseline,
            previous_baseline_accuracy=list(context.previous_baseline_accuracy),
        )  # fmt: skip

    @staticmethod
    def _take_accuracy(step: StepState, start: int, record: Mapping[str, Any]) -> bool:
        """Keep a tumbling DriftScore's canary (of the canary version) or baseline accuracy;
        False when it holds neither (sliding windows would count every window again)."""
        if record.get("window_kind", "tumbling") != "tumbling":
            return False
        taken = False
        if record.get("model_version") == step.version:
            found = variant_accuracy(record, "canary")
            if found is not None:
                step.canary_accuracy[start] = found
                taken = True
        found = variant_accuracy(record, "baseline")
        if found is not None:
            step.baseline_accuracy[start] = found
            taken = True
        return taken

    def _record(self, model: str, step: StepState, verdict: CanaryVerdict) -> None:
        """Store the analysis (before acting: a failed action is retried and recorded again)."""
        action = None
        if verdict.decision == "fail":
            action = "rolled_back"
        elif verdict.decision == "pass":
            last = next_share(step.share, self.settings.steps) is None
            action = "promoted" if last else "canary_step"
        self.analyses.write(canary_analysis(
            model, step.version, step.share, step.pairs(), verdict, self.settings, action,
            self.clock(),
        ))  # fmt: skip

    def _act(self, model: str, step: StepState, verdict: CanaryVerdict) -> CanaryDecision:
        if verdict.decision == "fail":
            plan = plan_rollback(model, self.rollout, self.store)
            execute_rollback(
                plan, self.rollout, self.kafka, f"canary analysis failed: {verdict.reason}",
                self.codec, evidence=verdict.evidence,
            )  # fmt: skip
            self.steps.pop(model, None)
            return CanaryDecision(model, "rolled_back", step.version, 0.0, verdict)
        share = next_share(step.share, self.settings.steps)
        if share is None:
            promote_canary(
                model, self.rollout, self.store, self.kafka,
                f"canary analysis passed at share {step.share:g}: {verdict.reason}",
                evidence=verdict.evidence,
            )  # fmt: skip
            self.steps.pop(model, None)
            return CanaryDecision(model, "promoted", step.version, 1.0, verdict)
        since = self.clock()
        following = StepState(
            step.version, share, since, previous_baseline=step.newest_baseline(),
            previous_baseline_accuracy=step.accuracy_windows()[1],
        )  # fmt: skip
        context = StepContext(
            version=step.version, share=share, since_ms=since,
            previous_baseline=following.previous_baseline,
            previous_baseline_accuracy=following.previous_baseline_accuracy,
        )  # fmt: skip
        self.rollout.write_canary(model, step.version, share, context.encode())
        event = deployment_event(
            model_name=model,
            action="canary_step",
            reason=f"canary analysis passed at share {step.share:g}: {verdict.reason}",
            champion_version=self.store.alias_version(model, "champion"),
            canary_version=step.version,
            canary_share=share,
            shadow_version=(self.rollout.read(model) or RolloutState()).shadow_version,
            evidence=verdict.evidence | {"previous_share": step.share},
        )
        publish_deployment_event(self.kafka, event, self.codec)
        self.steps[model] = following
        return CanaryDecision(model, "canary_step", step.version, share, verdict)


class CanaryLoop:
    """Consume ``slo.windows`` and ``drift.scores`` into a :class:`CanaryController` until
    :meth:`stop`.

    A dependency failing (Redis, MLflow, Kafka) while acting: the record is re-read after
    ``retry_backoff_s``, without limit. Any other error is retried ``max_attempts`` times in
    a row, then the record goes to the dead-letter topic (``processing_failed``) and the
    loop moves on (:mod:`retrain.retry_policy`). An undecodable record goes to the
    dead-letter topic at once. Neither is committed: offsets are committed at decisions
    only, so a restart re-reads the step's windows (and dead-letters such a record again).

    With a ``shadow`` controller it also consumes ``shadow.comparisons`` and hands those
    records to it; a decision commits only the positions of the topics its own analysis
    reads, so a shadow promotion never commits a canary step's windows and vice versa.

    ``on_joined`` is called once, when the consumer first gets its partitions: the CLI
    prints its "consuming" line then, which the launcher and ``driftline health`` rely on.
    """

    def __init__(
        self,
        controller: CanaryController,
        on_decision: Callable[[CanaryDecision], None] | None = None,
        retry_backoff_s: float = 2.0,
        shadow: ShadowController | None = None,
        on_shadow_decision: Callable[[ShadowDecision], None] | None = None,
        on_joined: Callable[[], None] | None = None,
    ) -> None:
        self.controller = controller
        self.on_joined = on_joined
        self.on_decision = on_decision
        self.shadow = shadow
        self.on_shadow_decision = on_shadow_decision
        self.retry_backoff_s = retry_backoff_s
        kafka = controller.kafka
        self.topic = SLO_WINDOWS.prefixed(kafka.topic_prefix).name
        self.drift_topic = DRIFT_SCORES.prefixed(kafka.topic_prefix).name
        self.shadow_topic = SHADOW_COMPARISONS.prefixed(kafka.topic_prefix).name
        self._stop = threading.Event()
        self.failures = FailureCounter(controller.settings.max_attempts)
        self.dead_lettered = 0

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        settings, kafka = self.controller.settings, self.controller.kafka
        consumer = Consumer(consumer_config(kafka, settings.group_id))
        dead_topic = DEAD_LETTERS.prefixed(kafka.topic_prefix).name
        dead_letters = DeadLetterRouter(
            Producer(producer_config(kafka)), dead_topic, settings.group_id
        )
        schemas = {self.topic: SLO_WINDOW, self.drift_topic: DRIFT_SCORE}
        if self.shadow is not None:
            schemas[self.shadow_topic] = SHADOW_COMPARISON
        decoder = RecordDecoder(self.controller.codec, dead_letters, schemas)
        consumer.subscribe(list(schemas), on_assign=once_assigned(self.on_joined))
        try:
            while not self._stop.is_set():
                msg = consumer.poll(settings.poll_timeout_s)
                if msg is None:
                    continue
                err = msg.error()
                if err is not None:
                    if err.code() in MISSING_TOPIC:  # e.g. no drift processor ever ran
                        log.warning("%s; judging on the topics that exist", err.str())
                    elif err.code() != KafkaError._PARTITION_EOF and (
                        err.fatal() or not err.retriable()
                    ):
                        raise KafkaException(err)
                    continue
                decoded = decoder.decode_one(msg)
                if decoded is None:
                    dead_letters.flush()
                    continue
                try:
                    if msg.topic() == self.shadow_topic and self.shadow is not None:
                        shadow_decision = self.shadow.observe(decoded.value)
                        decision = None
                    else:
                        shadow_decision = None
                        decision = self.controller.observe(decoded.value)
                except Exception as exc:
                    if dead_letter_if_exhausted(self.failures, dead_letters, msg, exc):
                        log.error(
                            "record at %s[%s]@%s failed %d times in a row (%s: %s): sent "
                            "to the dead-letter topic, moving on",
                            msg.topic(), msg.partition(), msg.offset(),
                            self.failures.max_attempts, type(exc).__name__,
                            redact_credentials(str(exc)),
                        )  # fmt: skip
                        self.dead_lettered += 1
                        continue
                    self._retry(consumer, msg, exc)
                    continue
                self.failures.forget(msg.topic() or "", msg.partition() or 0)
                if shadow_decision is not None:
                    _commit_topics(consumer, {self.shadow_topic})
                    if self.on_shadow_decision is not None:
                        self.on_shadow_decision(shadow_decision)
                if decision is not None:
                    # every position consumed: the DriftScores read so far were used in this
                    # decision or belong to windows before the next step (ignored anyway)
                    _commit_topics(consumer, {self.topic, self.drift_topic})
                    log.info(
                        "%s: %s (version %s, share %g): %s", decision.model_name,
                        decision.action, decision.version, decision.share, decision.verdict.reason,
                    )  # fmt: skip
                    if self.on_decision is not None:
                        self.on_decision(decision)
        finally:
            consumer.close()

    def _retry(self, consumer: Consumer, msg: Message, exc: Exception) -> None:
        """Seek back to ``msg`` and wait ``retry_backoff_s`` before reading it again."""
        log.warning(
            "canary decision failed (%s: %s); retrying",
            type(exc).__name__, redact_credentials(str(exc)),
        )  # fmt: skip
        position = TopicPartition(msg.topic() or "", msg.partition() or 0, msg.offset() or 0)
        consumer.seek(position)
        self._stop.wait(self.retry_backoff_s)


def _commit_topics(consumer: Consumer, topics: set[str]) -> None:
    """Commit the consumed positions of ``topics`` only (synchronously)."""
    positions = [
        tp for tp in consumer.position(consumer.assignment())
        if tp.topic in topics and tp.offset >= 0
    ]  # fmt: skip
    if positions:
        consumer.commit(offsets=positions, asynchronous=False)
