# Copyright (c) mmsimmm contributors. All rights reserved.
"""Write a darkened copy of an mmseg / mmpretrain dataset tree.

This is the offline darkening of the official segmentation code (method
4.1): every selected image of SRC is darkened with a trained darkening
module and written to DST with the same relative path and format; every
other file (annotations, split lists, label PNGs) is copied, symlinked or
skipped (``--annotations``). An unchanged upstream config then trains on
the darkened data by changing ``data_root`` only.

Per image: one exposure level ``E ~ U(--exposure-range)`` (default 0 0.2)
and one pixel + patch exposure-noise map (sigma ``--noise-std`` 0.025,
patch ratio ``--patch-ratio`` 64, the official segmentation setting; use
16 for classification; the patch noise grid rounded with ``--patch-grid``,
default ceil), at the native resolution. The draws depend only on
``--seed`` and the relative path, so reruns are reproducible.

Which files are images to darken: files with an image extension below
the ``--include`` sub-folders (default: the whole tree), minus
``--exclude``, whose names end with one of ``--suffix`` (default: any).
Label PNGs must not be darkened: without ``--include``/``--suffix`` the
tool refuses trees with label-like folders (``gtFine``, ``ann_dir``...).

``--resize H W`` resizes each image (PIL LANCZOS) before darkening it,
so the copy has that resolution. ``--preset cityscapes-official`` sets the
official offline copy of the segmentation recipe: the Cityscapes train
images (``leftImg8bit/train``, ``*_leftImg8bit.png``) resized to 512x1024,
one E ~ U(0, 0.2) and one noise map (sigma 0.025, 64-pixel cells on a
floor grid, ``(H // 64, W // 64)``) per image, 8-bit PNG, nothing else
copied; options given explicitly override the preset. The segmentation
adaptation reads such a copy with ``mmsimmm.LoadPairedDarkImage``
(``the segmentation configs simminmax_refinenet_*_offline.py``).

Resumable: existing outputs are skipped; outputs appear only when
complete. The settings are stored in ``DST/.simminmax_darken.json`` and a
rerun with different settings is refused. Unreadable images are reported
at the end and skipped (exit code 1).

Examples::

    # Cityscapes: darken leftImg8bit, link gtFine
    python tools/darken_dataset.py data/cityscapes data/cityscapes_dark \\
        --checkpoint darkener.pth --include leftImg8bit \\
        --suffix _leftImg8bit.png --annotations link
    # the official offline dark copy of the segmentation recipe
    python tools/darken_dataset.py data/cityscapes data/cityscapes_dark \
        --checkpoint darkener.pth --preset cityscapes-official
    # an ImageNet-style classification tree (meta/*.txt are copied)
    python tools/darken_dataset.py data/codan data/codan_dark \\
        --checkpoint darkener.pth --patch-ratio 16
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import shutil
import sys
from typing import List, Optional, Sequence, Tuple

from mmengine.utils import ProgressBar

from mmsimmm.apis import build_darkener, darken_folder
from mmsimmm.utils.cli import (
    add_darkening_arguments,
    check_folder_arguments,
    parse_with_preset,
)
from mmsimmm.utils.file_io import (
    RunSummary,
    atomic_output,
    find_files,
    is_image,
)

SETTINGS_FILE = '.simminmax_darken.json'
#: Folder names that hold label maps in common segmentation layouts.
LABEL_FOLDERS = ('gtfine', 'gtcoarse', 'gt', 'ann_dir', 'annotations',
                 'labels', 'label', 'masks', 'mask', 'segmentationclass',
                 'segmentationclassaug', 'labeltrainids')
#: Option defaults of ``--preset NAME``; explicit options override them.
PRESETS = {
    # the offline copy the official segmentation numbers were trained on
    'cityscapes-official':
    dict(
        include=['leftImg8bit/train'],
        suffix=['_leftImg8bit.png'],
        annotations='skip',
        resize=[512, 1024],
        exposure_range=[0.0, 0.2],
        noise='on',
        noise_std=0.025,
        patch_ratio=64,
        patch_grid='floor'),
}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Darken the images of a dataset tree into a new root '
        'with identical relative paths; copy or link everything else.')
    parser.add_argument('src', help='source dataset root')
    parser.add_argument('dst', help='output dataset root')
    parser.add_argument(
        '--include',
        nargs='+',
        default=[],
        metavar='DIR',
        help='darken only images below these sub-folders of src')
    parser.add_argument(
        '--exclude',
        nargs='+',
        default=[],
        metavar='DIR',
        help='never darken images below these sub-folders of src')
    parser.add_argument(
        '--suffix',
        nargs='+',
        default=[],
        help='darken only images whose names end with one of these, e.g. '
        '_leftImg8bit.png')
    parser.add_argument(
        '--annotations',
        choices=('copy', 'link', 'skip'),
        default='copy',
        help='what to do with every file that is not darkened (default '
        'copy; link = symbolic links to the source files)')
    parser.add_argument(
        '--resize',
        type=int,
        nargs=2,
        default=None,
        metavar=('H', 'W'),
        help='resize every darkened image to H x W (PIL LANCZOS) first; '
        'the copy has this size (default: native size)')
    add_darkening_arguments(
        parser,
        patch_ratio=64,
        patch_ratio_note='64 is the official segmentation setting, use '
        '16 for classification',
        patch_grid=True)
    parser.add_argument(
        '--preset',
        choices=sorted(PRESETS),
        help='defaults of a known recipe (explicit options override them):'
        ' cityscapes-official = --include leftImg8bit/train --suffix '
        '_leftImg8bit.png --annotations skip --resize 512 1024 '
        '--exposure-range 0 0.2 --noise-std 0.025 --patch-ratio 64 '
        '--patch-grid floor')
    return parse_with_preset(parser, PRESETS, argv)


def copy_file(src: str, dst: str, mode: str) -> None:
    """Copy (``'copy'``) or symlink (``'link'``) a file atomically.

    Args:
        src (str): The source file.
        dst (str): The destination path.
        mode (str): ``'copy'`` (content and times) or ``'link'`` (a
            symbolic link to the absolute source path).
    """
    if mode not in ('copy', 'link'):
        raise ValueError(f"mode must be 'copy' or 'link', got {mode!r}")
    with atomic_output(dst) as temp:
        if mode == 'copy':
            shutil.copy2(src, temp)
        else:
            os.symlink(osp.abspath(src), temp)


def check_args(args: argparse.Namespace) -> None:
    """Raise on bad arguments before any work starts."""
    check_folder_arguments(args, 'source dataset root')
    if args.resize is not None and min(args.resize) < 1:
        raise ValueError(f'--resize needs a positive H W, got {args.resize}')
    noise = args.noise_cfg
    if (noise is not None and noise.grid == 'floor'
            and args.resize is not None
            and min(args.resize) < noise.patch_ratio):
        raise ValueError(
            f'--resize {args.resize[0]} {args.resize[1]} is smaller than '
            f'one {noise.patch_ratio}-pixel noise cell of --patch-grid '
            'floor; use a larger size, a smaller --patch-ratio or '
            '--patch-grid ceil')
    for option in ('include', 'exclude'):
        folders = []
        for folder in getattr(args, option):
            norm = osp.normpath(folder).replace(osp.sep, '/')
            if osp.isabs(folder) or norm.startswith('..'):
                raise ValueError(f'--{option} {folder} must be a sub-folder '
                                 'of src (a relative path)')
            if not osp.isdir(osp.join(args.src, norm)):
                raise FileNotFoundError(f'--{option} folder not found: '
                                        f'{osp.join(args.src, norm)}')
            folders.append(norm)
        setattr(args, option, folders)


def _below(rel: str, folders: Sequence[str]) -> bool:
    return any(folder in ('.', '') or rel.startswith(folder + '/')
               for folder in folders)


def split_files(args: argparse.Namespace) -> Tuple[List[str], List[str]]:
    """Relative paths of the images to darken and of the other files."""
    images, others = [], []
    for rel in find_files(args.src, images_only=False):
        selected = (
            is_image(rel) and (not args.include or _below(rel, args.include))
            and not _below(rel, args.exclude)
            and (not args.suffix or rel.endswith(tuple(args.suffix))))
        (images if selected else others).append(rel)
    if not images:
        raise FileNotFoundError(
            f'no images to darken below {args.src} (include '
            f'{args.include or "all"}, exclude {args.exclude}, suffix '
            f'{args.suffix or "any image extension"})')
    if not args.include and not args.suffix:
        labels = [
            rel for rel in images
            if any(part.lower() in LABEL_FOLDERS
                   for part in rel.split('/')[:-1])
        ]
        if labels:
            raise ValueError(
                f'{len(labels)} images lie in label-like folders (e.g. '
                f'{labels[0]}); label maps must not be darkened. Select the '
                'images with --include (e.g. leftImg8bit, img_dir) or '
                '--suffix (e.g. _leftImg8bit.png), or --exclude the label '
                'folders.')
    return images, others


def file_sha256(path: str) -> str:
    """SHA-256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, 'rb') as file:
        for block in iter(lambda: file.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def settings(args: argparse.Namespace) -> dict:
    """Everything that determines the darkened pixels."""
    untrained = args.checkpoint.lower() == 'none'
    current = dict(
        checkpoint_sha256='none (untrained)'
        if untrained else file_sha256(args.checkpoint),
        exposure_range=list(args.exposure_range),
        noise=None if args.noise_cfg is None else dict(
            std=args.noise_cfg.std,
            patch_ratio=args.noise_cfg.patch_ratio,
            grid=args.noise_cfg.grid),
        seed=args.seed)
    if args.resize is not None:  # absent: copies of earlier versions match
        current['resize'] = list(args.resize)
    return current


def check_settings(args: argparse.Namespace) -> None:
    """Record the settings in DST; refuse to mix different settings."""
    path = osp.join(args.dst, SETTINGS_FILE)
    current = settings(args)
    if osp.isfile(path):
        with open(path, encoding='utf-8') as file:
            stored = json.load(file)
        if isinstance(stored.get('noise'), dict):
            # copies of earlier versions used the ceil grid and did not
            # record it
            stored['noise'].setdefault('grid', 'ceil')
        if stored != current:
            raise ValueError(
                f'{args.dst} was written with other settings ({path}: '
                f'{stored}); now {current}. Use a new dst or the same '
                'settings.')
        return
    with open(path + '.tmp', 'w', encoding='utf-8') as file:
        json.dump(current, file, indent=2)
    os.replace(path + '.tmp', path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    check_args(args)
    images, others = split_files(args)
    if args.annotations == 'skip':
        others = []
    darkener = build_darkener(args.checkpoint, args.device)
    os.makedirs(args.dst, exist_ok=True)
    check_settings(args)

    progress = ProgressBar(len(images) + len(others), file=sys.stdout)
    summary = darken_folder(
        darkener,
        args.src,
        args.dst,
        images,
        exposure_range=args.exposure_range,
        noise=args.noise_cfg,
        seed=args.seed,
        resize=args.resize,
        on_file=progress.update)
    copies = RunSummary()
    for rel in others:
        dst = osp.join(args.dst, rel)
        if osp.lexists(dst):
            copies.skipped.append(rel)
        else:
            try:
                copy_file(osp.join(args.src, rel), dst, args.annotations)
                copies.done.append(rel)
            except OSError as error:
                copies.failed[osp.join(args.src, rel)] = str(error)
        progress.update()
    verb = dict(copy='copied', link='linked', skip='skipped')
    print(f'\nother files: {len(copies.done)} {verb[args.annotations]}, '
          f'{len(copies.skipped)} existing, {len(copies.failed)} failed')
    summary.failed.update(copies.failed)
    return summary.report('image(s) darkened', args.dst)


if __name__ == '__main__':
    raise SystemExit(main())
