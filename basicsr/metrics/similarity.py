"""Pixel-wise comparisons of the fused image with its sources: MSE, RMSE, PSNR, CC and SCD."""
import math

import numpy as np

from basicsr.metrics.base import fusion_metric


# 8-bit data make every sum below an exact integer: the moments are accumulated in int64 and
# combined as Python integers, so the results carry a single rounding.


def _flat_int(*images: np.ndarray):
    return [image.ravel().astype(np.int64) for image in images]


def _squared_error_sums(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray):
    a, b, f = _flat_int(ir, vi, fused)
    return int(np.dot(a - f, a - f)), int(np.dot(b - f, b - f))


def _mean_squared_errors(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray) -> float:
    sse_a, sse_b = _squared_error_sums(ir, vi, fused)
    return (sse_a + sse_b) / (2 * fused.size)


def _vifb_root_errors(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray) -> float:
    # VIFB's "mse" is sqrt(sum of squared errors) / (M N), averaged over the two sources.
    sse_a, sse_b = _squared_error_sums(ir, vi, fused)
    return (math.sqrt(sse_a) + math.sqrt(sse_b)) / (2.0 * fused.size)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    n, sx, sy = x.size, int(x.sum()), int(y.sum())
    cov = n * int(np.dot(x, y)) - sx * sy
    var_x, var_y = n * int(np.dot(x, x)) - sx * sx, n * int(np.dot(y, y)) - sy * sy
    # A constant image has no linear relation to anything: 0 instead of 0/0.
    return cov / math.sqrt(var_x * var_y) if var_x and var_y else 0.0


def _psnr_db(peak: float, mse: float) -> float:
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse) if peak > 0 else -math.inf


@fusion_metric('MSE', conventions=('tang', 'cddfuse'), higher_is_better=False)
def mean_squared_error(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, convention: str = 'tang') -> float:
    """Mean squared error (MSE) of the fused image to each source, averaged over the two sources.

    ``tang``: on the [0, 1] scale; ``cddfuse``: on the [0, 255] scale (65025 times larger).
    Not defined in ``vifb`` (see RMSE). Identical images: 0.

    Example:
        >>> import numpy as np
        >>> zero, two = np.zeros((64, 64), np.uint8), np.full((64, 64), 2, np.uint8)
        >>> mean_squared_error(zero, two, zero, convention='cddfuse')
        2.0
    """
    mse = _mean_squared_errors(ir, vi, fused)
    return mse / 65025.0 if convention == 'tang' else mse


@fusion_metric('RMSE', conventions=('vifb',), higher_is_better=False)
def root_mean_squared_error(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, convention: str = 'vifb') -> float:
    """RMSE as coded in VIFB: sqrt(sum of squared errors) / (M N), averaged over the two sources
    (not the textbook RMSE, which divides by sqrt(M N)).

    Defined in ``vifb`` only; lower is better. Identical images: 0.

    Example:
        >>> import numpy as np
        >>> zero, one = np.zeros((64, 64), np.uint8), np.ones((64, 64), np.uint8)
        >>> root_mean_squared_error(one, one, zero, convention='vifb')
        0.015625
    """
    return _vifb_root_errors(ir, vi, fused)


@fusion_metric('PSNR')
def peak_signal_to_noise_ratio(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray,
                               convention: str = 'tang') -> float:
    """Peak signal-to-noise ratio (PSNR), in dB, of the fused image against both sources.

    ``tang``: 20 log10(255 / sqrt(MSE on [0, 1])), i.e. the textbook value + 48.13 dB.
    ``cddfuse``: 10 log10(max(F)^2 / MSE on [0, 255]). ``vifb``: 20 log10(255 / sqrt(R)) with R the
    VIFB RMSE. A fused image equal to both sources gives +inf; an all-black fused image gives
    -inf in ``cddfuse`` (its peak is 0).

    Example:
        >>> import numpy as np
        >>> a, b = np.zeros((64, 64), np.uint8), np.full((64, 64), 255, np.uint8)
        >>> round(peak_signal_to_noise_ratio(a, a, b, convention='cddfuse'), 6)
        0.0
    """
    if convention == 'cddfuse':
        return _psnr_db(float(fused.max()), _mean_squared_errors(ir, vi, fused))
    if convention == 'vifb':
        return _psnr_db(255.0, _vifb_root_errors(ir, vi, fused))
    return _psnr_db(255.0, _mean_squared_errors(ir, vi, fused) / 65025.0)


@fusion_metric('CC', conventions=('tang', 'cddfuse'))
def correlation_coefficient(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, convention: str = 'tang') -> float:
    """Correlation coefficient (CC): the mean of the Pearson correlations r(IR, F) and r(VI, F).

    Same in ``tang`` and ``cddfuse``; not defined in ``vifb``. A pair with a constant image
    contributes 0.

    Example:
        >>> import numpy as np
        >>> img = np.tile(np.arange(64, dtype=np.uint8), (64, 1))
        >>> correlation_coefficient(img, 255 - img, img)
        0.0
    """
    a, b, f = _flat_int(ir, vi, fused)
    return (_pearson(a, f) + _pearson(b, f)) / 2.0


@fusion_metric('SCD', conventions=('tang', 'cddfuse'))
def sum_of_correlations_of_differences(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray,
                                       convention: str = 'tang') -> float:
    """Sum of the correlations of differences (SCD, Aslantas & Bendes 2015):
    r(F - VI, IR) + r(F - IR, VI).

    Same in ``tang`` and ``cddfuse``; not defined in ``vifb``. A term whose images are constant
    contributes 0.

    Example:
        >>> import numpy as np
        >>> ir = np.tile(np.arange(64, dtype=np.uint8), (64, 1))
        >>> vi = np.ascontiguousarray(ir.T)
        >>> round(sum_of_correlations_of_differences(ir, vi, ir // 2 + vi // 2), 3)
        1.413
    """
    a, b, f = _flat_int(ir, vi, fused)
    return _pearson(f - b, a) + _pearson(f - a, b)
