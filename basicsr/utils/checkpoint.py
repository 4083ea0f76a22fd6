"""Reading network weights into a model, and writing checkpoints atomically with a checksum.

Every file this project writes with :func:`atomic_save` (checkpoints, training states) holds,
under :data:`CHECKSUM_KEY`, the SHA-256 of its payload; :func:`load_verified` recomputes it, and
also checks the CRC-32 of every member of the file's zip container, so a file damaged on disk
is refused instead of loading different numbers. Files without the key (the released FISCNet
checkpoint, states of earlier versions) are checked by their CRCs only.
"""
import hashlib
import io
import os
import pickle
import zipfile
from pathlib import Path

import torch

from basicsr.utils.errors import InputError, writing
from basicsr.utils.logger import get_root_logger

CHECKSUM_KEY = 'sha256'


class DamagedFileError(InputError):
    """A checkpoint or state that is truncated, corrupt, fails its checksum or lacks required parts."""


def _feed(digest, obj):
    """Feed a canonical encoding of ``obj`` (as torch.save stores and torch.load returns it) to ``digest``."""
    if isinstance(obj, torch.Tensor):
        data = obj.detach().cpu().contiguous().reshape(-1)
        digest.update(f't{data.dtype}{tuple(obj.shape)}:'.encode())
        digest.update(data.view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        digest.update(f'd{len(obj)}:'.encode())
        for key, value in obj.items():
            _feed(digest, key)
            _feed(digest, value)
    elif isinstance(obj, (list, tuple)):
        digest.update(f'l{len(obj)}:'.encode())
        for item in obj:
            _feed(digest, item)
    elif isinstance(obj, float):
        digest.update(f'f{obj.hex()};'.encode())
    elif isinstance(obj, (bool, int, str, bytes)) or obj is None:
        digest.update(f'{type(obj).__name__}{obj!r};'.encode())
    else:
        digest.update(f'o{type(obj).__name__}{obj!r};'.encode())


def payload_checksum(payload):
    """SHA-256 (hex) of a checkpoint's payload: a dict without :data:`CHECKSUM_KEY`."""
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in payload.items() if k != CHECKSUM_KEY})
    return digest.hexdigest()


def check_container(path):
    """Check the CRC-32 of every member of a zip-format torch file (older formats pass).

    Raises:
        DamagedFileError: a member's data or the archive's structure is damaged.
    """
    try:
        if not zipfile.is_zipfile(path):
            return
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, ValueError, UnicodeDecodeError, EOFError, NotImplementedError) as err:
        raise DamagedFileError(f'{path}: damaged file ({type(err).__name__}); it cannot be used') from None
    if bad is not None:
        raise DamagedFileError(f'{path}: damaged file (checksum mismatch in {bad}); it cannot be used')


def load_verified(path, what='checkpoint'):
    """``torch.load`` a file after checking its container and, when it has one, its payload checksum.

    Only tensors and plain Python data are accepted (``weights_only``): a file that would run
    code when unpickled is refused.

    Returns:
        the loaded object, without :data:`CHECKSUM_KEY`.

    Raises:
        DamagedFileError: truncated, corrupt, unreadable as a PyTorch file, or the checksum differs.
    """
    check_container(path)
    try:
        obj = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError:
        raise DamagedFileError(f'{path}: not a readable PyTorch {what} (not one, or one holding more than tensors '
                               'and plain data, refused because loading it could run code)') from None
    except Exception as err:  # torch raises several unrelated types for a bad file
        detail = str(err).splitlines()[0][:100] if str(err) else 'no detail'
        raise DamagedFileError(f'{path}: not a readable PyTorch {what} ({type(err).__name__}: {detail})') from None
    if isinstance(obj, dict) and CHECKSUM_KEY in obj:
        stored = obj.pop(CHECKSUM_KEY)
        if stored != payload_checksum(obj):
            raise DamagedFileError(f'{path}: damaged file (the SHA-256 of its contents differs from the one saved '
                                   'with it); it cannot be used')
    return obj


def first_non_finite(state_dict):
    """The first key of ``state_dict`` whose floating-point tensor holds NaN or Inf, or None."""
    for key, value in state_dict.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
            return key
    return None


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
        InputError: the file is missing, damaged (see :func:`load_verified`), not a checkpoint,
            lacks the key, or holds NaN/Inf weights (the first such key is named).
    """
    path = Path(path)
    if not path.is_file():
        what = 'is a folder, not a checkpoint file' if path.is_dir() else 'checkpoint not found'
        raise InputError(f'{path}: {what}; fetch the released weights with '
                         '"python scripts/download_pretrained_models.py" or fix path.pretrain_network_g')
    ckpt = load_verified(path)
    if not isinstance(ckpt, dict) or not ckpt:
        raise InputError(f'{path}: expected a dict of tensors or of state dicts, found {type(ckpt).__name__}')
    if all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        params = ckpt
    else:
        key = param_key
        if key not in ckpt and key == 'params_ema' and 'params' in ckpt:
            get_root_logger().info(f'{path.name} has no params_ema; loading its params')
            key = 'params'
        if key not in ckpt:
            raise InputError(f"{path}: no '{param_key}' in the checkpoint (it holds {_short_list(map(str, ckpt))}); "
                             'set path.param_key_g to one of those')
        params = ckpt[key]
    if not isinstance(params, dict) or not params or not all(isinstance(v, torch.Tensor) for v in params.values()):
        raise InputError(f'{path}: the weights are not a dict of tensors; not a network checkpoint')
    bad = first_non_finite(params)
    if bad is not None:
        raise InputError(f'{path}: the weight {bad} holds NaN or infinite values; the checkpoint is unusable '
                         '(a diverged training?); use an earlier one')
    return params


def load_params(net, params, strict=True, source='checkpoint'):
    """Copy ``params`` into ``net``; report missing, unexpected and mis-shaped keys.

    A ``module.`` prefix (saved from DataParallel/DDP) is removed first, and a network's
    ``checkpoint_filter_fn`` (if it has one) renames released keys. With ``strict`` any
    difference raises; otherwise differences are logged and the fitting keys are loaded.

    Raises:
        CheckpointMismatchError: ``strict`` and the checkpoint does not fit the network.
    """
    params = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in params.items()}
    if hasattr(net, 'checkpoint_filter_fn'):  # released key names -> the network's (timm's convention)
        params = net.checkpoint_filter_fn(params)
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
    """torch.save ``obj`` (a dict) with its payload checksum to a temporary file in the same folder,
    then rename: a crash or Ctrl-C leaves the old file, and any failure removes the temporary file.

    Raises:
        WriteError: the file cannot be written (full disk, read-only folder ...), naming it.
    """
    path = Path(path)
    tmp = path.with_name(f'.{path.name}.tmp{os.getpid()}')
    # Serialised in memory first: a full disk then fails in write(), as an OSError, not inside torch.
    buffer = io.BytesIO()
    torch.save({**obj, CHECKSUM_KEY: payload_checksum(obj)}, buffer)
    with writing(path):
        try:
            with open(tmp, 'wb') as f:
                f.write(buffer.getbuffer())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            raise
