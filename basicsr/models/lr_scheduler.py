"""Learning-rate schedules with an optional linear warm-up, in closed form of the iteration.

Each schedule computes the rate from the iteration count alone, so a resumed run continues
exactly. ``scheduler.step()`` is called once per iteration after ``optimizer.step()``; iteration
``i`` (counted from 1) trains with the rate of ``last_epoch = i - 1``.
"""
import math

from torch.optim.lr_scheduler import LRScheduler

from basicsr.utils.registry import SCHEDULER_REGISTRY

# Arguments the model passes itself; the option file may not set them.
BUILD_ARGUMENTS = ('optimizer', 'warmup_iter', 'total_iter')


class WarmupLR(LRScheduler):
    """Base: ``lr = base_lr * warm-up factor * decay(iteration)``; subclasses define ``decay``.

    Args:
        optimizer (torch.optim.Optimizer): the optimizer whose groups are scheduled.
        warmup_iter (int): iterations of linear warm-up from ``base_lr / warmup_iter`` (<= 0: none).
        total_iter (int): the run's length.
    """

    def __init__(self, optimizer, warmup_iter=-1, total_iter=1):
        self.warmup_iter = warmup_iter
        self.total_iter = total_iter
        super().__init__(optimizer)

    def decay(self, iteration, base_lr):
        raise NotImplementedError

    def get_lr(self):
        it = self.last_epoch
        warmup = min(1.0, (it + 1) / self.warmup_iter) if self.warmup_iter > 0 else 1.0
        return [warmup * self.decay(it, base_lr) for base_lr in self.base_lrs]


@SCHEDULER_REGISTRY.register()
class MultiStepLR(WarmupLR):
    """Multiply the rate by ``gamma`` at each of the ``milestones`` (the released recipe: 15k, 25k, 0.75)."""

    def __init__(self, optimizer, milestones=(), gamma=0.5, warmup_iter=-1, total_iter=1):
        self.milestones = sorted(milestones)
        self.gamma = gamma
        super().__init__(optimizer, warmup_iter, total_iter)

    def decay(self, iteration, base_lr):
        passed = sum(1 for milestone in self.milestones if iteration >= milestone)
        return base_lr * self.gamma ** passed


@SCHEDULER_REGISTRY.register()
class CosineAnnealingLR(WarmupLR):
    """Cosine decay from ``base_lr`` to ``eta_min`` between the end of the warm-up and ``total_iter``."""

    def __init__(self, optimizer, eta_min=0.0, warmup_iter=-1, total_iter=1):
        self.eta_min = eta_min
        super().__init__(optimizer, warmup_iter, total_iter)

    def decay(self, iteration, base_lr):
        start = max(self.warmup_iter, 0)
        progress = min(max(iteration - start, 0) / max(self.total_iter - start, 1), 1.0)
        return self.eta_min + (base_lr - self.eta_min) * 0.5 * (1 + math.cos(math.pi * progress))


def build_scheduler(optimizer, opt, total_iter, warmup_iter=-1):
    """``train.scheduler`` (``{type: MultiStepLR, milestones: [...], gamma: ...}``; default a
    constant rate); the options were checked against the class by :func:`basicsr.utils.options.validate`."""
    opt = dict(opt or {'type': 'MultiStepLR'})
    cls = SCHEDULER_REGISTRY.get(opt.pop('type'))
    return cls(optimizer, warmup_iter=warmup_iter if warmup_iter is not None else -1, total_iter=total_iter, **opt)
