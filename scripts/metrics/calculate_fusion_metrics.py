"""Score fused images of one or more methods against their infrared and visible sources.

Images are paired by file stem; each fused folder gets a per-image CSV and a row of the printed
comparison table (mean ± std over its images).

Example:
    python scripts/metrics/calculate_fusion_metrics.py --ir data/ir --vi data/vi \
        --fused results/A results/B --convention cddfuse --metrics EN,SD,SF,MI --csv out/ --workers 2
"""
import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from tqdm import tqdm

from basicsr.data.pairing import pair_by_stem
from basicsr.metrics import CONVENTIONS, DEFAULT_METRICS, calculate_metrics, check_metric_names, read_gray_uint8
from basicsr.utils.memory import keep_freed_memory
from basicsr.metrics.report import format_table, write_metrics_csv
from basicsr.utils.errors import ArgumentParser, InputError, OptionError, error_status, writing
from basicsr.utils.experiment import check_output_location

Task = Tuple[Path, Path, Path, Sequence[str], str]


def parse_args(argv=None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--ir', required=True, type=Path, help='folder of infrared source images')
    parser.add_argument('--vi', required=True, type=Path, help='folder of visible source images')
    parser.add_argument('--fused', required=True, type=Path, nargs='+', help='one folder of fused images per method')
    parser.add_argument('--convention', default='tang', choices=CONVENTIONS,
                        help='whose toolkit the numbers reproduce (default: tang); see docs/metrics.md')
    parser.add_argument('--metrics', help="comma-separated metric names (default: the convention's defaults)")
    parser.add_argument('--csv', type=Path, metavar='OUT',
                        help='folder for the per-image CSVs, one <fused folder name>.csv per method')
    parser.add_argument('--workers', type=int, default=1, help='processes scoring images in parallel (default: 1)')
    return parser.parse_args(argv)


def score_triple(task: Task) -> Dict[str, float]:
    """Read one (ir, vi, fused) triple and score it; errors name the fused file."""
    keep_freed_memory()
    ir_path, vi_path, fused_path, names, convention = task
    images = [read_gray_uint8(path) for path in (ir_path, vi_path, fused_path)]
    try:
        return calculate_metrics(*images, names, convention)
    except InputError as err:
        raise InputError(f'{fused_path}: {err}') from None


def row_labels(folders: Sequence[Path]) -> List[str]:
    """Folder names as table labels, with the parent folder added where two names coincide."""
    names = [folder.resolve().name for folder in folders]
    return [f'{folder.resolve().parent.name}/{name}' if names.count(name) > 1 else name
            for folder, name in zip(folders, names)]


def check_csv_folder(args: argparse.Namespace) -> None:
    """The CSV folder may not be, contain or lie inside an input folder (see check_output_location)."""
    if args.csv is not None:
        inputs = {'--ir folder': args.ir, '--vi folder': args.vi}
        inputs.update({f'--fused folder #{i}': folder for i, folder in enumerate(args.fused, 1)})
        check_output_location(args.csv, inputs, '--csv')


def main(argv=None) -> int:
    """Command-line entry point; returns the exit status (0, 2 after an ``error:`` line, 130 on Ctrl-C)."""
    args = parse_args(argv)
    return error_status(lambda: score_and_report(args))


def score_and_report(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise OptionError(f'--workers {args.workers}: use 1 or more processes')
    names = check_metric_names([n.strip() for n in args.metrics.split(',') if n.strip()]) if args.metrics \
        else DEFAULT_METRICS[args.convention]
    if not names:
        raise OptionError('--metrics: give at least one metric name')
    check_csv_folder(args)
    labels = row_labels(args.fused)
    pairs = {label: pair_by_stem({'ir': args.ir, 'vi': args.vi, 'fused': folder})
             for label, folder in zip(labels, args.fused)}
    tasks = [(p['ir'], p['vi'], p['fused'], names, args.convention) for stems in pairs.values() for _, p in stems]
    with tqdm(total=len(tasks), desc='scoring', unit='img') as bar:
        if args.workers == 1:
            scores = []
            for task in tasks:
                scores.append(score_triple(task))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=args.workers) as pool:
                scores = []
                for score in pool.map(score_triple, tasks, chunksize=4):
                    scores.append(score)
                    bar.update()

    groups, start = {}, 0
    for label, stems in pairs.items():
        groups[label] = scores[start:start + len(stems)]
        if args.csv:
            csv_path = args.csv / f"{label.replace('/', '_')}.csv"
            with writing(csv_path):
                write_metrics_csv(csv_path, [stem for stem, _ in stems], groups[label], names, args.convention)
            print(f'wrote {csv_path}')
        start += len(stems)
    print(f'convention: {args.convention}')
    print(format_table(groups, names))
    return 0


if __name__ == '__main__':
    sys.exit(main())
