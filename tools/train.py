# Copyright (c) mmsimmm contributors. All rights reserved.
"""Train with any mmpretrain, mmsegmentation, mmaction2 or mmsimmm config.

Examples::

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]]
    bash tools/dist_train.sh CONFIG GPUS [ARGS]
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

# importing mmsimmm checks versions and applies its compat patches (among
# them the allow-list that lets MMEngine checkpoints load weights_only)
from mmsimmm.utils.runner_setup import (
    add_launch_arguments,
    build_launch_runner,
    enable_amp,
    finish_launch,
    load_launch_config,
    parse_launch_args,
)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse ``argv`` (default: ``sys.argv[1:]``); see ``--help``."""
    parser = argparse.ArgumentParser(
        description='Train a model (mmpretrain, mmseg, mmaction2 or mmsimmm '
        'config).')
    parser.add_argument(
        'config',
        help='train config file path, or an installed package\'s config '
        'as in _base_ (pkg::path/to/config.py)')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint; without a path, resume from the '
        'latest checkpoint in the work dir')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='automatic mixed precision (needs a GPU); a multi-optimizer '
        'config gets AmpOptimWrapper on each sub-wrapper')
    add_launch_arguments(
        parser, 'train_cfg.stages.1.iters=10 (SimMinMax stage length; '
        'train_cfg.max_iters=10 for a plain config)')
    return parse_launch_args(parser, argv)


def main(argv: Optional[List[str]] = None) -> None:
    """Train the config named on the command line.

    Args:
        argv (list[str], optional): Arguments. Defaults to None
            (``sys.argv[1:]``).
    """
    args = parse_args(argv)
    if args.resume not in (None, 'auto') and not osp.isfile(args.resume):
        raise FileNotFoundError(f'--resume: {args.resume!r} does not exist')

    cfg = load_launch_config(args)
    if args.amp:
        enable_amp(cfg)
    if args.resume is not None:
        cfg.resume = True
        cfg.load_from = None if args.resume == 'auto' else args.resume

    runner = build_launch_runner(cfg)
    runner.train()
    finish_launch(cfg)


if __name__ == '__main__':
    main(sys.argv[1:])
