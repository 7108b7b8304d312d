"""Ebbtide forecaster: history from Prometheus, the event calendar, the ebb-aware Prophet model,
baselines, backtests and the trust gate. Depends on `policies` only (never on `scaler`)."""
