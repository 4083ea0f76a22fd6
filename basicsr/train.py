"""The training loop behind ``python train.py -opt options/train/FISCNet.yml [--auto_resume]``.

Several GPUs or nodes: torchrun --nproc_per_node N train.py -opt ... --launcher pytorch
(or srun ... --launcher slurm); the same option file runs on 1 or N processes.
"""
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from basicsr.data import build_dataset, build_test_loader, loader_workers, usable_cores
from basicsr.data.prefetcher import prefetch
from basicsr.data.sampler import EnlargedSampler
from basicsr.metrics.set_scorer import metric_names_from_options
from basicsr.models import build_model, check_model_options
from basicsr.models.fusion_model import LossNotFiniteError
from basicsr.utils.dist_util import close_dist, get_dist_info, init_dist_from_options
from basicsr.utils.errors import InputError, Interrupted, OptionError, WriteError, report_user_errors
from basicsr.utils.experiment import copy_option_file, make_run_dirs, release_run_locks
from basicsr.utils.logger import close_file_handlers, get_env_info, get_root_logger, get_time_str
from basicsr.utils.options import dict_to_yaml, option_value, parse_options
from basicsr.utils.process_settings import run_settings
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
    ratio = set_opt.get('dataset_enlarge_ratio', 1)
    sampler = EnlargedSampler(len(dataset), world_size, rank, ratio, seed, set_opt.get('use_shuffle', True))
    batch_size = set_opt.get('batch_size_per_gpu', 4)
    if len(sampler) < batch_size:
        raise OptionError(f'datasets.train: {len(dataset)} pairs x dataset_enlarge_ratio {ratio} over {world_size} '
                          f'process(es) is less than one batch of {batch_size}; raise dataset_enlarge_ratio or '
                          'lower batch_size_per_gpu')
    requested = set_opt.get('num_worker_per_gpu', 'auto')
    workers = loader_workers(requested)
    if requested not in ('auto', workers):
        get_root_logger().info(f'datasets.train.num_worker_per_gpu: {requested} -> {workers}, this process\'s '
                               f'share of the {usable_cores()} cores')
    # Crops are seeded by the sampler's keys; this generator only keeps the loader off the global RNG.
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=True,
                        pin_memory=set_opt.get('pin_memory', device.type == 'cuda'),
                        persistent_workers=workers > 0 and set_opt.get('persistent_workers', True),
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
    if not (opt.get('logger') or {}).get('use_tb_logger', True) or get_dist_info()[0] != 0:
        return None
    from torch.utils.tensorboard import SummaryWriter
    # purge_step drops events a stopped run wrote after its last state, so curves do not double back.
    return SummaryWriter(opt['path']['tb_logger'], purge_step=start_iter or None)


class Trainer:
    """The iteration loop: steps, logs, checkpoints and validations at their frequencies."""

    def __init__(self, opt, model, sampler, loader, prefetch_mode, val_loaders, tb_logger, logger):
        self.opt, self.model, self.sampler, self.loader = opt, model, sampler, loader
        self.prefetch_mode = prefetch_mode
        self.val_loaders, self.tb_logger, self.logger = val_loaders, tb_logger, logger
        self.rank, self.world_size = get_dist_info()
        self.total_iter = option_value(opt, 'train.total_iter')
        log_opt = opt.get('logger') or {}
        self.print_freq = int(log_opt.get('print_freq', 100))
        self.save_freq = int(log_opt.get('save_checkpoint_freq', 5000))
        self.val_opt = opt.get('val') or {}
        self.metric_names = metric_names_from_options(self.val_opt)
        self.val_freq = int(self.val_opt.get('val_freq', 5000)) if val_loaders else None
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
                    self.model.feed_data(data)
                    losses = self.model.optimize_parameters(current_iter)
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
            state = self.model.training_state(current_iter, epoch, position)
            state['rng'] = rng_states()
            path = save_training_state(state, self.opt['path']['training_states'])
            self.last_checkpoint = models / f'net_g_{current_iter}.pth'
            self.logger.info(f'saved net_g_{current_iter}.pth and {path.name}')

    def validate(self, current_iter):
        if self.rank == 0:
            grid_count = int(self.val_opt.get('grid_in_tensorboard', 4) or 0) if self.tb_logger else 0
            on_grid = (lambda tag, image: self.tb_logger.add_image(tag, image, current_iter, dataformats='HWC')) \
                if grid_count else None
            save_root = self.opt['path']['visualization'] if self.val_opt.get('save_img', True) else None
            results, improved = self.model.validation(
                self.val_loaders, current_iter, self.metric_names,
                option_value(self.opt, 'val.convention'), save_root, on_grid, grid_count)
            for set_name, means in results.items():
                scores = ' '.join(f'{name}: {value:.4f}' for name, value in means.items())
                self.logger.info(f'validation {set_name} at iter {current_iter:,}: {scores or "(no metrics)"}')
                if self.tb_logger is not None:
                    for name, value in means.items():
                        self.tb_logger.add_scalar(f'metrics/{set_name}/{name}', value, current_iter)
            for set_name, name, value in improved:
                self.logger.info(f'new best {name} on {set_name}: {value:.4f} -> net_g_best_{set_name}_{name}.pth')
        if self.opt['dist']:
            dist.barrier()


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
    init_dist_from_options(opt, args.launcher)
    try:
        with run_settings(opt, training=True):
            return train(opt, args)
    finally:
        close_file_handlers()
        release_run_locks()
        close_dist()


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
    trainer = Trainer(opt, model, sampler, loader, train_set_opt.get('prefetch_mode'), val_loaders, tb_logger, logger)
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
