"""Exercise every CUDA path of the project in one command and write one Markdown report.

    python scripts/check_gpu.py [--report check_gpu_report.md] [--pairs datasets/TNO21]
        [--weights pretrained_models/FISCNet_official.pth] [--steps 200] [--crop 64]
        [--budget 450] [--only NAME ...]

Checks, in order (``--only`` picks some): ``tests`` (the test suite's CUDA tests), ``inference``
(real pairs on CUDA against the CPU, TF32 off and on: max |difference| of the raw fused Y and of
the 8-bit output, which must stay within 1 grey level), ``training`` (``--steps`` steps from one
initialisation on the same batches, CUDA float32 against CPU float32: the loss curves must agree
within 1 %), ``amp`` (bf16 and fp16 autocast steps: finite losses, the first within 2 % of float32),
``prefetch`` (``prefetch_mode: cuda`` gives the loader's batches, on the GPU), ``ddp`` (one step of
a 1-process NCCL DistributedDataParallel group equals the plain step), ``oom`` (an input too large
for the GPU gives the one-line out-of-memory message and the GPU works afterwards) and
``benchmark`` (``scripts/benchmark.py`` on CUDA: 640x480 latency at batch 1 and 8, training it/s).

Each check is timed; once ``--budget`` seconds are spent the remaining checks are reported as not
run. Exit status: 0 when every check that ran passed, 1 otherwise; without CUDA one ``error:``
line and status 2.
"""
import argparse
import datetime
import math
import os
import platform
import socket
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from basicsr.utils.errors import ArgumentParser, InputError, OptionError, report_user_errors

# torch and the basicsr modules that import it are imported in the functions that use them, so that
# --help and usage errors answer without loading them.

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / 'options' / 'train' / 'FISCNet.yml'
GREY_LEVEL_BUDGET = 1      # 8-bit outputs may differ by one level (values rounding at .5)
CURVE_RTOL = 0.01          # CUDA and CPU float32 loss curves: relative difference per step
AMP_RTOL = 0.02            # autocast loss of the first step (same weights) against float32
AMP_STEPS = 10
SUBPROCESS_TIMEOUT_S = 240  # the test run and the benchmark each; a hang fails its check, not the run
OOM_MEMORY_FACTOR = 4.0    # the oversized input needs several times the GPU's memory (per-pixel needs differ)


@dataclass
class Outcome:
    """What a check found: ``passed`` (None: not run), a one-line ``summary``, Markdown ``details``."""
    passed: object
    summary: str
    details: str = ''
    seconds: float = 0.0


@dataclass
class Context:
    """What the checks share: the device, inputs and options."""
    device: 'torch.device'
    pairs: Path = None
    weights: Path = None
    steps: int = 200
    crop: int = 64
    batch: int = 4
    tests: str = 'cuda and not test_check_gpu'  # pytest -k: the suite's tests named for CUDA
    benchmark_args: list = field(default_factory=list)


# ---------------------------------------------------------------------------------------- comparisons

def to_8bit(y):
    """Raw fused Y (any shape, float) -> the 8-bit values test.py writes (clamp, x255, round)."""
    return np.round(np.clip(np.asarray(y, dtype=np.float64), 0, 1) * 255).astype(np.int16)


def output_differences(reference, other):
    """``(max |reference - other|, max 8-bit difference)`` of two raw fused Y arrays."""
    reference, other = np.asarray(reference, np.float64), np.asarray(other, np.float64)
    return float(np.abs(reference - other).max()), int(np.abs(to_8bit(reference) - to_8bit(other)).max())


def curve_difference(reference, other):
    """The largest relative difference between two loss curves of equal length (lists of floats).

    Raises:
        ValueError: the curves differ in length or hold a non-finite value.
    """
    if len(reference) != len(other):
        raise ValueError(f'loss curves of {len(reference)} and {len(other)} steps')
    if not all(math.isfinite(v) for v in [*reference, *other]):
        raise ValueError('a loss is not finite')
    return max((abs(a - b) / max(abs(a), 1e-12) for a, b in zip(reference, other)), default=0.0)


def load_network(weights, device):
    """FISCNet on ``device`` in eval mode: the weights of the checkpoint ``weights``, or seeded random ones for None."""
    import torch
    from basicsr.archs.fiscnet_arch import FISCNet
    from basicsr.utils.checkpoint import load_params, read_params
    torch.manual_seed(0)
    net = FISCNet()
    if weights is not None:
        load_params(net, read_params(weights), strict=True)
    return net.to(device).eval()


def read_pairs(folder, limit=None):
    """``[(stem, vi (1, 3, H, W), ir (1, 1, H, W))]`` of a ``{ir,vi}`` folder, RGB in [0, 1]."""
    from basicsr.data.fusion_test_dataset import FusionTestDataset
    dataset = FusionTestDataset({'dataroot_ir': str(Path(folder) / 'ir'), 'dataroot_vi': str(Path(folder) / 'vi')})
    count = len(dataset) if limit is None else min(limit, len(dataset))
    return [(item['stem'], item['vi'][None], item['ir'][None]) for item in (dataset[i] for i in range(count))]


def fuse_raw_y(net, vi, ir, device):
    """The raw (unclamped) fused Y of one pair as a float64 array, computed on ``device``."""
    import torch
    from basicsr.utils.color_util import rgb_to_ycrcb
    with torch.inference_mode():
        return net(rgb_to_ycrcb(vi.to(device)), ir.to(device)).double().cpu().numpy()


def set_tf32(enabled):
    import torch
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def compare_inference(pairs, weights, device, tf32_modes=(False, True)):
    """Max differences of each pair fused on ``device`` against the CPU, per TF32 setting.

    Returns:
        dict: ``{tf32: [(stem, max |Δ| raw Y, max 8-bit difference), ...]}``.
    """
    cpu_net, net = load_network(weights, 'cpu'), load_network(weights, device)
    references = [fuse_raw_y(cpu_net, vi, ir, 'cpu') for _, vi, ir in pairs]
    found = {}
    try:
        for tf32 in tf32_modes:
            set_tf32(tf32)
            found[tf32] = [(stem, *output_differences(ref, fuse_raw_y(net, vi, ir, device)))
                           for (stem, vi, ir), ref in zip(pairs, references)]
    finally:
        set_tf32(False)
    return found


def synthetic_batches(count, batch, crop, seed=0):
    """``count`` fixed training batches (ir, vi, binary mask) in [0, 1], the same on every call."""
    import torch
    generator = torch.Generator().manual_seed(seed)
    return [{'ir': torch.rand(batch, 1, crop, crop, generator=generator),
             'vi': torch.rand(batch, 3, crop, crop, generator=generator),
             'mask': (torch.rand(batch, 1, crop, crop, generator=generator) > 0.5).float()} for _ in range(count)]


def training_model(device, amp=None, dist=False):
    """The recipe's FusionModel (losses, Adam, schedule, EMA) on ``device``, seeded; ``amp``: None, 'bf16', 'fp16'."""
    import torch
    from basicsr.models.fusion_model import FusionModel
    from basicsr.utils.options import load_yaml
    recipe = load_yaml(RECIPE)
    device = torch.device(device)
    opt = {'num_gpu': 1 if device.type == 'cuda' else 0, 'is_train': True, 'dist': dist,
           'network_g': recipe['network_g'], 'train': recipe['train'],
           'use_amp': amp is not None, 'amp_dtype': amp or 'bf16'}
    torch.manual_seed(0)
    return FusionModel(opt)


def loss_curve(device, steps, batches, amp=None):
    """Total loss of each of ``steps`` training steps on ``device``, cycling through ``batches``."""
    model = training_model(device, amp)
    curve = []
    for step in range(steps):
        curve.append(model.train_step(batches[step % len(batches)], step + 1)['l_total'])
    return curve


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def ddp_step_difference(device, backend, batch):
    """Max |Δ| of the weights after one step in a 1-process ``backend`` group against a plain step.

    The group is created and destroyed here; with one process the gradient average is the gradient.
    """
    import torch.distributed as dist
    plain = training_model(device)
    plain.train_step(batch, 1)
    dist.init_process_group(backend, init_method=f'tcp://127.0.0.1:{free_port()}', rank=0, world_size=1)
    try:
        wrapped = training_model(device, dist=True)
        wrapped.train_step(batch, 1)
        return max(float((a - b).abs().max()) for a, b in zip(plain.net_g.state_dict().values(),
                                                                wrapped.net_g.state_dict().values()))
    finally:
        dist.destroy_process_group()


def oversized_side(total_bytes, bytes_per_pixel, factor=OOM_MEMORY_FACTOR):
    """The side of a square image whose inference needs about ``factor`` times ``total_bytes``."""
    return int(math.ceil(math.sqrt(factor * total_bytes / bytes_per_pixel) / 8) * 8)


# --------------------------------------------------------------------------------------------- checks

def check_tests(ctx):
    command = [sys.executable, '-m', 'pytest', str(REPO / 'tests'), '-q', '-rs', '-k', ctx.tests]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False,
                            timeout=SUBPROCESS_TIMEOUT_S)
    lines = result.stdout.strip().splitlines()
    summary = lines[-1] if lines else 'no output'
    # Only 0 passes: 5 means none was selected, and a CUDA test skipped on a CUDA machine is a fault.
    passed = result.returncode == 0 and 'skipped' not in summary
    errors = '\n' + result.stderr[-2000:] if result.returncode not in (0, 5) else ''
    return Outcome(passed, summary, code_block('\n'.join(lines[-30:]) + errors))


def check_inference(ctx):
    pairs = read_pairs(ctx.pairs)
    found = compare_inference(pairs, ctx.weights, ctx.device)
    rows = ['| TF32 | pairs | max abs diff raw Y | max diff 8-bit | worst pair |', '|---|---:|---:|---:|---|']
    passed = True
    for tf32, results in found.items():
        worst = max(results, key=lambda r: r[1])
        max_8 = max(r[2] for r in results)
        passed &= max_8 <= GREY_LEVEL_BUDGET
        rows.append(f"| {'on' if tf32 else 'off'} | {len(results)} | {worst[1]:.1e} | {max_8} | {worst[0]} |")
    weights = ctx.weights or 'random weights (seed 0)'
    summary = '; '.join(f"TF32 {'on' if tf32 else 'off'}: max abs diff {max(r[1] for r in rs):.1e}, "
                        f'{max(r[2] for r in rs)} grey level(s)' for tf32, rs in found.items())
    return Outcome(passed, summary, f'{len(pairs)} pairs of {ctx.pairs}, {weights}; budget ≤ {GREY_LEVEL_BUDGET} '
                                    'grey level.\n\n' + '\n'.join(rows))


def check_training(ctx):
    batches = synthetic_batches(8, ctx.batch, ctx.crop)
    timings = {}
    curves = {}
    for device in ('cpu', ctx.device):
        start = time.perf_counter()
        curves[str(device)] = loss_curve(device, ctx.steps, batches)
        timings[str(device)] = time.perf_counter() - start
    cpu, cuda = curves['cpu'], curves[str(ctx.device)]
    difference = curve_difference(cpu, cuda)
    marks = sorted({0, 9, 49, 99, ctx.steps - 1} & set(range(ctx.steps)))
    rows = ['| step | CPU fp32 | CUDA fp32 | rel. diff |', '|---:|---:|---:|---:|']
    rows += [f'| {i + 1} | {cpu[i]:.6f} | {cuda[i]:.6f} | {abs(cpu[i] - cuda[i]) / abs(cpu[i]):.1e} |' for i in marks]
    return Outcome(difference <= CURVE_RTOL,
                   f'{ctx.steps} steps, max relative loss difference {difference:.1e} (budget {CURVE_RTOL:g})',
                   f'Batch {ctx.batch} x {ctx.crop}x{ctx.crop}, 8 fixed random batches, TF32 off; '
                   f"CPU {timings['cpu']:.0f} s, CUDA {timings[str(ctx.device)]:.0f} s.\n\n" + '\n'.join(rows))


def check_amp(ctx):
    batches = synthetic_batches(2, ctx.batch, ctx.crop)
    reference = loss_curve(ctx.device, AMP_STEPS, batches)
    rows = ['| precision | step-1 loss | rel. diff at step 1 | last loss | max rel. diff over the steps |',
            '|---|---:|---:|---:|---:|']
    passed, parts = True, []
    for amp in ('bf16', 'fp16'):
        curve = loss_curve(ctx.device, AMP_STEPS, batches, amp)
        overall = curve_difference(reference, curve)  # raises on a non-finite loss
        first = curve_difference(reference[:1], curve[:1])
        passed &= first <= AMP_RTOL
        rows.append(f'| {amp} | {curve[0]:.5f} | {first:.1e} | {curve[-1]:.5f} | {overall:.1e} |')
        parts.append(f'{amp} {first:.1e}')
    return Outcome(passed, f'{AMP_STEPS} finite steps each; step-1 loss against fp32: ' + ', '.join(parts),
                   f'fp32: step-1 loss {reference[0]:.5f}, last {reference[-1]:.5f}. Step 1 runs the same weights, '
                   f'so its difference is the precision\'s alone (budget {AMP_RTOL:g}); later steps also differ '
                   'because fp16 skips steps while its loss scale settles.\n\n' + '\n'.join(rows))


def check_prefetch(ctx):
    import torch
    from torch.utils.data import DataLoader
    from basicsr.data.prefetcher import prefetch
    samples = [{k: v[0] for k, v in batch.items()} for batch in synthetic_batches(8, 1, ctx.crop)]
    loader = DataLoader(samples, batch_size=2, pin_memory=True)
    expected = list(loader)
    got = list(prefetch(loader, 'cuda', ctx.device))
    same = len(got) == len(expected) and all(
        value.device.type == 'cuda' and torch.equal(value.cpu(), batch[key])
        for batch, moved in zip(expected, got) for key, value in moved.items())
    return Outcome(same, f'{len(got)} of {len(expected)} batches arrived on {ctx.device} unchanged' if same
                   else 'the prefetched batches differ from the loader\'s')


def check_ddp(ctx):
    batch = synthetic_batches(1, ctx.batch, ctx.crop)[0]
    difference = ddp_step_difference(ctx.device, 'nccl', batch)
    return Outcome(difference <= 1e-6,
                   f'1-process NCCL group: max abs diff of the weights after one step {difference:.1e}')


def check_oom(ctx):
    import torch
    from basicsr.models.fusion_engine import FusionEngine
    from basicsr.utils.memory import CPU_INFERENCE_BYTES_PER_PIXEL
    total = torch.cuda.get_device_properties(ctx.device).total_memory
    side = oversized_side(total, CPU_INFERENCE_BYTES_PER_PIXEL)
    engine = FusionEngine.from_options({'num_gpu': 1, 'network_g': {'type': 'FISCNet'}, 'execution': 'eager'})
    try:
        engine.fuse(torch.rand(1, 1, side, side), torch.rand(1, 3, side, side), 'oversized')
        return Outcome(False, f'{side}x{side} did not run out of memory on {ctx.device}')
    except InputError as err:
        message = str(err)
    finally:
        torch.cuda.empty_cache()
    after = fuse_raw_y(load_network(None, ctx.device), torch.rand(1, 3, 64, 64), torch.rand(1, 1, 64, 64), ctx.device)
    passed = 'ran out of GPU memory' in message and '\n' not in message and np.isfinite(after).all()
    return Outcome(passed, f'{side}x{side}: one-line message, GPU usable afterwards' if passed else message,
                   code_block(f'error: {message}'))


def check_benchmark(ctx):
    command = [sys.executable, str(REPO / 'scripts' / 'benchmark.py'), '--device', str(ctx.device), *ctx.benchmark_args]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False,
                            timeout=SUBPROCESS_TIMEOUT_S)
    tables = result.stdout.strip()
    failed = result.returncode != 0 or 'failed' in tables
    summary = 'tables below' if not failed else 'a configuration failed (see below)'
    return Outcome(not failed, summary, f"`{' '.join(['python', 'scripts/benchmark.py', *command[2:]])}`\n\n" + tables
                   + (code_block(result.stderr[-2000:]) if result.returncode else ''))


CHECKS = {
    'tests': ('CUDA tests', check_tests),
    'inference': ('inference vs CPU', check_inference),
    'training': ('training CUDA vs CPU fp32', check_training),
    'amp': ('bf16 and fp16 autocast', check_amp),
    'prefetch': ('prefetch_mode: cuda', check_prefetch),
    'ddp': ('1-process NCCL DDP step', check_ddp),
    'oom': ('CUDA out-of-memory message', check_oom),
    'benchmark': ('benchmark on CUDA', check_benchmark),
}


# ----------------------------------------------------------------------------------- orchestration

def run_checks(checks, ctx, budget_s, clock=time.perf_counter):
    """Run ``{name: (title, function(ctx) -> Outcome)}`` in order; a check that raises fails with its
    last line; checks starting after ``budget_s`` seconds are not run.

    Returns:
        dict: name -> (title, Outcome).
    """
    start = clock()
    results = {}
    for name, (title, function) in checks.items():
        began = clock()
        if began - start >= budget_s:
            results[name] = (title, Outcome(None, f'not run: the {budget_s:.0f} s budget was spent'))
            continue
        try:
            outcome = function(ctx)
        except Exception as err:  # a failing check must not hide the others' results
            lines = traceback.format_exception(type(err), err, err.__traceback__)
            outcome = Outcome(False, f'{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ""}',
                              code_block(''.join(lines[-12:])))
        outcome.seconds = clock() - began
        results[name] = (title, outcome)
    return results


def code_block(text):
    return f'```\n{text.rstrip()}\n```'


def status_word(passed):
    return {True: 'pass', False: '**FAIL**', None: 'not run'}[passed]


def environment_lines(device):
    """Markdown bullet lines naming the machine, the GPU and the versions."""
    import torch
    lines = [f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
             f'- PyTorch {torch.__version__}, Python {platform.python_version()}, {platform.platform()}',
             f'- host: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, '
             f'{torch.get_num_threads()} PyTorch threads']
    if device.type == 'cuda':
        props = torch.cuda.get_device_properties(device)
        lines.insert(1, f'- GPU: {props.name} ({props.total_memory / 2**30:.1f} GiB, compute capability '
                        f'{props.major}.{props.minor}), CUDA {torch.version.cuda}, '
                        f'cuDNN {torch.backends.cudnn.version()}')
    return lines


def format_report(results, environment, command):
    """The Markdown report: environment, a summary table, then each check's details."""
    ran = [outcome for _, outcome in results.values() if outcome.passed is not None]
    verdict = ('all checks passed' if ran and all(o.passed for o in ran) else
               f'{sum(not o.passed for o in ran)} of {len(ran)} checks failed' if ran else 'no check ran')
    lines = ['# FISCNet GPU check', '', *environment, f'- command: `{command}`', f'- result: {verdict}', '',
             '| check | result | time (s) | summary |', '|---|---|---:|---|']
    lines += [f"| {title} | {status_word(o.passed)} | {o.seconds:.1f} | {o.summary.replace('|', chr(92) + '|')} |"
              for title, o in results.values()]
    for title, outcome in results.values():
        if outcome.details:
            lines += ['', f'## {title}', '', outcome.details]
    return '\n'.join(lines) + '\n'


def require_cuda():
    """Raises OptionError when this machine cannot run the checks."""
    import torch
    if not torch.cuda.is_available():
        raise OptionError('no CUDA device is available to this PyTorch (torch.cuda.is_available() is False); '
                          'run scripts/check_gpu.py on a machine with an NVIDIA GPU and a CUDA build of PyTorch')


def main(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--report', default='check_gpu_report.md', help='the Markdown report to write')
    parser.add_argument('--pairs', default='datasets/TNO21', help='a folder of ir/ and vi/ pairs')
    parser.add_argument('--weights', default='pretrained_models/FISCNet_official.pth',
                        help="checkpoint ('random': seeded untrained weights)")
    parser.add_argument('--steps', type=int, default=200, help='training steps compared between CUDA and CPU')
    parser.add_argument('--crop', type=int, default=64,
                        help='training crop of the comparisons (the CPU side sets the pace)')
    parser.add_argument('--budget', type=float, default=450, help='seconds after which no further check starts')
    parser.add_argument('--only', nargs='+', choices=list(CHECKS), help='run only these checks')
    args = parser.parse_args(argv)
    import torch
    require_cuda()
    if args.weights == 'random':
        args.weights = None
    elif not Path(args.weights).is_file():
        raise InputError(f'--weights {args.weights}: checkpoint not found; fetch it with '
                         "python scripts/download_pretrained_models.py, give the file, or --weights random")
    if not (Path(args.pairs) / 'ir').is_dir():
        raise InputError(f'{args.pairs}: no ir/ folder; give --pairs a folder with ir/ and vi/ images (e.g. TNO21)')
    report = Path(args.report)
    if report.exists() and not report.is_file():
        raise InputError(f'{report}: exists and is not a file; give --report a file path')
    ctx = Context(torch.device('cuda', torch.cuda.current_device()), Path(args.pairs), args.weights, args.steps,
                  args.crop, benchmark_args=['--sizes', '640x480', '--batch', '1', '8', '--repeats', '5',
                                             '--modes', 'eager', 'channels_last', '--memory', 'keep',
                                             '--train', '--amp', 'none', 'bf16', 'fp16'])
    set_tf32(False)
    checks = {name: CHECKS[name] for name in (args.only or CHECKS)}
    results = run_checks(checks, ctx, args.budget)
    command = ' '.join(['python scripts/check_gpu.py', *(argv if argv is not None else sys.argv[1:])])
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(format_report(results, environment_lines(ctx.device), command), encoding='utf-8')
    for title, outcome in results.values():
        print(f'{status_word(outcome.passed):9s} {title}: {outcome.summary}')
    print(f'report: {report}')
    return 0 if all(o.passed is not False for _, o in results.values()) else 1


if __name__ == '__main__':
    sys.exit(report_user_errors(main))
