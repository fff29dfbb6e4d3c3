"""Contracts shared by every Driftline component.

Everything that crosses a process boundary is declared here: topics, Kafka client
settings, and (later) the Avro schemas and their codec. This package imports nothing
else of Driftline's, so any component may depend on it without creating a cycle.
"""
