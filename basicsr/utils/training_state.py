"""Training states: written atomically, found again for ``--auto_resume``, with every RNG's state."""
import random
from pathlib import Path

import numpy as np
import torch

from basicsr.utils.checkpoint import atomic_save
from basicsr.utils.errors import InputError
from basicsr.utils.logger import get_root_logger

STATE_SUFFIX = '.state'


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

    Raises:
        InputError: the file is missing, truncated or not a training state.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f'{path}: training state not found; fix path.resume_state')
    try:
        # Only tensors and plain Python data are stored, so the safe loader reads every state.
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # a truncated zip raises RuntimeError, other damage other types
        raise InputError(f'{path}: not a readable training state ({type(err).__name__}: '
                         f'{str(err).splitlines()[0] if str(err) else "no detail"})') from None
    if not isinstance(state, dict) or 'iter' not in state:
        raise InputError(f'{path}: not a training state (no iteration recorded)')
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
