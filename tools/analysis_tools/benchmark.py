# Copyright (c) mmsimmm contributors. All rights reserved.
"""Speed and peak memory of SimMinMax steps against the plain task step.

For a SimMinMax config of any toolkit (mmpretrain, mmseg, mmaction2) this
measures, in one process and interleaved (the kinds take turns, the order
rotating every repeat, so machine noise hits all alike):

- ``task``: the plain supervised ``train_step`` of ``model.task_model``
  with the task optimizer (``optim_wrapper.task``), the stock MMEngine
  path;
- ``darken``: the SimMinMax ``train_step`` of the darkening stage;
- ``adapt``: the SimMinMax ``train_step`` of the adaptation stage;
- ``darkener``: the darkening module's forward alone (eval mode, no
  autograd, adapt-stage exposure maps).

Inputs are synthetic random batches of the config's training crop and
batch size, in the toolkit's own format (no dataset needed); weights are
random (no checkpoint is read). Reported per kind: the median step time,
its IQR and min/max over ``--repeats`` steps (warm-up excluded), images/s,
the time ratios to ``task`` and the peak memory, measured in a fresh
child process per kind (CUDA: ``max_memory_allocated``; CPU: the growth
of the anonymous RSS plus the rise of the peak RSS ``VmHWM`` during the
steps, i.e. weights, optimizer state, batch and activations, not library
code). Writes ``benchmark.json`` and ``benchmark.md`` to ``--out-dir``.
On a shared CPU, ``--threads 1`` avoids the huge OpenMP stalls that an
oversubscribed machine inflicts on multi-threaded steps.

Examples::

    python tools/analysis_tools/benchmark.py \\
        configs/classification/simminmax_resnet18_codan.py \\
        --batch-size 16 --device cpu
    python tools/analysis_tools/benchmark.py \\
        configs/segmentation/\\
simminmax_pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py \\
        --shape 256 512 --repeats 12 --kinds task adapt
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import List, Optional

from mmengine.config import DictAction

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark_utils import (  # noqa: E402
    KINDS,
    format_markdown,
    run_benchmark,
)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse ``argv`` (default: ``sys.argv[1:]``); see ``--help``."""
    parser = argparse.ArgumentParser(
        description='Benchmark SimMinMax darken/adapt steps and the '
        'darkener forward against the plain supervised step.')
    parser.add_argument('config', help='a SimMinMax config (any toolkit)')
    parser.add_argument(
        '--kinds',
        nargs='+',
        choices=KINDS,
        default=list(KINDS),
        help='step kinds to measure (default: all; a plain task config '
        'allows only `task`)')
    parser.add_argument(
        '--device',
        help='cpu, cuda, cuda:1, ... (default: cuda if available)')
    parser.add_argument(
        '--batch-size',
        type=int,
        help='samples per batch (default: train_dataloader.batch_size)')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        help='input size: S, H W, or T H W for video (default: the '
        "config's training crop)")
    parser.add_argument(
        '--repeats', type=int, default=10, help='timed steps per kind')
    parser.add_argument(
        '--warmup',
        type=int,
        default=2,
        help='untimed steps per kind before timing')
    parser.add_argument(
        '--memory-steps',
        type=int,
        default=2,
        help='steps per peak-memory child process')
    parser.add_argument(
        '--no-memory',
        action='store_true',
        help='skip the peak-memory child processes')
    parser.add_argument(
        '--threads', type=int, help='torch.set_num_threads (default: torch)')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of weights and data')
    parser.add_argument(
        '--out-dir',
        help='where benchmark.json/.md go (default: '
        'work_dirs/benchmark/<config name>)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. model.darkener.map_downsample=2'
        '; no white space inside a value')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the benchmark and write the JSON and markdown files.

    Args:
        argv (list[str], optional): Arguments. Defaults to None
            (``sys.argv[1:]``).

    Returns:
        dict: The results written to ``benchmark.json``.
    """
    args = parse_args(argv)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file {args.config!r} does not exist')
    out_dir = args.out_dir or osp.join(
        'work_dirs', 'benchmark',
        osp.splitext(osp.basename(args.config))[0])
    results = run_benchmark(
        args.config,
        cfg_options=args.cfg_options,
        kinds=args.kinds,
        device=args.device,
        batch_size=args.batch_size,
        shape=args.shape,
        repeats=args.repeats,
        warmup=args.warmup,
        memory_steps=args.memory_steps,
        measure_memory=not args.no_memory,
        seed=args.seed,
        threads=args.threads)
    results['command'] = ' '.join(
        ['python', 'tools/analysis_tools/benchmark.py'] +
        list(sys.argv[1:] if argv is None else argv))
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, 'benchmark.json'), 'w') as f:
        json.dump(results, f, indent=2)
    table = format_markdown(results)
    with open(osp.join(out_dir, 'benchmark.md'), 'w') as f:
        f.write(table)
    print(table)
    print(f'written to {out_dir}/benchmark.{{json,md}}')
    return results


if __name__ == '__main__':
    main()
