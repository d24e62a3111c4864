# Copyright (c) mmsimmm contributors. All rights reserved.
"""How well a darkener's output brightness follows the requested exposure.

Darkens every image at each exposure level E (a constant exposure map, no
exposure-map noise) and prints ``E | mean brightness | std | mean - E``
plus the largest ``|mean - E|`` over ``--range``. An exposure-guided
darkener should give a mean brightness close to E.

Brightness: the mean over channels and pixels of the darkener's raw output
``D(I, E)`` (not clamped), per image: the quantity the darkening stage's
exposure-control loss pulls to E (``ExposureControlLoss`` averages
``(mean_c Y - E)^2`` over pixels; the mean of ``mean_c Y`` over the pixels
is the value below). ``mean`` / ``std`` are over the images.

Images: every image under a folder (``--images``, recursive) or the
dataset of a config's dataloader (``--config``; ``--split`` overrides the
dataset's ``split``, e.g. ``val`` or ``test_day`` of
``configs/demo/*.py``). The darkener: any checkpoint that
:func:`mmsimmm.apis.load_darkener` reads (a SimMinMax training checkpoint
or a converted official darkener).

Example::

    python tools/analysis_tools/exposure_following.py \\
        --checkpoint work_dirs/demo/simminmax/iter_800.pth \\
        --config configs/demo/simminmax.py --split test_day \\
        --exposure 0.02 0.05 0.1 0.2 0.3 0.5 --range 0.05 0.3 \\
        --json work_dirs/demo/exposure_following.json
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, Iterable, Iterator, List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from torch import Tensor

from mmsimmm.apis import build_darkener
from mmsimmm.registry import DATASETS
from mmsimmm.utils.cli import add_darkener_checkpoint_argument
from mmsimmm.utils.file_io import find_files, read_rgb

DEFAULT_EXPOSURES = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
DEFAULT_RANGE = (0.05, 0.3)
DATALOADERS = ('train', 'val', 'test')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Mean output brightness of a darkener at several '
        'exposure levels E (the quantity its exposure-control loss pulls '
        'to E), and the largest |mean - E| over a range of E.')
    add_darkener_checkpoint_argument(parser)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        '--images', help='folder of images (searched recursively)')
    source.add_argument(
        '--config',
        help='config whose dataloader dataset gives the images (its '
        'img_path entries)')
    parser.add_argument(
        '--dataloader',
        choices=DATALOADERS,
        default='val',
        help='with --config: the <name>_dataloader to read (default val)')
    parser.add_argument(
        '--split',
        help='with --config: override the dataset\'s split, e.g. val or '
        'test_day of configs/demo/ (default: the config\'s)')
    parser.add_argument(
        '--exposure',
        type=float,
        nargs='+',
        default=list(DEFAULT_EXPOSURES),
        help='exposure levels in [0, 1] (default '
        f'{" ".join(map(str, DEFAULT_EXPOSURES))})')
    parser.add_argument(
        '--range',
        type=float,
        nargs=2,
        default=list(DEFAULT_RANGE),
        metavar=('LOW', 'HIGH'),
        help='max |mean - E| is taken over the levels in [LOW, HIGH] '
        f'(default {DEFAULT_RANGE[0]} {DEFAULT_RANGE[1]})')
    parser.add_argument(
        '--num-images',
        type=int,
        help='use only the first N images (default: all)')
    parser.add_argument(
        '--batch-size', type=int, default=50, help='images per batch')
    parser.add_argument('--device', default='cpu', help='torch device')
    parser.add_argument('--json', help='also write the results to this file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. '
        'val_dataloader.dataset.data_root=data/synthetic_day_night')
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """Raise on bad arguments before any work starts."""
    for level in args.exposure:
        if not 0 <= level <= 1:
            raise ValueError(f'--exposure levels must be in [0, 1], got '
                             f'{level}')
    if len(set(args.exposure)) != len(args.exposure):
        raise ValueError(f'--exposure lists a level twice: {args.exposure}')
    low, high = args.range
    if not 0 <= low <= high <= 1:
        raise ValueError(f'--range must satisfy 0 <= LOW <= HIGH <= 1, got '
                         f'{low} {high}')
    if not any(low <= level <= high for level in args.exposure):
        raise ValueError(f'no --exposure level lies in --range {low} {high}')
    if args.num_images is not None and args.num_images < 1:
        raise ValueError(f'--num-images must be >= 1, got {args.num_images}')
    if args.batch_size < 1:
        raise ValueError(f'--batch-size must be >= 1, got {args.batch_size}')
    if args.images is not None:
        if not osp.isdir(args.images):
            raise FileNotFoundError(f'--images folder not found: '
                                    f'{args.images}')
        if args.split is not None:
            raise ValueError('--split works with --config only')
    elif not osp.isfile(args.config):
        raise FileNotFoundError(f'--config not found: {args.config}')
    if args.checkpoint.lower() != 'none' and not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'--checkpoint not found: {args.checkpoint}')


def config_image_paths(config: str,
                       dataloader: str = 'val',
                       split: Optional[str] = None,
                       cfg_options: Optional[dict] = None) -> List[str]:
    """The image files of a config's dataloader dataset.

    Args:
        config (str): The config file.
        dataloader (str): ``'train'``, ``'val'`` or ``'test'``. Defaults to
            'val'.
        split (str, optional): Overrides the dataset's ``split``. Defaults
            to None.
        cfg_options (dict, optional): Config overrides. Defaults to None.

    Returns:
        list[str]: ``img_path`` of every sample, in dataset order.
    """
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    key = f'{dataloader}_dataloader'
    if not isinstance(cfg.get(key), dict) or 'dataset' not in cfg[key]:
        raise KeyError(f'{config} has no {key}.dataset')
    dataset_cfg = cfg[key].dataset.copy()
    if split is not None:
        dataset_cfg['split'] = split
    dataset_cfg['pipeline'] = []
    dataset = DATASETS.build(dataset_cfg)
    paths = []
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        if 'img_path' not in info:
            raise KeyError(f'{key}.dataset sample {index} has no img_path')
        paths.append(info['img_path'])
    if not paths:
        raise ValueError(f'{key}.dataset of {config} is empty')
    return paths


def image_batches(paths: Sequence[str],
                  batch_size: int) -> Iterator[torch.Tensor]:
    """``(N, 3, H, W)`` RGB batches in [0, 1]; a new batch at each size."""
    batch: List[np.ndarray] = []
    for path in paths:
        rgb = read_rgb(path)
        if batch and (len(batch) == batch_size
                      or rgb.shape != batch[0].shape):
            yield torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2) / 255
            batch = []
        batch.append(rgb)
    if batch:
        yield torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2) / 255


@torch.no_grad()
def output_brightness(darkener: torch.nn.Module, batches: Iterable[Tensor],
                      exposures: Sequence[float]) -> Dict[str, np.ndarray]:
    """Per-image mean brightness of the input and of ``D(I, E)``.

    Args:
        darkener (nn.Module): ``darkener(img, level) -> darkened``.
        batches (Iterable[Tensor]): RGB batches ``(N, 3, H, W)`` in [0, 1].
        exposures (Sequence[float]): Exposure levels.

    Returns:
        dict[str, np.ndarray]: ``'input'`` and ``str(E)`` for each level ->
        the mean over channels and pixels of each image.
    """
    device = next(darkener.parameters()).device
    means = {'input': []}
    means.update({str(level): [] for level in exposures})
    for batch in batches:
        batch = batch.to(device)
        means['input'].append(batch.mean(dim=(1, 2, 3)).cpu())
        for level in exposures:
            dark = darkener(batch, float(level))
            means[str(level)].append(dark.mean(dim=(1, 2, 3)).cpu())
    return {key: torch.cat(values).double().numpy()
            for key, values in means.items()}


def following_table(brightness: Dict[str, np.ndarray],
                    exposures: Sequence[float],
                    exposure_range: Sequence[float]) -> dict:
    """Summarise :func:`output_brightness`.

    Args:
        brightness (dict[str, np.ndarray]): Its output.
        exposures (Sequence[float]): The levels it was run with.
        exposure_range (Sequence[float]): ``(low, high)`` of the levels
            that ``max_abs_error`` is taken over.

    Returns:
        dict: ``num_images``, ``input`` (mean, std), ``rows`` (``exposure,
        mean, std, error = mean - E`` per level), ``range`` and
        ``max_abs_error``.
    """
    def stats(values: np.ndarray) -> dict:
        std = float(values.std(ddof=1)) if values.size > 1 else 0.0
        return dict(mean=float(values.mean()), std=std)

    rows = []
    for level in exposures:
        row = dict(exposure=float(level), **stats(brightness[str(level)]))
        row['error'] = row['mean'] - float(level)
        rows.append(row)
    low, high = exposure_range
    in_range = [abs(r['error']) for r in rows if low <= r['exposure'] <= high]
    return dict(
        num_images=int(brightness['input'].size),
        input=stats(brightness['input']),
        rows=rows,
        range=[float(low), float(high)],
        max_abs_error=max(in_range))


def format_table(table: dict) -> str:
    """The summary as a markdown table plus the max-error line."""
    lines = [
        '| E | mean brightness | std | mean - E |', '|---:|---:|---:|---:|',
        f'| input | {table["input"]["mean"]:.3f} | '
        f'{table["input"]["std"]:.3f} | |'
    ]
    for row in table['rows']:
        lines.append(f'| {row["exposure"]:g} | {row["mean"]:.3f} | '
                     f'{row["std"]:.3f} | {row["error"]:+.3f} |')
    low, high = table['range']
    lines.append(f'\nmax |mean - E| for E in [{low:g}, {high:g}]: '
                 f'{table["max_abs_error"]:.3f} '
                 f'({table["num_images"]} images)')
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    check_args(args)
    if args.images is not None:
        paths = find_files(args.images)
        if not paths:
            raise FileNotFoundError(f'no images under {args.images}')
        paths = [osp.join(args.images, path) for path in paths]
        source = args.images
    else:
        paths = config_image_paths(args.config, args.dataloader, args.split,
                                   args.cfg_options)
        source = f'{args.config} ({args.dataloader}_dataloader' + (
            f', split {args.split})' if args.split else ')')
    if args.num_images is not None:
        paths = paths[:args.num_images]
    darkener = build_darkener(args.checkpoint, args.device)
    brightness = output_brightness(
        darkener, image_batches(paths, args.batch_size), args.exposure)
    table = following_table(brightness, args.exposure, args.range)
    table.update(checkpoint=args.checkpoint, images=source)
    print(f'darkener {args.checkpoint} on {source}: mean over channels '
          'and pixels of the raw output D(I, E), mean / std over images')
    print(format_table(table))
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(table, f, indent=2)
        print(f'wrote {args.json}')
    return table


if __name__ == '__main__':
    main()
