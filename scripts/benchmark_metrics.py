"""Time the fusion metrics on one 640x480 triple, on one CPU thread.

The triple is a reference triple from ../shared/metrics-reference resized to 640x480 (a seeded
synthetic one when that folder is absent). Prints Markdown tables: the time of each metric in
each convention, and of the metric sets with a time budget (median of --repeat runs). Run it
pinned to one core for stable numbers:

    taskset -c 0 python scripts/benchmark_metrics.py --repeat 30
"""
import os

for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_var, '1')

import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from basicsr.utils.errors import ArgumentParser  # noqa: E402

# OpenCV, torch and the metrics are imported after the arguments are parsed, so that --help answers at once.

REFERENCE = Path(__file__).resolve().parents[1].parent / 'shared' / 'metrics-reference' / 'images'
TRIPLE = 'VIFB_running_IFCNN'
SIZE = (640, 480)  # width, height
CDDFUSE_11 = ['EN', 'SD', 'SF', 'AG', 'MI', 'CC', 'PSNR', 'SCD', 'VIF', 'Qabf', 'SSIM']
# FMI scores every 3x3 window with 9x9 joint distributions; it is timed once, not repeated.
SLOW = ('FMI_pixel', 'FMI_dct')


def load_triple():
    import cv2
    if REFERENCE.is_dir():
        images = [cv2.imread(str(REFERENCE / f'{TRIPLE}_{role}.png'), cv2.IMREAD_GRAYSCALE)
                  for role in ('ir', 'vi', 'fused')]
        return [cv2.resize(image, SIZE, interpolation=cv2.INTER_CUBIC) for image in images], f'{TRIPLE} resized'
    rng = np.random.default_rng(0)
    images = [cv2.GaussianBlur(rng.integers(0, 256, SIZE[::-1]).astype(np.float64), (0, 0), 3) for _ in range(2)]
    images = [cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8) for image in images]
    fused = ((images[0].astype(np.uint16) + images[1]) // 2).astype(np.uint8)
    return [images[0], images[1], fused], 'synthetic (seed 0)'


def median_seconds(func, repeat: int):
    """Median wall-clock and CPU (process) seconds of ``func``; CPU time is what one core spends,
    undisturbed by other work sharing the machine."""
    func()  # warm-up: imports, allocations, OpenCV dispatch
    wall, cpu = [], []
    for _ in range(repeat):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        func()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def main():
    parser = ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--repeat', type=int, default=20, help='timed runs per measurement (median is reported)')
    args = parser.parse_args()
    import cv2
    import torch
    from basicsr.metrics import (CONVENTIONS, DEFAULT_METRICS, METRIC_NAMES, METRICS, available_metrics,
                                 calculate_metrics)
    from basicsr.utils.memory import keep_freed_memory
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    (ir, vi, fused), source = load_triple()

    print(f'triple: {source}, {fused.shape[1]}x{fused.shape[0]}; one thread; '
          f'median of {args.repeat} runs (FMI: 1); {platform.processor() or platform.machine()}, '
          f'{os.cpu_count()} logical CPUs, affinity {sorted(os.sched_getaffinity(0))}\n')

    sets = [('cddfuse 11 (EN SD SF AG MI CC PSNR SCD VIF Qabf SSIM)', 'cddfuse', CDDFUSE_11, 0.15)]
    sets += [('defaults', conv, DEFAULT_METRICS[conv], 0.5) for conv in CONVENTIONS]
    default_allocator = {}
    for label, conv, names, _ in sets:
        default_allocator[label, conv] = median_seconds(lambda: calculate_metrics(ir, vi, fused, names, conv),
                                                        args.repeat)
    kept = keep_freed_memory()
    print('CPU seconds (wall in parentheses); "kept memory" = after keep_freed_memory() '
          f'({"applied" if kept else "not available here"}), as the metrics CLI runs:\n')
    print('| metric set | convention | metrics | default allocator | kept memory | budget (s) '
          '| within (default / kept) |')
    print('|---|---|---|---|---|---|---|')
    for label, conv, names, budget in sets:
        wall, cpu = median_seconds(lambda: calculate_metrics(ir, vi, fused, names, conv), args.repeat)
        wall0, cpu0 = default_allocator[label, conv]
        verdicts = ' / '.join('yes' if seconds <= budget else 'NO' for seconds in (cpu0, cpu))
        print(f'| {label} | {conv} | {len(names)} | {cpu0:.4f} ({wall0:.4f}) | {cpu:.4f} ({wall:.4f}) | {budget} | '
              f'{verdicts} |')

    print('\nCPU milliseconds per metric (kept memory):\n')
    print('| metric | ' + ' | '.join(conv for conv in CONVENTIONS) + ' |')
    print('|---|' + '---|' * len(CONVENTIONS))
    for name in METRIC_NAMES:
        cells = []
        for conv in CONVENTIONS:
            if name not in available_metrics(conv):
                cells.append('—')
                continue
            repeat = 1 if name in SLOW else args.repeat
            _, cpu = median_seconds(lambda: METRICS[name].func(ir, vi, fused, conv), repeat)
            cells.append(f'{cpu * 1000:.1f}')
        print(f'| {name} | ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
    main()
