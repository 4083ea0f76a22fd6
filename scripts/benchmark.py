"""Inference speed and peak memory of FISCNet, per input size and batch, on CPU or CUDA.

    python scripts/benchmark.py [--device cpu|cuda] [--sizes 640x480 1024x768] [--batch 1]
                                [--repeats 5] [--threads N] [--weights PATH]

Each configuration runs in its own process, so the peak memory is that configuration's alone.
Latency is the median over ``--repeats`` timed calls after one warm-up call; ms/pair divides it
by the batch size. Peak memory: on CPU, the rise of the process's peak resident set size during
the calls; on CUDA, the peak of allocated device memory. Prints a Markdown table.
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

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
    net = build_net(config['weights'], device)
    width, height = config['size']
    generator = torch.Generator().manual_seed(0)
    vis = torch.rand(config['batch'], 3, height, width, generator=generator).to(device)
    ir = torch.rand(config['batch'], 1, height, width, generator=generator).to(device)

    def call():
        with torch.inference_mode():
            net(vis, ir)
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
    print('| size | batch | threads | latency (ms) | ms/pair | pairs/s | peak memory (MiB) |')
    print('|---|---:|---:|---:|---:|---:|---:|')
    for size in args.sizes:
        width, height = (int(v) for v in size.lower().split('x'))
        for batch in args.batch:
            config = {'device': args.device, 'size': [width, height], 'batch': batch, 'repeats': args.repeats,
                      'threads': args.threads, 'weights': args.weights}
            r = run_in_child(config)
            if 'error' in r:
                print(f"| {size} | {batch} | | failed: {r['error']} | | | |")
                continue
            print(f"| {size} | {batch} | {r['threads']} | {r['latency_ms']:.1f} | {r['ms_per_pair']:.1f} | "
                  f"{r['pairs_per_s']:.2f} | {r['peak_mib']:.0f} |", flush=True)


if __name__ == '__main__':
    main()
