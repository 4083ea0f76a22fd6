"""The training loop behind ``python train.py -opt options/train/FISCNet.yml [--auto_resume]``.

Several GPUs or nodes: torchrun --nproc_per_node N train.py -opt ... --launcher pytorch
(or srun ... --launcher slurm); the same option file runs on 1 or N processes.
"""
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from basicsr.data import build_dataset, build_test_loader, loader_workers, usable_cores
from basicsr.data.prefetcher import prefetch
from basicsr.data.sampler import EnlargedSampler
from basicsr.metrics import higher_is_better
from basicsr.metrics.set_scorer import SetScorer, metric_names_from_options, tensor_to_uint8
from basicsr.models import build_model, check_model_options
from basicsr.models.fusion_engine import FusionEngine, engine_settings
from basicsr.models.fusion_model import LossNotFiniteError
from basicsr.utils.dist_util import get_dist_info
from basicsr.utils.errors import InputError, Interrupted, OptionError, WriteError, report_user_errors
from basicsr.utils.img_util import write_image
from basicsr.utils.experiment import copy_option_file, make_run_dirs, run_scope
from basicsr.utils.logger import get_env_info, get_root_logger, get_time_str
from basicsr.utils.options import dataset_option, dict_to_yaml, option_value, parse_options
from basicsr.utils.seed import set_random_seed
from basicsr.utils.training_state import (find_resume_state, load_training_state, restore_rng_states, rng_states,
                                          save_training_state)


def share_seed(opt):
    """All processes take rank 0's seed, so they shuffle the epochs alike (a random seed differs per process)."""
    if opt['dist']:
        seed = [opt['manual_seed']]
        dist.broadcast_object_list(seed, src=0)
        opt['manual_seed'] = seed[0]


def split_datasets(opt):
    """The one ``train`` set's options and the ``val*`` sets' options by name."""
    train_sets = [s for s in opt['datasets'].values() if s['phase'] == 'train']
    if len(train_sets) != 1:
        raise OptionError(f"datasets: need exactly one set whose key starts with 'train', found {len(train_sets)}")
    val_sets = {s.get('name', key): s for key, s in opt['datasets'].items() if s['phase'] == 'val'}
    others = [key for key, s in opt['datasets'].items() if s['phase'] not in ('train', 'val')]
    if others:
        raise OptionError(f"datasets.{others[0]}: training sets are 'train' and 'val', 'val_2' ...; rename the key")
    return train_sets[0], val_sets


def build_train_set(set_opt, opt):
    """The training set; ``mask_loss`` without masks is an error before anything is read."""
    if (opt.get('train') or {}).get('mask_loss') and set_opt.get('dataroot_mask') is None:
        raise OptionError('train.mask_loss needs saliency masks: set datasets.train.dataroot_mask (make them with '
                          'scripts/data_preparation/generate_saliency_masks.py) or remove mask_loss')
    return build_dataset(set_opt)


def create_train_loader(dataset, set_opt, seed, device):
    """The sampler and loader of the training set; an epoch must hold at least one batch."""
    rank, world_size = get_dist_info()
    ratio = dataset_option(set_opt, 'dataset_enlarge_ratio')
    sampler = EnlargedSampler(len(dataset), world_size, rank, ratio, seed, dataset_option(set_opt, 'use_shuffle'))
    batch_size = dataset_option(set_opt, 'batch_size_per_gpu')
    if len(sampler) < batch_size:
        raise OptionError(f'datasets.train: {len(dataset)} pairs x dataset_enlarge_ratio {ratio} over {world_size} '
                          f'process(es) is less than one batch of {batch_size}; raise dataset_enlarge_ratio or '
                          'lower batch_size_per_gpu')
    requested = dataset_option(set_opt, 'num_worker_per_gpu')
    workers = loader_workers(requested)
    if requested not in ('auto', workers):
        get_root_logger().info(f'datasets.train.num_worker_per_gpu: {requested} -> {workers}, this process\'s '
                               f'share of the {usable_cores()} cores')
    # Crops are seeded by the sampler's keys; this generator only keeps the loader off the global RNG.
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=True,
                        pin_memory=set_opt.get('pin_memory', device.type == 'cuda'),
                        persistent_workers=workers > 0 and dataset_option(set_opt, 'persistent_workers'),
                        generator=torch.Generator().manual_seed(seed))
    return sampler, loader


def will_resume(opt):
    """Whether this run continues an experiment (then its folder is kept, not archived)."""
    states = Path(opt['path']['training_states'])
    return bool(opt['path'].get('resume_state')) or (opt['auto_resume'] and any(states.glob('*.state')))


def find_state(opt, given_state):
    """The training state to resume from: ``given_state`` (``path.resume_state``, loaded before the run
    folder was touched), else the newest that loads with ``--auto_resume``."""
    if given_state is not None:
        return given_state, opt['path']['resume_state']
    if opt['auto_resume']:
        return find_resume_state(opt['path']['training_states'])
    return None, None


def make_tb_logger(opt, start_iter):
    if not option_value(opt, 'logger.use_tb_logger') or get_dist_info()[0] != 0:
        return None
    from torch.utils.tensorboard import SummaryWriter
    # purge_step drops events a stopped run wrote after its last state, so curves do not double back.
    return SummaryWriter(opt['path']['tb_logger'], purge_step=start_iter or None)


class Trainer:
    """The iteration loop: steps, logs, checkpoints, validations and best checkpoints at their frequencies."""

    def __init__(self, opt, model, sampler, loader, prefetch_mode, val_loaders, tb_logger, logger, best_metrics=None):
        self.opt, self.model, self.sampler, self.loader = opt, model, sampler, loader
        self.prefetch_mode = prefetch_mode
        self.val_loaders, self.tb_logger, self.logger = val_loaders, tb_logger, logger
        self.rank, self.world_size = get_dist_info()
        self.total_iter = option_value(opt, 'train.total_iter')
        self.print_freq = option_value(opt, 'logger.print_freq')
        self.save_freq = option_value(opt, 'logger.save_checkpoint_freq')
        self.val_freq = option_value(opt, 'val.val_freq') if val_loaders else None
        self.metric_names = metric_names_from_options(opt.get('val'))
        self.convention = option_value(opt, 'val.convention')
        self.best = BestCheckpoints(opt, best_metrics)
        # Validation fuses as test.py does, with the weights exactly as training holds them.
        self.engine = FusionEngine(model.eval_network, model.device, **dict(engine_settings(opt), execution='eager'),
                                   non_finite='warn')
        self.global_batch = loader.batch_size * self.world_size
        self.last_checkpoint = None

    def run(self, start_iter, epoch, position):
        current_iter, sums, count = start_iter, {}, 0
        interval_start = time.perf_counter()
        progress = tqdm(total=self.total_iter, initial=start_iter, unit='it', disable=self.rank != 0,
                        dynamic_ncols=True)
        try:
            while current_iter < self.total_iter:
                self.sampler.set_epoch(epoch, position)
                for data in prefetch(self.loader, self.prefetch_mode, self.model.device):
                    current_iter += 1
                    losses = self.model.train_step(data, current_iter)
                    position += self.global_batch
                    progress.update(1)
                    for name, value in losses.items():
                        sums[name] = sums.get(name, 0.0) + value
                    count += 1
                    if current_iter % self.print_freq == 0 or current_iter in (start_iter + 1, self.total_iter):
                        rate = count / max(time.perf_counter() - interval_start, 1e-9)
                        self.log(current_iter, epoch, {k: v / count for k, v in sums.items()}, rate)
                        sums, count, interval_start = {}, 0, time.perf_counter()
                    if current_iter % self.save_freq == 0 or current_iter == self.total_iter:
                        self.save(current_iter, epoch, position)
                    if self.val_freq and (current_iter % self.val_freq == 0 or current_iter == self.total_iter):
                        self.validate(current_iter)
                    if current_iter >= self.total_iter:
                        break
                else:
                    epoch, position = epoch + 1, 0
        except LossNotFiniteError as err:
            err.args = (f'{err}; training stopped. Last good checkpoint: {self.last_checkpoint or "none saved yet"} '
                        '(resume with --auto_resume, perhaps with a lower learning rate or train.grad_clip)',)
            self.logger.error(str(err))
            raise
        except KeyboardInterrupt:
            raise Interrupted(f'interrupted (Ctrl-C) at iteration {current_iter}; {self.resume_hint()}') from None
        except WriteError as err:
            raise WriteError(f'{err}; training stopped at iteration {current_iter}; {self.resume_hint()}') from None
        finally:
            progress.close()
        return current_iter

    def resume_hint(self):
        """Where the newest complete training state is and how to continue from it (states are written
        atomically, so every ``<iter>.state`` on disk is complete)."""
        states = [p for p in Path(self.opt['path']['training_states']).glob('*.state') if p.stem.isdigit()]
        if not states:
            return 'no training state was saved yet; the same command starts again from iteration 0'
        newest = max(states, key=lambda p: int(p.stem))
        return f'the last complete training state is {newest}; run the same command with --auto_resume to continue'

    def log(self, current_iter, epoch, losses, rate):
        lr = self.model.current_learning_rate()
        eta = (self.total_iter - current_iter) / max(rate, 1e-9)
        terms = ' '.join(f'{name}: {value:.4e}' for name, value in losses.items())
        self.logger.info(f'[epoch {epoch} iter {current_iter:,}/{self.total_iter:,}] lr {lr:.3e} '
                         f'{rate:.2f} it/s eta {time.strftime("%H:%M:%S", time.gmtime(eta))} {terms}')
        if self.tb_logger is not None:
            for name, value in losses.items():
                self.tb_logger.add_scalar(f'losses/{name}', value, current_iter)
            self.tb_logger.add_scalar('train/lr', lr, current_iter)
            self.tb_logger.add_scalar('train/it_per_s', rate, current_iter)

    def save(self, current_iter, epoch, position):
        if self.rank == 0:
            models = Path(self.opt['path']['models'])
            self.model.save_network(models / f'net_g_{current_iter}.pth', current_iter)
            self.model.save_network(models / 'net_g_latest.pth', current_iter)
            state = self.model.training_state(current_iter)
            state.update(epoch=epoch, position=position, best_metrics=self.best.values, rng=rng_states())
            path = save_training_state(state, self.opt['path']['training_states'])
            self.last_checkpoint = models / f'net_g_{current_iter}.pth'
            self.logger.info(f'saved net_g_{current_iter}.pth and {path.name}')

    def validate(self, current_iter):
        """Fuse and score each validation set (rank 0), log the means, keep the best checkpoints."""
        if self.rank == 0:
            self.model.net_g.eval()
            try:
                for set_name, loader in self.val_loaders.items():
                    means = self.validate_set(set_name, loader, current_iter)
                    scores = ' '.join(f'{name}: {value:.4f}' for name, value in means.items())
                    self.logger.info(f'validation {set_name} at iter {current_iter:,}: {scores or "(no metrics)"}')
                    if self.tb_logger is not None:
                        for name, value in means.items():
                            self.tb_logger.add_scalar(f'metrics/{set_name}/{name}', value, current_iter)
                    for name, value in self.best.update(self.model, set_name, means, current_iter):
                        self.logger.info(f'new best {name} on {set_name}: {value:.4f} -> '
                                         f'{self.best.file_name(set_name, name)}')
            finally:
                self.model.net_g.train()
        if self.opt['dist']:
            dist.barrier()

    @torch.no_grad()
    def validate_set(self, set_name, loader, current_iter):
        """Fuse one set, write ``<visualization>/<set>/<stem>_<iter>.png`` (``val.save_img``), put the
        first ``val.grid_in_tensorboard`` IR | VI | fused strips in TensorBoard; the metric means."""
        scorer = SetScorer(self.metric_names, self.convention)
        save_dir = (Path(self.opt['path']['visualization']) / set_name
                    if option_value(self.opt, 'val.save_img') else None)
        grid_count = (option_value(self.opt, 'val.grid_in_tensorboard') or 0) if self.tb_logger else 0
        for index, result in enumerate(self.engine.fuse_loader(loader, set_name)):
            if save_dir is not None:
                write_image(save_dir / f'{result.stem}_{current_iter}.png', result.fused)
            if self.metric_names:
                scorer.add(result.stem, result.item['ir'], result.item['vi'], result.fused)
            if index < grid_count:
                ir, vi = tensor_to_uint8(result.item['ir']), tensor_to_uint8(result.item['vi'])
                strip = np.concatenate([np.repeat(ir, 3, 2), vi, result.fused], 1)
                self.tb_logger.add_image(f'val_{set_name}/{result.stem}', strip, current_iter, dataformats='HWC')
        return scorer.means()


class BestCheckpoints:
    """The best value of each validation metric per set, and its checkpoint
    ``<models>/net_g_best_<set>_<metric>.pth``, from iteration ``val.best_from_iter`` on (default a
    tenth of ``train.total_iter``, as the first validations of a run all improve).

    ``values`` (``{set: {metric: {'value', 'iter'}}}``) goes into the training states.
    """

    def __init__(self, opt, values=None):
        self.folder = Path(opt['path']['models'])
        chosen = (opt.get('val') or {}).get('best_from_iter')
        self.from_iter = chosen if chosen is not None else option_value(opt, 'train.total_iter') // 10
        self.values = values or {}

    @staticmethod
    def file_name(set_name, metric):
        return f'net_g_best_{set_name}_{metric}.pth'

    def update(self, model, set_name, means, current_iter):
        """Save ``model``'s weights for each metric of ``means`` that improved, up or down as the
        metric goes (NaN never does); the ``(metric, value)`` pairs that did."""
        if current_iter < self.from_iter:
            return []
        best, improved = self.values.setdefault(set_name, {}), []
        for name, value in means.items():
            old = best.get(name)
            if math.isnan(value) or not (old is None or is_better(name, value, old['value'])):
                continue
            best[name] = {'value': value, 'iter': current_iter}
            model.save_network(self.folder / self.file_name(set_name, name), current_iter)
            improved.append((name, value))
        return improved


def is_better(metric, value, old):
    return value > old if higher_is_better(metric) else value < old


def resume_from(model, state, state_file):
    """Load ``state`` into the model, optimizer, schedule and random generators.

    Raises:
        InputError: the state does not fit this run (other network, optimizer or schedule).
    """
    try:
        model.resume_training(state)
        restore_rng_states(state['rng'])
    except InputError:
        raise
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as err:
        detail = str(err).splitlines()[0][:120] if str(err) else 'no detail'
        raise InputError(f'{state_file}: does not fit this run ({type(err).__name__}: {detail}); '
                         'resume with the options it was saved with, or start a new run name') from None


def train_pipeline(argv=None):
    opt, args = parse_options(is_train=True, argv=argv)
    with run_scope(opt, args.launcher, training=True):
        return train(opt, args)


def train(opt, args):
    share_seed(opt)
    train_set_opt, val_set_opts = split_datasets(opt)
    metric_names_from_options(opt.get('val'))  # a bad metric name stops the run before any training
    # Pairing every set first means a missing partner stops the run before any work is done.
    train_set = build_train_set(train_set_opt, opt)
    val_sets = {name: build_dataset(set_opt) for name, set_opt in val_set_opts.items()}
    check_model_options(opt)
    given_state = load_training_state(opt['path']['resume_state']) if opt['path'].get('resume_state') else None
    make_run_dirs(opt, resuming=will_resume(opt), option_file=args.opt)
    if opt['dist']:
        dist.barrier()
    logger = get_root_logger(Path(opt['path']['log']) / f"train_{opt['name']}_{get_time_str()}.log")
    state, state_file = find_state(opt, given_state)  # after the log file exists, so skipped states are logged
    logger.info(get_env_info())
    for note in args.released_notes:
        logger.info(f'released option file: {note}')
    logger.info('options:\n' + dict_to_yaml(opt))
    copy_option_file(args.opt, opt, args.opt_text)
    if (opt.get('logger') or {}).get('wandb'):
        logger.warning('logger.wandb is not supported; use the TensorBoard logs in tb_logger/')

    set_random_seed(opt['manual_seed'])
    model = build_model(opt)
    sampler, loader = create_train_loader(train_set, train_set_opt, opt['manual_seed'], model.device)
    val_loaders = {name: build_test_loader(dataset, val_set_opts[name], model.device)
                   for name, dataset in val_sets.items()}
    logger.info(f'device: {model.device}, {opt["world_size"]} process(es); training set: {len(train_set)} pairs, '
                f'{len(sampler) // loader.batch_size} iterations per epoch of batch {loader.batch_size} per process, '
                f'{loader.num_workers} loader worker(s); '
                f'validation sets: {", ".join(val_loaders) or "none"}')

    start_iter, epoch, position = 0, 0, 0
    if state is not None:
        resume_from(model, state, state_file)
        start_iter, epoch, position = state['iter'], state['epoch'], state['position']
        logger.info(f'resumed from {state_file}: iteration {start_iter}, epoch {epoch}')
    elif opt['auto_resume']:
        logger.info('--auto_resume: no training state found, starting from iteration 0')

    tb_logger = make_tb_logger(opt, start_iter)
    trainer = Trainer(opt, model, sampler, loader, train_set_opt.get('prefetch_mode'), val_loaders, tb_logger, logger,
                      best_metrics=state.get('best_metrics') if state is not None else None)
    try:
        with logging_redirect_tqdm(loggers=[logger]):
            final_iter = trainer.run(start_iter, epoch, position)
    finally:
        if tb_logger is not None:
            tb_logger.close()
    logger.info(f'training done at iteration {final_iter:,}; latest weights: {opt["path"]["models"]}/net_g_latest.pth')
    return opt


def main():
    """The command line: one ``error: ...`` line and status 2 for a problem the user can fix, 1 for a
    training stopped by a non-finite loss."""
    def train_or_stop():
        try:
            train_pipeline()
        except LossNotFiniteError as err:
            print(f'error: {err}', file=sys.stderr)
            sys.exit(1)
    report_user_errors(train_or_stop)


if __name__ == '__main__':
    main()
