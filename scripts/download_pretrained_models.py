"""Fetch released fusion weights into pretrained_models/<Method>_official.pth.

    python scripts/download_pretrained_models.py [--models FISCNet,SeAFusion,SHIP] [--out pretrained_models] [--from DIR]

Every file is a checkpoint its authors published (sources below) and is checked against its
SHA-256. ``--from DIR`` copies DIR/weights/<Method>_official.pth instead (offline use).

- FISCNet: pretrained_model/FISCNet_model.pth at commit 6931507 of zheng980629/FISCNet.
- SeAFusion: Checkpoint/SeAFusion/SeAFusion.pth of the first author's Image-Fusion repository
  (Linfeng-Tang/Image-Fusion, commit 146291d, MIT licence), served from the fork
  ycc568/my-seafusion that still holds that commit; the authors' own copy,
  model/Fusion/fusionmodel_final.pth in Linfeng-Tang/SeAFusion, is the same network (its SHA-256
  was not available to check against).
- SHIP: pretrained_model/SHIP_model.pth at commit 6b95318 of zheng980629/SHIP.
"""
import argparse
from pathlib import Path

from basicsr.utils.download_util import copy_verified, download, file_sha256, verify
from basicsr.utils.errors import ArgumentParser, OptionError, report_user_errors

# method -> (source URL, SHA-256); each is stored as <method>_official.pth
MANIFEST = {
    'FISCNet': ('https://github.com/zheng980629/FISCNet/raw/6931507/pretrained_model/FISCNet_model.pth',
                '274c21b835e02e89f2bcad4227619e743675ffd73e00f4af1a4a1854efd59e3f'),
    'SeAFusion': ('https://github.com/ycc568/my-seafusion/raw/cff58e5c005f5b189010b5de5f5869277852dfa8/'
                  'Checkpoint/SeAFusion/SeAFusion.pth',
                  '8d65a7f9a50f36349803368cf9920f40420776995e7e8cc8a56d8d30e499431d'),
    'SHIP': ('https://github.com/zheng980629/SHIP/raw/6b95318c7700fce74a476e057f077ecd90ff85b3/'
             'pretrained_model/SHIP_model.pth',
             'e61783e79144d5c9da6681b833ad64624ed2e61f6a533fd18ab896349e3f7329'),
}


def file_name(method):
    return f'{method}_official.pth'


def selected_methods(text):
    """The methods of a comma-separated ``--models`` value, in manifest order.

    Raises:
        OptionError: a name is not in the manifest.
    """
    names = [name.strip() for name in text.split(',') if name.strip()]
    unknown = [name for name in names if name not in MANIFEST]
    if unknown or not names:
        raise OptionError(f"--models {text!r}: unknown method(s) {', '.join(unknown) or '(none given)'}; "
                          f"available: {', '.join(MANIFEST)}")
    return [name for name in MANIFEST if name in names]


def fetch(method, out, local=None):
    """Fetch one method's weights into ``out`` unless a verified copy is there; return a status line."""
    url, sha256 = MANIFEST[method]
    dst = Path(out) / file_name(method)
    if dst.is_file() and file_sha256(dst) == sha256:
        return f'{dst}: already present and verified'
    if local:
        copy_verified(Path(local) / 'weights' / file_name(method), dst, sha256)
    else:
        download(url, dst)
        verify(dst, sha256)
    return f'{dst}: fetched and verified (SHA-256 {sha256[:12]}...)'


def main(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', default=','.join(MANIFEST),
                        help=f"comma-separated methods (default: all of {', '.join(MANIFEST)})")
    parser.add_argument('--out', default='pretrained_models', help='destination folder')
    parser.add_argument('--from', dest='local', metavar='DIR',
                        help='copy DIR/weights/<Method>_official.pth instead of downloading')
    args = parser.parse_args(argv)
    for method in selected_methods(args.models):
        print(fetch(method, args.out, args.local))


if __name__ == '__main__':
    report_user_errors(main)
