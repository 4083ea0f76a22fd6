"""Logging to the console and a log file, with the environment recorded at start."""
import datetime
import logging
import platform
import sys

import torch

from basicsr.utils.dist_util import get_dist_info

LOGGER_NAME = 'basicsr'


def get_root_logger(log_file=None, log_level=logging.INFO):
    """The project logger; the first call with ``log_file`` adds a file handler.

    Ranks other than 0 only log errors, so N processes do not print N copies.
    """
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter('%(asctime)s %(levelname)s: %(message)s', '%H:%M:%S'))
        logger.addHandler(stream)
        logger.propagate = False
    rank, _ = get_dist_info()
    logger.setLevel(log_level if rank == 0 else logging.ERROR)
    if log_file is not None and rank == 0:
        handler = logging.FileHandler(log_file, 'w', encoding='utf-8')
        handler.setFormatter(logging.Formatter('%(asctime)s %(levelname)s: %(message)s'))
        logger.addHandler(handler)
    return logger


def close_file_handlers():
    """Detach file handlers so a second run in the same process logs to its own file."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in [h for h in logger.handlers if isinstance(h, logging.FileHandler)]:
        handler.close()
        logger.removeHandler(handler)


def get_env_info():
    import basicsr
    cuda = (f'{torch.version.cuda}, {torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}'
            if torch.cuda.is_available() else 'not available')
    return (f'\n  fiscnet/basicsr {basicsr.__version__}, Python {sys.version.split()[0]}, '
            f'PyTorch {torch.__version__}, CUDA {cuda}'
            f'\n  {platform.platform()}, {torch.get_num_threads()} CPU threads')


def get_time_str():
    return datetime.datetime.now().strftime('%Y%m%d_%H%M%S')
