# Copyright (c) mmsimmm contributors. All rights reserved.
"""Darken images with a trained darkening module.

INPUT is one image, a folder (searched recursively; outputs keep the
relative paths) or a list file (one path per line, relative to ``--root``;
only the first column is used, so mmpretrain ``meta/*.txt`` files work).
Outputs get the same names and extensions as the inputs (PNG stays
lossless, JPEG is written with quality 95).

Exposure: ``--exposure 0.05`` darkens to one level; several levels write
one copy per level into ``OUT/exposure_<level>/``; without ``--exposure``
each image gets a level drawn from ``--exposure-range`` (default 0 0.2,
the adaptation-stage range). ``--noise on`` (default) adds the pixel +
patch exposure-map noise of the adaptation stage (method 4.1). The draws
of an image depend only on ``--seed`` and its relative path.

``--sweep`` writes instead one PNG per input (``<stem>_sweep.png``): the
darkened image at several exposure levels (``--exposure`` or 5 levels
spread over ``--exposure-range``) with the curve map and the down-scale
map of each level as heat maps. Sweeps run on a copy whose longer side is
at most ``--sweep-size`` pixels.

Existing outputs are skipped (outputs are renamed into place only when
complete), so an interrupted run can be restarted. Unreadable images are
reported at the end and skipped; the exit code is then 1.

Examples::

    python tools/darken.py data/day/ work_dirs/dark --checkpoint d.pth
    python tools/darken.py img.jpg out/ --checkpoint d.pth --exposure 0.1
    python tools/darken.py data/imagenet/meta/val.txt out/ \\
        --root data/imagenet/val --checkpoint d.pth
    python tools/darken.py img.jpg out/ --checkpoint d.pth --sweep
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from mmengine.utils import ProgressBar

from mmsimmm.apis import (
    build_darkener,
    darken_image,
    darken_rgb,
    exposure_input,
    path_seed,
)
from mmsimmm.utils.cli import add_darkening_arguments, check_exposure_arguments
from mmsimmm.utils.file_io import (
    FILE_ERRORS,
    RunSummary,
    check_output_outside,
    find_files,
    is_image,
    read_rgb,
    write_rgb,
)
from mmsimmm.visualization import (
    Panel,
    channel_mean,
    display_size,
    render_panels,
)

SWEEP_LEVELS = 5
SWEEP_SUFFIX = '_sweep.png'


class Job(NamedTuple):
    """One input image and where its outputs go."""
    src: str
    rel: str
    # (exposure level or None = sampled, output path)
    outputs: List[Tuple[Optional[float], str]]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Darken an image, a folder (recursive) or a list of '
        'images with a trained darkening module (resumable).')
    parser.add_argument('input', help='an image, a folder, or a list file '
                        '(one image path per line)')
    parser.add_argument('out_dir', help='output folder')
    add_darkening_arguments(parser, exposure='many')
    parser.add_argument(
        '--root',
        help='folder the paths of a list file are relative to (default: '
        'the list file\'s folder)')
    parser.add_argument(
        '--sweep',
        action='store_true',
        help='write one PNG grid per image: darkened image, curve map and '
        'down-scale map at several exposure levels')
    parser.add_argument(
        '--sweep-size',
        type=int,
        default=768,
        help='longest image side used for --sweep (default 768)')
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """Raise on bad arguments before any work starts."""
    check_exposure_arguments(args)
    if args.sweep_size < 16:
        raise ValueError(f'--sweep-size must be >= 16, got '
                         f'{args.sweep_size}')


def check_unique_outputs(outputs: Dict[str, str]) -> None:
    """Raise if two inputs would be written to the same output.

    Args:
        outputs (Dict[str, str]): Input description -> output path.
    """
    seen: Dict[str, str] = {}
    for source, out in outputs.items():
        key = osp.normpath(out)
        if key in seen:
            raise ValueError(f'{seen[key]} and {source} would both be '
                             f'written to {out}')
        seen[key] = source


def read_list_file(path: str, root: str) -> List[Tuple[str, str]]:
    """``(absolute path, relative path)`` of the images of a list file.

    Blank lines and lines starting with ``#`` are ignored; a line that is
    not itself an existing file is read as ``<path> <other columns>``.

    Raises:
        FileNotFoundError | ValueError: Naming the offending lines.
    """
    entries, missing = [], []
    with open(path, encoding='utf-8') as file:
        for number, line in enumerate(file, 1):
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            rel = line
            if not osp.isfile(osp.join(root, rel)):
                rel = line.split()[0]
            norm = osp.normpath(rel)
            if osp.isabs(rel) or norm.startswith('..'):
                raise ValueError(f'{path} line {number}: {rel!r} must be a '
                                 f'path inside --root {root}')
            if not osp.isfile(osp.join(root, rel)):
                missing.append(f'line {number}: {rel}')
                continue
            entries.append((osp.join(root, rel), norm.replace(osp.sep, '/')))
    if missing:
        more = f' (and {len(missing) - 10} more)' if len(missing) > 10 else ''
        raise FileNotFoundError(
            f'{path}: {len(missing)} listed file(s) not found below {root}: '
            + '; '.join(missing[:10]) + more)
    if not entries:
        raise ValueError(f'{path} lists no images')
    return entries


def collect_inputs(args: argparse.Namespace) -> List[Tuple[str, str]]:
    """``(absolute path, relative path)`` of every input image."""
    source = args.input
    if osp.isdir(source):
        check_output_outside(source, args.out_dir, 'out_dir')
        rels = find_files(source)
        if not rels:
            raise FileNotFoundError(f'no images found below {source}')
        return [(osp.join(source, rel), rel) for rel in rels]
    if not osp.isfile(source):
        raise FileNotFoundError(f'input not found: {source}')
    if is_image(source):
        return [(source, osp.basename(source))]
    root = args.root or osp.dirname(osp.abspath(source))
    if not osp.isdir(root):
        raise FileNotFoundError(f'--root folder not found: {root}')
    return read_list_file(source, root)


def sweep_levels(args: argparse.Namespace) -> List[float]:
    """Levels of a sweep: ``--exposure`` or spread over the range."""
    if args.exposure:
        return list(args.exposure)
    low, high = args.exposure_range
    return [float(v) for v in np.linspace(low, high, SWEEP_LEVELS)]


def plan_jobs(args: argparse.Namespace) -> List[Job]:
    """The output paths of every input (raises on collisions)."""
    jobs = []
    for src, rel in collect_inputs(args):
        if args.sweep:
            stem = osp.splitext(rel)[0]
            outputs = [(None, osp.join(args.out_dir, stem + SWEEP_SUFFIX))]
        elif not args.exposure:
            outputs = [(None, osp.join(args.out_dir, rel))]
        elif len(args.exposure) == 1:
            outputs = [(args.exposure[0], osp.join(args.out_dir, rel))]
        else:
            outputs = [(level,
                        osp.join(args.out_dir, f'exposure_{level:g}', rel))
                       for level in args.exposure]
        jobs.append(Job(src, rel, outputs))
    check_unique_outputs({
        f'{job.src} ({level})': out
        for job in jobs for level, out in job.outputs
    })
    return jobs


def darken_one(darkener: torch.nn.Module, rgb: np.ndarray,
               level: Optional[float], args: argparse.Namespace,
               seed: int) -> np.ndarray:
    """Darken an image at ``level`` (None: sampled from the range)."""
    return darken_image(darkener, rgb, level, args.exposure_range,
                        args.noise_cfg, seed)


def sweep_figure(darkener: torch.nn.Module, rgb: np.ndarray, name: str,
                 args: argparse.Namespace, seed: int) -> np.ndarray:
    """The sweep grid of one image (see the module docstring)."""
    height, width = rgb.shape[:2]
    size = display_size(height, width, args.sweep_size)
    if size != (height, width):
        rgb = cv2.resize(rgb, size[::-1], interpolation=cv2.INTER_AREA)
    noise = 'with' if args.noise_cfg else 'without'
    rows: List[List[Optional[Panel]]] = [
        [Panel(rgb, f'day input ({width}x{height})')], [None], [None]
    ]
    for level in sweep_levels(args):
        generator = torch.Generator().manual_seed(seed)
        exposure = exposure_input(level, rgb.shape[:2], generator,
                                  args.noise_cfg)
        dark, curve, down_scale = darken_rgb(
            darkener, rgb, exposure, return_maps=True)
        rows[0].append(Panel(dark, f'darkened, E = {level:.3g}'))
        rows[1].append(
            Panel(channel_mean(curve), f'curve map, E = {level:.3g}',
                  'curve'))
        rows[2].append(
            Panel(
                channel_mean(down_scale), f'down-scale map, E = {level:.3g}',
                'down_scale'))
    return render_panels(
        rows,
        title=f'{name}: darkening sweep ({noise} exposure-map noise, '
        f'checkpoint {osp.basename(args.checkpoint)})',
        down_scale_floor=getattr(darkener, 'down_scale_floor', 0.95))


def process(job: Job, darkener: torch.nn.Module,
            args: argparse.Namespace) -> bool:
    """Write the missing outputs of a job; False if all existed."""
    todo = [(level, out) for level, out in job.outputs if not osp.isfile(out)]
    if not todo:
        return False
    rgb = read_rgb(job.src)
    seed = path_seed(args.seed, job.rel)
    for level, out in todo:
        if args.sweep:
            image = sweep_figure(darkener, rgb, job.rel, args, seed)
        else:
            image = darken_one(darkener, rgb, level, args, seed)
        write_rgb(out, image)
    return True


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    check_args(args)
    jobs = plan_jobs(args)
    darkener = build_darkener(args.checkpoint, args.device)

    summary = RunSummary()
    progress = ProgressBar(len(jobs), file=sys.stdout)
    for job in jobs:
        try:
            if process(job, darkener, args):
                summary.done.append(job.rel)
            else:
                summary.skipped.append(job.rel)
        except FILE_ERRORS as error:
            summary.failed[job.src] = str(error)
        progress.update()
    what = 'sweep grid(s) written' if args.sweep else 'image(s) darkened'
    return summary.report(what, args.out_dir)


if __name__ == '__main__':
    raise SystemExit(main())
