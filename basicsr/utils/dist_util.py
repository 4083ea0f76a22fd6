"""Distributed set-up for processes started by torchrun (``--launcher pytorch``) or slurm's srun."""
import os
import subprocess

import torch
import torch.distributed as dist
from torch.utils.data import Subset

from basicsr.utils.options import option_value


def _slurm_environment(port):
    """Translate slurm's variables into the ones torch.distributed's env:// method reads."""
    node_list = os.environ['SLURM_NODELIST']
    master = subprocess.check_output(['scontrol', 'show', 'hostnames', node_list], text=True).split()[0]
    os.environ.setdefault('MASTER_ADDR', master)
    os.environ.setdefault('MASTER_PORT', str(port))
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['LOCAL_RANK'] = os.environ['SLURM_LOCALID']


def init_dist(launcher, backend, port):
    """Join the process group; ``backend`` None: nccl with CUDA, gloo without; ``port``: slurm's rendezvous."""
    if launcher == 'slurm':
        _slurm_environment(port)
    elif launcher != 'pytorch':
        raise ValueError(f"unknown launcher '{launcher}'; use none, pytorch or slurm")
    if backend is None:
        backend = 'nccl' if torch.cuda.is_available() else 'gloo'
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count())
    dist.init_process_group(backend=backend)


def close_dist():
    """Leave the process group: a process that exits with it open can abort (gloo threads still live)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def get_dist_info():
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_dist_from_options(opt, launcher):
    """Start the process group when asked and record ``dist``, ``rank``, ``world_size`` in ``opt``."""
    opt['dist'] = launcher != 'none'
    if opt['dist']:
        params = opt.get('dist_params') or {}
        init_dist(launcher, params.get('backend'), option_value(opt, 'dist_params.port'))
    opt['rank'], opt['world_size'] = get_dist_info()


def barrier():
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def shard_for_this_rank(dataset):
    """Every ``world_size``-th item of ``dataset``, starting at this rank (the whole set in one process)."""
    rank, world_size = get_dist_info()
    if world_size == 1:
        return dataset
    return Subset(dataset, range(rank, len(dataset), world_size))


def gather_to_all(obj):
    """The list of ``obj`` from every process, in rank order (``[obj]`` in one process)."""
    _, world_size = get_dist_info()
    if world_size == 1:
        return [obj]
    gathered = [None] * world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def master_only(func):
    """Run ``func`` on rank 0 only (logging, saving)."""
    def wrapper(*args, **kwargs):
        if get_dist_info()[0] == 0:
            return func(*args, **kwargs)
        return None
    return wrapper
