"""Process-wide settings a run changes, in one place: set when a run starts, restored when it ends.

``train.py`` and ``test.py`` enter :func:`run_settings` (through ``basicsr.utils.experiment.run_scope``);
library functions never change these settings themselves. glibc's allocator settings
(``keep_freed_memory``) cannot be read back, so they stay for the rest of the process; the others
are restored.
"""
import os
from contextlib import contextmanager

import torch

from basicsr.utils.memory import keep_freed_memory
from basicsr.utils.options import option_value

# cuBLAS needs a fixed workspace to be deterministic; it reads this before its first call.
CUBLAS_WORKSPACE = ('CUBLAS_WORKSPACE_CONFIG', ':4096:8')


@contextmanager
def run_settings(opt, training=False):
    """Apply the run's process-wide options for the ``with`` block.

    - ``keep_freed_memory`` (default true): glibc keeps freed memory, so per-image and per-step
      temporaries do not page-fault in again (1.8-2.9x faster on the CPU; docs/benchmarks.md).
    - training: ``deterministic`` kernels (slower on GPUs) or cuDNN's autotuner (the crops have
      one size), and ``use_tf32`` for matrix products and convolutions.

    Example:
        >>> with run_settings({'keep_freed_memory': False, 'use_tf32': True}, training=True):
        ...     torch.backends.cuda.matmul.allow_tf32
        True
        >>> torch.backends.cuda.matmul.allow_tf32
        False
    """
    if option_value(opt, 'keep_freed_memory'):
        keep_freed_memory()
    if not training:
        yield
        return
    cuda, cudnn = torch.backends.cuda, torch.backends.cudnn
    saved = (torch.are_deterministic_algorithms_enabled(), cudnn.benchmark, cuda.matmul.allow_tf32, cudnn.allow_tf32,
             os.environ.get(CUBLAS_WORKSPACE[0]))
    deterministic = bool(option_value(opt, 'deterministic'))
    if deterministic:
        os.environ.setdefault(*CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(deterministic)
    cudnn.benchmark = not deterministic
    cuda.matmul.allow_tf32 = cudnn.allow_tf32 = bool(option_value(opt, 'use_tf32'))
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0])
        cudnn.benchmark, cuda.matmul.allow_tf32, cudnn.allow_tf32 = saved[1:4]
        if saved[4] is None:
            os.environ.pop(CUBLAS_WORKSPACE[0], None)
