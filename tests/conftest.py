"""Shared fixtures: the read-only benchmark data beside the repository, synthetic images, and the
slow work some tests run beside the suite."""
import shutil
import subprocess
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

# Test name -> start(folder) -> Popen or None: slow work that runs beside the suite (see below).
BACKGROUND_JOBS = {}


def runs_beside_the_suite(test_name):
    """Register ``start(folder)`` as the background job of the test ``test_name``.

    Some tests wait for minutes of one core (Octave, Inductor's compiling) while the rest of the
    suite leaves a core partly idle. When such a test is selected, collection calls ``start`` with
    a fresh folder; it returns the started process (or None when the inputs are absent). The test
    then runs last and gets ``(process, folder)``, waited for, from the ``background`` fixture.
    """
    def register(start):
        BACKGROUND_JOBS[test_name] = start
        return start
    return register


@pytest.fixture(scope='session', autouse=True)
def user_process_settings():
    """The suite runs under the allocator setting train.py and test.py apply by default
    (keep_freed_memory: true), as a user's runs do; it also makes the suite 2-3x faster."""
    keep_freed_memory()


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected what will not run
def pytest_collection_modifyitems(session, config, items):
    config.background_jobs = {}
    for name in sorted({item.name for item in items} & set(BACKGROUND_JOBS)):
        folder = Path(tempfile.mkdtemp(prefix='fiscnet-tests-'))
        process = BACKGROUND_JOBS[name](folder)
        if process is None:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            config.background_jobs[name] = (process, folder)
    items.sort(key=lambda item: item.name in config.background_jobs)  # last, so the others run meanwhile


def pytest_sessionfinish(session):
    for process, folder in getattr(session.config, 'background_jobs', {}).values():
        process.kill()  # when its test did not wait for it (stopped by -x, interrupted ...)
        process.wait()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def background(request):
    """``(process, folder)`` of this test's background job once it has ended; None if none started."""
    job = getattr(request.config, 'background_jobs', {}).get(request.node.name)
    if job is not None:
        job[0].wait()
    return job


def start_logged(command, folder, **kwargs):
    """``command`` started with its output in ``folder/log.txt``."""
    with open(folder / 'log.txt', 'w') as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, **kwargs)


def job_log(folder):
    return (folder / 'log.txt').read_text()[-3000:]


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
