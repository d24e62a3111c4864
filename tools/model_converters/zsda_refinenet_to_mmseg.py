# Copyright (c) mmsimmm contributors. All rights reserved.
"""Convert an official ZSDA / CIConv RefineNet checkpoint to mmseg keys.

Input: a ``.pth.tar`` dict with ``model_state_dict`` (keys usually prefixed
``module.``) of the plain ``RefineNet`` (712 entries) or of
``RefineNet_BYOL`` (1520 entries; ``encoder_k.``, ``head_q.``, ``head_k.``
and ``pred.`` are training-only and dropped). Output: an mmengine
checkpoint for ``EncoderDecoder(backbone=ResNet(depth=101,
style='pytorch'), decode_head=mmsimmm.RefineNetHead(num_classes=19))``,
the model of ``configs/segmentation/refinenet_r101_*.py``.

Classifier: the official model is trained with 20 outputs, the 19
Cityscapes train ids plus a void class 19 that the loss ignores, so
``clf_conv`` is ``(20, 256, 3, 3)`` / ``(20,)``. Rows 0-18 are kept (the
void row, never a prediction target, is dropped): the logits of the 19
classes are unchanged. A 19-row classifier is kept as it is; any other
width is refused.

Every key is checked against the target model (built on the meta device):
unknown, missing or mis-shaped keys raise one error listing all of them.
The written file is read back and checked to load strictly into that model
before it takes its name.

Example::

    python tools/model_converters/zsda_refinenet_to_mmseg.py \
        best_weights_dz.pth.tar refinenet_r101_zsda_dz.pth
"""
import argparse
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import torch
from mmseg.datasets import CityscapesDataset

from mmsimmm.models.decode_heads import RefineNetHead  # noqa: F401
from mmsimmm.utils.checkpoint_check import strip_module_prefix
from mmsimmm.utils.checkpoint_io import (
    add_converter_arguments,
    check_outputs,
    save_verified,
)

BYOL_ONLY_PREFIXES = ('encoder_k.', 'head_q.', 'head_k.', 'pred.')
BACKBONE_PREFIX = 'resnet.'
CLASSIFIER = ('clf_conv.weight', 'clf_conv.bias')
NUM_CLASSES = 19  # the Cityscapes train ids
VOID_CLASS = 19  # the official extra output (train id 255 -> 19)
# (pattern of our key inside one refine block, official name template);
# {s} is the official stage (1 = deepest), {n} the 1-based unit index.
_BLOCK_RULES = [
    (r'in_conv\.weight', 'p_ims1d2_outl{s}_dimred.weight'),
    (r'adapt_units\.(?P<n>\d+)\.conv1\.(?P<p>weight|bias)',
     'adapt_stage{s}_b.0.{n}_conv.{p}'),
    (r'adapt_units\.(?P<n>\d+)\.conv2\.weight',
     'adapt_stage{s}_b.0.{n}_conv_relu_varout_dimred.weight'),
    (r'adapt_conv\.weight', 'adapt_stage{s}_b2_joint_varout_dimred.weight'),
    (r'crp\.convs\.(?P<n>\d+)\.weight',
     'mflow_conv_g{s}_pool.0.{n}_outvar_dimred.weight'),
    (r'out_units\.(?P<n>\d+)\.conv1\.(?P<p>weight|bias)',
     'mflow_conv_g{s}_b.0.{n}_conv.{p}'),
    (r'out_units\.(?P<n>\d+)\.conv2\.weight',
     'mflow_conv_g{s}_b.0.{n}_conv_relu_varout_dimred.weight'),
    (r'out_conv\.weight', 'mflow_conv_g{s}_b3_joint_varout_dimred.weight'),
]


def official_decoder_name(key: str, num_levels: int) -> str:
    """Official RefineNet name of a ``RefineNetHead`` state_dict key.

    Args:
        key (str): Key of ``RefineNetHead.state_dict()``.
        num_levels (int): Number of refine blocks (4 officially).

    Returns:
        str: The official key, e.g. ``mflow_conv_g2_b.0.3_conv.bias``.
    """
    match = re.fullmatch(r'conv_seg\.(weight|bias)', key)
    if match:
        return f'clf_conv.{match.group(1)}'
    match = re.fullmatch(r'refine_blocks\.(\d+)\.(.+)', key)
    if match:
        stage = num_levels - int(match.group(1))
        for pattern, template in _BLOCK_RULES:
            sub = re.fullmatch(pattern, match.group(2))
            if sub is None:
                continue
            fields = sub.groupdict()
            if 'n' in fields:  # 0-based here, 1-based officially
                fields['n'] = int(fields['n']) + 1
            return template.format(s=stage, **fields)
    raise KeyError(f'RefineNetHead key {key!r} has no official name.')


def build_target_shapes(depth: int = 101) -> 'OrderedDict[str, torch.Size]':
    """Key -> shape of the target mmseg model, in its state_dict order.

    :func:`build_target_model` is built on the meta device (no memory, no
    weights).
    """
    with torch.device('meta'):
        model = build_target_model(depth)
    return OrderedDict(
        (key, value.shape) for key, value in model.state_dict().items())


def build_target_model(depth: int = 101) -> torch.nn.Module:
    """The mmseg model the converted checkpoint is for (random weights).

    The model of ``configs/segmentation/refinenet_r101_*.py`` for
    ``depth=101``: ``EncoderDecoder`` with ``ResNet(style='pytorch')`` and a
    19-class ``mmsimmm.RefineNetHead``.

    Args:
        depth (int): ResNet depth. Defaults to 101.

    Returns:
        nn.Module: The segmentor.
    """
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(
            dict(
                type='EncoderDecoder',
                backbone=dict(
                    type='ResNet',
                    depth=depth,
                    out_indices=(0, 1, 2, 3),
                    style='pytorch',
                    deep_stem=False,
                    norm_cfg=dict(type='BN', requires_grad=True)),
                decode_head=dict(
                    type='mmsimmm.RefineNetHead', num_classes=NUM_CLASSES),
                train_cfg=dict(),
                test_cfg=dict(mode='whole')))


def official_to_mmseg_names(target_keys: Sequence[str],
                            num_levels: int = 4) -> Dict[str, str]:
    """Official key (without ``module.``) -> mmseg key, one to one."""
    mapping = {}
    for key in target_keys:
        if key.startswith('backbone.'):
            official = BACKBONE_PREFIX + key[len('backbone.'):]
        else:
            official = official_decoder_name(key[len('decode_head.'):],
                                             num_levels)
        mapping[official] = key
    return mapping


def drop_void_class(state: Dict[str, torch.Tensor]) -> int:
    """Keep the 19 Cityscapes rows of the official 20-class classifier.

    Args:
        state (dict): Official keys (no ``module.``), changed in place.

    Returns:
        int: The classifier's width in the source (20 or 19).

    Raises:
        ValueError: If ``clf_conv`` is neither 20 (19 classes + void) nor
            19 outputs wide, or its weight and bias disagree.
    """
    if not all(key in state for key in CLASSIFIER):
        return NUM_CLASSES  # reported as missing keys by `convert`
    weight, bias = (state[key] for key in CLASSIFIER)
    width = weight.shape[0] if weight.dim() else 0
    if width not in (NUM_CLASSES + 1, NUM_CLASSES) or tuple(
            bias.shape) != (width, ):
        raise ValueError(
            f'clf_conv.weight {tuple(weight.shape)} / clf_conv.bias '
            f'{tuple(bias.shape)}: an official RefineNet classifier has 20 '
            f'outputs (the 19 Cityscapes classes + void {VOID_CLASS}), or '
            f'19 without void; this one is not a Cityscapes RefineNet.')
    if width == NUM_CLASSES + 1:
        state['clf_conv.weight'] = weight[:NUM_CLASSES].clone()
        state['clf_conv.bias'] = bias[:NUM_CLASSES].clone()
    return width


def convert(source: Dict[str, torch.Tensor],
            depth: int = 101) -> Dict[str, torch.Tensor]:
    """Convert an official RefineNet(_BYOL) state_dict to mmseg keys.

    The void row of the official 20-output classifier is dropped
    (:func:`drop_void_class`).

    Args:
        source (dict): ``model_state_dict`` of the official checkpoint.
        depth (int): ResNet depth of the checkpoint. Defaults to 101.

    Returns:
        OrderedDict: ``backbone.*`` / ``decode_head.*`` state_dict for a
        19-class ``RefineNetHead``.
    """
    state = strip_module_prefix(
        source, 'model_state_dict', mixed='error')
    dropped = {p: 0 for p in BYOL_ONLY_PREFIXES}
    for key in list(state):
        for prefix in BYOL_ONLY_PREFIXES:
            if key.startswith(prefix):
                dropped[prefix] += 1
                del state[key]
    source_classes = drop_void_class(state)
    shapes = build_target_shapes(depth)
    names = official_to_mmseg_names(list(shapes))

    unknown = sorted(set(state) - set(names))
    missing = sorted(set(names) - set(state))
    mismatched = [
        f'{k}: {tuple(state[k].shape)} != {tuple(shapes[names[k]])}'
        for k in sorted(set(state) & set(names))
        if state[k].shape != shapes[names[k]]
    ]
    problems: List[str] = []
    if unknown:
        problems.append(f'{len(unknown)} unknown keys: {unknown}')
    if missing:
        problems.append(f'{len(missing)} missing keys: {missing}')
    if mismatched:
        problems.append(f'{len(mismatched)} shape mismatches '
                        f'(checkpoint vs ResNet-{depth} + RefineNetHead): '
                        f'{mismatched}')
    if problems:
        raise ValueError('Checkpoint does not match the official RefineNet '
                         f'layout (ResNet-{depth}):\n' + '\n'.join(problems))
    by_target = {target: official for official, target in names.items()}
    converted = OrderedDict(
        (target, state[by_target[target]]) for target in shapes)
    void = (f'dropped the void row {VOID_CLASS} of the 20-output '
            'classifier' if source_classes > NUM_CLASSES else
            'classifier has 19 outputs (no void row)')
    print(f'Converted {len(converted)} keys (decoder: '
          f'{sum(k.startswith("decode_head.") for k in converted)}); '
          f'{void}; dropped BYOL training-only keys: '
          + ', '.join(f'{p} {n}' for p, n in dropped.items()))
    return converted


def load_model_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Read ``model_state_dict`` of an official checkpoint (a trusted file:
    it also holds optimizer state and metrics, so weights_only is off)."""
    checkpoint = torch.load(path, map_location='cpu', weights_only=False)
    if not isinstance(checkpoint, dict) or \
            'model_state_dict' not in checkpoint:
        keys = list(checkpoint)[:10] if isinstance(checkpoint, dict) else []
        raise KeyError(f'{path}: no "model_state_dict" (top-level keys: '
                       f'{keys}); expected an official RefineNet checkpoint.')
    return checkpoint['model_state_dict']


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert an official ZSDA/CIConv RefineNet checkpoint '
        'to an mmseg EncoderDecoder + mmsimmm.RefineNetHead checkpoint.')
    add_converter_arguments(
        parser,
        'official .pth.tar checkpoint',
        'output mmengine checkpoint (.pth)',
        allow_pickle=False)
    parser.add_argument(
        '--depth',
        type=int,
        default=101,
        choices=(50, 101, 152),
        help='ResNet depth of the checkpoint (default: 101)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command-line entry point."""
    args = parse_args(argv)
    check_outputs(args.src, [args.dst], args.force)
    state_dict = convert(load_model_state_dict(args.src), depth=args.depth)
    meta = dict(
        converted_from=args.src,
        converter='tools/model_converters/zsda_refinenet_to_mmseg.py',
        dataset_meta=dict(
            classes=CityscapesDataset.METAINFO['classes'],
            palette=CityscapesDataset.METAINFO['palette']))
    with torch.device('meta'):
        target = build_target_model(args.depth).state_dict()
    save_verified(
        dict(meta=meta, state_dict=state_dict), args.dst, target,
        f'EncoderDecoder(ResNet-{args.depth}, RefineNetHead, '
        f'{NUM_CLASSES} classes)')
    print(f'Saved {args.dst}')


if __name__ == '__main__':
    main()
