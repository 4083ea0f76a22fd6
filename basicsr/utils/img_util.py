"""Reading and writing images as the fusion pipeline sees them.

Every image file is first checked from its header (Pillow reads only the header): a file whose
pixel count exceeds :data:`MAX_IMAGE_PIXELS`, or whose decoded pixels would not fit in the free
memory, is refused before any pixel is decoded. Pixel types other than 8 and 16 bits (float or
32-bit integer TIFFs) are refused with one message everywhere.
"""
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from basicsr.utils.errors import InputError, writing
from basicsr.utils.memory import available_host_bytes, human_bytes

# ANYDEPTH keeps 16-bit data; COLOR gives 3 channels for gray files, drops alpha and, like the
# released pipeline's IMREAD_COLOR, applies EXIF orientation.
_READ_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH
_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
# 2**27 = 134 M pixels (e.g. 16384 x 8192): far above any fusion benchmark and what FISCNet can
# fuse in memory, far below the sizes whose decoding exhausts memory or OpenCV's own limit.
MAX_IMAGE_PIXELS = 2 ** 27
# Peak bytes per pixel while reading: the decoded 16-bit RGB(A) data, its float32 RGB copy and
# the colour conversion's output.
READ_BYTES_PER_PIXEL = 8 + 12 + 12
def unsupported_type_error(path, dtype):
    return InputError(f'{path}: unsupported pixel type {dtype}: save as 8- or 16-bit')


def check_image_header(path):
    """Read ``path``'s header and refuse it before decoding when it cannot be read safely.

    Files Pillow does not recognise pass (OpenCV may still decode them, within its own limit).

    Returns:
        tuple[int, int] | None: (width, height) when the header was read.

    Raises:
        InputError: more than :data:`MAX_IMAGE_PIXELS` pixels or more decoded bytes than the
            free memory; the message names the file.
    """
    pillow_limit = Image.MAX_IMAGE_PIXELS
    try:
        # Pillow's own bomb check would hide the size; the limit is applied below instead.
        Image.MAX_IMAGE_PIXELS = None
        with Image.open(path) as img:
            width, height = img.width, img.height
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError, Image.UnidentifiedImageError):
        return None  # not a format Pillow reads, or a damaged header: OpenCV decides below
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit
    pixels = width * height
    if pixels > MAX_IMAGE_PIXELS:
        raise InputError(f'{path}: {width}x{height} is {pixels:,} pixels, beyond the limit of '
                         f'{MAX_IMAGE_PIXELS:,}; downscale it or split it into tiles')
    available = available_host_bytes()
    need = pixels * READ_BYTES_PER_PIXEL
    if available is not None and need > available:
        raise InputError(f'{path}: reading {width}x{height} needs about {human_bytes(need)} of memory but '
                         f'{human_bytes(available)} is free; downscale it or free memory')
    return width, height


def _imdecode(data, flags):
    """cv2.imdecode without OpenCV's own log lines (errors are reported here, one line each)."""
    previous = cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        return cv2.imdecode(data, flags)
    except cv2.error:
        return None
    finally:
        cv2.utils.logging.setLogLevel(previous)


def decode_image_file(path, flags=_READ_FLAGS):
    """Decode an image file with OpenCV ``flags`` (non-ASCII paths work too), 8- or 16-bit only.

    Raises:
        InputError: the file is missing, unreadable, not an image, corrupt, too large for the
            pixel limit or the memory, or not of 8- or 16-bit samples.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f'{path}: is a folder, not an image file')
    check_image_header(path)
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as err:
        raise InputError(f'{path}: cannot read the file ({err.strerror}); '
                         'check that it exists and is readable') from None
    except MemoryError:
        raise InputError(f'{path}: too large to read into memory; downscale it') from None
    try:
        img = _imdecode(data, flags) if data.size else None
        if img is None or img.dtype not in _SCALE:
            raw = _imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
            if raw is not None and raw.dtype not in _SCALE:
                raise unsupported_type_error(path, raw.dtype)
    except MemoryError:
        raise InputError(f'{path}: decoding ran out of memory; downscale it or free memory') from None
    if img is None:
        raise InputError(f'{path}: not a readable image (corrupt or unsupported format); replace or remove it')
    return img


def read_image(path):
    """Read an image file as RGB float32 in [0, 1].

    Gray files come back as three equal channels, alpha is dropped, and 8- and 16-bit data are
    scaled by their own bit depth.

    Args:
        path (str | Path): the image file.

    Returns:
        np.ndarray: (H, W, 3) float32 RGB in [0, 1].

    Raises:
        InputError: the file is missing, not an image, corrupt, too large, or of an unsupported
            pixel type.
    """
    img = decode_image_file(path)
    img = img.astype(np.float32) / _SCALE[img.dtype]
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def array_to_rgb(array, name='image'):
    """An image array converted as :func:`read_image` converts files: (H, W, 3) float32 RGB in [0, 1].

    Args:
        array (np.ndarray): (H, W) or (H, W, 1) gray, (H, W, 3) RGB or (H, W, 4) RGBA (alpha is
            dropped), uint8 or uint16 (scaled by their own bit depth).
        name (str): how messages name the array.

    Raises:
        InputError: another shape or pixel type.

    Example:
        >>> array_to_rgb(np.full((2, 3), 255, np.uint8)).shape
        (2, 3, 3)
    """
    array = np.asarray(array)
    if array.dtype not in _SCALE:
        raise unsupported_type_error(name, array.dtype)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise InputError(f'{name}: shape {array.shape} is not an image; give (H, W) gray, (H, W, 3) RGB '
                         'or (H, W, 4) RGBA')
    img = array[:, :, :3].astype(np.float32) / _SCALE[array.dtype]
    return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img


def to_uint8(img):
    """Clamp an image in [0, 1] to 8 bits: clip, x255, round half to even (as the released code)."""
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def stretch_to_uint8(img):
    """Min-max stretch an image to 8 bits over all its pixels and channels, then truncate.

    The released SeAFusion test script saves its images this way (clip to [0, 1],
    ``(I - min) / (max - min)``, x255, cast without rounding), in float32. A constant image has
    nothing to stretch and is converted as :func:`to_uint8` does.

    Args:
        img (np.ndarray): (H, W) or (H, W, C) float image, nominally in [0, 1].

    Returns:
        np.ndarray: uint8 array of the same shape.
    """
    img = np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)
    low, high = img.min(), img.max()
    if high == low:
        return to_uint8(img)
    return ((img - low) / (high - low) * np.float32(255.0)).astype(np.uint8)


# How a fused image in [0, 1] becomes the 8-bit image that is saved and scored (option `to_8bit`).
TO_8BIT = {'round': to_uint8, 'stretch_truncate': stretch_to_uint8}


def write_image(path, rgb_uint8):
    """Write an (H, W, 3) RGB or (H, W) uint8 image, creating parent folders.

    The file is written under a temporary name and renamed, so a failure or an interruption
    never leaves a half-written image (nor the temporary file).

    Raises:
        WriteError: the file cannot be written (full disk, read-only folder, a path under a
            file ...); the message names it.
        InputError: the extension is not one OpenCV can encode.
    """
    path = Path(path)
    img = rgb_uint8 if rgb_uint8.ndim == 2 else cv2.cvtColor(rgb_uint8, cv2.COLOR_RGB2BGR)
    try:
        ok, buf = cv2.imencode(path.suffix or '.png', img)
    except cv2.error:
        ok = False
    if not ok:
        raise InputError(f'{path}: OpenCV could not encode the image; use a .png file name')
    tmp = path.with_name(f'.{path.name}.tmp{os.getpid()}')
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            buf.tofile(str(tmp))
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
