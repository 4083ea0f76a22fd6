"""Fuse your own infrared/visible images without writing a YAML file.

    python scripts/fuse.py --ir IR_FILE_OR_DIR --vi VI_FILE_OR_DIR --out DIR
        [--weights pretrained_models/FISCNet_official.pth] [--device auto|cpu|cuda]
        [--execution auto|eager|channels_last|compile] [--tile N [--tile_overlap M]]

Folders are paired by file stem; two files are fused as one pair named after the infrared file.
Fused images are written as DIR/<stem>.png. ``--tile N`` fuses images larger than N x N pixels in
overlapping tiles, so that the memory needed follows the tile size (an approximation of whole-image
fusion: see docs/benchmarks.md, "Tiled fusion").
"""
import argparse
from pathlib import Path

# Only light modules here, so that --help answers at once; torch comes with the model after parsing.
from basicsr.utils.errors import ArgumentParser, InputError, OptionError, report_user_errors, reworded
from basicsr.utils.options import RANDOM_WEIGHTS, schema_option

DEVICE_TO_NUM_GPU = {'auto': 'auto', 'cpu': 0, 'cuda': 1}
NETWORK = {'type': 'FISCNet', 'vis_channels': 1, 'inf_channels': 1, 'n_feat': 16}
# The model's advice names YAML options; this tool's names for them are flags.
FLAG_ADVICE = {
    'num_gpu: 1 asks for CUDA': '--device cuda asks for CUDA',
    'set num_gpu: auto or 0 to run on the CPU': 'use --device cpu or auto',
    'set path.param_key_g to one of those': 'give --param_key as one of those',
    'check network_g against the checkpoint': 'fuse.py runs the released FISCNet network; give a FISCNet checkpoint '
                                              'with --weights',
    ' or set path.strict_load_g: false': '',  # what fits is not enough to fuse
}


def build_dataset(ir, vi, resize_vi_to_ir):
    from basicsr.data.fusion_test_dataset import FusionTestDataset
    ir, vi = Path(ir), Path(vi)
    if ir.exists() and vi.exists() and ir.resolve() == vi.resolve():
        raise InputError(f'--ir and --vi are both {ir}; give the infrared and the visible images')
    opt = {'name': 'fuse', 'dataroot_ir': str(ir), 'dataroot_vi': str(vi), 'resize_vi_to_ir': resize_vi_to_ir}
    if ir.is_file() and vi.is_file():
        return FusionTestDataset(opt, samples=[(ir.stem, {'ir': ir, 'vi': vi})])
    if ir.is_dir() and vi.is_dir():
        return FusionTestDataset(opt)
    for path in (ir, vi):
        if not path.exists():
            raise InputError(f'{path}: no such file or folder')
    raise InputError(f'--ir {ir} and --vi {vi}: give two image files or two folders')


def check_weights(weights):
    """The checkpoint to load, or None for ``random``.

    Raises:
        InputError: no checkpoint given, or the file does not exist.
    """
    if weights == RANDOM_WEIGHTS:
        return None
    if not weights or not Path(weights).is_file():
        raise InputError(f'--weights {weights!r}: checkpoint not found; fetch the released weights with '
                         '"python scripts/download_pretrained_models.py", give the file, or '
                         f'--weights {RANDOM_WEIGHTS} for a smoke test with untrained weights')
    return weights


def build_parser():
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--ir', required=True, help='infrared image file or folder')
    parser.add_argument('--vi', help='visible image file or folder (gray or RGB)')
    parser.add_argument('--vis', dest='vi', help=argparse.SUPPRESS)  # the name of earlier versions
    parser.add_argument('--out', required=True, help='output folder for <stem>.png')
    parser.add_argument('--weights', default='pretrained_models/FISCNet_official.pth',
                        help=f'checkpoint file ({RANDOM_WEIGHTS}: untrained weights, for a smoke test only)')
    parser.add_argument('--param_key', default='params_ema', help='state dict key in the checkpoint')
    parser.add_argument('--device', choices=sorted(DEVICE_TO_NUM_GPU), default='auto')
    parser.add_argument('--execution', choices=schema_option('execution').check.choices, default='auto',
                        help='how the network runs (auto: the fastest correct mode for the device); '
                             'compile compiles for minutes first, so it pays off on long runs')
    parser.add_argument('--resize_vi_to_ir', action='store_true',
                        help='resize visible images to their infrared partner instead of failing')
    parser.add_argument('--tile', type=int, metavar='N',
                        help=f"fuse in overlapping N x N tiles (N >= {schema_option('tile').check.inner.low}) "
                             'for images too large for memory')
    parser.add_argument('--tile_overlap', type=int, default=schema_option('tile_overlap').default, metavar='M',
                        help='pixels shared by neighbouring tiles, blended linearly (with --tile; below N / 2)')
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.vi is None:
        parser.error('the following arguments are required: --vi')
    from basicsr.data import build_test_loader
    from basicsr.models.fusion_engine import FusionEngine
    from basicsr.utils.experiment import check_output_location
    from basicsr.utils.img_util import write_image
    from basicsr.utils.logger import get_root_logger
    from basicsr.utils.memory import keep_freed_memory
    from basicsr.utils.tiling import check_tiling
    if args.tile is not None:
        try:
            check_tiling(args.tile, args.tile_overlap)
        except ValueError as err:
            parser.error(f'--tile {args.tile} --tile_overlap {args.tile_overlap}: {err}')

    dataset = build_dataset(args.ir, args.vi, args.resize_vi_to_ir)
    weights = check_weights(args.weights)
    check_output_location(args.out, {'--ir input': args.ir, '--vi input': args.vi, '--weights checkpoint': weights},
                          '--out')
    keep_freed_memory()
    logger = get_root_logger()
    if weights is None:
        logger.warning('--weights random: fusing with UNTRAINED weights (a smoke test, not results)')
    try:
        engine = FusionEngine.from_options({
            'num_gpu': DEVICE_TO_NUM_GPU[args.device], 'network_g': NETWORK, 'execution': args.execution,
            'tile': args.tile, 'tile_overlap': args.tile_overlap,
            'path': {'pretrain_network_g': weights, 'param_key_g': args.param_key}})
    except (InputError, OptionError) as err:
        raise reworded(err, FLAG_ADVICE) from None
    loader = build_test_loader(dataset, {}, engine.device)
    for result in engine.fuse_loader(loader, 'fuse'):
        write_image(Path(args.out) / f'{result.stem}.png', result.fused)
    logger.info(f'{len(dataset)} image(s) fused on {engine.device} ({engine.execution}) at {engine.rate:.2f} '
                f'images/s -> {args.out}')


if __name__ == '__main__':
    report_user_errors(main)
