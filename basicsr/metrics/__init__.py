"""Fusion quality metrics (registered in METRIC_REGISTRY)."""
