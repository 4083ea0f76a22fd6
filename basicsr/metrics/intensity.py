"""Metrics of the fused image alone: EN, SD, SF, AG and EI."""
import cv2
import numpy as np

from basicsr.metrics.base import fusion_metric
from basicsr.metrics.filtering import correlate_same, entropy_bits


@fusion_metric('EN')
def entropy(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, convention: str = 'tang') -> float:
    """Entropy (EN), in bits, of the 256-bin grey-level histogram of the fused image.

    Identical in all conventions. A constant image has EN 0.

    Args:
        ir, vi, fused: (H, W) images, uint8 or 0-255 floats (colour is converted to gray);
            only ``fused`` is used.
        convention: ``'tang'``, ``'cddfuse'`` or ``'vifb'``.

    Returns:
        float in [0, 8].

    Raises:
        InputError: sizes differ or an image is under 48x48.

    Example:
        >>> import numpy as np
        >>> img = np.tile(np.arange(64, dtype=np.uint8), (64, 1))
        >>> entropy(img, img, img)
        6.0
    """
    return entropy_bits(np.bincount(fused.ravel(), minlength=256))


@fusion_metric('SD')
def standard_deviation(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, convention: str = 'tang') -> float:
    """Standard deviation (SD) of the fused image: the population std on the 0-255 scale.

    Identical in all conventions (the cddfuse evaluator computes it in float32). Constant image: 0.

    Example:
        >>> import numpy as np
        >>> img = np.tile(np.array([0, 10], np.uint8), (64, 32))
        >>> standard_deviation(img, img, img)
        5.0
    """
    return float(np.std(fused, dtype=np.float64))


@fusion_metric('SF')
def spatial_frequency(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, convention: str = 'tang') -> float:
    """Spatial frequency (SF): the RMS of the horizontal and vertical first differences of the fused image.

    ``tang``/``cddfuse``: sqrt(mean(dx^2) + mean(dy^2)), each mean over its own number of differences.
    ``vifb``: sqrt((sum(dx^2) + sum(dy^2)) / (M N)). Constant image: 0.

    Example:
        >>> import numpy as np
        >>> img = np.tile(np.array([0, 3], np.uint8), (64, 32))
        >>> spatial_frequency(img, img, img)
        3.0
    """
    f = fused.astype(np.float64)
    row_sq = np.square(np.diff(f, axis=1))
    col_sq = np.square(np.diff(f, axis=0))
    if convention == 'vifb':
        return float(np.sqrt((row_sq.sum() + col_sq.sum()) / f.size))
    return float(np.sqrt(row_sq.mean() + col_sq.mean()))


@fusion_metric('AG')
def average_gradient(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, convention: str = 'tang') -> float:
    """Average gradient (AG) of the fused image.

    Gradients as MATLAB ``gradient`` (central differences inside, one-sided at the border); the
    per-pixel value sqrt((gx^2 + gy^2) / 2) is summed and divided by (M-1)(N-1) in ``tang`` and
    ``vifb``, by M N (a plain mean) in ``cddfuse``. Constant image: 0.

    Example:
        >>> import numpy as np
        >>> img = np.tile(np.arange(0, 128, 2, dtype=np.uint8), (64, 1))
        >>> round(average_gradient(img, img, img, convention='cddfuse'), 6)
        1.414214
    """
    gy, gx = np.gradient(fused.astype(np.float64))
    total = np.sqrt((gx * gx + gy * gy) / 2.0).sum()
    rows, cols = fused.shape
    return float(total / (rows * cols if convention == 'cddfuse' else (rows - 1) * (cols - 1)))


# MATLAB fspecial('sobel'); imfilter correlates, so no flip.
_SOBEL_Y = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], dtype=np.float64)


@fusion_metric('EI', conventions=('vifb',))
def edge_intensity(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, convention: str = 'vifb') -> float:
    """Edge intensity (EI): mean Sobel gradient magnitude of the fused image (replicated border).

    Defined in ``vifb`` only. Constant image: 0.

    Example:
        >>> import numpy as np
        >>> img = np.full((64, 64), 7, np.uint8)
        >>> edge_intensity(img, img, img, convention='vifb')
        0.0
    """
    f = fused.astype(np.float64)
    gx = correlate_same(f, _SOBEL_Y, cv2.BORDER_REPLICATE)
    gy = correlate_same(f, np.ascontiguousarray(_SOBEL_Y.T), cv2.BORDER_REPLICATE)
    return float(np.sqrt(gx * gx + gy * gy).mean())
