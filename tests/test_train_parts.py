"""The pieces of training: sampler, crops, schedules, EMA, states, mixed precision."""
import random

import numpy as np
import pytest
import torch

from conftest import require_shared, smooth_image, write_image_file
from basicsr.data.fusion_train_dataset import FusionTrainDataset
from basicsr.data.prefetcher import prefetch
from basicsr.data.sampler import EnlargedSampler
from basicsr.models.ema import ModelEMA
from basicsr.models.lr_scheduler import build_scheduler
from basicsr.utils.errors import InputError, OptionError
from basicsr.utils.training_state import (find_resume_state, load_training_state, restore_rng_states, rng_states,
                                          save_training_state)


def batches(sampler, batch_size):
    keys = list(sampler)
    return [keys[i:i + batch_size] for i in range(0, len(keys) - batch_size + 1, batch_size)]


def test_two_processes_of_two_see_the_global_batches_of_one_process_of_four():
    single = EnlargedSampler(10, num_replicas=1, rank=0, ratio=3, seed=5)
    ranks = [EnlargedSampler(10, num_replicas=2, rank=r, ratio=3, seed=5) for r in range(2)]
    for sampler in (single, *ranks):
        sampler.set_epoch(2)
    assert len(single) == 30 and [len(s) for s in ranks] == [15, 15]
    for step, batch in enumerate(batches(single, 4)[:7]):
        split = batches(ranks[0], 2)[step] + batches(ranks[1], 2)[step]
        assert sorted(split, key=lambda key: key[1]) == batch
    assert sorted(index for index, _ in single) == sorted(list(range(10)) * 3)


def test_epochs_differ_and_a_resumed_epoch_skips_exactly_the_trained_positions():
    sampler = EnlargedSampler(8, ratio=2, seed=1)
    sampler.set_epoch(0)
    epoch0 = list(sampler)
    sampler.set_epoch(1)
    assert [i for i, _ in sampler] != [i for i, _ in epoch0]
    sampler.set_epoch(0, start=4)
    assert list(sampler) == epoch0[4:]
    ordered = EnlargedSampler(3, ratio=2, shuffle=False)
    assert [i for i, _ in ordered] == [0, 1, 2, 0, 1, 2]


@pytest.fixture
def triple_folders(tmp_path):
    """IR, VI and mask images of one pattern, so that aligned crops are equal crops."""
    rng = np.random.default_rng(0)
    for stem in ('p', 'q'):
        gray = smooth_image(rng, 40, 56)
        write_image_file(tmp_path / 'ir' / f'{stem}.png', gray)
        write_image_file(tmp_path / 'vi' / f'{stem}.png', np.repeat(gray[:, :, None], 3, 2))
        write_image_file(tmp_path / 'mask' / f'{stem}.png', gray)
    return {'name': 't', 'dataroot_ir': str(tmp_path / 'ir'), 'dataroot_vi': str(tmp_path / 'vi'),
            'dataroot_mask': str(tmp_path / 'mask'), 'gt_size': 16}


def test_crops_flips_and_transposes_are_identical_in_ir_vis_and_mask_and_fixed_by_the_key(triple_folders):
    dataset = FusionTrainDataset(triple_folders)
    seen = set()
    for seed in range(16):
        item = dataset[(1, (7, 0, seed))]
        assert item['ir'].shape == (1, 16, 16) and item['vi'].shape == (3, 16, 16) and item['stem'] == 'q'
        assert torch.equal(item['ir'], item['vi'][:1]) and torch.equal(item['ir'], item['mask'])
        seen.add(item['ir'].numpy().tobytes())
        again = dataset[(1, (7, 0, seed))]
        assert all(torch.equal(item[k], again[k]) for k in ('ir', 'vi', 'mask'))
    assert len(seen) == 16  # other keys, other windows and orientations


def test_augmentation_switches(triple_folders):
    dataset = FusionTrainDataset(dict(triple_folders, gt_size=40, use_flip=False, use_rot=False))
    # 40 rows, 56 columns: with no flip or transpose, the crop's rows are the image's rows.
    items = [dataset[(0, seed)]['ir'] for seed in range(6)]
    assert all(item.shape == (1, 40, 40) for item in items)
    with pytest.raises(OptionError, match='give use_hflip or its alias use_flip, not both'):
        FusionTrainDataset(dict(triple_folders, use_flip=True, use_hflip=True))
    with pytest.raises(OptionError, match='gt_size must be an integer >= 8'):
        FusionTrainDataset(dict(triple_folders, gt_size=4))


def test_binary_mask_files_train_as_zero_and_one():
    root = require_shared('data', 'MSRS_train_mask')
    dataset = FusionTrainDataset({'name': 'm', 'dataroot_ir': str(root / 'ir'), 'dataroot_vi': str(root / 'vi'),
                                  'dataroot_mask': str(root / 'mask'), 'gt_size': 480})
    values = torch.unique(dataset[(0, 0)]['mask'])
    assert set(values.tolist()) == {0.0, 1.0}


def schedule(opt, total=100, warmup=-1, steps=100):
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = build_scheduler(optimizer, opt, total, warmup)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        scheduler.step()
    return lrs, scheduler


def test_multistep_and_warmup_and_cosine_schedules():
    lrs, _ = schedule({'type': 'MultiStepLR', 'milestones': [15, 25], 'gamma': 0.75}, steps=30)
    # Iteration i (from 1) uses the rate of i - 1 completed iterations.
    assert lrs[14] == 1.0 and lrs[15] == 0.75 and lrs[24] == 0.75 and lrs[25] == 0.75 ** 2
    lrs, _ = schedule({'type': 'MultiStepLR', 'milestones': [50]}, warmup=4, steps=6)
    assert lrs == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    lrs, _ = schedule({'type': 'CosineAnnealingLR', 'eta_min': 0.1}, total=10, steps=12)
    assert lrs[0] == 1.0 and lrs[5] == pytest.approx(0.55) and lrs[10] == pytest.approx(0.1) == lrs[11]


def test_optimizers_and_schedules_are_checked_against_their_registries():
    from basicsr.utils.options import check_training_classes
    with pytest.raises(OptionError, match=r"unknown option 'train.scheduler.milestone' \(did you mean 'milestones'\?\)"):
        check_training_classes({'scheduler': {'type': 'MultiStepLR', 'milestone': [1]}})
    with pytest.raises(OptionError, match="train.scheduler.type: no scheduler named 'StepLR'; the scheduler registry "
                                          'holds: CosineAnnealingLR, MultiStepLR'):
        check_training_classes({'scheduler': {'type': 'StepLR'}})
    with pytest.raises(OptionError, match="train.optim_g.type: no optimizer named 'Adamm'"):
        check_training_classes({'optim_g': {'type': 'Adamm'}})
    with pytest.raises(OptionError, match="unknown option 'train.scheduler.total_iter'"):
        check_training_classes({'scheduler': {'type': 'CosineAnnealingLR', 'total_iter': 5}})  # set by the run
    with pytest.raises(OptionError, match="unknown option 'train.optim_g.params'"):
        check_training_classes({'optim_g': {'type': 'SGD', 'params': []}})
    check_training_classes({'optim_g': {'lr': 1e-3, 'foreach': False}, 'scheduler': {'type': 'MultiStepLR'}})


def test_a_restored_schedule_continues_where_it_stopped():
    lrs, _ = schedule({'type': 'MultiStepLR', 'milestones': [3, 6], 'gamma': 0.5}, steps=8)
    _, first = schedule({'type': 'MultiStepLR', 'milestones': [3, 6], 'gamma': 0.5}, steps=4)
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    resumed = build_scheduler(optimizer, {'type': 'MultiStepLR', 'milestones': [3, 6], 'gamma': 0.5}, 100)
    resumed.load_state_dict(first.state_dict())
    resumed.step()
    resumed.step()
    assert optimizer.param_groups[0]['lr'] == lrs[6]


def test_ema_averages_parameters_and_copies_buffers():
    net = torch.nn.BatchNorm1d(2)
    ema = ModelEMA(net, decay=0.9, warmup=False)
    with torch.no_grad():
        net.weight.fill_(2.0)
        net.running_mean.fill_(5.0)
    ema.update(net, 1)
    torch.testing.assert_close(ema.net.weight, torch.full((2,), 0.9 * 1.0 + 0.1 * 2.0))
    torch.testing.assert_close(ema.net.running_mean, torch.full((2,), 5.0))
    assert not ema.net.weight.requires_grad


def test_ema_warm_up_follows_its_formula():
    net = torch.nn.Linear(1, 1, bias=False)
    ema = ModelEMA(net, decay=0.999)
    expected = net.weight.item()
    for step in range(1, 30):
        with torch.no_grad():
            net.weight.fill_(float(step))
        ema.update(net, step)
        decay = min(0.999, (1 + step) / (10 + step))
        expected = decay * expected + (1 - decay) * step
    assert ema.net.weight.item() == pytest.approx(expected, rel=1e-6)
    assert ema.decay_at(10 ** 6) == 0.999 and ModelEMA(net, 0.999, warmup=False).decay_at(1) == 0.999


def test_states_round_trip_rngs_and_a_damaged_newest_state_is_skipped(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    saved = rng_states()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    for iteration in (2, 4):
        save_training_state({'iter': iteration, 'epoch': 0, 'position': 0, 'optimizer': {}, 'scheduler': {},
                             'params': {'w': torch.zeros(2)}, 'rng': saved}, tmp_path)
    restore_rng_states(load_training_state(tmp_path / '4.state')['rng'])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected

    data = (tmp_path / '4.state').read_bytes()
    (tmp_path / '4.state').write_bytes(data[:len(data) // 3])
    (tmp_path / '9.state').write_bytes(b'')
    (tmp_path / 'notes.state').write_text('not an iteration')
    state, path = find_resume_state(tmp_path)
    assert state['iter'] == 2 and path.name == '2.state'
    with pytest.raises(InputError, match='4.state: (not a readable PyTorch training state|damaged file)'):
        load_training_state(tmp_path / '4.state')
    assert find_resume_state(tmp_path / 'absent') == (None, None)
    assert not list(tmp_path.glob('.*tmp*'))  # atomic writes leave no temporary file


@pytest.mark.parametrize('amp_dtype', ['bf16', 'fp16'])
def test_mixed_precision_training_steps_on_the_cpu(amp_dtype):
    from basicsr.models.fusion_model import FusionModel
    torch.manual_seed(0)
    model = FusionModel({'num_gpu': 0, 'is_train': True, 'use_amp': True, 'amp_dtype': amp_dtype,
                         'network_g': {'type': 'FISCNet', 'n_feat': 8},
                         'path': {'models': 'unused'},
                         'train': {'max_loss': {'type': 'MaxFusionLoss'}, 'grad_loss': {'type': 'GradientFusionLoss'}}})
    before = [p.detach().clone() for p in model.net_g.parameters()]
    batch = {'ir': torch.rand(2, 1, 16, 16), 'vi': torch.rand(2, 3, 16, 16)}
    for iteration in (1, 2):
        losses = model.train_step(batch, iteration)
        assert set(losses) == {'l_max', 'l_grad', 'l_total'} and all(np.isfinite(v) for v in losses.values())
    assert all(p.dtype == torch.float32 for p in model.net_g.parameters())
    changed = any(not torch.equal(a, b) for a, b in zip(before, model.net_g.parameters()))
    # fp16's loss scaler starts high and skips the steps whose scaled gradients overflow.
    assert changed or (amp_dtype == 'fp16' and model.scaler.get_scale() < 2.0 ** 16)
    assert ('scaler' in model.training_state(1)) == (amp_dtype == 'fp16')


def test_option_errors_of_the_training_model():
    from basicsr.models.fusion_model import FusionModel
    base = {'num_gpu': 0, 'is_train': True, 'network_g': {'type': 'FISCNet', 'n_feat': 8}}
    with pytest.raises(OptionError, match='train: no loss is configured'):
        FusionModel(dict(base, train={}))
    with pytest.raises(OptionError, match="amp_dtype: 'half' is not valid"):
        FusionModel(dict(base, use_amp=True, amp_dtype='half', train={'max_loss': {'type': 'MaxFusionLoss'}}))
    with pytest.raises(OptionError, match="unknown option 'train.optim_g.learning_rate'"):
        FusionModel(dict(base, train={'max_loss': {'type': 'MaxFusionLoss'},
                                      'optim_g': {'type': 'Adam', 'learning_rate': 1}}))
    with pytest.raises(OptionError, match='prefetch_mode: cuda needs a CUDA device'):
        prefetch([], 'cuda', torch.device('cpu'))
    with pytest.raises(OptionError, match="prefetch_mode: 'cpu' is not valid"):
        prefetch([], 'cpu', torch.device('cpu'))


def test_a_checkpoint_with_a_non_finite_weight_is_never_written(tmp_path):
    from basicsr.models.fusion_model import FusionModel, LossNotFiniteError
    model = FusionModel({'num_gpu': 0, 'is_train': True, 'network_g': {'type': 'FISCNet', 'n_feat': 8},
                         'train': {'ema_decay': 0.5, 'max_loss': {'type': 'MaxFusionLoss'}}})
    name, weight = next((n, p) for n, p in model.net_g.named_parameters() if p.is_floating_point())
    with torch.no_grad():
        weight.view(-1)[0] = float('inf')
    with pytest.raises(LossNotFiniteError, match=f'iteration 7: the weight params.{name} is not finite'):
        model.save_network(tmp_path / 'net.pth', 7)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize('hflip, rot', [(True, True), (True, False), (False, True), (False, False)])
def test_flips_and_transposes_happen_exactly_when_enabled(tmp_path, hflip, rot):
    """A crop of the whole image shows exactly the orientation the sample's coins choose, and only
    the enabled operations (every pixel value differs, so any flip shows)."""
    image = (np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 64)
    for role in ('ir', 'vi'):
        write_image_file(tmp_path / role / 'p.png', image)
    dataset = FusionTrainDataset({'name': 't', 'dataroot_ir': str(tmp_path / 'ir'), 'dataroot_vi': str(tmp_path / 'vi'),
                                  'gt_size': 32, 'use_hflip': hflip, 'use_rot': rot})
    orientations = set()
    for seed in range(64):
        rng = np.random.default_rng(seed)
        rng.integers(0, 1), rng.integers(0, 1)  # the crop's corner (the whole image here)
        do_hflip, do_vflip, do_transpose = rng.random(3) < 0.5
        expected = image.astype(np.float32) / 65535
        if hflip and do_hflip:
            expected = expected[:, ::-1]
        if rot and do_vflip:
            expected = expected[::-1]
        if rot and do_transpose:
            expected = expected.T
        got = dataset[(0, seed)]['ir'][0].numpy()
        assert np.array_equal(got, expected), seed
        orientations.add(got.tobytes())
    assert len(orientations) == {(True, True): 8, (True, False): 2, (False, True): 4, (False, False): 1}[(hflip, rot)]
