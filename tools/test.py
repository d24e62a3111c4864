# Copyright (c) mmsimmm contributors. All rights reserved.
"""Test a checkpoint with any mmpretrain, mmseg, mmaction2 or mmsimmm config.

The checkpoint is loaded strictly, whatever the config (mmsimmm's
``CheckpointMatchHook``): a missing, unexpected or wrongly shaped key stops
the run before the first test iteration with one error naming each key and
both shapes. A SimMinMax checkpoint's own parts (``darkener.*``,
``adapt_head.*``) are ignored, and logged, when a plain task config scores it.

Examples::

    python tools/test.py CONFIG CHECKPOINT [--out results.pkl]
    bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [ARGS]
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

# importing mmsimmm checks versions and applies its compat patches (among
# them the allow-list that lets MMEngine checkpoints load weights_only)
from mmsimmm.utils.runner_setup import (
    add_dump_metric,
    add_launch_arguments,
    build_launch_runner,
    enable_visualization,
    finish_launch,
    load_launch_config,
    parse_launch_args,
)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse ``argv`` (default: ``sys.argv[1:]``); see ``--help``."""
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a checkpoint (mmpretrain, mmseg, '
        'mmaction2 or mmsimmm config).')
    parser.add_argument(
        'config',
        help='test config file path, or an installed package\'s config as '
        'in _base_, e.g. mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-'
        '512x1024.py')
    parser.add_argument(
        'checkpoint',
        help='checkpoint file; it must match the model key for key (list '
        'deliberate gaps with CheckpointMatchHook(skip_keys=...) in the '
        'config)')
    parser.add_argument(
        '--work-dir', help='the dir for logs and the metrics json')
    parser.add_argument(
        '--out', help='dump the raw predictions to this .pkl file')
    parser.add_argument(
        '--show-dir',
        help='save painted predictions to this dir (through the config\'s '
        'visualization hook)')
    add_launch_arguments(parser, 'test_dataloader.batch_size=1')
    return parse_launch_args(parser, argv)


def main(argv: Optional[List[str]] = None) -> dict:
    """Test the checkpoint named on the command line.

    Args:
        argv (list[str], optional): Arguments. Defaults to None
            (``sys.argv[1:]``).

    Returns:
        dict: The metrics of the test loop.
    """
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(
            f'checkpoint {args.checkpoint!r} does not exist')

    cfg = load_launch_config(args)
    cfg.load_from = args.checkpoint
    if args.out is not None:
        add_dump_metric(cfg, args.out)
    if args.show_dir is not None:
        enable_visualization(cfg, args.show_dir)

    runner = build_launch_runner(cfg)
    metrics = runner.test()
    finish_launch(cfg)
    return metrics


if __name__ == '__main__':
    main(sys.argv[1:])
