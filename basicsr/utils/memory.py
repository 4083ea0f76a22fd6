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

import torch

from basicsr.utils.errors import InputError

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # the largest mmap threshold glibc accepts on 64-bit
_KEEP_ALL = 2**31 - 1  # mallopt takes an int: keep up to 2 GiB of free memory at the heap's top

# Peak host memory of one FISCNet (n_feat 16) float32 inference, per input pixel and batch item:
# 2.3-2.6 KB measured from 320x240 to 2048x1536 (scripts/benchmark.py), rounded up.
CPU_INFERENCE_BYTES_PER_PIXEL = 2700
_ON_A_GPU = 'fuse it on a GPU (num_gpu: 1 / --device cuda), free memory'


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


def check_cpu_inference_fits(name, batch, height, width, bytes_per_pixel=CPU_INFERENCE_BYTES_PER_PIXEL):
    """Refuse, before starting, an inference the machine's free memory cannot hold.

    On Linux the kernel's out-of-memory killer would otherwise end the process without a word.

    Raises:
        InputError: the estimated peak exceeds :func:`available_host_bytes`; the message names
            ``name``, the estimate and what to do.
    """
    available = available_host_bytes()
    need = bytes_per_pixel * batch * height * width
    if available is None or need <= available:
        return
    scale = math.sqrt(available / need)
    raise InputError(f'{name}: fusing {width}x{height} (batch {batch}) on the CPU needs about {human_bytes(need)} '
                     f'of memory but {human_bytes(available)} is free; {_ON_A_GPU}, or downscale it to about '
                     f'{int(width * scale)}x{int(height * scale)}')


def is_out_of_memory(err):
    """True for CUDA's out-of-memory error and for the CPU allocator's failure (both RuntimeErrors)."""
    return isinstance(err, torch.OutOfMemoryError) or (
        isinstance(err, RuntimeError) and "can't allocate memory" in str(err))


def out_of_memory_error(name, batch, height, width, device):
    """The InputError to raise when fusing ``name`` on ``device`` ran out of memory."""
    what = f'{name}: fusing {width}x{height} (batch {batch}) ran out of'
    smaller_batch = 'use a batch of 1, ' if batch > 1 else ''
    if device.type == 'cuda':
        total = human_bytes(torch.cuda.get_device_properties(device).total_memory)
        cpu_need = human_bytes(CPU_INFERENCE_BYTES_PER_PIXEL * batch * height * width)
        return InputError(f'{what} GPU memory on {device} ({total}); {smaller_batch}fuse it on the CPU '
                          f'(num_gpu: 0 / --device cpu; about {cpu_need} of RAM), or downscale it')
    return InputError(f'{what} memory on {device}; {smaller_batch}{_ON_A_GPU}, or downscale it')
