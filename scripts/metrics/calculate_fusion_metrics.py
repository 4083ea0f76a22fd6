"""Score fused images of one or more methods against their infrared and visible sources.

Images are paired by file stem (01.png with 01.jpg) across --ir, --vi and every --fused folder.
Each --fused folder is one method: a row of the printed table (mean ± std over its images) and,
with --csv, a per-image CSV OUT/<label>.csv.

Labels: a method is labelled with its --fused folder's name as typed, not where a symlink leads
(results/A/ and results/A/. are "A"; for ".", ".." or a path ending in ".." the name of the
folder it leads to), or with --names, one label per --fused folder in order. Labels must be
unique: two folders of the same name need --names.

Every folder must hold the same stems; with --common-only only the stems that every folder
holds are scored, and one warning line names what each folder lacks.

Example:
    python scripts/metrics/calculate_fusion_metrics.py --ir data/ir --vi data/vi \\
        --fused results/A results/B --names A B --convention cddfuse --metrics EN,SD,SF,MI \\
        --csv out/ --workers 2

Exit status: 0; 2 after one "error: ..." line on stderr; 130 on Ctrl-C. See docs/metrics.md.
"""
# Only light modules are imported here so that --help answers at once; torch, OpenCV and the
# metrics are imported after the arguments are parsed.
import argparse
import sys
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from basicsr.utils.errors import ArgumentParser
from basicsr.utils.options import CONVENTIONS, schema_option
SHOWN_STEMS = 5  # stems named in a warning per folder before "and N more"

Task = Tuple[Path, Path, Path, Sequence[str], str]
Pairs = List[Tuple[str, Dict[str, Path]]]


def parse_args(argv=None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--ir', required=True, type=Path, metavar='DIR', help='folder of infrared source images')
    parser.add_argument('--vi', required=True, type=Path, metavar='DIR', help='folder of visible source images')
    parser.add_argument('--fused', required=True, type=Path, nargs='+', metavar='DIR',
                        help='one folder of fused images per method')
    parser.add_argument('--names', nargs='+', metavar='LABEL',
                        help='labels of the methods, one per --fused folder in order (default: the folder names)')
    parser.add_argument('--common-only', action='store_true',
                        help='score only the stems that every folder holds, with one warning naming what each '
                             'folder lacks (default: a folder lacking a stem is an error)')
    parser.add_argument('--convention', default=schema_option('val.convention').default, choices=CONVENTIONS,
                        help='whose toolkit the numbers reproduce (default: tang); see docs/metrics.md')
    parser.add_argument('--metrics', metavar='NAMES',
                        help="comma-separated metric names (default: the convention's defaults)")
    parser.add_argument('--csv', type=Path, metavar='OUT',
                        help='folder for the per-image CSVs, one <label>.csv per method')
    parser.add_argument('--workers', type=int, default=1, metavar='N',
                        help='processes scoring images in parallel (default: 1)')
    return parser.parse_args(argv)


def score_triple(task: Task) -> Dict[str, float]:
    """Read one (ir, vi, fused) triple and score it; errors name the fused file."""
    from basicsr.metrics import calculate_metrics, read_gray_uint8
    from basicsr.utils.errors import InputError
    from basicsr.utils.memory import keep_freed_memory

    keep_freed_memory()
    ir_path, vi_path, fused_path, names, convention = task
    images = [read_gray_uint8(path) for path in (ir_path, vi_path, fused_path)]
    try:
        return calculate_metrics(*images, names, convention)
    except InputError as err:
        raise InputError(f'{fused_path}: {err}') from None


def folder_label(folder: Path) -> str:
    """The name of ``folder`` as typed (a symlink keeps its own name); for ``.``, ``..`` or a path
    ending in ``..``, the name of the folder it leads to."""
    name = Path(folder).name  # pathlib drops a trailing '/' and '.' components
    return Path(folder).resolve().name if name in ('', '..') else name


def method_labels(folders: Sequence[Path], names: Optional[Sequence[str]]) -> List[str]:
    """One unique label per fused folder: ``names`` (``--names``) or the folder names.

    Raises:
        OptionError: ``--names`` gives a wrong number of labels, a label twice or one that cannot
            name a CSV file; or two folders share a name and no ``--names`` tells them apart.
    """
    from basicsr.utils.errors import OptionError

    if names is not None:
        if len(names) != len(folders):
            raise OptionError(f'--names: {len(names)} label(s) for {len(folders)} --fused folder(s); '
                              'give one label per --fused folder, in order')
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise OptionError(f"--names: {', '.join(map(repr, duplicates))} given twice; labels must be unique")
        for name in names:
            if name in ('', '.', '..') or any(sep in name for sep in '/\\'):
                raise OptionError(f'--names: {name!r} cannot name a CSV file; use a label without / or \\')
        return list(names)
    labels = [folder_label(folder) for folder in folders]
    for label, folder in zip(labels, folders):
        if not label:
            raise OptionError(f'--fused {folder}: this folder has no name to label it with; give labels with --names')
        same = [str(other) for other, other_label in zip(folders, labels) if other_label == label]
        if len(same) > 1:
            raise OptionError(f"--fused: {len(same)} folders are named '{label}' ({', '.join(same)}); "
                              'give each method a label with --names, one per --fused folder in order')
    return labels


def check_csv_folder(args: argparse.Namespace) -> None:
    """The CSV folder may not be, contain or lie inside an input folder (see check_output_location)."""
    from basicsr.utils.experiment import check_output_location

    if args.csv is not None:
        inputs = {'--ir folder': args.ir, '--vi folder': args.vi}
        inputs.update({f'--fused folder #{i}': folder for i, folder in enumerate(args.fused, 1)})
        check_output_location(args.csv, inputs, '--csv')


def _listed(flag: str, folder: Path) -> Dict[str, Path]:
    from basicsr.data.pairing import list_images
    from basicsr.utils.errors import InputError

    try:
        return list_images(folder)
    except InputError as err:
        raise InputError(f'{flag} {err}') from None


def _shown(stems: Sequence[str]) -> str:
    more = len(stems) - SHOWN_STEMS
    return ', '.join(stems[:SHOWN_STEMS]) + (f' and {more} more' if more > 0 else '')


def pair_folders(ir: Path, vi: Path, fused: Mapping[str, Path], common_only: bool) -> Dict[str, Pairs]:
    """Pair every method's fused images with the sources by stem.

    Args:
        fused: label -> folder of the method's fused images.
        common_only: score the stems that every folder holds (one ``warning:`` line on stderr names
            what each folder lacks) instead of refusing folders that differ.

    Returns:
        label -> ``[(stem, {'ir': path, 'vi': path, 'fused': path})]``, sorted by stem; the same
        stems for every method.

    Raises:
        InputError: a folder is missing, empty or holds two images of one stem; the folders hold
            different stems (without ``common_only``); no stem is in every folder.
    """
    from basicsr.utils.errors import InputError

    # (role, what to call it in a warning, folder, its images), in the order of the command line.
    folders = [('ir', '--ir folder', ir, _listed('--ir', ir)), ('vi', '--vi folder', vi, _listed('--vi', vi))]
    folders += [('fused', label, folder, _listed('--fused', folder)) for label, folder in fused.items()]
    all_stems = set().union(*(images.keys() for *_, images in folders))
    common = set.intersection(*(set(images) for *_, images in folders))
    if common != all_stems:
        if not common_only:
            role, _, folder, images = next(entry for entry in folders if len(entry[3]) < len(all_stems))
            missing = sorted(all_stems - images.keys())
            shown = ', '.join(missing[:10]) + (f' and {len(missing) - 10} more' if len(missing) > 10 else '')
            raise InputError(f'{folder}: no {role} image for {len(missing)} stem(s) found in the other folder(s): '
                             f'{shown}; add the partners or remove those files, or score only the stems every '
                             'folder holds with --common-only')
        if not common:
            raise InputError(f'--common-only: no stem is in every folder (--ir, --vi and {len(fused)} --fused); '
                             'check that they hold the same images')
        left_out = sorted(all_stems - common)
        lacks = [f'{name} lacks {len(missing)} ({_shown(missing)})' for _, name, _, images in folders
                 for missing in [sorted(all_stems - images.keys())] if missing]
        print(f'warning: --common-only: scoring the {len(common)} stem(s) every folder holds, leaving out '
              f"{len(left_out)} ({_shown(left_out)}): {'; '.join(lacks)}", file=sys.stderr)
    sources = {role: images for role, _, _, images in folders[:2]}
    return {label: [(stem, {'ir': sources['ir'][stem], 'vi': sources['vi'][stem], 'fused': images[stem]})
                    for stem in sorted(common)]
            for (_, label, _, images) in folders[2:]}


def main(argv=None) -> int:
    """Command-line entry point; returns the exit status (0, 2 after an ``error:`` line, 130 on Ctrl-C)."""
    args = parse_args(argv)
    from basicsr.utils.errors import error_status  # imports torch: after --help and usage errors

    return error_status(lambda: score_and_report(args))


def score_and_report(args: argparse.Namespace) -> int:
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    from basicsr.metrics import DEFAULT_METRICS, check_metric_names
    from basicsr.metrics.report import format_table, write_metrics_csv
    from basicsr.utils.errors import OptionError, writing

    if args.workers < 1:
        raise OptionError(f'--workers {args.workers}: use 1 or more processes')
    if args.metrics:
        try:
            names = check_metric_names([n.strip() for n in args.metrics.split(',') if n.strip()])
        except OptionError as err:
            raise OptionError(f'--metrics: {err}') from None
    else:
        names = DEFAULT_METRICS[args.convention]
    if not names:
        raise OptionError('--metrics: give at least one metric name')
    labels = method_labels(args.fused, args.names)
    check_csv_folder(args)
    pairs = pair_folders(args.ir, args.vi, dict(zip(labels, args.fused)), args.common_only)
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
            csv_path = args.csv / f'{label}.csv'
            with writing(csv_path):
                write_metrics_csv(csv_path, [stem for stem, _ in stems], groups[label], names, args.convention)
            print(f'wrote {csv_path}')
        start += len(stems)
    print(f'convention: {args.convention}')
    print(format_table(groups, names))
    return 0


if __name__ == '__main__':
    sys.exit(main())
