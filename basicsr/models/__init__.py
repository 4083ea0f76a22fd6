"""Models: a network plus what it needs to be trained and tested, registered by class name."""
from basicsr.utils.auto_import import import_modules
from basicsr.utils.options import RANDOM_WEIGHTS, option_value
from basicsr.utils.registry import MODEL_REGISTRY

import_modules(__name__, __file__, '_model')


def build_model(opt):
    """The training model of ``model_type`` (default FusionModel)."""
    return MODEL_REGISTRY.get(option_value(opt, 'model_type'))(opt)


def check_model_options(opt):
    """Fail now for what building the engine or the model would fail on later: a device that is not
    there, a checkpoint that is missing, damaged or does not fit the network, or engine settings
    that do not work. Runs call it before they make or archive any folder, so a failed start
    leaves the disk as it was.

    Raises:
        OptionError: ``num_gpu`` asks for a device this machine lacks, or a bad ``execution``,
            ``tile``/``tile_overlap`` or ``to_8bit``. InputError: the checkpoint cannot be read,
            holds non-finite weights or does not fit ``network_g``.
    """
    from basicsr.models.fusion_engine import engine_settings, load_network
    from basicsr.utils.device import select_device
    select_device(option_value(opt, 'num_gpu'), opt.get('dist', False))
    engine_settings(opt)
    if option_value(opt, 'path.pretrain_network_g') != RANDOM_WEIGHTS:
        load_network(opt)
