"""A small processor runtime: event-time windows per partition, checkpoints, the Kafka loop.

``windows`` and ``checkpoint`` are pure (no Kafka) and unit-tested with synthetic
events; ``loop`` drives them with a confluent-kafka consumer and producer.
"""
