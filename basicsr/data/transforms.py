"""Random crops, flips and transposes applied identically to every image of a training sample."""
from basicsr.utils.errors import InputError


def paired_random_crop(images, size, rng, source):
    """Crop the same ``size`` x ``size`` window from every image.

    Args:
        images (dict[str, np.ndarray]): role -> (H, W, C) array, all of one size.
        size (int): crop height and width.
        rng (np.random.Generator): draws the window's corner.
        source (str | Path): the file named in the error message.

    Raises:
        InputError: the images are smaller than ``size``.
    """
    height, width = next(iter(images.values())).shape[:2]
    if height < size or width < size:
        raise InputError(f'{source}: {width}x{height} is smaller than the training crop gt_size {size}; '
                         'lower gt_size or remove the pair')
    top = int(rng.integers(0, height - size + 1))
    left = int(rng.integers(0, width - size + 1))
    return {role: img[top:top + size, left:left + size] for role, img in images.items()}


def paired_random_flip(images, rng, hflip=True, vflip=True, transpose=True):
    """Flip horizontally, vertically and transpose (each with probability 1/2) all images alike.

    Together the three give the 8 rotations and reflections of the square crop. The three coins
    are always drawn, so the switches do not change the random stream of later draws.
    """
    do_hflip, do_vflip, do_transpose = rng.random(3) < 0.5
    out = {}
    for role, img in images.items():
        if hflip and do_hflip:
            img = img[:, ::-1]
        if vflip and do_vflip:
            img = img[::-1]
        if transpose and do_transpose:
            img = img.transpose(1, 0, 2)
        out[role] = img
    return out
