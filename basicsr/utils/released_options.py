"""The released FISCNet project's option files, read as they are: its names become this project's.

The released files are BasicSR option files written for its own model and dataset classes.
:func:`translate_released_keys` rewrites their names in place before validation and returns
one note per translated or ignored key, which the run logs at INFO. The README's migration
table lists the same rules.

Example:
    >>> opt = {'model_type': 'FusionMaskModel', 'scale': 1,
    ...        'train': {'pixel_opt': {'type': 'MaskFusionL1loss', 'loss_weight': 3, 'reduction': 'mean'}}}
    >>> notes = translate_released_keys(opt)
    >>> opt
    {'model_type': 'FusionModel', 'train': {'mask_loss': {'type': 'MaskFusionL1Loss', 'loss_weight': 3}}}
    >>> len(notes)
    5
"""
from basicsr.utils.errors import OptionError

MODEL_TYPES = {'FusionMaskModel': 'FusionModel'}
# The released dataset classes served training and validation alike; here each phase has its own.
DATASET_TYPES = ('PairedFusionMaskImageDataset', 'PairedFusionImageDataset')
LOSS_SECTIONS = {'pixel_opt': 'mask_loss', 'max_opt': 'max_loss', 'gradient_opt': 'grad_loss',
                 'ssim_opt': 'ssim_loss'}
# Keys that change nothing here: fusion keeps the image size; one network is trained.
IGNORED_TOP_LEVEL = {'scale': 'fusion keeps the image size'}
IGNORED_TRAIN = {'dual': 'one network is trained'}


def translate_released_keys(opt):
    """Rewrite the released project's keys and class names in ``opt``; return the notes to log.

    Args:
        opt (dict): a parsed option file, changed in place.

    Returns:
        list[str]: one line per translated or ignored key, e.g.
        ``"train.pixel_opt -> train.mask_loss (released name)"``.

    Raises:
        OptionError: a released key whose value has no equivalent here (``reduction`` other than
            ``mean``), or a released and a current key given for the same option.
    """
    notes = []
    if opt.get('model_type') in MODEL_TYPES:
        new = MODEL_TYPES[opt['model_type']]
        notes.append(f"model_type: {opt['model_type']} -> {new} (released name)")
        opt['model_type'] = new
    _drop(opt, IGNORED_TOP_LEVEL, '', notes)
    if 'use_tb_logger' in opt:
        logger = opt.get('logger') if isinstance(opt.get('logger'), dict) else opt.setdefault('logger', {})
        _move(opt, 'use_tb_logger', logger, 'use_tb_logger', 'use_tb_logger', 'logger.use_tb_logger', notes)
    datasets = opt.get('datasets')
    if isinstance(datasets, dict):
        for key, section in datasets.items():
            if isinstance(section, dict) and section.get('type') in DATASET_TYPES:
                notes.append(f"datasets.{key}.type: {section['type']} -> this phase's dataset class (released name)")
                del section['type']
    train = opt.get('train')
    if isinstance(train, dict):
        _drop(train, IGNORED_TRAIN, 'train.', notes)
        for old, new in LOSS_SECTIONS.items():
            if old in train:
                _move(train, old, train, new, f'train.{old}', f'train.{new}', notes)
        for key, section in train.items():
            if str(key).endswith('_loss') and isinstance(section, dict):
                _translate_loss(section, f'train.{key}', notes)
    return notes


def _drop(section, ignored, where, notes):
    for key, reason in ignored.items():
        if key in section:
            notes.append(f'{where}{key}: ignored ({reason})')
            del section[key]


def _move(source, old, target, new, old_name, new_name, notes):
    if new in target and target[new] != source[old]:
        raise OptionError(f'{old_name} (released name) and {new_name} are both given; keep only {new_name}')
    target[new] = source.pop(old)
    notes.append(f'{old_name} -> {new_name} (released name)')


def _translate_loss(section, where, notes):
    """Released loss class names differ from the registered ones in letter case only."""
    from basicsr.losses import LOSS_REGISTRY
    name = section.get('type')
    if isinstance(name, str) and name not in LOSS_REGISTRY:
        match = [registered for registered in LOSS_REGISTRY.keys() if registered.lower() == name.lower()]
        if match:
            notes.append(f'{where}.type: {name} -> {match[0]} (released name)')
            section['type'] = match[0]
    if 'reduction' in section:
        if section['reduction'] != 'mean':
            raise OptionError(f"{where}.reduction: {section['reduction']!r} is not available; the fusion losses "
                              'are means (remove the key)')
        notes.append(f'{where}.reduction: ignored (the fusion losses are means)')
        del section['reduction']
