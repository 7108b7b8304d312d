"""Helpers shared by test modules (real components started for tests, data writers)."""
