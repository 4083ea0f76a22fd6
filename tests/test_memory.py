"""Host memory: the kept-memory policy, and the out-of-memory errors of inference."""
import re
import subprocess
import sys

import pytest
import torch

from basicsr.data import build_test_loader
from basicsr.data.fusion_test_dataset import FusionTestDataset
from basicsr.models.fusion_engine import FusionEngine
from basicsr.utils import memory
from basicsr.utils.errors import InputError
from conftest import REPO

BLOCK = 64 * 2**20
HEAP_PROBE = f'''
import sys
import numpy as np
from basicsr.utils.memory import _free_heap_bytes, keep_freed_memory
if sys.argv[1] == 'keep':
    assert keep_freed_memory()
block = np.ones({BLOCK}, dtype=np.uint8)
del block
print(_free_heap_bytes())
'''


def glibc_with_mallinfo2():
    import ctypes
    try:
        libc = ctypes.CDLL(None)
        return hasattr(libc, 'mallopt') and hasattr(libc, 'mallinfo2')
    except OSError:
        return False


@pytest.mark.skipif(not glibc_with_mallinfo2(), reason='needs glibc >= 2.33 (mallopt, mallinfo2)')
def test_kept_memory_stays_in_the_process():
    def free_heap_after_freeing_a_block(policy):
        result = subprocess.run([sys.executable, '-c', HEAP_PROBE, policy], cwd=REPO, capture_output=True,
                                text=True, check=True)
        return int(result.stdout)

    # glibc's default maps a 64 MiB block on its own and unmaps it when freed.
    assert free_heap_after_freeing_a_block('release') < BLOCK
    assert free_heap_after_freeing_a_block('keep') >= BLOCK


def test_cpu_check_names_the_image_and_a_size_that_fits(monkeypatch):
    available = 2 * 2**30
    monkeypatch.setattr(memory, 'available_host_bytes', lambda: available)
    memory.check_cpu_inference_fits('small', 1, 480, 640)  # about 0.8 GiB
    with pytest.raises(InputError) as err:
        memory.check_cpu_inference_fits('big.png', 1, 1536, 2048)
    message = str(err.value)
    assert message.startswith('big.png: fusing 2048x1536 (batch 1) on the CPU needs about 7.9 GiB of memory but '
                              '2.0 GiB is free; fuse it on a GPU (num_gpu: 1 / --device cuda)')
    width, height = map(int, re.search(r'downscale it to about (\d+)x(\d+)$', message).groups())
    assert abs(width / height - 2048 / 1536) < 0.01
    assert 0.9 * available < width * height * memory.CPU_INFERENCE_BYTES_PER_PIXEL <= available


def engine_and_loader(pair_folders, random_checkpoint):
    ir, vi = pair_folders
    engine = FusionEngine.from_options({'num_gpu': 0, 'network_g': {'type': 'FISCNet'},
                                        'path': {'pretrain_network_g': str(random_checkpoint)}})
    dataset = FusionTestDataset({'name': 'pairs', 'dataroot_ir': str(ir), 'dataroot_vi': str(vi)})
    return engine, build_test_loader(dataset, {}, engine.device)


def fuse_all(engine, loader):
    return [result.stem for result in engine.fuse_loader(loader, 'pairs')]


def test_fusing_a_set_checks_memory_before_each_image(tmp_path, pair_folders, random_checkpoint, monkeypatch):
    engine, loader = engine_and_loader(pair_folders, random_checkpoint)
    monkeypatch.setattr(memory, 'available_host_bytes', lambda: 2**20)
    with pytest.raises(InputError, match=r'^a: fusing 32x24 \(batch 1\) on the CPU needs about 2 MiB of memory '
                                         r'but 1 MiB is free'):
        fuse_all(engine, loader)
    monkeypatch.setattr(memory, 'available_host_bytes', lambda: None)  # unknown: no check
    assert fuse_all(engine, loader) == ['a', 'b', 'c']


def test_allocation_failure_becomes_a_one_line_error(tmp_path, pair_folders, random_checkpoint):
    engine, loader = engine_and_loader(pair_folders, random_checkpoint)

    def failing(message):
        def run(*inputs):
            raise RuntimeError(message)
        return run

    engine.forward = failing("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: "
                             "you tried to allocate 99 bytes")
    with pytest.raises(InputError, match=r'^a: fusing 32x24 \(batch 1\) ran out of memory on cpu; fuse it on a GPU'):
        fuse_all(engine, loader)
    engine.forward = failing('some other failure')
    with pytest.raises(RuntimeError, match='^some other failure$'):
        fuse_all(engine, loader)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_out_of_memory_suggests_the_cpu(pair_folders, random_checkpoint):
    engine, loader = engine_and_loader(pair_folders, random_checkpoint)
    engine.device = torch.device('cuda', 0)
    engine.net.to(engine.device)

    def run(*inputs):
        torch.empty(2**50, dtype=torch.uint8, device=engine.device)  # more than any GPU holds

    engine.forward = run
    with pytest.raises(InputError, match=r'^a: fusing 32x24 \(batch 1\) ran out of GPU memory on cuda:0 .*'
                                         r'fuse it on the CPU \(num_gpu: 0'):
        fuse_all(engine, loader)
