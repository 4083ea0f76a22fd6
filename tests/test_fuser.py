"""The Python API gives what the command line writes, from files and from arrays; errors of the
API and of scripts/fuse.py speak their own names."""
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import yaml

from conftest import REPO, WEIGHTS, require_shared, smooth_image
from basicsr import Fuser
from basicsr.utils.errors import InputError, OptionError


@pytest.fixture
def fuser(random_checkpoint):
    return Fuser(weights=random_checkpoint, device='cpu', param_key='params')


def fused_by_test_py(tmp_path, ir_dir, vi_dir, weights):
    from basicsr.test import test_pipeline
    opt = {'name': 'api', 'num_gpu': 0, 'network_g': {'type': 'FISCNet'},
           'datasets': {'test_1': {'name': 'set', 'dataroot_ir': str(ir_dir), 'dataroot_vi': str(vi_dir)}},
           'path': {'pretrain_network_g': str(weights), 'param_key_g': 'params',
                    'results_root': str(tmp_path / 'results')}}
    (tmp_path / 'api.yml').write_text(yaml.safe_dump(opt))
    test_pipeline(['-opt', str(tmp_path / 'api.yml')])
    return tmp_path / 'results' / 'visualization' / 'set'


def read_rgb(path):
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_files_and_arrays_give_the_pixels_test_py_writes(tmp_path, pair_folders, fuser, random_checkpoint):
    ir_dir, vi_dir = pair_folders
    written = fused_by_test_py(tmp_path, ir_dir, vi_dir, random_checkpoint)
    for stem in ('a', 'b'):
        ir_file, vi_file = ir_dir / f'{stem}.png', vi_dir / f'{stem}.png'
        expected = read_rgb(written / f'{stem}.png')
        assert np.array_equal(fuser(ir_file, vi_file), expected)
        assert np.array_equal(fuser(str(ir_file), str(vi_file)), expected)
        ir = cv2.imread(str(ir_file), cv2.IMREAD_GRAYSCALE)
        vi = read_rgb(vi_file)
        assert np.array_equal(fuser(ir, vi), expected)
        # 16-bit data are scaled by their own depth: x257 maps 8-bit values exactly onto 16 bits
        assert np.array_equal(fuser(ir.astype(np.uint16) * 257, vi.astype(np.uint16) * 257), expected)
        assert np.array_equal(fuser(ir[:, :, None], np.dstack([vi, np.full(ir.shape, 255, np.uint8)])), expected)
    out = tmp_path / 'out' / 'a.png'
    fuser.fuse_files(ir_dir / 'a.png', vi_dir / 'a.png', out)
    assert np.array_equal(read_rgb(out), read_rgb(written / 'a.png'))


def test_gray_visible_gives_a_gray_fusion(fuser, rng):
    fused = fuser(smooth_image(rng, 40, 48), smooth_image(rng, 40, 48))
    assert fused.shape == (40, 48, 3) and np.array_equal(fused[..., 0], fused[..., 1])


@pytest.mark.parametrize('ir, vi, message', [
    (np.zeros((40, 48), np.float32), np.zeros((40, 48), np.uint8), 'the ir array: unsupported pixel type float32'),
    (np.zeros((40, 48, 2), np.uint8), np.zeros((40, 48), np.uint8), r'the ir array: shape \(40, 48, 2\) is not an image'),
    (np.zeros((40, 48), np.uint8), np.zeros((40, 50, 3), np.uint8), 'the vi array: 50x40 but its infrared partner'),
    (np.zeros((7, 40), np.uint8), np.zeros((7, 40), np.uint8), "40x7 is below the network's minimum size"),
    ('nowhere/ir.png', np.zeros((40, 48), np.uint8), 'nowhere/ir.png'),
])
def test_bad_pairs_name_the_input(fuser, ir, vi, message):
    with pytest.raises(InputError, match=message):
        fuser(ir, vi)


def test_resize_and_bad_construction(random_checkpoint, tmp_path):
    fuser = Fuser(weights=random_checkpoint, device='cpu', param_key='params', resize_vi_to_ir=True)
    assert fuser(np.zeros((40, 48), np.uint8), np.zeros((80, 96, 3), np.uint8)).shape == (40, 48, 3)
    with pytest.raises(OptionError, match="device: 'gpu' is not valid"):
        Fuser(weights=random_checkpoint, device='gpu')
    with pytest.raises(InputError, match='checkpoint not found'):
        Fuser(weights=tmp_path / 'none.pth')
    with pytest.raises(InputError, match='size mismatch|does not fit'):
        Fuser(weights=random_checkpoint, param_key='params', network={'type': 'FISCNet', 'n_feat': 8})


def test_released_weights_reproduce_the_released_image():
    reference = require_shared('reference', 'TNO21', '05.png')
    data = require_shared('data', 'TNO21')
    require_shared('weights', 'FISCNet_official.pth')
    fused = Fuser(weights=WEIGHTS, device='cpu')(data / 'ir' / '05.png', data / 'vi' / '05.png')
    assert np.abs(fused.astype(int) - read_rgb(reference).astype(int)).max() <= 1


@pytest.fixture
def odd_checkpoints(tmp_path):
    torch.save({'params': {'x': torch.zeros(1)}}, tmp_path / 'other_network.pth')
    torch.save({'foo': 1}, tmp_path / 'no_params.pth')
    return tmp_path


@pytest.mark.parametrize('args, flag_words, argument_words', [
    (['--weights', 'other_network.pth'], 'give a FISCNet checkpoint with --weights', 'give the network= options'),
    (['--weights', 'no_params.pth'], 'give --param_key as one of those', 'give param_key as one of those'),
] + ([] if torch.cuda.is_available() else [
    (['--weights', 'random', '--device', 'cuda'], 'use --device cpu or auto', "use device='cpu' or 'auto'")]))
def test_errors_speak_the_tools_own_names(odd_checkpoints, pair_folders, args, flag_words, argument_words):
    ir_dir, vi_dir = pair_folders
    done = subprocess.run([sys.executable, str(REPO / 'scripts' / 'fuse.py'), '--ir', str(ir_dir / 'a.png'),
                           '--vi', str(vi_dir / 'a.png'), '--out', 'out', *args],
                          cwd=odd_checkpoints, capture_output=True, text=True)
    errors = [line for line in done.stderr.splitlines() if line.startswith('error: ')]
    assert done.returncode == 2 and len(errors) == 1 and flag_words in errors[0], done.stderr
    assert 'num_gpu' not in done.stderr and 'path.' not in done.stderr and 'network_g' not in done.stderr
    keywords = dict(zip(args[::2], args[1::2]))
    with pytest.raises((InputError, OptionError), match=re.escape(argument_words)):
        Fuser(weights=odd_checkpoints / keywords['--weights'] if keywords['--weights'] != 'random' else 'random',
              device=keywords.get('--device', 'cpu'))
