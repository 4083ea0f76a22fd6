"""Fusing an image in overlapping tiles, for images whose whole-image inference does not fit in memory.

The network's peak memory grows with the pixels of one call, so fusing tile by tile bounds it
by the tile size; the whole-image buffers (inputs and the blended result) stay. Tiling is an
approximation for FISCNet: its Fourier transforms, instance norms and pooled channel gates see
one tile instead of the whole image (``docs/benchmarks.md``, "Tiled fusion", has the error).
"""
from typing import Callable

import torch

# The option schema's minimum (``tile`` in basicsr/utils/options.py): FISCNet sees a tile at
# 1/4 scale too, and smaller tiles leave its global statistics too little image to describe.
MIN_TILE = 64
DEFAULT_TILE_OVERLAP = 32


def check_tiling(tile: int, overlap: int) -> None:
    """Raise ValueError, saying why, unless ``tile >= 64`` and ``0 <= overlap < tile // 2``.

    Example:
        >>> check_tiling(128, 32)
        >>> try:
        ...     check_tiling(128, 64)
        ... except ValueError as err:
        ...     print(str(err).split(':')[0])
        an overlap of 64 pixels must be at least 0 and below half the tile (64)
    """
    if tile < MIN_TILE:
        raise ValueError(f'tiles of {tile} pixels are below the minimum of {MIN_TILE}: smaller tiles leave the '
                         'network too little of the image for its global statistics')
    if not 0 <= overlap < tile // 2:
        raise ValueError(f'an overlap of {overlap} pixels must be at least 0 and below half the tile '
                         f"({tile // 2}): from half on, a tile's two blending ramps meet and nearly every "
                         'pixel is fused twice or more')


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Offsets of the tiles along one side of ``length`` pixels.

    Tiles advance by ``tile - overlap``; the last one is shifted inward to end at the border, so
    it overlaps its neighbour by at least ``overlap``. A side of at most ``tile`` pixels is one tile.

    Example:
        >>> tile_starts(300, 128, 32)
        [0, 96, 172]
        >>> tile_starts(100, 128, 32)
        [0]
    """
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, tile - overlap))
    return starts + [length - tile]


def _ramp(length: int, overlap: int, ramp_start: bool, ramp_end: bool, like: torch.Tensor) -> torch.Tensor:
    """Blending weights along one side of a tile: 1 inside, rising linearly over the ``overlap``
    pixels of each side that borders another tile.

    Two neighbours overlapping by exactly ``overlap`` pixels get weights summing to 1 there.
    """
    weights = torch.ones(length, device=like.device, dtype=like.dtype)
    if overlap > 0:
        rise = torch.arange(1, overlap + 1, device=like.device, dtype=like.dtype) / (overlap + 1)
        if ramp_start:
            weights[:overlap] = rise
        if ramp_end:
            weights[-overlap:] = rise.flip(0)
    return weights


def _side_weights(length: int, tile: int, overlap: int,
                  like: torch.Tensor) -> tuple[list[tuple[int, torch.Tensor]], torch.Tensor]:
    """Per tile of one side: (start, its weights); and the weights summed over the side's tiles."""
    starts = tile_starts(length, tile, overlap)
    size = min(tile, length)
    tiles = [(start, _ramp(size, overlap, i > 0, i < len(starts) - 1, like)) for i, start in enumerate(starts)]
    total = torch.zeros(length, device=like.device, dtype=like.dtype)
    for start, weights in tiles:
        total[start:start + size] += weights
    return tiles, total


def fuse_in_tiles(run: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], vi_ycrcb: torch.Tensor,
                  ir: torch.Tensor, tile: int, overlap: int = DEFAULT_TILE_OVERLAP) -> torch.Tensor:
    """Fuse a batch tile by tile and blend the tiles' overlaps with linear ramps.

    Tiles are ``tile`` x ``tile`` pixels (a side shorter than ``tile`` is taken whole), advance
    by ``tile - overlap`` and the last tile of a row or column is shifted inward, so every call
    of ``run`` gets the same size. Where tiles overlap, each contributes with a weight rising
    linearly from its edge over ``overlap`` pixels and the weighted sum is divided by the summed
    weights, so a pixel covered by a single tile is that tile's output exactly. An image no
    larger than one tile goes through ``run`` whole.

    Args:
        run: ``run(vi_tile, ir_tile)`` returns the network's raw fused Y (B, 1, h, w) for
            tiles (B, C_vi, h, w) and (B, C_ir, h, w) cut from the inputs.
        vi_ycrcb: (B, C_vi, H, W) visible image, YCrCb in [0, 1] (any channels ``run`` reads).
        ir: (B, C_ir, H, W) infrared image in [0, 1].
        tile: side of the square tiles in pixels, at least ``MIN_TILE`` (64).
        overlap: pixels shared by neighbouring tiles, ``0 <= overlap < tile // 2``.

    Returns:
        (B, 1, H, W) raw fused Y (not clamped), on the device and in the dtype of ``vi_ycrcb``;
        ``run``'s own output when the image is no larger than one tile.

    Raises:
        ValueError: ``tile`` < 64; ``overlap`` < 0 or >= ``tile // 2``; the inputs differ in
            batch, height or width; ``run`` returns another shape than (B, 1, h, w).

    Example:
        >>> def average(vi_tile, ir_tile):
        ...     return (vi_tile[:, :1] + ir_tile) / 2
        >>> vi_ycrcb, ir = torch.rand(2, 3, 200, 300), torch.rand(2, 1, 200, 300)
        >>> fused = fuse_in_tiles(average, vi_ycrcb, ir, tile=128, overlap=32)
        >>> fused.shape
        torch.Size([2, 1, 200, 300])
        >>> torch.allclose(fused, average(vi_ycrcb, ir))
        True
    """
    check_tiling(tile, overlap)
    batch, _, height, width = vi_ycrcb.shape
    if (ir.shape[0], *ir.shape[2:]) != (batch, height, width):
        raise ValueError(f'infrared {tuple(ir.shape)} and visible {tuple(vi_ycrcb.shape)} differ in batch, '
                         'height or width')
    if height <= tile and width <= tile:
        return run(vi_ycrcb, ir)
    rows, row_total = _side_weights(height, tile, overlap, vi_ycrcb)
    cols, col_total = _side_weights(width, tile, overlap, vi_ycrcb)
    tile_h, tile_w = min(tile, height), min(tile, width)
    # The weights are a product of a row and a column ramp, so their sum over the grid is the
    # product of the sides' sums: no image-sized weight buffer is needed.
    fused = torch.zeros(batch, 1, height, width, device=vi_ycrcb.device, dtype=vi_ycrcb.dtype)
    for top, row_weights in rows:
        for left, col_weights in cols:
            window = (..., slice(top, top + tile_h), slice(left, left + tile_w))
            raw_y = run(vi_ycrcb[window], ir[window])
            if raw_y.shape != (batch, 1, tile_h, tile_w):
                raise ValueError(f'run returned {tuple(raw_y.shape)} for a tile of {tile_w}x{tile_h} '
                                 f'(W x H); expected {(batch, 1, tile_h, tile_w)}')
            fused[window] += raw_y * (row_weights[:, None] * col_weights)
    return fused.div_(row_total[:, None] * col_total)
