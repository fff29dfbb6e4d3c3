"""What one running prediction service holds: settings, the loaded model, the publisher."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import redis

from schemas.breast_cancer import feature_names
from schemas.events import Variant
from schemas.feature_views import load_views
from schemas.model_registry import ModelStore
from schemas.rollout_state import RolloutState, RolloutStore
from schemas.settings import DataSettings, FeatureViewSettings, KafkaSettings, RedisSettings
from serving.datasets import DatasetStore
from serving.features import OnlineFeatures
from serving.metrics import ServingMetrics
from serving.pipelines import PipelineRunner
from serving.predictor import LoadedModel
from serving.publishing import DiskSpool, EventPublisher
from serving.references import ReferenceRegistry
from serving.rollout import RolloutWatcher, choose_variant
from serving.settings import AdminSettings, CanarySettings, ServingSettings
from serving.shadow import ShadowJob, ShadowRow, ShadowRunner

log = logging.getLogger(__name__)


@dataclass
class ServingConfig:
    """Everything a serving app is built from; each part read from the environment by default."""

    serving: ServingSettings = field(default_factory=ServingSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    data: DataSettings = field(default_factory=DataSettings)
    store: ModelStore | None = None
    #: Where rollout state lives; None turns canary routing off (all traffic baseline).
    redis: RedisSettings | None = field(default_factory=RedisSettings)
    canary: CanarySettings = field(default_factory=CanarySettings)
    #: Which feature views /features/online serves (materialised in ``redis``).
    features: FeatureViewSettings = field(default_factory=FeatureViewSettings)

    def model_store(self) -> ModelStore:
        return self.store or ModelStore.from_settings(self.data)


class ServingState:
    """The live state behind the routes (``app.state.serving``)."""

    def __init__(self, config: ServingConfig) -> None:
        self.config = config
        self.settings = config.serving
        self.store = config.model_store()
        self.metrics = ServingMetrics()
        self.model: LoadedModel | None = None
        self.publisher: EventPublisher | None = None
        self.datasets = DatasetStore.in_data_dir(config.data.data_dir)
        self.references = ReferenceRegistry(self.datasets)
        self.online_features = OnlineFeatures(
            load_views(config.features.views_path),
            config.redis.url.get_secret_value() if config.redis is not None else None,
        )
        self.pipelines = PipelineRunner(
            self.settings.pipeline_workers, self.settings.pipeline_max_pending
        )
        self.rollout_store: RolloutStore | None = None
        self.watcher: RolloutWatcher | None = None
        # (state, loaded canary) replaced as one tuple, so a request never pairs a new
        # share with an old canary model or the reverse.
        self.routing: tuple[RolloutState, LoadedModel | None] = (RolloutState(), None)
        #: The shadow version, if any; it gets a copy of the traffic through ``shadow_runner``.
        self.shadow: LoadedModel | None = None
        self.shadow_runner = ShadowRunner(
            self.emit,
            self.metrics.shadow_dropped.inc,
            self.metrics.shadow_predictions.inc,
            self.settings.shadow_queue_max,
        )

    def start(self) -> None:
        """Start publishing; load the champion.

        Serving never trains (it must not import retrain): the launcher trains the
        baseline when no champion exists (``driftline train``, ``driftline up``).

        :raises ModelNotFoundError: the registry has no version under the alias.
        """
        self.reload()  # first: nothing to stop when there is no model
        if self.settings.publish_events:
            spool = DiskSpool(
                self.config.data.data_dir / "spool" / "serving", self.settings.spool_max_bytes
            )
            self.publisher = EventPublisher(
                self.config.kafka,
                spool,
                buffer_max_events=self.settings.buffer_max_events,
                delivery_timeout_s=self.settings.delivery_timeout_s,
                linger_ms=self.settings.publish_linger_ms,
                hooks=self.metrics,
            )
            self.publisher.start()
        if self.config.redis is not None:
            self.shadow_runner.start()
            client = redis.Redis.from_url(
                self.config.redis.url.get_secret_value(),
                socket_timeout=0.5,
                socket_connect_timeout=0.5,
            )
            self.rollout_store = RolloutStore(client)
            self._seed_canary_split()
            self.watcher = RolloutWatcher(
                self.rollout_store,
                self.settings.model_name,
                self.apply_rollout,
                self.settings.rollout_poll_s,
            )
            self.watcher.start()

    def _seed_canary_split(self) -> None:
        """``CANARY_SPLIT`` as the first rollout state, when a ``canary`` alias exists."""
        split = self.config.canary.canary_split
        if split <= 0 or self.rollout_store is None:
            return
        name = self.settings.model_name
        try:
            if self.rollout_store.read(name) is not None:
                return
            version = self.store.alias_version(name, "canary")
            if version is None:
                log.warning("CANARY_SPLIT=%s but %s has no 'canary' alias; ignored", split, name)
                return
            self.rollout_store.write(name, RolloutState(version, split))
        except redis.RedisError as exc:
            log.warning("could not seed the canary share in Redis: %s", exc)

    def apply_rollout(self, state: RolloutState) -> None:
        """Make ``state`` live: reload a promoted champion, load changed canary and shadow
        versions, then swap."""
        if (
            state.champion_version is not None
            and self.model is not None
            and self.model.version != state.champion_version
        ):
            self.reload()
        _, canary = self.routing
        canary = self._variant_model(canary, state.canary_version, "canary")
        self.shadow = self._variant_model(self.shadow, state.shadow_version, "shadow")
        self.routing = (state, canary)
        share = state.canary_share if canary is not None else 0.0
        self.metrics.canary_share.labels(self.settings.model_name).set(share)
        log.info("rollout: canary version %s, share %.3f", state.canary_version, share)

    def _variant_model(
        self, current: LoadedModel | None, version: str | None, alias: str
    ) -> LoadedModel | None:
        """``current`` if it already is ``version``, else that version loaded (None: none)."""
        if version is None:
            return None
        if current is not None and current.version == version:
            return current
        estimator = self.store.load_version(self.settings.model_name, version)
        base = self.model
        features = base.features if base is not None else feature_names()
        return LoadedModel(self.settings.model_name, version, alias, features, estimator)

    def copy_to_shadow(self, rows: list[ShadowRow]) -> None:
        """Give answered rows to the shadow, if one is set; never blocks."""
        shadow = self.shadow
        if shadow is not None and rows:
            self.shadow_runner.submit(ShadowJob(shadow, rows))

    def route(self, key: str, baseline: LoadedModel) -> tuple[LoadedModel, Variant]:
        """The model and variant answering the request keyed ``key`` (sticky)."""
        state, canary = self.routing
        if canary is None or not state.active:
            return baseline, "baseline"
        if choose_variant(key, state.canary_share) == "canary":
            return canary, "canary"
        return baseline, "baseline"

    def reload(self) -> tuple[str | None, str]:
        """Load the model behind the alias again; return (previous version, new version)."""
        previous = self.model.version if self.model else None
        estimator, version = self.store.load(self.settings.model_name, self.settings.model_alias)
        names = getattr(estimator, "feature_names_in_", None)
        features = tuple(str(n) for n in names) if names is not None else feature_names()
        self.model = LoadedModel(
            self.settings.model_name, version, self.settings.model_alias, features, estimator
        )
        if previous is not None:
            self.metrics.model_loaded.labels(self.settings.model_name, previous).set(0)
        self.metrics.model_loaded.labels(self.settings.model_name, version).set(1)
        self.metrics.canary_share.labels(self.settings.model_name).set(0)
        log.info("serving %s version %s", self.settings.model_name, version)
        return previous, version

    def emit(self, event: dict[str, Any]) -> None:
        """Hand one InferenceEvent to the publisher (no-op when publishing is off)."""
        if self.publisher is not None:
            self.publisher.publish(event)

    def stop(self) -> None:
        """Stop watching rollout state; flush pending events (bounded), spool the rest."""
        if self.watcher is not None:
            self.watcher.stop()
        self.shadow_runner.stop()
        self.pipelines.stop()  # before the publisher closes: a replay still publishes
        if self.publisher is not None:
            spooled = self.publisher.close(self.settings.shutdown_flush_s)
            if spooled:
                log.warning("%d events spooled at shutdown; sent on the next start", spooled)
