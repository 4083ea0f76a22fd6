"""Figures of a training run: loss terms, learning rate and every validation metric against iterations.

    python scripts/plot_training.py experiments/FISCNet_train [--reference EN=7.1 Qabf=0.52 | FILE ...]
        [--reference-label released] [--source auto|log|tb] [--out DIR]

Reads the run's text logs (``train_*.log``; a resumed run's later log replaces the iterations it
repeats) or, with ``--source tb`` or when there is no log, its TensorBoard events (``tb_logger/``).
Writes to ``--out`` (default ``EXPERIMENT_DIR/plots``):

- ``losses.png``: every loss term (``l_mask``, ``l_max``, ... and ``l_total``), averaged over each
  logging interval as the log reports them;
- ``lr.png``: the learning rate;
- ``metrics_<set>.png``: one panel per validation metric of each validation set, with the
  reference value as a dashed line when one is given;
- ``curves_<set>.csv``: the validation metrics as numbers, one row per validation.

References (``--reference``, the same for every validation set) are ``METRIC=VALUE`` items or
files: a metrics CSV written by ``test.py`` or ``calculate_fusion_metrics.py --csv`` (its
``mean`` row), or a JSON object ``{"EN": 7.1, ...}``. With references, the script prints for
each metric the reference, the last and best values and the first validation within 5 % of the
reference.

Plotting needs matplotlib: ``pip install -e '.[plot]'``.
"""
import argparse
import csv
import json
import math
import re
from pathlib import Path

from basicsr.utils.errors import ArgumentParser, InputError, OptionError, report_user_errors

# The lines train.py logs (basicsr/utils/logger.py prefixes them with the time and level).
TRAIN_LINE = re.compile(r'\[epoch \d+ iter ([\d,]+)/[\d,]+\] lr (\S+) (\S+) it/s eta \S+ (.*)$')
VALIDATION_LINE = re.compile(r'validation (.+) at iter ([\d,]+): (.*)$')
NAMED_VALUE = re.compile(r'(\S+): (\S+)')
# TensorBoard tags of train.py; series use these names whatever the source.
LOSS_PREFIX, LR_TAG, METRIC_PREFIX = 'losses/', 'train/lr', 'metrics/'
WITHIN = 0.05  # "reached the reference": within 5 % of it


def parse_log_lines(lines, series=None):
    """Add the loss terms, learning rate, it/s and validation means of train.py's log to ``series``.

    Args:
        lines: the log's lines.
        series (dict | None): tag -> {iteration: value}; a value for an iteration already there
            replaces it (a resumed run repeats the iterations after its last state).

    Returns:
        dict: ``series``, keyed by train.py's TensorBoard tags (``losses/l_total``, ``train/lr``,
        ``train/it_per_s``, ``metrics/<set>/<metric>``).
    """
    series = {} if series is None else series
    for line in lines:
        match = TRAIN_LINE.search(line)
        if match:
            iteration = int(match[1].replace(',', ''))
            series.setdefault(LR_TAG, {})[iteration] = float(match[2])
            series.setdefault('train/it_per_s', {})[iteration] = float(match[3])
            for name, value in NAMED_VALUE.findall(match[4]):
                series.setdefault(LOSS_PREFIX + name, {})[iteration] = float(value)
            continue
        match = VALIDATION_LINE.search(line)
        if match:
            iteration = int(match[2].replace(',', ''))
            for name, value in NAMED_VALUE.findall(match[3]):
                series.setdefault(f'{METRIC_PREFIX}{match[1]}/{name}', {})[iteration] = float(value)
    return series


def read_logs(experiment):
    """The series of every ``train_*.log`` of ``experiment``, oldest log first (names hold the start time)."""
    series = {}
    for path in sorted(Path(experiment).glob('train_*.log')):
        with path.open(encoding='utf-8', errors='replace') as handle:
            parse_log_lines(handle, series)
    return series


def read_tensorboard(experiment):
    """The scalar series of ``experiment/tb_logger`` (empty when there are no events)."""
    folder = Path(experiment) / 'tb_logger'
    if not any(folder.glob('events.out.tfevents.*')):
        return {}
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(folder), size_guidance={'scalars': 0})  # 0: keep every point
    events.Reload()
    return {tag: {event.step: event.value for event in events.Scalars(tag)} for tag in events.Tags()['scalars']}


def read_series(experiment, source='auto'):
    """The run's series from its text logs or TensorBoard events (``auto``: the logs when there are any).

    Raises:
        InputError: the folder does not exist or holds nothing train.py logged.
    """
    experiment = Path(experiment)
    if not experiment.is_dir():
        raise InputError(f'{experiment}: no such experiment folder; give experiments/<name> of a train.py run')
    series = read_logs(experiment) if source in ('auto', 'log') else {}
    if not series and source in ('auto', 'tb'):
        series = read_tensorboard(experiment)
    if not series:
        looked_at = {'auto': 'train_*.log nor tb_logger/ events', 'log': 'train_*.log',
                     'tb': 'tb_logger/ events'}[source]
        raise InputError(f'{experiment}: found no training record in {looked_at}; '
                         'is it a train.py experiment folder that has logged at least one interval?')
    return series


def read_reference_file(path):
    """Metric -> value from a metrics CSV (its ``mean`` row) or a JSON object.

    Raises:
        InputError: the file is missing, has no ``mean`` row, or a value is not a number.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f'{path}: reference file not found')
    if path.suffix.lower() == '.json':
        try:
            data = json.loads(path.read_text(encoding='utf-8'))
        except json.JSONDecodeError as err:
            raise InputError(f'{path}: not valid JSON ({err.msg} at line {err.lineno})') from None
        if not isinstance(data, dict):
            raise InputError(f'{path}: expected a JSON object {{"EN": 7.1, ...}}')
        items = data.items()
    else:
        lines = [line for line in path.read_text(encoding='utf-8').splitlines() if not line.startswith('#')]
        rows = {row[0]: row for row in csv.reader(lines) if row}
        header = rows.get('image')
        if header is None or 'mean' not in rows:
            raise InputError(f'{path}: expected a metrics CSV with an image,<metric>,... header and a mean row '
                             '(as test.py writes), or a .json file')
        items = zip(header[1:], rows['mean'][1:])
    reference = {}
    for name, value in items:
        try:
            reference[str(name)] = float(value)
        except (TypeError, ValueError):
            raise InputError(f'{path}: the reference {name} = {value!r} is not a number') from None
    return reference


def parse_references(items):
    """Metric -> value from ``METRIC=VALUE`` items and reference files (later items win).

    Raises:
        OptionError: an item is neither ``METRIC=VALUE`` with a number nor a file.
    """
    reference = {}
    for item in items or []:
        if '=' in item and not Path(item).is_file():
            name, _, value = item.partition('=')
            try:
                reference[name.strip()] = float(value)
            except ValueError:
                raise OptionError(f'--reference {item}: {value!r} is not a number; use METRIC=VALUE, '
                                  'e.g. EN=7.1') from None
        elif Path(item).suffix.lower() in ('.csv', '.json') or Path(item).is_file():
            reference.update(read_reference_file(item))
        else:
            raise OptionError(f'--reference {item}: not METRIC=VALUE and not a .csv or .json file')
    return reference


def metric_sets(series):
    """``{set: {metric: {iteration: value}}}`` of the validation series."""
    sets = {}
    for tag, points in series.items():
        if tag.startswith(METRIC_PREFIX):
            set_name, _, metric = tag[len(METRIC_PREFIX):].rpartition('/')
            sets.setdefault(set_name, {})[metric] = points
    return sets


def first_within(points, reference, tolerance=WITHIN):
    """The first iteration whose value is within ``tolerance`` (relative) of ``reference``, else None."""
    for iteration in sorted(points):
        if abs(points[iteration] - reference) <= tolerance * abs(reference):
            return iteration
    return None


def best_value(name, points):
    from basicsr.metrics import higher_is_better  # it loads torch: imported here so that --help answers at once
    values = [v for v in points.values() if not math.isnan(v)]
    if not values:
        return math.nan
    try:
        return max(values) if higher_is_better(name) else min(values)
    except OptionError:  # a metric the package does not know: no direction to rank by
        return math.nan


def summary_table(set_name, metrics, reference):
    """A Markdown table: each metric's reference, last and best value, and the first iteration within 5 %."""
    lines = [f'{set_name}:', '', '| metric | reference | last | best | first within 5 % |', '|---|---:|---:|---:|---:|']
    for name, points in metrics.items():
        last = points[max(points)]
        ref = reference.get(name)
        within = first_within(points, ref) if ref is not None else None
        lines.append(f"| {name} | {'' if ref is None else f'{ref:.4f}'} | {last:.4f} | "
                     f"{best_value(name, points):.4f} | {'—' if within is None else f'{within:,}'} |")
    return '\n'.join(lines)


def write_metric_csv(path, metrics):
    """One row per validated iteration, one column per metric (empty where a metric is missing)."""
    iterations = sorted({it for points in metrics.values() for it in points})
    with open(path, 'w', newline='', encoding='utf-8') as handle:
        writer = csv.writer(handle, lineterminator='\n')
        writer.writerow(['iter', *metrics])
        for it in iterations:
            writer.writerow([it, *(repr(points[it]) if it in points else '' for points in metrics.values())])


def import_pyplot():
    """matplotlib's pyplot with a file-only backend.

    Raises:
        OptionError: matplotlib is not installed.
    """
    try:
        import matplotlib
    except ImportError:
        raise OptionError("plotting needs matplotlib, which is not installed: pip install -e '.[plot]' "
                          '(or pip install matplotlib)') from None
    matplotlib.use('Agg')  # no display needed: the figures only go to files
    import matplotlib.pyplot as plt
    return plt


def sorted_points(points):
    iterations = sorted(points)
    return iterations, [points[it] for it in iterations]


def plot_lines(plt, path, curves, title, ylabel, log_y=False):
    """One axes with a line per ``name -> {iteration: value}`` of ``curves``."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, points in curves.items():
        ax.plot(*sorted_points(points), label=name, linewidth=1.2)
    if log_y and all(v > 0 for points in curves.values() for v in points.values()):
        ax.set_yscale('log')
    ax.set(xlabel='iteration', ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_metrics(plt, path, set_name, metrics, reference, reference_label):
    """A grid with one panel per metric; the reference value as a dashed horizontal line."""
    columns = min(4, len(metrics))
    rows = math.ceil(len(metrics) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.7 * rows), squeeze=False)
    for ax, (name, points) in zip(axes.flat, metrics.items()):
        ax.plot(*sorted_points(points), marker='o', markersize=3, linewidth=1.2, label='this run')
        if name in reference:
            ax.axhline(reference[name], color='tab:red', linestyle='--', linewidth=1, label=reference_label)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel('iteration', fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    if reference:
        axes.flat[0].legend(fontsize=7)
    fig.suptitle(f'validation on {set_name}', fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def safe_name(text):
    return re.sub(r'[^\w.-]+', '_', text)


def plot_training(experiment, out=None, reference=None, reference_label='reference', source='auto'):
    """Write the run's figures (and metric CSVs) to ``out``; return the written paths and summaries.

    Args:
        experiment (str | Path): a train.py experiment folder.
        out (str | Path | None): output folder (default ``experiment/plots``), created when needed.
        reference (dict | None): metric -> value drawn on every set's panel of that metric.
        reference_label (str): the legend of the reference lines.
        source (str): ``auto``, ``log`` or ``tb`` (see :func:`read_series`).

    Returns:
        tuple[list[Path], list[str]]: the files written and, per validation set, a Markdown summary.

    Raises:
        InputError: nothing to read in ``experiment``. OptionError: matplotlib is missing.
    """
    plt = import_pyplot()
    series = read_series(experiment, source)
    reference = reference or {}
    out = Path(out) if out is not None else Path(experiment) / 'plots'
    out.mkdir(parents=True, exist_ok=True)
    written = []
    losses = {tag[len(LOSS_PREFIX):]: points for tag, points in series.items() if tag.startswith(LOSS_PREFIX)}
    if losses:
        written.append(out / 'losses.png')
        plot_lines(plt, written[-1], losses, 'training losses (means over each logging interval)', 'loss', log_y=True)
    if series.get(LR_TAG):
        written.append(out / 'lr.png')
        plot_lines(plt, written[-1], {'lr': series[LR_TAG]}, 'learning rate', 'lr')
    summaries = []
    for set_name, metrics in metric_sets(series).items():
        written.append(out / f'metrics_{safe_name(set_name)}.png')
        plot_metrics(plt, written[-1], set_name, metrics, reference, reference_label)
        written.append(out / f'curves_{safe_name(set_name)}.csv')
        write_metric_csv(written[-1], metrics)
        summaries.append(summary_table(set_name, metrics, reference))
    return written, summaries


def main(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('experiment', help='a train.py experiment folder, e.g. experiments/FISCNet_train')
    parser.add_argument('--reference', nargs='+', default=[], metavar='METRIC=VALUE|FILE',
                        help='reference values (e.g. the released model\'s on the same set): METRIC=VALUE items, '
                             'a metrics CSV of test.py, or a JSON object')
    parser.add_argument('--reference-label', default='reference', help='legend of the reference lines')
    parser.add_argument('--source', choices=['auto', 'log', 'tb'], default='auto',
                        help='read the text logs, the TensorBoard events, or the logs when present (default)')
    parser.add_argument('--out', help='output folder (default: EXPERIMENT/plots)')
    args = parser.parse_args(argv)
    reference = parse_references(args.reference)
    written, summaries = plot_training(args.experiment, args.out, reference, args.reference_label, args.source)
    for path in written:
        print(f'wrote {path}')
    if reference:
        for summary in summaries:
            print('\n' + summary)


if __name__ == '__main__':
    report_user_errors(main)
