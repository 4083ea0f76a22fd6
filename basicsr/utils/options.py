"""YAML options: loading, command-line overrides, validation and derived paths."""
import argparse
import difflib
import inspect
import random
from pathlib import Path

import re

import yaml

from basicsr.utils.errors import OptionError


class OptionLoader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; read it as the float users mean."""


OptionLoader.add_implicit_resolver(
    'tag:yaml.org,2002:float',
    re.compile(r'^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$'),
    list('-+0123456789.'))


def parse_yaml(text):
    return yaml.load(text, Loader=OptionLoader)

# Keys each fixed section accepts. Sections whose keys depend on a `type:` (network_g, datasets,
# losses) are checked against the class's signature or declared options instead.
TOP_LEVEL_KEYS = {
    'name', 'model_type', 'num_gpu', 'manual_seed', 'deterministic', 'use_tf32', 'datasets', 'network_g',
    'path', 'train', 'val', 'logger', 'dist_params', 'find_unused_parameters', 'use_amp', 'amp_dtype',
    'suffix', 'execution', 'keep_freed_memory',
}
SECTION_KEYS = {
    'path': {'pretrain_network_g', 'param_key_g', 'strict_load_g', 'resume_state', 'results_root',
             'experiments_root', 'root'},
    'val': {'val_freq', 'save_img', 'suffix', 'metrics', 'convention', 'grid_in_tensorboard'},
    'logger': {'print_freq', 'save_checkpoint_freq', 'use_tb_logger', 'wandb'},
    'dist_params': {'backend', 'port'},
    'train': {'ema_decay', 'optim_g', 'scheduler', 'total_iter', 'warmup_iter', 'grad_clip',
              'mask_loss', 'max_loss', 'grad_loss', 'ssim_loss'},
}
# Keys every dataset section accepts whatever its type; the released project's BasicSR keys are
# accepted so its YAML files keep working.
DATASET_COMMON_KEYS = {'name', 'type', 'phase', 'io_backend', 'filename_tmpl', 'num_worker_per_gpu',
                       'batch_size_per_gpu', 'pin_memory', 'prefetch_mode', 'persistent_workers'}


def closest(key, valid):
    """A ' (did you mean X?)' hint for a mistyped key, or '' when nothing is close."""
    match = difflib.get_close_matches(str(key), sorted(valid), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ''


def check_keys(section, where, valid):
    """Raise OptionError for the first key of ``section`` that is not in ``valid``."""
    for key in section:
        if key not in valid:
            name = f'{where}.{key}' if where else key
            raise OptionError(f"unknown option '{name}'{closest(key, valid)}; "
                              f"valid keys here: {', '.join(sorted(valid))}")


def signature_keys(cls):
    """Names of the keyword arguments ``cls(...)`` accepts."""
    params = inspect.signature(cls).parameters.values()
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def check_typed_section(section, where, registry):
    """Validate a ``{type: Name, **kwargs}`` section against the registered class's signature."""
    if not isinstance(section, dict) or 'type' not in section:
        raise OptionError(f"'{where}' needs a 'type' key naming one of: {', '.join(registry.keys())}")
    try:
        cls = registry.get(section['type'])
    except KeyError as err:
        raise OptionError(f"{where}.type: {err.args[0]}") from None
    check_keys({k: v for k, v in section.items() if k != 'type'}, where, signature_keys(cls))


def check_dataset_section(section, where, registry):
    from basicsr.data import default_dataset_type
    if not isinstance(section, dict):
        raise OptionError(f"'{where}' must be a mapping of dataset options")
    default = default_dataset_type(dataset_phase(where.split('.')[-1]))
    try:
        cls = registry.get(section.get('type', default))
    except KeyError as err:
        raise OptionError(f"{where}.type: {err.args[0]}") from None
    check_keys(section, where, DATASET_COMMON_KEYS | cls.option_keys())


def dataset_phase(key):
    """``train``, ``val`` or ``test`` from a ``datasets`` key such as ``val_2``."""
    return key.split('_')[0]


def validate(opt):
    """Check every key of a parsed option dict; raise OptionError naming the first bad one."""
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY
    check_keys(opt, '', TOP_LEVEL_KEYS | {'is_train', 'dist', 'rank', 'world_size', 'auto_resume'})
    for section, valid in SECTION_KEYS.items():
        if opt.get(section) is not None:
            if not isinstance(opt[section], dict):
                raise OptionError(f"'{section}' must be a mapping, got {opt[section]!r}")
            check_keys(opt[section], section, valid)
    if 'name' not in opt:
        raise OptionError("the option file needs a 'name' (used for the results/experiments folder)")
    if opt.get('network_g') is None:
        raise OptionError("the option file needs a 'network_g' section, e.g. {type: FISCNet}")
    check_typed_section(opt['network_g'], 'network_g', ARCH_REGISTRY)
    datasets = opt.get('datasets') or {}
    if not datasets:
        raise OptionError("the option file needs a 'datasets' section with at least one set")
    for key, section in datasets.items():
        check_dataset_section(section, f'datasets.{key}', DATASET_REGISTRY)
    for key, section in (opt.get('train') or {}).items():
        if key.endswith('_loss') and section is not None:
            check_typed_section(section, f'train.{key}', LOSS_REGISTRY)


def set_by_path(opt, dotted_key, value):
    """``set_by_path(opt, 'a.b.c', v)`` sets ``opt['a']['b']['c'] = v``, creating mappings."""
    *parents, leaf = dotted_key.split('.')
    node = opt
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[leaf] = value


def apply_overrides(opt, overrides):
    """Apply ``--force_yml a.b.c=value`` overrides; values are parsed as YAML (``1e-4``, ``[1, 2]``)."""
    for item in overrides or []:
        key, sep, raw = item.partition('=')
        if not sep or not key:
            raise OptionError(f"--force_yml '{item}': expected KEY.PATH=VALUE, e.g. train.total_iter=1000")
        set_by_path(opt, key.strip(), parse_yaml(raw))


def load_yaml(path):
    path = Path(path)
    if not path.is_file():
        raise OptionError(f'{path}: option file not found')
    try:
        opt = parse_yaml(path.read_text(encoding='utf-8'))
    except yaml.YAMLError as err:
        raise OptionError(f'{path}: not valid YAML ({str(err).splitlines()[0]})') from None
    if not isinstance(opt, dict):
        raise OptionError(f'{path}: the option file must hold a mapping of options')
    return opt


def build_arg_parser():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('-opt', required=True, help='path to the option YAML file')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='none: one process; pytorch: started by torchrun; slurm: started by srun')
    parser.add_argument('--auto_resume', action='store_true', help='resume from the newest training state')
    parser.add_argument('--debug', action='store_true', help='debug run: frequent logging and checkpoints')
    parser.add_argument('--force_yml', nargs='+', default=None, metavar='KEY.PATH=VALUE',
                        help='override options at any depth, e.g. train.total_iter=1000 num_gpu=0')
    return parser


def parse_options(is_train, argv=None):
    """Parse the command line and the option file; return ``(opt, args)``.

    The returned dict is validated, with ``is_train``, ``auto_resume``, dataset ``phase`` keys and
    the ``path`` folders filled in. Distributed fields (``dist``, ``rank``, ``world_size``) are
    filled by :func:`basicsr.utils.dist_util.init_dist_from_options`.
    """
    args = build_arg_parser().parse_args(argv)
    opt = load_yaml(args.opt)
    apply_overrides(opt, args.force_yml)
    opt['is_train'] = is_train
    opt['auto_resume'] = args.auto_resume
    validate(opt)
    if args.debug and not str(opt['name']).startswith('debug'):
        opt['name'] = f"debug_{opt['name']}"
    opt.setdefault('num_gpu', 'auto')
    if opt.get('manual_seed') is None:
        opt['manual_seed'] = random.randint(1, 10000)
    for key, dataset in opt['datasets'].items():
        dataset['phase'] = dataset_phase(key)
    fill_paths(opt, args.debug)
    return opt, args


def fill_paths(opt, debug=False):
    """Derive the results (test) or experiment (train) folder names from ``name``."""
    paths = opt.setdefault('path', {})
    if opt['is_train']:
        root = Path(paths.get('experiments_root') or Path('experiments') / opt['name'])
        paths['experiments_root'] = str(root)
        paths['models'] = str(root / 'models')
        paths['training_states'] = str(root / 'training_states')
        paths['visualization'] = str(root / 'visualization')
        paths['log'] = str(root)
        paths['tb_logger'] = str(root / 'tb_logger')
        if debug:
            opt.setdefault('val', {})['val_freq'] = 8
            opt.setdefault('logger', {}).update(print_freq=1, save_checkpoint_freq=8)
    else:
        root = Path(paths.get('results_root') or Path('results') / opt['name'])
        paths['results_root'] = str(root)
        paths['visualization'] = str(root / 'visualization')
        paths['metrics'] = str(root / 'metrics')
        paths['log'] = str(root)


def dict_to_yaml(opt):
    return yaml.safe_dump(opt, sort_keys=False, default_flow_style=None)
