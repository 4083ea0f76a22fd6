"""Execution modes of a network for inference: the same weights and results, run differently.

- ``eager``: plain PyTorch, the reference every other mode is checked against.
- ``channels_last``: NHWC tensors, which oneDNN/cuDNN convolutions prefer.
- ``compile``: ``torch.compile`` (Inductor), fusing element-wise work; it compiles once per
  input size, which costs about a minute and a half on a 2-core CPU, so it pays off on many
  images of one size.
"""
import torch

from basicsr.utils.errors import OptionError

EXECUTION_MODES = ('eager', 'channels_last', 'compile')


def check_mode(mode):
    if mode not in EXECUTION_MODES:
        raise OptionError(f"execution: '{mode}' is not a mode; use one of: {', '.join(EXECUTION_MODES)}")
    return mode


def prepare_network(net, mode='eager'):
    """Return a callable running ``net`` in ``mode`` (``net`` itself is converted in place for channels_last)."""
    check_mode(mode)
    if mode == 'channels_last':
        return net.to(memory_format=torch.channels_last)
    if mode == 'compile':
        return torch.compile(net, dynamic=False)
    return net


def prepare_input(tensor, mode='eager'):
    """The layout ``mode`` expects for a (B, C, H, W) input."""
    return tensor.contiguous(memory_format=torch.channels_last) if mode == 'channels_last' else tensor
