"""Filters shared by the metrics, matching MATLAB's ``fspecial``/``filter2``/``conv2`` conventions."""
import cv2
import numpy as np


def gaussian_kernel_1d(size: int, sigma: float) -> np.ndarray:
    """The 1-D factor of MATLAB ``fspecial('gaussian', size, sigma)``, normalised to sum 1.

    ``fspecial`` also zeroes taps under ``eps * max``; none of the kernels used here has such taps,
    so the 2-D kernel is exactly the outer product of this factor with itself.
    """
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    taps = np.exp(-x * x / (2.0 * sigma * sigma))
    return taps / taps.sum()


def separable_filter(image: np.ndarray, taps: np.ndarray, border: int = cv2.BORDER_CONSTANT) -> np.ndarray:
    """Correlate a float64 image with the symmetric 2-D kernel ``outer(taps, taps)``, same size."""
    return cv2.sepFilter2D(image, cv2.CV_64F, taps, taps, borderType=border)


def filter_valid(image: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """MATLAB ``filter2(outer(taps, taps), image, 'valid')``; empty when the image is smaller than the kernel."""
    radius = len(taps) // 2
    height, width = image.shape
    if height < len(taps) or width < len(taps):
        return np.zeros((max(height - 2 * radius, 0), max(width - 2 * radius, 0)))
    return separable_filter(image, taps)[radius:height - radius, radius:width - radius]


def correlate_same(image: np.ndarray, kernel: np.ndarray, border: int = cv2.BORDER_CONSTANT) -> np.ndarray:
    """Correlate an image (uint8 or float) with a small 2-D kernel into float64, same size
    (MATLAB ``filter2(kernel, image, 'same')`` for the default zero border)."""
    return cv2.filter2D(image, cv2.CV_64F, kernel, borderType=border)


def convolve_same(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """MATLAB ``conv2(image, kernel, 'same')``: true convolution with a zero border."""
    return correlate_same(image, np.ascontiguousarray(kernel[::-1, ::-1]))


def entropy_bits(counts: np.ndarray) -> float:
    """Shannon entropy, in bits, of the distribution given by (unnormalised) counts."""
    p = counts[counts > 0] / counts.sum()
    return float(-np.sum(p * np.log2(p)))
