"""YAML options: the typed schema of every option, loading, command-line overrides, validation, paths.

:data:`OPTIONS` is the one place where each option's type, range, default and meaning are
declared. ``datasets.*`` stands for any dataset key (``train``, ``val_2``, ``test_1`` ...) and
``train.*_loss`` for any loss section. Sections whose keys depend on a ``type:`` (``network_g``,
the losses) are also checked against the class's signature: a keyword whose default is a bool, an
int or a float takes that type.
"""
import difflib
import fnmatch
import inspect
import math
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from basicsr.utils.errors import ArgumentParser, OptionError
from basicsr.utils.released_options import translate_released_keys

MAX_OPTION_FILE_BYTES = 1 << 20  # an option file is a few kB; anything larger is not one


# ------------------------------------------------------------------------------------------ value types

class Check:
    """A value type: ``check(value, key)`` returns the value or raises OptionError naming ``key``."""
    text = 'any value'

    def check(self, value, key):
        return value

    def fail(self, value, key, hint=''):
        raise OptionError(f'{key}: {value!r} is not valid; expected {self.text}{hint}')


class Any(Check):
    pass


class Bool(Check):
    text = 'true or false'

    def check(self, value, key):
        if not isinstance(value, bool):
            hint = ' (unquoted: a quoted word is text)' if isinstance(value, str) else ''
            self.fail(value, key, hint)
        return value


@dataclass
class Number(Check):
    """An int (``integer=True``) or a float in [low, high] (``low_open``/``high_open``: strict bounds)."""
    integer: bool = False
    low: float = None
    high: float = None
    low_open: bool = False
    high_open: bool = False

    @property
    def text(self):
        kind = 'an integer' if self.integer else 'a number'
        lo = None if self.low is None else ('>' if self.low_open else '>=') + f' {self.low}'
        hi = None if self.high is None else ('<' if self.high_open else '<=') + f' {self.high}'
        return ' '.join(filter(None, [kind, lo and hi and f'{lo} and {hi}' or lo or hi]))

    def check(self, value, key):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            hint = ' (unquoted)' if isinstance(value, str) else ''
            self.fail(value, key, hint)
        if not math.isfinite(value):
            self.fail(value, key)
        if self.integer and not isinstance(value, int):
            if not value.is_integer():
                self.fail(value, key, ', a whole number')
            value = int(value)  # BasicSR files write counts as floats (val_freq: !!float 5e3)
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            self.fail(value, key)
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            self.fail(value, key)
        return value


def Int(low=None, high=None):  # noqa: N802 (reads like a type in the table)
    return Number(integer=True, low=low, high=high)


class Text(Check):
    text = 'a text'

    def check(self, value, key):
        if not isinstance(value, str) or not value.strip():
            self.fail(value, key, ' (quote numbers)' if isinstance(value, (int, float)) else '')
        if '\0' in value:
            self.fail(value, key)
        return value


class FilePath(Text):
    text = 'a path (text)'


class FolderName(Text):
    """A single folder or file name part: no separators, not ``.``/``..``, so it cannot escape its parent."""
    text = "a plain name (letters, digits, '_', '-', '.'; no '/', not '.' or '..')"

    def check(self, value, key):
        super().check(value, key)
        if value in ('.', '..') or re.search(r'[/\\:*?"<>|]', value) or value != value.strip() \
                or value.startswith('-'):
            self.fail(value, key)
        return value


@dataclass
class Choice(Check):
    choices: tuple

    @property
    def text(self):
        return 'one of ' + ', '.join(map(str, self.choices))

    def check(self, value, key):
        if isinstance(value, bool) or value not in self.choices:
            self.fail(value, key)
        return value


@dataclass
class Either(Check):
    options: tuple

    @property
    def text(self):
        return ' or '.join(option.text for option in self.options)

    def check(self, value, key):
        for option in self.options:
            try:
                return option.check(value, key)
            except OptionError:
                continue
        self.fail(value, key)


@dataclass
class Optional(Check):
    """``~`` (null) or ``inner``."""
    inner: Check

    @property
    def text(self):
        return f'{self.inner.text}, or ~'

    def check(self, value, key):
        return None if value is None else self.inner.check(value, key)


class Mapping(Check):
    text = 'a mapping of options (key: value lines)'

    def check(self, value, key):
        if not isinstance(value, dict):
            self.fail(value, key)
        return value


@dataclass
class NumberList(Check):
    """A list of ``item`` numbers; ``length``: exact length; ``increasing``: strictly increasing."""
    item: Number
    length: int = None
    increasing: bool = False

    @property
    def text(self):
        size = f'{self.length} ' if self.length else ''
        order = 'strictly increasing ' if self.increasing else ''
        return f'a list of {size}{order}numbers, each {self.item.text}'

    def check(self, value, key):
        if not isinstance(value, (list, tuple)) or (self.length and len(value) != self.length):
            self.fail(value, key)
        value = [self.item.check(item, f'{key}[{i}]') for i, item in enumerate(value)]
        if self.increasing and any(b <= a for a, b in zip(value, value[1:])):
            self.fail(value, key)
        return value


class MetricNames(Check):
    text = "a list of metric names, 'default', or ~"

    def check(self, value, key):
        if value is None or value == 'default' or (isinstance(value, str) and value.strip()):
            return value
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        self.fail(value, key)


# ------------------------------------------------------------------------------------------ the schema

@dataclass(frozen=True)
class Option:
    """One option: ``key`` (dotted; ``*`` matches any part), its type, default and meaning."""
    key: str
    check: Check
    default: object
    meaning: str


REQUIRED = '(required)'
RANDOM_WEIGHTS = 'random'  # path.pretrain_network_g value that asks for untrained weights (smoke tests)
TO_8BIT_NAMES = ('round', 'stretch_truncate')  # the keys of basicsr.utils.img_util.TO_8BIT
# Choices declared here, in a module without torch or OpenCV, so that the scripts' --help can list them.
EXECUTION_MODES = ('eager', 'channels_last', 'compile')  # basicsr/utils/execution.py; 'auto' picks one
SALIENCY_MODES = ('binary', 'weight')  # basicsr/data/saliency.py
CONVENTIONS = ('tang', 'cddfuse', 'vifb')  # whose toolkit the metrics reproduce (basicsr/metrics/)
POSITIVE = Number(low=0, low_open=True)
UNIT_OPEN = Number(low=0, high=1, high_open=True)

OPTIONS = (
    # run
    Option('name', FolderName(), REQUIRED, 'run name: the folder under results/ (test) or experiments/ (train)'),
    Option('model_type', Text(), 'FusionModel', 'the training model class (MODEL_REGISTRY)'),
    Option('num_gpu', Either((Choice(('auto',)), Int(low=0))), 'auto',
           'auto (CUDA when present, else CPU), 0 (CPU) or a GPU count'),
    Option('manual_seed', Optional(Int(low=0, high=2**32 - 1)), None, 'random seed (~: a random one, logged)'),
    Option('deterministic', Bool(), False, 'reproducible kernels (slower on GPUs)'),
    Option('use_tf32', Bool(), False, 'TF32 matrix products on Ampere+ GPUs'),
    Option('use_amp', Bool(), False, 'mixed-precision training'),
    Option('amp_dtype', Choice(('bf16', 'bfloat16', 'fp16', 'float16')), 'bf16', 'mixed-precision type'),
    Option('execution', Choice(('auto', *EXECUTION_MODES)), 'auto',
           'how the network runs: auto is channels_last on the CPU and eager on CUDA; compile (torch.compile) is '
           '1.1-1.2x faster on the CPU after about 2.5 min of compiling; all within 1 grey level of eager '
           '(docs/benchmarks.md)'),
    Option('to_8bit', Choice(TO_8BIT_NAMES), 'round',
           "how fused images become 8 bits: round, or stretch_truncate (SeAFusion's released saving)"),
    Option('tile', Optional(Int(low=64)), None,
           'fuse in overlapping tiles of N x N pixels (images too large for memory; an approximation, see README)'),
    Option('tile_overlap', Int(low=0), 32, 'pixels shared by neighbouring tiles, blended linearly'),
    Option('keep_freed_memory', Bool(), True,
           'glibc keeps freed memory in the process: 1.8-2.9x faster on the CPU for 10-40 % more peak memory'),
    Option('find_unused_parameters', Bool(), False, 'DDP: allow parameters without gradients'),
    Option('suffix', Optional(FolderName()), None, "released BasicSR key (ignored; use val.suffix)"),
    Option('dist_params', Mapping(), {}, 'distributed training'),
    Option('dist_params.backend', Optional(Choice(('nccl', 'gloo', 'mpi'))), None, 'nccl with CUDA, gloo without'),
    Option('dist_params.port', Int(low=1, high=65535), 29500, 'rendezvous port of slurm runs'),
    # datasets
    Option('datasets', Mapping(), REQUIRED, 'the sets: train, val, val_2 ... (training); test_1, test_2 ... (testing)'),
    Option('datasets.*', Mapping(), REQUIRED, 'one set'),
    Option('datasets.*.name', FolderName(), 'its key', "the set's name, used for its output folder"),
    Option('datasets.*.type', Text(), 'FusionTrainDataset for train, else FusionTestDataset', 'the dataset class'),
    Option('datasets.*.phase', Any(), 'from the key', 'filled from the key (train, val, test)'),
    Option('datasets.*.dataroot_ir', FilePath(), REQUIRED, 'infrared folder (alias: dataroot_gt)'),
    Option('datasets.*.dataroot_vi', FilePath(), REQUIRED, 'visible folder (alias: dataroot_lq)'),
    Option('datasets.*.dataroot_gt', FilePath(), None, 'released alias of dataroot_ir'),
    Option('datasets.*.dataroot_lq', FilePath(), None, 'released alias of dataroot_vi'),
    Option('datasets.*.dataroot_mask', Optional(FilePath()), None, 'saliency-mask folder (training)'),
    Option('datasets.*.resize_vi_to_ir', Bool(), False, 'resize visible images to their infrared partner'),
    Option('datasets.*.gt_size', Int(low=8), 128, 'training crop side in pixels'),
    Option('datasets.*.use_hflip', Bool(), True, 'random horizontal flips'),
    Option('datasets.*.use_flip', Bool(), True, 'released alias of use_hflip'),
    Option('datasets.*.use_rot', Bool(), True, 'random vertical flips and transposes'),
    Option('datasets.*.use_shuffle', Bool(), True, 'shuffle every epoch'),
    Option('datasets.*.dataset_enlarge_ratio', Int(low=1), 1, 'repetitions of the file list per epoch'),
    Option('datasets.*.batch_size_per_gpu', Int(low=1), 4, 'training batch per process'),
    Option('datasets.*.num_worker_per_gpu', Either((Choice(('auto',)), Int(low=0))), 'auto',
           "data-loading worker processes, at most this process's share of the cores "
           '(auto: half that share, at most 4)'),
    Option('datasets.*.pin_memory', Bool(), 'true on CUDA', 'pinned host memory for the batches'),
    Option('datasets.*.persistent_workers', Bool(), True, 'keep loader workers between epochs'),
    Option('datasets.*.prefetch_mode', Optional(Choice(('cuda',))), None, 'cuda: copy the next batch during a step'),
    Option('datasets.*.io_backend', Any(), None, 'released BasicSR key (ignored)'),
    Option('datasets.*.filename_tmpl', Any(), None, 'released BasicSR key (ignored)'),
    # network
    Option('network_g', Mapping(), REQUIRED, 'the network: type and its keyword arguments'),
    Option('network_g.type', Text(), REQUIRED, 'the network class, e.g. FISCNet'),
    Option('network_g.n_feat', Int(low=1), 16, 'feature channels'),
    Option('network_g.vis_channels', Int(low=1), 1, 'visible input channels (the luma)'),
    Option('network_g.inf_channels', Int(low=1), 1, 'infrared input channels'),
    # paths
    Option('path', Mapping(), {}, 'files and folders'),
    Option('path.pretrain_network_g', Optional(FilePath()), None,
           f"checkpoint file; test.py and fuse.py need one (or '{RANDOM_WEIGHTS}' for untrained weights in a "
           'smoke test)'),
    Option('path.param_key_g', Text(), 'params_ema',
           'state dict key of the checkpoint (params_ema falls back to params when absent, as in the released file)'),
    Option('path.strict_load_g', Bool(), True,
           'true: a checkpoint that does not fit is an error; false: load what fits, warn'),
    Option('path.resume_state', Optional(FilePath()), None, 'a training state to resume from'),
    Option('path.results_root', Optional(FilePath()), 'results/<name>', 'the test run folder'),
    Option('path.experiments_root', Optional(FilePath()), 'experiments/<name>', 'the training run folder'),
    Option('path.root', Any(), None, 'released BasicSR key (ignored)'),
    # training
    Option('train', Mapping(), {}, 'training settings'),
    Option('train.total_iter', Int(low=1), 100000, 'iterations to train'),
    Option('train.warmup_iter', Int(low=-1), -1, 'linear warm-up iterations (-1 or 0: none)'),
    Option('train.ema_decay', UNIT_OPEN, 0, 'EMA decay of the weights, 0 <= d < 1 (0: no EMA)'),
    Option('train.ema_warmup', Bool(), True,
           'EMA decay min(ema_decay, (1 + n) / (10 + n)) at step n, so early validations are meaningful'),
    Option('train.grad_clip', Optional(POSITIVE), None, 'max gradient norm (~: none)'),
    Option('train.optim_g', Mapping(), {'type': 'Adam', 'lr': 1e-4}, 'the optimizer'),
    Option('train.optim_g.type', Text(), 'Adam', 'the optimizer class: Adam, AdamW or SGD (OPTIMIZER_REGISTRY)'),
    Option('train.optim_g.lr', POSITIVE, 1e-4, 'learning rate (> 0)'),
    Option('train.optim_g.weight_decay', Number(low=0), 0, 'weight decay'),
    Option('train.optim_g.betas', NumberList(UNIT_OPEN, length=2), [0.9, 0.999], "Adam's betas, each in [0, 1)"),
    Option('train.optim_g.eps', POSITIVE, 1e-8, "Adam's epsilon"),
    Option('train.optim_g.momentum', UNIT_OPEN, 0, "SGD's momentum"),
    Option('train.optim_g.*', Any(), None, 'other keyword arguments of the optimizer class'),
    Option('train.scheduler', Optional(Mapping()), None, 'the learning-rate schedule (~: constant)'),
    Option('train.scheduler.type', Text(), REQUIRED,
           'the schedule: MultiStepLR or CosineAnnealingLR (SCHEDULER_REGISTRY)'),
    Option('train.scheduler.milestones', NumberList(Int(low=1), increasing=True), [],
           'MultiStepLR: iterations where the rate is multiplied by gamma (increasing)'),
    Option('train.scheduler.gamma', POSITIVE, 0.5, 'MultiStepLR: the factor'),
    Option('train.scheduler.eta_min', Number(low=0), 0.0, 'CosineAnnealingLR: the final rate'),
    Option('train.*_loss', Optional(Mapping()), None, 'a loss term: {type: ..., loss_weight: ...} (~: off)'),
    Option('train.*_loss.loss_weight', Number(low=0), 1.0, "the term's weight"),
    # validation and logging
    Option('val', Mapping(), {}, 'validation (training) and output settings (testing)'),
    Option('val.val_freq', Int(low=1), 5000, 'validate every N iterations'),
    Option('val.save_img', Bool(), True, 'write the fused images'),
    Option('val.suffix', Optional(FolderName()), None, 'write <stem>_<suffix>.png'),
    Option('val.metrics', MetricNames(), None, "metrics: a list of names, 'default' or ~"),
    Option('val.convention', Choice(CONVENTIONS), 'tang', "whose evaluation code the metrics follow"),
    Option('val.best_from_iter', Optional(Int(low=0)), 'a tenth of train.total_iter',
           'keep net_g_best_<set>_<metric>.pth checkpoints from this iteration on'),
    Option('val.grid_in_tensorboard', Optional(Int(low=0)), 4, 'IR | VI | fused strips per set in TensorBoard'),
    Option('logger', Mapping(), {}, 'logging'),
    Option('logger.print_freq', Int(low=1), 100, 'log the losses every N iterations'),
    Option('logger.save_checkpoint_freq', Int(low=1), 5000, 'save weights and a training state every N iterations'),
    Option('logger.use_tb_logger', Bool(), True, 'write TensorBoard logs'),
    Option('logger.wandb', Any(), None, 'not supported (a warning)'),
)

# Keys every dataset section accepts whatever its type (the released project's BasicSR keys
# included, so its YAML files keep working); a dataset class declares the others in option_keys().
DATASET_COMMON_KEYS = {'name', 'type', 'phase', 'io_backend', 'filename_tmpl', 'num_worker_per_gpu',
                       'batch_size_per_gpu', 'pin_memory', 'prefetch_mode', 'persistent_workers'}
# Keys the option parser fills in itself.
INTERNAL_KEYS = {'is_train', 'dist', 'rank', 'world_size', 'auto_resume'}


def schema_option(key):
    """The Option whose pattern matches the dotted ``key`` exactly part by part, or None."""
    parts = key.split('.')
    for option in OPTIONS:
        pattern = option.key.split('.')
        if len(pattern) == len(parts) and all(fnmatch.fnmatchcase(p, q) for p, q in zip(parts, pattern)):
            return option
    return None


def option_value(opt, key):
    """The value of the dotted ``key`` in ``opt``, or its default declared in :data:`OPTIONS`.

    Example:
        >>> option_value({'train': {'total_iter': 500}}, 'train.total_iter'), option_value({}, 'train.total_iter')
        (500, 100000)
    """
    node = opt
    for part in key.split('.'):
        if not isinstance(node, dict) or node.get(part) is None:
            return schema_option(key).default
        node = node[part]
    return node


def dataset_option(set_opt, key):
    """The value of ``key`` in one dataset section, or its declared default.

    Example:
        >>> dataset_option({'gt_size': 64}, 'gt_size'), dataset_option({}, 'gt_size')
        (64, 128)
    """
    return option_value({'datasets': {'set': set_opt}}, f'datasets.set.{key}')


def options_table(sections=None):
    """The Markdown table of the declared options (key, accepted values, default, meaning), in
    declaration order; ``sections``: only keys under these top-level names (all when None).

    The README's and docs/training.md's key tables are this table (``python scripts/option_table.py``).

    Example:
        >>> print(options_table(['tile_overlap']).splitlines()[2])
        | `tile_overlap` | an integer >= 0 | `32` | pixels shared by neighbouring tiles, blended linearly |
    """
    def cell(text):
        return str(text).replace('|', '\\|')

    def default(value):
        if isinstance(value, str) and (value == REQUIRED or ' ' in value):
            return value  # a description, not a value
        text = '~' if value is None else yaml.safe_dump(value, default_flow_style=True).strip()
        return f"`{text.removesuffix('...').strip()}`"

    rows = ['| key | accepted values | default | meaning |', '|---|---|---|---|']
    for option in OPTIONS:
        if sections is None or option.key.split('.')[0] in sections:
            rows.append(f'| `{option.key}` | {cell(option.check.text)} | {cell(default(option.default))} | '
                        f'{cell(option.meaning)} |')
    return '\n'.join(rows)


def keys_under(prefix):
    """The declared names directly under the section pattern ``prefix`` ('' for the top level)."""
    parent = prefix.split('.') if prefix else []
    return {option.key.split('.')[-1] for option in OPTIONS
            if option.key.split('.')[:-1] == parent and '*' not in option.key.split('.')[-1]}


# ------------------------------------------------------------------------------------------ YAML

class OptionLoader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; read it as the float users mean. A key given
    twice in one mapping is an error (YAML would silently keep the last)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(None, None, 'a key must be a plain name',
                                                        key_node.start_mark) from None
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key '{key}' is given twice (first on line {seen[key].line + 1})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep)


OptionLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, OptionLoader.construct_mapping)
OptionLoader.add_implicit_resolver(
    'tag:yaml.org,2002:float',
    re.compile(r'^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$'),
    list('-+0123456789.'))


def parse_yaml(text):
    return yaml.load(text, Loader=OptionLoader)


def yaml_problem(err):
    """``line L, column C: <problem>`` of a YAML error, one line."""
    mark = getattr(err, 'problem_mark', None) or getattr(err, 'context_mark', None)
    problem = getattr(err, 'problem', None) or getattr(err, 'context', None) or str(err).splitlines()[0]
    where = f'line {mark.line + 1}, column {mark.column + 1}: ' if mark is not None else ''
    return f'{where}{problem}'


# ------------------------------------------------------------------------------------------ validation

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


def check_signature_types(section, where, cls):
    """A keyword whose default is a bool, an int or a float takes only that type (an int for a float)."""
    params = inspect.signature(cls).parameters
    for key, value in section.items():
        if key == 'type' or key not in params or schema_option(f'{where}.{key}') is not None:
            continue
        default = params[key].default
        if isinstance(default, bool):
            Bool().check(value, f'{where}.{key}')
        elif isinstance(default, int):
            Int().check(value, f'{where}.{key}')
        elif isinstance(default, float):
            Number().check(value, f'{where}.{key}')


def check_typed_section(section, where, registry, reserved=()):
    """Validate a ``{type: Name, **kwargs}`` section against the registered class's signature
    (``reserved``: arguments the program passes itself, not options)."""
    if not isinstance(section, dict) or 'type' not in section:
        raise OptionError(f"'{where}' needs a 'type' key naming one of: {', '.join(registry.keys())}")
    if not isinstance(section['type'], str):
        raise OptionError(f"{where}.type: {section['type']!r} is not a class name; use one of: "
                          f"{', '.join(registry.keys())}")
    try:
        cls = registry.get(section['type'])
    except KeyError as err:
        raise OptionError(f"{where}.type: {err.args[0]}") from None
    check_keys({k: v for k, v in section.items() if k != 'type'}, where, signature_keys(cls) - set(reserved))
    check_signature_types(section, where, cls)
    return cls


def check_training_classes(train):
    """The optimizer and the schedule: registered names, and keys their classes take."""
    from basicsr.models import lr_scheduler, optimizers
    from basicsr.utils.registry import OPTIMIZER_REGISTRY, SCHEDULER_REGISTRY
    if train.get('optim_g') is not None:
        check_typed_section({'type': 'Adam', **train['optim_g']}, 'train.optim_g', OPTIMIZER_REGISTRY,
                            optimizers.BUILD_ARGUMENTS)
    if train.get('scheduler') is not None:
        check_typed_section(train['scheduler'], 'train.scheduler', SCHEDULER_REGISTRY, lr_scheduler.BUILD_ARGUMENTS)


def check_dataset_section(section, where, registry):
    from basicsr.data import default_dataset_type
    if not isinstance(section, dict):
        raise OptionError(f"'{where}' must be a mapping of dataset options")
    default = default_dataset_type(dataset_phase(where.split('.')[-1]))
    try:
        cls = registry.get(section.get('type', default))
    except (KeyError, TypeError) as err:
        raise OptionError(f"{where}.type: {err.args[0]}") from None
    check_keys(section, where, DATASET_COMMON_KEYS | set(cls.option_keys()))


def dataset_phase(key):
    """``train``, ``val`` or ``test`` from a ``datasets`` key such as ``val_2``."""
    return str(key).split('_')[0]


MAX_OPTION_ENTRIES = 100_000  # YAML aliases can expand a small file into billions of entries


def walk(node, prefix='', budget=None):
    """Yield ``(dotted key, value)`` for every mapping entry below ``node``, depth first.

    Raises:
        OptionError: more than :data:`MAX_OPTION_ENTRIES` entries (aliases expanding without end).
    """
    budget = budget if budget is not None else [MAX_OPTION_ENTRIES]
    for key, value in node.items():
        budget[0] -= 1
        if budget[0] < 0:
            raise OptionError(f'the options hold more than {MAX_OPTION_ENTRIES:,} entries (YAML aliases?); '
                              'write the option file out plainly')
        dotted = f'{prefix}.{key}' if prefix else str(key)
        yield dotted, value
        if isinstance(value, dict):
            yield from walk(value, dotted, budget)


def check_types(opt):
    """Check every declared option present in ``opt`` against its type and range; a whole-number
    float given for an integer option is stored as the int."""
    converted = {}
    for key, value in walk(opt):
        option = schema_option(key)
        if option is not None:
            checked = option.check.check(value, key)
            if checked is not value:
                converted[key] = checked
    for key, value in converted.items():
        set_by_path(opt, key, value)


def check_run_layout(opt):
    """Set names must be unique (each set writes into a folder of its name)."""
    names = {}
    for key, section in opt['datasets'].items():
        name = section.get('name', key)
        FolderName().check(str(name), f'datasets.{key}.name')
        phase = dataset_phase(key)
        group = (name, phase == 'val')  # validation and test sets write into separate trees
        if phase != 'train' and group in names:
            raise OptionError(f"datasets.{key}.name: '{name}' is also the name of datasets.{names[group]}; "
                              'each set writes into a folder of its name, so give them different names')
        names[group] = key


def check_network_builds(network_opt):
    """Build the network once, so that arguments it refuses stop the run before any work."""
    from basicsr.archs import build_network
    try:
        build_network(network_opt)
    except OptionError:
        raise
    except (TypeError, ValueError, RuntimeError, ZeroDivisionError, MemoryError) as err:
        raise OptionError(f"network_g: {network_opt.get('type')} cannot be built with these options "
                          f"({str(err).splitlines()[0] if str(err) else type(err).__name__}); check network_g")


def validate(opt):
    """Check every key of a parsed option dict; raise OptionError naming the first bad one."""
    from basicsr.archs import ARCH_REGISTRY  # importing each package fills its registry
    from basicsr.data import DATASET_REGISTRY
    from basicsr.losses import LOSS_REGISTRY
    check_keys(opt, '', keys_under('') | INTERNAL_KEYS)
    for section in ('path', 'val', 'logger', 'dist_params', 'train'):
        if opt.get(section) is not None:
            Mapping().check(opt[section], section)
            valid = keys_under(section)
            if section == 'train':
                valid |= {key for key in opt[section] if str(key).endswith('_loss')}
            check_keys(opt[section], section, valid)
    if 'name' not in opt:
        raise OptionError("the option file needs a 'name' (used for the results/experiments folder)")
    if opt.get('network_g') is None:
        raise OptionError("the option file needs a 'network_g' section, e.g. {type: FISCNet}")
    if opt.get('datasets') is not None:
        Mapping().check(opt['datasets'], 'datasets')
    if not opt.get('datasets'):
        raise OptionError("the option file needs a 'datasets' section with at least one set")
    check_types(opt)
    check_typed_section(opt['network_g'], 'network_g', ARCH_REGISTRY)
    if 'model_type' in opt:
        from basicsr.models import MODEL_REGISTRY
        try:
            MODEL_REGISTRY.get(opt['model_type'])
        except KeyError as err:
            raise OptionError(f'model_type: {err.args[0]}') from None
    for key, section in opt['datasets'].items():
        check_dataset_section(section, f'datasets.{key}', DATASET_REGISTRY)
    for key, section in (opt.get('train') or {}).items():
        if str(key).endswith('_loss') and section is not None:
            check_typed_section(section, f'train.{key}', LOSS_REGISTRY)
    check_training_classes(opt.get('train') or {})
    check_run_layout(opt)
    check_network_builds(opt['network_g'])


# ------------------------------------------------------------------------------------------ overrides

_KEY_PATH = re.compile(r'^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$')


def set_by_path(opt, dotted_key, value):
    """``set_by_path(opt, 'a.b.c', v)`` sets ``opt['a']['b']['c'] = v``, creating mappings.

    Raises:
        OptionError: a part of the path holds a value that is not a mapping.
    """
    *parents, leaf = dotted_key.split('.')
    node, walked = opt, []
    for part in parents:
        walked.append(part)
        if node.get(part) is None:
            node[part] = {}
        elif not isinstance(node[part], dict):
            raise OptionError(f"--force_yml {dotted_key}: '{'.'.join(walked)}' is {node[part]!r}, not a section")
        node = node[part]
    node[leaf] = value


def apply_overrides(opt, overrides):
    """Apply ``--force_yml a.b.c=value`` overrides; values are parsed as YAML (``1e-4``, ``[1, 2]``).

    Raises:
        OptionError: no ``=``, a malformed key, or a value that is not valid YAML (naming the key).
    """
    for item in overrides or []:
        key, sep, raw = item.partition('=')
        key = key.strip()
        if not sep or not key:
            raise OptionError(f"--force_yml '{item}': expected KEY.PATH=VALUE, e.g. train.total_iter=1000")
        if not _KEY_PATH.match(key):
            raise OptionError(f"--force_yml '{item}': '{key}' is not a key path; use names joined by dots, "
                              'e.g. datasets.test_1.dataroot_ir=my/ir')
        try:
            value = parse_yaml(raw)
        except yaml.YAMLError as err:
            raise OptionError(f"--force_yml {key}: the value {raw!r} is not valid YAML ({yaml_problem(err)}); "
                              "quote text, e.g. key='[a'") from None
        set_by_path(opt, key, value)


def load_yaml(path):
    """The mapping in the option file ``path``.

    Raises:
        OptionError: the file is missing, not UTF-8 text, too large, not valid YAML (with the line
            and column), or not a mapping.
    """
    path = Path(path)
    if path.is_dir():
        raise OptionError(f'{path}: is a folder; give the option file (.yml)')
    if not path.is_file():
        raise OptionError(f'{path}: option file not found')
    if path.stat().st_size > MAX_OPTION_FILE_BYTES:
        raise OptionError(f'{path}: {path.stat().st_size} bytes is too large for an option file; give the .yml file')
    try:
        text = path.read_text(encoding='utf-8')
    except UnicodeDecodeError:
        raise OptionError(f'{path}: not a UTF-8 text file; give the option file (.yml)') from None
    except OSError as err:
        raise OptionError(f'{path}: cannot read the option file ({err.strerror})') from None
    try:
        opt = parse_yaml(text)
    except yaml.YAMLError as err:
        raise OptionError(f'{path}: not valid YAML at {yaml_problem(err)}') from None
    except RecursionError:
        raise OptionError(f'{path}: nested too deeply to be an option file') from None
    if not isinstance(opt, dict):
        raise OptionError(f'{path}: the option file must hold a mapping of options (key: value lines)')
    return opt


# ------------------------------------------------------------------------------------------ command line

DESCRIPTIONS = {
    False: 'Fuse the test sets of an option file with a trained network; write the fused images to '
           'results/<name>/visualization/<set>/ and, with val.metrics, a metrics table per set.',
    True: 'Train a fusion network as an option file says; checkpoints, logs and validation images go to '
          'experiments/<name>/. Several GPUs: torchrun --nproc_per_node N train.py -opt ... --launcher pytorch.',
}


def build_arg_parser(is_train):
    """The command line of train.py (``is_train``) or test.py; parsing it imports nothing heavy."""
    parser = ArgumentParser(description=DESCRIPTIONS[is_train])
    parser.add_argument('-opt', required=True, help='the option YAML file, e.g. options/'
                        + ('train' if is_train else 'test') + '/FISCNet.yml')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='none: one process; pytorch: started by torchrun; slurm: started by srun')
    if is_train:
        parser.add_argument('--auto_resume', action='store_true', help='resume from the newest training state')
        parser.add_argument('--debug', action='store_true', help='debug run: frequent logging and checkpoints')
    example = 'train.total_iter=1000 num_gpu=0' if is_train else 'num_gpu=0 val.metrics=[EN,SD]'
    parser.add_argument('--force_yml', nargs='+', default=None, metavar='KEY.PATH=VALUE',
                        help=f'override options at any depth, e.g. {example}')
    return parser


# The variable each launcher sets in the processes it starts.
LAUNCHER_ENVIRONMENT = {'pytorch': ('RANK', 'torchrun --nproc_per_node N'), 'slurm': ('SLURM_NODELIST', 'srun')}


def check_launcher(launcher):
    """``--launcher pytorch``/``slurm`` only inside processes torchrun/srun started.

    Raises:
        OptionError: the launcher's environment variable is not set.
    """
    if launcher in LAUNCHER_ENVIRONMENT:
        variable, command = LAUNCHER_ENVIRONMENT[launcher]
        if variable not in os.environ:
            raise OptionError(f'--launcher {launcher}: {variable} is not set, so this process was not started by '
                              f'{command}; start it with {command} ... or drop --launcher')


def parse_options(is_train, argv=None):
    """Parse the command line and the option file; return ``(opt, args)``.

    The released project's key names are translated first (``args.released_notes`` says which,
    for the run's log). The returned dict is validated, with ``is_train``, ``auto_resume``, dataset ``phase`` keys and
    the ``path`` folders filled in. Distributed fields (``dist``, ``rank``, ``world_size``) are
    filled by :func:`basicsr.utils.dist_util.init_dist_from_options`. ``args.opt_text`` keeps the
    option file's text as read, so the run keeps a copy even if the file moves.
    """
    args = build_arg_parser(is_train).parse_args(argv)
    check_launcher(args.launcher)
    opt = load_yaml(args.opt)
    args.opt_text = Path(args.opt).read_text(encoding='utf-8')
    apply_overrides(opt, args.force_yml)
    args.released_notes = translate_released_keys(opt)
    opt['is_train'] = is_train
    opt['auto_resume'] = getattr(args, 'auto_resume', False)
    validate(opt)
    if getattr(args, 'debug', False) and not str(opt['name']).startswith('debug'):
        opt['name'] = f"debug_{opt['name']}"
    opt.setdefault('num_gpu', 'auto')
    if opt.get('manual_seed') is None:
        opt['manual_seed'] = random.randint(1, 10000)
    for key, dataset in opt['datasets'].items():
        dataset['phase'] = dataset_phase(key)
    fill_paths(opt, getattr(args, 'debug', False))
    return opt, args


def fill_paths(opt, debug=False):
    """Derive the results (test) or experiment (train) folder names from ``name``."""
    paths = opt.get('path') or {}
    opt['path'] = paths
    if opt['is_train']:
        root = Path(paths.get('experiments_root') or Path('experiments') / opt['name'])
        paths['experiments_root'] = str(root)
        paths['models'] = str(root / 'models')
        paths['training_states'] = str(root / 'training_states')
        paths['visualization'] = str(root / 'visualization')
        paths['log'] = str(root)
        paths['tb_logger'] = str(root / 'tb_logger')
        if debug:
            opt['val'] = opt.get('val') or {}
            opt['val']['val_freq'] = 8
            opt['logger'] = opt.get('logger') or {}
            opt['logger'].update(print_freq=1, save_checkpoint_freq=8)
    else:
        root = Path(paths.get('results_root') or Path('results') / opt['name'])
        paths['results_root'] = str(root)
        paths['visualization'] = str(root / 'visualization')
        paths['metrics'] = str(root / 'metrics')
        paths['log'] = str(root)


def dict_to_yaml(opt):
    return yaml.safe_dump(opt, sort_keys=False, default_flow_style=None)

