"""Models: a network plus what it needs to be trained and tested, registered by class name."""
from basicsr.utils.auto_import import import_modules
from basicsr.utils.options import RANDOM_WEIGHTS
from basicsr.utils.registry import MODEL_REGISTRY

import_modules(__name__, __file__, '_model')


def build_model(opt):
    return MODEL_REGISTRY.get(opt.get('model_type', 'FusionModel'))(opt)


def check_model_options(opt):
    """Fail now for what building the model would fail on later: a device that is not there, or a
    checkpoint that is missing, damaged or does not fit the network. Runs call it before they make
    or archive any folder, so a failed start leaves the disk as it was.

    Raises:
        OptionError: ``num_gpu`` asks for a device this machine lacks. InputError: the checkpoint
            cannot be read, holds non-finite weights or does not fit ``network_g``.
    """
    from basicsr.archs import build_network
    from basicsr.utils.checkpoint import load_params, read_params
    from basicsr.utils.device import select_device
    select_device(opt.get('num_gpu', 'auto'), opt.get('dist', False))
    path_opt = opt.get('path') or {}
    weights = path_opt.get('pretrain_network_g')
    if weights and weights != RANDOM_WEIGHTS:
        params = read_params(weights, path_opt.get('param_key_g', 'params_ema'))
        load_params(build_network(opt['network_g']), params, path_opt.get('strict_load_g', True), source=str(weights))
