# Copyright (c) mmsimmm contributors. All rights reserved.
"""Convert a cnnimageretrieval (cirtorch) GeM checkpoint to mmsimmm keys.

Official checkpoints hold ``{'epoch', 'meta', 'state_dict', 'min_loss',
'optimizer'}`` with keys ``features.N.*`` (a torchvision ResNet without
avgpool/fc), ``pool.p`` and optionally ``whiten.weight/bias``. They map to
``mmsimmm.GeMRetriever`` with an mmpretrain ``ResNet(style='pytorch')``:

    features.0 -> backbone.conv1      features.1 -> backbone.bn1
    features.4..7 -> backbone.layer1..4
    pool.p -> neck.p                  whiten.* -> whitening.*

The written file is read back and checked to load strictly into that
``GeMRetriever`` (:func:`build_retriever`; with ``whitening=dict(...)`` when
the checkpoint has a ``whiten`` layer) before it takes its name.

A learned-whitening file ``{'m', 'P'}`` (numpy arrays) can be converted to
mmsimmm's tensor format with ``--whitening``. Only convert files you trust:
official files need a full (code-executing) unpickle.

Example::

    python tools/model_converters/cirtorch_gem_to_mmsimmm.py \\
        retrievalSfM120k-resnet101-gem.pth gem_r101_mmsimmm.pth \\
        --whitening model_retrieval-SfM-120k_whiten_ms.pth
"""
import argparse
import os.path as osp
import pickle
import re
import sys
from collections import OrderedDict
from typing import Dict, List, Optional

import torch

from mmsimmm.models.utils.whitening import check_whitening, save_whitening
from mmsimmm.utils.checkpoint_check import strip_module_prefix
from mmsimmm.utils.checkpoint_io import (
    add_converter_arguments,
    check_outputs,
    save_verified,
)

PREFIXES = [
    ('features.0.', 'backbone.conv1.'),
    ('features.1.', 'backbone.bn1.'),
    ('features.4.', 'backbone.layer1.'),
    ('features.5.', 'backbone.layer2.'),
    ('features.6.', 'backbone.layer3.'),
    ('features.7.', 'backbone.layer4.'),
    ('pool.p', 'neck.p'),
    ('whiten.', 'whitening.'),
]
UNSUPPORTED = {
    'lwhiten.': 'local whitening',
    'pool.rpool.': 'regional pooling (R-MAC style)',
    'pool.whiten.': 'regional pooling whitening',
}
RESNET_DEPTH = {(2, 2, 2, 2, False): 18, (3, 4, 6, 3, False): 34,
                (3, 4, 6, 3, True): 50, (3, 4, 23, 3, True): 101,
                (3, 8, 36, 3, True): 152}


def load_trusted(path: str) -> object:
    """``torch.load`` a trusted file, allowing non-tensor pickles."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'file not found: {path}')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError:
        return torch.load(path, map_location='cpu', weights_only=False)


def convert_state_dict(
        src: Dict[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Rename cirtorch keys; raise KeyError listing any unknown key.

    Args:
        src (dict): cirtorch state dict (a uniform ``module.`` prefix from
            DataParallel is removed first).

    Returns:
        OrderedDict: mmsimmm ``GeMRetriever`` state dict.
    """
    src = strip_module_prefix(src, 'state_dict', mixed='error')
    out, unknown = OrderedDict(), []
    for key, value in src.items():
        for old, new in PREFIXES:
            if key == old or (old.endswith('.') and key.startswith(old)):
                out[new + key[len(old):]] = value
                break
        else:
            unknown.append(key)
    if unknown:
        kinds = {
            why
            for k in unknown for pre, why in UNSUPPORTED.items()
            if k.startswith(pre)
        }
        hint = f' (unsupported: {", ".join(sorted(kinds))})' if kinds else ''
        raise KeyError(f'{len(unknown)} unknown cirtorch key(s){hint}: '
                       f'{unknown[:10]}')
    if 'neck.p' not in out:
        raise KeyError('no pool.p in the checkpoint: not a GeM model')
    return out


def detect_depth(state_dict: Dict[str, torch.Tensor]) -> Optional[int]:
    """ResNet depth from the converted keys (None if not a standard one)."""
    blocks: List[int] = []
    for i in range(1, 5):
        ids = {
            int(m.group(1))
            for k in state_dict
            for m in [re.match(rf'backbone\.layer{i}\.(\d+)\.', k)] if m
        }
        blocks.append(len(ids))
    bottleneck = any('.conv3.' in k for k in state_dict)
    return RESNET_DEPTH.get((*blocks, bottleneck))


def build_retriever(depth: int,
                    whitening: Optional[torch.Tensor] = None
                    ) -> torch.nn.Module:
    """The ``mmsimmm.GeMRetriever`` the converted weights are for.

    The model of ``configs/place_recognition/gem_resnet101_*.py`` for depth
    101: mmpretrain ``ResNet(style='pytorch')`` and GeM pooling.

    Args:
        depth (int): ResNet depth.
        whitening (Tensor, optional): The converted ``whitening.weight``;
            its shape sizes the whitening layer. Defaults to None (none).

    Returns:
        nn.Module: A randomly initialised retriever.
    """
    from mmsimmm.registry import MODELS

    cfg = dict(
        type='mmsimmm.GeMRetriever',
        backbone=dict(
            type='mmpretrain.ResNet',
            depth=depth,
            style='pytorch',
            out_indices=(3, )),
        neck=dict(type='mmsimmm.GeMPooling'))
    if whitening is not None:
        out_features, in_features = whitening.shape
        cfg['whitening'] = dict(
            in_features=in_features, out_features=out_features)
    return MODELS.build(cfg)


def convert_whitening(src: str, dst: str) -> None:
    """Convert a ``{'m', 'P'}`` numpy file to mmsimmm's tensor file."""
    data = check_whitening(load_trusted(src), src)
    save_whitening(dst, data['m'], data['P'])


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a cirtorch GeM checkpoint to mmsimmm keys.')
    add_converter_arguments(
        parser,
        'cirtorch checkpoint (.pth / .pth.tar)',
        'output mmsimmm checkpoint',
        allow_pickle=False)
    parser.add_argument(
        '--whitening',
        help="cirtorch learned-whitening file {'m', 'P'} to convert too")
    parser.add_argument(
        '--whitening-out',
        help='output whitening file (default: <dst stem>_whiten.pth)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    whitening_out = None
    if args.whitening:
        whitening_out = (args.whitening_out
                         or osp.splitext(args.dst)[0] + '_whiten.pth')
        check_outputs(args.whitening, [whitening_out], args.force)
    check_outputs(args.src, [args.dst, whitening_out], args.force)
    ckpt = load_trusted(args.src)
    if not isinstance(ckpt, dict):
        raise TypeError(f'{args.src}: expected a dict, got '
                        f'{type(ckpt).__name__}')
    state_dict = ckpt.get('state_dict', ckpt)
    converted = convert_state_dict(state_dict)
    depth = detect_depth(converted)
    if depth is None:
        raise ValueError(f'{args.src}: its backbone is no standard ResNet '
                         '(18/34/50/101/152), so no GeMRetriever fits it')
    meta = ckpt.get('meta', {}) if isinstance(ckpt.get('meta'), dict) else {}
    keep = ('architecture', 'pooling', 'whitening', 'outputdim', 'mean',
            'std')
    # (mmpretrain's ResNet cannot be built on the meta device)
    target = build_retriever(depth,
                             converted.get('whitening.weight')).state_dict()
    out_meta = dict(source=osp.basename(args.src), resnet_depth=depth)
    out_meta['cirtorch_meta'] = {k: meta[k] for k in keep if k in meta}
    save_verified(
        dict(state_dict=converted, meta=out_meta), args.dst, target,
        f'GeMRetriever(ResNet-{depth})')
    print(f'{len(converted)} tensors -> {args.dst} (ResNet depth {depth}, '
          f'whitening layer: {"whitening.weight" in converted})')
    if 'Lw' in meta:
        print('note: meta["Lw"] (learned whitening inside the checkpoint) is '
              'not converted; pass the whitening file with --whitening')
    if args.whitening:
        convert_whitening(args.whitening, whitening_out)
        print(f'whitening {args.whitening} -> {whitening_out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
