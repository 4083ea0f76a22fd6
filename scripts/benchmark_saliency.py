"""Time the saliency-mask tools on one 640x480 pair: the Python port against ``VSM.m`` in Octave.

    python scripts/benchmark_saliency.py [--ir FILE --vi FILE] [--mode binary|weight] [--repeats N]

Two rows, each the same work in both languages: the mask of two gray arrays already in memory
(``saliency_mask`` against ``VSM(ir, vi, [], mode)``), and a whole pair from files (read, mask,
write the PNG: ``write_pair_mask`` against ``VSM(ir_dir, vi_dir, out_dir, mode)``). Octave is
timed inside Octave with tic/toc (start-up excluded); ratios come from the same run. Without
``octave-cli`` on the PATH the Octave columns are skipped with a message. The default pair is
MSRS ``00004N`` from ``../shared/data``, or a random 640x480 pair when that is missing.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from basicsr.utils.errors import ArgumentParser
from basicsr.utils.options import SALIENCY_MODES

# basicsr.data.saliency and basicsr.utils.img_util (they load OpenCV and torch) are imported in the
# functions that use them, so that --help and usage errors answer without loading them.

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SET = REPO.parent / 'shared' / 'data' / 'MSRS'
DEFAULT_STEM = '00004N'


def parse_args() -> argparse.Namespace:
    """Parse the command line."""
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--ir', type=Path, help='infrared image (default: MSRS 00004N, else random)')
    parser.add_argument('--vi', type=Path, help='visible image of the same size')
    parser.add_argument('--mode', choices=SALIENCY_MODES, default='binary')
    parser.add_argument('--repeats', type=int, default=5, help='timed calls per row and tool; the median is shown')
    return parser.parse_args()


def stage_pair(work: Path, ir: Path | None, vi: Path | None) -> tuple[Path, Path, str]:
    """Copy the pair to ``work/ir`` and ``work/vi`` (VSM takes folders); returns the copies and a label."""
    from basicsr.utils.img_util import write_image
    if ir is None or vi is None:
        ir, vi = DEFAULT_SET / 'ir' / f'{DEFAULT_STEM}.png', DEFAULT_SET / 'vi' / f'{DEFAULT_STEM}.png'
        label = f'MSRS {DEFAULT_STEM}'
    else:
        label = f'{ir.name} / {vi.name}'
    (work / 'ir').mkdir()
    (work / 'vi').mkdir()
    if ir.is_file() and vi.is_file():
        staged = work / 'ir' / f'pair{ir.suffix}', work / 'vi' / f'pair{vi.suffix}'
        shutil.copyfile(ir, staged[0])
        shutil.copyfile(vi, staged[1])
        return staged[0], staged[1], label
    rng = np.random.default_rng(0)
    staged = work / 'ir' / 'pair.png', work / 'vi' / 'pair.png'
    write_image(staged[0], rng.integers(0, 256, (480, 640), dtype=np.uint8))
    write_image(staged[1], rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))
    return staged[0], staged[1], 'random 640x480 (shared data not found)'


def median_seconds(call: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls after one untimed warm-up call."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_octave(work: Path, ir: Path, vi: Path, mode: str, repeats: int) -> tuple[float, float] | None:
    """Median seconds of ``VSM`` on arrays and on the staged folders, timed in Octave; None without Octave."""
    octave = shutil.which('octave-cli')
    if octave is None:
        return None
    folders = f"'{work / 'ir'}', '{work / 'vi'}', '{work / 'octave'}', '{mode}'"
    script = (f"a = imread('{ir}'); b = imread('{vi}'); VSM(a, b, [], '{mode}'); VSM({folders});"
              f"t = zeros(2, {repeats});"
              f"for i = 1:{repeats}, tic; VSM(a, b, [], '{mode}'); t(1, i) = toc; end;"
              f"for i = 1:{repeats}, tic; VSM({folders}); t(2, i) = toc; end;"
              "printf('%.6f %.6f\\n', median(t, 2));")
    done = subprocess.run([octave, '--no-gui', '--norc', '--path', str(REPO), '--eval', script],
                          capture_output=True, text=True, check=True)
    in_memory, from_files = done.stdout.split()[-2:]
    return float(in_memory), float(from_files)


def main() -> int:
    """Print the timing table (Markdown)."""
    args = parse_args()
    from basicsr.data.saliency import read_gray_u8, saliency_mask, write_pair_mask
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ir, vi, label = stage_pair(work, args.ir, args.vi)
        ir_gray, vi_gray = read_gray_u8(ir), read_gray_u8(vi)
        out = work / 'python' / 'pair.png'
        python = (median_seconds(lambda: saliency_mask(ir_gray, vi_gray, args.mode), args.repeats),
                  median_seconds(lambda: write_pair_mask(ir, vi, out, args.mode), args.repeats))
        octave = time_octave(work, ir, vi, args.mode, args.repeats)
    steps = ('mask of two gray arrays in memory', 'pair from files: read, mask, write PNG')
    print(f'pair: {label}, {ir_gray.shape[1]}x{ir_gray.shape[0]}, mode {args.mode}, median of {args.repeats}\n')
    if octave is None:
        print('| step | Python (ms) |\n|---|---:|')
        for step, py in zip(steps, python):
            print(f'| {step} | {py * 1e3:.2f} |')
        print('\noctave-cli not found: Octave timing skipped (install GNU Octave to compare)')
        return 0
    print('| step | Python (ms) | Octave VSM.m (ms) | Octave / Python |\n|---|---:|---:|---:|')
    for step, py, oct_s in zip(steps, python, octave):
        print(f'| {step} | {py * 1e3:.2f} | {oct_s * 1e3:.1f} | {oct_s / py:.0f}x |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
