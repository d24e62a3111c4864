# Copyright (c) mmsimmm contributors. All rights reserved.
"""Learn the post-hoc whitening (Lw) of a GeM retrieval model.

Descriptors of the retrieval-SfM-120k whitening images are extracted the way
the test set's are (the config's test pipeline and the model's
``test_scales``), then ``m`` and ``P`` are learned from the matching pairs
(:func:`mmsimmm.models.utils.learn_whitening`) and saved as a
``{'m', 'P'}`` tensor file for ``model.post_whitening``.

The whitening image set is the config's ``whiten_dataset`` (e.g.
``mmsimmm.SfM120kWhitenDataset``); its pipeline defaults to the test
pipeline.

Example::

    python tools/analysis_tools/learn_whitening.py \\
        configs/place_recognition/gem_resnet101_1xb5-5e_sfm120k-362px.py \\
        work_dirs/gem/epoch_5.pth --out work_dirs/gem/lw_ms.pth
"""
import argparse
import copy
import sys
from typing import List, Optional

import torch
from mmengine.config import DictAction
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import _load_checkpoint
from torch.utils.data import DataLoader

from mmsimmm.models.utils.whitening import learn_whitening, save_whitening
from mmsimmm.registry import DATASETS, MODELS
from mmsimmm.utils import allow_trusted_checkpoints
from mmsimmm.utils.checkpoint_check import load_strictly
from mmsimmm.utils.runner_setup import load_config


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Learn the whitening (Lw) of a GeM retrieval model.')
    parser.add_argument('config', help='retrieval config file')
    parser.add_argument('checkpoint', help='model checkpoint')
    parser.add_argument('--out', required=True, help="output {'m','P'} file")
    parser.add_argument(
        '--scales',
        type=float,
        nargs='+',
        help='image scales (default: model.test_scales of the config)')
    parser.add_argument(
        '--shrinkage',
        type=float,
        default=0.0,
        help='ridge on the pair scatter for few pairs (default 0)')
    parser.add_argument(
        '--no-regularize',
        action='store_true',
        help='fail on a pair scatter that is not positive definite instead '
        "of adding a growing alpha * I (cirtorch whitenlearn's rule)")
    parser.add_argument(
        '--device',
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='device (default: cuda if available)')
    parser.add_argument('--num-workers', type=int, default=2)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. whiten_dataset.data_root=...')
    return parser.parse_args(argv)


def load_weights(model: torch.nn.Module, path: str) -> None:
    """Load a checkpoint strictly (SimMinMax's own parts are ignored):
    every model key must be there with its shape, and no other key."""
    result = load_strictly(model, _load_checkpoint(path, map_location='cpu'),
                           path)
    print(f'{path}: {result.summary()}')


def build_whiten_dataset(cfg) -> object:
    """Build ``cfg.whiten_dataset`` (test pipeline unless it has one)."""
    if cfg.get('whiten_dataset') is None:
        raise KeyError(f'{cfg.filename} has no whiten_dataset')
    dataset_cfg = copy.deepcopy(cfg.whiten_dataset)
    if 'pipeline' not in dataset_cfg:
        dataset_cfg['pipeline'] = cfg.test_dataloader.dataset.pipeline
    return DATASETS.build(dataset_cfg)


def main(argv: Optional[List[str]] = None) -> dict:
    """Learn and save the whitening.

    Args:
        argv (list[str], optional): Arguments. Defaults to None
            (``sys.argv[1:]``).

    Returns:
        dict: ``m`` and ``P`` tensors.
    """
    args = parse_args(argv)
    allow_trusted_checkpoints()
    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmsimmm'))
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg['post_whitening'] = None
    if args.scales:
        model_cfg['test_scales'] = args.scales
    model = MODELS.build(model_cfg)
    load_weights(model, args.checkpoint)
    model.to(args.device).eval()

    dataset = build_whiten_dataset(cfg)
    loader = DataLoader(
        dataset,
        batch_size=1,
        num_workers=args.num_workers,
        collate_fn=pseudo_collate)
    descriptors = []
    with torch.no_grad():
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            descriptors.append(model.test_descriptors(data['inputs']).cpu())
    meta = dataset.metainfo
    mean, proj = learn_whitening(
        torch.cat(descriptors),
        meta['qidxs'],
        meta['pidxs'],
        args.shrinkage,
        regularize=not args.no_regularize)
    save_whitening(args.out, mean, proj)
    print(f'learned whitening from {len(meta["qidxs"])} pairs of '
          f'{len(dataset)} images ({proj.shape[1]}-d, scales '
          f'{model.test_scales}) -> {args.out}')
    return dict(m=mean, P=proj)


if __name__ == '__main__':
    main(sys.argv[1:])
