"""An exponential moving average of a network's weights, used for validation and saved as ``params_ema``."""
import copy

import torch


class ModelEMA:
    """Keep ``ema = decay * ema + (1 - decay) * weights`` after every optimizer step.

    Args:
        net (nn.Module): the trained network (not a DDP wrapper); copied at construction.
        decay (float): e.g. 0.999.
    """

    def __init__(self, net, decay):
        self.decay = decay
        self.net = copy.deepcopy(net).eval()
        for param in self.net.parameters():
            param.requires_grad_(False)

    @torch.no_grad()
    def update(self, net):
        # One multi-tensor call per operation instead of two per parameter (about 200 tensors);
        # each element still sees the same two float operations, so the values are identical.
        ema_params = list(self.net.parameters())
        torch._foreach_mul_(ema_params, self.decay)
        torch._foreach_add_(ema_params, [param.detach() for param in net.parameters()], alpha=1 - self.decay)
        # Buffers are not trained (e.g. the invertible convolutions' permutations): copy them.
        for ema_buffer, buffer in zip(self.net.buffers(), net.buffers()):
            ema_buffer.copy_(buffer)

    def state_dict(self):
        return self.net.state_dict()

    def load_state_dict(self, state_dict):
        self.net.load_state_dict(state_dict)
