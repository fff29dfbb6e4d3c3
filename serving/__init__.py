"""Serving: the ``/predict`` API, model loading, variant routing, event publishing."""
