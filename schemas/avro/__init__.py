"""The Avro schemas (``*.avsc``) of every Driftline record, current versions."""
