"""Ebbtide policies: the YAML that engineers tune, its schema, loading and error reporting.

The bottom layer: imports nothing from `forecaster` or `scaler`, and no I/O client.
"""
