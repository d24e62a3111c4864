# Copyright (c) mmsimmm contributors. All rights reserved.
"""Convert torchvision-style / official CODaN ResNet checkpoints to mmpretrain.

Accepted layouts (the state dict may be bare or under ``'state_dict'``, with
or without a ``module.`` prefix on every key):

* ``torchvision``: ``conv1``, ``bn1``, ``layer{1..4}.*``, ``fc`` (a torchvision
  ResNet, the CODaN baseline, or the plain model of the official SimMinMax
  classification code);
* ``zsda_byol``: the official SimMinMax BYOL wrapper, keys ``resnet.*``
  (online network, kept), ``encoder_k.*``, ``head_q.*``, ``head_k.*`` and
  ``pred.*`` (target network, projectors and predictor, dropped).

The output is an MMEngine checkpoint ``{'state_dict', 'meta'}`` for an
mmpretrain ``ImageClassifier`` with ``ResNet(depth, style='pytorch')``,
``GlobalAveragePooling`` and ``LinearClsHead``: ``<rest>`` becomes
``backbone.<rest>`` and ``fc.*`` becomes ``head.fc.*``. The keys and shapes
are checked against mmpretrain's ``ResNet`` before anything is written, and
the written file is read back and checked to load strictly into that
``ImageClassifier`` (:func:`build_classifier`) before it takes its name. A
10-class head gets ``meta['dataset_meta']['classes']`` = the CODaN classes.

Example::

    python tools/model_converters/codan_resnet_to_mmpretrain.py \\
        model_best.pt checkpoints/simminmax_r18_codan.pth --num-classes 10
"""
import argparse
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, Optional, Sequence, Tuple

import torch

from mmsimmm.datasets.codan import CODAN_CLASSES
from mmsimmm.utils.checkpoint_check import listed
from mmsimmm.utils.checkpoint_io import (
    add_converter_arguments,
    load_source_state,
    run_converter,
    save_verified,
)

BYOL_ONLINE = 'resnet.'
BYOL_PREFIXES = (BYOL_ONLINE, 'encoder_k.', 'head_q.', 'head_k.', 'pred.')
_BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'
TORCHVISION_KEY = re.compile(
    r'^(conv1\.weight'
    rf'|bn1\.{_BN}'
    r'|layer[1-4]\.\d+\.(conv[1-3]\.weight'
    rf'|bn[1-3]\.{_BN}'
    r'|downsample\.0\.weight'
    rf'|downsample\.1\.{_BN})'
    r'|fc\.(weight|bias))$')
# (blocks per stage, bottleneck) -> depth of the torchvision ResNets.
DEPTHS = {
    ((2, 2, 2, 2), False): 18,
    ((3, 4, 6, 3), False): 34,
    ((3, 4, 6, 3), True): 50,
    ((3, 4, 23, 3), True): 101,
    ((3, 8, 36, 3), True): 152,
}


def select_resnet(state: Dict[str, torch.Tensor],
                  path: str) -> Tuple[str, Dict[str, torch.Tensor]]:
    """Detect the layout and return the torchvision-named online ResNet.

    Args:
        state (Dict[str, torch.Tensor]): The bare state dict.
        path (str): The file name, for messages.

    Returns:
        Tuple[str, Dict[str, torch.Tensor]]: ``'zsda_byol'`` or
        ``'torchvision'``, and the ResNet's state dict.
    """
    layout = 'torchvision'
    if any(k.startswith(BYOL_ONLINE) for k in state):
        layout = 'zsda_byol'
        unexpected = [k for k in state if not k.startswith(BYOL_PREFIXES)]
        if unexpected:
            raise ValueError(
                f'{path}: keys outside the BYOL wrapper layout '
                f'{BYOL_PREFIXES}: {listed(unexpected)}.')
        state = {
            k[len(BYOL_ONLINE):]: v
            for k, v in state.items() if k.startswith(BYOL_ONLINE)
        }
    unexpected = [k for k in state if not TORCHVISION_KEY.match(k)]
    if unexpected:
        hint = (' It looks converted already.' if any(
            k.startswith(('backbone.', 'head.')) for k in unexpected) else '')
        raise ValueError(
            f'{path}: not a torchvision-style ResNet ({layout} layout); '
            f'unexpected keys: {listed(unexpected)}.{hint}')
    return layout, state


def infer_depth(state: Dict[str, torch.Tensor], path: str) -> int:
    """Infer the ResNet depth from the number of blocks per stage."""
    blocks = []
    for stage in range(1, 5):
        indices = {
            int(k.split('.')[1])
            for k in state if k.startswith(f'layer{stage}.')
        }
        blocks.append(max(indices) + 1 if indices else 0)
    bottleneck = any('.conv3.' in k for k in state)
    key = (tuple(blocks), bottleneck)
    if key not in DEPTHS:
        raise ValueError(f'{path}: {blocks} blocks per stage '
                         f'(bottleneck={bottleneck}) match no ResNet depth.')
    return DEPTHS[key]


def convert(state: Dict[str, torch.Tensor],
            path: str,
            num_classes: Optional[int] = None) -> Tuple[OrderedDict, int, int]:
    """Rename to mmpretrain ``ImageClassifier`` keys and check them.

    Args:
        state (Dict[str, torch.Tensor]): A torchvision-named ResNet.
        path (str): The file name, for messages.
        num_classes (int, optional): Required rows of ``fc``. Defaults to
            None (any).

    Returns:
        Tuple[OrderedDict, int, int]: The new state dict, the depth and the
        number of classes.
    """
    from mmpretrain.models import ResNet

    if 'fc.weight' not in state or 'fc.bias' not in state:
        raise ValueError(f'{path}: fc.weight/fc.bias missing; a classifier '
                         'checkpoint is required.')
    rows = state['fc.weight'].shape[0]
    if num_classes is not None and rows != num_classes:
        raise ValueError(f'{path}: fc.weight has {rows} rows, but '
                         f'--num-classes is {num_classes}.')
    depth = infer_depth(state, path)
    reference = ResNet(depth=depth, style='pytorch').state_dict()
    backbone = {k: v for k, v in state.items() if not k.startswith('fc.')}
    missing = [k for k in reference if k not in backbone]
    extra = [k for k in backbone if k not in reference]
    if missing or extra:
        raise ValueError(f'{path}: ResNet-{depth} keys differ from '
                         f'mmpretrain: missing {listed(missing)}; '
                         f'unexpected {listed(extra)}.')
    wrong = [
        f'{k} {tuple(v.shape)} != {tuple(reference[k].shape)}'
        for k, v in backbone.items() if v.shape != reference[k].shape
    ]
    in_channels = 512 if depth < 50 else 2048
    if state['fc.weight'].shape[1:] != (in_channels, ):
        wrong.append(f'fc.weight {tuple(state["fc.weight"].shape)}')
    if wrong:
        raise ValueError(f'{path}: shapes differ from mmpretrain ResNet-'
                         f'{depth}: {listed(wrong)}.')
    converted = OrderedDict()
    for key, value in state.items():
        if key.startswith('fc.'):
            converted[f'head.{key}'] = value
        else:
            converted[f'backbone.{key}'] = value
    return converted, depth, rows


def build_classifier(depth: int, num_classes: int) -> torch.nn.Module:
    """The mmpretrain classifier the converted weights are for.

    ``ImageClassifier`` with ``ResNet(depth, style='pytorch')``,
    ``GlobalAveragePooling`` and ``LinearClsHead`` (the model of
    ``configs/classification/resnet18_1xb32_codan.py`` for depth 18 and 10
    classes).

    Args:
        depth (int): ResNet depth.
        num_classes (int): Rows of the ``fc`` layer.

    Returns:
        nn.Module: A randomly initialised classifier.
    """
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    from mmpretrain.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(
            dict(
                type='ImageClassifier',
                backbone=dict(type='ResNet', depth=depth, style='pytorch'),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(
                    type='LinearClsHead',
                    num_classes=num_classes,
                    in_channels=512 if depth < 50 else 2048)))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a torchvision-style ResNet or an official '
        'SimMinMax (CODaN) BYOL checkpoint to an mmpretrain ImageClassifier '
        'checkpoint.')
    add_converter_arguments(parser, 'source checkpoint',
                            'output checkpoint (.pth)')
    parser.add_argument(
        '--num-classes',
        type=int,
        help='required number of fc rows, e.g. 10 for CODaN '
        '(default: accept what the checkpoint has)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the tool; see ``--help``."""
    args = parse_args(argv)
    checkpoint, state = load_source_state(args.src, args.dst, args.force,
                                          args.allow_pickle)
    layout, resnet = select_resnet(state, args.src)
    converted, depth, num_classes = convert(resnet, args.src,
                                            args.num_classes)
    meta = dict(
        converted_from=osp.basename(args.src),
        source_layout=layout,
        depth=depth,
        num_classes=num_classes)
    if 'epoch' in checkpoint and isinstance(checkpoint['epoch'], int):
        meta['source_epoch'] = checkpoint['epoch']
    if num_classes == len(CODAN_CLASSES):
        meta['dataset_meta'] = dict(classes=list(CODAN_CLASSES))
    # (mmpretrain's ResNet cannot be built on the meta device)
    target = build_classifier(depth, num_classes).state_dict()
    save_verified(
        dict(state_dict=converted, meta=meta), args.dst, target,
        f'ImageClassifier(ResNet-{depth}, {num_classes} classes)')
    dropped = len(state) - len(converted)
    print(f'{args.src} ({layout}, ResNet-{depth}, {num_classes} classes): '
          f'wrote {len(converted)} tensors to {args.dst}, dropped {dropped}.')


if __name__ == '__main__':
    run_converter(main)
