"""Fetch infrared/visible benchmark pairs into datasets/<set>/{ir,vi[,mask]}.

    python scripts/download_datasets.py [--sets TNO21 MSRS ...] [--out datasets] [--from DIR]

Files come from the public repositories and commits listed in scripts/manifests/datasets.csv
and are checked against its SHA-256 sums. ``--from DIR`` copies from a local copy laid out as
``DIR/data/<set>/...`` instead of downloading (offline use). Files already present with the
right checksum are skipped. Some source files (BMP) are stored as PNG; those are checked by
the checksum of their decoded pixels.
"""
import argparse
import csv
from pathlib import Path

import cv2

from basicsr.utils.download_util import copy_verified, download, file_sha256, pixels_sha256, verify
from basicsr.utils.errors import ArgumentParser, InputError, report_user_errors

# tqdm and basicsr.utils.img_util (it loads torch) are imported in the functions that use them, so
# that --help and usage errors answer without loading them.

MANIFEST = Path(__file__).resolve().parent / 'manifests' / 'datasets.csv'
RAW_URL = 'https://raw.githubusercontent.com/{repo}/{commit}/{src}'


def load_manifest():
    with open(MANIFEST, newline='') as f:
        return list(csv.DictReader(f))


def is_present(path, row):
    """A verified copy is at ``path`` (a damaged or unreadable one is fetched again)."""
    if not path.is_file():
        return False
    try:
        if row['pixels_sha256']:
            return pixels_sha256(path) == row['pixels_sha256']
        return file_sha256(path) == row['sha256']
    except (InputError, OSError):
        return False


def fetch_remote(row, dst):
    from basicsr.utils.img_util import write_image
    url = RAW_URL.format(**row)
    if not row['pixels_sha256']:
        download(url, dst)
        verify(dst, row['sha256'])
        return
    # Stored in another format than the source: decode the download and re-encode losslessly.
    src = dst.with_name(f'.{dst.stem}.src{Path(row["src"]).suffix}')
    download(url, src)
    img = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
    src.unlink()
    if img is None:
        raise InputError(f'{url}: the download is not a readable image')
    write_image(dst, img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    verify(dst, row['pixels_sha256'], by_pixels=True)


def main(argv=None):
    rows = load_manifest()
    available = sorted({r['set'] for r in rows})
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sets', nargs='+', default=['TNO21'], help=f'sets to fetch: {", ".join(available)}')
    parser.add_argument('--out', default='datasets', help='destination folder (default: datasets)')
    parser.add_argument('--from', dest='local', metavar='DIR', help='copy from DIR/data/... instead of downloading')
    args = parser.parse_args(argv)
    unknown = sorted(set(args.sets) - set(available))
    if unknown:
        raise InputError(f'--sets: unknown set(s) {", ".join(unknown)}; available: {", ".join(available)}')

    from tqdm import tqdm
    todo = [r for r in rows if r['set'] in args.sets]
    fetched = 0
    for row in tqdm(todo, desc='datasets', unit='file'):
        dst = Path(args.out) / row['file']
        if is_present(dst, row):
            continue
        if args.local:
            copy_verified(Path(args.local) / 'data' / row['file'], dst, row['sha256'])
        else:
            fetch_remote(row, dst)
        fetched += 1
    print(f'{", ".join(args.sets)}: {len(todo)} files in {args.out} ({fetched} fetched, '
          f'{len(todo) - fetched} already present)')


if __name__ == '__main__':
    report_user_errors(main)
