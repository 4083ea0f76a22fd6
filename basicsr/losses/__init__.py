"""Training losses, registered by class name; each compares the fused Y with its sources."""
import copy

from basicsr.utils.auto_import import import_modules
from basicsr.utils.registry import LOSS_REGISTRY

import_modules(__name__, __file__, '_loss')


def build_loss(opt):
    """Build the loss of a ``{type: Name, **kwargs}`` option dict, e.g. ``{type: MaxFusionLoss, loss_weight: 10}``."""
    opt = copy.deepcopy(opt)
    return LOSS_REGISTRY.get(opt.pop('type'))(**opt)
