"""Training speed: iterations/s of one FISCNet training step (forward, the recipe's losses, backward, Adam, EMA).

    python scripts/benchmark_train.py [--device auto|cpu|cuda] [--amp none bf16 fp16] [--batch 4] [--crop 128]

Batches are made once in memory, so the numbers are the model's speed; data loading runs in
parallel workers during training (num_worker_per_gpu). The options are read from
options/train/FISCNet.yml (network, losses, optimizer, EMA), so the measured step is the recipe's.
"""
import argparse
import platform
import time
from pathlib import Path

import torch

from basicsr.models.fusion_model import FusionModel
from basicsr.utils.errors import report_user_errors
from basicsr.utils.options import load_yaml

RECIPE = Path(__file__).resolve().parents[1] / 'options' / 'train' / 'FISCNet.yml'
DEVICE_TO_NUM_GPU = {'auto': 'auto', 'cpu': 0, 'cuda': 1}


def cpu_name():
    """The CPU model as the OS reports it (Linux), else what Python knows."""
    cpuinfo = Path('/proc/cpuinfo')
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    return platform.processor() or platform.machine()


def measure(recipe, num_gpu, amp, batch, crop, iters, warmup):
    """Mean iterations/s over ``iters`` steps after ``warmup`` steps."""
    opt = {'num_gpu': num_gpu, 'is_train': True, 'network_g': recipe['network_g'], 'train': recipe['train'],
           'use_amp': amp != 'none', 'amp_dtype': amp if amp != 'none' else 'bf16'}
    torch.manual_seed(0)
    model = FusionModel(opt)
    batch_data = {'ir': torch.rand(batch, 1, crop, crop), 'vis': torch.rand(batch, 3, crop, crop),
                  'mask': (torch.rand(batch, 1, crop, crop) > 0.5).float()}
    model.feed_data(batch_data)

    def sync():
        if model.device.type == 'cuda':
            torch.cuda.synchronize(model.device)

    for step in range(warmup):
        model.optimize_parameters(step + 1)
    sync()
    start = time.perf_counter()
    for step in range(iters):
        model.optimize_parameters(warmup + step + 1)
    sync()
    return iters / (time.perf_counter() - start), model.device


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', choices=sorted(DEVICE_TO_NUM_GPU), default='auto')
    parser.add_argument('--amp', nargs='+', choices=['none', 'bf16', 'fp16'], default=['none'])
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--crop', type=int, default=128)
    parser.add_argument('--iters', type=int, default=20, help='timed iterations')
    parser.add_argument('--warmup', type=int, default=3, help='untimed iterations first')
    parser.add_argument('--threads', type=int, default=None, help='CPU threads (default: torch\'s choice)')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = load_yaml(RECIPE)
    rows = []
    for amp in args.amp:
        rate, device = measure(recipe, DEVICE_TO_NUM_GPU[args.device], amp, args.batch, args.crop, args.iters,
                               args.warmup)
        name = torch.cuda.get_device_name(device) if device.type == 'cuda' else cpu_name()
        rows.append((f'{device.type} ({name})', amp, f'{args.batch} x {args.crop}x{args.crop}',
                     str(torch.get_num_threads()), f'{rate:.3f}', f'{1 / rate:.3f}'))
    header = ('device', 'amp', 'batch', 'CPU threads', 'it/s', 's/it')
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, tuple('-' * w for w in widths), *rows):
        print('| ' + ' | '.join(cell.ljust(w) for cell, w in zip(row, widths)) + ' |')


if __name__ == '__main__':
    report_user_errors(main)
