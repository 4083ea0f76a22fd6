"""Shared fixtures: the read-only benchmark data beside the repository, synthetic images, and the
compiled network's output computed beside the suite."""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from basicsr.utils.memory import keep_freed_memory

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / 'shared'
WEIGHTS = SHARED / 'weights' / 'FISCNet_official.pth'

# execution: compile takes about 5 minutes of one core to compile FISCNet (cold Inductor cache),
# while the rest of the suite leaves a core partly idle. So when the test of that mode is selected,
# the fusion of this pair starts at collection in its own process and runs beside the other tests;
# the test runs last and waits for its result.
COMPILED_PAIR = ('TNO21', '01')
COMPILE_TEST = 'test_fiscnet_arch.py::test_compile_stays_within_the_accuracy_budget'
COMPILE_CHILD = ('import sys, numpy; from test_fiscnet_arch import released_fused_y; '
                 f'numpy.save(sys.argv[1], released_fused_y("compile", *{COMPILED_PAIR!r}))')


@pytest.fixture(scope='session', autouse=True)
def user_process_settings():
    """The suite runs under the allocator setting train.py and test.py apply by default
    (keep_freed_memory: true), as a user's runs do; it also makes the suite 2-3x faster."""
    keep_freed_memory()


def pytest_collection_modifyitems(session, config, items):
    inputs = [WEIGHTS, SHARED / 'reference' / COMPILED_PAIR[0], SHARED / 'data' / COMPILED_PAIR[0]]
    if not any(item.nodeid.endswith(COMPILE_TEST) for item in items) or not all(p.exists() for p in inputs):
        return
    folder = Path(tempfile.mkdtemp(prefix='fiscnet-compile-'))
    log = open(folder / 'log.txt', 'w')
    # One compute thread: the compiling itself is single-threaded, and the suite keeps the other core.
    process = subprocess.Popen([sys.executable, '-c', COMPILE_CHILD, str(folder / 'fused_y.npy')],
                               cwd=Path(__file__).parent, env={**os.environ, 'OMP_NUM_THREADS': '1'},
                               stdout=log, stderr=subprocess.STDOUT)
    log.close()
    config.compile_job = (process, folder)
    items.sort(key=lambda item: item.nodeid.endswith(COMPILE_TEST))  # last, so the others run meanwhile


def pytest_sessionfinish(session):
    job = getattr(session.config, 'compile_job', None)
    if job is not None:
        process, folder = job
        process.kill()  # when the test did not wait for it (deselected by -x, interrupted ...)
        process.wait()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def compiled_fused_y(request):
    """The released network's raw fused Y of COMPILED_PAIR in execution mode compile."""
    job = getattr(request.config, 'compile_job', None)
    if job is None:  # the inputs are absent (a skip), or the test was reached without collection selecting it
        require_shared('weights', 'FISCNet_official.pth')
        require_shared('data', COMPILED_PAIR[0])
        from test_fiscnet_arch import released_fused_y
        return released_fused_y('compile', *COMPILED_PAIR)
    process, folder = job
    assert process.wait() == 0, (folder / 'log.txt').read_text()[-3000:]
    return np.load(folder / 'fused_y.npy')


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
