"""Tiled against whole-image fusion on large real pairs: grey-level differences, time and peak memory.

    python scripts/benchmark_tiling.py --ir IR_DIR --vi VI_DIR [--pairs 3] [--size 2048x1536]
        [--tiles 256 512 768] [--overlaps 32 64] [--weights pretrained_models/FISCNet_official.pth]
        [--execution auto|eager|channels_last|compile]

The first ``--pairs`` pairs of the folders (paired by stem) are upscaled to ``--size`` with
bicubic interpolation (clipped to [0, 1]), to stand in for images too large to fuse whole, and
fused on the CPU by ``FusionEngine`` as ``test.py`` does (released weights, ``keep_freed_memory``),
whole and with every ``tile`` x ``overlap`` combination.

Every configuration runs in its own process, so its peak memory is its own: "peak RSS" is the
process's peak resident set size (``getrusage(RUSAGE_SELF).ru_maxrss``: torch, the weights and
the upscaled pairs included), "rise" its increase while fusing, over the peak reached once
everything was loaded. The differences compare the fused 8-bit RGB images with the whole-image
fusion of the same run: max and mean |difference| over all pixels and channels of all pairs, and
the share of pixels where a channel differs by more than one grey level. Time: seconds per pair,
fusing and the 8-bit conversion.

Prints a Markdown table.
"""
from __future__ import annotations  # the torch annotations stay text: --help loads no torch

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from basicsr.utils.errors import ArgumentParser

REPO = Path(__file__).resolve().parents[1]
NETWORK = {'type': 'FISCNet', 'vis_channels': 1, 'inf_channels': 1, 'n_feat': 16}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def load_pairs(ir: str, vi: str, count: int, width: int, height: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first ``count`` pairs upscaled to ``width`` x ``height``: ``(ir (1, 1, H, W), vi (1, 3, H, W))``
    as the test dataset gives them (the infrared file's first channel, RGB visible, [0, 1])."""
    import cv2
    import torch

    from basicsr.data.pairing import pair_by_stem
    from basicsr.utils.img_util import read_image

    def upscaled(path: Path) -> torch.Tensor:
        img = np.clip(cv2.resize(read_image(path), (width, height), interpolation=cv2.INTER_CUBIC), 0, 1)
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]

    return [(upscaled(paths['ir'])[:, :1], upscaled(paths['vi']))
            for _, paths in pair_by_stem({'ir': ir, 'vi': vi})[:count]]


def fuse_pairs(config: dict) -> dict:
    """Fuse the pairs in this process with ``config['tile']`` (None: whole); save the 8-bit results
    to ``config['output']`` and return the time per pair and the peak memory."""
    import torch

    from basicsr.models.fusion_engine import FusionEngine
    from basicsr.utils.memory import keep_freed_memory

    keep_freed_memory()
    width, height = config['size']
    pairs = load_pairs(config['ir'], config['vi'], config['pairs'], width, height)
    engine = FusionEngine.from_options({'num_gpu': 0, 'network_g': NETWORK, 'execution': config['execution'],
                                        'tile': config['tile'], 'tile_overlap': config['overlap'],
                                        'path': {'pretrain_network_g': config['weights'], 'param_key_g': 'params'}})
    loaded_peak = peak_rss_mib()
    fused, start = [], time.perf_counter()
    for ir, vi in pairs:
        fused += engine.to_uint8(engine.fuse(ir, vi))
    seconds = (time.perf_counter() - start) / len(pairs)
    np.save(config['output'], np.stack(fused))
    return {'seconds_per_pair': seconds, 'peak_mib': peak_rss_mib(), 'rise_mib': peak_rss_mib() - loaded_peak,
            'threads': torch.get_num_threads(), 'execution': engine.execution}


def run_in_child(config: dict) -> dict:
    result = subprocess.run([sys.executable, __file__, '--child', json.dumps(config)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        return {'error': lines[-1] if lines else 'failed'}
    return json.loads(result.stdout.strip().splitlines()[-1])


def tile_count(width: int, height: int, tile: int, overlap: int) -> int:
    from basicsr.utils.tiling import tile_starts
    return len(tile_starts(width, tile, overlap)) * len(tile_starts(height, tile, overlap))


def main() -> None:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--ir', help='infrared image folder (required)')
    parser.add_argument('--vi', help='visible image folder (required)')
    parser.add_argument('--pairs', type=int, default=3, help='how many pairs (the first by stem)')
    parser.add_argument('--size', default='2048x1536', help='WxH the pairs are upscaled to')
    parser.add_argument('--tiles', type=int, nargs='+', default=[256, 512, 768])
    parser.add_argument('--overlaps', type=int, nargs='+', default=[32, 64])
    parser.add_argument('--weights', default=str(REPO / 'pretrained_models' / 'FISCNet_official.pth'))
    parser.add_argument('--execution', default='auto', help='execution mode (auto: channels_last on the CPU)')
    parser.add_argument('--child', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(fuse_pairs(json.loads(args.child))))
        return
    if not args.ir or not args.vi:
        parser.error('the following arguments are required: --ir, --vi')

    import torch

    width, height = (int(v) for v in args.size.lower().split('x'))
    common = {'ir': args.ir, 'vi': args.vi, 'pairs': args.pairs, 'size': [width, height], 'weights': args.weights,
              'execution': args.execution}
    print(f'PyTorch {torch.__version__}, Python {platform.python_version()}, CPU; {args.pairs} pair(s) of '
          f'{args.ir} upscaled to {width}x{height}\n')
    print('| tile | overlap | tiles per image | max abs diff (grey levels) | mean abs diff | pixels > 1 level (%) '
          '| s/pair | peak RSS (MiB) | rise while fusing (MiB) |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|---:|')
    configs = [(None, 0)] + [(tile, overlap) for tile in args.tiles for overlap in args.overlaps]
    whole, setting = None, ''
    with tempfile.TemporaryDirectory() as tmp:
        for tile, overlap in configs:
            output = Path(tmp) / f'{tile}_{overlap}.npy'
            r = run_in_child({**common, 'tile': tile, 'overlap': overlap, 'output': str(output)})
            label = f"| {tile or 'whole'} | {overlap if tile else '–'} |"
            if 'error' in r:
                print(f"{label} failed: {r['error']} | | | | | | |", flush=True)
                continue
            fused = np.load(output).astype(np.int16)
            setting = f"{r['threads']} thread(s), execution {r['execution']}"
            if whole is None:
                if tile is not None:
                    raise SystemExit('the whole-image fusion failed; nothing to compare with')
                whole = fused
            diff = np.abs(fused - whole)
            over_one = 100 * float((diff.max(axis=-1) > 1).mean())
            count = tile_count(width, height, tile, overlap) if tile else 1
            print(f"{label} {count} | {int(diff.max())} | {diff.mean():.3f} | {over_one:.3f} | "
                  f"{r['seconds_per_pair']:.1f} | {r['peak_mib']:.0f} | {r['rise_mib']:.0f} |", flush=True)
    print(f'\n{setting}')


if __name__ == '__main__':
    main()
