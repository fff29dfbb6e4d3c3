"""In-stream alerting: DriftScores and SloWindows in, Alertmanager alerts and retrain requests out.

``rules`` reads the one rules file, ``evaluator`` is the pure state machine (pending,
firing, hysteresis), ``alerts`` shapes its transitions into Alertmanager payloads, Alert
records and RetrainRequests, ``sender`` posts to Alertmanager off the processing path,
``loop`` is the Kafka side and ``app`` assembles it from settings.
"""
