"""Inference speed, peak memory and accuracy of FISCNet's execution modes, per size and batch.

    python scripts/benchmark.py [--device cpu|cuda] [--modes eager channels_last compile]
                                [--sizes 640x480 1024x768] [--batch 1] [--repeats 5]
                                [--threads N] [--weights PATH]

Each configuration runs in its own process, so the peak memory is that configuration's alone.
Latency is the median over ``--repeats`` timed calls after one warm-up call (which includes
compilation); ms/pair divides it by the batch size. Peak memory: on CPU, the rise of the
process's peak resident set size during the calls; on CUDA, the peak of allocated device memory.
Every mode is compared with eager float32 of the same run on the same input: the speed-up, the
max |difference| of the raw fused Y and of the 8-bit output (clamp, x255, round). Prints a
Markdown table.
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from basicsr.utils.execution import EXECUTION_MODES, prepare_input, prepare_network

REPO = Path(__file__).resolve().parents[1]


def current_rss_mib():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return float('nan')


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def build_net(weights, device):
    from basicsr.archs.fiscnet_arch import FISCNet
    from basicsr.utils.checkpoint import load_params, read_params
    torch.manual_seed(0)  # every mode's process builds the same random weights when no file is given
    net = FISCNet()
    if weights and Path(weights).is_file():
        load_params(net, read_params(weights), strict=True)
    return net.to(device).eval()


def measure(config):
    """Run one configuration in this process; return its timings and memory."""
    device = torch.device(config['device'])
    if config['threads']:
        torch.set_num_threads(config['threads'])
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    mode = config['mode']
    net = prepare_network(build_net(config['weights'], device), mode)
    width, height = config['size']
    generator = torch.Generator().manual_seed(0)
    vis = prepare_input(torch.rand(config['batch'], 3, height, width, generator=generator).to(device), mode)
    ir = prepare_input(torch.rand(config['batch'], 1, height, width, generator=generator).to(device), mode)
    outputs = []

    def call():
        with torch.inference_mode():
            outputs[:] = [net(vis, ir)]
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    rss_before = current_rss_mib()
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    call()
    times = []
    for _ in range(config['repeats']):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    if device.type == 'cuda':
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = peak_rss_mib() - rss_before
    latency = statistics.median(times)
    np.save(config['output'], outputs[0].float().cpu().numpy())
    return {'latency_ms': latency * 1000, 'ms_per_pair': latency * 1000 / config['batch'],
            'pairs_per_s': config['batch'] / latency, 'peak_mib': peak, 'threads': torch.get_num_threads()}


def run_in_child(config):
    result = subprocess.run([sys.executable, __file__, '--child', json.dumps(config)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return {'error': result.stderr.strip().splitlines()[-1] if result.stderr.strip() else 'failed'}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--modes', nargs='+', choices=EXECUTION_MODES, default=list(EXECUTION_MODES),
                        help='execution modes; eager, the baseline, always runs first')
    parser.add_argument('--sizes', nargs='+', default=['640x480'], help='WxH sizes')
    parser.add_argument('--batch', type=int, nargs='+', default=[1])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=0, help='CPU threads (0: PyTorch default)')
    parser.add_argument('--weights', default=str(REPO / 'pretrained_models' / 'FISCNet_official.pth'),
                        help='checkpoint (random weights when absent; speed does not depend on them)')
    parser.add_argument('--child', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(json.loads(args.child))))
        return

    print(f'PyTorch {torch.__version__}, device {args.device}'
          + (f' ({torch.cuda.get_device_name(0)})' if args.device == 'cuda' else ''))
    print('| mode | size | batch | threads | latency (ms) | ms/pair | pairs/s | speed-up | peak memory (MiB) '
          '| max abs diff Y | max diff 8-bit |')
    print('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    modes = ['eager'] + [m for m in args.modes if m != 'eager']
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            width, height = (int(v) for v in size.lower().split('x'))
            for batch in args.batch:
                baseline = None
                for mode in modes:
                    output = Path(tmp) / f'{mode}_{size}_{batch}.npy'
                    config = {'device': args.device, 'size': [width, height], 'batch': batch, 'mode': mode,
                              'repeats': args.repeats, 'threads': args.threads, 'weights': args.weights,
                              'output': str(output)}
                    r = run_in_child(config)
                    if 'error' in r:
                        print(f"| {mode} | {size} | {batch} | | failed: {r['error']} | | | | | | |", flush=True)
                        continue
                    y = np.load(output)
                    if mode == 'eager':
                        baseline = (r['latency_ms'], y)
                    speedup = baseline[0] / r['latency_ms'] if baseline else float('nan')
                    diff_y = float(np.abs(y - baseline[1]).max()) if baseline else float('nan')
                    diff_8 = int(np.abs(to_8bit(y) - to_8bit(baseline[1])).max()) if baseline else -1
                    print(f"| {mode} | {size} | {batch} | {r['threads']} | {r['latency_ms']:.1f} | "
                          f"{r['ms_per_pair']:.1f} | {r['pairs_per_s']:.2f} | {speedup:.2f}x | {r['peak_mib']:.0f} | "
                          f"{diff_y:.1e} | {diff_8} |", flush=True)


def to_8bit(y):
    return np.round(np.clip(y, 0, 1) * 255).astype(np.int16)


if __name__ == '__main__':
    main()
