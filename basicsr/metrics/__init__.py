"""Fusion quality metrics reproducing the community's toolkits (see docs/metrics.md).

Importing this package registers every metric in ``METRIC_REGISTRY`` under its published name
(``EN``, ``MI``, ``Qabf`` ...); each is a function ``metric(ir, vi, fused, convention='tang')``.
A new metric is a file ``<idea>_metric.py`` here with a ``@fusion_metric`` function: it is
imported with the package and listed after the toolkits' metrics.
"""
from basicsr.metrics import edges, fmi, information, intensity, perceptual, similarity, ssim, vif  # noqa: F401
from basicsr.metrics.base import CONVENTIONS, METRICS, MetricUnavailableError, fusion_metric
from basicsr.metrics.conventions import (DEFAULT_METRICS, available_metrics, calculate_metrics, check_metric_names,
                                         higher_is_better, is_available, metric_names)
from basicsr.metrics.image import check_triple, read_gray_uint8, to_gray_uint8
from basicsr.utils.auto_import import import_modules

import_modules(__name__, __file__, '_metric')

#: Every metric name, in the order tables list them (those of the package; see metric_names()).
METRIC_NAMES = metric_names()

__all__ = ['CONVENTIONS', 'DEFAULT_METRICS', 'METRICS', 'METRIC_NAMES', 'MetricUnavailableError',
           'available_metrics', 'calculate_metrics', 'check_metric_names', 'check_triple', 'fusion_metric',
           'higher_is_better', 'is_available', 'metric_names', 'read_gray_uint8', 'to_gray_uint8']
