"""Fetching files from public locations or a local copy, verified by SHA-256."""
import hashlib
import os
import shutil
import urllib.request
from pathlib import Path

import cv2
import numpy as np

from basicsr.utils.errors import InputError


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def pixels_sha256(path):
    """SHA-256 of an image's decoded pixels, shape and type: equal for lossless re-encodings."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f'{path}: not a readable image')
    return hashlib.sha256(f'{img.shape}{img.dtype}'.encode() + np.ascontiguousarray(img).tobytes()).hexdigest()


def _replace_atomically(tmp, dst):
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, dst)


def download(url, dst, timeout=60):
    """Download ``url`` to ``dst`` through a temporary file, so an interruption leaves no partial file."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f'.{dst.name}.part')
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, 'wb') as f:
            shutil.copyfileobj(response, f)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise InputError(f'{url}: download failed ({err}); check the connection or use --from DIR '
                         'with a local copy') from None
    _replace_atomically(tmp, dst)


def copy_verified(src, dst, sha256):
    """Copy ``src`` to ``dst`` if its SHA-256 is ``sha256``."""
    src = Path(src)
    if not src.is_file():
        raise InputError(f'{src}: not found in the local copy; check the --from folder')
    actual = file_sha256(src)
    if actual != sha256:
        raise InputError(f'{src}: SHA-256 {actual[:12]}... differs from the expected {sha256[:12]}...; '
                         'the local copy is damaged or another version')
    tmp = Path(dst).with_name(f'.{Path(dst).name}.part')
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, tmp)
    _replace_atomically(tmp, dst)


def verify(path, sha256, by_pixels=False):
    """Raise InputError (and delete the file) when ``path`` does not have the expected checksum."""
    actual = pixels_sha256(path) if by_pixels else file_sha256(path)
    if actual != sha256:
        Path(path).unlink(missing_ok=True)
        raise InputError(f'{path}: SHA-256 {actual[:12]}... differs from the expected {sha256[:12]}...; '
                         'the download is damaged or the source changed (file removed, try again)')
