"""Writing per-image metric CSVs and printing mean (+/- std) tables; shared by test.py and the CLI."""
import csv
import math
from pathlib import Path
from typing import Dict, Mapping, Sequence, Tuple, Union

import numpy as np

MEAN_ROW = 'mean'


def summarize(rows: Sequence[Mapping[str, float]], names: Sequence[str]) -> Dict[str, Tuple[float, float]]:
    """Mean and population standard deviation of each metric over the images.

    Args:
        rows: one dict name -> value per image.
        names: the metrics to summarise.

    Returns:
        dict name -> (mean, std); NaN for a metric with a NaN value (unavailable in the convention)
        or when ``rows`` is empty, inf when a value is infinite.

    Example:
        >>> summarize([{'EN': 6.0}, {'EN': 8.0}], ['EN'])
        {'EN': (7.0, 1.0)}
    """
    summary = {}
    for name in names:
        values = np.array([row[name] for row in rows], dtype=np.float64)
        if values.size == 0 or np.isnan(values).any():
            summary[name] = (math.nan, math.nan)
        elif np.isinf(values).any():
            summary[name] = (float(values.mean()), math.nan)
        else:
            summary[name] = (float(values.mean()), float(values.std()))
    return summary


def _cell(value: float) -> str:
    return 'nan' if math.isnan(value) else repr(float(value))


def write_metrics_csv(path: Union[str, Path], stems: Sequence[str], rows: Sequence[Mapping[str, float]],
                      names: Sequence[str], convention: str) -> Path:
    """Write one row per image and a final ``mean`` row.

    The file starts with the comment line ``# convention: <convention>``, then the header
    ``image,<metric>,...``. Values are written at full precision; a metric unavailable in the
    convention is written as ``nan``.

    Args:
        path: the CSV file; parent folders are created.
        stems: image names, one per row.
        rows: dict name -> value, one per image, in the order of ``stems``.
        names: the metric columns, in order.
        convention: the convention the values were computed in.

    Returns:
        Path: the written file.

    Raises:
        ValueError: ``stems`` and ``rows`` differ in length.
        OSError: the file cannot be written.
    """
    if len(stems) != len(rows):
        raise ValueError(f'{len(stems)} image names for {len(rows)} rows of metrics')
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    means = summarize(rows, names)
    with path.open('w', newline='', encoding='utf-8') as handle:
        handle.write(f'# convention: {convention}\n')
        writer = csv.writer(handle, lineterminator='\n')
        writer.writerow(['image', *names])
        for stem, row in zip(stems, rows):
            writer.writerow([stem, *(_cell(row[name]) for name in names)])
        writer.writerow([MEAN_ROW, *(_cell(means[name][0]) for name in names)])
    return path


def _format_value(mean: float, std: float, digits: int, with_std: bool) -> str:
    if math.isnan(mean):
        return 'n/a'
    text = f'{mean:.{digits}f}'
    return f'{text} ± {std:.{digits}f}' if with_std and not math.isnan(std) else text


def format_table(groups: Mapping[str, Sequence[Mapping[str, float]]], names: Sequence[str], label: str = 'method',
                 with_std: bool = True, digits: int = 4) -> str:
    """Format a plain-text table with one row per group (a method's folder, a test set) holding
    each metric's mean (``± std`` with ``with_std``) over the group's images.

    Args:
        groups: row label -> the per-image dicts name -> value.
        names: the metric columns, in order.
        label: the header of the first column.
        with_std: append the population standard deviation.
        digits: decimals shown.

    Returns:
        str: the table, lines joined by newlines; unavailable metrics show ``n/a``.

    Example:
        >>> print(format_table({'A': [{'EN': 6.0}, {'EN': 8.0}]}, ['EN'], digits=2))
        method  EN
        A       7.00 ± 1.00
    """
    header = [label, *names]
    body = []
    for group, rows in groups.items():
        summary = summarize(rows, names)
        body.append([str(group), *(_format_value(*summary[name], digits, with_std) for name in names)])
    widths = [max(len(line[col]) for line in [header, *body]) for col in range(len(header))]
    return '\n'.join('  '.join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
                     for line in [header, *body])
