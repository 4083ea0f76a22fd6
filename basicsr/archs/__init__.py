"""Network architectures, registered by class name."""
import copy

from basicsr.utils.auto_import import import_modules
from basicsr.utils.registry import ARCH_REGISTRY

import_modules(__name__, __file__, '_arch')


def build_network(opt):
    """Build the network of a ``{type: Name, **kwargs}`` option dict."""
    opt = copy.deepcopy(opt)
    return ARCH_REGISTRY.get(opt.pop('type'))(**opt)
