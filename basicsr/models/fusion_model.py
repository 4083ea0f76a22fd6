"""FusionModel: runs a fusion network on (infrared, visible) pairs; trains it with the fusion losses."""
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.metrics import higher_is_better
from basicsr.metrics.set_scorer import SetScorer, tensor_to_uint8
from basicsr.models.ema import ModelEMA
from basicsr.models.lr_scheduler import build_scheduler
from basicsr.models.optimizers import build_optimizer
from basicsr.utils.checkpoint import atomic_save, first_non_finite, load_params, read_params
from basicsr.utils.color_util import rgb_to_ycrcb, ycrcb_to_rgb
from basicsr.utils.device import select_device
from basicsr.utils.errors import InputError, OptionError
from basicsr.utils.execution import check_mode, prepare_input, prepare_network, resolve_mode
from basicsr.utils.img_util import TO_8BIT, write_image
from basicsr.utils.logger import get_root_logger
from basicsr.utils.memory import check_cpu_inference_fits, is_out_of_memory, out_of_memory_error
from basicsr.utils.options import check_training_classes, option_value
from basicsr.utils.registry import MODEL_REGISTRY
from basicsr.utils.tiling import check_tiling, fuse_in_tiles

AMP_DTYPES = {'bf16': torch.bfloat16, 'bfloat16': torch.bfloat16, 'fp16': torch.float16, 'float16': torch.float16}


class LossNotFiniteError(RuntimeError):
    """A loss term or the weights became NaN or infinite; training cannot go on from here."""

    def __init__(self, iteration, what):
        super().__init__(f'iteration {iteration}: {what}')
        self.iteration = iteration


def loss_name(key):
    """``mask_loss`` -> ``l_mask``: the name a loss term is logged under."""
    return 'l_' + key[:-len('_loss')]


@MODEL_REGISTRY.register()
class FusionModel:
    """The network fuses the visible luma with the infrared image; the visible chroma is kept.

    ``feed_data`` takes a batch with ``ir`` (B, 1, H, W) and ``vis`` (B, 3, H, W) RGB in [0, 1]
    (and ``mask`` (B, 1, H, W) for training); ``test`` computes ``fused_y`` (clamped to [0, 1])
    and ``fused`` (B, 3, H, W) RGB.

    With ``opt['is_train']`` it also holds the optimizer, the schedule, the losses of the
    ``train`` section, the EMA copy (``ema_decay`` > 0) and, in distributed runs, the DDP wrapper;
    ``optimize_parameters`` trains one step, ``validation`` scores the validation sets.
    """

    def __init__(self, opt):
        self.opt = opt
        self.device = select_device(opt.get('num_gpu', 'auto'), opt.get('dist', False))
        self.net_g = build_network(opt['network_g']).to(self.device)
        self.ema = None
        path_opt = opt.get('path') or {}
        if path_opt.get('pretrain_network_g'):
            self.load_network(path_opt['pretrain_network_g'], path_opt.get('param_key_g', 'params_ema'),
                              path_opt.get('strict_load_g', True))
        self.net_g.eval()
        self.to_8bit = opt.get('to_8bit', 'round')
        if self.to_8bit not in TO_8BIT:
            raise OptionError(f"to_8bit: {self.to_8bit!r} is not a conversion; use one of: {', '.join(TO_8BIT)}")
        tile, overlap = opt.get('tile'), option_value(opt, 'tile_overlap')
        if tile:
            try:
                check_tiling(tile, overlap)
            except ValueError as err:
                raise OptionError(f'tile: {tile}, tile_overlap: {overlap}: {err}') from None
        execution = check_mode(opt.get('execution', 'auto'))
        if opt.get('is_train'):
            if execution not in ('auto', 'eager'):
                raise OptionError(f"execution: {execution} is for testing; training runs eager (remove the key)")
            execution = 'eager'  # validation then runs the weights exactly as training does
            self.init_training_settings()
        self.execution = resolve_mode(execution, self.device)
        self.net_test = prepare_network(self.net_g, self.execution)

    def load_network(self, path, param_key='params_ema', strict=True):
        params = read_params(path, param_key)
        load_params(self.net_g, params, strict, source=str(path))
        get_root_logger().info(f'loaded {type(self.net_g).__name__} weights from {path}')

    def feed_data(self, data):
        self.ir = data['ir'].to(self.device, non_blocking=True)
        self.vis = data['vis'].to(self.device, non_blocking=True)
        self.mask = data['mask'].to(self.device, non_blocking=True) if 'mask' in data else None

    def fuse(self, net, execution='eager'):
        """Run ``net`` on the fed batch; return the raw fused Y (not clamped) and the visible YCrCb."""
        vis_ycrcb = rgb_to_ycrcb(self.vis)
        return net(prepare_input(vis_ycrcb, execution), prepare_input(self.ir, execution)), vis_ycrcb

    def fuse_tiled(self, net, execution='eager'):
        """:meth:`fuse` in overlapping tiles of option ``tile`` pixels (``tile_overlap`` shared), whose
        peak memory follows the tile size instead of the image size."""
        vis_ycrcb = rgb_to_ycrcb(self.vis)

        def run(vi_tile, ir_tile):
            return net(prepare_input(vi_tile, execution), prepare_input(ir_tile, execution))

        overlap = option_value(self.opt, 'tile_overlap')
        return fuse_in_tiles(run, vis_ycrcb, self.ir, self.opt['tile'], overlap), vis_ycrcb

    @torch.no_grad()
    def test(self):
        """Fuse the fed batch with the EMA weights when training with EMA, else with ``net_g`` in
        the ``execution`` mode; in tiles when option ``tile`` is set."""
        net, execution = (self.ema.net, 'eager') if self.ema is not None else (self.net_test, self.execution)
        fuse = self.fuse_tiled if self.opt.get('tile') else self.fuse
        raw_y, vis_ycrcb = fuse(net, execution)
        self.output_finite = bool(torch.isfinite(raw_y).all())  # clamping would hide Inf as white
        self.fused_y = raw_y.clamp(0, 1)
        self.fused = ycrcb_to_rgb(torch.cat([self.fused_y, vis_ycrcb[:, 1:]], dim=1))

    def test_within_memory(self, name):
        """:meth:`test`, or an InputError naming ``name`` and what to do when the batch does not fit
        in memory (checked before starting on the CPU, where the kernel would kill the process)."""
        batch, _, height, width = self.vis.shape
        tile = self.opt.get('tile')
        if self.device.type == 'cpu':
            check_cpu_inference_fits(name, batch, height, width, tile=tile)
        try:
            self.test()
        except RuntimeError as err:  # torch.OutOfMemoryError included
            if not is_out_of_memory(err):
                raise
            if self.device.type == 'cuda':
                torch.cuda.empty_cache()
            raise out_of_memory_error(name, batch, height, width, self.device, tile=tile) from None
        if not self.output_finite:
            message = f'{name}: the network output is not finite (NaN or Inf)'
            if self.opt.get('is_train'):
                # A validation image must not end the training run; its metrics come out as NaN.
                get_root_logger().warning(f'{message}; the weights may be diverging')
                return
            raise InputError(f'{message}; the weights are damaged or diverged, or the input is extreme; '
                             'nothing was written for this image')

    def fused_images_uint8(self):
        """The fused batch as a list of (H, W, 3) uint8 RGB arrays, converted as option ``to_8bit`` says
        (``round``, the default; ``stretch_truncate``: SeAFusion's released saving)."""
        convert = TO_8BIT[self.to_8bit]
        return [convert(img.permute(1, 2, 0).float().cpu().numpy()) for img in self.fused]

    def fuse_set(self, loader, set_name, save_dir=None, suffix=None, on_image=None):
        """Fuse every pair of ``loader``; write PNGs to ``save_dir`` when given.

        Args:
            on_image: optional ``callback(stem, fused_uint8, data)`` for each image, e.g. metrics.

        Returns:
            float: images per second over the set (reading, fusing and writing included).
        """
        count, start = 0, time.perf_counter()
        for data in tqdm(loader, desc=set_name, unit='img', leave=False):
            self.feed_data(data)
            self.test_within_memory(', '.join(data['stem']))
            for i, fused in enumerate(self.fused_images_uint8()):
                stem = data['stem'][i]
                if save_dir is not None:
                    name = f'{stem}_{suffix}.png' if suffix else f'{stem}.png'
                    write_image(Path(save_dir) / name, fused)
                if on_image is not None:
                    on_image(stem, fused, {k: v[i] for k, v in data.items()})
                count += 1
        return count / max(time.perf_counter() - start, 1e-9)

    # ----------------------------------------------------------------------------------- training

    def init_training_settings(self):
        train_opt = self.opt.get('train') or {}
        self.net_g.train()
        if (train_opt.get('ema_decay') or 0) > 0:
            self.ema = ModelEMA(self.net_g, train_opt['ema_decay'], train_opt.get('ema_warmup', True))
        self.losses = {loss_name(key): build_loss(section).to(self.device)
                       for key, section in train_opt.items() if key.endswith('_loss') and section}
        if not self.losses:
            raise OptionError("train: no loss is configured; add e.g. max_loss: {type: MaxFusionLoss, loss_weight: 10}")
        self.amp_dtype = self._amp_dtype()
        # Only float16 needs loss scaling; bfloat16 has float32's range.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.net_g_train = self.net_g
        if self.opt.get('dist'):
            self.net_g_train = DistributedDataParallel(
                self.net_g, device_ids=[self.device.index] if self.device.type == 'cuda' else None,
                find_unused_parameters=self.opt.get('find_unused_parameters', False))
        check_training_classes(train_opt)  # also when the model is built without the option parser
        self.optimizer = build_optimizer([p for p in self.net_g.parameters() if p.requires_grad],
                                         option_value(self.opt, 'train.optim_g'))
        self.scheduler = build_scheduler(self.optimizer, train_opt.get('scheduler'),
                                         option_value(self.opt, 'train.total_iter'),
                                         option_value(self.opt, 'train.warmup_iter'))
        self.grad_clip = train_opt.get('grad_clip')
        self.best_metrics = {}

    def _amp_dtype(self):
        if not self.opt.get('use_amp'):
            return None
        name = self.opt.get('amp_dtype', 'bf16')
        if name not in AMP_DTYPES:
            raise OptionError(f"amp_dtype: {name!r} is not valid; use bf16 or fp16")
        return AMP_DTYPES[name]

    def current_learning_rate(self):
        return self.optimizer.param_groups[0]['lr']

    def optimize_parameters(self, current_iter):
        """Train one step on the fed batch; return the loss terms (averaged over processes).

        Raises:
            LossNotFiniteError: a loss term is NaN or infinite (no weight is changed then).
        """
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            raw_y, vis_ycrcb = self.fuse(self.net_g_train)
        # The losses run in float32 on the clamped output, as the released recipe computes them.
        fused = raw_y.float().clamp(0, 1)
        terms = {name: loss(fused, vis_ycrcb[:, :1], self.ir, self.mask) for name, loss in self.losses.items()}
        values = torch.stack([term.detach() for term in terms.values()])
        if self.opt.get('dist'):
            # Every process learns of a non-finite term anywhere, so all stop together.
            dist.all_reduce(values)
            values /= dist.get_world_size()
        values = dict(zip(terms, values.tolist()))
        for name, value in values.items():
            if not math.isfinite(value):
                loss_type = type(self.losses[name]).__name__
                raise LossNotFiniteError(current_iter, f'the loss term {name} ({loss_type}) is {value}')
        total = sum(terms.values())
        self.scaler.scale(total).backward()
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

    def training_state(self, current_iter, epoch, position):
        """Everything a resumed run needs besides the RNG states; ``position``: samples done in ``epoch``."""
        state = {'iter': current_iter, 'epoch': epoch, 'position': position,
                 'optimizer': self.optimizer.state_dict(), 'scheduler': self.scheduler.state_dict(),
                 'best_metrics': self.best_metrics, **self.network_params(current_iter)}
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
        self.best_metrics = state.get('best_metrics', {})

    # ---------------------------------------------------------------------------------- validation

    @torch.no_grad()
    def validation(self, loaders, current_iter, metric_names, convention='tang', save_root=None,
                   on_grid=None, grid_count=0):
        """Fuse and score each validation set; keep the best checkpoint per set and metric.

        A new best is saved as ``<models>/net_g_best_<set>_<metric>.pth``, from iteration
        :meth:`best_from_iter` on.

        Args:
            loaders (dict[str, DataLoader]): set name -> loader of whole images.
            metric_names (list[str]): names from ``basicsr.metrics`` (``EN``, ``Qabf`` ...).
            save_root (str | None): write ``<save_root>/<set>/<stem>_<iter>.png`` when given.
            on_grid: ``callback(tag, hwc_uint8)`` for the first ``grid_count`` images of a set,
                each an IR | VI | fused strip.

        Returns:
            tuple[dict, list]: ``{set: {metric: mean}}`` and the ``(set, metric, value)`` bests
            reached at this iteration.
        """
        self.net_g.eval()
        results, improved = {}, []
        for set_name, loader in loaders.items():
            scorer = SetScorer(metric_names, convention)
            shown = []

            def on_image(stem, fused, data, scorer=scorer, shown=shown, set_name=set_name):
                if metric_names:
                    scorer.add(stem, data['ir'], data['vis'], fused)
                if on_grid is not None and len(shown) < grid_count:
                    shown.append(stem)
                    ir, vis = tensor_to_uint8(data['ir']), tensor_to_uint8(data['vis'])
                    on_grid(f'val_{set_name}/{stem}', np.concatenate([np.repeat(ir, 3, 2), vis, fused], 1))

            save_dir = Path(save_root) / set_name if save_root else None
            self.fuse_set(loader, set_name, save_dir, str(current_iter), on_image)
            results[set_name] = scorer.means()
            if current_iter >= self.best_from_iter():
                improved += self._update_best(set_name, results[set_name], current_iter)
        self.net_g.train()
        return results, improved

    def best_from_iter(self):
        """``val.best_from_iter``: the first iteration whose validation may become a best checkpoint
        (default a tenth of ``train.total_iter``, as the first validations of a run all improve)."""
        chosen = (self.opt.get('val') or {}).get('best_from_iter')
        return chosen if chosen is not None else option_value(self.opt, 'train.total_iter') // 10

    def _update_best(self, set_name, means, current_iter):
        improved = []
        best = self.best_metrics.setdefault(set_name, {})
        for name, value in means.items():
            if math.isnan(value):
                continue
            old = best.get(name)
            if old is None or (value > old['value'] if higher_is_better(name) else value < old['value']):
                best[name] = {'value': value, 'iter': current_iter}
                improved.append((set_name, name, value))
                self.save_network(Path(self.opt['path']['models']) / f'net_g_best_{set_name}_{name}.pth', current_iter)
        return improved
