"""Scoring every fused image of a test or validation set, for tables, CSV files and best-model tracking."""
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch

from basicsr.metrics.conventions import DEFAULT_METRICS, calculate_metrics, check_metric_names
from basicsr.metrics.base import check_convention
from basicsr.metrics.report import summarize, write_metrics_csv
from basicsr.utils.errors import InputError
from basicsr.utils.img_util import to_uint8
from basicsr.utils.options import option_value


def metric_names_from_options(val_opt: Optional[Mapping]) -> List[str]:
    """The metrics a ``val:`` section asks for: a list of names, ``default`` (the convention's
    table) or nothing (no metrics).

    Raises:
        OptionError: unknown convention or metric name.
    """
    val_opt = val_opt or {}
    convention = check_convention(option_value({'val': val_opt}, 'val.convention'))
    names = val_opt.get('metrics')
    if not names:
        return []
    if names == 'default':
        return list(DEFAULT_METRICS[convention])
    return check_metric_names([names] if isinstance(names, str) else list(names))


def tensor_to_uint8(image: torch.Tensor) -> np.ndarray:
    """A (C, H, W) image in [0, 1] as the (H, W, C) uint8 array its 8-bit file holds, so that
    colour is converted to gray exactly as when the file itself is scored."""
    return to_uint8(image.detach().float().cpu().permute(1, 2, 0).numpy())


class SetScorer:
    """Collects one row of metrics per fused image of a set.

    Args:
        names: metric names (see :func:`metric_names_from_options`).
        convention: ``tang``, ``cddfuse`` or ``vifb``.
    """

    def __init__(self, names: List[str], convention: str = 'tang'):
        self.names = names
        self.convention = check_convention(convention)
        self.stems: List[str] = []
        self.rows: List[Dict[str, float]] = []

    def add(self, stem: str, ir: torch.Tensor, vi: torch.Tensor, fused_uint8) -> Dict[str, float]:
        """Score one image: ``ir`` (1, H, W) and ``vi`` (3, H, W) in [0, 1], ``fused_uint8`` (H, W, 3).

        Raises:
            InputError: the image is too small for a metric (the message names the stem).
        """
        try:
            row = calculate_metrics(tensor_to_uint8(ir), tensor_to_uint8(vi), fused_uint8, self.names, self.convention)
        except InputError as err:
            raise InputError(f'{stem}: {err}') from None
        self.stems.append(stem)
        self.rows.append(row)
        return row

    def merge(self, parts: List[Tuple[List[str], List[Dict[str, float]]]], order: List[str]) -> None:
        """Replace the rows with those of several ``(stems, rows)`` parts (one per process), in ``order``."""
        by_stem = {stem: row for stems, rows in parts for stem, row in zip(stems, rows)}
        self.stems = [stem for stem in order if stem in by_stem]
        self.rows = [by_stem[stem] for stem in self.stems]

    def means(self) -> Dict[str, float]:
        return {name: mean for name, (mean, _) in summarize(self.rows, self.names).items()}

    def write_csv(self, path: Path) -> Path:
        return write_metrics_csv(path, self.stems, self.rows, self.names, self.convention)
