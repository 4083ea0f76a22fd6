"""Training states: written atomically, found again for ``--auto_resume``, with every RNG's state."""
import random
from pathlib import Path

import numpy as np
import torch

from basicsr.utils.checkpoint import DamagedFileError, atomic_save, first_non_finite, load_verified
from basicsr.utils.errors import InputError
from basicsr.utils.logger import get_root_logger

STATE_SUFFIX = '.state'
# What a resumed run reads from a state, and the type each part must have.
REQUIRED_PARTS = {'iter': int, 'epoch': int, 'position': int, 'optimizer': dict, 'scheduler': dict,
                  'params': dict, 'rng': dict}
RNG_PARTS = ('python', 'numpy', 'torch')


def rng_states():
    """The states of Python's, NumPy's and torch's (CPU and CUDA) global generators, as plain data."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states = {'python': random.getstate(), 'numpy': (kind, keys.tolist(), pos, has_gauss, cached),
              'torch': torch.get_rng_state()}
    if torch.cuda.is_available():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states):
    """Inverse of :func:`rng_states` (the CUDA states only where CUDA is available)."""
    random.setstate(tuple(item if not isinstance(item, list) else tuple(item) for item in states['python']))
    kind, keys, pos, has_gauss, cached = states['numpy']
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states['torch'])
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states['cuda'])


def state_path(folder, iteration):
    return Path(folder) / f'{iteration}{STATE_SUFFIX}'


def save_training_state(state, folder):
    """Write ``state`` (a dict with ``iter``) to ``folder/<iter>.state`` via a temporary file."""
    path = state_path(folder, state['iter'])
    atomic_save(state, path)
    return path


def load_training_state(path):
    """Read a state file written by :func:`save_training_state`.

    The file's checksums are verified (:func:`basicsr.utils.checkpoint.load_verified`) and every
    part a resumed run needs must be there, with finite weights.

    Raises:
        InputError: the file is missing; DamagedFileError (an InputError): it is truncated,
            corrupt, fails its checksum, or is not a complete training state.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f'{path}: training state not found; fix path.resume_state')
    state = load_verified(path, 'training state')
    if not isinstance(state, dict):
        raise DamagedFileError(f'{path}: not a training state (found {type(state).__name__})')
    missing = [key for key, kind in REQUIRED_PARTS.items() if not isinstance(state.get(key), kind)
               or isinstance(state.get(key), bool)]
    missing += [f'rng.{key}' for key in RNG_PARTS if 'rng' not in missing and key not in state.get('rng', {})]
    if missing:
        raise DamagedFileError(f'{path}: not a complete training state (missing or malformed: {", ".join(missing)})')
    if state['iter'] < 0 or state['epoch'] < 0 or state['position'] < 0:
        raise DamagedFileError(f'{path}: not a training state (negative iteration, epoch or position)')
    for key in ('params', 'params_ema'):
        bad = first_non_finite(state.get(key) or {})
        if bad is not None:
            raise DamagedFileError(f'{path}: the weight {key}.{bad} holds NaN or infinite values; use an earlier state')
    return state


def find_resume_state(folder):
    """The newest state in ``folder`` that loads, and its path; unreadable ones are skipped with a warning.

    Returns:
        tuple[dict, Path] | tuple[None, None]: nothing found.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None, None
    candidates = []
    for path in folder.glob(f'*{STATE_SUFFIX}'):
        if path.stem.isdigit():
            candidates.append((int(path.stem), path))
    for _, path in sorted(candidates, reverse=True):
        try:
            return load_training_state(path), path
        except InputError as err:
            get_root_logger().warning(f'skipping {err}')
    return None, None
