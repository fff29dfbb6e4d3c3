"""Retraining: retrain consumer, MLflow runs, validation gate, canary rollouts."""
