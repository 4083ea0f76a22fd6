"""SeAFusion and SHIP train in the framework with their papers' losses: learning and exact resume."""
import pytest
import torch
import yaml

from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.utils.color_util import rgb_to_ycrcb
from conftest import REPO
from test_train import load, options, train, train_pairs  # noqa: F401  (train_pairs is a fixture)

RECIPES = {method: yaml.safe_load((REPO / 'options' / 'train' / f'{method}.yml').read_text())
           for method in ('SeAFusion', 'SHIP')}


def recipe_options(train_pairs, method, **train_opt):
    """test_train's small CPU run with ``method``'s network and its recipe's losses and optimizer."""
    recipe = RECIPES[method]['train']
    losses = {key: value for key, value in recipe.items() if key.endswith('_loss')}
    opt = options(train_pairs, ema_decay=0, optim_g=dict(recipe['optim_g']), **train_opt)
    for key in ('mask_loss', 'max_loss', 'grad_loss'):
        opt['train'].pop(key)
    opt['train'].update(losses)
    opt['network_g'] = dict(RECIPES[method]['network_g'])
    if 'mask_loss' not in losses:
        del opt['datasets']['train']['dataroot_mask']  # the recipe needs no saliency masks
    return opt


def recipe_loss(net, batch, opt):
    vis = rgb_to_ycrcb(batch['vi'])
    with torch.no_grad():
        fused = net(vis, batch['ir']).clamp(0, 1)
        return sum(build_loss(section)(fused, vis[:, :1], batch['ir'], batch['mask']).item()
                   for key, section in opt['train'].items() if key.endswith('_loss'))


@pytest.mark.parametrize('method', RECIPES)
def test_a_short_run_with_the_papers_losses_lowers_the_loss(tmp_path, train_pairs, method):
    from basicsr.data.fusion_train_dataset import FusionTrainDataset
    opt = recipe_options(train_pairs, method, total_iter=8)
    opt['train']['scheduler']['milestones'] = [100]
    opt['logger'].update(print_freq=4, save_checkpoint_freq=8)
    root = train(tmp_path, opt)
    dataset = FusionTrainDataset(dict(opt['datasets']['train'], gt_size=48, dataroot_mask=str(train_pairs / 'mask')))
    batch = torch.utils.data.default_collate([dataset[(i, 1234)] for i in range(len(dataset))])
    torch.manual_seed(10)  # train.py seeds the same way before building the network
    initial = build_network(opt['network_g'])
    trained = build_network(opt['network_g'])
    trained.load_state_dict(load(root / 'models' / 'net_g_8.pth')['params'])
    before, after = recipe_loss(initial, batch, opt), recipe_loss(trained, batch, opt)
    assert after < 0.9 * before, (before, after)
    log = next(root.glob('train_*.log')).read_text()
    assert 'iter 8/8' in log
    assert all(f'l_{key[:-5]}' in log for key in opt['train'] if key.endswith('_loss'))


@pytest.mark.parametrize('method', RECIPES)
def test_resume_continues_bit_identically(tmp_path, train_pairs, method):
    """4 iterations in one go vs. the same run cut at 2 (mid-epoch) and resumed."""
    opt = recipe_options(train_pairs, method, total_iter=4)
    opt['datasets']['train']['batch_size_per_gpu'] = 2
    opt['logger']['save_checkpoint_freq'] = 2
    root = train(tmp_path, opt)
    models = root / 'models'
    uninterrupted = load(models / 'net_g_4.pth')['params']
    (root / 'training_states' / '4.state').unlink()
    (models / 'net_g_4.pth').unlink()
    train(tmp_path, opt, '--auto_resume')
    resumed = load(models / 'net_g_4.pth')['params']
    assert uninterrupted.keys() == resumed.keys()
    for name, tensor in uninterrupted.items():
        assert torch.equal(tensor, resumed[name]), name
    log = sorted(root.glob('train_*.log'))[-1].read_text()
    assert 'resumed from' in log and 'iteration 2' in log
