"""A labelled figure grid: one row per image, columns IR | VI | each method's fused image.

    python scripts/make_figure.py --ir IR_DIR --vi VI_DIR --fused NAME=DIR [NAME=DIR ...]
        --out figure.png [--stems 01,08] [--cell-height 240]

Images are paired by file stem (``01.png`` with ``01.jpg``); ``--stems`` picks the rows (default:
the first three common stems). Every image of a row is scaled to ``--cell-height`` pixels,
keeping its aspect ratio; the method names head the columns and the stems label the rows.
"""
import argparse
from pathlib import Path

import numpy as np

from basicsr.utils.errors import ArgumentParser, InputError, OptionError, report_user_errors

# OpenCV and the basicsr image modules (they load torch) are imported in the functions that use
# them, so that --help and usage errors answer without loading them.

WHITE = 255
GAP = 4            # pixels between cells
HEADER_HEIGHT = 28
DEFAULT_ROWS = 3
DEFAULT_CELL_HEIGHT = 240


def read_rgb_uint8(path):
    """An image file as (H, W, 3) uint8 RGB (gray replicated, 16-bit scaled down)."""
    import cv2
    from basicsr.utils.img_util import decode_image_file
    img = decode_image_file(path, cv2.IMREAD_COLOR)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def as_rgb(img):
    """(H, W) or (H, W, 1|3) uint8 -> (H, W, 3) uint8."""
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[:, :, None]
    return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img


def scale_to_height(img, height):
    import cv2
    h, w = img.shape[:2]
    width = max(1, round(w * height / h))
    interpolation = cv2.INTER_AREA if height < h else cv2.INTER_LINEAR
    return cv2.resize(img, (width, height), interpolation=interpolation)


def text_band(text, width, height):
    """A white (height, width, 3) band with ``text`` centred, shrunk to fit the width."""
    import cv2
    font = cv2.FONT_HERSHEY_SIMPLEX
    band = np.full((height, width, 3), WHITE, np.uint8)
    scale, thickness = 0.6, 1
    while scale > 0.25 and cv2.getTextSize(text, font, scale, thickness)[0][0] > width - 4:
        scale -= 0.05
    (text_w, text_h), _ = cv2.getTextSize(text, font, scale, thickness)
    origin = ((width - text_w) // 2, (height + text_h) // 2)
    cv2.putText(band, text, origin, font, scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return band


def hstack_with_gaps(images, gap=GAP):
    height = images[0].shape[0]
    spacer = np.full((height, gap, 3), WHITE, np.uint8)
    parts = []
    for img in images:
        parts += [img, spacer]
    return np.concatenate(parts[:-1], axis=1)


def make_grid(rows, column_labels, row_labels=None, cell_height=DEFAULT_CELL_HEIGHT):
    """Lay out images in a labelled grid.

    Args:
        rows (list[list[np.ndarray]]): one list per row, one uint8 image ((H, W) gray or
            (H, W, 3) RGB) per column; the images of a row share their aspect ratio (a pair).
        column_labels (list[str]): a header per column, e.g. ``['IR', 'VI', 'FISCNet']``.
        row_labels (list[str] | None): a label per row (e.g. the stem), drawn above the row.
        cell_height (int): height in pixels every image is scaled to.

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB; rows narrower than the widest are padded with white.

    Raises:
        ValueError: no rows, a row with another number of images than labels, or cell_height < 8.
    """
    if not rows:
        raise ValueError('make_grid needs at least one row of images')
    if cell_height < 8:
        raise ValueError(f'cell_height {cell_height}: use 8 pixels or more')
    for i, row in enumerate(rows):
        if len(row) != len(column_labels):
            raise ValueError(f'row {i} has {len(row)} images for {len(column_labels)} column labels')
    strips = []
    for i, row in enumerate(rows):
        cells = [scale_to_height(as_rgb(img), cell_height) for img in row]
        if i == 0:
            strips.append(hstack_with_gaps([text_band(label, cell.shape[1], HEADER_HEIGHT)
                                            for label, cell in zip(column_labels, cells)]))
        if row_labels is not None:
            strips.append(text_band(row_labels[i], sum(c.shape[1] for c in cells) + GAP * (len(cells) - 1),
                                    HEADER_HEIGHT - 8))
        strips.append(hstack_with_gaps(cells))
    width = max(strip.shape[1] for strip in strips)
    padded = [np.pad(s, ((0, GAP), (0, width - s.shape[1]), (0, 0)), constant_values=WHITE) for s in strips]
    return np.concatenate(padded, axis=0)[:-GAP]


def parse_method(text):
    """``NAME=DIR`` -> (name, Path)."""
    name, sep, folder = text.partition('=')
    if not sep or not name or not folder:
        raise OptionError(f"--fused {text!r}: expected NAME=DIR, e.g. FISCNet=results/FISCNet/TNO21")
    return name, Path(folder)


def choose_stems(pairs, wanted=None, count=DEFAULT_ROWS):
    """The stems to show: ``wanted`` (all must be paired) or the first ``count`` paired stems.

    Raises:
        InputError: a wanted stem has no complete set of images.
    """
    available = [stem for stem, _ in pairs]
    if not wanted:
        return available[:count]
    missing = [stem for stem in wanted if stem not in available]
    if missing:
        raise InputError(f"stem(s) {', '.join(missing)} not found in every folder; "
                         f"available: {', '.join(available[:10])}{' ...' if len(available) > 10 else ''}")
    return list(wanted)


def figure_from_folders(ir, vi, methods, stems=None, cell_height=DEFAULT_CELL_HEIGHT):
    """The grid of :func:`make_grid` for the files of ``ir``, ``vi`` and ``methods`` (name -> folder)."""
    from basicsr.data.pairing import pair_by_stem
    folders = {'IR': ir, 'VI': vi, **methods}
    if len(folders) != 2 + len(methods):
        raise OptionError("method names must differ from each other and from 'IR' and 'VI'")
    pairs = pair_by_stem(folders)
    chosen = choose_stems(pairs, stems)
    paths = dict(pairs)
    rows = [[read_rgb_uint8(paths[stem][label]) for label in folders] for stem in chosen]
    return make_grid(rows, list(folders), chosen, cell_height)


def check_figure_path(out, folders):
    """Refuse a figure file inside one of the image folders, where it could replace an input image.

    Raises:
        InputError: ``out`` lies inside (or is) one of ``folders`` (flag -> folder).
    """
    target = Path(out).resolve()
    for flag, folder in folders.items():
        folder_path = Path(folder).resolve()
        if target == folder_path or folder_path in target.parents:
            raise InputError(f'--out {out}: lies inside the {flag} folder {folder}; write the figure elsewhere '
                             '(inputs are never written)')


def main(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--ir', required=True, type=Path, help='folder of infrared images')
    parser.add_argument('--vi', required=True, type=Path, help='folder of visible images')
    parser.add_argument('--fused', required=True, nargs='+', metavar='NAME=DIR', help="each method's fused images")
    parser.add_argument('--out', required=True, type=Path, help='the figure file (.png)')
    parser.add_argument('--stems', help=f'comma-separated rows (default: the first {DEFAULT_ROWS} stems)')
    parser.add_argument('--cell-height', type=int, default=DEFAULT_CELL_HEIGHT, help='height of every image in pixels')
    args = parser.parse_args(argv)
    if args.cell_height < 8:
        raise OptionError(f'--cell-height {args.cell_height}: use 8 pixels or more')
    methods = dict(parse_method(text) for text in args.fused)
    stems = [s.strip() for s in args.stems.split(',') if s.strip()] if args.stems else None
    check_figure_path(args.out, {'--ir': args.ir, '--vi': args.vi, **{f'--fused {n}': d for n, d in methods.items()}})
    from basicsr.utils.img_util import write_image
    write_image(args.out, figure_from_folders(args.ir, args.vi, methods, stems, args.cell_height))
    print(f'wrote {args.out}')


if __name__ == '__main__':
    report_user_errors(main)
