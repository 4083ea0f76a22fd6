"""Make the visible-saliency masks (``mask_vi``) that FISCNet's training loss reads.

    python scripts/data_preparation/generate_saliency_masks.py --ir DIR --vi DIR --out DIR \\
        [--mode binary|weight] [--workers N]

Writes ``<out>/<stem>.png`` for every infrared/visible pair, identical to ``VSM.m`` in MATLAB or
GNU Octave. Pairs are matched by file stem with the dataset's rules; a problem with the input
prints one line ``error: ...`` and exits with status 2.
"""
from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from basicsr.utils.errors import ArgumentParser, InputError, error_status
from basicsr.utils.options import SALIENCY_MODES

# tqdm and the basicsr modules that load OpenCV and torch are imported in the functions that use
# them, so that --help and usage errors answer without loading them.



def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (argparse exits with status 2 on a bad option)."""
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--ir', required=True, type=Path, help='folder of infrared images')
    parser.add_argument('--vi', required=True, type=Path, help='folder of visible images (same stems)')
    parser.add_argument('--out', required=True, type=Path, help='folder for the <stem>.png masks (created)')
    parser.add_argument('--mode', choices=SALIENCY_MODES, default='binary',
                        help='binary: 255 where the visible image is the more salient (default); '
                             'weight: 0.5 + 0.5 * (V_vi - V_ir) in 8 bits')
    parser.add_argument('--workers', type=int, default=1, help='parallel processes (default 1)')
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error('--workers must be at least 1')
    return args


def check_out_folder(out: Path, inputs: dict[str, Path]) -> None:
    """Refuse an output folder that is, contains or lies inside an input folder: ``<stem>.png``
    would overwrite images or mix with them.

    Raises:
        InputError: see :func:`basicsr.utils.experiment.check_output_location`.
    """
    from basicsr.utils.experiment import check_output_location
    check_output_location(out, inputs, '--out')


def generate(ir: Path, vi: Path, out: Path, mode: str = 'binary', workers: int = 1) -> list[Path]:
    """Write ``out/<stem>.png`` for every pair of ``ir`` and ``vi``; returns the written paths.

    Raises:
        InputError: missing/empty folders, stems without a partner, unreadable images, sizes that
            differ within a pair, or ``out`` equal to an input folder.
    """
    from tqdm import tqdm

    from basicsr.data.pairing import pair_by_stem
    from basicsr.data.saliency import write_pair_mask

    pairs = pair_by_stem({'ir': ir, 'vi': vi})
    check_out_folder(out, {'--ir input folder': ir, '--vi input folder': vi})
    jobs = [(paths['ir'], paths['vi'], out / f'{stem}.png', mode) for stem, paths in pairs]
    if workers == 1:
        return [write_pair_mask(*job) for job in tqdm(jobs, desc='saliency masks', unit='pair', disable=None)]
    written = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(write_pair_mask, *job) for job in jobs]
        try:
            progress = tqdm(as_completed(futures), total=len(futures), desc='saliency masks', unit='pair', disable=None)
            for future in progress:
                written.append(future.result())
        except InputError:
            for future in futures:
                future.cancel()
            raise
    return sorted(written)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0, or 2 after an ``error:`` line)."""
    args = parse_args(argv)

    def run() -> int:
        written = generate(args.ir, args.vi, args.out, args.mode, args.workers)
        print(f'wrote {len(written)} {args.mode} mask(s) to {args.out}')
        return 0
    return error_status(run)


if __name__ == '__main__':
    sys.exit(main())
