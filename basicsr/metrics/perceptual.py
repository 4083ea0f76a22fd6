"""Human-perception-based metrics of Chen & Blum (Qcb) and Chen & Varshney (Qcv), as coded in VIFB."""
from typing import Tuple

import numpy as np

from basicsr.metrics.base import fusion_metric
from basicsr.metrics.filtering import correlate_same, separable_filter


def _stretch(image: np.ndarray) -> np.ndarray:
    # Liu's normalize1: stretch to [0, 255] and round half away from zero; an all-zero image is
    # kept and any other constant image, which the reference turns into NaN, becomes zeros.
    data = image.astype(np.float64)
    lo, hi = data.min(), data.max()
    if hi == lo:
        return np.zeros_like(data)
    return np.floor((data - lo) / (hi - lo) * 255.0 + 0.5)


def _frequency_radius(shape: Tuple[int, int], row_scale: float, col_scale: float) -> np.ndarray:
    """|(u, v)| on MATLAB's ``freqspace(shape, 'meshgrid')`` grid scaled per axis, laid out in
    unshifted FFT order."""
    rows, cols = shape
    v = (np.arange(rows) - rows // 2) * (2.0 / rows) * row_scale
    u = (np.arange(cols) - cols // 2) * (2.0 / cols) * col_scale
    return np.fft.ifftshift(np.sqrt(u[None, :] ** 2 + v[:, None] ** 2))


def _frequency_filter(image: np.ndarray, response: np.ndarray) -> np.ndarray:
    # The filters are even in frequency, so the result is real up to rounding.
    return np.real(np.fft.ifft2(np.fft.fft2(image) * response))


def _gaussian_taps(sigma: float) -> np.ndarray:
    x = np.arange(-15, 16, dtype=np.float64)
    return np.exp(-x * x / (2 * sigma * sigma))


# Chen-Blum: contrast sensitivity (DoG) parameters and the local contrast's Gaussians (31x31,
# unnormalised 2-D Gaussians with sigma 2 and 4, applied with filter2's zero border).
_CB_F0, _CB_F1, _CB_A = 15.3870, 1.3456, 0.7622
_CB_TAPS_2, _CB_TAPS_4 = _gaussian_taps(2.0), _gaussian_taps(4.0)
_CB_Z = 1e-4


def _cb_masked_contrast(image: np.ndarray, csf: np.ndarray) -> np.ndarray:
    filtered = _frequency_filter(image, csf)
    fine = separable_filter(filtered, _CB_TAPS_2) / (2 * np.pi * 4.0)
    coarse = separable_filter(filtered, _CB_TAPS_4) / (2 * np.pi * 16.0)
    with np.errstate(divide='ignore', invalid='ignore'):
        contrast = np.abs(fine / coarse - 1.0)
    contrast = np.nan_to_num(contrast, nan=0.0, posinf=0.0)
    return contrast ** 3 / (contrast ** 2 + _CB_Z)


def _ratio_min_max(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    with np.errstate(divide='ignore', invalid='ignore'):
        ratio = np.where(x < y, x / y, y / x)
    return np.where((x == 0) & (y == 0), 1.0, ratio)


@fusion_metric('Qcb', conventions=('vifb',))
def qcb(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, convention: str = 'vifb') -> float:
    """Qcb (Chen & Blum 2009), as coded in VIFB (after Z. Liu's ``metricChenBlum``).

    Images are stretched to [0, 255] and rounded, filtered with the contrast sensitivity function
    exp(-(r/15.387)^2) - 0.7622 exp(-(r/1.3456)^2) (r on MATLAB's frequency grid scaled by size/30),
    and their local contrast (ratio of Gaussian sigma 2 and 4 filterings, minus 1) is masked as
    C^3 / (C^2 + 1e-4). The contrast preservation min/max ratio of each source to F is averaged
    with saliency weights C_S^2 / (C_IR^2 + C_VI^2). Defined in ``vifb`` only.

    Where the reference divides 0 by 0 (no contrast at a pixel, or a constant image) the
    preservation is 1 and the saliency weights are 1/2.

    Example:
        >>> import numpy as np
        >>> img = (np.indices((64, 64)).sum(0) * 37 % 251).astype(np.uint8)
        >>> round(qcb(img, img, img, convention='vifb'), 12)
        1.0
    """
    shape = fused.shape
    radius = _frequency_radius(shape, shape[0] / 30.0, shape[1] / 30.0)
    csf = np.exp(-(radius / _CB_F0) ** 2) - _CB_A * np.exp(-(radius / _CB_F1) ** 2)
    c_vi, c_ir, c_f = (_cb_masked_contrast(_stretch(image), csf) for image in (vi, ir, fused))
    saliency_vi, saliency_ir = c_vi * c_vi, c_ir * c_ir
    total = saliency_vi + saliency_ir
    with np.errstate(divide='ignore', invalid='ignore'):
        weight_vi = np.where(total > 0, saliency_vi / total, 0.5)
    quality = weight_vi * _ratio_min_max(c_vi, c_f) + (1.0 - weight_vi) * _ratio_min_max(c_ir, c_f)
    return float(quality.mean())


# Chen-Varshney: Sobel (filter2, zero border), 16x16 regions, saliency exponent 5 and the
# Mannos-Sakrison contrast sensitivity function on a grid scaled by size/8.
_CV_SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)
_CV_SOBEL_Y = np.ascontiguousarray(_CV_SOBEL_X.T)
_CV_BLOCK, _CV_ALPHA = 16, 5


def _block_sums(image: np.ndarray) -> np.ndarray:
    # MATLAB blkproc: regions of 16x16, the last ones padded with zeros.
    rows = -(-image.shape[0] // _CV_BLOCK) * _CV_BLOCK
    cols = -(-image.shape[1] // _CV_BLOCK) * _CV_BLOCK
    padded = np.zeros((rows, cols))
    padded[:image.shape[0], :image.shape[1]] = image
    return padded.reshape(rows // _CV_BLOCK, _CV_BLOCK, cols // _CV_BLOCK, _CV_BLOCK).sum(axis=(1, 3))


def _cv_saliency(image: np.ndarray) -> np.ndarray:
    gx, gy = correlate_same(image, _CV_SOBEL_X), correlate_same(image, _CV_SOBEL_Y)
    return _block_sums(np.sqrt(gx * gx + gy * gy) ** _CV_ALPHA)


@fusion_metric('Qcv', conventions=('vifb',), higher_is_better=False)
def qcv(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, convention: str = 'vifb') -> float:
    """Qcv (Chen & Varshney 2007), as coded in VIFB (after Z. Liu's ``metricChen``).

    Images are stretched to [0, 255] and rounded. Each difference S - F is filtered with the
    Mannos-Sakrison contrast sensitivity function and its mean square taken per 16x16 region; the
    regions are weighted by the source's saliency, the sum of its Sobel gradient magnitude to the
    power 5. Defined in ``vifb`` only; lower is better.

    When neither source has any edge (total saliency 0, which the reference turns into NaN) the
    regions are weighted equally.

    Example:
        >>> import numpy as np
        >>> img = (np.indices((64, 64)).sum(0) * 37 % 251).astype(np.uint8)
        >>> qcv(img, img, img, convention='vifb')
        0.0
    """
    im_vi, im_ir, im_f = _stretch(vi), _stretch(ir), _stretch(fused)
    rows, cols = fused.shape
    radius = _frequency_radius(fused.shape, rows / 8.0, cols / 8.0)
    csf = 2.6 * (0.0192 + 0.144 * radius) * np.exp(-(0.144 * radius) ** 1.1)
    block_area = _CV_BLOCK * _CV_BLOCK
    distortion_vi = _block_sums(_frequency_filter(im_vi - im_f, csf) ** 2) / block_area
    distortion_ir = _block_sums(_frequency_filter(im_ir - im_f, csf) ** 2) / block_area
    saliency_vi, saliency_ir = _cv_saliency(im_vi), _cv_saliency(im_ir)
    weight = np.sum(saliency_vi + saliency_ir)
    if weight == 0:
        return float(np.mean(distortion_vi + distortion_ir) / 2.0)
    return float(np.sum(saliency_vi * distortion_vi + saliency_ir * distortion_ir) / weight)
