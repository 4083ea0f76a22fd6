"""Fuse your own infrared/visible images without writing a YAML file.

    python scripts/fuse.py --ir IR_FILE_OR_DIR --vis VIS_FILE_OR_DIR --out DIR
        [--weights pretrained_models/FISCNet_official.pth] [--device auto|cpu|cuda]
        [--execution auto|eager|channels_last|compile]

Folders are paired by file stem; two files are fused as one pair named after the infrared file.
Fused images are written as DIR/<stem>.png.
"""
import argparse
from pathlib import Path

from basicsr.data.fusion_test_dataset import FusionTestDataset
from basicsr.data import build_test_loader
from basicsr.models.fusion_model import FusionModel
from basicsr.utils.errors import ArgumentParser, InputError, report_user_errors
from basicsr.utils.experiment import check_output_location
from basicsr.utils.execution import EXECUTION_MODES
from basicsr.utils.logger import get_root_logger
from basicsr.utils.memory import keep_freed_memory

DEVICE_TO_NUM_GPU = {'auto': 'auto', 'cpu': 0, 'cuda': 1}
NETWORK = {'type': 'FISCNet', 'vis_channels': 1, 'inf_channels': 1, 'n_feat': 16}
RANDOM_WEIGHTS = 'random'  # --weights value that asks for untrained weights (smoke tests)


def build_dataset(ir, vis, resize_vi_to_ir):
    ir, vis = Path(ir), Path(vis)
    if ir.exists() and vis.exists() and ir.resolve() == vis.resolve():
        raise InputError(f'--ir and --vis are both {ir}; give the infrared and the visible images')
    opt = {'name': 'fuse', 'dataroot_ir': str(ir), 'dataroot_vi': str(vis), 'resize_vi_to_ir': resize_vi_to_ir}
    if ir.is_file() and vis.is_file():
        return FusionTestDataset(opt, samples=[(ir.stem, {'ir': ir, 'vi': vis})])
    if ir.is_dir() and vis.is_dir():
        return FusionTestDataset(opt)
    for path in (ir, vis):
        if not path.exists():
            raise InputError(f'{path}: no such file or folder')
    raise InputError(f'--ir {ir} and --vis {vis}: give two image files or two folders')


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


def main(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--ir', required=True, help='infrared image file or folder')
    parser.add_argument('--vis', required=True, help='visible image file or folder (gray or RGB)')
    parser.add_argument('--out', required=True, help='output folder for <stem>.png')
    parser.add_argument('--weights', default='pretrained_models/FISCNet_official.pth',
                        help=f'checkpoint file ({RANDOM_WEIGHTS}: untrained weights, for a smoke test only)')
    parser.add_argument('--param_key', default='params_ema', help='state dict key in the checkpoint')
    parser.add_argument('--device', choices=sorted(DEVICE_TO_NUM_GPU), default='auto')
    parser.add_argument('--execution', choices=('auto', *EXECUTION_MODES), default='auto',
                        help='how the network runs (auto: the fastest correct mode for the device); '
                             'compile compiles for minutes first, so it pays off on long runs')
    parser.add_argument('--resize_vi_to_ir', action='store_true',
                        help='resize visible images to their infrared partner instead of failing')
    args = parser.parse_args(argv)

    dataset = build_dataset(args.ir, args.vis, args.resize_vi_to_ir)
    weights = check_weights(args.weights)
    check_output_location(args.out, {'--ir input': args.ir, '--vis input': args.vis, '--weights checkpoint': weights},
                          '--out')
    keep_freed_memory()
    logger = get_root_logger()
    if weights is None:
        logger.warning('--weights random: fusing with UNTRAINED weights (a smoke test, not results)')
    model = FusionModel({'num_gpu': DEVICE_TO_NUM_GPU[args.device], 'network_g': NETWORK, 'execution': args.execution,
                         'path': {'pretrain_network_g': weights, 'param_key_g': args.param_key}})
    loader = build_test_loader(dataset, {}, model.device)
    rate = model.fuse_set(loader, 'fuse', save_dir=args.out)
    logger.info(f'{len(dataset)} image(s) fused on {model.device} ({model.execution}) at {rate:.2f} images/s '
                f'-> {args.out}')


if __name__ == '__main__':
    report_user_errors(main)
