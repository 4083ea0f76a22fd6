"""An exponential moving average of a network's weights, used for validation and saved as ``params_ema``."""
import copy

import torch

# With warm-up the decay at update n is min(decay, (1 + n) / (WARMUP_STEPS + n)): the average
# follows the weights closely while they change fast, so early validations already show what the
# network does (as timm's ModelEmaV3 and others do).
WARMUP_STEPS = 10


class ModelEMA:
    """Keep ``ema = d * ema + (1 - d) * weights`` after every optimizer step.

    Args:
        net (nn.Module): the trained network (not a DDP wrapper); copied at construction.
        decay (float): the decay ``d``, e.g. 0.999.
        warmup (bool): use :meth:`decay_at` instead of a constant ``decay``.

    Example:
        >>> ema = ModelEMA(torch.nn.Linear(1, 1), 0.999)
        >>> [round(ema.decay_at(n), 4) for n in (1, 10, 100, 100000)]
        [0.1818, 0.55, 0.9182, 0.999]
    """

    def __init__(self, net, decay, warmup=True):
        self.decay = decay
        self.warmup = warmup
        self.net = copy.deepcopy(net).eval()
        for param in self.net.parameters():
            param.requires_grad_(False)

    def decay_at(self, step):
        """The decay used by the ``step``-th update (1 for the first)."""
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + step) / (WARMUP_STEPS + step))

    @torch.no_grad()
    def update(self, net, step):
        """Average ``net``'s weights in; ``step`` counts the optimizer steps, 1 for the first."""
        decay = self.decay_at(step)
        # One multi-tensor call per operation instead of two per parameter (about 200 tensors);
        # each element still sees the same two float operations, so the values are identical.
        ema_params = list(self.net.parameters())
        torch._foreach_mul_(ema_params, decay)
        torch._foreach_add_(ema_params, [param.detach() for param in net.parameters()], alpha=1 - decay)
        # Buffers are not trained (e.g. the invertible convolutions' permutations): copy them.
        for ema_buffer, buffer in zip(self.net.buffers(), net.buffers()):
            ema_buffer.copy_(buffer)

    def state_dict(self):
        return self.net.state_dict()

    def load_state_dict(self, state_dict):
        self.net.load_state_dict(state_dict)
