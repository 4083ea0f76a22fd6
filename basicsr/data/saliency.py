"""Visible-saliency masks for training (global-contrast saliency, Ma et al. 2017).

For an 8-bit gray image ``I`` with 256-bin histogram ``h``, the saliency of gray level ``k`` is
``S(k) = sum_j h(j) * |k - j|`` and the saliency map is ``V(p) = S(I(p))`` min-max normalised to
[0, 1] over the image. A pair's mask compares the visible map with the infrared one.

Every result here is bit-identical to ``VSM.m`` (MATLAB / GNU Octave): ``S`` is an exact integer,
the normalisation is one correctly rounded IEEE division of exact integers in both languages, and
every rounding to 8 bits is written out explicitly (half away from zero, as MATLAB's ``uint8``)
instead of being left to a library whose rounding rule differs between the two languages.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from basicsr.utils.errors import InputError
from basicsr.utils.img_util import decode_image_file, write_image
from basicsr.utils.options import SALIENCY_MODES

# ANYCOLOR keeps gray files gray and, unlike IMREAD_UNCHANGED, applies the EXIF orientation, so a
# mask lines up with the image the training pipeline reads (which uses IMREAD_COLOR).
_READ_FLAGS = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH
_LEVELS = np.arange(256, dtype=np.int64)
_LEVEL_DISTANCE = np.abs(_LEVELS[:, None] - _LEVELS[None, :])


def _round_half_away(x: np.ndarray) -> np.ndarray:
    """Round non-negative floats half away from zero (MATLAB ``uint8``), not half to even.

    ``x - floor(x)`` is exact in float64, so the tie test is exact too.
    """
    low = np.floor(x)
    return low + (x - low >= 0.5)


def to_saliency_gray(img: np.ndarray, infrared: bool = False) -> np.ndarray:
    """Reduce a decoded image to the 8-bit gray image the saliency is computed on.

    16-bit data is first scaled to 8 bits per channel as ``round(v / 257)`` (MATLAB ``im2uint8``;
    ``v / 257`` is never a tie, so ``(v + 128) // 257`` is that value exactly). A colour visible
    image becomes the mean of its three channels rounded half away from zero (the mean of three
    integers is never a tie, so ``(b + g + r + 1) // 3`` is exact). A colour infrared image gives
    its red channel, the channel the training pipeline feeds the network as infrared. Either way
    a gray image stored as RGB gives back its channel.

    Args:
        img: (H, W), (H, W, 1) or (H, W, C>=3) uint8 or uint16 in OpenCV order (B, G, R[, A]);
            alpha is ignored.
        infrared: take the red channel instead of the channel mean.

    Returns:
        (H, W) uint8.

    Raises:
        InputError: the dtype is not uint8/uint16 or the shape is not gray or colour.
    """
    if img.dtype == np.uint16:
        img = ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise InputError(f'unsupported pixel type {img.dtype}; convert the image to 8 or 16 bits')
    if img.ndim == 2:
        return img
    if img.ndim == 3 and img.shape[2] == 1:
        return img[:, :, 0]
    if img.ndim == 3 and img.shape[2] >= 3:
        if infrared:
            return np.ascontiguousarray(img[:, :, 2])
        total = img[:, :, 0].astype(np.uint16)
        total += img[:, :, 1]
        total += img[:, :, 2]
        total += 1
        total //= 3
        return total.astype(np.uint8)
    raise InputError(f'unsupported image shape {img.shape}; expected gray or colour')


def read_gray_u8(path: str | Path, infrared: bool = False) -> np.ndarray:
    """Read an image file as the (H, W) uint8 gray image of :func:`to_saliency_gray`.

    Raises:
        InputError: the file is missing, unreadable, corrupt, or of an unsupported type; the
            one-line message names the file.
    """
    img = decode_image_file(path, _READ_FLAGS)
    try:
        return to_saliency_gray(img, infrared)
    except InputError as err:
        raise InputError(f'{path}: {err}') from None


def saliency_levels(gray: np.ndarray) -> np.ndarray:
    """Normalised global-contrast saliency of every gray level of an 8-bit gray image.

    ``S`` is computed per level as an exact int64; the minimum and maximum are taken over the
    levels present in the image, which is MATLAB ``mat2gray`` of the per-pixel map.

    Args:
        gray: (H, W) uint8.

    Raises:
        ValueError: ``gray`` is not a 2-D uint8 array.

    Returns:
        (256,) float64: entry ``k`` is the saliency of level ``k`` (in [0, 1] for the levels the
        image holds). A constant image (max = min, nothing stands out) gives all 0.
    """
    if gray.dtype != np.uint8 or gray.ndim != 2:
        raise ValueError(f'expected a (H, W) uint8 gray image, got {gray.dtype} {gray.shape}')
    hist = np.bincount(gray.ravel(), minlength=256).astype(np.int64)
    table = _LEVEL_DISTANCE @ hist
    present = table[hist > 0]
    low, high = present.min(), present.max()
    if high == low:
        return np.zeros(256, dtype=np.float64)
    # Integers below 2**53 convert exactly, leaving a single rounding: the division.
    return (table - low).astype(np.float64) / float(high - low)


def global_contrast_saliency(gray: np.ndarray) -> np.ndarray:
    """Global-contrast saliency map ``V`` of an 8-bit gray image (Ma et al. 2017).

    Args:
        gray: (H, W) uint8.

    Returns:
        (H, W) float64 in [0, 1]; all 0 for a constant image.
    """
    return saliency_levels(gray)[gray]


def mask_table(levels_ir: np.ndarray, levels_vi: np.ndarray, mode: str = 'binary') -> np.ndarray:
    """The mask value of every (infrared level, visible level) combination.

    ``binary`` reproduces the 8-bit PNG of ``V_vi ./ (V_vi - V_ir)``: 255 where ``V_vi > V_ir``
    or ``V_vi = V_ir > 0`` (the ratio is >= 1 or +Inf), 0 elsewhere (<= 0, or NaN where both are
    0). ``weight`` is ``0.5 + 0.5 * (V_vi - V_ir)`` scaled by 255 and rounded half away from zero.

    Args:
        levels_ir: (256,) float64 from :func:`saliency_levels` of the infrared image.
        levels_vi: (256,) float64 from :func:`saliency_levels` of the visible image.
        mode: ``'binary'`` or ``'weight'``.

    Returns:
        (256, 256) uint8 indexed ``[ir_level, vi_level]``.

    Raises:
        ValueError: unknown mode.
    """
    v_ir = levels_ir[:, None]
    v_vi = levels_vi[None, :]
    if mode == 'binary':
        salient = (v_vi > v_ir) | ((v_vi == v_ir) & (v_vi > 0))
        return salient.astype(np.uint8) * np.uint8(255)
    if mode == 'weight':
        return _round_half_away(255.0 * (0.5 + 0.5 * (v_vi - v_ir))).astype(np.uint8)
    raise ValueError(f'mode must be one of {SALIENCY_MODES}, got {mode!r}')


def saliency_mask(ir_gray: np.ndarray, vi_gray: np.ndarray, mode: str = 'binary') -> np.ndarray:
    """The 8-bit training mask of one infrared/visible pair (rules in :func:`mask_table`).

    A pixel's value depends only on its two gray levels, so the mask is one lookup in the
    65536-entry table; each entry is computed with the same float64 operations as ``VSM.m``
    applies per pixel, so the values are identical.

    Args:
        ir_gray: (H, W) uint8 infrared image.
        vi_gray: (H, W) uint8 visible image, same shape.
        mode: ``'binary'`` or ``'weight'``.

    Returns:
        (H, W) uint8: {0, 255} for ``binary``, [0, 255] for ``weight``.

    Raises:
        ValueError: unknown mode, different shapes, or not 2-D uint8 arrays.
    """
    if ir_gray.shape != vi_gray.shape:
        raise ValueError(f'shapes differ: infrared {ir_gray.shape}, visible {vi_gray.shape}')
    table = mask_table(saliency_levels(ir_gray), saliency_levels(vi_gray), mode)
    index = ir_gray.astype(np.uint16)
    index <<= 8
    index |= vi_gray
    return np.take(table.ravel(), index)


def pair_mask(ir_path: str | Path, vi_path: str | Path, mode: str = 'binary') -> np.ndarray:
    """Read one pair and return its (H, W) uint8 mask (see :func:`saliency_mask`).

    Raises:
        InputError: a file is unreadable or unsupported, or the two sizes differ (the message
            names the visible file and both sizes).
    """
    ir_gray = read_gray_u8(ir_path, infrared=True)
    vi_gray = read_gray_u8(vi_path)
    if ir_gray.shape != vi_gray.shape:
        (ih, iw), (vh, vw) = ir_gray.shape, vi_gray.shape
        raise InputError(f'{vi_path}: size {vw}x{vh} differs from the infrared image {ir_path} ({iw}x{ih}); '
                         'register the pair or remove it')
    return saliency_mask(ir_gray, vi_gray, mode)


def write_pair_mask(ir_path: str | Path, vi_path: str | Path, out_path: str | Path, mode: str = 'binary') -> Path:
    """Write one pair's mask to ``out_path`` as an 8-bit gray PNG (parent folders created).

    Returns:
        ``out_path`` as a Path.

    Raises:
        InputError: see :func:`pair_mask`.
    """
    out_path = Path(out_path)
    write_image(out_path, pair_mask(ir_path, vi_path, mode))
    return out_path
