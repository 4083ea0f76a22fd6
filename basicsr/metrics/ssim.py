"""Structural similarity: SSIM in each toolkit's variant, and the multi-exposure-fusion MS-SSIM of Ma et al."""
import cv2
import numpy as np

from basicsr.metrics.base import fusion_metric
from basicsr.metrics.filtering import filter_valid, gaussian_kernel_1d, separable_filter

_GAUSS_11 = gaussian_kernel_1d(11, 1.5)
_BOX_7 = np.full(7, 1.0 / 7.0)
_ONE_TAP = np.ones(1)


def _wang_ssim_map(x: np.ndarray, y: np.ndarray, filt, c1: float, c2: float) -> np.ndarray:
    mu_x, mu_y = filt(x), filt(y)
    var_x = filt(x * x) - mu_x * mu_x
    var_y = filt(y * y) - mu_y * mu_y
    cov = filt(x * y) - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2))


def _vifb_ssim(x: np.ndarray, y: np.ndarray) -> float:
    # Wang et al.'s reference: 11x11 Gaussian (sigma 1.5), 'valid' statistics, L = 255.
    return float(_wang_ssim_map(x, y, lambda img: filter_valid(img, _GAUSS_11), (0.01 * 255) ** 2,
                                (0.03 * 255) ** 2).mean())


def _matlab_ssim(x: np.ndarray, y: np.ndarray) -> float:
    # MATLAB's built-in ssim on im2double images: Gaussian sigma 1.5 (11 taps), replicated
    # border, dynamic range 1, mean over the whole map.
    x, y = x / 255.0, y / 255.0
    filt = lambda img: separable_filter(img, _GAUSS_11, cv2.BORDER_REPLICATE)  # noqa: E731
    return float(_wang_ssim_map(x, y, filt, 0.01 ** 2, 0.03 ** 2).mean())


def _box7_float32(image: np.ndarray) -> np.ndarray:
    # scipy.ndimage.uniform_filter on float32: each 1-D pass (along rows first) sums in double
    # and stores float32.
    rows = cv2.sepFilter2D(image, cv2.CV_64F, _ONE_TAP, _BOX_7).astype(np.float32)
    return cv2.sepFilter2D(rows, cv2.CV_64F, _BOX_7, _ONE_TAP).astype(np.float32)


def _skimage_ssim_float32(fused: np.ndarray, sources) -> float:
    # scikit-image 0.19 structural_similarity(F, S) on float32 0-255 images with its defaults:
    # 7x7 uniform window, sample covariance, data_range 2 (the float dtype's range), the map's
    # 3-pixel border cropped, summed over the sources. The float32 arithmetic is kept because in
    # flat regions it, not the data, decides the map's value.
    f = fused.astype(np.float32)
    cov_norm = np.float32(49.0 / 48.0)
    c1, c2 = np.float32((0.01 * 2) ** 2), np.float32((0.03 * 2) ** 2)
    uf, uff = _box7_float32(f), _box7_float32(f * f)
    total = np.float32(0.0)
    for source in sources:
        s = source.astype(np.float32)
        us, uss, ufs = _box7_float32(s), _box7_float32(s * s), _box7_float32(f * s)
        vf = cov_norm * (uff - uf * uf)
        vs = cov_norm * (uss - us * us)
        vfs = cov_norm * (ufs - uf * us)
        a1, a2 = 2 * uf * us + c1, 2 * vfs + c2
        b1, b2 = uf ** 2 + us ** 2 + c1, vf + vs + c2
        total += ((a1 * a2) / (b1 * b2))[3:-3, 3:-3].mean()
    return float(total)


@fusion_metric('SSIM')
def ssim(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, convention: str = 'tang') -> float:
    """Structural similarity (SSIM) of the fused image with each source, summed: SSIM(IR, F) + SSIM(VI, F).

    ``tang``: MATLAB's built-in ``ssim`` on [0, 1] images (Gaussian sigma 1.5, replicated border,
    mean over the full map); no toolkit-computed reference value exists for it (see
    docs/metrics.md). ``cddfuse``: scikit-image 0.19 defaults on float32 0-255 data (7x7 uniform
    window, sample covariance, data_range 2, so the stabilising constants are negligible),
    reproduced in float32. ``vifb``: Wang et al.'s 11x11 Gaussian window, L = 255, 'valid'.
    Always defined (the constants keep the denominators positive).

    Args:
        ir, vi, fused: (H, W) images, uint8 or 0-255 floats (colour is converted to gray).
        convention: ``'tang'``, ``'cddfuse'`` or ``'vifb'``.

    Returns:
        float in [-2, 2] (2 for a fused image equal to both sources).

    Raises:
        InputError: sizes differ or an image is under 48x48.

    Example:
        >>> import numpy as np
        >>> img = (np.indices((64, 64)).sum(0) * 37 % 251).astype(np.uint8)
        >>> round(ssim(img, img, img, convention='vifb'), 12)
        2.0
    """
    a, b, f = (image.astype(np.float64) for image in (ir, vi, fused))
    if convention == 'cddfuse':
        return _skimage_ssim_float32(fused, (ir, vi))
    if convention == 'vifb':
        return _vifb_ssim(b, f) + _vifb_ssim(a, f)
    return _matlab_ssim(f, a) + _matlab_ssim(f, b)


# Ma et al. 2015 (MEF-SSIM): 11x11 box for the patch statistics, 11x11 Gaussian for the SSIM terms.
_MEF_WINDOW = 11
_MEF_BOX = np.full(_MEF_WINDOW, 1.0 / _MEF_WINDOW)
_MEF_C = (0.03 * 255) ** 2
_MEF_LEVEL_WEIGHTS = np.array([0.0448, 0.2856, 0.3001]) / (0.0448 + 0.2856 + 0.3001)
_MEF_EPS = np.finfo(np.float64).eps
# Box variances of 8-bit data (or its 2x2 means) are either 0 or above 1e-5; anything smaller is
# the rounding of E[x^2] - E[x]^2 and is set to 0, as the reference's direct sums give.
_MEF_ZERO_VARIANCE = 1e-8


def _box(image: np.ndarray) -> np.ndarray:
    return filter_valid(image, _MEF_BOX)


def _gauss(image: np.ndarray) -> np.ndarray:
    return filter_valid(image, _GAUSS_11)


def _snap(variance: np.ndarray) -> np.ndarray:
    return np.where(variance < _MEF_ZERO_VARIANCE, 0.0, variance)


def _mef_ssim_level(sources, fused: np.ndarray) -> float:
    """One scale of Ma et al.'s MEF-SSIM, with the reference's per-patch loops written as filters.

    The reference builds, per patch, a desired patch r = s * sum_k c_k (x_k - mu_k) (c_k its
    structure weights over the contrast ed_k, s rescaling it to the largest contrast) and
    compares r with the fused patch; r's Gaussian-weighted statistics follow from the sources'
    covariances, so no patch is materialised.
    """
    n = _MEF_WINDOW * _MEF_WINDOW
    mu = [_box(x) for x in sources]
    box_cov = [[_snap(_box(x * y) - mx * my) if i == j else _box(x * y) - mx * my
                for j, (y, my) in enumerate(zip(sources, mu))] for i, (x, mx) in enumerate(zip(sources, mu))]
    contrast = [np.sqrt(n * box_cov[k][k]) + 0.001 for k in range(len(sources))]

    total = sum(sources)
    spread = np.sqrt(n * _snap(_box(total * total) - _box(total) ** 2))
    consistency = (spread + _MEF_EPS) / (sum(np.sqrt(n * box_cov[k][k]) for k in range(len(sources))) + _MEF_EPS)
    consistency = np.clip(np.where(consistency > 1, 1 - _MEF_EPS, consistency), _MEF_EPS, None)
    power = np.minimum(np.tan(np.pi / 2 * consistency), 10.0)
    weights = [(ed / _MEF_WINDOW) ** power + _MEF_EPS for ed in contrast]
    coeff = [w / sum(weights) / ed for w, ed in zip(weights, contrast)]

    norm_sq = n * sum(coeff[i] * coeff[j] * box_cov[i][j] for i in range(len(sources)) for j in range(len(sources)))
    norm_sq = np.where(norm_sq < _MEF_ZERO_VARIANCE, 0.0, norm_sq)
    with np.errstate(divide='ignore'):
        scale = np.where(norm_sq > 0, np.maximum.reduce(contrast) / np.sqrt(norm_sq), 1.0)

    g_mu = [_gauss(x) for x in sources]
    g_f = _gauss(fused)
    g_cov = [[_gauss(x * y) - gx * gy for y, gy in zip(sources, g_mu)] for x, gx in zip(sources, g_mu)]
    var_r = scale * scale * sum(coeff[i] * coeff[j] * g_cov[i][j]
                                for i in range(len(sources)) for j in range(len(sources)))
    cov_rf = scale * sum(c * (_gauss(x * fused) - gx * g_f) for c, x, gx in zip(coeff, sources, g_mu))
    var_f = _gauss(fused * fused) - g_f * g_f
    return float(((2 * cov_rf + _MEF_C) / (var_r + var_f + _MEF_C)).mean())


def _halve(image: np.ndarray) -> np.ndarray:
    # imfilter(x, ones(2)/4, 'symmetric', 'same') then every other pixel: means of 2x2 blocks,
    # the last row/column repeated for odd sizes.
    padded = np.pad(image, ((0, image.shape[0] % 2), (0, image.shape[1] % 2)), mode='edge')
    return (padded[0::2, 0::2] + padded[1::2, 0::2] + padded[0::2, 1::2] + padded[1::2, 1::2]) / 4.0


@fusion_metric('MS_SSIM', conventions=('tang',))
def ms_ssim(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, convention: str = 'tang') -> float:
    """MS-SSIM as in the ``tang`` toolkit: the multi-exposure-fusion MEF-SSIM of Ma, Zeng & Wang (2015),
    ``analysis_ms_ssim`` with its defaults (3 levels, weights 0.0448, 0.2856, 0.3001 normalised,
    K = 0.03, 11x11 Gaussian window sigma 1.5, 2x2 mean downsampling).

    The two sources form the exposure stack; at every patch a desired patch is built from their
    structures and compared with the fused patch. Not Wang's MS-SSIM; defined in ``tang`` only.
    A negative level score (fused structure opposite to the desired one), for which the reference
    returns a complex number, counts as 0.

    Example:
        >>> import numpy as np
        >>> img = (np.indices((64, 64)).sum(0) * 37 % 251).astype(np.uint8)
        >>> round(ms_ssim(img, img, img), 6)
        1.0
    """
    sources = [ir.astype(np.float64), vi.astype(np.float64)]
    f = fused.astype(np.float64)
    scores = []
    for level in range(len(_MEF_LEVEL_WEIGHTS)):
        if level:
            sources, f = [_halve(x) for x in sources], _halve(f)
        scores.append(_mef_ssim_level(sources, f))
    return float(np.prod(np.power(np.maximum(scores, 0.0), _MEF_LEVEL_WEIGHTS)))
