"""Reading network weights into a model, and writing checkpoints atomically."""
import os
from pathlib import Path

import torch

from basicsr.utils.errors import InputError
from basicsr.utils.logger import get_root_logger


class CheckpointMismatchError(InputError):
    """The checkpoint's keys or shapes do not fit the network."""


def _short_list(items, limit=5):
    items = sorted(items)
    shown = ', '.join(items[:limit])
    return shown + (f' and {len(items) - limit} more' if len(items) > limit else '')


def read_params(path, param_key='params_ema'):
    """Read the state dict stored under ``param_key`` in the checkpoint file ``path``.

    When ``param_key`` is ``params_ema`` and the file has only ``params`` (as the released
    FISCNet file), ``params`` is used and a note is logged. A bare state dict is accepted too.

    Raises:
        InputError: the file is missing, not a PyTorch checkpoint, or lacks the key.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f'{path}: checkpoint not found; fetch the released weights with '
                         '"python scripts/download_pretrained_models.py" or fix path.pretrain_network_g')
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # torch raises several unrelated types for a bad file
        raise InputError(f'{path}: not a readable PyTorch checkpoint ({type(err).__name__}); '
                         're-download or re-save it') from None
    if not isinstance(ckpt, dict) or not ckpt:
        raise InputError(f'{path}: expected a dict of tensors or of state dicts, found {type(ckpt).__name__}')
    if all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return ckpt
    key = param_key
    if key not in ckpt and key == 'params_ema' and 'params' in ckpt:
        get_root_logger().info(f'{path.name} has no params_ema; loading its params')
        key = 'params'
    if key not in ckpt:
        raise InputError(f"{path}: no '{param_key}' in the checkpoint (it holds {_short_list(ckpt)}); "
                         'set path.param_key_g to one of those')
    return ckpt[key]


def load_params(net, params, strict=True, source='checkpoint'):
    """Copy ``params`` into ``net``; report missing, unexpected and mis-shaped keys.

    A ``module.`` prefix (saved from DataParallel/DDP) is removed first. With ``strict`` any
    difference raises; otherwise differences are logged and the fitting keys are loaded.

    Raises:
        CheckpointMismatchError: ``strict`` and the checkpoint does not fit the network.
    """
    params = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in params.items()}
    own = net.state_dict()
    mismatched = {k: (tuple(v.shape), tuple(own[k].shape)) for k, v in params.items()
                  if k in own and v.shape != own[k].shape}
    for key in mismatched:
        del params[key]
    result = net.load_state_dict(params, strict=False)
    problems = []
    missing = [k for k in result.missing_keys if k not in mismatched]
    if missing:
        problems.append(f'{len(missing)} missing ({_short_list(missing)})')
    if result.unexpected_keys:
        problems.append(f'{len(result.unexpected_keys)} unexpected ({_short_list(result.unexpected_keys)})')
    if mismatched:
        shapes = [f'{k}: file {a} vs network {b}' for k, (a, b) in mismatched.items()]
        problems.append(f'{len(mismatched)} with other shapes ({_short_list(shapes, 3)})')
    if problems:
        message = f'{source} does not fit {type(net).__name__}: ' + '; '.join(problems)
        if strict:
            raise CheckpointMismatchError(message + '; check network_g against the checkpoint '
                                          'or set path.strict_load_g: false')
        get_root_logger().warning(message)


def atomic_save(obj, path):
    """torch.save to a temporary file in the same folder, then rename: a crash leaves the old file."""
    path = Path(path)
    tmp = path.with_name(f'.{path.name}.tmp{os.getpid()}')
    with open(tmp, 'wb') as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
