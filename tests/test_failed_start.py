"""A run that cannot start leaves the disk as it was: no folder made, archived, locked or logged."""
import numpy as np
import pytest
import torch
import yaml

from conftest import smooth_image, write_image_file
from basicsr.utils.errors import InputError, OptionError


@pytest.fixture
def workspace(tmp_path, rng, random_checkpoint, monkeypatch):
    """Pairs with masks, a checkpoint, and the folders an earlier test and training run left."""
    for stem in ('a', 'b'):
        write_image_file(tmp_path / 'data' / 'ir' / f'{stem}.png', smooth_image(rng, 40, 48))
        write_image_file(tmp_path / 'data' / 'vi' / f'{stem}.png', smooth_image(rng, 40, 48, 3))
        write_image_file(tmp_path / 'data' / 'mask' / f'{stem}.png',
                         np.where(smooth_image(rng, 40, 48) > 128, 255, 0).astype(np.uint8))
    for earlier in ('results/demo/visualization/set/a.png', 'results/demo/test_demo.log',
                    'experiments/demo/models/net_g_2.pth', 'experiments/demo/train_demo.log'):
        (tmp_path / earlier).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / earlier).write_text('an earlier result')
    monkeypatch.chdir(tmp_path)
    return tmp_path


def snapshot(root):
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob('*'))}


def options(root, checkpoint, is_train):
    opt = {'name': 'demo', 'num_gpu': 0, 'network_g': {'type': 'FISCNet'},
           'datasets': {'test_1': {'name': 'set', 'dataroot_ir': str(root / 'data/ir'),
                                   'dataroot_vi': str(root / 'data/vi')}},
           'path': {'pretrain_network_g': str(checkpoint), 'param_key_g': 'params'}}
    if is_train:
        opt['datasets'] = {'train': {'name': 'set', 'dataroot_ir': str(root / 'data/ir'),
                                     'dataroot_vi': str(root / 'data/vi'), 'dataroot_mask': str(root / 'data/mask'),
                                     'gt_size': 16, 'batch_size_per_gpu': 2}}
        opt['path'] = {}
        opt['train'] = {'total_iter': 1, 'max_loss': {'type': 'MaxFusionLoss'}}
        opt['logger'] = {'use_tb_logger': False}
    return opt


COMMON_FAILURES = [
    (['num_gpu=O'], OptionError, "num_gpu: 'O' is not valid"),
    (['network_g.type=FISCNett'], OptionError, "no arch named 'FISCNett'"),
    (['network_g.n_feat=8', 'path.pretrain_network_g=CHECKPOINT'], InputError, 'size mismatch|does not fit'),
    (['path.pretrain_network_g=missing.pth'], InputError, 'missing.pth'),
]


def assert_failed_start_changes_nothing(pipeline, workspace, checkpoint, is_train, overrides, error, message):
    (workspace / 'o.yml').write_text(yaml.safe_dump(options(workspace, checkpoint, is_train)))
    before = snapshot(workspace)
    overrides = [item.replace('CHECKPOINT', str(checkpoint)) for item in overrides]
    with pytest.raises(error, match=message):
        pipeline(['-opt', 'o.yml', '--force_yml', *overrides])
    assert snapshot(workspace) == before


@pytest.mark.parametrize('overrides, error, message', COMMON_FAILURES + [
    (['datasets.test_1.dataroot_ir=nowhere/ir'], InputError, 'nowhere/ir'),
    (['val.metrics=[EN, Qab]'], OptionError, 'Qab'),
])
def test_a_failed_test_run_changes_nothing(workspace, random_checkpoint, overrides, error, message):
    from basicsr.test import test_pipeline
    assert_failed_start_changes_nothing(test_pipeline, workspace, random_checkpoint, False, overrides, error, message)


@pytest.mark.parametrize('overrides, error, message', COMMON_FAILURES + [
    (['datasets.train.dataroot_mask=nowhere/mask'], InputError, 'nowhere/mask'),
    (['train.max_loss.type=MaxFusionLos'], OptionError, "no loss named 'MaxFusionLos'"),
    (['path.resume_state=gone.state'], InputError, 'gone.state'),
])
def test_a_failed_training_start_changes_nothing(workspace, random_checkpoint, overrides, error, message):
    from basicsr.train import train_pipeline
    assert_failed_start_changes_nothing(train_pipeline, workspace, random_checkpoint, True, overrides, error, message)


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine without CUDA')
def test_asking_for_a_gpu_on_a_cpu_machine_changes_nothing(workspace, random_checkpoint):
    from basicsr.test import test_pipeline
    (workspace / 'o.yml').write_text(yaml.safe_dump(options(workspace, random_checkpoint, is_train=False)))
    before = snapshot(workspace)
    with pytest.raises(OptionError, match='num_gpu: 1 asks for CUDA'):
        test_pipeline(['-opt', 'o.yml', '--force_yml', 'num_gpu=1'])
    assert snapshot(workspace) == before
