"""Histogram (information-theoretic) metrics: MI and CE."""
import numpy as np

from basicsr.metrics.base import fusion_metric
from basicsr.metrics.filtering import entropy_bits

_LN2 = np.log(2.0)


def _histogram(image: np.ndarray) -> np.ndarray:
    return np.bincount(image.ravel(), minlength=256)


def _joint_histogram(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.bincount(x.ravel().astype(np.int64) * 256 + y.ravel(), minlength=256 * 256)


def _mutual_information_bits(x: np.ndarray, y: np.ndarray) -> float:
    return entropy_bits(_histogram(x)) + entropy_bits(_histogram(y)) - entropy_bits(_joint_histogram(x, y))


def _tang_pair(source: np.ndarray, fused: np.ndarray) -> float:
    # The toolkit's joint histogram indexes uint8 values + 1, which saturates at 255: grey
    # levels 254 and 255 share a joint bin while the marginal entropies keep them apart.
    joint = _joint_histogram(np.minimum(fused, 254), np.minimum(source, 254))
    return entropy_bits(_histogram(source)) + entropy_bits(_histogram(fused)) - entropy_bits(joint)


def _vifb_levels(image: np.ndarray) -> np.ndarray:
    # VIFB stretches each image to [0, 255] and rounds half away from zero (MATLAB int16).
    lo, hi = int(image.min()), int(image.max())
    if lo == hi:
        return np.zeros_like(image)
    stretched = (image.astype(np.float64) - lo) / (hi - lo) * 255.0
    return np.floor(stretched + 0.5).astype(np.uint8)


@fusion_metric('MI')
def mutual_information(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, convention: str = 'tang') -> float:
    """Mutual information (MI) of the fused image with each source, summed: MI(IR, F) + MI(VI, F).

    ``tang``: in bits, from 256-bin histograms, except that the toolkit's joint histogram merges grey
    levels 254 and 255. ``cddfuse`` (scikit-learn ``mutual_info_score``): in nats. ``vifb``: in nats
    after stretching each image to [0, 255] (equal to ``cddfuse`` for 8-bit images). A constant
    image shares no information: MI 0.

    Args:
        ir, vi, fused: (H, W) images, uint8 or 0-255 floats (colour is converted to gray).
        convention: ``'tang'``, ``'cddfuse'`` or ``'vifb'``.

    Returns:
        float >= 0 (up to about 16 bits).

    Raises:
        InputError: sizes differ or an image is under 48x48.

    Example:
        >>> import math
        >>> import numpy as np
        >>> img = np.tile(np.arange(64, dtype=np.uint8), (64, 1))
        >>> round(mutual_information(img, img, img, convention='cddfuse') / math.log(2), 12)
        12.0
    """
    if convention == 'tang':
        return _tang_pair(ir, fused) + _tang_pair(vi, fused)
    if convention == 'vifb':
        ir, vi, fused = _vifb_levels(ir), _vifb_levels(vi), _vifb_levels(fused)
    return (_mutual_information_bits(ir, fused) + _mutual_information_bits(vi, fused)) * _LN2


def _cross_entropy_bits(source: np.ndarray, fused: np.ndarray) -> float:
    p_source, p_fused = _histogram(source) / source.size, _histogram(fused) / fused.size
    both = (p_source > 0) & (p_fused > 0)
    return float(np.sum(p_source[both] * np.log2(p_source[both] / p_fused[both])))


@fusion_metric('CE', conventions=('vifb',), higher_is_better=False)
def cross_entropy(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, convention: str = 'vifb') -> float:
    """Cross entropy (CE, as coded in VIFB): the mean over both sources of
    sum p_S log2(p_S / p_F) over the grey levels present in both histograms.

    Defined in ``vifb`` only; lower is better. Identical histograms give 0.

    Example:
        >>> import numpy as np
        >>> img = np.tile(np.arange(64, dtype=np.uint8), (64, 1))
        >>> cross_entropy(img, img, img, convention='vifb')
        0.0
    """
    return (_cross_entropy_bits(vi, fused) + _cross_entropy_bits(ir, fused)) / 2.0
