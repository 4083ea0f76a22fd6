"""Feature mutual information: Haghighat & Razian's fast FMI (2014) on pixels and on DCT coefficients."""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from basicsr.metrics.base import fusion_metric

_WINDOW = 3
_CELLS = _WINDOW * _WINDOW
_INDEX = np.arange(1, _CELLS + 1, dtype=np.float64)
# Windows are processed in blocks to bound the (windows, 9, 9) joint-distribution arrays.
_BLOCK = 8192


def _dct2(image: np.ndarray) -> np.ndarray:
    """Orthonormal 2-D DCT-II (MATLAB ``dct2``), for any image size."""
    def basis(n: int) -> np.ndarray:
        k, x = np.meshgrid(np.arange(n), np.arange(n), indexing='ij')
        matrix = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
        matrix[0] /= np.sqrt(2.0)
        return matrix
    return basis(image.shape[0]) @ image @ basis(image.shape[1]).T


def _windows(feature: np.ndarray) -> np.ndarray:
    # Every valid 3x3 window as a row, its cells in MATLAB's column-major order (the CDFs depend on it).
    views = sliding_window_view(feature, (_WINDOW, _WINDOW))
    return np.ascontiguousarray(views.transpose(0, 1, 3, 2)).reshape(-1, _CELLS)


def _rerange(windows: np.ndarray) -> np.ndarray:
    lo, hi = windows.min(axis=1, keepdims=True), windows.max(axis=1, keepdims=True)
    flat = hi == lo
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.where(flat, 1.0, (windows - lo) / np.where(flat, 1.0, hi - lo))


def _entropy_rows(pdf: np.ndarray) -> np.ndarray:
    with np.errstate(divide='ignore', invalid='ignore'):
        return -np.sum(np.where(pdf != 0, pdf * np.log2(np.abs(pdf)), 0.0), axis=-1)


def _second_difference(cumulative: np.ndarray) -> np.ndarray:
    padded = np.pad(cumulative, ((0, 0), (1, 0), (1, 0)))
    return padded[:, 1:, 1:] - padded[:, :-1, 1:] - padded[:, 1:, :-1] + padded[:, :-1, :-1]


def _normalised_fmi(src: np.ndarray, fus: np.ndarray) -> np.ndarray:
    """Per-window normalised MI of two reranged windows, with the joint PDF built by Nelsen's
    method from the Frechet bound selected by the sign of the PDFs' correlation."""
    p_s = src / src.sum(axis=1, keepdims=True)
    p_f = fus / fus.sum(axis=1, keepdims=True)
    c_s, c_f = np.cumsum(p_s, axis=1), np.cumsum(p_f, axis=1)

    d_s, d_f = p_s - p_s.mean(axis=1, keepdims=True), p_f - p_f.mean(axis=1, keepdims=True)
    cross = np.sum(d_s * d_f, axis=1)
    with np.errstate(divide='ignore', invalid='ignore'):
        corr = np.where(cross == 0, 0.0, cross / np.sqrt(np.sum(d_s * d_s, axis=1) * np.sum(d_f * d_f, axis=1)))

    def std(pdf):
        return np.sqrt(np.maximum(pdf @ (_INDEX ** 2) - (pdf @ _INDEX) ** 2, 0.0))
    sd_s, sd_f = std(p_s), std(p_f)

    fi, sj = c_f[:, :, None], c_s[:, None, :]
    positive = corr >= 0
    # Frechet upper bound min(F, S) for c >= 0, lower bound max(F + S - 1, 0) otherwise.
    bound = np.where(positive[:, None, None], 0.5 * (fi + sj - np.abs(fi - sj)),
                     0.5 * (fi + sj - 1 + np.abs(fi + sj - 1)))
    bound_cov = np.sum(bound - fi * sj, axis=(1, 2))
    # Where the bound's correlation is 0 the reference divides by zero (NaN for the whole image);
    # such windows are scored as independent, like the other degenerate ones.
    degenerate = (sd_s == 0) | (sd_f == 0) | (positive & (corr == 0)) | (bound_cov == 0)
    with np.errstate(divide='ignore', invalid='ignore'):
        mix = np.where(degenerate, 0.0, corr / (bound_cov / (sd_f * sd_s)))
    mix = mix[:, None, None]
    joint = mix * _second_difference(bound) + (1 - mix) * p_f[:, :, None] * p_s[:, None, :]

    h_s, h_f = _entropy_rows(p_s), _entropy_rows(p_f)
    mi = h_s + h_f - _entropy_rows(joint.reshape(len(joint), -1))
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.where(mi == 0, 0.0, 2.0 * mi / (h_s + h_f))


def _fast_fmi(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    total, count = 0.0, 0
    wa, wb, wf = _windows(a), _windows(b), _windows(f)
    for start in range(0, len(wf), _BLOCK):
        block = slice(start, start + _BLOCK)
        a_raw, b_raw, f_raw = wa[block], wb[block], wf[block]
        a_norm, b_norm, f_norm = _rerange(a_raw), _rerange(b_raw), _rerange(f_raw)
        same_af = np.all(a_raw == f_raw, axis=1)
        # The reference overwrites the fused window with its reranged copy while scoring A, so
        # B is compared for equality with that copy unless A's window equalled F's.
        same_bf = np.all(b_raw == np.where(same_af[:, None], f_raw, f_norm), axis=1)
        fmi_af = np.where(same_af, 1.0, _normalised_fmi(a_norm, f_norm))
        fmi_bf = np.where(same_bf, 1.0, _normalised_fmi(b_norm, f_norm))
        total += np.sum((fmi_af + fmi_bf) / 2.0)
        count += len(f_raw)
    return total / count


@fusion_metric('FMI_pixel')
def fmi_pixel(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, convention: str = 'tang') -> float:
    """FMI on raw pixels: Haghighat & Razian's fast feature mutual information, 3x3 windows.

    In each window the two pixel sets are reranged to [0, 1], normalised to PDFs, their joint PDF
    built from the Frechet bound chosen by the sign of their correlation (Nelsen's method), and
    the normalised MI 2 I / (H_S + H_F) averaged over the windows and the two sources (identical
    windows count 1). As ``analysis_fmi(IR, VI, F, 'none', 3)`` on [0, 1] images, quirks included;
    one definition, available in every convention. Always defined.

    Args:
        ir, vi, fused: (H, W) images, uint8 or 0-255 floats (colour is converted to gray).
        convention: ``'tang'``, ``'cddfuse'`` or ``'vifb'`` (all give the same value).

    Returns:
        float in [0, 1].

    Raises:
        InputError: sizes differ or an image is under 48x48.

    Example:
        >>> import numpy as np
        >>> img = (np.indices((64, 64)).sum(0) * 37 % 251).astype(np.uint8)
        >>> fmi_pixel(img, img, img)
        1.0
    """
    return _fast_fmi(*(image / 255.0 for image in (ir, vi, fused)))


@fusion_metric('FMI_dct')
def fmi_dct(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, convention: str = 'tang') -> float:
    """FMI on DCT coefficients: the fast FMI of :func:`fmi_pixel` computed on each image's
    orthonormal 2-D DCT (``analysis_fmi(IR, VI, F, 'dct', 3)``). One definition, available in
    every convention.

    Example:
        >>> import numpy as np
        >>> img = (np.indices((64, 64)).sum(0) * 37 % 251).astype(np.uint8)
        >>> fmi_dct(img, img, img)
        1.0
    """
    return _fast_fmi(*(_dct2(image / 255.0) for image in (ir, vi, fused)))
