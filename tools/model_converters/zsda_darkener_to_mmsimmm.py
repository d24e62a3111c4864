# Copyright (c) mmsimmm contributors. All rights reserved.
"""Convert an official ZSDA darkening checkpoint to an mmsimmm one.

The source is the plain ``state_dict`` of the official darkening network
(``enhance_net_nopool_v2`` and its copies): ``e_conv{0..7}.depth_conv`` /
``point_conv`` weights and biases plus the buffers ``down_scale``,
``curve_round`` and (not in the action-recognition copy) ``encode_dim``;
a ``module.`` prefix is removed. Keys are renamed::

    e_conv{i}.depth_conv.* -> conv{i}.depthwise.*
    e_conv{i}.point_conv.* -> conv{i}.pointwise.*

Keys and shapes are checked first (one error lists every problem). The
output ``{'state_dict', 'meta': {'darkener_cfg', 'source'}}`` holds only
tensors and plain Python values; it is read back and checked to load
strictly into the ``DarkeningModule`` of ``darkener_cfg`` before it takes
its name. Load it with ``mmsimmm.apis.load_darkener``.

Example::

    python tools/model_converters/zsda_darkener_to_mmsimmm.py \\
        checkpoints/darkening/Epoch15.pth checkpoints/darkener_codan.pth
"""
import argparse
import os.path as osp
import pickle
from typing import Optional, Sequence

import torch

from mmsimmm.apis import convert_zsda_darkener
from mmsimmm.registry import MODELS
from mmsimmm.utils.checkpoint_io import (
    add_converter_arguments,
    check_outputs,
    save_verified,
    unpickling_culprit,
)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert an official ZSDA darkening checkpoint '
        '(plain state_dict) to an mmsimmm DarkeningModule checkpoint.')
    add_converter_arguments(
        parser,
        'official darkening checkpoint (.pth)',
        'output mmsimmm checkpoint',
        allow_pickle=False)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the conversion; returns 0 on success (errors raise)."""
    args = parse_args(argv)
    if not osp.isfile(args.src):
        raise FileNotFoundError(f'checkpoint not found: {args.src}')
    check_outputs(args.src, [args.dst], args.force)
    try:
        state_dict = torch.load(
            args.src, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f'{args.src} holds objects other than tensors and plain '
            f'containers ({unpickling_culprit(error)}); an official '
            'darkening checkpoint is a plain state_dict') from None
    state_dict, cfg = convert_zsda_darkener(state_dict, source=args.src)
    save_verified(
        dict(
            state_dict=state_dict,
            meta=dict(darkener_cfg=cfg, source=osp.basename(args.src))),
        args.dst,
        MODELS.build(cfg).state_dict(), f'DarkeningModule {cfg}')
    print(f'{args.src} -> {args.dst}: {len(state_dict)} entries, '
          f'darkener_cfg={cfg}')
    return 0


if __name__ == '__main__':
    main()
