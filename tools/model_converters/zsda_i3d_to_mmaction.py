# Copyright (c) mmsimmm contributors. All rights reserved.
"""Convert official ZSDA / ARID ``Res_I3D`` checkpoints to mmaction2.

Accepted inputs (bare state dict or ``{'epoch', 'state_dict', ...}``, keys
with or without the ``module.`` prefix of DataParallel):

* ``res_i3d``: the day model ``Res_I3D`` (``conv1``, ``bn1``,
  ``layer{1..4}.*``, ``cls_head.fc_cls.*``; 320 entries for depth 50);
* ``res_i3d_byol``: the night model ``Res_I3D_BYOL``; the online network
  ``encoder_q.*`` is kept, ``encoder_k.*``, ``head_q.*``, ``head_k.*`` and
  ``pred.*`` (target network, projectors, predictor) are dropped.

Keys are renamed for an mmaction2 ``Recognizer3D`` with the ``i3d_r50``
``ResNet3d(depth=50)`` and an ``I3DHead``::

    conv1.weight                 -> backbone.conv1.conv.weight
    bn1.*                        -> backbone.conv1.bn.*
    layerS.B.conv{k}.weight      -> backbone.layerS.B.conv{k}.conv.weight
    layerS.B.bn{k}.*             -> backbone.layerS.B.conv{k}.bn.*
    layerS.B.downsample.0.weight -> backbone.layerS.B.downsample.conv.weight
    layerS.B.downsample.1.*      -> backbone.layerS.B.downsample.bn.*
    cls_head.fc_cls.*            -> cls_head.fc_cls.* (unchanged)

Before anything is written, the renamed keys and shapes are compared with
the mmaction2 model; unknown, missing or mis-shaped keys are reported
together in one error. The output ``{'state_dict', 'meta'}`` is read back
and checked to load strictly into that model before it takes its name, so
it loads with ``strict=True`` (``load_from`` or ``tools/test.py``).

Example::

    python tools/model_converters/zsda_i3d_to_mmaction.py \\
        ARID_RES_I3D_BYOL_ep-0010.pth checkpoints/zsda_i3d_r50_arid.pth
"""
import argparse
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import torch

import mmsimmm  # noqa: F401  (must precede mmaction.models)
from mmsimmm.datasets.arid import ARID_CLASSES
from mmsimmm.utils.checkpoint_check import listed
from mmsimmm.utils.checkpoint_io import (
    add_converter_arguments,
    check_outputs,
    load_checkpoint_dict,
    save_verified,
    unwrap_state_dict,
)

BYOL_ONLINE = 'encoder_q.'
BYOL_PREFIXES = (BYOL_ONLINE, 'encoder_k.', 'head_q.', 'head_k.', 'pred.')
_BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'
# (pattern, replacement) applied to official keys, first match wins.
KEY_RULES = (
    (re.compile(r'^conv1\.weight$'), r'backbone.conv1.conv.weight'),
    (re.compile(rf'^bn1\.{_BN}$'), r'backbone.conv1.bn.\1'),
    (re.compile(r'^(layer[1-4]\.\d+)\.conv([1-3])\.weight$'),
     r'backbone.\1.conv\2.conv.weight'),
    (re.compile(rf'^(layer[1-4]\.\d+)\.bn([1-3])\.{_BN}$'),
     r'backbone.\1.conv\2.bn.\3'),
    (re.compile(r'^(layer[1-4]\.\d+)\.downsample\.0\.weight$'),
     r'backbone.\1.downsample.conv.weight'),
    (re.compile(rf'^(layer[1-4]\.\d+)\.downsample\.1\.{_BN}$'),
     r'backbone.\1.downsample.bn.\2'),
    (re.compile(r'^cls_head\.fc_cls\.(weight|bias)$'),
     r'cls_head.fc_cls.\1'),
)
# mmaction2 `configs/_base_/models/i3d_r50.py` == official Res_I3D.
I3D_R50_BACKBONE = dict(
    type='ResNet3d',
    pretrained2d=False,
    pretrained=None,
    depth=50,
    conv1_kernel=(5, 7, 7),
    conv1_stride_t=2,
    pool1_stride_t=2,
    conv_cfg=dict(type='Conv3d'),
    norm_eval=False,
    inflate=((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0)),
    zero_init_residual=False)
_MAX_LISTED = 20


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert an official ZSDA Res_I3D / Res_I3D_BYOL '
        'checkpoint to an mmaction2 Recognizer3D (i3d_r50) checkpoint.')
    add_converter_arguments(parser, 'official checkpoint (.pth)',
                            'output mmaction2 checkpoint')
    return parser.parse_args(argv)


def load_state_dict(path: str,
                    allow_pickle: bool = False
                    ) -> Tuple[Dict[str, torch.Tensor], dict]:
    """Load the state dict of an official checkpoint.

    Args:
        path (str): The checkpoint file.
        allow_pickle (bool): Fully unpickle the file. Defaults to False.

    Returns:
        Tuple[Dict[str, torch.Tensor], dict]: The state dict with the
        ``module.`` prefix removed, and the other top-level entries.
    """
    checkpoint = load_checkpoint_dict(path, allow_pickle)
    extras = {}
    if 'state_dict' in checkpoint:
        extras = {k: v for k, v in checkpoint.items() if k != 'state_dict'}
    return unwrap_state_dict(checkpoint, path, _MAX_LISTED), extras


def select_online_network(
        state: Dict[str, torch.Tensor],
        path: str) -> Tuple[str, Dict[str, torch.Tensor]]:
    """Detect the layout and return the ``Res_I3D`` weights.

    Args:
        state (Dict[str, torch.Tensor]): The state dict without ``module.``.
        path (str): The file name, for messages.

    Returns:
        Tuple[str, Dict[str, torch.Tensor]]: ``'res_i3d_byol'`` or
        ``'res_i3d'``, and the (online) network's state dict.
    """
    if not any(key.startswith(BYOL_ONLINE) for key in state):
        return 'res_i3d', state
    unknown = [key for key in state if not key.startswith(BYOL_PREFIXES)]
    if unknown:
        raise ValueError(f'{path}: keys outside the Res_I3D_BYOL layout '
                         f'{BYOL_PREFIXES}: {listed(unknown, _MAX_LISTED)}')
    return 'res_i3d_byol', {
        key[len(BYOL_ONLINE):]: value
        for key, value in state.items() if key.startswith(BYOL_ONLINE)
    }


def rename_key(key: str) -> Optional[str]:
    """Return the mmaction2 name of an official key, or None if unknown."""
    for pattern, replacement in KEY_RULES:
        if pattern.match(key):
            return pattern.sub(replacement, key)
    return None


def build_reference(num_classes: int) -> Dict[str, torch.Tensor]:
    """State dict of the target mmaction2 Recognizer3D (random weights).

    Args:
        num_classes (int): Classes of the ``I3DHead``.

    Returns:
        Dict[str, torch.Tensor]: The target keys and shapes.
    """
    return build_recognizer(num_classes).state_dict()


def build_recognizer(num_classes: int) -> torch.nn.Module:
    """Build the mmaction2 Recognizer3D the converted weights are for.

    Args:
        num_classes (int): Classes of the ``I3DHead``.

    Returns:
        torch.nn.Module: A randomly initialised Recognizer3D.
    """
    from mmaction.registry import MODELS
    from mmaction.utils import register_all_modules
    from mmengine.registry import DefaultScope

    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmaction'):
        return MODELS.build(
            dict(
                type='Recognizer3D',
                backbone=I3D_R50_BACKBONE,
                cls_head=dict(
                    type='I3DHead',
                    num_classes=num_classes,
                    in_channels=2048)))


def convert(state: Dict[str, torch.Tensor], path: str) -> OrderedDict:
    """Rename an official ``Res_I3D`` state dict and check it.

    Args:
        state (Dict[str, torch.Tensor]): Official keys (no ``module.``).
        path (str): The file name, for messages.

    Returns:
        OrderedDict: The mmaction2 Recognizer3D state dict.

    Raises:
        ValueError: Listing unknown, missing and mis-shaped keys together.
    """
    converted = OrderedDict()
    unknown: List[str] = []
    for key, value in state.items():
        new_key = rename_key(key)
        if new_key is None:
            unknown.append(key)
        else:
            converted[new_key] = value
    fc = converted.get('cls_head.fc_cls.weight')
    reference = build_reference(fc.shape[0] if fc is not None else 11)
    missing = [key for key in reference if key not in converted]
    unexpected = [key for key in converted if key not in reference]
    wrong = [
        f'{key} {tuple(converted[key].shape)} != '
        f'{tuple(reference[key].shape)}' for key in converted
        if key in reference and converted[key].shape != reference[key].shape
    ]
    problems = []
    if unknown:
        problems.append(f'unknown keys: {listed(unknown, _MAX_LISTED)}')
    if unexpected:
        problems.append('keys absent from the mmaction2 model: '
                        f'{listed(unexpected, _MAX_LISTED)}')
    if missing:
        problems.append(f'missing keys (mmaction2 names): '
                        f'{listed(missing, _MAX_LISTED)}')
    if wrong:
        problems.append(f'shape mismatches: {listed(wrong, _MAX_LISTED)}')
    if problems:
        raise ValueError(f'{path} is not an official Res_I3D (depth 50) '
                         'checkpoint: ' + '; '.join(problems))
    return OrderedDict((key, converted[key]) for key in reference)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    check_outputs(args.src, [args.dst], args.force)
    state, extras = load_state_dict(args.src, args.allow_pickle)
    layout, state = select_online_network(state, args.src)
    converted = convert(state, args.src)
    meta = dict(source=osp.abspath(args.src), source_layout=layout)
    if isinstance(extras.get('epoch'), int):
        meta['source_epoch'] = extras['epoch']
    num_classes = converted['cls_head.fc_cls.weight'].shape[0]
    if num_classes == len(ARID_CLASSES):
        meta['dataset_meta'] = dict(classes=ARID_CLASSES)
    with torch.device('meta'):
        target = build_recognizer(num_classes).state_dict()
    save_verified(
        dict(state_dict=converted, meta=meta), args.dst, target,
        f'Recognizer3D(i3d_r50, I3DHead with {num_classes} classes)')
    print(f'{args.src} ({layout}, {len(state)} tensors) -> {args.dst} '
          f'({len(converted)} tensors, {num_classes} classes)')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
