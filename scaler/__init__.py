"""Ebbtide scaler: the pure planner, safety and bitrate rules, the replay simulator, costing,
and the adapters (Kubernetes, scheduler, metrics) and CLI at the edges."""
