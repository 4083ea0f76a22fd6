"""Fusion quality metrics reproducing the community's toolkits (see docs/metrics.md).

Importing this package registers every metric in ``METRIC_REGISTRY`` under its published name
(``EN``, ``MI``, ``Qabf`` ...); each is a function ``metric(ir, vi, fused, convention='tang')``.
"""
from basicsr.metrics import edges, fmi, information, intensity, perceptual, similarity, ssim, vif  # noqa: F401
from basicsr.metrics.base import CONVENTIONS, METRICS, MetricUnavailableError
from basicsr.metrics.conventions import (DEFAULT_METRICS, METRIC_NAMES, available_metrics, calculate_metrics,
                                         check_metric_names, higher_is_better, is_available)
from basicsr.metrics.image import check_triple, read_gray_uint8, to_gray_uint8

__all__ = ['CONVENTIONS', 'DEFAULT_METRICS', 'METRICS', 'METRIC_NAMES', 'MetricUnavailableError',
           'available_metrics', 'calculate_metrics', 'check_metric_names', 'check_triple', 'higher_is_better',
           'is_available', 'read_gray_uint8', 'to_gray_uint8']
