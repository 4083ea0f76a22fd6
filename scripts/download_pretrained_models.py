"""Fetch the released FISCNet weights into pretrained_models/FISCNet_official.pth.

    python scripts/download_pretrained_models.py [--out pretrained_models] [--from DIR]

The file is the checkpoint published with the original FISCNet code
(pretrained_model/FISCNet_model.pth at commit 6931507 of zheng980629/FISCNet) and is checked
against its SHA-256. ``--from DIR`` copies DIR/weights/FISCNet_official.pth instead (offline use).
"""
import argparse
from pathlib import Path

from basicsr.utils.download_util import copy_verified, download, file_sha256, verify
from basicsr.utils.errors import report_user_errors

NAME = 'FISCNet_official.pth'
URL = 'https://github.com/zheng980629/FISCNet/raw/6931507/pretrained_model/FISCNet_model.pth'
SHA256 = '274c21b835e02e89f2bcad4227619e743675ffd73e00f4af1a4a1854efd59e3f'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='pretrained_models', help='destination folder')
    parser.add_argument('--from', dest='local', metavar='DIR', help=f'copy DIR/weights/{NAME} instead of downloading')
    args = parser.parse_args(argv)
    dst = Path(args.out) / NAME
    if dst.is_file() and file_sha256(dst) == SHA256:
        print(f'{dst}: already present and verified')
        return
    if args.local:
        copy_verified(Path(args.local) / 'weights' / NAME, dst, SHA256)
    else:
        download(URL, dst)
        verify(dst, SHA256)
    print(f'{dst}: fetched and verified (SHA-256 {SHA256[:12]}...)')


if __name__ == '__main__':
    report_user_errors(main)
