"""Scoring a triple with several metrics in one convention, and what each metric means for ranking."""
import math
from typing import Dict, List, Sequence

from basicsr.metrics.base import CONVENTIONS, METRICS, check_convention
from basicsr.metrics.image import ArrayLike, check_triple
from basicsr.utils.errors import OptionError

#: Each convention's default metrics: the table its toolkit prints.
DEFAULT_METRICS: Dict[str, List[str]] = {
    'tang': ['EN', 'SD', 'SF', 'AG', 'MI', 'MSE', 'PSNR', 'CC', 'SCD', 'VIF', 'Qabf'],
    'cddfuse': ['EN', 'SD', 'SF', 'AG', 'MI', 'CC', 'PSNR', 'SCD', 'VIF', 'Qabf', 'SSIM'],
    'vifb': ['CE', 'EN', 'MI', 'PSNR', 'Qabf', 'Qcb', 'Qcv', 'RMSE', 'SSIM', 'SD', 'SF', 'AG', 'EI'],
}

#: The order tables list the metrics in; a metric registered elsewhere follows these.
TABLE_ORDER: List[str] = ['EN', 'SD', 'SF', 'AG', 'MI', 'MSE', 'PSNR', 'CC', 'SCD', 'VIF', 'Qabf', 'Nabf',
                          'SSIM', 'MS_SSIM', 'VIFF', 'FMI_pixel', 'FMI_dct', 'Qcb', 'Qcv', 'CE', 'EI', 'RMSE']


def metric_names() -> List[str]:
    """Every registered metric, in table order.

    Example:
        >>> metric_names()[:4]
        ['EN', 'SD', 'SF', 'AG']
    """
    return [name for name in TABLE_ORDER if name in METRICS] + [name for name in METRICS if name not in TABLE_ORDER]


def check_metric_names(names: Sequence[str]) -> List[str]:
    """Return ``names`` as a list if every name is a known metric.

    Raises:
        OptionError: an unknown name (the message lists the known ones).
    """
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise OptionError(f"unknown metric(s) {', '.join(unknown)}; known metrics: {', '.join(metric_names())}")
    return list(names)


def is_available(name: str, convention: str) -> bool:
    """Whether metric ``name`` is defined in ``convention`` (e.g. ``is_available('VIF', 'vifb')`` is False)."""
    return check_convention(convention) in METRICS[check_metric_names([name])[0]].conventions


def available_metrics(convention: str) -> List[str]:
    """The metrics defined in ``convention``, in table order."""
    return [name for name in metric_names() if is_available(name, convention)]


def higher_is_better(name: str) -> bool:
    """Whether a larger value of metric ``name`` means a better fusion.

    False for the error, artifact and distortion measures MSE, RMSE, Nabf, Qcv and CE.

    Raises:
        OptionError: unknown metric name.
    """
    return METRICS[check_metric_names([name])[0]].higher_is_better


def calculate_metrics(ir: ArrayLike, vi: ArrayLike, fused: ArrayLike, names: Sequence[str],
                      convention: str = 'tang') -> Dict[str, float]:
    """Score one fused image against its infrared and visible sources.

    Args:
        ir, vi, fused: (H, W) gray or (H, W, 3) RGB images of one size, uint8 or 0-255 floats
            (numpy arrays or tensors); colour is converted with the ITU-R 601 weights and rounded.
        names: metric names, e.g. ``DEFAULT_METRICS['tang']``.
        convention: ``'tang'`` (default), ``'cddfuse'`` or ``'vifb'``: whose toolkit the numbers
            reproduce.

    Returns:
        dict name -> value, in the order of ``names``. A metric that the convention's toolkit does
        not define is ``float('nan')``.

    Raises:
        OptionError: unknown convention or metric name.
        InputError: the sizes differ or an image is under 48x48.

    Example:
        >>> import numpy as np
        >>> img = (np.indices((64, 64)).sum(0) * 37 % 251).astype(np.uint8)
        >>> calculate_metrics(img, img, img, ['SSIM', 'VIF'], convention='vifb')
        {'SSIM': 2.0, 'VIF': nan}
    """
    check_convention(convention)
    names = check_metric_names(names)
    ir, vi, fused = check_triple(ir, vi, fused)
    return {name: METRICS[name].func(ir, vi, fused, convention) if convention in METRICS[name].conventions
            else math.nan for name in names}


__all__ = ['CONVENTIONS', 'DEFAULT_METRICS', 'TABLE_ORDER', 'available_metrics', 'calculate_metrics', 'metric_names',
           'check_metric_names', 'higher_is_better', 'is_available']
