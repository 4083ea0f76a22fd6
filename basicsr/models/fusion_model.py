"""FusionModel: one training step of a fusion network (losses, AMP, DDP, EMA, optimizer, schedule) and
the state a checkpoint keeps of it."""
import math

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from basicsr.losses import build_loss
from basicsr.models.ema import ModelEMA
from basicsr.models.fusion_engine import load_network
from basicsr.models.lr_scheduler import build_scheduler
from basicsr.models.optimizers import build_optimizer
from basicsr.utils.checkpoint import atomic_save, first_non_finite, load_params
from basicsr.utils.color_util import rgb_to_ycrcb
from basicsr.utils.device import select_device
from basicsr.utils.errors import OptionError
from basicsr.utils.options import check_training_classes, option_value
from basicsr.utils.registry import MODEL_REGISTRY

AMP_DTYPES = {'bf16': torch.bfloat16, 'bfloat16': torch.bfloat16, 'fp16': torch.float16, 'float16': torch.float16}


class LossNotFiniteError(RuntimeError):
    """A loss term or the weights became NaN or infinite; training cannot go on from here."""

    def __init__(self, iteration, what):
        super().__init__(f'iteration {iteration}: {what}')
        self.iteration = iteration


def loss_name(key):
    """``mask_loss`` -> ``l_mask``: the name a loss term is logged under."""
    return 'l_' + key[:-len('_loss')]


def amp_dtype(opt):
    """The autocast type of ``use_amp``/``amp_dtype``, None without AMP (OptionError for an unknown name)."""
    if not opt.get('use_amp'):
        return None
    name = option_value(opt, 'amp_dtype')
    if name not in AMP_DTYPES:
        raise OptionError(f"amp_dtype: {name!r} is not valid; use bf16 or fp16")
    return AMP_DTYPES[name]


@MODEL_REGISTRY.register()
class FusionModel:
    """The network of ``network_g`` (from ``path.pretrain_network_g`` when set) trained with the
    ``train.*_loss`` terms on the fused Y.

    ``train_step`` takes a batch with ``ir`` (B, 1, H, W), ``vi`` (B, 3, H, W) RGB in [0, 1] and,
    for the mask loss, ``mask`` (B, 1, H, W); it runs the network (under AMP when ``use_amp``,
    through DDP in distributed runs), steps the optimizer and the schedule and updates the EMA
    copy (``train.ema_decay`` > 0). ``eval_network`` is what validation fuses with.

    Raises:
        OptionError: no loss, an unknown loss/optimizer/schedule, or ``execution`` other than eager.
    """

    def __init__(self, opt):
        self.opt = opt
        train_opt = opt.get('train') or {}
        if option_value(opt, 'execution') not in ('auto', 'eager'):
            raise OptionError(f"execution: {opt['execution']} is for testing; training runs eager (remove the key)")
        self.device = select_device(option_value(opt, 'num_gpu'), opt.get('dist', False))
        self.net_g = load_network(opt).to(self.device).train()
        self.ema = None
        if option_value(opt, 'train.ema_decay') > 0:
            self.ema = ModelEMA(self.net_g, train_opt['ema_decay'], option_value(opt, 'train.ema_warmup'))
        self.losses = {loss_name(key): build_loss(section).to(self.device)
                       for key, section in train_opt.items() if key.endswith('_loss') and section}
        if not self.losses:
            raise OptionError("train: no loss is configured; add e.g. max_loss: {type: MaxFusionLoss, loss_weight: 10}")
        self.amp_dtype = amp_dtype(opt)
        # Only float16 needs loss scaling; bfloat16 has float32's range.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.net_g_train = self.net_g
        if opt.get('dist'):
            self.net_g_train = DistributedDataParallel(
                self.net_g, device_ids=[self.device.index] if self.device.type == 'cuda' else None,
                find_unused_parameters=option_value(opt, 'find_unused_parameters'))
        check_training_classes(train_opt)  # also when the model is built without the option parser
        self.optimizer = build_optimizer([p for p in self.net_g.parameters() if p.requires_grad],
                                         option_value(opt, 'train.optim_g'))
        self.scheduler = build_scheduler(self.optimizer, train_opt.get('scheduler'),
                                         option_value(opt, 'train.total_iter'),
                                         option_value(opt, 'train.warmup_iter'))
        self.grad_clip = train_opt.get('grad_clip')

    @property
    def eval_network(self):
        """The weights validation fuses with: the EMA copy when there is one, else ``net_g``."""
        return self.ema.net if self.ema is not None else self.net_g

    def current_learning_rate(self):
        return self.optimizer.param_groups[0]['lr']

    def train_step(self, batch, current_iter):
        """Train one step on ``batch``; return the loss terms (averaged over processes) and ``l_total``.

        Raises:
            LossNotFiniteError: a loss term is NaN or infinite (no weight is changed then).
        """
        ir = batch['ir'].to(self.device, non_blocking=True)
        vi_ycrcb = rgb_to_ycrcb(batch['vi'].to(self.device, non_blocking=True))
        mask = batch['mask'].to(self.device, non_blocking=True) if 'mask' in batch else None
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            raw_y = self.net_g_train(vi_ycrcb, ir)
        # The losses run in float32 on the clamped output, as the released recipe computes them.
        fused = raw_y.float().clamp(0, 1)
        terms = {name: loss(fused, vi_ycrcb[:, :1], ir, mask) for name, loss in self.losses.items()}
        values = self._check_finite(terms, current_iter)
        self.scaler.scale(sum(terms.values())).backward()
        if self.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.net_g.parameters(), self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.net_g, current_iter)
        values['l_total'] = sum(values.values())
        return values

    def _check_finite(self, terms, current_iter):
        """The loss terms as floats, averaged over processes, so that every process learns of a
        non-finite term anywhere and all stop together."""
        values = torch.stack([term.detach() for term in terms.values()])
        if self.opt.get('dist'):
            dist.all_reduce(values)
            values /= dist.get_world_size()
        values = dict(zip(terms, values.tolist()))
        for name, value in values.items():
            if not math.isfinite(value):
                loss_type = type(self.losses[name]).__name__
                raise LossNotFiniteError(current_iter, f'the loss term {name} ({loss_type}) is {value}')
        return values

    # ---------------------------------------------------------------------------- saving, resuming

    def network_params(self, current_iter):
        """``{'params': ..., 'params_ema': ...}`` (EMA only when used), checked to be finite.

        Raises:
            LossNotFiniteError: a weight is NaN or infinite, so the checkpoint would be useless.
        """
        params = {'params': self.net_g.state_dict()}
        if self.ema is not None:
            params['params_ema'] = self.ema.state_dict()
        for key, state in params.items():
            bad = first_non_finite(state)
            if bad is not None:
                raise LossNotFiniteError(current_iter, f'the weight {key}.{bad} is not finite')
        return params

    def save_network(self, path, current_iter):
        atomic_save(self.network_params(current_iter), path)

    def training_state(self, current_iter):
        """The weights, optimizer, schedule (and loss scaler) a resumed run needs."""
        state = {'iter': current_iter, 'optimizer': self.optimizer.state_dict(),
                 'scheduler': self.scheduler.state_dict(), **self.network_params(current_iter)}
        if self.scaler.is_enabled():
            state['scaler'] = self.scaler.state_dict()
        return state

    def resume_training(self, state):
        load_params(self.net_g, state['params'], strict=True, source=f"training state of iteration {state['iter']}")
        if self.ema is not None:
            self.ema.load_state_dict(state.get('params_ema', state['params']))
        self.optimizer.load_state_dict(state['optimizer'])
        self.scheduler.load_state_dict(state['scheduler'])
        if self.scaler.is_enabled() and 'scaler' in state:
            self.scaler.load_state_dict(state['scaler'])
