"""Edge-information transfer metrics of Xydeas & Petrovic: Qabf, and Kumar's fusion-artifact Nabf."""
from typing import Tuple

import cv2
import numpy as np

from basicsr.metrics.base import fusion_metric
from basicsr.metrics.filtering import convolve_same, correlate_same

_HALF_PI = np.pi / 2.0

# Qabf (Xydeas & Petrovic 2000): MATLAB conv2 with these, zero border.
_QABF_SOBEL_Y = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], dtype=np.float64)
_QABF_SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)
_QABF_GAIN, _QABF_SLOPE, _QABF_SHIFT = 0.9994, -15.0, 0.5
_QABF_ANGLE_GAIN, _QABF_ANGLE_SLOPE, _QABF_ANGLE_SHIFT = 0.9879, -22.0, 0.8

# Nabf (Kumar 2013): Sobel / 8 on a mirrored border, Petrovic's sigmoid parameters.
_NABF_SOBEL_V = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64) / 8.0
_NABF_SOBEL_H = np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=np.float64) / 8.0
_NABF_THRESHOLD, _NABF_MIN_WEIGHT, _NABF_EXPONENT = 2.0, 0.001, 1.5
_NABF_GAIN, _NABF_SLOPE, _NABF_SHIFT = 0.9999, 19.0, 0.5
_NABF_ANGLE_GAIN, _NABF_ANGLE_SLOPE, _NABF_ANGLE_SHIFT = 0.9995, 22.0, 0.5

# The toolkits feed Qabf different scales, which matters through the rule below that sets
# G = g_F where g_A == g_F: tang and cddfuse 0-255, VIFB 255 * (0-255).
_QABF_SCALE = {'tang': 1.0, 'cddfuse': 1.0, 'vifb': 255.0}


def _qabf_edges(image: np.ndarray, scale: float) -> Tuple[np.ndarray, np.ndarray]:
    sx = convolve_same(image, _QABF_SOBEL_X * scale)
    sy = convolve_same(image, _QABF_SOBEL_Y * scale)
    strength = np.sqrt(sx * sx + sy * sy)
    with np.errstate(divide='ignore', invalid='ignore'):
        angle = np.where(sx == 0, _HALF_PI, np.arctan(sy / sx))
    return strength, angle


def _qabf_preservation(g_src: np.ndarray, a_src: np.ndarray, g_f: np.ndarray, a_f: np.ndarray) -> np.ndarray:
    with np.errstate(divide='ignore', invalid='ignore'):
        # The reference code's relative strength: the smaller over the larger, but g_F itself
        # where the two are equal.
        relative = np.where(g_src > g_f, g_f / g_src, np.where(g_src == g_f, g_f, g_src / g_f))
    orientation = 1.0 - np.abs(a_src - a_f) / _HALF_PI
    q_g = _QABF_GAIN / (1.0 + np.exp(_QABF_SLOPE * (relative - _QABF_SHIFT)))
    q_a = _QABF_ANGLE_GAIN / (1.0 + np.exp(_QABF_ANGLE_SLOPE * (orientation - _QABF_ANGLE_SHIFT)))
    return q_g * q_a


@fusion_metric('Qabf')
def qabf(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, convention: str = 'tang') -> float:
    """Qabf (Xydeas & Petrovic 2000): edge information transferred from the sources to the fused image.

    Sobel gradients (MATLAB ``conv2``, 'same', zero border) give edge strength g and orientation
    atan(Sy / Sx) (pi/2 where Sx = 0); per source, sigmoids of the relative strength
    (0.9994, -15, 0.5) and of the orientation agreement (0.9879, -22, 0.8) are multiplied and
    averaged with weights g_A, g_B. As in all three reference codes, the relative strength is g_F
    (not 1) where g_A == g_F; since that depends on the input scale, ``tang`` and ``cddfuse`` use
    0-255 and ``vifb`` 255 x 0-255, as those toolkits do. Sources without any edge give 0.

    Args:
        ir, vi, fused: (H, W) images, uint8 or 0-255 floats (colour is converted to gray).
        convention: ``'tang'``, ``'cddfuse'`` or ``'vifb'``.

    Returns:
        float in [0, 1).

    Raises:
        InputError: sizes differ or an image is under 48x48.

    Example:
        >>> import numpy as np
        >>> img = np.zeros((64, 64), np.uint8); img[:, 32:] = 200
        >>> round(qabf(img, img, img), 4)
        0.9753
    """
    scale = _QABF_SCALE[convention]
    g_a, a_a = _qabf_edges(ir, scale)
    g_b, a_b = _qabf_edges(vi, scale)
    g_f, a_f = _qabf_edges(fused, scale)
    weight = np.sum(g_a) + np.sum(g_b)
    if weight == 0:
        return 0.0
    return float(np.sum(_qabf_preservation(g_a, a_a, g_f, a_f) * g_a
                        + _qabf_preservation(g_b, a_b, g_f, a_f) * g_b) / weight)


def _nabf_edges(image: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    gv = correlate_same(image, _NABF_SOBEL_V, cv2.BORDER_REFLECT_101)
    gh = correlate_same(image, _NABF_SOBEL_H, cv2.BORDER_REFLECT_101)
    strength = np.sqrt(gh * gh + gv * gv)
    with np.errstate(divide='ignore', invalid='ignore'):
        # atan(gv / 0) is +-pi/2 in MATLAB; the sign does not change |(|aA - aF| - pi/2)| below.
        angle = np.where((gv == 0) & (gh == 0), 0.0, np.arctan(gv / gh))
    return strength, angle


def _nabf_preservation(g_src, a_src, g_f, a_f) -> np.ndarray:
    with np.errstate(divide='ignore', invalid='ignore'):
        relative = np.where((g_src == 0) | (g_f == 0), 0.0,
                            np.where(g_src > g_f, g_f / g_src, g_src / g_f))
    orientation = np.abs(np.abs(a_src - a_f) - _HALF_PI) / _HALF_PI
    q_g = _NABF_GAIN / (1.0 + np.exp(-_NABF_SLOPE * (relative - _NABF_SHIFT)))
    q_a = _NABF_ANGLE_GAIN / (1.0 + np.exp(-_NABF_ANGLE_SLOPE * (orientation - _NABF_ANGLE_SHIFT)))
    return np.sqrt(q_g * q_a)


def kumar_nabf(fused: np.ndarray, source_a: np.ndarray, source_b: np.ndarray) -> float:
    """Kumar's modified fusion-artifact measure of 0-255 images (uint8 or float) in the argument
    order of his ``objective_fusion_perform_fn(f, I1, I2)``; see :func:`nabf`."""
    g_a, a_a = _nabf_edges(source_a)
    g_b, a_b = _nabf_edges(source_b)
    g_f, a_f = _nabf_edges(fused)
    w_a = np.where(g_a >= _NABF_THRESHOLD, g_a ** _NABF_EXPONENT, _NABF_MIN_WEIGHT)
    w_b = np.where(g_b >= _NABF_THRESHOLD, g_b ** _NABF_EXPONENT, _NABF_MIN_WEIGHT)
    artifact = (g_f > g_a) & (g_f > g_b)
    loss = ((1.0 - _nabf_preservation(g_a, a_a, g_f, a_f)) * w_a
            + (1.0 - _nabf_preservation(g_b, a_b, g_f, a_f)) * w_b)
    return float(np.sum(loss[artifact]) / np.sum(w_a + w_b))


@fusion_metric('Nabf', higher_is_better=False)
def nabf(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, convention: str = 'tang') -> float:
    """Nabf: Kumar's modified fusion-artifact measure (noise or artifacts added by fusion).

    Sobel / 8 gradients on a mirrored border; where the fused edge is stronger than both sources',
    the edge-preservation loss (1 - Q) is summed with weights g^1.5 (g >= 2, else 0.001) and
    normalised by the total weight.

    ``cddfuse`` and ``vifb`` (which define no Nabf) use Kumar's own argument order on 0-255
    images, Nabf(F; IR, VI). ``tang`` reproduces the toolkit's tables, which call Kumar's function
    with the infrared image in the fused image's slot, i.e. Nabf(IR; VI, F): compare a ``tang``
    Nabf only with tables made by that toolkit. Lower is better; always defined.

    Example:
        >>> import numpy as np
        >>> img = np.zeros((64, 64), np.uint8); img[:, 32:] = 200
        >>> nabf(img, img, img, convention='cddfuse')
        0.0
    """
    return kumar_nabf(ir, vi, fused) if convention == 'tang' else kumar_nabf(fused, ir, vi)
