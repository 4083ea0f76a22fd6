"""Visual information fidelity: VIF (Sheikh & Bovik) and VIFF (Han et al. 2013)."""
from typing import Iterator, List, Tuple

import numpy as np

from basicsr.metrics.base import fusion_metric
from basicsr.metrics.filtering import filter_valid, gaussian_kernel_1d

_EPS = 1e-10
# Han et al. weight the four scales' VID/VIND ratios with these, and model visual noise as 0.005 * 255^2.
_VIFF_SCALE_WEIGHTS = np.array([1.0, 0.0, 0.15, 1.0]) / 2.15
_VIFF_NOISE = 0.005 * 255 * 255
_VIFF_OFFSET = 1e-7


def _taps(scale: int) -> np.ndarray:
    size = 2 ** (5 - scale) + 1
    return gaussian_kernel_1d(size, size / 5.0)


def _pyramid(image: np.ndarray) -> List[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The four scales of an image as (image, local mean, local variance), computed once per
    image and shared by every pair it belongs to."""
    levels = []
    for scale in range(1, 5):
        taps = _taps(scale)
        if scale > 1:
            image = filter_valid(image, taps)[::2, ::2]
        mu = filter_valid(image, taps)
        levels.append((image, mu, np.maximum(filter_valid(image * image, taps) - mu * mu, 0.0)))
    return levels


def _scale_maps(ref_levels, dist_levels) -> Iterator[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield, for the four scales of the pixel-domain VIF, the gain ``g``, the source variance and
    the distortion variance maps.

    The reference sets g = 0 where either variance is under 1e-10 or g < 0, and the source
    variance to 0 where it is under 1e-10; it also overwrites the distortion variance there, but
    every use multiplies that by g^2 = 0, so it is left as max(sigma2^2 - g sigma12, 1e-10).
    """
    for scale, ((ref, mu1, sigma1_sq), (dist, mu2, sigma2_sq)) in enumerate(zip(ref_levels, dist_levels), 1):
        sigma12 = filter_valid(ref * dist, _taps(scale)) - mu1 * mu2
        g = sigma12 / (sigma1_sq + _EPS)
        sv_sq = np.maximum(sigma2_sq - g * sigma12, _EPS)
        flat_ref = sigma1_sq < _EPS
        g[flat_ref | (sigma2_sq < _EPS) | (g < 0)] = 0.0
        yield g, np.where(flat_ref, 0.0, sigma1_sq), sv_sq


def _vif_pair(ref_levels, dist_levels, noise: float = 2.0) -> float:
    num = den = 0.0
    for g, sigma1_sq, sv_sq in _scale_maps(ref_levels, dist_levels):
        num += np.sum(np.log10(1.0 + g * g * sigma1_sq / (sv_sq + noise)))
        den += np.sum(np.log10(1.0 + sigma1_sq / noise))
    # A constant source carries no information: 0/0, defined as 1 (the cddfuse evaluator's value).
    return num / den if den > 0 else 1.0


@fusion_metric('VIF', conventions=('tang', 'cddfuse'))
def visual_information_fidelity(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, convention: str = 'tang') -> float:
    """Visual information fidelity (VIF): Sheikh & Bovik's multi-scale pixel-domain VIF of the fused
    image against each source, summed: VIF(IR, F) + VIF(VI, F).

    Four scales, Gaussian windows of size N = 2^(5-s) + 1 with sigma N/5, 'valid' filtering,
    downsampling by 2, noise variance 2. Same in ``tang`` and ``cddfuse`` (which names it "VIFF",
    though it is not Han's VIFF); not defined in ``vifb``. A constant source makes its term 0/0,
    defined as 1.

    Args:
        ir, vi, fused: (H, W) images, uint8 or 0-255 floats (colour is converted to gray).
        convention: ``'tang'`` or ``'cddfuse'``.

    Returns:
        float >= 0 (2 for a fused image equal to both sources).

    Raises:
        MetricUnavailableError: ``convention='vifb'``.
        InputError: sizes differ or an image is under 48x48.

    Example:
        >>> import numpy as np
        >>> img = (np.indices((64, 64)).sum(0) * 37 % 251).astype(np.uint8)
        >>> round(visual_information_fidelity(img, img, img), 9)
        2.0
    """
    a, b, f = (_pyramid(image.astype(np.float64)) for image in (ir, vi, fused))
    return _vif_pair(a, f) + _vif_pair(b, f)


@fusion_metric('VIFF')
def visual_information_fidelity_for_fusion(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray,
                                           convention: str = 'tang') -> float:
    """VIFF (Han et al. 2013, "A new image fusion performance metric based on visual information
    fidelity"), as in the authors' ``VIFF_Public.m``.

    The VIF scale maps of each source against F are computed with visual noise 0.005 * 255^2; at
    every pixel the source with the smaller gain g is kept; each scale gives
    sum(VID + 1e-7) / sum(VIND + 1e-7) and the scales are weighted [1, 0, 0.15, 1] / 2.15.
    One definition, available in every convention.

    Example:
        >>> import numpy as np
        >>> img = (np.indices((64, 64)).sum(0) * 37 % 251).astype(np.uint8)
        >>> round(visual_information_fidelity_for_fusion(img, img, img), 9)
        1.0
    """
    a, b, f = (_pyramid(image.astype(np.float64)) for image in (ir, vi, fused))
    total = 0.0
    for weight, maps_a, maps_b in zip(_VIFF_SCALE_WEIGHTS, _scale_maps(a, f), _scale_maps(b, f)):
        (g_a, s_a, sv_a), (g_b, s_b, sv_b) = maps_a, maps_b
        use_a = g_a < g_b
        g, sigma1_sq, sv_sq = (np.where(use_a, x, y) for x, y in ((g_a, g_b), (s_a, s_b), (sv_a, sv_b)))
        vid = np.log10(1.0 + g * g * sigma1_sq / (sv_sq + _VIFF_NOISE))
        vind = np.log10(1.0 + sigma1_sq / _VIFF_NOISE)
        total += weight * (np.sum(vid + _VIFF_OFFSET) / np.sum(vind + _VIFF_OFFSET))
    return total
