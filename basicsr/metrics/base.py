"""Declaring a fusion metric: its name, the conventions that define it and its direction.

Every metric is a function ``metric(ir, vi, fused, convention='tang') -> float``. The
:func:`fusion_metric` decorator checks the convention and the images once, so the metric body
receives three (H, W) uint8 arrays of one size, and registers the function in
``METRIC_REGISTRY`` under the metric's published name.
"""
import functools
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

from basicsr.metrics.image import ArrayLike, check_triple
from basicsr.utils.errors import OptionError
from basicsr.utils.options import CONVENTIONS
from basicsr.utils.registry import METRIC_REGISTRY


class MetricUnavailableError(ValueError):
    """The metric is not defined by the toolkit that the requested convention reproduces."""


@dataclass(frozen=True)
class MetricSpec:
    """What is known about a metric besides its formula."""

    name: str
    func: Callable[..., float]
    conventions: Tuple[str, ...]
    higher_is_better: bool


METRICS: Dict[str, MetricSpec] = {}


def check_convention(convention: str) -> str:
    """Return ``convention`` if it is one of :data:`CONVENTIONS`.

    Raises:
        OptionError: unknown convention (the message lists the known ones).
    """
    if convention not in CONVENTIONS:
        raise OptionError(f"convention '{convention}' is unknown; use one of: {', '.join(CONVENTIONS)}")
    return convention


def fusion_metric(name: str, conventions: Tuple[str, ...] = CONVENTIONS, higher_is_better: bool = True):
    """Declare and register a fusion metric (decorator).

    Args:
        name: the published name, e.g. ``'EN'``; the registry key.
        conventions: the conventions in which the metric is defined.
        higher_is_better: whether a larger value means a better fusion.
    """
    def decorate(body: Callable[..., float]) -> Callable[..., float]:
        @functools.wraps(body)
        def metric(ir: ArrayLike, vi: ArrayLike, fused: ArrayLike, convention: str = 'tang') -> float:
            if check_convention(convention) not in conventions:
                raise MetricUnavailableError(f"metric '{name}' is not defined in the '{convention}' convention; "
                                             f"it is defined in: {', '.join(conventions)}")
            return float(body(*check_triple(ir, vi, fused), convention))

        METRICS[name] = MetricSpec(name, metric, tuple(conventions), higher_is_better)
        METRIC_REGISTRY.register(metric, name=name)
        return metric
    return decorate
