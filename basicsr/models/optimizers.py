"""The optimizers ``train.optim_g.type`` names: PyTorch's, registered by class name."""
import torch

from basicsr.utils.registry import OPTIMIZER_REGISTRY

for _optimizer in (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD):
    OPTIMIZER_REGISTRY.register(_optimizer)

# Arguments the model passes itself; the option file may not set them.
BUILD_ARGUMENTS = ('params',)


def build_optimizer(params, opt):
    """``train.optim_g`` (``{type: Adam, lr: 1e-4, ...}``) over ``params``; the options were checked
    against the class by :func:`basicsr.utils.options.validate`."""
    opt = dict(opt)
    cls = OPTIMIZER_REGISTRY.get(opt.pop('type', 'Adam'))
    if 'betas' in opt:
        opt['betas'] = tuple(opt['betas'])
    return cls(params, **opt)
