"""``python -m serving``: the prediction API under uvicorn, on DRIFTLINE_SERVING_HOST:PORT."""

from __future__ import annotations

import logging

import uvicorn

from serving.app import create_app
from serving.settings import ServingSettings


def main() -> None:
    """Run the app until SIGINT/SIGTERM; shutdown flushes pending events."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = ServingSettings()
    # No per-request access log: /metrics counts every request and each one is an event
    # on Kafka already; a log line per prediction would only add work to the request path.
    uvicorn.run(
        create_app(), host=settings.host, port=settings.port, log_level="info", access_log=False
    )


if __name__ == "__main__":
    main()
