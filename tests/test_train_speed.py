"""The default training step (multi-tensor EMA update) computes exactly what a plain eager float32 loop computes."""
import copy

import torch

from conftest import REPO
from basicsr.archs.fiscnet_arch import FISCNet
from basicsr.losses import build_loss
from basicsr.models.ema import ModelEMA
from basicsr.models.fusion_model import FusionModel
from basicsr.utils.color_util import rgb_to_ycrcb
from basicsr.utils.options import load_yaml

RECIPE = load_yaml(REPO / 'options' / 'train' / 'FISCNet.yml')
LOSS_KEYS = ('mask_loss', 'max_loss', 'grad_loss')


def batches(count=3, batch=2, crop=16):
    generator = torch.Generator().manual_seed(1)
    return [{'ir': torch.rand(batch, 1, crop, crop, generator=generator),
             'vi': torch.rand(batch, 3, crop, crop, generator=generator),
             'mask': (torch.rand(batch, 1, crop, crop, generator=generator) > 0.5).float()} for _ in range(count)]


def plain_eager_steps(data, ema_decay):
    """The recipe written out in plain PyTorch: per-parameter Adam and EMA (with its warm-up), float32, NCHW."""
    torch.manual_seed(0)
    net = FISCNet(**{k: v for k, v in RECIPE['network_g'].items() if k != 'type'}).train()
    ema = copy.deepcopy(net)
    optim = RECIPE['train']['optim_g']
    adam = torch.optim.Adam(net.parameters(), lr=float(optim['lr']), betas=tuple(optim['betas']),
                            weight_decay=optim['weight_decay'], foreach=False)
    losses = [build_loss(RECIPE['train'][key]) for key in LOSS_KEYS]
    curve = []
    for step, batch in enumerate(data, 1):
        adam.zero_grad(set_to_none=True)
        vis = rgb_to_ycrcb(batch['vi'])
        fused = net(vis, batch['ir']).clamp(0, 1)
        terms = [loss(fused, vis[:, :1], batch['ir'], batch['mask']) for loss in losses]
        sum(terms).backward()
        adam.step()
        decay = min(ema_decay, (1 + step) / (10 + step))  # the EMA's warm-up
        with torch.no_grad():
            for ema_param, param in zip(ema.parameters(), net.parameters()):
                ema_param.mul_(decay).add_(param, alpha=1 - decay)
        curve.append([term.item() for term in terms])
    return curve, net, ema


def test_the_default_step_equals_plain_eager_float32_exactly():
    data = batches()
    decay = RECIPE['train']['ema_decay']
    torch.manual_seed(0)
    model = FusionModel({'num_gpu': 0, 'is_train': True, 'network_g': RECIPE['network_g'], 'train': RECIPE['train']})
    curve = []
    for step, batch in enumerate(data):
        values = model.train_step(batch, step + 1)
        curve.append([values['l_' + key[:-len('_loss')]] for key in LOSS_KEYS])
    expected, net, ema = plain_eager_steps(data, decay)
    assert curve == expected
    for (name, param), reference in zip(model.net_g.named_parameters(), net.parameters()):
        assert torch.equal(param, reference), name
    for (name, param), reference in zip(model.ema.net.named_parameters(), ema.parameters()):
        assert torch.equal(param, reference), name


def test_the_multi_tensor_ema_update_equals_the_per_parameter_formula():
    torch.manual_seed(0)
    net = FISCNet(n_feat=8)
    ema = ModelEMA(net, 0.9, warmup=False)
    expected = [p.detach().clone() for p in ema.net.parameters()]
    with torch.no_grad():
        for param in net.parameters():
            param.add_(torch.randn_like(param))
    ema.update(net, 1)
    for reference, param, trained in zip(expected, ema.net.parameters(), net.parameters()):
        assert torch.equal(param, reference.mul(0.9).add(trained, alpha=0.1))
    for ema_buffer, buffer in zip(ema.net.buffers(), net.buffers()):
        assert torch.equal(ema_buffer, buffer)
