"""Copying the next training batch to the GPU while the current one is being trained on."""
import torch

from basicsr.utils.errors import OptionError


def cuda_prefetch(loader, device):
    """Iterate over ``loader``'s batches already on ``device``, the next one copied on a side stream.

    The loader should pin its memory (``pin_memory: true``) so the copies are asynchronous.
    """
    stream = torch.cuda.Stream(device)

    def to_device(batch):
        with torch.cuda.stream(stream):
            return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}

    batches = iter(loader)
    upcoming = next(batches, None)
    upcoming = to_device(upcoming) if upcoming is not None else None
    while upcoming is not None:
        current_stream = torch.cuda.current_stream(device)
        current_stream.wait_stream(stream)
        for value in upcoming.values():
            if torch.is_tensor(value):
                # The tensors were made on the side stream; tell the allocator the main stream uses them.
                value.record_stream(current_stream)
        batch = upcoming
        upcoming = next(batches, None)
        upcoming = to_device(upcoming) if upcoming is not None else None
        yield batch


def prefetch(loader, prefetch_mode, device):
    """The batches of ``loader`` for ``prefetch_mode`` None (as they come) or ``'cuda'``.

    Raises:
        OptionError: an unknown mode, or ``'cuda'`` without a CUDA device.
    """
    if prefetch_mode is None:
        return iter(loader)
    if prefetch_mode != 'cuda':
        raise OptionError(f"prefetch_mode: {prefetch_mode!r} is not valid; use ~ (none) or cuda "
                          '(CPU-side prefetching is num_worker_per_gpu)')
    if device.type != 'cuda':
        raise OptionError('prefetch_mode: cuda needs a CUDA device; set prefetch_mode: ~ on the CPU')
    return cuda_prefetch(loader, device)
