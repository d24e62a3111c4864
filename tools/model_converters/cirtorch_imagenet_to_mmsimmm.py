# Copyright (c) mmsimmm contributors. All rights reserved.
"""Convert cirtorch's caffe-converted ImageNet ResNet features to mmsimmm.

The GeM place-recognition recipe (cnnimageretrieval-pytorch, "cirtorch",
which the official VPR code builds on) does not start from torchvision's
ImageNet weights. For ``resnet101`` its ``init_network(pretrained=True)``
builds a randomly initialised torchvision ``resnet101``, keeps
``list(resnet.children())[:-2]`` (conv1, bn1, relu, maxpool, layer1..4;
avgpool and fc dropped) as ``nn.Sequential`` ``features``, and loads
cirtorch's own file into it with ``net.features.load_state_dict(...)``:
``imagenet-caffe-resnet101-features-10a101d.pth`` (the ``FEATURES`` table
of ``cirtorch/networks/imageretrievalnet.py``, downloaded to
``<data root>/networks/``). These weights were converted from the caffe
ResNet-101 and differ numerically from torchvision's.

Facts this converter relies on:

- The file is a bare state dict of that ``nn.Sequential``, so its keys are
  the Sequential indices: ``0.weight`` (conv1, (64, 3, 7, 7)), ``1.*``
  (bn1), ``4.<block>.*`` = layer1, ``5.*`` = layer2, ``6.*`` = layer3,
  ``7.*`` = layer4, with torchvision Bottleneck sub-names (``conv1..3``,
  ``bn1..3``, ``downsample.0/1``); relu (2) and maxpool (3) have no
  weights. These are the ``features.N`` keys of a trained cirtorch GeM
  network without the ``features.`` prefix, so the renaming is the
  ``features.*`` part of ``cirtorch_gem_to_mmsimmm.PREFIXES`` (reused from
  that converter): 0 -> conv1, 1 -> bn1, 4..7 -> layer1..4, the layout of
  mmpretrain ``ResNet(depth=101, style='pytorch')``.
- The file predates PyTorch 0.4.1 and may lack the BatchNorm
  ``num_batches_tracked`` buffers; PyTorch fills them with 0 when such an
  old state dict is loaded, so this converter adds them as 0 (and only
  them: any other missing key is an error). They only count BN updates;
  the GeM recipe freezes every BatchNorm.
- Input convention: cirtorch stores ``mean=[0.485, 0.456, 0.406]``,
  ``std=[0.229, 0.224, 0.225]`` in the network's ``meta`` for these
  features too (the ``init_network`` defaults; there is no caffe-specific
  BGR / 0-255 convention), and its loaders feed PIL RGB images through
  ``ToTensor()`` + ``Normalize(meta['mean'], meta['std'])``. In mmsimmm
  that is ``RetrievalDataPreprocessor(mean=[123.675, 116.28, 103.53],
  std=[58.395, 57.12, 57.375], to_rgb=True)`` on 0-255 BGR-loaded images,
  the preprocessing of ``configs/place_recognition/*``.

The output ``{'state_dict', 'meta'}`` holds backbone keys without prefix
(``conv1.weight``, ``bn1.*``, ``layer1.0.conv1.weight``, ...), i.e. a
backbone initialisation checkpoint::

    backbone=dict(..., init_cfg=dict(type='Pretrained', checkpoint=OUT))

Before writing, the converted weights are loaded with ``strict=True`` into
a freshly built mmpretrain ``ResNet`` of the detected depth; any missing,
unexpected or wrongly shaped key is reported and nothing is written.

Example::

    python tools/model_converters/cirtorch_imagenet_to_mmsimmm.py \\
        data/cirtorch/networks/imagenet-caffe-resnet101-features-10a101d.pth \\
        data/cirtorch/networks/imagenet-caffe-resnet101-features_mmsimmm.pth
"""
import argparse
import importlib.util
import os.path as osp
import sys
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch

from mmsimmm.utils.checkpoint_check import check_strict_match, listed
from mmsimmm.utils.checkpoint_io import (
    add_converter_arguments,
    load_source_state,
    save_verified,
)

BN_COUNTER = 'num_batches_tracked'


def _load_gem_converter():
    """The sibling cirtorch GeM converter (its key table is reused)."""
    path = osp.join(osp.dirname(osp.abspath(__file__)),
                    'cirtorch_gem_to_mmsimmm.py')
    spec = importlib.util.spec_from_file_location('cirtorch_gem_to_mmsimmm',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_GEM = _load_gem_converter()
FEATURES_PREFIX, BACKBONE_PREFIX = 'features.', 'backbone.'
# ('0.', 'conv1.'), ('1.', 'bn1.'), ('4.', 'layer1.') ... ('7.', 'layer4.')
FEATURE_PREFIXES = [(old[len(FEATURES_PREFIX):], new[len(BACKBONE_PREFIX):])
                    for old, new in _GEM.PREFIXES
                    if old.startswith(FEATURES_PREFIX)]


def convert_state_dict(
        src: Dict[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Rename ``nn.Sequential`` feature keys to mmpretrain ResNet keys.

    Args:
        src (dict): The features state dict (``0.weight``, ``4.0.conv1.
            weight``, ...; a ``features.`` prefix is accepted too).

    Returns:
        OrderedDict: Backbone keys without prefix (``conv1.weight``...).

    Raises:
        KeyError: Listing every key outside the ResNet features.
    """
    if src and all(k.startswith(FEATURES_PREFIX) for k in src):
        src = {k[len(FEATURES_PREFIX):]: v for k, v in src.items()}
    out, unknown = OrderedDict(), []
    for key, value in src.items():
        for old, new in FEATURE_PREFIXES:
            if key.startswith(old):
                out[new + key[len(old):]] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise KeyError(f'{len(unknown)} key(s) are not ResNet features '
                       f'(0 = conv1, 1 = bn1, 4..7 = layer1..4): '
                       f'{listed(unknown)}')
    return out


def detect_depth(state_dict: Dict[str, torch.Tensor]) -> int:
    """ResNet depth of converted backbone keys (the GeM converter's rule).

    Raises:
        ValueError: If the block counts are no standard ResNet's.
    """
    depth = _GEM.detect_depth(
        {BACKBONE_PREFIX + k: v
         for k, v in state_dict.items()})
    if depth is None:
        raise ValueError('the blocks per stage are not those of a ResNet '
                         '18/34/50/101/152')
    return depth


def build_backbone(depth: int) -> torch.nn.Module:
    """The mmpretrain ResNet the GeM configs use, randomly initialised."""
    from mmpretrain.models import ResNet
    return ResNet(depth=depth, style='pytorch', out_indices=(3, ))


def complete_and_verify(
        state_dict: 'OrderedDict[str, torch.Tensor]',
        backbone: torch.nn.Module) -> Tuple['OrderedDict', List[str]]:
    """Add absent BN counters, then check and load ``strict=True``.

    Args:
        state_dict (OrderedDict): Converted backbone keys.
        backbone (nn.Module): The target ResNet.

    Returns:
        tuple: The completed state dict and the counters that were added.

    Raises:
        ValueError: Naming every missing, unexpected or wrongly shaped key.
    """
    model_state = backbone.state_dict()
    added = []
    for key, value in model_state.items():
        if key.endswith('.' + BN_COUNTER) and key not in state_dict:
            state_dict[key] = torch.zeros_like(value)
            added.append(key)
    ordered = OrderedDict(
        (k, state_dict[k]) for k in model_state if k in state_dict)
    ordered.update(
        (k, v) for k, v in state_dict.items() if k not in ordered)
    check_strict_match(
        model_state,
        ordered,
        source='the converted features',
        resume=True,
        hint='They must load strictly into mmpretrain ResNet.')
    backbone.load_state_dict(ordered, strict=True)
    return ordered, added


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Convert cirtorch's caffe-converted ImageNet ResNet "
        'features (imagenet-caffe-resnet*-features-*.pth) to an mmpretrain '
        'ResNet backbone checkpoint.')
    add_converter_arguments(parser, 'cirtorch features file (.pth)',
                            'output backbone checkpoint')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    _, state = load_source_state(args.src, args.dst, args.force,
                                 args.allow_pickle)
    converted = convert_state_dict(state)
    depth = detect_depth(converted)
    backbone = build_backbone(depth)
    converted, added = complete_and_verify(converted, backbone)
    save_verified(
        dict(
            state_dict=converted,
            meta=dict(
                source=osp.basename(args.src),
                resnet_depth=depth,
                added_num_batches_tracked=len(added),
                input='RGB in [0, 1], mean [0.485, 0.456, 0.406], '
                'std [0.229, 0.224, 0.225] (cirtorch meta)')),
        args.dst,
        backbone.state_dict(),
        target=f'mmpretrain ResNet-{depth} (the GeM backbone)')
    print(f'{len(converted)} tensors (ResNet-{depth}, loaded strictly'
          f'{f"; {len(added)} num_batches_tracked set to 0" if added else ""}'
          f') -> {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
