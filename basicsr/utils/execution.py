"""Execution modes of a network for inference: the same weights and results, run differently.

- ``eager``: plain PyTorch, the reference every other mode is checked against.
- ``channels_last``: NHWC tensors, which oneDNN/cuDNN convolutions prefer.
- ``compile``: ``torch.compile`` (Inductor), fusing element-wise work. It compiles once, for
  symbolic sizes, so a set of mixed sizes does not recompile per image; compiling costs about
  2.5 minutes on a 2-core CPU (cold cache), so it pays off on long runs.
- ``auto``: the fastest mode measured within the accuracy budget (``docs/benchmarks.md``) that
  costs nothing up front on the device: ``channels_last`` on the CPU, ``eager`` elsewhere (no
  GPU measurement yet).
"""
import torch

from basicsr.utils.errors import OptionError
from basicsr.utils.options import EXECUTION_MODES
AUTO_MODE = {'cpu': 'channels_last'}


def check_mode(mode):
    if mode != 'auto' and mode not in EXECUTION_MODES:
        raise OptionError(f"execution: '{mode}' is not a mode; use one of: auto, {', '.join(EXECUTION_MODES)}")
    return mode


def resolve_mode(mode, device):
    """``mode`` itself, or for ``auto`` the mode chosen for ``device`` (a torch.device)."""
    return AUTO_MODE.get(device.type, 'eager') if check_mode(mode) == 'auto' else mode


def prepare_network(net, mode='eager'):
    """Return a callable running ``net`` in ``mode``, one of EXECUTION_MODES (resolve ``auto``
    first); ``net`` itself is converted in place for channels_last."""
    if mode not in EXECUTION_MODES:
        raise ValueError(f'execution mode {mode!r} is not one of {EXECUTION_MODES}')
    if mode == 'channels_last':
        return net.to(memory_format=torch.channels_last)
    if mode == 'compile':
        # Symbolic sizes run as fast as specialised ones here (docs/benchmarks.md) and compile once.
        return torch.compile(net, dynamic=True)
    return net


def prepare_input(tensor, mode='eager'):
    """The layout ``mode`` expects for a (B, C, H, W) input."""
    return tensor.contiguous(memory_format=torch.channels_last) if mode == 'channels_last' else tensor
