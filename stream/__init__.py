"""Stream processors: drift and SLO windows, sketches, statistics, alerting."""
