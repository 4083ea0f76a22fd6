"""Turning images, arrays and tensors into the 8-bit gray planes every fusion metric is defined on."""
from pathlib import Path
from typing import Tuple, Union

import cv2
import numpy as np
import torch

from basicsr.utils.errors import InputError
from basicsr.utils.img_util import decode_image_file

ArrayLike = Union[np.ndarray, torch.Tensor]

# Smallest side every metric is defined for: MS_SSIM's third level must still hold its 11x11
# window and VIF's fourth scale its 3x3 one.
MIN_SIDE = 48


def _to_numpy(image: ArrayLike) -> np.ndarray:
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        # Tensors are channel-first: (1, 1, H, W), (1, H, W) or (3, H, W).
        while image.ndim > 3 and image.shape[0] == 1:
            image = image[0]
        if image.ndim == 3 and image.shape[0] in (1, 3):
            image = image.permute(1, 2, 0)
        return image.numpy()
    return np.asarray(image)


def _round_to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0.0, 255.0)).astype(np.uint8)


def to_gray_uint8(image: ArrayLike) -> np.ndarray:
    """Convert an RGB or gray image to the 8-bit gray plane the metrics score.

    Colour is converted with the ITU-R 601 weights (0.299 R + 0.587 G + 0.114 B) and rounded,
    which is what MATLAB ``rgb2gray`` and OpenCV ``COLOR_RGB2GRAY`` compute for 8-bit data.
    Float data is taken to be on the 0-255 scale; it is clipped to [0, 255] and rounded.

    Args:
        image: (H, W), (H, W, 1) or (H, W, 3) RGB array, uint8 or 0-255 float; tensors may also be
            channel-first, (3, H, W) or (1, 1, H, W).

    Returns:
        np.ndarray: (H, W) uint8.

    Raises:
        InputError: the array is not a 2-D gray or 3-channel RGB image.

    Example:
        >>> import numpy as np
        >>> int(to_gray_uint8(np.full((2, 2, 3), (255, 0, 0), np.uint8))[0, 0])
        76
    """
    array = _to_numpy(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 3 and array.shape[2] == 3:
        if array.dtype == np.uint8:
            return cv2.cvtColor(array, cv2.COLOR_RGB2GRAY)
        gray = cv2.cvtColor(np.clip(array, 0, 255).astype(np.float32), cv2.COLOR_RGB2GRAY)
        return _round_to_uint8(gray)
    if array.ndim != 2:
        raise InputError(f'image of shape {tuple(array.shape)}: expected (H, W) gray or (H, W, 3) RGB')
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number):
        raise InputError(f'image of type {array.dtype}: expected uint8 or 0-255 floats')
    return _round_to_uint8(array.astype(np.float64))


def read_gray_uint8(path: Union[str, Path]) -> np.ndarray:
    """Read an image file as the (H, W) uint8 gray plane the metrics score (see :func:`to_gray_uint8`).

    16-bit files are scaled to 8 bits; alpha is dropped.

    Raises:
        InputError: the file is missing, unreadable or not an image.
    """
    image = decode_image_file(path, cv2.IMREAD_UNCHANGED)
    if image.dtype == np.uint16:
        image = _round_to_uint8(image / 257.0)
    elif image.dtype != np.uint8:
        raise InputError(f'{path}: unsupported pixel type {image.dtype}; convert it to 8- or 16-bit')
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(image, code) if image.shape[2] in (3, 4) else image[:, :, 0]
    return image


def check_triple(ir: ArrayLike, vi: ArrayLike, fused: ArrayLike) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Convert a source/fused triple to uint8 gray planes and check that it can be scored.

    Returns:
        tuple: ``(ir, vi, fused)`` as (H, W) uint8 arrays.

    Raises:
        InputError: an image is not gray/RGB, the sizes differ, or a side is under ``MIN_SIDE``.
    """
    planes = {role: to_gray_uint8(image) for role, image in (('ir', ir), ('vi', vi), ('fused', fused))}
    shapes = {role: plane.shape for role, plane in planes.items()}
    if len(set(shapes.values())) > 1:
        listed = ', '.join(f'{role} {h}x{w}' for role, (h, w) in shapes.items())
        raise InputError(f'image sizes differ ({listed}, as HxW); the fused image must have the sources\' size')
    height, width = shapes['fused']
    if min(height, width) < MIN_SIDE:
        raise InputError(f'images are {height}x{width} (HxW); the fusion metrics need at least '
                         f'{MIN_SIDE}x{MIN_SIDE} pixels')
    return planes['ir'], planes['vi'], planes['fused']
