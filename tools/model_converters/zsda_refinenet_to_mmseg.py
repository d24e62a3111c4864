# Copyright (c) mmsimmm contributors. All rights reserved.
"""Convert an official ZSDA / CIConv RefineNet checkpoint to mmseg keys.

Input: a ``.pth.tar`` dict with ``model_state_dict`` (keys usually prefixed
``module.``) of the plain ``RefineNet`` (712 entries) or of
``RefineNet_BYOL`` (1520 entries; ``encoder_k.``, ``head_q.``, ``head_k.``
and ``pred.`` are training-only and dropped). Output: an mmengine
checkpoint for ``EncoderDecoder(backbone=ResNet(depth=101,
style='pytorch'), decode_head=mmsimmm.RefineNetHead)``.

Every key is checked against the target model (built on the meta device):
unknown, missing or mis-shaped keys raise one error listing all of them.

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
from mmseg.models.backbones import ResNet

from mmsimmm.apis.converters import (
    add_force_argument,
    check_outputs,
    save_converted,
)
from mmsimmm.models.decode_heads import RefineNetHead

BYOL_ONLY_PREFIXES = ('encoder_k.', 'head_q.', 'head_k.', 'pred.')
BACKBONE_PREFIX = 'resnet.'
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


def build_target_shapes(depth: int,
                        num_classes: int) -> 'OrderedDict[str, torch.Size]':
    """Key -> shape of the mmseg model, in its state_dict order.

    The official backbone + decoder are rebuilt as mmseg ``ResNet`` and
    ``RefineNetHead`` on the meta device (no memory, no weights).
    """
    with torch.device('meta'):
        backbone = ResNet(depth=depth, style='pytorch', deep_stem=False)
        head = RefineNetHead(num_classes=num_classes)
    shapes = OrderedDict()
    for prefix, module in (('backbone.', backbone), ('decode_head.', head)):
        for key, value in module.state_dict().items():
            shapes[prefix + key] = value.shape
    return shapes


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


def strip_data_parallel(state_dict: Dict[str, torch.Tensor]
                        ) -> Dict[str, torch.Tensor]:
    """Remove the ``module.`` prefix that must be on all keys or none."""
    prefixed = [k for k in state_dict if k.startswith('module.')]
    if not prefixed:
        return dict(state_dict)
    if len(prefixed) != len(state_dict):
        plain = sorted(set(state_dict) - set(prefixed))
        raise ValueError('Only some keys have the "module." prefix; keys '
                         f'without it: {plain[:10]} ({len(plain)} total).')
    return {k[len('module.'):]: v for k, v in state_dict.items()}


def convert(source: Dict[str, torch.Tensor],
            depth: int = 101) -> Dict[str, torch.Tensor]:
    """Convert an official RefineNet(_BYOL) state_dict to mmseg keys.

    Args:
        source (dict): ``model_state_dict`` of the official checkpoint.
        depth (int): ResNet depth of the checkpoint. Defaults to 101.

    Returns:
        OrderedDict: ``backbone.*`` / ``decode_head.*`` state_dict.
    """
    state = strip_data_parallel(source)
    dropped = {p: 0 for p in BYOL_ONLY_PREFIXES}
    for key in list(state):
        for prefix in BYOL_ONLY_PREFIXES:
            if key.startswith(prefix):
                dropped[prefix] += 1
                del state[key]
    clf = state.get('clf_conv.weight')
    num_classes = clf.shape[0] if clf is not None else 19
    shapes = build_target_shapes(depth, num_classes)
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
    print(f'Converted {len(converted)} keys (decoder: '
          f'{sum(k.startswith("decode_head.") for k in converted)}); '
          'dropped BYOL training-only keys: '
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
    parser.add_argument('src', help='official .pth.tar checkpoint')
    parser.add_argument('dst', help='output mmengine checkpoint (.pth)')
    parser.add_argument(
        '--depth',
        type=int,
        default=101,
        choices=(50, 101, 152),
        help='ResNet depth of the checkpoint (default: 101)')
    add_force_argument(parser)
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
    save_converted(dict(meta=meta, state_dict=state_dict), args.dst)
    print(f'Saved {args.dst}')


if __name__ == '__main__':
    main()
