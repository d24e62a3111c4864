# Copyright (c) mmsimmm contributors. All rights reserved.
"""Peak memory and step time of a SimMinMax ``adapt`` step against a plain
supervised step of the same segmentation model, on the CPU.

The ``adapt`` step darkens the batch on the fly with the frozen darkener,
runs the task model on the day and the dark view (BYOL features recorded)
and the EMA target on both views; the supervised step is one ordinary
``train_step`` of the bare task model with the same optimizer, batch and
crop. Every measurement runs in a fresh process: one warm-up step, then the
kernel's peak-RSS counter (``VmHWM``) is reset through
``/proc/self/clear_refs`` and ``--steps`` measured steps follow. Reported
per mode (medians over ``--repeats`` processes): the peak RSS, the RSS
before the measured steps, their difference (the memory the step itself
needs) and the step time. Linux only.

Example (ResNet-101 RefineNet at half the training crop)::

    python tools/analysis_tools/seg_memory.py \\
        configs/segmentation/simminmax_refinenet_darkzurich.py \\
        --depth 101 --crop 192 384 --batch 2 --repeats 3
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.config import DictAction

from mmsimmm.utils.runner_setup import load_config

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark_utils import measure_step_rss, median_ratios  # noqa: E402

MODES = ('supervised', 'adapt')
# the benchmark_utils step kind that measures each mode
KIND_OF_MODE = dict(supervised='task', adapt='adapt')
RESULT_TAG = 'SEG_MEMORY_RESULT '
# output channels of ResNet layer1..layer4
LEVEL_CHANNELS = {
    18: (64, 128, 256, 512),
    34: (64, 128, 256, 512),
    50: (256, 512, 1024, 2048),
    101: (256, 512, 1024, 2048),
    152: (256, 512, 1024, 2048),
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse ``argv`` (default: ``sys.argv[1:]``); see ``--help``."""
    parser = argparse.ArgumentParser(
        description='Peak RSS and step time of a SimMinMax adapt step vs a '
        'supervised step of the same segmentation model (CPU).')
    parser.add_argument('config', help='a SimMinMax segmentation config')
    parser.add_argument(
        '--depth',
        type=int,
        choices=sorted(LEVEL_CHANNELS),
        help='ResNet depth of the stand-in model (the head and BYOL '
        'projector widths follow); default: the config\'s')
    parser.add_argument(
        '--crop',
        type=int,
        nargs=2,
        default=(384, 768),
        metavar=('H', 'W'),
        help='crop size of the synthetic batch (default: 384 768)')
    parser.add_argument(
        '--batch', type=int, default=2, help='images per step (default: 2)')
    parser.add_argument(
        '--steps',
        type=int,
        default=2,
        help='measured steps after the warm-up step (default: 2)')
    parser.add_argument(
        '--repeats',
        type=int,
        default=3,
        help='fresh processes per mode; medians are reported (default: 3)')
    parser.add_argument(
        '--threads',
        type=int,
        default=1,
        help='torch CPU threads per process (default: 1)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        metavar='KEY=VALUE',
        help='override config settings, e.g. '
        'model.task_model.backbone.depth=50 (applied before --depth)')
    parser.add_argument(
        '--out', help='also write the summary as JSON to this file')
    parser.add_argument(
        '--worker',
        choices=MODES,
        help='internal: measure one mode in this process and print it')
    args = parser.parse_args(argv)
    for option in args.cfg_options:
        if '=' not in option:
            parser.error(f'--cfg-options needs KEY=VALUE, got {option!r}')
    if args.batch < 2:
        parser.error('--batch must be >= 2 (the BYOL heads use BatchNorm1d)')
    for name in ('steps', 'repeats', 'threads'):
        if getattr(args, name) < 1:
            parser.error(f'--{name} must be >= 1')
    if min(args.crop) < 32:
        parser.error(f'--crop must be at least 32x32, got {args.crop}')
    return args


# ------------------------------------------------------------ one process
def load_simminmax_config(path: str,
                          depth: Optional[int],
                          crop: Sequence[int],
                          cfg_options: Sequence[str] = ()):
    """Read a SimMinMax config; optionally swap in another ResNet depth.

    Args:
        path (str): The config file.
        depth (int, optional): ResNet depth replacing the config's; the
            head and BYOL projector input widths follow.
        crop (Sequence[int]): (H, W) the data preprocessor pads to.
        cfg_options (Sequence[str]): ``KEY=VALUE`` overrides, merged
            first. Defaults to ().

    Returns:
        Config: The config.
    """
    cfg = load_config(
        path, {
            key: DictAction._parse_iterable(value)
            for key, value in (option.split('=', 1)
                               for option in cfg_options)
        })
    model = cfg.get('model', {})
    if model.get('type') != 'mmsimmm.SimMinMax' or 'adapt_head' not in model:
        raise ValueError(f'{path}: model must be an mmsimmm.SimMinMax with '
                         f'`adapt_head`, got type {model.get("type")!r}')
    task = model.task_model
    task.backbone.init_cfg = None  # random weights, nothing downloaded
    task.data_preprocessor.size = tuple(crop)
    if depth is not None:
        task.backbone.depth = depth
        task.decode_head.in_channels = LEVEL_CHANNELS[depth]
        model.adapt_head.projector.in_channels = list(LEVEL_CHANNELS[depth])
    return cfg


def measure(args: argparse.Namespace) -> Dict[str, float]:
    """Measure one mode (``args.worker``) in this process.

    Returns:
        dict: ``peak_rss_mb``, ``rss_before_mb``, ``step_mb`` (peak minus
        the RSS before the measured steps) and ``step_s`` (median), from
        ``benchmark_utils.measure_step_rss``.
    """
    torch.set_num_threads(args.threads)
    cfg = load_simminmax_config(args.config, args.depth, args.crop,
                                args.cfg_options)
    return measure_step_rss(cfg, KIND_OF_MODE[args.worker], args.batch,
                            args.crop, args.steps)


# ------------------------------------------------------------ driver
def spawn(args: argparse.Namespace, mode: str) -> Dict[str, float]:
    """Run :func:`measure` for ``mode`` in a fresh Python process."""
    command = [
        sys.executable,
        osp.abspath(__file__), args.config, '--worker', mode, '--crop',
        *map(str, args.crop), '--batch',
        str(args.batch), '--steps',
        str(args.steps), '--threads',
        str(args.threads)
    ]
    if args.depth is not None:
        command += ['--depth', str(args.depth)]
    if args.cfg_options:
        command += ['--cfg-options', *args.cfg_options]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    raise RuntimeError(f'{mode} measurement failed (exit code '
                       f'{proc.returncode}):\n{proc.stderr[-3000:]}')


def summarize(runs: Dict[str, List[Dict[str, float]]]) -> dict:
    """Medians per mode and the adapt / supervised ratios."""
    return median_ratios(runs, 'adapt', 'supervised',
                         ('peak_rss_mb', 'step_mb', 'step_s'))


def main(argv: Optional[List[str]] = None) -> Optional[dict]:
    """Measure both modes (or one, with ``--worker``) and print the result.

    Args:
        argv (list[str], optional): Arguments. Defaults to None
            (``sys.argv[1:]``).

    Returns:
        dict, optional: The summary (None for ``--worker``).
    """
    args = parse_args(argv)
    if args.worker is not None:
        print(RESULT_TAG + json.dumps(measure(args)), flush=True)
        return None
    runs = {mode: [] for mode in MODES}
    for _ in range(args.repeats):
        for mode in MODES:  # interleaved: load changes hit both modes
            runs[mode].append(spawn(args, mode))
    summary = summarize(runs)
    summary['setup'] = dict(
        config=args.config,
        depth=args.depth,
        crop=list(args.crop),
        batch=args.batch,
        steps=args.steps,
        repeats=args.repeats,
        threads=args.threads,
        cfg_options=list(args.cfg_options))
    for mode, values in summary['medians'].items():
        print(f'{mode:>10}: ' + '  '.join(f'{key} {value:.2f}'
                                          for key, value in values.items()))
    print('adapt / supervised: ' + '  '.join(
        f'{key} x{value:.2f}' for key, value in summary['ratios'].items()))
    if args.out is not None:
        with open(args.out, 'w') as f:
            json.dump(summary, f, indent=2)
    return summary


if __name__ == '__main__':
    main(sys.argv[1:])
