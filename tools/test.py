# Copyright (c) mmsimmm contributors. All rights reserved.
"""Test a checkpoint with any mmpretrain, mmseg, mmaction2 or mmsimmm config.

Examples::

    python tools/test.py CONFIG CHECKPOINT [--out results.pkl]
    bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [ARGS]
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

from mmengine.config import DictAction

# importing mmsimmm checks versions and applies its compat patches
from mmsimmm.utils import allow_trusted_checkpoints, setup_cpu_distributed
from mmsimmm.utils.runner_setup import (
    add_dump_metric,
    build_runner,
    enable_visualization,
    fix_persistent_workers,
    load_config,
    set_work_dir,
)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments. Defaults to None
            (``sys.argv[1:]``).

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a checkpoint (mmpretrain, mmseg, '
        'mmaction2 or mmsimmm config).')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir', help='the dir for logs and the metrics json')
    parser.add_argument(
        '--out', help='dump the raw predictions to this .pkl file')
    parser.add_argument(
        '--show-dir',
        help='save painted predictions to this dir (through the config\'s '
        'visualization hook)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. test_dataloader.batch_size=1 '
        'or key="[a,b]"; no white space inside a value')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank (torch>=2.0) or
    # --local_rank (older)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv: Optional[List[str]] = None) -> dict:
    """Test the checkpoint named on the command line.

    Args:
        argv (list[str], optional): Arguments. Defaults to None
            (``sys.argv[1:]``).

    Returns:
        dict: The metrics of the test loop.
    """
    args = parse_args(argv)
    # MMEngine checkpoints are full pickles: trusted, local ones only.
    allow_trusted_checkpoints()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(
            f'checkpoint {args.checkpoint!r} does not exist')

    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    set_work_dir(cfg, args.work_dir)
    cfg.load_from = args.checkpoint
    if args.out is not None:
        add_dump_metric(cfg, args.out)
    if args.show_dir is not None:
        enable_visualization(cfg, args.show_dir)
    fix_persistent_workers(cfg)
    setup_cpu_distributed(cfg, args.launcher)

    runner = build_runner(cfg)
    return runner.test()


if __name__ == '__main__':
    main(sys.argv[1:])
