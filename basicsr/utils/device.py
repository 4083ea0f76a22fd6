"""Choosing the torch device from the ``num_gpu`` option."""
import os

import torch

from basicsr.utils.errors import OptionError


def select_device(num_gpu='auto', distributed=False):
    """Return the device for this process.

    Args:
        num_gpu: ``'auto'`` (CUDA when present, else CPU), ``0`` (CPU) or a positive count of
            GPUs (an error without CUDA).
        distributed: one process per GPU; the process uses ``cuda:LOCAL_RANK``.
    """
    if num_gpu == 'auto':
        use_cuda = torch.cuda.is_available()
    elif isinstance(num_gpu, int) and not isinstance(num_gpu, bool) and num_gpu >= 0:
        use_cuda = num_gpu > 0
        if use_cuda and not torch.cuda.is_available():
            raise OptionError(f'num_gpu: {num_gpu} asks for CUDA, but no CUDA device is available; '
                              'set num_gpu: auto or 0 to run on the CPU')
    else:
        raise OptionError(f"num_gpu: {num_gpu!r} is not valid; use auto, 0 or a positive number")
    if not use_cuda:
        return torch.device('cpu')
    if distributed:
        return torch.device('cuda', int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count())
    return torch.device('cuda', torch.cuda.current_device())
