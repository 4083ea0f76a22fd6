"""Finding images in folders and pairing them by file stem (``01.png`` with ``01.jpg``)."""
from pathlib import Path

from basicsr.utils.errors import InputError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm', '.pnm')


def list_images(folder):
    """Map stem -> path for the image files directly inside ``folder``.

    Files whose extension is not an image extension (``Thumbs.db``, ``.txt``) and hidden files
    are ignored.

    Raises:
        InputError: the folder does not exist, holds no image, or two images share a stem.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f'{folder}: folder not found; check the path')
    images = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith('.') or path.suffix.lower() not in IMAGE_EXTENSIONS or not path.is_file():
            continue
        if path.stem in images:
            raise InputError(f'{folder}: two images share the stem "{path.stem}" '
                             f'({images[path.stem].name}, {path.name}); keep one of them')
        images[path.stem] = path
    if not images:
        raise InputError(f'{folder}: no image files ({", ".join(IMAGE_EXTENSIONS)}) in this folder')
    return images


def pair_by_stem(folders):
    """Pair the images of several folders by stem.

    Args:
        folders (dict[str, str | Path]): role -> folder, e.g. ``{'ir': 'a/ir', 'vi': 'a/vi'}``.

    Returns:
        list[tuple[str, dict[str, Path]]]: ``(stem, {role: path})``, sorted by stem.

    Raises:
        InputError: a folder is missing or empty, or a stem lacks a partner in another folder
            (the message lists the stems).
    """
    listed = {role: list_images(folder) for role, folder in folders.items()}
    all_stems = set().union(*(imgs.keys() for imgs in listed.values()))
    for role, imgs in listed.items():
        missing = sorted(all_stems - imgs.keys())
        if missing:
            shown = ', '.join(missing[:10]) + (f' and {len(missing) - 10} more' if len(missing) > 10 else '')
            raise InputError(f'{folders[role]}: no {role} image for {len(missing)} stem(s) found in the other '
                             f'folder(s): {shown}; add the partners or remove those files')
    return [(stem, {role: listed[role][stem] for role in listed}) for stem in sorted(all_stems)]
