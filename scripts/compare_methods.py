"""Compare fusion methods on the same sets: one table of metrics, parameters, GFLOPs and latency, and a figure.

    python scripts/compare_methods.py -opt options/compare/TNO21.yml [--out DIR] [--force_yml KEY=VALUE ...]

The option file lists the sets (``datasets``, as in a test YAML) and the ``methods``: each is a
method's test YAML (``options/test/<Method>.yml``: its network, weights and post-processing are
used, its own datasets are not) or a folder of fused images made elsewhere. For every set it
writes to ``DIR/<set>/`` (default ``DIR``: ``results/<name>``, an earlier one is archived):

- ``fused/<method>/<stem>.png``: each network method's fused images;
- ``metrics/<method>.csv``: metrics per image, scored from the image files exactly as
  ``scripts/metrics/calculate_fusion_metrics.py`` scores them;
- ``comparison.md`` and ``comparison.csv``: mean ± std of each metric in the chosen convention,
  parameters, GFLOPs and latency per method, best value per column marked;
- ``figure.png``: IR | VI | each method for the chosen stems (``scripts/make_figure.py``).

GFLOPs are counted by PyTorch's ``torch.utils.flop_counter.FlopCounterMode`` on one forward pass
(2 FLOPs per multiply-add of convolutions and matrix products; it has no formula for FFTs, norms,
activations or element-wise operations, so those are not counted). Latency is the mean time of
the model's fusing step per pair (colour conversion, network, back-conversion; not reading or
writing files), after ``warmup`` untimed runs on the first pair.
"""
import argparse
import copy
import csv
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from basicsr.utils.errors import ArgumentParser, InputError, OptionError, report_user_errors, writing
from basicsr.utils.options import (FolderName, Int, MetricNames, apply_overrides, check_dataset_section, check_keys,
                                   check_run_layout, load_yaml, schema_option, validate)
from basicsr.utils.registry import DATASET_REGISTRY

# torch and the basicsr modules that import it (data, metrics, models, images) are imported in the
# functions that use them, so that --help and usage errors answer without loading them.

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import device_name  # noqa: E402  (a sibling script)
from make_figure import DEFAULT_CELL_HEIGHT, figure_from_folders  # noqa: E402

COMPARE_KEYS = {'name', 'num_gpu', 'datasets', 'methods', 'metrics', 'convention', 'flops_at', 'warmup', 'figure'}
METHOD_KEYS = {'name', 'options', 'fused', 'paper'}
FIGURE_KEYS = {'stems', 'cell_height'}
DEFAULTS = {'num_gpu': 'auto', 'metrics': 'default', 'convention': schema_option('val.convention').default,
            'flops_at': ['mean'], 'warmup': 1,
            'figure': {'stems': None, 'cell_height': DEFAULT_CELL_HEIGHT}}


@dataclass
class Method:
    """One row of the table: a network run from its test YAML, or a folder of fused images."""
    name: str
    paper: str = ''
    options: Optional[dict] = None   # the method's test options (network methods)
    fused: Optional[str] = None      # '<folder>' with '{set}' standing for the set name (folder methods)
    source: Optional[str] = None     # the test YAML the options were read from (network methods)
    params: Optional[int] = None
    gflops: Dict[tuple, float] = field(default_factory=dict)   # (set, size entry) -> GFLOPs
    latency_ms: Dict[str, List[float]] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ options

def load_options(path, overrides=None):
    """Read and check a comparison option file; defaults filled in.

    Raises:
        OptionError: a missing file, an unknown key, a bad value or a method that cannot be built.
    """
    from basicsr.metrics.base import check_convention
    opt = load_yaml(path)
    apply_overrides(opt, overrides)
    check_keys(opt, '', COMPARE_KEYS)
    for key, value in DEFAULTS.items():
        opt.setdefault(key, copy.deepcopy(value))
    if 'name' not in opt:
        raise OptionError(f"{path}: needs a 'name' (the folder under results/)")
    FolderName().check(opt['name'], 'name')
    if not isinstance(opt.get('datasets'), dict) or not opt['datasets']:
        raise OptionError(f"{path}: needs a 'datasets' section with at least one set (as in a test YAML)")
    for key, section in opt['datasets'].items():
        check_dataset_section(section, f'datasets.{key}', DATASET_REGISTRY)
    if not isinstance(opt.get('methods'), list) or not opt['methods']:
        raise OptionError(f"{path}: 'methods' must list the methods, e.g. [options/test/FISCNet.yml]")
    check_convention(opt['convention'])
    check_run_layout({'datasets': opt['datasets']})  # set names become folders: plain and unique
    Int(low=0).check(opt['warmup'], 'warmup')
    MetricNames().check(opt['metrics'], 'metrics')
    for key in ('flops_at', 'figure'):
        if not isinstance(opt[key], list if key == 'flops_at' else dict):
            raise OptionError(f"{key}: {opt[key]!r} is not valid; see options/compare/TNO21.yml for its form")
    check_keys(opt['figure'], 'figure', FIGURE_KEYS)
    opt['figure'] = {**DEFAULTS['figure'], **opt['figure']}
    Int(low=8).check(opt['figure']['cell_height'], 'figure.cell_height')
    stems = opt['figure']['stems']
    if stems is not None:
        if not isinstance(stems, list):
            raise OptionError(f"figure.stems: {stems!r} is not valid; expected a list of file stems, e.g. ['01', '08']")
        opt['figure']['stems'] = [str(stem) for stem in stems]
    opt['metric_names'] = metric_names(opt['metrics'], opt['convention'])
    opt['flops_at'] = [flops_size(entry) for entry in opt['flops_at']]
    opt['option_file'] = str(path)
    return opt


def metric_names(names, convention):
    from basicsr.metrics import DEFAULT_METRICS, check_metric_names
    if names == 'default':
        return list(DEFAULT_METRICS[convention])
    names = check_metric_names([names] if isinstance(names, str) else list(names or []))
    if not names:
        raise OptionError("metrics: give metric names or 'default'")
    return names


def flops_size(entry):
    """``mean`` or an ``[H, W]`` pair from ``flops_at``."""
    if entry == 'mean':
        return entry
    if (isinstance(entry, (list, tuple)) and len(entry) == 2
            and all(isinstance(v, int) and v >= 8 for v in entry)):
        return tuple(entry)
    raise OptionError(f"flops_at: {entry!r}: use 'mean' (the set's mean size) or [H, W] with H, W >= 8")


def build_methods(opt):
    """The :class:`Method` rows of ``opt['methods']``, each test YAML checked with the compare's sets.

    Raises:
        OptionError: an entry is neither a YAML path nor a mapping with ``options`` or ``fused``,
            a test YAML is invalid, or two methods share a name.
    """
    methods = []
    for i, entry in enumerate(opt['methods']):
        where = f'methods[{i}]'
        if isinstance(entry, str):
            entry = {'options': entry}
        if not isinstance(entry, dict) or ('options' in entry) == ('fused' in entry):
            raise OptionError(f"{where}: give a test YAML path, or a mapping with 'options: <test YAML>' or "
                              "'fused: <folder>' (and optional name, paper)")
        check_keys(entry, where, METHOD_KEYS)
        if 'fused' in entry:
            if 'name' not in entry:
                raise OptionError(f"{where}: a folder of fused images needs a 'name'")
            methods.append(Method(str(entry['name']), str(entry.get('paper', '')), fused=str(entry['fused'])))
            continue
        test_opt = method_options(entry['options'], opt)
        name = str(entry.get('name') or test_opt['network_g']['type'])
        methods.append(Method(name, str(entry.get('paper', '')), options=test_opt, source=str(entry['options'])))
    names = [m.name for m in methods]
    for name in names:
        if not name or name.startswith('.') or any(c in name for c in '/\\'):
            raise OptionError(f"methods: {name!r} cannot name a folder; use letters, digits, '-' or '_'")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise OptionError(f"methods: the name(s) {', '.join(duplicates)} are used twice; give each a 'name'")
    return methods


def method_options(path, compare_opt):
    """A method's test options with the comparison's sets and device; validated as test.py does."""
    test_opt = load_yaml(path)
    test_opt['datasets'] = copy.deepcopy(compare_opt['datasets'])
    test_opt['num_gpu'] = compare_opt['num_gpu']
    test_opt['is_train'] = False
    try:
        validate(test_opt)
    except OptionError as err:
        raise OptionError(f'{path}: {err}') from None
    if not (test_opt.get('path') or {}).get('pretrain_network_g'):
        raise OptionError(f'{path}: path.pretrain_network_g is not set; a comparison needs trained weights')
    return test_opt


# ------------------------------------------------------------------------------------------ running

def count_gflops(net, height, width, device):
    """GFLOPs of one forward pass on a (1, 3, H, W) visible and (1, 1, H, W) infrared input."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    vi = torch.rand(1, 3, height, width, device=device)
    ir = torch.rand(1, 1, height, width, device=device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net(vi, ir)
    return counter.get_total_flops() / 1e9


def synchronize(device):
    if device.type == 'cuda':
        import torch
        torch.cuda.synchronize(device)


def fuse_and_time(engine, loader, save_dir, warmup):
    """Fuse every pair into ``save_dir/<stem>.png``; return the per-pair times in ms (warm-up excluded)."""
    from basicsr.utils.img_util import write_image
    times = []
    for index, data in enumerate(loader):
        name = ', '.join(data['stem'])
        for _ in range(warmup if index == 0 else 0):
            engine.fuse(data['ir'], data['vi'], name)
        synchronize(engine.device)
        start = time.perf_counter()
        fused = engine.fuse(data['ir'], data['vi'], name)
        synchronize(engine.device)
        times.append((time.perf_counter() - start) * 1000 / len(data['stem']))
        for stem, image in zip(data['stem'], engine.to_uint8(fused)):
            write_image(Path(save_dir) / f'{stem}.png', image)
    return times


def mean_size(dataset):
    """The set's mean infrared image size (H, W), rounded."""
    from basicsr.utils.img_util import decode_image_file
    sizes = [decode_image_file(paths['ir']).shape[:2] for _, paths in dataset.samples]
    return round(statistics.fmean(h for h, _ in sizes)), round(statistics.fmean(w for _, w in sizes))


def run_network(method, sets, out, warmup, flops_at):
    """Fuse every set with ``method``; fill its params, GFLOPs and latencies. Returns the device."""
    from basicsr.data import build_test_loader
    from basicsr.models.fusion_engine import FusionEngine
    engine = FusionEngine.from_options(method.options)
    method.params = sum(p.numel() for p in engine.net.parameters())
    for set_name, (dataset, set_opt, size) in sets.items():
        loader = build_test_loader(dataset, set_opt, engine.device)
        method.latency_ms[set_name] = fuse_and_time(engine, loader, out / set_name / 'fused' / method.name, warmup)
        for entry in flops_at:
            height, width = size if entry == 'mean' else entry
            method.gflops[(set_name, entry)] = count_gflops(engine.net, height, width, engine.device)
    return engine.device


def fused_folder(method, set_name, out):
    if method.fused is not None:
        return Path(method.fused.replace('{set}', set_name))
    return out / set_name / 'fused' / method.name


def score_method(ir_dir, vi_dir, fused_dir, names, convention, csv_path):
    """Score every fused image from its file (as the metrics CLI does); write the per-image CSV."""
    from basicsr.data.pairing import pair_by_stem
    from basicsr.metrics import calculate_metrics, read_gray_uint8
    from basicsr.metrics.report import write_metrics_csv
    pairs = pair_by_stem({'ir': ir_dir, 'vi': vi_dir, 'fused': fused_dir})
    rows = []
    for stem, paths in pairs:
        images = [read_gray_uint8(paths[role]) for role in ('ir', 'vi', 'fused')]
        try:
            rows.append(calculate_metrics(*images, names, convention))
        except InputError as err:
            raise InputError(f"{paths['fused']}: {err}") from None
    write_metrics_csv(csv_path, [stem for stem, _ in pairs], rows, names, convention)
    return rows


# ------------------------------------------------------------------------------------------ tables

def best_rows(values, higher):
    """Indices of the best finite values (ties all marked)."""
    finite = [(v, i) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    if not finite:
        return set()
    best = (max if higher else min)(v for v, _ in finite)
    return {i for v, i in finite if v == best}


def comparison_columns(methods, set_name, rows_by_method, names, flops_at, size):
    """Columns as (header, per-method cells, per-method values, higher is better)."""
    from basicsr.metrics import higher_is_better
    from basicsr.metrics.report import summarize

    def flops_header(entry):
        height, width = size if entry == 'mean' else entry
        return f"GFLOPs @ {width}x{height}" + (' (mean size)' if entry == 'mean' else '')

    columns = []
    if any(m.paper for m in methods):
        columns.append(('Paper', [m.paper for m in methods], None, None))
    params = [m.params for m in methods]
    columns.append(('Params (M)', [f'{p / 1e6:.3f}' if p is not None else 'n/a' for p in params],
                    [p / 1e6 if p is not None else None for p in params], False))
    for entry in flops_at:
        values = [m.gflops.get((set_name, entry)) for m in methods]
        columns.append((flops_header(entry), [f'{v:.2f}' if v is not None else 'n/a' for v in values], values, False))
    latency = [statistics.fmean(m.latency_ms[set_name]) if m.latency_ms.get(set_name) else None for m in methods]
    columns.append(('Latency (ms/pair)', [f'{v:.1f}' if v is not None else 'n/a' for v in latency], latency, False))
    for name in names:
        stats = [summarize(rows_by_method[m.name], [name])[name] for m in methods]
        cells = ['n/a' if math.isnan(mean) else f'{mean:.4f} ± {std:.4f}' for mean, std in stats]
        columns.append((name, cells, [mean for mean, _ in stats], higher_is_better(name)))
    return columns


def markdown_table(methods, columns):
    header = ['Method', *(c[0] for c in columns)]
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    marks = [best_rows(values, higher) if values is not None else set() for _, _, values, higher in columns]
    for i, method in enumerate(methods):
        cells = [f'**{cells[i]}**' if i in best else cells[i] for (_, cells, _, _), best in zip(columns, marks)]
        lines.append('| ' + ' | '.join([method.name, *cells]) + ' |')
    return '\n'.join(lines)


def write_csv_table(path, methods, columns):
    """One row per method, then a ``best`` row naming the best method of each column."""
    marks = [best_rows(values, higher) if values is not None else set() for _, _, values, higher in columns]
    with Path(path).open('w', newline='', encoding='utf-8') as handle:
        writer = csv.writer(handle, lineterminator='\n')
        writer.writerow(['method', *(c[0] for c in columns)])
        for i, method in enumerate(methods):
            writer.writerow([method.name, *(cells[i] for _, cells, _, _ in columns)])
        writer.writerow(['best', *(' '.join(methods[i].name for i in sorted(best)) for best in marks)])


def table_notes(set_name, count, size, convention, device, warmup, methods):
    """What the table's numbers are: the set, the convention, the device and how time and FLOPs were measured."""
    timed = [len(m.latency_ms[set_name]) for m in methods if m.latency_ms.get(set_name)]
    lines = [f'{set_name}: {count} pairs, mean size {size[1]}x{size[0]} (W x H). Metrics: mean ± std over the '
             f'pairs, {convention} convention. Best per column in bold.']
    if timed:
        lines.append(f'Latency: mean ms per pair of the fusing step on {device} after {warmup} untimed warm-up '
                     f'run(s), over {timed[0]} pairs; GFLOPs: torch.utils.flop_counter.FlopCounterMode '
                     '(convolutions and matrix products, 2 FLOPs per multiply-add; FFTs, norms and element-wise '
                     'operations not counted). Params: learnt parameters of the network.')
    return '\n'.join(lines)


# ------------------------------------------------------------------------------------------ main

def compare(opt, out):
    """Run the comparison of ``opt`` (see :func:`load_options`) into ``out``; return the Markdown tables."""
    from basicsr.data import build_dataset
    methods = build_methods(opt)
    sets = {}
    for key, set_opt in opt['datasets'].items():
        set_opt = dict(set_opt, phase='test')
        dataset = build_dataset(set_opt)
        sets[set_opt.get('name', key)] = (dataset, set_opt, mean_size(dataset))
    lock = prepare_output_folder(out, comparison_inputs(opt, methods, sets))
    try:
        return run_comparison(opt, methods, sets, out)
    finally:
        lock.release()


def comparison_inputs(opt, methods, sets):
    """Everything the comparison reads, which its output folder may not be, contain or lie inside."""
    from basicsr.data.fusion_test_dataset import resolve_root
    inputs = {'option file': opt['option_file']}
    for set_name, (_, set_opt, _) in sets.items():
        for role in ('dataroot_ir', 'dataroot_vi'):
            inputs[f'{set_name} {role}'] = resolve_root(set_opt, role)
    for method in methods:
        if method.fused is not None:
            for set_name in sets:
                inputs[f'fused images of {method.name} ({set_name})'] = fused_folder(method, set_name, None)
        else:
            inputs[f'option file of {method.name}'] = method.source
            inputs[f'checkpoint of {method.name}'] = (method.options.get('path') or {}).get('pretrain_network_g')
    return inputs


def prepare_output_folder(out, inputs):
    """Check ``out`` against the inputs, lock it and archive an earlier comparison there.

    Returns:
        RunLock: to release when the comparison is written.

    Raises:
        InputError: ``out`` is an input's place, is used by a live run, or holds something that is
            not an earlier comparison (it would be renamed away).
    """
    from basicsr.utils.experiment import RunLock, archive_existing, check_output_location
    check_output_location(out, inputs, '--out')
    lock = RunLock(out).acquire()
    try:
        if out.exists():
            entries = list(out.iterdir())
            marks = ('comparison.md', 'fused', 'metrics')
            if entries and not any((entry / mark).exists() for entry in entries if entry.is_dir() for mark in marks):
                raise InputError(f'--out {out}: exists and holds no earlier comparison; choose a new folder, '
                                 'it would be renamed away')
            archive_existing(out)
        with writing(out):
            out.mkdir(parents=True)
    except BaseException:
        lock.release()
        raise
    return lock


def run_comparison(opt, methods, sets, out):
    """Fuse, time, count and score every method into the prepared ``out``; return the Markdown tables."""
    from basicsr.data.fusion_test_dataset import resolve_root
    from basicsr.utils.img_util import write_image
    device = None
    for method in methods:
        if method.options is not None:
            device = run_network(method, sets, out, opt['warmup'], opt['flops_at'])
    tables = {}
    for set_name, (dataset, set_opt, size) in sets.items():
        ir_dir, vi_dir = Path(resolve_root(set_opt, 'dataroot_ir')), Path(resolve_root(set_opt, 'dataroot_vi'))
        rows = {m.name: score_method(ir_dir, vi_dir, fused_folder(m, set_name, out), opt['metric_names'],
                                     opt['convention'], out / set_name / 'metrics' / f'{m.name}.csv')
                for m in methods}
        columns = comparison_columns(methods, set_name, rows, opt['metric_names'], opt['flops_at'], size)
        notes = table_notes(set_name, len(dataset), size, opt['convention'], device_label(device),
                            opt['warmup'], methods)
        tables[set_name] = markdown_table(methods, columns) + '\n\n' + notes + '\n'
        (out / set_name / 'comparison.md').write_text(tables[set_name], encoding='utf-8')
        write_csv_table(out / set_name / 'comparison.csv', methods, columns)
        figure = figure_from_folders(ir_dir, vi_dir, {m.name: fused_folder(m, set_name, out) for m in methods},
                                     opt['figure']['stems'], opt['figure']['cell_height'])
        write_image(out / set_name / 'figure.png', figure)
    return tables


def device_label(device):
    if device is None:
        return 'n/a'
    if device.type == 'cpu':
        import torch
        return f'CPU ({device_name(device)}, {torch.get_num_threads()} threads)'
    return f'GPU ({device_name(device)})'


def main(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', required=True, help='the comparison option file, e.g. options/compare/TNO21.yml')
    parser.add_argument('--out', type=Path, help='output folder (default: results/<name>)')
    parser.add_argument('--force_yml', nargs='+', metavar='KEY.PATH=VALUE', help='override options')
    args = parser.parse_args(argv)
    from basicsr.utils.memory import keep_freed_memory
    opt = load_options(args.opt, args.force_yml)
    keep_freed_memory()
    out = args.out or Path('results') / str(opt['name'])
    tables = compare(opt, out)
    for set_name, table in tables.items():
        print(f'## {set_name}\n\n{table}')
    print(f'wrote {out}')


if __name__ == '__main__':
    report_user_errors(main)
