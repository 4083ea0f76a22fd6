"""Training does what its options say: the EMA is applied, gradients are clipped, best checkpoints
keep the best value in the metric's direction from the chosen iteration on, and a short run logs."""
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from conftest import REPO, smooth_image, write_image_file
from basicsr.models.fusion_model import FusionModel
from basicsr.train import BestCheckpoints


def training_model(tmp_path, **train):
    torch.manual_seed(0)
    return FusionModel({'num_gpu': 0, 'is_train': True, 'network_g': {'type': 'FISCNet', 'n_feat': 8},
                        'path': {'models': str(tmp_path)},
                        'train': {'max_loss': {'type': 'MaxFusionLoss'}, 'total_iter': 100, **train}})


def a_batch():
    generator = torch.Generator().manual_seed(1)
    return {'ir': torch.rand(2, 1, 16, 16, generator=generator), 'vi': torch.rand(2, 3, 16, 16, generator=generator)}


def test_the_ema_averages_the_trained_weights_with_its_warm_up(tmp_path):
    model = training_model(tmp_path, ema_decay=0.999, optim_g={'type': 'Adam', 'lr': 1e-2})
    expected = [p.detach().clone() for p in model.net_g.parameters()]
    batch = a_batch()
    for step in (1, 2, 3):
        model.train_step(batch, step)
        decay = min(0.999, (1 + step) / (10 + step))
        expected = [decay * e + (1 - decay) * p.detach() for e, p in zip(expected, model.net_g.parameters())]
    ema, raw = list(model.ema.net.parameters()), list(model.net_g.parameters())
    assert any(not torch.equal(e, r) for e, r in zip(ema, raw))
    for e, x in zip(ema, expected):
        torch.testing.assert_close(e, x, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize('warmup', [True, False])
def test_early_validations_see_the_trained_weights_with_the_warm_up(tmp_path, warmup):
    model = training_model(tmp_path, ema_decay=0.999, ema_warmup=warmup, optim_g={'type': 'Adam', 'lr': 1e-3})
    start = torch.cat([p.detach().flatten().clone() for p in model.net_g.parameters()])
    batch = a_batch()
    for step in range(1, 31):
        model.train_step(batch, step)
    raw = torch.cat([p.detach().flatten() for p in model.net_g.parameters()])
    ema = torch.cat([p.detach().flatten() for p in model.ema.net.parameters()])
    lag = (torch.linalg.vector_norm(ema - raw) / torch.linalg.vector_norm(start - raw)).item()
    # Without warm-up 30 steps of decay 0.999 leave the average 97 % of the way back at the start.
    assert lag < 0.3 if warmup else lag > 0.9


def test_grad_clip_bounds_the_gradient_norm(tmp_path, monkeypatch):
    seen = []
    real_step = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        grads = [p.grad for group in self.param_groups for p in group['params'] if p.grad is not None]
        seen.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item())
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, 'step', recording_step)
    for clip in (None, 1e-3):
        training_model(tmp_path, grad_clip=clip).train_step(a_batch(), 1)
    unclipped, clipped = seen
    assert unclipped > 1e-2 and clipped == pytest.approx(1e-3, rel=1e-3)


@pytest.mark.parametrize('metric, values, best_value', [('EN', [5.0, 3.0, 6.0, 4.0], 6.0), ('MSE', [5.0, 3.0, 6.0, 4.0], 3.0),
                                                  ('Nabf', [0.2, 0.1, 0.3], 0.1), ('CE', [1.0, 2.0, 0.5], 0.5)])
def test_best_checkpoints_keep_the_best_value_in_the_metrics_direction(tmp_path, metric, values, best_value):
    model = training_model(tmp_path)
    best = BestCheckpoints(model.opt)
    improved = [best.update(model, 'set', {metric: value}, iteration * 10) for iteration, value in enumerate(values, 1)]
    assert best.values['set'][metric]['value'] == best_value
    assert improved[0] == [(metric, values[0])] and [] in improved  # a worse value saves nothing
    assert (tmp_path / f'net_g_best_set_{metric}.pth').is_file()


def test_best_checkpoints_start_at_best_from_iter(tmp_path):
    model = training_model(tmp_path)
    best = BestCheckpoints(model.opt)
    assert best.from_iter == 10  # a tenth of total_iter 100
    assert best.update(model, 'set', {'EN': 1.0}, 9) == [] and not any(tmp_path.iterdir())
    assert best.update(model, 'set', {'EN': 1.0}, 10) == [('EN', 1.0)]
    assert BestCheckpoints(dict(model.opt, val={'best_from_iter': 0})).from_iter == 0


@pytest.fixture
def tiny_sets(tmp_path, rng):
    for stem in ('a', 'b'):
        write_image_file(tmp_path / 'ir' / f'{stem}.png', smooth_image(rng, 48, 56))
        write_image_file(tmp_path / 'vi' / f'{stem}.png', smooth_image(rng, 48, 56, 3))
        write_image_file(tmp_path / 'mask' / f'{stem}.png', np.where(smooth_image(rng, 48, 56) > 128, 255, 0)
                         .astype(np.uint8))
    return tmp_path


def test_a_short_run_logs_its_first_and_last_iterations_without_worker_warnings(tiny_sets):
    opt = {'name': 'short', 'num_gpu': 0, 'manual_seed': 1, 'network_g': {'type': 'FISCNet', 'n_feat': 8},
           'datasets': {'train': {'name': 't', 'dataroot_ir': 'ir', 'dataroot_vi': 'vi', 'dataroot_mask': 'mask',
                                  'gt_size': 32, 'batch_size_per_gpu': 2, 'num_worker_per_gpu': 64},
                        'val': {'name': 'v', 'dataroot_ir': 'ir', 'dataroot_vi': 'vi'}},
           'train': {'ema_decay': 0.999, 'total_iter': 30, 'optim_g': {'type': 'Adam', 'lr': 1e-3},
                     'mask_loss': {'type': 'MaskFusionL1Loss', 'loss_weight': 3},
                     'max_loss': {'type': 'MaxFusionLoss', 'loss_weight': 10}},
           'val': {'val_freq': 30, 'best_from_iter': 30},
           'logger': {'print_freq': 100, 'save_checkpoint_freq': 30, 'use_tb_logger': False}}
    (tiny_sets / 'o.yml').write_text(yaml.safe_dump(opt))
    done = subprocess.run([sys.executable, str(REPO / 'train.py'), '-opt', 'o.yml'], cwd=tiny_sets,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'Warning' not in done.stderr and 'This DataLoader will create' not in done.stderr
    log = next((tiny_sets / 'experiments' / 'short').glob('train_short_*.log')).read_text()
    logged = [int(i) for i in re.findall(r'\[epoch \d+ iter (\d+)/30\]', log)]
    assert logged == [1, 30] and 'l_mask: ' in log
    assert 'num_worker_per_gpu: 64 -> ' in log
    assert sorted(p.name for p in (tiny_sets / 'experiments/short/models').glob('net_g_best_*')) == []  # no metrics
    assert sorted(p.name for p in (tiny_sets / 'experiments/short/visualization/v').iterdir()) == ['a_30.png', 'b_30.png']
