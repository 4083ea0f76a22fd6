"""Every mistake a user can make gives one ``error:`` line and status 2, writes nothing where it must
not, and leaves the inputs byte-identical: outputs placed on inputs, untyped options, runs without
weights, damaged checkpoints and states, failures while writing, Ctrl-C, image bombs, float TIFFs."""
import errno
import hashlib
import importlib.util
import json
import os
import socket
import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest
import torch
import yaml

from conftest import REPO, require_shared, smooth_image, write_image_file
from basicsr.utils.checkpoint import CHECKSUM_KEY, atomic_save, read_params
from basicsr.utils.errors import InputError, WriteError, report_user_errors
from basicsr.utils.experiment import RunLock, make_run_dirs
from basicsr.utils.img_util import read_image
from basicsr.utils.options import parse_options
from basicsr.utils.training_state import find_resume_state, load_training_state, save_training_state


def load_script(relative):
    spec = importlib.util.spec_from_file_location(relative.replace('/', '_'), REPO / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FUSE = load_script('scripts/fuse.py')
METRICS = load_script('scripts/metrics/calculate_fusion_metrics.py')
SALIENCY = load_script('scripts/data_preparation/generate_saliency_masks.py')


def digests(root):
    """sha256 of every file under ``root`` (to prove inputs are untouched)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob('*')) if p.is_file()}


def one_error_line(capsys, status, message):
    """The run ended with status 2 and printed exactly one ``error:`` line holding ``message``."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if 'error:' in line.lower()]
    assert status == 2, err
    assert len(lines) == 1 and lines[0].startswith('error: ') and message in lines[0], err
    assert 'Traceback' not in err
    return lines[0]


def exit_status(main, *args):
    """Run ``main(*args)`` as its script runs it (``report_user_errors``); return the exit status."""
    try:
        status = report_user_errors(lambda: main(*args))
    except SystemExit as done:
        return done.code
    return status if isinstance(status, int) else 0


@pytest.fixture(autouse=True)
def fresh_console_logger():
    """The project logger writes to the stderr of the test that created it; each test captures its own."""
    import logging
    logger = logging.getLogger('basicsr')
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    yield


@pytest.fixture
def scene(tmp_path, rng):
    """``scene/{ir,vi}/{a,b}.png`` and ``scene/{ir,vis}.png``, small pairs; the working folder is tmp."""
    root = tmp_path / 'scene'
    for stem in ('a', 'b'):
        write_image_file(root / 'ir' / f'{stem}.png', smooth_image(rng, 24, 32))
        write_image_file(root / 'vi' / f'{stem}.png', smooth_image(rng, 24, 32, 3))
    write_image_file(root / 'ir.png', smooth_image(rng, 24, 32))
    write_image_file(root / 'vis.png', smooth_image(rng, 24, 32, 3))
    old = os.getcwd()
    os.chdir(tmp_path)
    yield root
    os.chdir(old)


# ------------------------------------------------------------------------------ fuse.py: inputs never written

@pytest.mark.parametrize('args, message', [
    (['--ir', 'scene/ir.png', '--vi', 'scene/vis.png', '--out', 'scene'], '--out scene: contains the --ir input'),
    (['--ir', 'scene/ir', '--vi', 'scene/vi', '--out', 'scene/ir'], '--out scene/ir: is the --ir input'),
    (['--ir', 'scene/ir', '--vi', 'scene/vi', '--out', 'scene/vi/fused'], 'lies inside the --vi input'),
    (['--ir', 'scene/ir', '--vi', 'scene/vi', '--out', '.'], '--out .: contains the --ir input'),
    (['--ir', 'scene/ir.png', '--vi', 'scene/vis.png', '--out', 'scene/ir.png'], 'is the --ir input'),
    (['--ir', 'scene/ir.png', '--vi', 'scene/vis.png', '--out', 'scene/vis.png/x'], 'lies under the file'),
    (['--ir', 'scene/ir', '--vi', 'scene/ir', '--out', 'out'], '--ir and --vi are both scene/ir'),
    (['--ir', 'scene/ir', '--vi', 'scene/vi', '--out', 'out', '--device', 'gpu'], "invalid choice: 'gpu'"),
])
def test_fuse_refuses_outputs_on_its_inputs(scene, capsys, random_checkpoint, args, message):
    before = digests(scene)
    status = exit_status(FUSE.main, [*args, '--weights', str(random_checkpoint)])
    one_error_line(capsys, status, message)
    assert digests(scene) == before and not (scene.parent / 'out').exists()


def test_fuse_output_path_is_or_lies_under_a_file(scene, capsys, random_checkpoint):
    (scene.parent / 'note.txt').write_text('keep')
    for out, message in (('note.txt', 'is the file'), ('note.txt/sub', 'lies under the file')):
        status = exit_status(FUSE.main, ['--ir', 'scene/ir', '--vi', 'scene/vi', '--out', out,
                                         '--weights', str(random_checkpoint)])
        one_error_line(capsys, status, message)
    assert (scene.parent / 'note.txt').read_text() == 'keep'


@pytest.mark.parametrize('weights, message', [
    (None, "--weights 'pretrained_models/FISCNet_official.pth': checkpoint not found"),
    ('', "--weights '': checkpoint not found"),
    ('scene', "--weights 'scene': checkpoint not found"),
])
def test_fuse_without_weights_stops(scene, capsys, weights, message):
    extra = [] if weights is None else ['--weights', weights]
    status = exit_status(FUSE.main, ['--ir', 'scene/ir', '--vi', 'scene/vi', '--out', 'out', *extra])
    assert '--weights random' in one_error_line(capsys, status, message)
    assert not (scene.parent / 'out').exists()


@pytest.mark.parametrize('bad_value', [float('nan'), float('inf')])
def test_a_non_finite_checkpoint_names_the_file_and_the_first_bad_key(scene, capsys, bad_value):
    from basicsr.archs.fiscnet_arch import FISCNet
    params = FISCNet().state_dict()
    key = [k for k, v in params.items() if v.is_floating_point()][2]
    params[key].view(-1)[0] = bad_value
    torch.save({'params': params}, 'bad.pth')
    status = exit_status(FUSE.main, ['--ir', 'scene/ir', '--vi', 'scene/vi', '--out', 'out', '--weights', 'bad.pth'])
    one_error_line(capsys, status, f'bad.pth: the weight {key} holds NaN or infinite values')
    assert not (scene.parent / 'out').exists()


def test_a_non_finite_network_output_stops_naming_the_image(scene, capsys, random_checkpoint, monkeypatch):
    from basicsr.archs.fiscnet_arch import FISCNet
    monkeypatch.setattr(FISCNet, 'forward', lambda self, vis, ir: torch.full_like(ir[:, :1], float('inf')))
    status = exit_status(FUSE.main, ['--ir', 'scene/ir', '--vi', 'scene/vi', '--out', 'out',
                                     '--weights', str(random_checkpoint), '--device', 'cpu', '--execution', 'eager'])
    one_error_line(capsys, status, 'a: the network output is not finite')
    assert not list((scene.parent / 'out').glob('*.png'))


# ------------------------------------------------------------------------------ options are typed

def write_options(file, **changes):
    opt = {'name': 'demo', 'num_gpu': 0,
           'datasets': {'test_1': {'name': 'set', 'dataroot_ir': 'scene/ir', 'dataroot_vi': 'scene/vi'}},
           'network_g': {'type': 'FISCNet'}, 'path': {'pretrain_network_g': 'random'}}
    opt.update(changes)
    file.write_text(yaml.safe_dump(opt))
    return str(file)


@pytest.mark.parametrize('override, message', [
    ('train.total_iter=-1', 'train.total_iter: -1 is not valid; expected an integer >= 1'),
    ('train.total_iter=2.5', 'train.total_iter: 2.5 is not valid; expected an integer'),
    ('train.ema_decay=2.0', 'train.ema_decay: 2.0 is not valid; expected a number >= 0 and < 1'),
    ('train.ema_decay=1', 'train.ema_decay: 1 is not valid'),
    ("val.save_img='no'", "val.save_img: 'no' is not valid; expected true or false"),
    ('val.save_img=~', 'val.save_img: None is not valid'),
    ('datasets.test_1.batch_size_per_gpu=four', "datasets.test_1.batch_size_per_gpu: 'four' is not valid"),
    ('datasets.test_1.num_worker_per_gpu=-1', 'num_worker_per_gpu: -1 is not valid'),
    ('datasets.test_1.gt_size=true', 'gt_size: True is not valid'),
    ('network_g.n_feat=[16', "--force_yml network_g.n_feat: the value '[16' is not valid YAML"),
    ('network_g.n_feat=0', 'network_g.n_feat: 0 is not valid'),
    ("network_g.separate_stage1_encoders='yes'", "network_g.separate_stage1_encoders: 'yes' is not valid"),
    ('logger.print_freq=0', 'logger.print_freq: 0 is not valid'),
    ('val.val_freq=-5', 'val.val_freq: -5 is not valid'),
    ('train.optim_g.lr=0', 'train.optim_g.lr: 0 is not valid; expected a number > 0'),
    ('train.optim_g.lr=fast', "train.optim_g.lr: 'fast' is not valid"),
    ('train.optim_g.betas=[0.9,1.0]', 'train.optim_g.betas[1]: 1.0 is not valid'),
    ('train.optim_g.betas=[0.9]', 'train.optim_g.betas: [0.9] is not valid'),
    ('train.scheduler.milestones=[5,3]', 'train.scheduler.milestones: [5, 3] is not valid'),
    ('train.scheduler.type=Step', "train.scheduler.type: no scheduler named 'Step'"),
    ('train.optim_g.type=Adamw', "train.optim_g.type: no optimizer named 'Adamw'"),
    ('train.max_loss={type: MaxFusionLoss, loss_weight: -1}', 'train.max_loss.loss_weight: -1 is not valid'),
    ('train.grad_clip=0', 'train.grad_clip: 0 is not valid'),
    ('num_gpu=two', "num_gpu: 'two' is not valid"),
    ('model_type=FusionModels', "model_type: no model named 'FusionModels'"),
    ('network_g.type=FISCNett', "network_g.type: no arch named 'FISCNett'"),
    ('manual_seed=-1', 'manual_seed: -1 is not valid'),
    ('path.pretrain_network_g=5', 'path.pretrain_network_g: 5 is not valid; expected a path'),
    ('path.results_root=[a]', "path.results_root: ['a'] is not valid"),
    ('datasets.test_1.num_worker_per_gpu=~', 'datasets.test_1.num_worker_per_gpu: None is not valid'),
    ('name=.', "name: '.' is not valid"),
    ('name=..', "name: '..' is not valid"),
    ('name=/abs/x', "name: '/abs/x' is not valid"),
    ('name=a/../../b', "name: 'a/../../b' is not valid"),
    ('name=2024', 'name: 2024 is not valid'),
    ('datasets.test_1.name=../x', "datasets.test_1.name: '../x' is not valid"),
    ('val.suffix=../../x', "val.suffix: '../../x' is not valid"),
    ('datasets.test_2={name: set, dataroot_ir: a, dataroot_vi: b}', "'set' is also the name of datasets.test_1"),
    ('datasets=[1, 2]', "datasets: [1, 2] is not valid; expected a mapping"),
    ('datasets.test_1=5', 'datasets.test_1: 5 is not valid'),
    ('name.sub=1', "--force_yml name.sub: 'name' is 'demo', not a section"),
    ('a..b=1', "'a..b' is not a key path"),
    ('=1', 'expected KEY.PATH=VALUE'),
])
def test_every_option_is_typed_in_yaml_and_on_the_command_line(tmp_path, override, message):
    with pytest.raises(Exception) as err:
        parse_options(True, ['-opt', write_options(tmp_path / 'opt.yml'), '--force_yml', override])
    assert type(err.value).__name__ == 'OptionError' and message in str(err.value), str(err.value)


def test_the_same_checks_apply_to_the_yaml_file(tmp_path):
    with pytest.raises(ValueError, match="'four' is not valid"):
        parse_options(False, ['-opt', write_options(tmp_path / 'o.yml', train={'total_iter': 5},
                                                    datasets={'test_1': {'name': 's', 'dataroot_ir': 'i',
                                                                         'dataroot_vi': 'v',
                                                                         'batch_size_per_gpu': 'four'}})])


@pytest.mark.parametrize('launcher, variable', [('pytorch', 'RANK'), ('slurm', 'SLURM_NODELIST')])
def test_a_launcher_outside_its_launcher_is_one_line(tmp_path, monkeypatch, launcher, variable):
    monkeypatch.delenv(variable, raising=False)
    with pytest.raises(ValueError, match=f'--launcher {launcher}: {variable} is not set'):
        parse_options(False, ['-opt', write_options(tmp_path / 'opt.yml'), '--launcher', launcher])


@pytest.mark.parametrize('text, message', [
    ('name: demo\ndatasets:\n  test_1: {name: a\nnetwork_g: {type: FISCNet}\n', 'line 4, column 10'),
    ('name: demo\n  bad: indent\n', 'line 2, column 6'),
    ('name: demo\nname: other\n', "line 2, column 1: the key 'name' is given twice (first on line 1)"),
    ('name: !!python/object/apply:os.system ["touch hacked"]\n', 'line 1, column 7'),
    ('- just\n- a list\n', 'must hold a mapping'),
])
def test_yaml_errors_name_the_file_line_and_column(tmp_path, text, message):
    path = tmp_path / 'broken.yml'
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        parse_options(False, ['-opt', str(path)])
    assert 'broken.yml' in str(err.value) and message in str(err.value), str(err.value)
    assert not (tmp_path / 'hacked').exists() and not os.path.exists('hacked')


def test_an_option_file_that_is_not_text_or_a_folder(tmp_path):
    binary = tmp_path / 'weights.yml'
    binary.write_bytes(b'\x80\x81\xff' * 10)
    with pytest.raises(ValueError, match='not a UTF-8 text file'):
        parse_options(False, ['-opt', str(binary)])
    with pytest.raises(ValueError, match='is a folder'):
        parse_options(False, ['-opt', str(tmp_path)])


# ------------------------------------------------------------------------------ test.py

def run_test_py(argv):
    from basicsr.test import test_pipeline
    return exit_status(test_pipeline, argv)


@pytest.mark.parametrize('changes, message', [
    ({'path': {'pretrain_network_g': None}}, 'path.pretrain_network_g is not set'),
    ({'path': {}}, "or to 'random' for a smoke test"),
    ({'path': {'pretrain_network_g': 'absent.pth'}}, 'absent.pth: checkpoint not found'),
    ({'path': {'pretrain_network_g': 'random', 'results_root': '.'}}, 'path.results_root .: contains'),
    ({'path': {'pretrain_network_g': 'random', 'results_root': 'scene'}}, 'results_root scene: contains the folder'),
    ({'path': {'pretrain_network_g': 'random', 'results_root': 'scene/vi'}}, 'results_root scene/vi: is the folder'),
    ({'path': {'pretrain_network_g': 'random', 'results_root': 'scene/ir/out'}}, 'lies inside the folder'),
    ({'path': {'pretrain_network_g': 'random', 'results_root': '..'}}, 'path.results_root ..: contains'),
    ({'datasets': {'test_1': {'name': 's', 'dataroot_ir': 'scene/ir', 'dataroot_vi': 'scene/ir'}}},
     'the vi folder scene/ir is also the ir folder'),
])
def test_test_py_refusals_leave_everything_as_it_was(scene, capsys, changes, message):
    opt_file = write_options(scene.parent / 'opt.yml', **changes)
    before = digests(scene.parent)
    one_error_line(capsys, run_test_py(['-opt', opt_file]), message)
    assert digests(scene.parent) == before and not (scene.parent / 'results').exists()


def test_test_py_refuses_to_archive_a_folder_that_is_not_a_run(scene, capsys):
    (scene.parent / 'photos').mkdir()
    (scene.parent / 'photos' / 'holiday.jpg').write_bytes(b'mine')
    opt_file = write_options(scene.parent / 'opt.yml', path={'pretrain_network_g': 'random', 'results_root': 'photos'})
    one_error_line(capsys, run_test_py(['-opt', opt_file]), 'path.results_root photos: exists and is not a run folder')
    assert (scene.parent / 'photos' / 'holiday.jpg').read_bytes() == b'mine'
    assert sorted(p.name for p in scene.parent.iterdir()) == ['opt.yml', 'photos', 'scene']


def test_a_live_run_keeps_its_folder_and_a_dead_ones_lock_is_taken_over(scene, capsys):
    opt_file = write_options(scene.parent / 'opt.yml')
    run_dir = scene.parent / 'results' / 'demo'
    (run_dir / 'visualization').mkdir(parents=True)
    (run_dir / 'visualization' / 'earlier.png').write_bytes(b'earlier output')
    sleeper = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        lock = {'pid': sleeper.pid, 'host': socket.gethostname(), 'start': None, 'since': 'now'}
        (scene.parent / 'results' / '.demo.lock').write_text(json.dumps(lock))
        line = one_error_line(capsys, run_test_py(['-opt', opt_file]), 'results/demo: in use by another run')
        assert f'pid {sleeper.pid}' in line and '.demo.lock' in line
        assert (run_dir / 'visualization' / 'earlier.png').read_bytes() == b'earlier output'
    finally:
        sleeper.kill()
        sleeper.wait()
    # The owner is gone: its lock is stale, the run goes ahead and archives the earlier folder.
    assert run_test_py(['-opt', opt_file]) == 0
    archived = list((scene.parent / 'results').glob('demo_archived_*'))
    assert len(archived) == 1 and (archived[0] / 'visualization' / 'earlier.png').read_bytes() == b'earlier output'
    assert sorted(p.name for p in (run_dir / 'visualization' / 'set').iterdir()) == ['a.png', 'b.png']
    assert not (scene.parent / 'results' / '.demo.lock').exists()  # released at the end


def test_an_error_from_a_loader_worker_is_still_one_line(capsys):
    """A DataLoader worker's error comes back with the worker's traceback in its message."""
    from basicsr.utils.errors import user_error_status
    err = InputError('Caught InputError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n'
                     '  File "x.py", line 1, in f\nbasicsr.utils.errors.InputError: vi/b.png: not a readable image')
    line = one_error_line(capsys, user_error_status(err), 'vi/b.png: not a readable image')
    assert line == 'error: vi/b.png: not a readable image'


def test_run_lock_unit(tmp_path):
    first = RunLock(tmp_path / 'run').acquire()
    record = json.loads(first.path.read_text())
    assert record['pid'] == os.getpid() and record['host'] == socket.gethostname()
    first.release()
    assert not first.path.exists()
    first.path.write_text('')  # a writer killed between creating and filling it, long ago
    os.utime(first.path, (0, 0))
    RunLock(tmp_path / 'run').acquire().release()


# ------------------------------------------------------------------------------ images: header first

def png_header_only(path, width, height):
    """A tiny PNG file that declares ``width`` x ``height`` pixels (an image "bomb")."""
    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)
    header = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(b'\0' * 64))
                     + chunk(b'IEND', b''))
    return path


def test_image_bombs_are_refused_from_the_header(tmp_path):
    with pytest.raises(InputError, match=r'bomb.png: 60000x60000 is 3,600,000,000 pixels, beyond the limit'):
        read_image(png_header_only(tmp_path / 'bomb.png', 60000, 60000))


@pytest.mark.parametrize('dtype, channels', [(np.float32, 1), (np.float32, 3), (np.int32, 1), (np.float64, 1),
                                             (np.int16, 3)])
def test_float_and_int_tiffs_get_one_message_everywhere(tmp_path, dtype, channels):
    from basicsr.data.saliency import read_gray_u8
    from basicsr.metrics import read_gray_uint8
    shape = (20, 30) if channels == 1 else (20, 30, channels)
    path = tmp_path / 'depth.tiff'
    assert cv2.imwrite(str(path), (np.random.default_rng(0).random(shape) * 100).astype(dtype))
    expected = f'depth.tiff: unsupported pixel type {np.dtype(dtype).name}: save as 8- or 16-bit'
    for reader in (read_image, read_gray_uint8, read_gray_u8):
        with pytest.raises(InputError, match=expected):
            reader(path)


def test_the_tools_refuse_a_bomb_and_a_float_tiff_in_one_line(scene, capsys, random_checkpoint):
    png_header_only(scene / 'ir' / 'b.png', 60000, 60000)
    status = exit_status(FUSE.main, ['--ir', 'scene/ir', '--vi', 'scene/vi', '--out', 'out',
                                     '--weights', str(random_checkpoint)])
    one_error_line(capsys, status, 'b.png: 60000x60000 is 3,600,000,000 pixels')
    status = SALIENCY.main(['--ir', 'scene/ir', '--vi', 'scene/vi', '--out', 'masks'])
    one_error_line(capsys, status, 'b.png: 60000x60000')
    assert not list((scene.parent / 'masks').glob('b*'))


# ------------------------------------------------------------------------------ metrics and saliency tools

def test_metrics_csv_may_not_go_into_an_input_folder(scene, capsys):
    before = digests(scene)
    for csv, message in (('scene/vi', '--csv scene/vi: is the --vi folder'),
                         ('scene', '--csv scene: contains the --ir folder'),
                         ('scene/ir.png', 'is the file')):
        status = exit_status(METRICS.main, ['--ir', 'scene/ir', '--vi', 'scene/vi', '--fused', 'scene/vi',
                                            '--csv', csv])
        one_error_line(capsys, status, message)
    status = exit_status(METRICS.main, ['--ir', 'scene/ir', '--vi', 'scene/vi', '--fused', 'scene/vi',
                                        '--workers', 'x'])
    one_error_line(capsys, status, "argument --workers: invalid int value: 'x'")
    assert digests(scene) == before


@pytest.mark.parametrize('out, message', [('scene/ir/masks', 'lies inside the --ir input folder'),
                                          ('scene', 'contains the --ir input folder'),
                                          ('scene/vi', 'is the --vi input folder')])
def test_saliency_output_may_not_touch_its_inputs(scene, capsys, out, message):
    before = digests(scene)
    one_error_line(capsys, SALIENCY.main(['--ir', 'scene/ir', '--vi', 'scene/vi', '--out', out]), message)
    assert digests(scene) == before


# ------------------------------------------------------------------------------ checkpoints and states

def small_state(iteration):
    return {'iter': iteration, 'epoch': 0, 'position': 0, 'optimizer': {'state': {}}, 'scheduler': {'last_epoch': 1},
            'params': {'w': torch.arange(4.0)},
            'rng': {'python': (3, (1, 2), None), 'numpy': [1], 'torch': torch.ones(2)}}


def flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


def test_a_flipped_byte_in_a_state_is_skipped_by_auto_resume_and_an_error_by_hand(tmp_path, caplog):
    for iteration in (2, 4):
        save_training_state(small_state(iteration), tmp_path)
    saved = torch.load(tmp_path / '4.state', weights_only=True)
    assert len(saved[CHECKSUM_KEY]) == 64
    # A byte inside the weights' storage: torch.load alone would read a different number.
    raw = (tmp_path / '4.state').read_bytes()
    flip_byte(tmp_path / '4.state', raw.index(torch.arange(4.0).numpy().tobytes()) + 5)
    with caplog.at_level('WARNING', logger='basicsr'):
        state, path = find_resume_state(tmp_path)
    assert path.name == '2.state' and state['iter'] == 2
    assert '4.state: damaged file' in caplog.text
    with pytest.raises(InputError, match='4.state: damaged file'):
        load_training_state(tmp_path / '4.state')


@pytest.mark.parametrize('drop', ['params', 'optimizer', 'rng', 'iter'])
def test_a_state_missing_a_part_is_damaged_not_a_key_error(tmp_path, drop):
    state = small_state(3)
    del state[drop]
    atomic_save(state, tmp_path / '3.state')
    with pytest.raises(InputError, match=f'3.state: not a complete training state .missing or malformed: {drop}'):
        load_training_state(tmp_path / '3.state')
    assert find_resume_state(tmp_path) == (None, None)


def test_a_checkpoint_written_here_carries_a_checksum_and_the_released_one_still_loads(tmp_path):
    atomic_save({'params': {'w': torch.ones(3)}}, tmp_path / 'net.pth')
    assert torch.equal(read_params(tmp_path / 'net.pth', 'params')['w'], torch.ones(3))
    flip_byte(tmp_path / 'net.pth', (tmp_path / 'net.pth').read_bytes().index(torch.ones(3).numpy().tobytes()) + 2)
    with pytest.raises(InputError, match='net.pth: damaged file'):
        read_params(tmp_path / 'net.pth', 'params')
    released = read_params(require_shared('weights', 'FISCNet_official.pth'))
    assert len(released) > 100


def test_a_failed_save_leaves_no_temporary_and_names_the_file(tmp_path, monkeypatch):
    atomic_save({'params': {'w': torch.ones(1)}}, tmp_path / 'net.pth')
    before = (tmp_path / 'net.pth').read_bytes()

    def disk_full(*args):
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(os, 'replace', disk_full)
    with pytest.raises(WriteError, match=r'net.pth: cannot write \(No space left on device\); the disk is full'):
        atomic_save({'params': {'w': torch.zeros(1)}}, tmp_path / 'net.pth')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['net.pth'] and (tmp_path / 'net.pth').read_bytes() == before


def test_resuming_removes_temporaries_a_killed_run_left(tmp_path):
    root = tmp_path / 'experiments' / 'run'
    (root / 'models').mkdir(parents=True)
    (root / 'models' / '.net_g_8.pth.tmp4242').write_bytes(b'half')
    (root / 'models' / 'net_g_4.pth').write_bytes(b'kept')
    opt = {'is_train': True, 'datasets': {}, 'path': {'experiments_root': str(root), 'models': str(root / 'models')}}
    make_run_dirs(opt, resuming=True).release()
    assert [p.name for p in (root / 'models').iterdir()] == ['net_g_4.pth']


# ------------------------------------------------------------------------------ train.py

@pytest.fixture
def one_thread():
    """Tiny training steps run fastest on one thread (and do not suffer from a busy machine's other threads)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def train_options(name='run', **train):
    pairs = require_shared('data', 'MSRS_train_mask')
    return {'name': name, 'num_gpu': 0, 'manual_seed': 10,
            'datasets': {'train': {'name': 'msrs', 'dataroot_ir': str(pairs / 'ir'), 'dataroot_vi': str(pairs / 'vi'),
                                   'dataroot_mask': str(pairs / 'mask'), 'gt_size': 16, 'batch_size_per_gpu': 4,
                                   'num_worker_per_gpu': 0}},
            'network_g': {'type': 'FISCNet', 'n_feat': 4},
            'train': {'optim_g': {'type': 'Adam', 'lr': 1e-3}, 'total_iter': 5,
                      'max_loss': {'type': 'MaxFusionLoss', 'loss_weight': 1}, **train},
            'logger': {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': False}}


def run_train_py(tmp_path, opt, *extra):
    from basicsr.train import main
    (tmp_path / 'opt.yml').write_text(yaml.safe_dump(opt))
    old_argv, old_cwd = sys.argv, os.getcwd()
    sys.argv, _ = ['train.py', '-opt', str(tmp_path / 'opt.yml'), *extra], os.chdir(tmp_path)
    try:
        return exit_status(main)
    finally:
        sys.argv = old_argv
        os.chdir(old_cwd)


def test_ctrl_c_during_training_says_where_the_last_state_is_and_resume_continues(one_thread, tmp_path, capsys, monkeypatch):
    from basicsr.models.fusion_model import FusionModel
    original = FusionModel.train_step

    def interrupted_at_2(self, batch, current_iter):
        if current_iter == 2:
            raise KeyboardInterrupt
        return original(self, batch, current_iter)

    monkeypatch.setattr(FusionModel, 'train_step', interrupted_at_2)
    opt = train_options(total_iter=2)
    opt['logger']['save_checkpoint_freq'] = 1
    status = run_train_py(tmp_path, opt)
    err = capsys.readouterr().err
    line = [line for line in err.splitlines() if line.startswith('error: ')]
    assert status == 130 and len(line) == 1 and 'Traceback' not in err
    assert 'interrupted (Ctrl-C) at iteration 2; the last complete training state is' in line[0]
    assert '1.state; run the same command with --auto_resume to continue' in line[0]
    states = tmp_path / 'experiments' / 'run' / 'training_states'
    assert sorted(p.name for p in states.iterdir()) == ['1.state']
    assert not (tmp_path / 'experiments' / '.run.lock').exists()

    monkeypatch.setattr(FusionModel, 'train_step', original)
    assert run_train_py(tmp_path, opt, '--auto_resume') == 0
    assert sorted(p.name for p in states.iterdir()) == ['1.state', '2.state']
    log = sorted((tmp_path / 'experiments' / 'run').glob('train_*.log'))[-1].read_text()
    assert 'resumed from' in log and 'iteration 1' in log


def test_a_full_disk_while_saving_stops_in_one_line_without_temporaries(one_thread, tmp_path, capsys, monkeypatch):
    import basicsr.utils.checkpoint as checkpoint
    real_replace = os.replace

    def full_at_iteration_2(src, dst):
        if os.path.basename(dst) == 'net_g_2.pth':
            raise OSError(errno.ENOSPC, 'No space left on device')
        return real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, 'replace', full_at_iteration_2)
    status = run_train_py(tmp_path, train_options())
    line = one_error_line(capsys, status, 'net_g_2.pth: cannot write (No space left on device); the disk is full')
    assert 'training stopped at iteration 2; no training state was saved yet' in line
    root = tmp_path / 'experiments' / 'run'
    assert not [p for p in root.rglob('*') if '.tmp' in p.name]


def test_train_py_experiment_folder_may_not_touch_the_data(tmp_path, capsys):
    opt = train_options()
    opt['path'] = {'experiments_root': opt['datasets']['train']['dataroot_ir'] + '/runs'}
    line = one_error_line(capsys, run_train_py(tmp_path, opt), 'lies inside the folder datasets.train.dataroot_ir')
    assert 'path.experiments_root' in line and not (tmp_path / 'experiments').exists()


def test_a_state_that_does_not_fit_the_run_is_one_line(one_thread, tmp_path, capsys):
    opt = train_options(total_iter=1)
    opt['logger']['save_checkpoint_freq'] = 1
    assert run_train_py(tmp_path, opt) == 0
    opt['network_g']['n_feat'] = 8
    status = run_train_py(tmp_path, opt, '--auto_resume')
    one_error_line(capsys, status, 'does not fit FISCNet')


# ------------------------------------------------------------------------------ as a user runs them

def test_the_reported_data_loss_cases_from_the_shell(scene, random_checkpoint):
    """fuse.py --out on the inputs' folder, as first reported: exit 2, one line, the infrared input intact."""
    before = digests(scene)
    done = subprocess.run([sys.executable, str(REPO / 'scripts' / 'fuse.py'), '--ir', 'scene/ir.png',
                           '--vi', 'scene/vis.png', '--out', 'scene', '--weights', str(random_checkpoint)],
                          capture_output=True, text=True, cwd=scene.parent)
    assert done.returncode == 2 and done.stderr.startswith('error: ') and done.stderr.count('\n') == 1, done.stderr
    assert digests(scene) == before
    done = subprocess.run([sys.executable, str(REPO / 'test.py'), '-opt', write_options(scene.parent / 'o.yml'),
                           '--force_yml', 'name=.'], capture_output=True, text=True, cwd=scene.parent)
    assert done.returncode == 2 and done.stderr.count('\n') == 1 and "name: '.' is not valid" in done.stderr
