# Copyright (c) mmsimmm contributors. All rights reserved.
"""Extract the adapted task model from a SimMinMax training checkpoint.

A SimMinMax checkpoint stores the task model's weights without a prefix,
next to the darkening module (``darkener.*``), the BYOL heads and target
(``adapt_head.*``), an optional frozen feature model
(``darken_head.feature_model.*``),
and the optimizer, scheduler and message-hub states. The plain task config
loads it as it is, but MMEngine then lists every SimMinMax key as
unexpected. This tool writes ``{'state_dict', 'meta'}`` with the task
model's weights only: the checkpoint to test, fine-tune or deploy with the
upstream toolkit. ``meta`` keeps ``dataset_meta`` and the source's
iteration.

The output is exactly the task part of the SimMinMax state dict, which
SimMinMax stores as its task model's own ``state_dict()`` (flat keys), so it
loads strictly into the task model that was trained. ``--config`` (the
SimMinMax config of the run, or a plain task config) checks that before
the file takes its name: it is read back and matched strictly with the
config's task model; a mismatch names every key with both shapes and writes
nothing.

Checkpoints written by training are full pickles (message hub, RNG
states), so ``--allow-pickle`` is needed for them; only use it on files you
trust.

Example::

    python tools/model_converters/simmm_to_task_model.py \\
        work_dirs/simminmax_resnet18_codan/iter_32767.pth \\
        checkpoints/resnet18_codan_simminmax.pth --allow-pickle \\
        --config configs/classification/simminmax_resnet18_8xb32_in1k.py
"""
import argparse
import os.path as osp
from collections import Counter
from typing import Dict, Optional, Sequence, Tuple

import torch

from mmsimmm.utils.checkpoint_check import split_simminmax_parts
from mmsimmm.utils.checkpoint_io import (
    add_converter_arguments,
    load_source_state,
    run_converter,
    save_converted,
    save_verified,
)


def split_task_state(state: Dict[str, torch.Tensor], path: str
                     ) -> Tuple[Dict[str, torch.Tensor], Counter]:
    """Split a SimMinMax state dict into the task part and the rest.

    Args:
        state (dict[str, Tensor]): The checkpoint's state dict.
        path (str): Its file name, for messages.

    Returns:
        tuple[dict[str, Tensor], Counter]: The task model's entries, and
        how many entries of each SimMinMax prefix were dropped.

    Raises:
        ValueError: If the state dict has no ``darkener.*`` entry (not a
            SimMinMax checkpoint) or no task entry.
    """
    task, dropped = split_simminmax_parts(state)
    if not dropped['darkener.']:
        raise ValueError(f'{path} has no darkener.* weights, so it is not a '
                         'SimMinMax checkpoint; a task checkpoint needs no '
                         'extraction')
    if not task:
        raise ValueError(f'{path} holds only SimMinMax parts '
                         f'({", ".join(sorted(dropped))}), no task model')
    return task, dropped


def build_task_model(config: str) -> torch.nn.Module:
    """The task model of a config: ``model.task_model`` of a SimMinMax
    config, else ``model``.

    Args:
        config (str): A config file (or ``pkg::path`` of an installed
            package).

    Returns:
        nn.Module: The randomly initialised task model.
    """
    from mmengine.registry import MODELS, DefaultScope

    import mmsimmm.models  # noqa: F401  (registers SimMinMax's parts)
    from mmsimmm.utils.runner_setup import load_config

    cfg = load_config(config)
    model = cfg.model
    if str(model.get('type', '')).endswith('SimMinMax'):
        task = dict(model.task_model)
        if model.get('data_preprocessor') is not None:
            task.setdefault('data_preprocessor', model.data_preprocessor)
        model = task
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        return MODELS.build(model)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse ``argv`` (default: ``sys.argv[1:]``); see ``--help``."""
    parser = argparse.ArgumentParser(
        description='Write the task model of a SimMinMax checkpoint as a '
        'plain checkpoint for the upstream toolkit.')
    add_converter_arguments(parser, 'SimMinMax checkpoint',
                            'output checkpoint (.pth)')
    parser.add_argument(
        '--config',
        help='verify that the output loads strictly into the task model of '
        'this config (the SimMinMax config of the run, or the plain task '
        'config)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the tool; see ``--help``."""
    args = parse_args(argv)
    checkpoint, state = load_source_state(args.src, args.dst, args.force,
                                          args.allow_pickle)
    task, dropped = split_task_state(state, args.src)
    source_meta = checkpoint.get('meta')
    source_meta = source_meta if isinstance(source_meta, dict) else {}
    meta = dict(extracted_from=osp.basename(args.src))
    for key in ('dataset_meta', 'iter', 'epoch', 'experiment_name'):
        if key in source_meta:
            meta[key] = source_meta[key]
    output = dict(state_dict=task, meta=meta)
    if args.config is None:
        save_converted(output, args.dst)
    else:
        target = build_task_model(args.config).state_dict()
        save_verified(output, args.dst, target,
                      f'the task model of {args.config}')
    summary = ', '.join(f'{count} {prefix}*'
                        for prefix, count in sorted(dropped.items()))
    print(f'{args.src}: wrote {len(task)} task-model tensors to {args.dst}; '
          f'dropped {summary}.')


if __name__ == '__main__':
    run_converter(main)
