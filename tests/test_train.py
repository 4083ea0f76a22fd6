"""train.py end to end on real pairs from ../shared/data: learning, exact resume, failures, DDP."""
import os
import shutil
import socket
import subprocess
import sys

import cv2
import pytest
import torch
import yaml

from conftest import REPO, require_shared
from basicsr.utils.checkpoint import CHECKSUM_KEY
from basicsr.utils.errors import InputError, OptionError

CROP = 16  # small crops keep each CPU step near 0.1 s; the recipe's 128 is the default


@pytest.fixture(scope='module')
def train_pairs():
    """MSRS_train_mask: 8 real 640x480 IR/VI pairs with binary 0/255 masks."""
    return require_shared('data', 'MSRS_train_mask')


@pytest.fixture
def val_pairs(tmp_path):
    """Two real TNO pairs cut to 64x64, so a validation with metrics takes a fraction of a second."""
    src = require_shared('data', 'TNO_train_mask')
    for stem in ('01', '02'):
        for role in ('ir', 'vi'):
            img = cv2.imread(str(src / role / f'{stem}.png'), cv2.IMREAD_UNCHANGED)
            (tmp_path / 'val' / role).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(tmp_path / 'val' / role / f'{stem}.png'), img[100:164, 100:164])
    return tmp_path / 'val'


def options(train_pairs, name='run', val=None, **train):
    opt = {
        'name': name, 'num_gpu': 0, 'manual_seed': 10,
        'datasets': {'train': {
            'name': 'msrs', 'type': 'FusionTrainDataset', 'dataroot_ir': str(train_pairs / 'ir'),
            'dataroot_vi': str(train_pairs / 'vi'), 'dataroot_mask': str(train_pairs / 'mask'),
            'gt_size': CROP, 'dataset_enlarge_ratio': 1, 'batch_size_per_gpu': 4, 'num_worker_per_gpu': 0}},
        'network_g': {'type': 'FISCNet', 'n_feat': 16},
        'train': {'ema_decay': 0.9, 'optim_g': {'type': 'Adam', 'lr': 1e-3},
                  'scheduler': {'type': 'MultiStepLR', 'milestones': [4], 'gamma': 0.5}, 'total_iter': 6,
                  'mask_loss': {'type': 'MaskFusionL1Loss', 'loss_weight': 3},
                  'max_loss': {'type': 'MaxFusionLoss', 'loss_weight': 10},
                  'grad_loss': {'type': 'GradientFusionLoss', 'loss_weight': 10}, **train},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 3, 'use_tb_logger': False},
    }
    if val is not None:
        opt['datasets']['val'] = {'name': 'tno', 'dataroot_ir': str(val / 'ir'), 'dataroot_vi': str(val / 'vi')}
        opt['val'] = {'val_freq': 3, 'metrics': ['EN', 'SD'], 'save_img': True}
        opt['logger']['use_tb_logger'] = True
    return opt


def write(tmp_path, opt, name='opt.yml'):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(opt))
    return str(path)


def train(tmp_path, opt, *extra):
    """Run train.py's pipeline in this process, in ``tmp_path``; return the experiment folder."""
    from basicsr.train import train_pipeline
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        train_pipeline(['-opt', write(tmp_path, opt, f"{opt['name']}.yml"), *extra])
    finally:
        os.chdir(cwd)
    return tmp_path / 'experiments' / opt['name']


def load(path):
    return torch.load(path, map_location='cpu', weights_only=True)


def recipe_loss(net, batch, opt):
    """The recipe's total loss of ``net`` on ``batch``."""
    from basicsr.losses import build_loss
    from basicsr.utils.color_util import rgb_to_ycrcb
    vis = rgb_to_ycrcb(batch['vi'])
    with torch.no_grad():
        fused = net(vis, batch['ir']).clamp(0, 1)
        return sum(build_loss(opt['train'][key])(fused, vis[:, :1], batch['ir'], batch['mask']).item()
                   for key in ('mask_loss', 'max_loss', 'grad_loss'))


def test_a_short_run_on_real_pairs_lowers_the_loss(tmp_path, train_pairs):
    """The recipe on real pairs with VSM masks straight from the saliency script (no conversion)."""
    from basicsr.archs.fiscnet_arch import FISCNet
    from basicsr.data.fusion_train_dataset import FusionTrainDataset
    result = subprocess.run([sys.executable, str(REPO / 'scripts' / 'data_preparation' / 'generate_saliency_masks.py'),
                             '--ir', str(train_pairs / 'ir'), '--vi', str(train_pairs / 'vi'),
                             '--out', str(tmp_path / 'vsm'), '--mode', 'binary'], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    opt = options(train_pairs, total_iter=20, ema_decay=0)
    opt['datasets']['train']['dataroot_mask'] = str(tmp_path / 'vsm')
    opt['train']['scheduler']['milestones'] = [100]
    opt['logger'].update(print_freq=10, save_checkpoint_freq=20)
    root = train(tmp_path, opt)
    # The same crops for both networks: 8 fixed samples, one of each pair.
    dataset = FusionTrainDataset(dict(opt['datasets']['train'], gt_size=64))
    batch = torch.utils.data.default_collate([dataset[(i, 1234)] for i in range(len(dataset))])
    torch.manual_seed(10)  # train.py seeds the same way before building the network
    initial = FISCNet(n_feat=16)
    trained = FISCNet(n_feat=16)
    trained.load_state_dict(load(root / 'models' / 'net_g_20.pth')['params'])
    before, after = recipe_loss(initial, batch, opt), recipe_loss(trained, batch, opt)
    assert after < 0.9 * before, (before, after)
    log = next(root.glob('train_*.log')).read_text()
    assert 'iter 20/20' in log and 'it/s' in log and 'l_total' in log


def test_resume_continues_bit_identically_and_skips_a_truncated_state(tmp_path, train_pairs, val_pairs):
    """6 iterations in one go vs. the same run cut at 3 (mid-epoch: 2 steps per epoch) and resumed."""
    opt = options(train_pairs, val=val_pairs)
    root = train(tmp_path, opt)
    models = root / 'models'
    assert sorted(p.name for p in models.glob('net_g_*.pth')) == [
        'net_g_3.pth', 'net_g_6.pth', 'net_g_best_tno_EN.pth', 'net_g_best_tno_SD.pth', 'net_g_latest.pth']
    assert sorted(p.name for p in (root / 'visualization' / 'tno').iterdir()) == [
        '01_3.png', '01_6.png', '02_3.png', '02_6.png']
    assert list((root / 'tb_logger').iterdir())
    uninterrupted = load(models / 'net_g_6.pth')
    assert set(uninterrupted) == {'params', 'params_ema', CHECKSUM_KEY}
    state_6 = load(root / 'training_states' / '6.state')
    assert state_6['iter'] == 6 and state_6['epoch'] == 2 and set(state_6['best_metrics']['tno']) == {'EN', 'SD'}

    # A crash while copying the newest state leaves it cut short: it must be skipped for 3.state.
    data = (root / 'training_states' / '6.state').read_bytes()
    (root / 'training_states' / '6.state').write_bytes(data[:len(data) // 2])
    (models / 'net_g_6.pth').unlink()
    train(tmp_path, opt, '--auto_resume')
    resumed = load(models / 'net_g_6.pth')
    for key in ('params', 'params_ema'):
        for name, tensor in uninterrupted[key].items():
            assert torch.equal(tensor, resumed[key][name]), (key, name)
    log = sorted(root.glob('train_*.log'))[-1].read_text()
    assert 'skipping' in log and '6.state' in log
    assert 'resumed from' in log and 'iteration 3, epoch 1' in log
    assert not list(tmp_path.glob('experiments/run_archived_*'))


def test_a_nan_loss_stops_naming_the_iteration_and_term_and_keeps_the_last_checkpoint(
        tmp_path, train_pairs, monkeypatch):
    from basicsr.losses.intensity_loss import MaxFusionLoss
    from basicsr.models.fusion_model import LossNotFiniteError
    calls = []
    original = MaxFusionLoss.forward

    def nan_at_third_call(self, *args, **kwargs):
        calls.append(1)
        loss = original(self, *args, **kwargs)
        return loss * float('nan') if len(calls) == 3 else loss

    monkeypatch.setattr(MaxFusionLoss, 'forward', nan_at_third_call)
    opt = options(train_pairs)
    opt['logger']['save_checkpoint_freq'] = 2
    with pytest.raises(LossNotFiniteError) as err:
        train(tmp_path, opt)
    message = str(err.value)
    assert 'iteration 3: the loss term l_max (MaxFusionLoss) is nan' in message
    assert 'net_g_2.pth' in message
    models = tmp_path / 'experiments' / 'run' / 'models'
    assert sorted(p.name for p in models.iterdir()) == ['net_g_2.pth', 'net_g_latest.pth']


def test_user_errors_name_the_key_or_file(tmp_path, train_pairs, pair_folders):
    opt = options(train_pairs)
    del opt['datasets']['train']['dataroot_mask']
    with pytest.raises(OptionError, match='train.mask_loss needs saliency masks: set datasets.train.dataroot_mask'):
        train(tmp_path, opt)
    opt = options(train_pairs)
    opt['train']['max_loss']['loss_weigth'] = 1
    with pytest.raises(OptionError, match="unknown option 'train.max_loss.loss_weigth' .did you mean 'loss_weight'"):
        train(tmp_path, opt)
    opt = options(train_pairs)
    ir, vi = pair_folders  # 24 x 32 images
    shutil.copytree(vi, tmp_path / 'mask')
    opt['datasets']['train'].update(dataroot_ir=str(ir), dataroot_vi=str(vi), dataroot_mask=str(tmp_path / 'mask'),
                                     gt_size=32, batch_size_per_gpu=2)
    with pytest.raises(InputError, match=r'ir.[abc].png: 32x24 is smaller than the training crop gt_size 32'):
        train(tmp_path, opt)


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_torchrun_two_processes_of_two_match_one_process_of_four(tmp_path, train_pairs):
    """Same global batch, samples and crops. SGD: Adam's first steps, ~lr * sign(gradient), would turn
    the rounding differences of tiny gradients into differences of the order of lr."""
    sgd = {'type': 'SGD', 'lr': 0.05}
    opt = options(train_pairs, name='single', total_iter=2, ema_decay=0, optim_g=sgd)
    opt['logger']['save_checkpoint_freq'] = 2
    single = load(train(tmp_path, opt) / 'models' / 'net_g_2.pth')['params']

    opt = options(train_pairs, name='ddp', total_iter=2, ema_decay=0, optim_g=sgd)
    opt['logger']['save_checkpoint_freq'] = 2
    opt['datasets']['train']['batch_size_per_gpu'] = 2
    opt['dist_params'] = {'backend': 'gloo', 'port': free_port()}
    env = dict(os.environ, OMP_NUM_THREADS='1')
    result = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
                             '--master_port', str(opt['dist_params']['port']), str(REPO / 'train.py'),
                             '-opt', write(tmp_path, opt), '--launcher', 'pytorch'],
                            cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    log = next((tmp_path / 'experiments' / 'ddp').glob('train_*.log')).read_text()
    assert '2 process(es)' in log
    ddp = load(tmp_path / 'experiments' / 'ddp' / 'models' / 'net_g_2.pth')['params']
    for name, tensor in single.items():
        torch.testing.assert_close(ddp[name], tensor, rtol=1e-5, atol=1e-6, msg=name)
