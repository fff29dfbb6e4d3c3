"""Publishing: every /predict request and its answer become one InferenceEvent on Kafka.

- :mod:`serving.publishing.events` builds the record,
- :mod:`serving.publishing.spool` keeps events on disk while the broker is away,
- :mod:`serving.publishing.publisher` sends them without ever holding a request.
"""

from serving.publishing.events import SOURCE, inference_event
from serving.publishing.publisher import EventPublisher, PublisherStats
from serving.publishing.spool import DiskSpool

__all__ = ["SOURCE", "DiskSpool", "EventPublisher", "PublisherStats", "inference_event"]
