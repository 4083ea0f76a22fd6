"""Shared fixtures: the read-only benchmark data beside the repository, and synthetic images."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from basicsr.utils.memory import keep_freed_memory

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / 'shared'
WEIGHTS = SHARED / 'weights' / 'FISCNet_official.pth'


@pytest.fixture(scope='session', autouse=True)
def user_process_settings():
    """The suite runs under the allocator setting train.py and test.py apply by default
    (keep_freed_memory: true), as a user's runs do; it also makes the suite 2-3x faster."""
    keep_freed_memory()


def require_shared(*parts):
    """The path ``../shared/<parts>``, or skip the test with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f'{path} is absent: the benchmark data and released weights live in ../shared '
                    'beside the repository (see README, "Tests")')
    return path


def write_image_file(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)
    return path


def smooth_image(rng, height, width, channels=None, dtype=np.uint8):
    """A smooth random image (blurred noise), as a natural image is smooth, of the given type."""
    shape = (height, width) if channels is None else (height, width, channels)
    img = cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), 2)
    img = (img - img.min()) / max(float(img.max() - img.min()), 1e-6)
    return np.round(img * np.iinfo(dtype).max).astype(dtype)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def pair_folders(tmp_path, rng):
    """``tmp/ir`` (gray PNG) and ``tmp/vi`` (RGB JPEG-free PNG) with three 24x32 pairs."""
    for stem in ('a', 'b', 'c'):
        write_image_file(tmp_path / 'ir' / f'{stem}.png', smooth_image(rng, 24, 32))
        write_image_file(tmp_path / 'vi' / f'{stem}.png', smooth_image(rng, 24, 32, 3))
    return tmp_path / 'ir', tmp_path / 'vi'


@pytest.fixture
def random_checkpoint(tmp_path):
    """A FISCNet checkpoint with fixed random weights, saved as ``{'params': ...}``."""
    from basicsr.archs.fiscnet_arch import FISCNet
    torch.manual_seed(0)
    path = tmp_path / 'random_fiscnet.pth'
    torch.save({'params': FISCNet().state_dict()}, path)
    return path
