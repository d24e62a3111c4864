# Copyright (c) mmsimmm contributors. All rights reserved.
"""Day/dark feature similarity of task models, per feature level.

For every checkpoint, the images of a config's dataloader and darkened
copies of them go through the task model; the mean cosine similarity of
the two feature maps (L2-normalised along channels, per location, then
averaged, as in the darkening-stage similarity loss) is reported per
feature level. A model adapted with Similarity Min-Max should keep the
features of darkened images closer to the day features than the day-only
model does.

Darkening: a trained darkener (``--darkener``; exposure levels from
``--exposure`` or drawn from ``--exposure-range``, with the adaptation
stage's exposure-map noise unless ``--noise off``) or the synthetic
physics-based degradation (``--degrade``,
:func:`mmsimmm.datasets.transforms.low_light.degrade_low_light`). The
same darkened images are used for every checkpoint.

Features: the outputs of ``--modules`` (default ``backbone``); a
ResNet/ConvNeXt/Swin backbone is rebuilt with all four ``out_indices``
(``--out-indices`` to choose). Works for plain task configs and SimMinMax
configs (their ``task_model``); SimMinMax checkpoints load into the task
model.

Outputs in ``--out-dir``: ``feature_similarity.md`` (table),
``feature_similarity.csv`` and ``feature_similarity.png`` (feature level
on the x axis, similarity on the y axis, one line per checkpoint).

Example::

    python tools/analysis_tools/feature_similarity.py \\
        configs/classification/simminmax_resnet18_codan.py \\
        --checkpoints work_dirs/day.pth work_dirs/simminmax/iter_40000.pth \\
        --labels day-only simminmax \\
        --darkener work_dirs/simminmax/iter_5000.pth \\
        --split test --num-images 200 --out-dir work_dirs/similarity
"""
import argparse
import copy
import csv
import os
import os.path as osp
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint

from mmsimmm.apis import build_darkener, exposure_input
from mmsimmm.datasets.transforms.low_light import (
    degrade_frames,
    degrade_low_light,
)
from mmsimmm.models.darkeners import sample_exposure
from mmsimmm.models.utils import FeatureRecorder, PixelSpace
from mmsimmm.registry import MODELS
from mmsimmm.utils import allow_trusted_checkpoints
from mmsimmm.utils.checkpoint_check import load_strictly
from mmsimmm.utils.cli import add_exposure_arguments, check_exposure_arguments
from mmsimmm.utils.runner_setup import load_config

OUT_NAME = 'feature_similarity'
#: Backbone families rebuilt with all four stages as outputs by default.
MULTI_STAGE_BACKBONES = ('ResNet', 'ConvNeXt', 'Swin')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Mean cosine similarity between the features of day '
        'images and their darkened versions, per feature level, for one or '
        'more checkpoints.')
    parser.add_argument('config', help='task or SimMinMax config')
    parser.add_argument(
        '--checkpoints', nargs='+', required=True, help='checkpoints')
    parser.add_argument(
        '--labels',
        nargs='+',
        help='one label per checkpoint (default: file names)')
    dark = parser.add_mutually_exclusive_group(required=True)
    dark.add_argument(
        '--darkener',
        help='darkener checkpoint (converted or SimMinMax training '
        'checkpoint; "none" = untrained, meaningless)')
    dark.add_argument(
        '--degrade',
        action='store_true',
        help='darken with the synthetic LowLightDegradation instead')
    add_exposure_arguments(parser, exposure='one', noise_std=False)
    parser.add_argument(
        '--modules',
        nargs='+',
        default=['backbone'],
        help='task-model modules whose outputs are compared (default '
        'backbone)')
    parser.add_argument(
        '--out-indices',
        type=int,
        nargs='+',
        help='backbone out_indices (default: all 4 stages of ResNet / '
        'ConvNeXt / Swin backbones, else the config\'s)')
    parser.add_argument(
        '--split',
        choices=('train', 'val', 'test'),
        default='val',
        help='dataloader of the config to read (default val)')
    parser.add_argument(
        '--num-images',
        type=int,
        default=100,
        help='number of images (clips) to use (default 100)')
    parser.add_argument(
        '--batch-size', type=int, help='default: the dataloader\'s')
    parser.add_argument('--num-workers', type=int, default=2)
    parser.add_argument('--device', default='cpu', help='torch device')
    parser.add_argument(
        '--out-dir',
        default=osp.join('work_dirs', OUT_NAME),
        help='output folder')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. '
        'val_dataloader.dataset.data_root=data/night')
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """Raise on bad arguments before any work starts."""
    if args.labels is None:
        args.labels = [
            osp.splitext(osp.basename(path))[0] for path in args.checkpoints
        ]
    if len(args.labels) != len(args.checkpoints):
        raise ValueError(f'got {len(args.labels)} --labels for '
                         f'{len(args.checkpoints)} --checkpoints')
    if len(set(args.labels)) != len(args.labels):
        raise ValueError(f'--labels must be unique, got {args.labels}')
    for path in args.checkpoints:
        if not osp.isfile(path):
            raise FileNotFoundError(f'checkpoint not found: {path}')
    if args.num_images < 1:
        raise ValueError(f'--num-images must be >= 1, got {args.num_images}')
    check_exposure_arguments(args)
    if args.exposure is not None:
        args.exposure_range = (args.exposure, args.exposure)


# ----------------------------------------------------------------------
# model
def task_model_cfg(cfg: Config,
                   out_indices: Optional[Sequence[int]]) -> dict:
    """The task model's config (SimMinMax: ``task_model``).

    Merges a top-level ``data_preprocessor`` as the Runner does and sets
    the backbone's ``out_indices``.
    """
    model = copy.deepcopy(cfg.model)
    preprocessor = cfg.get('data_preprocessor')
    if str(model.get('type', '')).endswith('SimMinMax'):
        model = model['task_model']
    if preprocessor is not None:
        model.setdefault('data_preprocessor', preprocessor)
    backbone = model.get('backbone')
    if isinstance(backbone, dict):
        if out_indices is not None:
            backbone['out_indices'] = tuple(out_indices)
        elif any(name in str(backbone.get('type', ''))
                 for name in MULTI_STAGE_BACKBONES):
            backbone['out_indices'] = tuple(
                range(backbone.get('num_stages', 4)))
    return model


def load_task_weights(model: torch.nn.Module, path: str) -> None:
    """Load a task or SimMinMax checkpoint into the task model, strictly.

    SimMinMax's own parts (``darkener.*``, ``adapt_head.*``) are ignored; every
    task key must match (:func:`mmsimmm.utils.checkpoint_check.
    load_strictly`).

    Raises:
        CheckpointMismatchError: Naming every missing, unexpected and
            wrongly shaped task key with both shapes.
    """
    result = load_strictly(
        model, _load_checkpoint(path, map_location='cpu'), path)
    print(f'{path}: {result.summary()}')


def build_models(cfg: Config, args: argparse.Namespace
                 ) -> Dict[str, torch.nn.Module]:
    """Label -> task model with the checkpoint's weights, in eval mode."""
    model_cfg = task_model_cfg(cfg, args.out_indices)
    models = {}
    for label, path in zip(args.labels, args.checkpoints):
        model = MODELS.build(copy.deepcopy(model_cfg))
        load_task_weights(model, path)
        models[label] = model.to(args.device).eval()
    return models


# ----------------------------------------------------------------------
# darkening
def make_darken_fn(args: argparse.Namespace
                   ) -> Tuple[Callable[[torch.Tensor], torch.Tensor], str]:
    """``fn(rgb) -> darkened rgb`` (same shape, [0, 1]) and a description.

    ``rgb`` is ``(N, 3, H, W)``, ``(N, 3, T, H, W)`` or
    ``(N, K, 3, T, H, W)``; one exposure level / degradation draw per
    image or clip.
    """
    generator = torch.Generator().manual_seed(args.seed)
    if args.degrade:
        rng = np.random.default_rng(args.seed)

        def degrade(rgb: torch.Tensor) -> torch.Tensor:
            if rgb.dim() == 4:
                return degrade_low_light(rgb.cpu(), rng).to(rgb.device)
            clips = rgb.reshape(-1, *rgb.shape[-4:]).cpu()  # (M, C, T, H, W)
            out = []
            for clip in clips:
                frames = [f.permute(1, 2, 0).numpy() for f in clip.unbind(1)]
                dark, _ = degrade_frames(frames, rng)
                out.append(
                    torch.from_numpy(np.stack(dark)).permute(3, 0, 1, 2))
            return torch.stack(out).reshape(rgb.shape).to(rgb)

        return degrade, 'synthetic LowLightDegradation'

    darkener = build_darkener(args.darkener, args.device)

    def darken(rgb: torch.Tensor) -> torch.Tensor:
        num = rgb.shape[0]
        levels = sample_exposure(num, args.exposure_range,
                                 generator=generator)
        exposure = exposure_input(levels, rgb.shape[-2:], generator,
                                  args.noise_cfg)
        with torch.no_grad():
            return darkener(rgb, exposure.to(rgb.device)).clamp(0, 1)

    low, high = args.exposure_range
    level = f'E = {low:g}' if low == high else f'E ~ U({low:g}, {high:g})'
    noise = ' + noise' if args.noise_cfg is not None else ''
    return darken, (f'darkener {osp.basename(args.darkener)}, '
                    f'{level}{noise}')


# ----------------------------------------------------------------------
# similarity
def per_sample_cosine(day: torch.Tensor, dark: torch.Tensor) -> torch.Tensor:
    """Cosine along dim 1, averaged over the remaining positions."""
    if day.shape != dark.shape or day.dim() < 2:
        raise ValueError(f'feature shapes {tuple(day.shape)} and '
                         f'{tuple(dark.shape)} differ or lack channels')
    cosine = (F.normalize(day.float(), dim=1) *
              F.normalize(dark.float(), dim=1)).sum(1)
    return cosine.reshape(cosine.shape[0], -1).mean(1)


def record(recorders: Sequence[FeatureRecorder], model: torch.nn.Module,
           inputs: torch.Tensor) -> List[List[torch.Tensor]]:
    """The tensors of every recorded module (one forward per module)."""
    return [
        recorder.run(lambda: model(inputs, mode='tensor'))
        for recorder in recorders
    ]


def level_names(modules: Sequence[str],
                features: Sequence[Sequence[torch.Tensor]]) -> List[str]:
    """``module`` or ``module[i]`` names of the recorded tensors."""
    names = []
    for module, tensors in zip(modules, features):
        names += ([module] if len(tensors) == 1 else
                  [f'{module}[{i}]' for i in range(len(tensors))])
    return names


@torch.no_grad()
def measure(models: Dict[str, torch.nn.Module], loader,
            darken_fn: Callable, args: argparse.Namespace
            ) -> Tuple[List[str], Dict[str, List[float]], int]:
    """Mean similarity per level for every model.

    Returns:
        tuple: level names, label -> mean similarity per level, number of
        images used.
    """
    first = next(iter(models.values()))
    pixel_space = PixelSpace(first.data_preprocessor)
    recorders = {
        label: [FeatureRecorder(model, [module]) for module in args.modules]
        for label, model in models.items()
    }
    sums: Dict[str, torch.Tensor] = {}
    names: List[str] = []
    count = 0
    for batch in loader:
        data = first.data_preprocessor(batch, False)
        inputs = data['inputs'] if isinstance(data, dict) else data
        if not isinstance(inputs, torch.Tensor):
            raise TypeError('the data preprocessor gives '
                            f'{type(inputs).__name__} inputs; only image or '
                            'clip tensors are supported')
        inputs = inputs[:args.num_images - count]
        rgb = pixel_space.to_unit_rgb(inputs).clamp(0, 1)
        dark_inputs = pixel_space.from_unit_rgb(darken_fn(rgb))
        for label, model in models.items():
            day = record(recorders[label], model, inputs)
            dark = record(recorders[label], model, dark_inputs)
            names = names or level_names(args.modules, day)
            values = torch.stack([
                per_sample_cosine(a, b).reshape(len(inputs), -1).mean(1)
                for day_module, dark_module in zip(day, dark)
                for a, b in zip(day_module, dark_module)
            ])  # (levels, N)
            sums[label] = sums.get(label, 0) + values.sum(1).cpu()
        count += len(inputs)
        if count >= args.num_images:
            break
    if count == 0:
        raise ValueError(f'the {args.split} dataloader gave no images')
    means = {label: (sums[label] / count).tolist() for label in models}
    return names, means, count


# ----------------------------------------------------------------------
# outputs
def write_table(path_stem: str, names: Sequence[str],
                means: Dict[str, List[float]], header: str) -> None:
    """Write ``<stem>.md`` and ``<stem>.csv``."""
    labels = list(means)
    lines = [header, '', '| feature level | ' + ' | '.join(labels) + ' |',
             '|---|' + '---:|' * len(labels)]
    for i, name in enumerate(names):
        cells = ' | '.join(f'{means[label][i]:.4f}' for label in labels)
        lines.append(f'| {name} | {cells} |')
    with open(path_stem + '.md', 'w', encoding='utf-8') as file:
        file.write('\n'.join(lines) + '\n')
    with open(path_stem + '.csv', 'w', newline='', encoding='utf-8') as file:
        writer = csv.writer(file)
        writer.writerow(['feature_level'] + labels)
        for i, name in enumerate(names):
            writer.writerow([name] +
                            [f'{means[label][i]:.6f}' for label in labels])


def y_limits(values: Sequence[float]) -> Tuple[float, float]:
    """A y range around the data, at least 0.1 wide, inside [-1, 1.05]."""
    low, high = min(values), max(values)
    margin = max(0.03, 0.15 * (high - low))
    low, high = max(-1.0, low - margin), min(1.05, high + margin)
    if high - low < 0.1:
        low = max(-1.0, high - 0.1)
    return low, high


def plot(path: str, names: Sequence[str], means: Dict[str, List[float]],
         title: str) -> None:
    """Line plot: feature level vs similarity, one line per checkpoint."""
    fig = Figure(figsize=(max(6.0, 1.3 * len(names) + 2.5), 4.5), dpi=120,
                 layout='constrained')
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    positions = np.arange(len(names))
    for index, (label, values) in enumerate(means.items()):
        ax.plot(positions, values, marker='o', linewidth=2, label=label)
        for x, y in zip(positions, values):
            # alternate above/below so that close values stay readable
            ax.annotate(
                f'{y:.3f}', (x, y),
                textcoords='offset points',
                xytext=(0, 7 if index % 2 == 0 else -14),
                ha='center',
                fontsize=8)
    ax.set_xticks(positions, names)
    ax.set_xlim(-0.5, len(names) - 0.5)
    ax.set_ylim(*y_limits([v for vals in means.values() for v in vals]))
    ax.set_xlabel('feature level (module output)')
    ax.set_ylabel('mean cosine similarity\nday vs. darkened features')
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(title='checkpoint')
    canvas.print_png(path)


def build_loader(cfg: Config, args: argparse.Namespace):
    """The config's dataloader of ``--split``, in a fixed order."""
    key = f'{args.split}_dataloader'
    if cfg.get(key) is None:
        raise KeyError(f'{cfg.filename} has no {key}')
    loader_cfg = copy.deepcopy(cfg[key])
    loader_cfg['sampler'] = dict(type='DefaultSampler', shuffle=False)
    loader_cfg['num_workers'] = args.num_workers
    loader_cfg['persistent_workers'] = False
    if args.batch_size is not None:
        loader_cfg['batch_size'] = args.batch_size
    return Runner.build_dataloader(loader_cfg, seed=args.seed)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, List[float]]:
    """Measure, print and save the similarities.

    Returns:
        dict: Label -> mean similarity per feature level.
    """
    args = parse_args(argv)
    check_args(args)
    allow_trusted_checkpoints()
    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    torch.manual_seed(args.seed)
    models = build_models(cfg, args)
    darken_fn, method = make_darken_fn(args)
    loader = build_loader(cfg, args)
    names, means, count = measure(models, loader, darken_fn, args)

    os.makedirs(args.out_dir, exist_ok=True)
    stem = osp.join(args.out_dir, OUT_NAME)
    header = (f'Day/dark feature similarity: {osp.basename(args.config)}, '
              f'{args.split} split, {count} images, {method}.')
    write_table(stem, names, means, header)
    plot(stem + '.png', names, means,
         f'Day vs. darkened feature similarity\n{count} {args.split} '
         f'images, {method}')
    with open(stem + '.md', encoding='utf-8') as file:
        print(file.read())
    print(f'wrote {stem}.md, .csv and .png')
    return means


if __name__ == '__main__':
    main(sys.argv[1:])
