"""The released project's option files run here with only their paths (and run lengths) edited."""
import numpy as np
import pytest
import torch

from conftest import smooth_image, write_image_file
from basicsr.utils.checkpoint import CHECKSUM_KEY
from basicsr.utils.errors import OptionError
from basicsr.utils.options import load_yaml
from basicsr.utils.released_options import translate_released_keys

# The released files' keys and names, BasicSR style; values are what a user edits (paths) or
# what keeps the test short (iterations, crop, batch, no GPU on the test machine).
RELEASED_TEST = """\
name: FISCNet_test
model_type: FusionMaskModel
scale: 1
num_gpu: 0
manual_seed: 10

datasets:
  test_1:
    name: TNO
    type: PairedFusionMaskImageDataset
    dataroot_gt: {root}/ir
    dataroot_lq: {root}/vi
    io_backend:
      type: disk

network_g:
  type: FISCNet
  vis_channels: 1
  inf_channels: 1
  n_feat: 16

path:
  pretrain_network_g: {weights}
  strict_load_g: true
  param_key_g: params

val:
  save_img: true
  suffix: ~
"""

RELEASED_TRAIN = """\
name: FISCNet_train
model_type: FusionMaskModel
scale: 1
num_gpu: 0
manual_seed: 10
use_tb_logger: false

datasets:
  train:
    name: M3FD
    type: PairedFusionMaskImageDataset
    dataroot_gt: {root}/ir
    dataroot_lq: {root}/vi
    dataroot_mask: {root}/mask
    filename_tmpl: '{{}}'
    io_backend:
      type: disk
    gt_size: 32
    use_flip: true
    use_rot: true
    use_shuffle: true
    num_worker_per_gpu: 0
    batch_size_per_gpu: 2
    dataset_enlarge_ratio: 1
    prefetch_mode: ~
  val:
    name: TNO
    type: PairedFusionMaskImageDataset
    dataroot_gt: {root}/ir
    dataroot_lq: {root}/vi
    io_backend:
      type: disk

network_g:
  type: FISCNet
  vis_channels: 1
  inf_channels: 1
  n_feat: 16

path:
  pretrain_network_g: ~
  strict_load_g: true
  resume_state: ~

train:
  dual: false
  ema_decay: 0
  optim_g:
    type: Adam
    lr: !!float 1e-4
    weight_decay: 0
    betas: [0.9, 0.999]
  scheduler:
    type: MultiStepLR
    milestones: [!!float 15e3, 25000]
    gamma: 0.75
  total_iter: 2
  warmup_iter: -1
  pixel_opt:
    type: MaskFusionL1loss
    loss_weight: 3
    reduction: mean
  max_opt:
    type: MaxFusionloss
    loss_weight: 10
    reduction: mean
  gradient_opt:
    type: GradientFusionloss
    loss_weight: 10
    reduction: mean

val:
  val_freq: !!float 2
  save_img: true

logger:
  print_freq: 1
  save_checkpoint_freq: !!float 2
  use_tb_logger: false
  wandb:
    project: ~
    resume_id: ~

dist_params:
  backend: nccl
  port: 29500
"""


@pytest.fixture
def released_data(tmp_path, rng):
    """Two 40x48 IR/VI pairs with binary saliency masks."""
    root = tmp_path / 'data'
    for stem in ('01', '02'):
        write_image_file(root / 'ir' / f'{stem}.png', smooth_image(rng, 40, 48))
        write_image_file(root / 'vi' / f'{stem}.png', smooth_image(rng, 40, 48, 3))
        write_image_file(root / 'mask' / f'{stem}.png', np.where(smooth_image(rng, 40, 48) > 128, 255, 0).astype(np.uint8))
    return root


def logged_notes(run_folder):
    log = next(run_folder.glob('*.log')).read_text()
    return [line.split('released option file: ', 1)[1] for line in log.splitlines() if 'released option file: ' in line]


def test_released_test_file_runs(tmp_path, released_data, random_checkpoint, monkeypatch):
    from basicsr.test import test_pipeline
    monkeypatch.chdir(tmp_path)
    option_file = tmp_path / 'test_FISCNet.yml'
    option_file.write_text(RELEASED_TEST.format(root=released_data, weights=random_checkpoint))
    opt = test_pipeline(['-opt', str(option_file)])
    written = sorted(p.name for p in (tmp_path / 'results' / 'FISCNet_test' / 'visualization' / 'TNO').iterdir())
    assert written == ['01.png', '02.png']
    assert opt['model_type'] == 'FusionModel'
    notes = logged_notes(tmp_path / 'results' / 'FISCNet_test')
    assert notes == ['model_type: FusionMaskModel -> FusionModel (released name)',
                     'scale: ignored (fusion keeps the image size)',
                     "datasets.test_1.type: PairedFusionMaskImageDataset -> this phase's dataset class (released name)"]


def test_released_train_file_runs(tmp_path, released_data, monkeypatch):
    from basicsr.train import train_pipeline
    monkeypatch.chdir(tmp_path)
    option_file = tmp_path / 'train_FISCNet.yml'
    option_file.write_text(RELEASED_TRAIN.format(root=released_data))
    opt = train_pipeline(['-opt', str(option_file)])
    run = tmp_path / 'experiments' / 'FISCNet_train'
    assert (run / 'models' / 'net_g_2.pth').is_file()
    assert sorted(p.name for p in (run / 'visualization' / 'TNO').iterdir()) == ['01_2.png', '02_2.png']
    assert not (run / 'tb_logger').exists() or not any((run / 'tb_logger').iterdir())  # use_tb_logger: false moved
    assert sorted(k for k in opt['train'] if k.endswith('_loss')) == ['grad_loss', 'mask_loss', 'max_loss']
    assert opt['val']['val_freq'] == 2 and isinstance(opt['logger']['save_checkpoint_freq'], int)
    assert opt['train']['scheduler']['milestones'] == [15000, 25000]
    notes = logged_notes(run)
    for expected in ('use_tb_logger -> logger.use_tb_logger (released name)', 'train.dual: ignored (one network is trained)',
                     'train.pixel_opt -> train.mask_loss (released name)',
                     'train.mask_loss.type: MaskFusionL1loss -> MaskFusionL1Loss (released name)',
                     'train.grad_loss.reduction: ignored (the fusion losses are means)'):
        assert expected in notes
    assert len(notes) == len(set(notes))  # each translated key once
    state = torch.load(run / 'models' / 'net_g_2.pth', map_location='cpu', weights_only=True)
    assert set(state) - {CHECKSUM_KEY} == {'params'}  # no EMA: ema_decay 0


def test_released_names_translate_exactly(tmp_path):
    option_file = tmp_path / 'o.yml'
    option_file.write_text(RELEASED_TRAIN.format(root='data'))
    opt = load_yaml(option_file)
    translate_released_keys(opt)
    assert opt['train']['mask_loss'] == {'type': 'MaskFusionL1Loss', 'loss_weight': 3}
    assert opt['train']['max_loss']['type'] == 'MaxFusionLoss'
    assert opt['train']['grad_loss']['type'] == 'GradientFusionLoss'
    assert 'type' not in opt['datasets']['train'] and 'dual' not in opt['train'] and 'scale' not in opt
    assert opt['logger']['use_tb_logger'] is False


@pytest.mark.parametrize('changes, message', [
    ({'train': {'pixel_opt': {'type': 'MaxFusionLoss'}, 'mask_loss': {'type': 'MaskFusionL1Loss'}}},
     'train.pixel_opt (released name) and train.mask_loss are both given; keep only train.mask_loss'),
    ({'train': {'max_opt': {'type': 'MaxFusionloss', 'reduction': 'sum'}}},
     "train.max_loss.reduction: 'sum' is not available"),
])
def test_released_keys_that_cannot_be_translated(changes, message):
    with pytest.raises(OptionError, match=message.replace('(', r'\(').replace(')', r'\)')):
        translate_released_keys(changes)
