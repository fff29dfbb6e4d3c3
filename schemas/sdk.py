"""The producer SDK: send InferenceEvents and FeedbackEvents from your own services.

Driftline then monitors your model exactly like one it serves itself. Every record is
validated before it is queued (a :class:`RecordValidationError` names the bad field),
sent asynchronously (each send returns a :class:`~concurrent.futures.Future`), and its
delivery outcome reaches you: the future fails with :class:`DeliveryError` when Kafka
refuses the record, and :meth:`DriftlineProducer.close` flushes and raises if anything
is still undelivered.

Example::

    from schemas.sdk import DriftlineProducer

    with DriftlineProducer(source="checkout-service") as producer:
        producer.send_inference(
            model_name="fraud-detector", model_version="7",
            features={"amount": 42.0, "age_days": 310.0},
            prediction=0.93, latency_ms=4.1, request_id="req-1",
        )
        producer.send_feedback(request_id="req-1", model_name="fraud-detector", label=1.0)
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from schemas.catalog import FEEDBACK_EVENT, INFERENCE_EVENT
from schemas.codec import Codec, make_codec
from schemas.events import Outcome, Variant, inference_event, now_ms
from schemas.exceptions import DeliveryError
from schemas.kafka_config import producer_config
from schemas.settings import KafkaSettings
from schemas.topics import INFERENCE_EVENTS, INFERENCE_FEEDBACK

__all__ = ["DriftlineProducer", "Outcome", "Variant", "now_ms"]


class DriftlineProducer:
    """Validate, encode and send Driftline events; thread-safe.

    :param source: your service's name, stamped on every event (``source`` field).
    :param settings: Kafka location and client settings; read from ``DRIFTLINE_KAFKA_*``
        if None.
    :param codec: encoding; from ``DRIFTLINE_SCHEMA_REGISTRY_*`` if None.
    :param extra_config: librdkafka properties on top of the shared producer config.
    """

    def __init__(
        self,
        source: str,
        settings: KafkaSettings | None = None,
        *,
        codec: Codec | None = None,
        extra_config: Mapping[str, str | int | float | bool] | None = None,
    ) -> None:
        if not source:
            raise ValueError("source must name the sending service")
        self.source = source
        self.settings = settings or KafkaSettings()
        self.codec = codec or make_codec()
        self.inference_topic = INFERENCE_EVENTS.prefixed(self.settings.topic_prefix).name
        self.feedback_topic = INFERENCE_FEEDBACK.prefixed(self.settings.topic_prefix).name
        self._producer = Producer(producer_config(self.settings, **(extra_config or {})))
        self._closed = threading.Event()
        # librdkafka runs delivery callbacks only inside poll(); this thread polls so that
        # futures complete even when the caller sends nothing more.
        self._poller = threading.Thread(target=self._poll, name="driftline-sdk", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.1)

    def send_inference(
        self,
        *,
        model_name: str,
        model_version: str,
        features: Mapping[str, float],
        latency_ms: float,
        prediction: float | str | None = None,
        probabilities: Mapping[str, float] | None = None,
        categorical_features: Mapping[str, str] | None = None,
        variant: Variant = "baseline",
        outcome: Outcome = "ok",
        error_type: str | None = None,
        request_id: str | None = None,
        event_id: str | None = None,
        event_time_ms: int | None = None,
        entity_id: str | None = None,
        trace_id: str | None = None,
    ) -> Future[Message]:
        """Send one prediction as an InferenceEvent (keyed by model name).

        Ids default to fresh UUIDs and the event time to now.

        :raises RecordValidationError: a field is wrong (e.g. a NaN feature); nothing sent.
        """
        event = inference_event(
            source=self.source,
            model_name=model_name,
            model_version=model_version,
            latency_ms=latency_ms,
            features=features,
            prediction=prediction,
            probabilities=probabilities,
            categorical_features=categorical_features,
            variant=variant,
            outcome=outcome,
            error_type=error_type,
            request_id=request_id,
            event_id=event_id,
            event_time_ms=event_time_ms,
            entity_id=entity_id,
            trace_id=trace_id,
        )
        return self.send(INFERENCE_EVENT, event, key=model_name)

    def send_feedback(
        self,
        *,
        request_id: str,
        model_name: str,
        label: float | str,
        model_version: str | None = None,
        feedback_id: str | None = None,
        event_time_ms: int | None = None,
    ) -> Future[Message]:
        """Send the ground truth of an earlier prediction (keyed by request id)."""
        feedback = {
            "feedback_id": feedback_id or str(uuid.uuid4()),
            "request_id": request_id,
            "model_name": model_name,
            "model_version": model_version,
            "label": label,
            "event_time": now_ms() if event_time_ms is None else event_time_ms,
            "source": self.source,
        }
        return self.send(FEEDBACK_EVENT, feedback, key=request_id)

    def send(self, record_type: str, record: Mapping[str, Any], key: str) -> Future[Message]:
        """Validate, encode and queue any record to the topic that carries its type."""
        if self._closed.is_set():
            raise DeliveryError("producer is closed")
        if record_type not in (INFERENCE_EVENT, FEEDBACK_EVENT):
            raise ValueError(f"the SDK sends InferenceEvent and FeedbackEvent, not {record_type}")
        topic = self.inference_topic if record_type == INFERENCE_EVENT else self.feedback_topic
        value = self.codec.encode(record_type, record)  # validates first
        future: Future[Message] = Future()
        future.set_running_or_notify_cancel()

        def delivered(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                future.set_exception(DeliveryError(f"{record_type} to {topic} failed: {err}"))
            else:
                future.set_result(msg)

        while True:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=delivered)
                return future
            except BufferError:
                time.sleep(0.01)  # local queue full: the poller thread is draining it

    def flush(self, timeout_s: float = 30.0) -> int:
        """Wait for queued records; return how many are still undelivered."""
        return int(self._producer.flush(timeout_s))

    def close(self, timeout_s: float = 30.0) -> None:
        """Flush, stop the poller, and raise if records remain undelivered.

        :raises DeliveryError: records still in flight after ``timeout_s``.
        """
        if self._closed.is_set():
            return
        remaining = self.flush(timeout_s)
        self._closed.set()
        self._poller.join()
        if remaining:
            raise DeliveryError(f"{remaining} records not delivered within {timeout_s} s")

    def __enter__(self) -> DriftlineProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
