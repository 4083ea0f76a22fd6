"""Models: a network plus what it needs to be trained and tested, registered by class name."""
from basicsr.utils.auto_import import import_modules
from basicsr.utils.registry import MODEL_REGISTRY

import_modules(__name__, __file__, '_model')


def build_model(opt):
    return MODEL_REGISTRY.get(opt.get('model_type', 'FusionModel'))(opt)
