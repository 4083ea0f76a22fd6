"""Reading and writing images as the fusion pipeline sees them."""
from pathlib import Path

import cv2
import numpy as np

from basicsr.utils.errors import InputError

# ANYDEPTH keeps 16-bit data; COLOR gives 3 channels for gray files, drops alpha and, like the
# released pipeline's IMREAD_COLOR, applies EXIF orientation.
_READ_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH
_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def decode_image_file(path, flags=_READ_FLAGS):
    """Decode an image file with OpenCV ``flags`` (non-ASCII paths work too).

    Raises:
        InputError: the file is missing, unreadable, not an image or corrupt.
    """
    path = Path(path)
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as err:
        raise InputError(f'{path}: cannot read the file ({err.strerror}); check that it exists and is readable') from None
    img = cv2.imdecode(data, flags) if data.size else None
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
        InputError: the file is missing, not an image, corrupt, or of an unsupported depth.
    """
    img = decode_image_file(path)
    if img.dtype == np.float32:
        img = np.clip(img, 0.0, 1.0)
    elif img.dtype in _SCALE:
        img = img.astype(np.float32) / _SCALE[img.dtype]
    else:
        raise InputError(f'{path}: unsupported pixel type {img.dtype}; convert it to 8- or 16-bit')
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def to_uint8(img):
    """Clamp an image in [0, 1] to 8 bits: clip, x255, round half to even (as the released code)."""
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def write_image(path, rgb_uint8):
    """Write an (H, W, 3) RGB or (H, W) uint8 image, creating parent folders.

    Raises:
        OSError: OpenCV could not write the file (bad extension, full disk, no permission).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = rgb_uint8 if rgb_uint8.ndim == 2 else cv2.cvtColor(rgb_uint8, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(path.suffix or '.png', img)
    if not ok:
        raise OSError(f'{path}: OpenCV could not encode the image; use a .png file name')
    buf.tofile(str(path))
