"""FISCNet speed, peak memory and accuracy: inference per execution mode, size and batch; training it/s.

    python scripts/benchmark.py [--device cpu|cuda] [--modes eager channels_last compile]
        [--memory release keep] [--sizes 640x480 1024x768 1280x1024] [--batch 1 8] [--repeats 5]
        [--threads N] [--weights PATH]
        [--train] [--amp none bf16 fp16] [--train-batch 4] [--crop 128] [--iters 20] [--train-parts] [--conv-rates]

Every configuration runs in its own process, so its peak memory and its host-memory policy are
its own. ``--memory``: ``release`` is glibc's default (freed memory goes back to the operating
system), ``keep`` is :func:`basicsr.utils.memory.keep_freed_memory`, what ``test.py``,
``train.py`` and ``scripts/fuse.py`` apply by default.

Inference: latency is the median over ``--repeats`` timed calls after one warm-up call (which
includes compilation); ms/pair divides it by the batch. Peak memory: on CPU the rise of the
process's peak resident set size during the calls, on CUDA the peak of allocated device memory.
The baseline is eager float32 with released memory of the same run on the same input: each row
gives its speed-up over it and the max |difference| of the raw fused Y and of the 8-bit output
(clamp, x255, round).

Training (``--train``): iterations/s of one step of ``options/train/FISCNet.yml``'s recipe
(forward, the losses, backward, the optimiser, EMA) on batches made once in memory, after
``--warmup`` steps; the speed-up is over fp32 with released memory.

``--train-parts``: CPU seconds of each part of the step (forward, losses, backward, optimizer,
EMA) with the host-memory policy given last, and the step's FLOPs as PyTorch counts them.
``--conv-rates``: the GFLOP/s the network's 3x3 convolution shapes reach alone (CPU time).

Prints Markdown tables.
"""
import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from basicsr.utils.errors import ArgumentParser
from basicsr.utils.options import EXECUTION_MODES

# torch and the basicsr modules that import it are imported in the functions that use them, so that
# --help and usage errors answer without loading them.

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / 'options' / 'train' / 'FISCNet.yml'
MEMORY_POLICIES = ('release', 'keep')


def cpu_name():
    """The CPU model as the OS reports it (Linux), else what Python knows."""
    cpuinfo = Path('/proc/cpuinfo')
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    return platform.processor() or platform.machine()


def device_name(device):
    import torch
    device = torch.device(device)
    return torch.cuda.get_device_name(device) if device.type == 'cuda' else cpu_name()


def current_rss_mib():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return float('nan')


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def set_up_process(config):
    """What every child applies first: threads, exact float32 matmuls, the memory policy."""
    import torch
    from basicsr.utils.memory import keep_freed_memory
    if config['threads']:
        torch.set_num_threads(config['threads'])
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if config['memory'] == 'keep':
        keep_freed_memory()


def build_net(weights, device):
    import torch
    from basicsr.archs.fiscnet_arch import FISCNet
    from basicsr.utils.checkpoint import load_params, read_params
    torch.manual_seed(0)  # every process builds the same random weights when no file is given
    net = FISCNet()
    if weights and Path(weights).is_file():
        load_params(net, read_params(weights), strict=True)
    return net.to(device).eval()


def measure_inference(config):
    """Time one inference configuration in this process; save its output to ``config['output']``."""
    import torch
    from basicsr.utils.execution import prepare_input, prepare_network
    set_up_process(config)
    device = torch.device(config['device'])
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
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == 'cuda' else peak_rss_mib() - rss_before
    latency = statistics.median(times)
    np.save(config['output'], outputs[0].float().cpu().numpy())
    return {'latency_ms': latency * 1000, 'ms_per_pair': latency * 1000 / config['batch'],
            'pairs_per_s': config['batch'] / latency, 'peak_mib': peak, 'threads': torch.get_num_threads()}


def measure_training(config):
    """Iterations/s of the recipe's training step in this process."""
    import torch
    from basicsr.models.fusion_model import FusionModel
    from basicsr.utils.options import load_yaml
    set_up_process(config)
    recipe = load_yaml(RECIPE)
    amp = config['amp']
    device = torch.device(config['device'])
    opt = {'num_gpu': 1 if device.type == 'cuda' else 0, 'is_train': True, 'network_g': recipe['network_g'],
           'train': recipe['train'], 'use_amp': amp != 'none', 'amp_dtype': amp if amp != 'none' else 'bf16'}
    torch.manual_seed(0)
    model = FusionModel(opt)
    batch, crop = config['batch'], config['crop']
    data = {'ir': torch.rand(batch, 1, crop, crop), 'vi': torch.rand(batch, 3, crop, crop),
            'mask': (torch.rand(batch, 1, crop, crop) > 0.5).float()}

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    for step in range(config['warmup']):
        model.train_step(data, step + 1)
    sync()
    start = time.perf_counter()
    for step in range(config['iters']):
        model.train_step(data, config['warmup'] + step + 1)
    sync()
    rate = config['iters'] / (time.perf_counter() - start)
    return {'it_per_s': rate, 'threads': torch.get_num_threads()}


def measure_training_parts(config):
    """CPU seconds of each part of the recipe's training step (median over ``iters`` steps after
    ``warmup``), and the step's floating-point operations as counted by PyTorch."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from basicsr.models.fusion_model import FusionModel
    from basicsr.utils.color_util import rgb_to_ycrcb
    from basicsr.utils.options import load_yaml
    set_up_process(config)
    recipe = load_yaml(RECIPE)
    opt = {'num_gpu': 0, 'is_train': True, 'network_g': recipe['network_g'], 'train': recipe['train']}
    torch.manual_seed(0)
    model = FusionModel(opt)
    batch, crop = config['batch'], config['crop']
    ir, vi = torch.rand(batch, 1, crop, crop), torch.rand(batch, 3, crop, crop)
    mask = (torch.rand(batch, 1, crop, crop) > 0.5).float()
    times = {}

    def timed(part, function):
        start = time.process_time()
        result = function()
        times.setdefault(part, []).append(time.process_time() - start)
        return result

    def step():
        model.optimizer.zero_grad(set_to_none=True)
        vi_ycrcb = rgb_to_ycrcb(vi)
        raw_y = timed('network forward', lambda: model.net_g_train(vi_ycrcb, ir))
        terms = timed('the losses', lambda: [loss(raw_y.clamp(0, 1), vi_ycrcb[:, :1], ir, mask)
                                             for loss in model.losses.values()])
        timed('network backward (losses included)', lambda: sum(terms).backward())
        timed('optimizer and schedule', lambda: (model.optimizer.step(), model.scheduler.step()))
        timed('EMA update', lambda: model.ema.update(model.net_g, 1) if model.ema is not None else None)

    for _ in range(config['warmup']):
        step()
    times.clear()
    for _ in range(config['iters']):
        step()
    with FlopCounterMode(display=False) as counter:
        step()
    flops = {str(op).split('.')[-1]: count for op, count in counter.get_flop_counts()['Global'].items()}
    return {'parts': {part: statistics.median(values) for part, values in times.items()}, 'flops': flops,
            'threads': torch.get_num_threads()}


CONV_SHAPES = ((16, 16, 128), (32, 16, 128), (48, 16, 128), (16, 16, 64), (16, 16, 32))  # FISCNet's 3x3 convolutions


def measure_conv_rates(config):
    """GFLOP/s (CPU time) of forward and backward 3x3 convolutions of FISCNet's shapes, NCHW and channels_last."""
    import torch
    import torch.nn.functional as F
    set_up_process(config)
    rows = []
    for cin, cout, size in CONV_SHAPES:
        flop = 2 * config['batch'] * size * size * cin * cout * 9
        for layout in (torch.contiguous_format, torch.channels_last):
            x = torch.rand(config['batch'], cin, size, size).contiguous(memory_format=layout).requires_grad_()
            w = torch.rand(cout, cin, 3, 3).contiguous(memory_format=layout).requires_grad_()
            y = F.conv2d(x, w, padding=1)
            grad = torch.ones_like(y)
            rates = []
            for function, work in ((lambda: F.conv2d(x, w, padding=1), flop),
                                   (lambda: torch.autograd.grad(y, [x, w], grad, retain_graph=True), 2 * flop)):
                function()
                start = time.process_time()
                for _ in range(config['repeats']):
                    function()
                rates.append(work * config['repeats'] / (time.process_time() - start) / 1e9)
            rows.append([cin, cout, size, 'channels_last' if layout is torch.channels_last else 'NCHW', *rates])
    return {'rows': rows, 'threads': torch.get_num_threads()}


CHILD_TASKS = {'inference': measure_inference, 'training': measure_training, 'training_parts': measure_training_parts,
               'conv_rates': measure_conv_rates}


def run_in_child(task, config):
    result = subprocess.run([sys.executable, __file__, '--child', task, json.dumps(config)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        return {'error': lines[-1] if lines else 'failed'}
    return json.loads(result.stdout.strip().splitlines()[-1])


def baseline_first(baseline, chosen):
    """``chosen`` with ``baseline`` in front: every table compares with the baseline's row."""
    return [baseline] + [c for c in chosen if c != baseline]


def to_8bit(y):
    return np.round(np.clip(y, 0, 1) * 255).astype(np.int16)


def benchmark_inference(args, common):
    print('| mode | host memory | size | batch | threads | latency (ms) | ms/pair | pairs/s | speed-up '
          '| peak memory (MiB) | max abs diff Y | max diff 8-bit |')
    print('|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    modes = baseline_first('eager', args.modes)
    memories = baseline_first('release', args.memory)
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            width, height = (int(v) for v in size.lower().split('x'))
            for batch in args.batch:
                baseline = None
                for mode in modes:
                    for memory in memories:
                        output = Path(tmp) / f'{mode}_{memory}_{size}_{batch}.npy'
                        r = run_in_child('inference', {**common, 'size': [width, height], 'batch': batch,
                                                       'mode': mode, 'memory': memory, 'output': str(output)})
                        label = f'| {mode} | {memory} | {size} | {batch} |'
                        if 'error' in r:
                            print(f"{label} | failed: {r['error']} | | | | | | |", flush=True)
                            continue
                        y = np.load(output)
                        if baseline is None:
                            baseline = (r['latency_ms'], y)
                        diff_y = float(np.abs(y - baseline[1]).max())
                        diff_8 = int(np.abs(to_8bit(y) - to_8bit(baseline[1])).max())
                        print(f"{label} {r['threads']} | {r['latency_ms']:.1f} | {r['ms_per_pair']:.1f} | "
                              f"{r['pairs_per_s']:.2f} | {baseline[0] / r['latency_ms']:.2f}x | {r['peak_mib']:.0f} | "
                              f"{diff_y:.1e} | {diff_8} |", flush=True)


def benchmark_training(args, common):
    print(f'\nTraining step of {RECIPE.relative_to(REPO)}, batch {args.train_batch} x {args.crop}x{args.crop}:\n')
    print('| amp | host memory | threads | it/s | s/it | speed-up |')
    print('|---|---|---:|---:|---:|---:|')
    memories = baseline_first('release', args.memory)
    baseline = None
    for amp in baseline_first('none', args.amp):
        for memory in memories:
            r = run_in_child('training', {**common, 'amp': amp, 'memory': memory, 'batch': args.train_batch,
                                          'crop': args.crop, 'iters': args.iters, 'warmup': args.warmup})
            if 'error' in r:
                print(f"| {amp} | {memory} | | failed: {r['error']} | | |", flush=True)
                continue
            baseline = baseline or r['it_per_s']
            print(f"| {amp} | {memory} | {r['threads']} | {r['it_per_s']:.3f} | {1 / r['it_per_s']:.3f} | "
                  f"{r['it_per_s'] / baseline:.2f}x |", flush=True)


def benchmark_training_parts(args, common):
    r = run_in_child('training_parts', {**common, 'memory': args.memory[-1], 'batch': args.train_batch,
                                        'crop': args.crop, 'iters': args.iters, 'warmup': args.warmup})
    if 'error' in r:
        print(f"\nTraining step parts: failed: {r['error']}")
        return
    total = sum(r['parts'].values())
    print(f"\nParts of one training step, batch {args.train_batch} x {args.crop}x{args.crop}, "
          f"{r['threads']} thread(s), host memory {args.memory[-1]}; CPU seconds, median of {args.iters} steps:\n")
    print('| part | CPU s | share |')
    print('|---|---:|---:|')
    for part, seconds in r['parts'].items():
        print(f'| {part} | {seconds:.3f} | {100 * seconds / total:.1f} % |')
    flops = ', '.join(f'{name} {count / 1e9:.1f}' for name, count in r['flops'].items())
    print(f"\nGFLOP per step: {sum(r['flops'].values()) / 1e9:.1f} ({flops})")


def benchmark_conv_rates(args, common):
    r = run_in_child('conv_rates', {**common, 'memory': args.memory[-1], 'batch': args.train_batch})
    if 'error' in r:
        print(f"\nConvolution rates: failed: {r['error']}")
        return
    print(f"\n3x3 convolutions at batch {args.train_batch}, {r['threads']} thread(s); GFLOP/s of CPU time, "
          f"{args.repeats} calls each:\n")
    print('| in | out | size | layout | forward GFLOP/s | backward GFLOP/s |')
    print('|---:|---:|---:|---|---:|---:|')
    for cin, cout, size, layout, forward, backward in r['rows']:
        print(f'| {cin} | {cout} | {size}x{size} | {layout} | {forward:.0f} | {backward:.0f} |')


def main():
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', help='cpu or cuda (default: cuda when available, else cpu)')
    parser.add_argument('--modes', nargs='+', choices=EXECUTION_MODES, default=list(EXECUTION_MODES),
                        help='execution modes; eager, the baseline, always runs first')
    parser.add_argument('--memory', nargs='+', choices=MEMORY_POLICIES, default=list(MEMORY_POLICIES),
                        help='host-memory policies; release, the baseline, always runs first')
    parser.add_argument('--sizes', nargs='+', default=['640x480', '1024x768', '1280x1024'], help='WxH sizes')
    parser.add_argument('--batch', type=int, nargs='+', default=[1, 8])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=0, help='CPU threads (0: PyTorch default)')
    parser.add_argument('--weights', default=str(REPO / 'pretrained_models' / 'FISCNet_official.pth'),
                        help='checkpoint (random weights when absent; speed does not depend on them)')
    parser.add_argument('--no-inference', action='store_true', help='skip the inference table')
    parser.add_argument('--train', action='store_true', help='also measure training iterations/s')
    parser.add_argument('--amp', nargs='+', choices=['none', 'bf16', 'fp16'], default=['none'],
                        help='training precisions; none (float32), the baseline, always runs first')
    parser.add_argument('--train-batch', type=int, default=4)
    parser.add_argument('--crop', type=int, default=128)
    parser.add_argument('--iters', type=int, default=20, help='timed training iterations')
    parser.add_argument('--warmup', type=int, default=3, help='untimed training iterations first')
    parser.add_argument('--train-parts', action='store_true',
                        help='also split one training step into its parts (CPU seconds) and count its FLOPs')
    parser.add_argument('--conv-rates', action='store_true',
                        help="also time FISCNet's 3x3 convolution shapes alone (GFLOP/s, NCHW and channels_last)")
    parser.add_argument('--child', nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        task, config = args.child
        print(json.dumps(CHILD_TASKS[task](json.loads(config))))
        return

    import torch
    args.device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    print(f'PyTorch {torch.__version__}, Python {platform.python_version()}, device {args.device} '
          f'({device_name(args.device)})\n')
    common = {'device': args.device, 'threads': args.threads, 'weights': args.weights, 'repeats': args.repeats}
    if not args.no_inference:
        benchmark_inference(args, common)
    if args.train:
        benchmark_training(args, common)
    if args.train_parts:
        benchmark_training_parts(args, common)
    if args.conv_rates:
        benchmark_conv_rates(args, common)


if __name__ == '__main__':
    main()
