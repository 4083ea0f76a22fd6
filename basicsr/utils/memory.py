"""Host memory: keeping freed memory in the process, and telling a user when an image will not fit.

FISCNet and the metrics allocate many image-sized temporaries per image. With glibc's defaults,
blocks above 32 MB come from ``mmap`` and every freed block goes back to the operating system,
so each new image page-faults all of its memory in again; on a 2-core CPU keeping it makes
the network 1.8x (640x480) to 2.9x (1024x768) faster (``docs/benchmarks.md``). Keeping the memory
is a process-wide choice, so the entry points (``test.py``, ``train.py``, ``scripts/fuse.py``)
make it, not the library on import.
"""
import ctypes
import math
from typing import Optional

import torch

from basicsr.utils.errors import InputError

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # the largest mmap threshold glibc accepts on 64-bit
_KEEP_ALL = 2**31 - 1  # mallopt takes an int: keep up to 2 GiB of free memory at the heap's top

# Peak host memory of one FISCNet (n_feat 16) float32 inference, per input pixel and batch item:
# 2.3-2.6 KB measured from 320x240 to 2048x1536 (scripts/benchmark.py), rounded up.
CPU_INFERENCE_BYTES_PER_PIXEL = 2700
# Tiled, the image-sized buffers remain besides one tile's inference: the YCrCb input, the blended
# Y, the RGB result and its 8-bit conversion. About 50 bytes per image pixel measured at 2048x1536
# with tiles of 256 and 512 (scripts/benchmark_tiling.py, docs/benchmarks.md), rounded up.
TILED_BYTES_PER_IMAGE_PIXEL = 64
_ON_A_GPU = 'fuse it on a GPU (num_gpu: 1 / --device cuda), free memory'
_TILE_SIDES = (1024, 512, 256, 128, 64)  # suggested, largest first: larger tiles fuse closer to whole images
_AFTER_RUNNING_OUT_TILE = 512  # suggested when the memory that would fit is unknown


def _in_tiles(side: int, tiled: bool = False) -> str:
    action = 'use smaller tiles' if tiled else 'fuse it in tiles'
    return f'{action} (tile: {side} in the YAML, --tile {side} on scripts/fuse.py)'


def _libc_function(name):
    """The C library's function ``name``, or None where it has none (not glibc, or too old)."""
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None


def keep_freed_memory() -> bool:
    """Serve every block from glibc's heap and keep freed heap memory in the process.

    The process's resident memory then stays near its largest working set instead of being
    returned after each image (the peak rises by about 10-40 %).

    Returns:
        bool: True if applied; False (nothing changed) where the C library is not glibc.

    Example:
        >>> keep_freed_memory() in (True, False)
        True
    """
    mallopt = _libc_function('mallopt')
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) and mallopt(_M_MMAP_MAX, 0)
                and mallopt(_M_TRIM_THRESHOLD, _KEEP_ALL))


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ('arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks', 'fordblks',
                 'keepcost')]


def _free_heap_bytes():
    """Freed memory the process keeps in its main heap (glibc >= 2.33), else 0."""
    mallinfo2 = _libc_function('mallinfo2')
    if mallinfo2 is None:
        return 0
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return info.fordblks + info.fsmblks


def available_host_bytes():
    """Memory a new allocation can get without swapping: the kernel's MemAvailable plus the
    freed memory this process keeps. None where /proc/meminfo does not exist (not Linux)."""
    try:
        with open('/proc/meminfo') as f:
            fields = dict(line.split(':', 1) for line in f)
    except OSError:
        return None
    if 'MemAvailable' not in fields:
        return None
    return int(fields['MemAvailable'].split()[0]) * 1024 + _free_heap_bytes()


def human_bytes(n_bytes):
    return f'{n_bytes / 2**30:.1f} GiB' if n_bytes >= 2**30 else f'{n_bytes / 2**20:.0f} MiB'


def cpu_inference_bytes(batch: int, height: int, width: int, tile: Optional[int] = None,
                        bytes_per_pixel: int = CPU_INFERENCE_BYTES_PER_PIXEL) -> int:
    """Estimated peak host memory of fusing a (batch, height, width) input on the CPU, whole or in
    tiles of ``tile`` pixels (see :func:`basicsr.utils.tiling.fuse_in_tiles`)."""
    if tile is None:
        return bytes_per_pixel * batch * height * width
    return batch * (bytes_per_pixel * min(tile, height) * min(tile, width)
                    + TILED_BYTES_PER_IMAGE_PIXEL * height * width)


def _fitting_tile(batch: int, height: int, width: int, available: int, bytes_per_pixel: int) -> Optional[int]:
    """The largest suggested tile side that splits the image and whose tiled inference fits in
    ``available`` bytes, or None."""
    return next((side for side in _TILE_SIDES if side < max(height, width)
                 and cpu_inference_bytes(batch, height, width, side, bytes_per_pixel) <= available), None)


def check_cpu_inference_fits(name, batch, height, width, bytes_per_pixel=CPU_INFERENCE_BYTES_PER_PIXEL, tile=None):
    """Refuse, before starting, an inference the machine's free memory cannot hold.

    On Linux the kernel's out-of-memory killer would otherwise end the process without a word.
    With ``tile`` the estimate is for fusing in tiles of that size.

    Raises:
        InputError: the estimated peak exceeds :func:`available_host_bytes`; the one-line message
            names ``name``, the estimate and what to do, with a tile size that fits if one does.
    """
    available = available_host_bytes()
    need = cpu_inference_bytes(batch, height, width, tile, bytes_per_pixel)
    if available is None or need <= available:
        return
    what = f'{name}: fusing {width}x{height} (batch {batch})' + (f' in tiles of {tile}' if tile else '')
    advice = _ON_A_GPU
    fitting = _fitting_tile(batch, height, width, available, bytes_per_pixel)
    if fitting is not None and (tile is None or fitting < tile):
        advice += f', {_in_tiles(fitting, tiled=tile is not None)}'
    if tile is None:
        scale = math.sqrt(available / need)
        advice += f', or downscale it to about {int(width * scale)}x{int(height * scale)}'
    else:
        advice += ', or downscale it'
    raise InputError(f'{what} on the CPU needs about {human_bytes(need)} of memory but {human_bytes(available)} '
                     f'is free; {advice}')


def is_out_of_memory(err):
    """True for CUDA's out-of-memory error and for the CPU allocator's failure (both RuntimeErrors)."""
    return isinstance(err, torch.OutOfMemoryError) or (
        isinstance(err, RuntimeError) and "can't allocate memory" in str(err))


def out_of_memory_error(name, batch, height, width, device, tile=None):
    """The InputError to raise when fusing ``name`` on ``device`` (in tiles of ``tile`` pixels when
    given) ran out of memory."""
    what = f'{name}: fusing {width}x{height} (batch {batch})' + (f' in tiles of {tile}' if tile else '') + ' ran out of'
    smaller_batch = 'use a batch of 1, ' if batch > 1 else ''
    in_tiles = _in_tiles(_AFTER_RUNNING_OUT_TILE) if tile is None else 'use smaller tiles'
    if device.type == 'cuda':
        total = human_bytes(torch.cuda.get_device_properties(device).total_memory)
        cpu_need = human_bytes(cpu_inference_bytes(batch, height, width, tile))
        return InputError(f'{what} GPU memory on {device} ({total}); {smaller_batch}{in_tiles}, fuse it on the CPU '
                          f'(num_gpu: 0 / --device cpu; about {cpu_need} of RAM), or downscale it')
    return InputError(f'{what} memory on {device}; {smaller_batch}{_ON_A_GPU}, {in_tiles}, or downscale it')
