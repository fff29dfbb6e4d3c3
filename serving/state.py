"""What one running prediction service holds: settings, the loaded model, the publisher."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from schemas.settings import KafkaSettings
from serving.metrics import ServingMetrics
from serving.model_store import ModelStore
from serving.predictor import LoadedModel
from serving.publishing import DiskSpool, EventPublisher
from serving.settings import AdminSettings, DataSettings, ServingSettings
from serving.training import ensure_champion, feature_names

log = logging.getLogger(__name__)


@dataclass
class ServingConfig:
    """Everything a serving app is built from; each part read from the environment by default."""

    serving: ServingSettings = field(default_factory=ServingSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    data: DataSettings = field(default_factory=DataSettings)
    store: ModelStore | None = None

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

    def start(self) -> None:
        """Start publishing; load the champion, training the baseline first if none exists."""
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
        if self.settings.train_if_missing:
            ensure_champion(
                self.store,
                self.settings.model_name,
                self.settings.model_alias,
                progress=lambda step: log.info("training the baseline: %s", step),
            )
        self.reload()

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
        """Flush pending events (bounded), spool the rest."""
        if self.publisher is not None:
            spooled = self.publisher.close(self.settings.shutdown_flush_s)
            if spooled:
                log.warning("%d events spooled at shutdown; sent on the next start", spooled)
