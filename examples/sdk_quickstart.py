"""Send predictions and their labels to Driftline from your own service.

Run against the local stack (``driftline up`` in another shell, then the ``export``
lines it prints)::

    python examples/sdk_quickstart.py

Then watch them arrive with ``driftline topic tail inference.events --from-beginning``.
"""

from __future__ import annotations

import time

from schemas.exceptions import RecordValidationError
from schemas.sdk import DriftlineProducer


def main(events: int = 20) -> None:
    """Send ``events`` predictions of a toy model, one label each, and one bad event."""
    with DriftlineProducer(source="sdk-quickstart") as producer:
        futures = []
        for i in range(events):
            started = time.perf_counter()
            features = {"amount": 1.0 + (i * 37) % 500, "age_days": float((i * 101) % 2000)}
            score = min(1.0, features["amount"] / 500)
            request_id = f"quickstart-{i}"
            futures.append(
                producer.send_inference(
                    model_name="fraud-detector",
                    model_version="1",
                    features=features,
                    prediction=score,
                    probabilities={"fraud": score, "legit": 1 - score},
                    latency_ms=(time.perf_counter() - started) * 1000,
                    request_id=request_id,
                )
            )
            futures.append(
                producer.send_feedback(
                    request_id=request_id, model_name="fraud-detector", label=float(score > 0.5)
                )
            )
        try:
            producer.send_inference(
                model_name="fraud-detector",
                model_version="1",
                features={"amount": float("nan")},
                latency_ms=1.0,
            )
        except RecordValidationError as exc:
            print(f"refused before sending: {exc}")  # noqa: T201
        for future in futures:
            future.result(timeout=30)  # raises DeliveryError if Kafka refused it
    print(f"sent and acknowledged: {len(futures)} records")  # noqa: T201


if __name__ == "__main__":
    main()
